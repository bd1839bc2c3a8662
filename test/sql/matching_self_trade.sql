-- Matching engine, self-trade prevention (README "Matching engine", rule 4): when the next
-- crossing maker belongs to the taker's account, EXPIRE_MAKER expires that maker and goes on,
-- EXPIRE_TAKER expires the taker's remainder (earlier fills stay), EXPIRE_BOTH expires both,
-- ALLOW executes it as any other match.  The mode changes with set_market_matching while the
-- market is HALTED.
--
-- Numbers, by hand (fees 0; st_u has USDT 1000 and TST 10, st_o TST 10):
--   EXPIRE_MAKER: m1 u SELL 1 @ 100, m2 o SELL 1 @ 101; t1 u BUY 2 @ 101 (lock 202): m1 EXPIRED
--     (SELF_TRADE), m2 1 @ 101, t1 rests 1 PARTIAL (lock 101), then cancelled
--     u: USDT 899, TST 11; o: TST 9, USDT 101
--   EXPIRE_TAKER: m3 o 1 @ 100, m4 u 1 @ 100.5, m5 o 1 @ 101; t2 u BUY 3 @ 101: m3 1 @ 100,
--     then m4 is u's: t2 EXPIRED (SELF_TRADE) with 1 filled; m4 and m5 stay
--     u: USDT 799, TST 11 + 1 locked (m4); o: TST 7 + 1 locked (m5), USDT 201
--   EXPIRE_BOTH: t3 u BUY 2 @ 101: m4 first, u's: m4 and t3 EXPIRED, nothing executes
--     u: TST 12, nothing locked
--   ALLOW: m6 u SELL 1 @ 101 (after m5); t4 u BUY 2 @ 101: m5 1 @ 101, m6 1 @ 101, FILLED
--     u: USDT 799 - 202 + 101 = 698, TST 11 + 2 = 13; o: TST 7, USDT 302
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol, matching, self_trade
  FROM exchange.create_market('TST-USDT', 'TST', 'USDT', 0.01, 0.01, matching => 'INTERNAL');
SELECT pg_temp.trader('st_u'), pg_temp.trader('st_o');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('st_u'), 'USDT', 1000)
  UNION ALL SELECT exchange.deposit(pg_temp.id('st_u'), 'TST', 10)
  UNION ALL SELECT exchange.deposit(pg_temp.id('st_o'), 'TST', 10)) d;

-- EXPIRE_MAKER (the default)
SELECT pg_temp.label(order_id, 'm1') FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT pg_temp.label(order_id, 'm2') FROM exchange.place_order(pg_temp.id('st_o'), 'TST-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.skip();
SELECT pg_temp.label(order_id, 't1'), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 2, 101);
SELECT * FROM pg_temp.new_events();
SELECT status FROM exchange.cancel_order(pg_temp.id('t1'));
SELECT * FROM pg_temp.balances();

-- EXPIRE_TAKER
SELECT status FROM exchange.set_market_status('TST-USDT', 'HALTED');
SELECT matching, self_trade FROM exchange.set_market_matching('TST-USDT', 'INTERNAL', 'EXPIRE_TAKER');
SELECT status FROM exchange.set_market_status('TST-USDT', 'ACTIVE');
SELECT pg_temp.label(order_id, 'm3') FROM exchange.place_order(pg_temp.id('st_o'), 'TST-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT pg_temp.label(order_id, 'm4') FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'SELL', 'LIMIT', 1, 100.5);
SELECT pg_temp.label(order_id, 'm5') FROM exchange.place_order(pg_temp.id('st_o'), 'TST-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.skip();
SELECT pg_temp.label(order_id, 't2'), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 3, 101);
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.balances();

-- EXPIRE_BOTH
SELECT status FROM exchange.set_market_status('TST-USDT', 'HALTED');
SELECT matching, self_trade FROM exchange.set_market_matching('TST-USDT', 'INTERNAL', 'EXPIRE_BOTH');
SELECT status FROM exchange.set_market_status('TST-USDT', 'ACTIVE');
SELECT pg_temp.label(order_id, 't3'), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 2, 101);
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.o('m5');

-- ALLOW
SELECT status FROM exchange.set_market_status('TST-USDT', 'HALTED');
SELECT matching, self_trade FROM exchange.set_market_matching('TST-USDT', 'INTERNAL', 'ALLOW');
SELECT status FROM exchange.set_market_status('TST-USDT', 'ACTIVE');
SELECT pg_temp.label(order_id, 'm6') FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.skip();
SELECT pg_temp.label(order_id, 't4'), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 2, 101);
SELECT * FROM pg_temp.new_events();
SELECT t.seq, pg_temp.l(t.order_id) AS "order", pg_temp.l(t.account_id) AS account, t.side,
       t.quantity, t.price, t.liquidity
  FROM exchange.trades t WHERE t.symbol = 'TST-USDT' ORDER BY t.seq, t.side;
SELECT * FROM pg_temp.balances();

-- FOK counts the book as the mode treats it.
--   ALLOW: m7 u 1 @ 101, m8 o 1 @ 102; f1 u FOK BUY 2 @ 102 counts its own m7: FILLED.
--   EXPIRE_MAKER: m9 u 1 @ 101, m10 o 1 @ 102; f2 u FOK BUY 2 @ 102 skips m9 when counting:
--     1 < 2, EXPIRED (FOK), m9 stays; f3 u FOK BUY 1 @ 102: m10 suffices, so it executes:
--     m9 EXPIRED (SELF_TRADE), m10 1 @ 102, f3 FILLED.
--   EXPIRE_TAKER: m11 u 1 @ 101, m12 o 1 @ 100; f4 u FOK BUY 1 @ 101 completes on m12 before
--     reaching m11: FILLED; m13 o 1 @ 102; f5 u FOK BUY 2 @ 102 meets m11 first: EXPIRED (FOK),
--     nothing executes, m11 and m13 stay.
--   u: USDT 698 - (101 + 102) + 101 (m7's proceeds) - 102 - 100 = 394, TST 13 - 1 (m7) + 2 + 1 + 1
--     = 16 with 1 locked (m11); o: TST 7 - 3 = 4 with 1 locked (m13), USDT 302 + 102 + 102 + 100 = 606
SELECT status FROM exchange.set_market_status('TST-USDT', 'HALTED');
SELECT self_trade FROM exchange.set_market_matching('TST-USDT', 'INTERNAL', 'ALLOW');
SELECT status FROM exchange.set_market_status('TST-USDT', 'ACTIVE');
SELECT pg_temp.label(order_id, 'm7') FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.label(order_id, 'm8') FROM exchange.place_order(pg_temp.id('st_o'), 'TST-USDT', 'SELL', 'LIMIT', 1, 102);
SELECT pg_temp.label(order_id, 'f1'), status, filled_quantity
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 2, 102, 'FOK');

SELECT status FROM exchange.set_market_status('TST-USDT', 'HALTED');
SELECT self_trade FROM exchange.set_market_matching('TST-USDT', 'INTERNAL', 'EXPIRE_MAKER');
SELECT status FROM exchange.set_market_status('TST-USDT', 'ACTIVE');
SELECT pg_temp.label(order_id, 'm9') FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.label(order_id, 'm10') FROM exchange.place_order(pg_temp.id('st_o'), 'TST-USDT', 'SELL', 'LIMIT', 1, 102);
SELECT pg_temp.label(order_id, 'f2'), status, filled_quantity
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 2, 102, 'FOK');
SELECT * FROM pg_temp.o('m9');
SELECT pg_temp.label(order_id, 'f3'), status, filled_quantity
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 1, 102, 'FOK');
SELECT * FROM pg_temp.o('m9');

SELECT status FROM exchange.set_market_status('TST-USDT', 'HALTED');
SELECT self_trade FROM exchange.set_market_matching('TST-USDT', 'INTERNAL', 'EXPIRE_TAKER');
SELECT status FROM exchange.set_market_status('TST-USDT', 'ACTIVE');
SELECT pg_temp.label(order_id, 'm11') FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.label(order_id, 'm12') FROM exchange.place_order(pg_temp.id('st_o'), 'TST-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT pg_temp.label(order_id, 'f4'), status, filled_quantity
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 1, 101, 'FOK');
SELECT pg_temp.label(order_id, 'm13') FROM exchange.place_order(pg_temp.id('st_o'), 'TST-USDT', 'SELL', 'LIMIT', 1, 102);
SELECT pg_temp.label(order_id, 'f5'), status, filled_quantity
  FROM exchange.place_order(pg_temp.id('st_u'), 'TST-USDT', 'BUY', 'LIMIT', 2, 102, 'FOK');
SELECT "order", status, filled FROM pg_temp.orders() WHERE "order" ~ '^(m7|m8|m11|m12|m13|f)' ORDER BY 1;
SELECT * FROM pg_temp.balances();

SELECT * FROM exchange.check_invariants();
