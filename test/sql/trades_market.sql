-- Trades: MARKET orders (README "Order lifecycle and arithmetic").  A MARKET BUY carries a
-- protection price, the most it may pay: it sizes the lock, ceil8(remaining x protection), and
-- a fill above it is LX006.  time_in_force defaults to IOC; the caller expires the remainder
-- with expire_order, which releases what is still locked.  A MARKET SELL without a price fills
-- at any price.
--
-- Numbers, by hand (MARKET BUY 2, protection 105, lock 210):
--   fill 1: 0.8 at 101     notional 80.8    lock 210 -> ceil8(1.2 x 105) = 126  refund 3.2
--   fill 2: 0.7 at 104.99  notional 73.493  lock 126 -> ceil8(0.5 x 105) = 52.5 refund 0.007
--   expire: 52.5 released.  average 154.293 / 1.5 = 102.862.  USDT: 1000 - 154.293 = 845.707
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('TMK-USDT', 'TMK', 'USDT', 0.01, 0.1);
SELECT pg_temp.trader('mk_alice');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('mk_alice'), 'USDT', 1000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('mk_alice'), 'TMK', 3);
SELECT pg_temp.skip();

-- 1. MARKET BUY 2 with protection price 105: IOC, 210 locked.
SELECT pg_temp.label(order_id, 'mbuy'), status, order_type, time_in_force, quantity, price, locked_amount
  FROM exchange.place_order(pg_temp.id('mk_alice'), 'TMK-USDT', 'BUY', 'MARKET', 2, 105);
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();

-- 2. 0.8 at 101.
SELECT pg_temp.label(trade_id, 'b1'), quantity, price, fee, fee_currency
  FROM exchange.apply_trade(pg_temp.id('mbuy'), 0.8, 101);
SELECT * FROM pg_temp.o('mbuy');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 3. Above the protection price: LX006, nothing changes.
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('mbuy'), 0.7, 105.01) $$);

-- 4. 0.7 at 104.99, just below the protection price.
SELECT pg_temp.label(trade_id, 'b2'), quantity, price, fee, fee_currency
  FROM exchange.apply_trade(pg_temp.id('mbuy'), 0.7, 104.99);
SELECT * FROM pg_temp.o('mbuy');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 5. The IOC remainder (0.5) is expired by the caller: EXPIRED, 52.5 released.
SELECT pg_temp.l(order_id), status, filled_quantity, average_price, locked_amount,
       cancelled_at IS NOT NULL AS cancelled_at, filled_at IS NOT NULL AS filled_at
  FROM exchange.expire_order(pg_temp.id('mbuy'), 'IOC remainder');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 6. A MARKET SELL without a price: 1 TMK locked, filled 0.4 at any price, the remainder
-- expired.
SELECT pg_temp.label(order_id, 'msell'), status, time_in_force, quantity, price, locked_amount
  FROM exchange.place_order(pg_temp.id('mk_alice'), 'TMK-USDT', 'SELL', 'MARKET', 1);
SELECT pg_temp.label(trade_id, 's1'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('msell'), 0.4, 0.01);
SELECT * FROM pg_temp.o('msell');
SELECT pg_temp.l(order_id), status, filled_quantity, locked_amount
  FROM exchange.expire_order(pg_temp.id('msell'));
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 7. A MARKET SELL with a price: the least it accepts; a fill below is LX006.
SELECT pg_temp.label(order_id, 'msell_floor'), status, quantity, price, locked_amount
  FROM exchange.place_order(pg_temp.id('mk_alice'), 'TMK-USDT', 'SELL', 'MARKET', 1, 99);
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('msell_floor'), 1, 98.99) $$);
SELECT pg_temp.label(trade_id, 's2'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('msell_floor'), 1, 99);
SELECT * FROM pg_temp.o('msell_floor');

-- 8. Malformed MARKET orders raise: no protection price (22023, with a hint), GTC (22023).
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('mk_alice'), 'TMK-USDT', 'BUY', 'MARKET', 1) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('mk_alice'), 'TMK-USDT', 'BUY', 'MARKET', 1, 100, 'GTC') $$);

SELECT "order", type, side, tif, quantity, price, status, filled, avg_price, locked FROM pg_temp.orders();
SELECT * FROM pg_temp.trades();
SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();
