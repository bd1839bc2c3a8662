-- Orders: cancel_order, cancel_orders, expire_order and expire_orders (README "Order lifecycle
-- and arithmetic", "Orders and trades").  A PENDING, OPEN or PARTIAL order becomes CANCELLED or
-- EXPIRED and releases whatever it still locks (journal kind ORDER_RELEASE); allowed whatever
-- the account or market status.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('OCE-USDT', 'OCE', 'USDT', 0.01, 0.001);
SELECT symbol FROM exchange.create_market('OCF-USDT', 'OCF', 'USDT', 0.01, 0.001);
SELECT pg_temp.trader('ce_alice');
SELECT pg_temp.trader('ce_bob');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('ce_alice'), 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('ce_alice'), 'OCE', 100);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('ce_bob'), 'USDT', 10000);
SELECT pg_temp.skip();

-- 1. Cancel an OPEN LIMIT BUY: its whole lock comes back, cancelled_at is set, the reason is
-- the event's; the outbox row names the order, the account's orders and balances, the book.
SELECT pg_temp.label(order_id, 'open_buy'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'BUY', 'LIMIT', 3, 33.33);
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, filled_quantity, locked_amount, cancelled_at IS NOT NULL AS cancelled_at,
       filled_at IS NOT NULL AS filled_at
  FROM exchange.cancel_order(pg_temp.id('open_buy'), 'user request');
SELECT * FROM pg_temp.balances() WHERE account = 'ce_alice';
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 2. Cancel a PARTIAL BUY: after 1.234 of 3 filled at 33, the lock is ceil8(1.766 x 33.33)
-- = 58.86078; cancel releases exactly that.
SELECT pg_temp.label(order_id, 'partial_buy'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'BUY', 'LIMIT', 3, 33.33);
SELECT pg_temp.label(trade_id, 't_partial'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('partial_buy'), 1.234, 33);
SELECT * FROM pg_temp.o('partial_buy');
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, filled_quantity, average_price, locked_amount
  FROM exchange.cancel_order(pg_temp.id('partial_buy'));
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 3. Cancel a PENDING stop (no book key: it never was in the book) and a PARTIAL SELL.
SELECT pg_temp.label(order_id, 'pending_stop'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'SELL', 'STOP', 2, stop_price => 30);
SELECT pg_temp.label(order_id, 'partial_sell'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'SELL', 'LIMIT', 5, 40);
SELECT pg_temp.label(trade_id, 't_partial_sell'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('partial_sell'), 1.5, 41);
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, locked_amount FROM exchange.cancel_order(pg_temp.id('pending_stop'));
SELECT pg_temp.l(order_id), status, filled_quantity, locked_amount FROM exchange.cancel_order(pg_temp.id('partial_sell'));
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 4. Cancel and expire are allowed on a SUSPENDED account and on a HALTED market.
SELECT pg_temp.label(order_id, 'halted_buy'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCF-USDT', 'BUY', 'LIMIT', 1, 10);
SELECT pg_temp.label(order_id, 'suspended_buy'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'BUY', 'LIMIT', 1, 10);
SELECT symbol, status FROM exchange.set_market_status('OCF-USDT', 'HALTED');
SELECT status FROM exchange.set_account_status(pg_temp.id('ce_alice'), 'SUSPENDED');
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, locked_amount FROM exchange.cancel_order(pg_temp.id('halted_buy'));
SELECT pg_temp.l(order_id), status, locked_amount FROM exchange.expire_order(pg_temp.id('suspended_buy'), 'end of session');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT status FROM exchange.set_account_status(pg_temp.id('ce_alice'), 'ACTIVE');
SELECT symbol, status FROM exchange.set_market_status('OCF-USDT', 'ACTIVE');

-- 5. expire_order: OPEN and PARTIAL orders become EXPIRED (neither cancelled_at nor
-- filled_at set) and release their lock.
SELECT pg_temp.label(order_id, 'expire_partial'), status
  FROM exchange.place_order(pg_temp.id('ce_bob'), 'OCE-USDT', 'BUY', 'LIMIT', 2, 50);
SELECT pg_temp.label(trade_id, 't_expire_partial'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('expire_partial'), 0.5, 49.99);
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, filled_quantity, locked_amount,
       cancelled_at IS NOT NULL AS cancelled_at, filled_at IS NOT NULL AS filled_at
  FROM exchange.expire_order(pg_temp.id('expire_partial'));
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 6. cancel_orders(account, symbol) cancels that account's live orders of one market;
-- cancel_orders(account) all its live orders.  Other accounts' orders are untouched.  The
-- result lists the cancelled orders.
SELECT pg_temp.label(order_id, 'many_1'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'BUY', 'LIMIT', 1, 20);
SELECT pg_temp.label(order_id, 'many_2'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'SELL', 'STOP', 1, stop_price => 15);
SELECT pg_temp.label(order_id, 'many_3'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCF-USDT', 'BUY', 'LIMIT', 1, 20);
SELECT pg_temp.label(order_id, 'many_4'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'SELL', 'LIMIT', 1, 25);
SELECT pg_temp.label(trade_id, 't_many_4'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('many_4'), 0.25, 25);
SELECT pg_temp.label(order_id, 'bob_open'), status
  FROM exchange.place_order(pg_temp.id('ce_bob'), 'OCE-USDT', 'BUY', 'LIMIT', 1, 20);
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, filled_quantity, locked_amount
  FROM exchange.cancel_orders(pg_temp.id('ce_alice'), 'OCE-USDT') ORDER BY 1;
-- (A batch takes its orders in order_id order, which differs on every run: sorted here.)
SELECT * FROM pg_temp.new_journal() ORDER BY "order";
SELECT * FROM pg_temp.new_events() ORDER BY "order";
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('ce_alice')) ORDER BY 1;
SELECT * FROM pg_temp.new_journal();
-- Nothing left: an empty result, no event, no outbox row.
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('ce_alice'));
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();
SELECT "order", status FROM pg_temp.orders() WHERE "order" IN ('bob_open', 'many_1', 'many_2', 'many_3', 'many_4');

-- 7. expire_orders(symbol, placed_before): the live orders of one market placed before a
-- time, of every account; later ones and other markets are left.
SELECT pg_temp.label(order_id, 'eod_alice'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'BUY', 'LIMIT', 1, 21);
SELECT pg_temp.label(order_id, 'eod_bob_stop'), status
  FROM exchange.place_order(pg_temp.id('ce_bob'), 'OCE-USDT', 'BUY', 'STOP', 1, 22, stop_price => 50);
SELECT pg_temp.label(order_id, 'eod_other_market'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCF-USDT', 'BUY', 'LIMIT', 1, 23);
SELECT clock_timestamp() AS cutoff \gset
SELECT pg_temp.label(order_id, 'eod_later'), status
  FROM exchange.place_order(pg_temp.id('ce_alice'), 'OCE-USDT', 'BUY', 'LIMIT', 1, 24);
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, locked_amount
  FROM exchange.expire_orders('OCE-USDT', :'cutoff') ORDER BY 1;
SELECT * FROM pg_temp.new_journal() ORDER BY "order";
SELECT * FROM pg_temp.new_events() ORDER BY "order";
SELECT "order", status FROM pg_temp.orders() WHERE "order" LIKE 'eod%' OR "order" = 'bob_open';
-- A second run finds nothing; an unknown market is LX003; NULL time is 22004.
SELECT pg_temp.l(order_id) FROM exchange.expire_orders('OCE-USDT', :'cutoff');
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.expire_orders('NOPE-USDT', now()) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.expire_orders('OCE-USDT', NULL) $$);

-- 8. Refusals: an unknown order is LX003; NULL order_id is 22004; a terminal order is LX002
-- (every case in lifecycle_illegal.sql); a too long reason is 22023.
SELECT * FROM pg_temp.fails($$ SELECT exchange.cancel_order('00000000-0000-0000-0000-000000000000') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.expire_order('00000000-0000-0000-0000-000000000000') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.cancel_order(NULL) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.cancel_order(pg_temp.id('open_buy')) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.expire_order(pg_temp.id('open_buy')) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.cancel_order(pg_temp.id('eod_later'), repeat('x', 257)) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.cancel_orders('00000000-0000-0000-0000-000000000000') $$);

-- Clean up the last live orders; everything ends unlocked.
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('ce_alice')) ORDER BY 1;
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('ce_bob')) ORDER BY 1;
SELECT "order", type, side, quantity, price, status, filled, avg_price, locked, filled_at, cancelled_at
  FROM pg_temp.orders();
SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();
