-- Matching engine, a book deeper than one load (README "Matching engine", rule 1): the engine
-- reads the resting orders a taker can reach a chunk at a time (64 orders, whole price levels);
-- the sweep must still take them best price first and, within a level, by book_seq.
--
-- Numbers, by hand: 150 asks of 1 at 100 + (i mod 30) for i = 1..150 (30 levels of 5, placed in
-- the order of i); BUY 140 @ 200 takes the 28 levels 100..127 whole: notional
-- 5 x (100 + ... + 127) = 5 x 3178 = 15890; levels 128 and 129 stay.  150 bids of 1 at
-- 50 - (i mod 30): MARKET SELL 100 without price takes the 20 levels 50 down to 31:
-- 5 x (50 + ... + 31) = 5 x 810 = 4050.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('TDB-USDT', 'TDB', 'USDT', 1, 1, matching => 'INTERNAL');
SELECT pg_temp.trader('db_s'), pg_temp.trader('db_b');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('db_s'), 'TDB', 1000)
  UNION ALL SELECT exchange.deposit(pg_temp.id('db_s'), 'USDT', 100000)
  UNION ALL SELECT exchange.deposit(pg_temp.id('db_b'), 'USDT', 100000)
  UNION ALL SELECT exchange.deposit(pg_temp.id('db_b'), 'TDB', 1000)) d;
DO $$
BEGIN
	FOR i IN 1..150 LOOP
		PERFORM exchange.place_order(pg_temp.id('db_s'), 'TDB-USDT', 'SELL', 'LIMIT', 1, 100 + i % 30);
	END LOOP;
END $$;

SELECT status, filled_quantity, filled_value
  FROM exchange.place_order(pg_temp.id('db_b'), 'TDB-USDT', 'BUY', 'LIMIT', 140, 200);
-- the makers in execution order: prices never fall, and within a price book_seq rises
SELECT count(*) AS fills, sum(t.price) AS notional,
       bool_and(k.ok) AS price_time_priority
  FROM exchange.trades t
  JOIN exchange.orders o ON o.order_id = t.order_id
  JOIN (SELECT t2.seq, coalesce((o2.price, o2.book_seq) > lag((o2.price, o2.book_seq)) OVER (ORDER BY t2.seq), true) AS ok
          FROM exchange.trades t2 JOIN exchange.orders o2 ON o2.order_id = t2.order_id
         WHERE t2.symbol = 'TDB-USDT' AND t2.liquidity = 'MAKER') k ON k.seq = t.seq
 WHERE t.symbol = 'TDB-USDT' AND t.liquidity = 'MAKER';
SELECT side, price, quantity, orders FROM exchange.order_book
 WHERE symbol = 'TDB-USDT' ORDER BY side, price;

DO $$
BEGIN
	FOR i IN 1..150 LOOP
		PERFORM exchange.place_order(pg_temp.id('db_s'), 'TDB-USDT', 'BUY', 'LIMIT', 1, 50 - i % 30);
	END LOOP;
END $$;
SELECT status, filled_quantity, filled_value
  FROM exchange.place_order(pg_temp.id('db_b'), 'TDB-USDT', 'SELL', 'MARKET', 100);
SELECT count(*) AS fills, sum(t.price) AS notional,
       bool_and(k.ok) AS price_time_priority
  FROM exchange.trades t
  JOIN (SELECT t2.seq, coalesce((-o2.price, o2.book_seq) > lag((-o2.price, o2.book_seq)) OVER (ORDER BY t2.seq), true) AS ok
          FROM exchange.trades t2 JOIN exchange.orders o2 ON o2.order_id = t2.order_id
         WHERE t2.symbol = 'TDB-USDT' AND t2.liquidity = 'MAKER' AND t2.side = 'BUY') k ON k.seq = t.seq
 WHERE t.symbol = 'TDB-USDT' AND t.liquidity = 'MAKER' AND t.side = 'BUY';
SELECT side, min(price), max(price), sum(quantity) FROM exchange.order_book
 WHERE symbol = 'TDB-USDT' GROUP BY side ORDER BY side;
SELECT last_price, trade_seq FROM exchange.markets WHERE symbol = 'TDB-USDT';

SELECT * FROM exchange.check_invariants();
