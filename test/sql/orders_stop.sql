-- Orders: STOP orders (README "Order lifecycle and arithmetic").  A STOP order starts PENDING
-- with its funds locked; a BUY stop triggers when last_price >= stop_price, a SELL stop when
-- last_price <= stop_price; trigger_stop_orders() opens it (it keeps order_type STOP) and it
-- then fills like a LIMIT order (stop-limit, with a price) or without a price limit
-- (stop-market SELL).  A HALTED market triggers nothing; a PENDING stop cannot be filled.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('OST-USDT', 'OST', 'USDT', 0.01, 0.01);
SELECT symbol FROM exchange.create_market('OSH-USDT', 'OSH', 'USDT', 0.01, 0.01);
SELECT pg_temp.trader('st_alice');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('st_alice'), 'USDT', 1000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('st_alice'), 'OST', 10);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('st_alice'), 'OSH', 1);
SELECT pg_temp.skip();

-- 1. Four stops: a stop-limit BUY (stop 105, limit 110: locks 2 x 110 = 220 USDT), a
-- stop-limit SELL (stop 95, limit 94: locks 3 OST), a stop-market SELL (stop 90: locks 1 OST),
-- and a stop-limit BUY on another market.
SELECT pg_temp.label(order_id, 'stop_buy'), status, side, quantity, price, stop_price, locked_amount
  FROM exchange.place_order(pg_temp.id('st_alice'), 'OST-USDT', 'BUY', 'STOP', 2, 110,
                            stop_price => 105);
SELECT pg_temp.label(order_id, 'stop_sell'), status, side, quantity, price, stop_price, locked_amount
  FROM exchange.place_order(pg_temp.id('st_alice'), 'OST-USDT', 'SELL', 'STOP', 3, 94,
                            stop_price => 95);
SELECT pg_temp.label(order_id, 'stop_market_sell'), status, side, quantity, price, stop_price, locked_amount
  FROM exchange.place_order(pg_temp.id('st_alice'), 'OST-USDT', 'SELL', 'STOP', 1,
                            stop_price => 90);
SELECT pg_temp.label(order_id, 'other_market'), status, side, quantity, price, stop_price, locked_amount
  FROM exchange.place_order(pg_temp.id('st_alice'), 'OSH-USDT', 'BUY', 'STOP', 1, 101,
                            stop_price => 100);
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.skip();

-- 2. A PENDING stop cannot be filled (LX002, with a hint).
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('stop_buy'), 1, 105) $$);

-- 3. Last price 100: nothing triggers (BUY needs >= 105, SELL needs <= 95).
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('OST-USDT', 100);
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 4. Last price 105 reaches the BUY stop exactly: it opens, keeps its type, its price and its
-- lock; the event names the trigger price; the outbox row names the order and the book.
SELECT pg_temp.l(order_id), status, order_type, price, stop_price, locked_amount
  FROM exchange.trigger_stop_orders('OST-USDT', 105);
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();
-- Another trigger finds nothing: an OPEN stop is left unchanged.
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('OST-USDT', 200);
SELECT * FROM pg_temp.new_events();

-- 5. The triggered BUY fills like a LIMIT order: not above 110 (LX006), then 2 at 108:
-- notional 216, the lock of 220 is released, 4 come back.
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('stop_buy'), 2, 110.01) $$);
SELECT pg_temp.label(trade_id, 't_stop_buy'), side, quantity, price, fee, fee_currency
  FROM exchange.apply_trade(pg_temp.id('stop_buy'), 2, 108);
SELECT * FROM pg_temp.o('stop_buy');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 6. Last price 95.5: the SELL stops (95 and 90) do not trigger.  95: the stop-limit SELL
-- opens (<= is inclusive), the stop-market one does not.
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('OST-USDT', 95.5);
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('OST-USDT', 95);
SELECT * FROM pg_temp.new_events();
-- It fills not below its limit 94 (LX006), then 1 at 94 and 2 at 94.5.
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('stop_sell'), 1, 93.99) $$);
SELECT pg_temp.label(trade_id, 't_stop_sell_1'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('stop_sell'), 1, 94);
SELECT * FROM pg_temp.o('stop_sell');
SELECT pg_temp.label(trade_id, 't_stop_sell_2'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('stop_sell'), 2, 94.5);
SELECT * FROM pg_temp.o('stop_sell');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 7. Last price 80 opens the stop-market SELL; having no price, it fills at any price.
SELECT pg_temp.l(order_id), status, price FROM exchange.trigger_stop_orders('OST-USDT', 80);
SELECT pg_temp.label(trade_id, 't_stop_market'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('stop_market_sell'), 1, 0.01);
SELECT * FROM pg_temp.o('stop_market_sell');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 8. A HALTED market triggers nothing, whatever the price; its stop stays PENDING and can
-- still be cancelled (its lock released).  The other market was never touched.
SELECT symbol, status FROM exchange.set_market_status('OSH-USDT', 'HALTED');
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('OSH-USDT', 1000);
SELECT * FROM pg_temp.o('other_market');
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();
SELECT pg_temp.l(order_id), status, locked_amount FROM exchange.cancel_order(pg_temp.id('other_market'));
SELECT symbol, status FROM exchange.set_market_status('OSH-USDT', 'ACTIVE');
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('OSH-USDT', 1000);

-- 9. Unknown market: LX003.  Bad last_price: 22023, NULL: 22004.
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.trigger_stop_orders('NOPE-USDT', 1) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.trigger_stop_orders('OST-USDT', 0) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.trigger_stop_orders('OST-USDT', NULL) $$);

-- Final state: every stop ended, nothing locked; each order's events replay to its status.
SELECT "order", type, side, price, stop_price, status, filled, avg_price, locked, filled_at, cancelled_at
  FROM pg_temp.orders();
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM exchange.check_invariants();
