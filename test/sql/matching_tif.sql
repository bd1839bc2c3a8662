-- Matching engine, time in force (README "Matching engine", rule 3): an IOC remainder and a
-- MARKET remainder expire in the same call (reason IOC); a MARKET BUY takes asks up to its
-- protection price only; a FOK order executes completely or not at all (reason FOK), leaving
-- the book as it was; a MARKET SELL without a price takes any bid.
--
-- Numbers, by hand (tick 0.01, lot 0.01, fees 0):
--   asks a1 1 @ 100, a2 1 @ 101, a3 1 @ 105 (account ft_s)
--   t1 IOC BUY 1.5 @ 100.5: lock ceil8(1.5 x 100.5) = 150.75; a1 1 @ 100, lock -> 50.25
--      (refund 0.5); remainder 0.5 EXPIRED (IOC), releasing 50.25; b USDT 1000 - 100 = 900
--   t2 MARKET BUY 1.5, protection 103: lock 154.5; a2 1 @ 101, lock -> 51.5; a3 at 105 is
--      beyond 103; remainder EXPIRED (IOC); b USDT 900 - 101 = 799
--   t3 FOK BUY 2 @ 105: only a3 (1) crosses: EXPIRED (FOK), nothing executes, a3 untouched
--   a4 1 @ 104, then t4 FOK BUY 2 @ 105: a4 1 @ 104, a3 1 @ 105, FILLED; b USDT 799 - 209 = 590
--   bids c1 1 @ 90, c2 1 @ 95 (ft_s); t5 MARKET SELL 3 without price by b: c2 1 @ 95, c1 1 @ 90,
--      remainder 1 EXPIRED (IOC); b TMT 4 - 2 = 2, USDT 590 + 185 = 775
--   ft_s: TMT 10 - 4 + 2 = 8, USDT 500 + 410 - 185 = 725
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol, matching FROM exchange.create_market('TMT-USDT', 'TMT', 'USDT', 0.01, 0.01,
                                                    matching => 'INTERNAL');
SELECT pg_temp.trader('ft_s'), pg_temp.trader('ft_b');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('ft_s'), 'TMT', 10)
  UNION ALL SELECT exchange.deposit(pg_temp.id('ft_s'), 'USDT', 500)
  UNION ALL SELECT exchange.deposit(pg_temp.id('ft_b'), 'USDT', 1000)) d;
SELECT pg_temp.label(order_id, 'a1') FROM exchange.place_order(pg_temp.id('ft_s'), 'TMT-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT pg_temp.label(order_id, 'a2') FROM exchange.place_order(pg_temp.id('ft_s'), 'TMT-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.label(order_id, 'a3') FROM exchange.place_order(pg_temp.id('ft_s'), 'TMT-USDT', 'SELL', 'LIMIT', 1, 105);
SELECT pg_temp.skip();

-- IOC: the remainder expires in the call.
SELECT pg_temp.label(order_id, 't1'), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('ft_b'), 'TMT-USDT', 'BUY', 'LIMIT', 1.5, 100.5, 'IOC');
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.balances();

-- MARKET BUY: up to its protection price, the rest expires.
SELECT pg_temp.label(order_id, 't2'), status, time_in_force, filled_quantity, average_price
  FROM exchange.place_order(pg_temp.id('ft_b'), 'TMT-USDT', 'BUY', 'MARKET', 1.5, 103);
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.balances();

-- FOK not fillable: nothing executes, the book is as it was.
SELECT pg_temp.label(order_id, 't3'), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('ft_b'), 'TMT-USDT', 'BUY', 'LIMIT', 2, 105, 'FOK');
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.o('a3');

-- FOK fillable: all of it, over two levels.
SELECT pg_temp.label(order_id, 'a4') FROM exchange.place_order(pg_temp.id('ft_s'), 'TMT-USDT', 'SELL', 'LIMIT', 1, 104);
SELECT pg_temp.label(order_id, 't4'), status, filled_quantity, average_price, locked_amount
  FROM exchange.place_order(pg_temp.id('ft_b'), 'TMT-USDT', 'BUY', 'LIMIT', 2, 105, 'FOK');
SELECT t.seq, pg_temp.l(t.order_id) AS "order", t.side, t.quantity, t.price, t.liquidity
  FROM exchange.trades t WHERE t.symbol = 'TMT-USDT' ORDER BY t.seq, t.side;

-- MARKET SELL without a price: any bid, best first.
SELECT pg_temp.label(order_id, 'c1') FROM exchange.place_order(pg_temp.id('ft_s'), 'TMT-USDT', 'BUY', 'LIMIT', 1, 90);
SELECT pg_temp.label(order_id, 'c2') FROM exchange.place_order(pg_temp.id('ft_s'), 'TMT-USDT', 'BUY', 'LIMIT', 1, 95);
SELECT pg_temp.skip();
SELECT pg_temp.label(order_id, 't5'), status, filled_quantity, average_price, locked_amount
  FROM exchange.place_order(pg_temp.id('ft_b'), 'TMT-USDT', 'SELL', 'MARKET', 3);
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.balances();
SELECT count(*) AS resting FROM exchange.order_book WHERE symbol = 'TMT-USDT';
SELECT last_price, trade_seq FROM exchange.markets WHERE symbol = 'TMT-USDT';

SELECT * FROM exchange.check_invariants();
