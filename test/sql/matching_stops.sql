-- Matching engine, stops (README "Matching engine", rule 5): at the end of every place_order on
-- an INTERNAL market, the PENDING stops whose condition holds at the last price trigger (a fresh
-- book_seq) and are matched as takers; each execution may trigger the next round.  A stop placed
-- with its condition already true triggers in its own call; a SELL stop without a price is a
-- market sell.
--
-- Numbers, by hand (fees 0): sp_mm asks k1 1 @ 101, k2 1 @ 102, k3 1 @ 103 and bid k4 1 @ 99;
--   x BUY STOP 1, stop 101, limit 102 (lock 102); y BUY STOP 1, stop 102, limit 103 (lock 103):
--   both stay PENDING while the market has no last price.
--   z1 BUY 1 @ 101 takes k1 (seq 1 at 101) -> round 1: x triggers (101 >= 101) and takes k2
--   (seq 2 at 102) -> round 2: y triggers (102 >= 102) and takes k3 (seq 3 at 103) -> round 3
--   at 103 triggers nothing.  x and y rank by trigger time: a book_seq above z1's.
--   z2 SELL STOP 1, stop 105, no price: 103 <= 105 holds at once, so it triggers in its own
--   call and sells as a market order into the best bid k4 (seq 4 at 99).
--   Balances: mm TSP 10 - 3 + 1 = 8, USDT 2000 + 101 + 102 + 103 - 99 = 2207; x USDT 98, TSP 1;
--   y USDT 97, TSP 1; z USDT 200 - 101 + 99 = 198, TSP 0.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol, matching FROM exchange.create_market('TSP-USDT', 'TSP', 'USDT', 0.01, 0.01,
                                                    matching => 'INTERNAL');
SELECT pg_temp.trader('sp_mm'), pg_temp.trader('sp_x'), pg_temp.trader('sp_y'),
       pg_temp.trader('sp_z');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('sp_mm'), 'TSP', 10)
  UNION ALL SELECT exchange.deposit(pg_temp.id('sp_mm'), 'USDT', 2000)
  UNION ALL SELECT exchange.deposit(pg_temp.id('sp_x'), 'USDT', 200)
  UNION ALL SELECT exchange.deposit(pg_temp.id('sp_y'), 'USDT', 200)
  UNION ALL SELECT exchange.deposit(pg_temp.id('sp_z'), 'USDT', 200)) d;
SELECT pg_temp.label(order_id, 'k1') FROM exchange.place_order(pg_temp.id('sp_mm'), 'TSP-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.label(order_id, 'k2') FROM exchange.place_order(pg_temp.id('sp_mm'), 'TSP-USDT', 'SELL', 'LIMIT', 1, 102);
SELECT pg_temp.label(order_id, 'k3') FROM exchange.place_order(pg_temp.id('sp_mm'), 'TSP-USDT', 'SELL', 'LIMIT', 1, 103);
SELECT pg_temp.label(order_id, 'k4') FROM exchange.place_order(pg_temp.id('sp_mm'), 'TSP-USDT', 'BUY', 'LIMIT', 1, 99);
-- No last price yet: the stops wait.
SELECT pg_temp.label(order_id, 'x'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('sp_x'), 'TSP-USDT', 'BUY', 'STOP', 1, 102, stop_price => 101);
SELECT pg_temp.label(order_id, 'y'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('sp_y'), 'TSP-USDT', 'BUY', 'STOP', 1, 103, stop_price => 102);
SELECT pg_temp.skip();

-- z1's execution at 101 triggers x, whose execution at 102 triggers y: one call.
SELECT pg_temp.label(order_id, 'z1'), status, filled_quantity
  FROM exchange.place_order(pg_temp.id('sp_z'), 'TSP-USDT', 'BUY', 'LIMIT', 1, 101);
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.o('x');
SELECT * FROM pg_temp.o('y');
SELECT pg_temp.l(order_id) AS "order",
       book_seq > (SELECT book_seq FROM exchange.orders WHERE order_id = pg_temp.id('z1'))
         AS ranks_by_trigger
  FROM exchange.orders WHERE order_id IN (pg_temp.id('x'), pg_temp.id('y')) ORDER BY 1;

-- A SELL stop whose condition already holds triggers in its own call and sells into k4.
SELECT pg_temp.label(order_id, 'z2'), status, filled_quantity, average_price
  FROM exchange.place_order(pg_temp.id('sp_z'), 'TSP-USDT', 'SELL', 'STOP', 1, stop_price => 105);
SELECT * FROM pg_temp.new_events();
SELECT t.seq, pg_temp.l(t.order_id) AS "order", t.side, t.quantity, t.price, t.liquidity
  FROM exchange.trades t WHERE t.symbol = 'TSP-USDT' ORDER BY t.seq, t.side;
SELECT * FROM pg_temp.balances();
SELECT last_price, trade_seq FROM exchange.markets WHERE symbol = 'TSP-USDT';

-- A taker that rests can be the maker of a stop its own execution triggered, in one call:
-- k5 mm SELL 1 @ 95; x SELL STOP 1, stop 96, no price (PENDING at 99); z3 BUY 2 @ 95 takes k5
-- (seq 5 at 95), rests 1 at 95; the round at 95 triggers x, which sells into z3 (seq 6, z3 the
-- MAKER).  z3 returns FILLED.  z: USDT 198 - 190 = 8, TSP 2; x: TSP 0, USDT 98 + 95 = 193;
-- mm: TSP 7, USDT 2207 + 95 = 2302.
SELECT pg_temp.label(order_id, 'k5') FROM exchange.place_order(pg_temp.id('sp_mm'), 'TSP-USDT', 'SELL', 'LIMIT', 1, 95);
SELECT pg_temp.label(order_id, 'x2'), status
  FROM exchange.place_order(pg_temp.id('sp_x'), 'TSP-USDT', 'SELL', 'STOP', 1, stop_price => 96);
SELECT pg_temp.skip();
SELECT pg_temp.label(order_id, 'z3'), status, filled_quantity, average_price, locked_amount
  FROM exchange.place_order(pg_temp.id('sp_z'), 'TSP-USDT', 'BUY', 'LIMIT', 2, 95);
SELECT * FROM pg_temp.new_events();
SELECT t.seq, pg_temp.l(t.order_id) AS "order", t.side, t.quantity, t.price, t.liquidity
  FROM exchange.trades t WHERE t.symbol = 'TSP-USDT' AND t.seq > 4 ORDER BY t.seq, t.side;
SELECT * FROM pg_temp.balances();

SELECT * FROM exchange.check_invariants();
