-- Orders: place_order for every order type and side (README "Order lifecycle and arithmetic",
-- "Orders and trades").  LIMIT and MARKET start OPEN, STOP starts PENDING; a BUY locks
-- ceil8(quantity x price) of the quote asset (price is the protection price for MARKET and STOP
-- BUY), a SELL locks its quantity of the base asset.  After each step: the order, the balances,
-- and the journal, event and outbox rows it wrote.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

-- Setup: one market with a tick of 0.01, a lot of 0.001 and minimums; one with the defaults
-- (1e-8 tick and lot, no minimum).  Alice is ACTIVE and KYC-APPROVED, with funds in both assets.
SELECT symbol, base_asset, quote_asset, tick_size, lot_size, min_quantity, min_notional, status
  FROM exchange.create_market('OPL-USDT', 'OPL', 'USDT', 0.01, 0.001, 0.01, 10);
SELECT symbol, tick_size, lot_size, min_quantity, min_notional
  FROM exchange.create_market('OPX-USDT', 'OPX', 'USDT');
SELECT pg_temp.trader('op_alice');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('op_alice'), 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('op_alice'), 'OPL', 50);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('op_alice'), 'OPX', 1);
SELECT pg_temp.skip();

-- 1. LIMIT BUY 2 at 100.01: OPEN, GTC by default, locks 200.02 USDT.
SELECT pg_temp.label(order_id, 'limit_buy'), status, order_type, side, time_in_force,
       quantity, price, filled_quantity, average_price, lock_asset, locked_amount, reject_reason
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPL-USDT', 'BUY', 'LIMIT', 2, 100.01);
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 2. LIMIT SELL 3 at 150 with a client_order_id and metadata: locks 3 OPL.
SELECT pg_temp.label(order_id, 'limit_sell'), status, time_in_force, quantity, price,
       lock_asset, locked_amount, client_order_id, metadata
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPL-USDT', 'SELL', 'LIMIT', 3, 150,
                            client_order_id => 'op-sell-1', metadata => '{"source": "api"}');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 3. MARKET BUY 1 with protection price 120: IOC by default, locks the protection notional.
SELECT pg_temp.label(order_id, 'market_buy'), status, order_type, time_in_force, quantity,
       price, lock_asset, locked_amount
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPL-USDT', 'BUY', 'MARKET', 1, 120);
-- MARKET BUY FOK, explicitly.
SELECT pg_temp.label(order_id, 'market_buy_fok'), status, time_in_force, locked_amount
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPL-USDT', 'BUY', 'MARKET', 0.5, 110, 'FOK');
-- MARKET SELL without a price: min_notional (10) is not checked, so 0.05 OPL is accepted;
-- it locks 0.05 OPL.
SELECT pg_temp.label(order_id, 'market_sell'), status, time_in_force, quantity, price,
       lock_asset, locked_amount
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPL-USDT', 'SELL', 'MARKET', 0.05);
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 4. STOP orders start PENDING and lock at once.  A stop-limit BUY locks
-- ceil8(quantity x price); a stop-market SELL (no price) locks its quantity.  GTC by default.
-- PENDING is not in the book: no cache:book key.
SELECT pg_temp.label(order_id, 'stop_buy'), status, order_type, side, time_in_force,
       quantity, price, stop_price, lock_asset, locked_amount
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPL-USDT', 'BUY', 'STOP', 1.5, 131,
                            stop_price => 130);
SELECT * FROM pg_temp.new_outbox();
SELECT pg_temp.label(order_id, 'stop_sell'), status, order_type, side, time_in_force,
       quantity, price, stop_price, lock_asset, locked_amount
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPL-USDT', 'SELL', 'STOP', 1,
                            stop_price => 90);
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 5. The BUY lock is rounded up to 1e-8: 0.12345678 x 1.23456789 = 0.1524157763907942
-- locks 0.15241578.  Trailing zeros in inputs are fine.
SELECT pg_temp.label(order_id, 'ceil_buy'), status, quantity, price, locked_amount
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPX-USDT', 'BUY', 'LIMIT',
                            0.12345678, 1.2345678900);
-- A SELL of the whole available balance locks all of it.
SELECT pg_temp.label(order_id, 'all_sell'), status, quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('op_alice'), 'OPX-USDT', 'SELL', 'LIMIT', 1, 2);
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();

-- 6. Every order as stored.
SELECT * FROM pg_temp.orders();

-- 7. The read views: open_orders lists the live orders (PENDING too) with their remaining
-- quantity; order_book aggregates resting OPEN and PARTIAL orders that have a price, per level.
-- The open MARKET BUY orders (protection prices 110 and 120) are not price levels: a MARKET
-- order's price is only the most it may pay, so the book leaves them out.
SELECT pg_temp.l(order_id), symbol, side, order_type, status, remaining_quantity, locked_amount
  FROM exchange.open_orders
 WHERE account_id = pg_temp.id('op_alice')
 ORDER BY 1;
SELECT symbol, side, price, quantity, orders
  FROM exchange.order_book
 WHERE symbol IN ('OPL-USDT', 'OPX-USDT')
 ORDER BY 1, 2, 3;

-- Locked balances equal the live orders' locks.
SELECT b.asset, b.locked, sum(o.locked) AS orders_lock
  FROM pg_temp.balances() b
  JOIN pg_temp.orders() o ON o.account = b.account AND o.lock_asset = b.asset
 GROUP BY 1, 2 ORDER BY 1;

SELECT * FROM exchange.check_invariants();
