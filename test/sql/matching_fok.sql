-- Matching engine, FOK judged on the book as the call leaves it (README "Matching engine",
-- rule 3: a FOK order executes completely or not at all, reason FOK; rule 5: a triggered
-- stop-limit FOK is judged when its turn to match comes).
--
-- Numbers, by hand (tick 0.01, lot 0.01, fees 0, default EXPIRE_MAKER):
-- Case 1, market MFA-USDT, a maker partly filled earlier in the same call:
--   f1 BUY LIMIT 1 @ 10 rests (lock 10 USDT)
--   f2 SELL STOP 0.7, limit 9, FOK, stop 10: PENDING (last_price NULL)
--   f3 SELL LIMIT 0.6 @ 10: 0.6 @ 10 against f1 (seq 1), last_price 10 triggers f2;
--      f2 needs 0.7 at >= 9, f1 has 1 - 0.6 = 0.4 left: f2 EXPIRED (FOK), filled 0;
--      one trade only, f1 PARTIAL 0.6 of 1.  (f3 loaded the bids down to its limit 10; f2's
--      judgement loads the next range, 9 to 10, and must count f1's 0.4 once, not again.)
--   fa_s: MFA 10 - 0.6 = 9.4, USDT 0 + 6 = 6; fa_b: MFA 0.6, USDT 100 - 6 = 94 (4 locked by f1);
--   fa_t: MFA 10, untouched (its lock of 0.7 released)
-- Case 2, market TFB-USDT, a FOK that needs more than one chunk of the book:
--   fb_b: 70 bids of 1 at 10.01, 10.02, ..., 10.70 (70 levels, locks 10.01 + ... + 10.70
--      = 70 x 10.355 = 724.85 USDT)
--   fb_s: MARKET SELL 71 FOK without price: 70 < 71, EXPIRED (FOK), filled 0, no trade;
--      all 70 bids stay
--   fb_s: MARKET SELL 70 FOK without price: all 70 bids, best first: 70 trades, FILLED,
--      average (724.85 / 70) = 10.355, trade seqs 1..70, last_price 10.01 (the worst bid);
--      fb_s USDT 0 + 724.85, TFB 100 - 70 = 30; fb_b USDT 1000 - 724.85 = 275.15, TFB 70
-- Case 3, market TFC-USDT under EXPIRE_TAKER, self-trade counted past the first chunk:
--   fc_b: 65 bids of 1 at 20.01 ... 20.65 (65 x 20.33 = 1321.45), then 5 at 19.91 ... 19.95
--      (5 x 19.93 = 99.65); fc_s: its own bid of 1 at 20.00 (lock 20), 66th in priority
--   fc_s: MARKET SELL 67 FOK: it would meet its own bid after 65, which expires the taker:
--      EXPIRED (FOK), nothing executed, all 71 bids stay (71 levels)
--   fc_s: MARKET SELL 65 FOK: complete before its own bid: FILLED, 65 trades, average 20.33,
--      last_price 20.01, trade_seq 65; 6 levels stay (20.00 and the 5 below)
--   fc_s: TFC 100 - 65 = 35, USDT 1321.45 available + 20 locked = 1341.45;
--   fc_b: TFC 65, USDT 1500 - 1321.45 = 178.55, of which 99.65 locked: 78.90 available
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

-- Case 1: a triggered FOK stop sees the maker as the earlier execution left it.
SELECT symbol, matching FROM exchange.create_market('MFA-USDT', 'MFA', 'USDT', 0.01, 0.01,
                                                    matching => 'INTERNAL');
SELECT pg_temp.trader('fa_s'), pg_temp.trader('fa_b'), pg_temp.trader('fa_t');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('fa_s'), 'MFA', 10)
  UNION ALL SELECT exchange.deposit(pg_temp.id('fa_b'), 'USDT', 100)
  UNION ALL SELECT exchange.deposit(pg_temp.id('fa_t'), 'MFA', 10)) d;
SELECT pg_temp.label(order_id, 'f1') FROM exchange.place_order(pg_temp.id('fa_b'), 'MFA-USDT', 'BUY', 'LIMIT', 1, 10);
SELECT pg_temp.label(order_id, 'f2'), status
  FROM exchange.place_order(pg_temp.id('fa_t'), 'MFA-USDT', 'SELL', 'STOP', 0.7, 9, 'FOK', stop_price => 10);
SELECT pg_temp.skip();
SELECT pg_temp.label(order_id, 'f3'), status, filled_quantity
  FROM exchange.place_order(pg_temp.id('fa_s'), 'MFA-USDT', 'SELL', 'LIMIT', 0.6, 10);
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.o('f1');
SELECT * FROM pg_temp.o('f2');
SELECT t.seq, pg_temp.l(t.order_id) AS "order", t.side, t.quantity, t.price, t.liquidity
  FROM exchange.trades t WHERE t.symbol = 'MFA-USDT' ORDER BY t.seq, t.side;
SELECT * FROM pg_temp.balances();

-- Case 2: a FOK judged over more than one chunk of the book.
SELECT symbol, matching FROM exchange.create_market('TFB-USDT', 'TFB', 'USDT', 0.01, 0.01,
                                                    matching => 'INTERNAL');
SELECT pg_temp.trader('fb_s'), pg_temp.trader('fb_b');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('fb_s'), 'TFB', 100)
  UNION ALL SELECT exchange.deposit(pg_temp.id('fb_b'), 'USDT', 1000)) d;
SELECT count(*) AS placed, sum(p.price) AS bids
  FROM generate_series(1, 70) i,
       LATERAL exchange.place_order(pg_temp.id('fb_b'), 'TFB-USDT', 'BUY', 'LIMIT', 1,
                                    10 + i * 0.01) p;
SELECT pg_temp.skip();
SELECT pg_temp.label(order_id, 'k1'), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('fb_s'), 'TFB-USDT', 'SELL', 'MARKET', 71, NULL, 'FOK');
SELECT * FROM pg_temp.new_events();
SELECT count(*) AS trades FROM exchange.trades WHERE symbol = 'TFB-USDT';
SELECT count(*) AS resting, sum(quantity) FROM exchange.order_book WHERE symbol = 'TFB-USDT';
SELECT pg_temp.label(order_id, 'k2'), status, filled_quantity, average_price
  FROM exchange.place_order(pg_temp.id('fb_s'), 'TFB-USDT', 'SELL', 'MARKET', 70, NULL, 'FOK');
SELECT count(*) AS trades, sum(quantity * price) / 2 AS notional, min(seq), max(seq)
  FROM exchange.trades WHERE symbol = 'TFB-USDT';
SELECT count(*) AS resting FROM exchange.order_book WHERE symbol = 'TFB-USDT';
SELECT * FROM pg_temp.balances() WHERE account LIKE 'fb%';

-- Case 3: self-trade prevention counted as the sweep meets it, past the first chunk.
SELECT symbol, matching FROM exchange.create_market('TFC-USDT', 'TFC', 'USDT', 0.01, 0.01,
                                                    matching => 'INTERNAL');
SELECT status FROM exchange.set_market_status('TFC-USDT', 'HALTED');
SELECT matching, self_trade FROM exchange.set_market_matching('TFC-USDT', 'INTERNAL', 'EXPIRE_TAKER');
SELECT status FROM exchange.set_market_status('TFC-USDT', 'ACTIVE');
SELECT pg_temp.trader('fc_s'), pg_temp.trader('fc_b');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('fc_s'), 'TFC', 100)
  UNION ALL SELECT exchange.deposit(pg_temp.id('fc_s'), 'USDT', 20)
  UNION ALL SELECT exchange.deposit(pg_temp.id('fc_b'), 'USDT', 1500)) d;
SELECT count(*) AS placed, sum(p.price) AS bids
  FROM generate_series(1, 65) i,
       LATERAL exchange.place_order(pg_temp.id('fc_b'), 'TFC-USDT', 'BUY', 'LIMIT', 1,
                                    20 + i * 0.01) p;
SELECT count(*) AS placed, sum(p.price) AS bids
  FROM generate_series(1, 5) i,
       LATERAL exchange.place_order(pg_temp.id('fc_b'), 'TFC-USDT', 'BUY', 'LIMIT', 1,
                                    19.9 + i * 0.01) p;
SELECT pg_temp.label(order_id, 'own') FROM exchange.place_order(pg_temp.id('fc_s'), 'TFC-USDT', 'BUY', 'LIMIT', 1, 20);
SELECT pg_temp.skip();
SELECT pg_temp.label(order_id, 'k3'), status, filled_quantity
  FROM exchange.place_order(pg_temp.id('fc_s'), 'TFC-USDT', 'SELL', 'MARKET', 67, NULL, 'FOK');
SELECT * FROM pg_temp.new_events();
SELECT count(*) AS trades FROM exchange.trades WHERE symbol = 'TFC-USDT';
SELECT count(*) AS resting, sum(quantity) FROM exchange.order_book WHERE symbol = 'TFC-USDT';
SELECT pg_temp.label(order_id, 'k4'), status, filled_quantity, average_price
  FROM exchange.place_order(pg_temp.id('fc_s'), 'TFC-USDT', 'SELL', 'MARKET', 65, NULL, 'FOK');
SELECT count(*) AS trades, sum(quantity * price) / 2 AS notional
  FROM exchange.trades WHERE symbol = 'TFC-USDT';
SELECT count(*) AS resting FROM exchange.order_book WHERE symbol = 'TFC-USDT';
SELECT * FROM pg_temp.o('own');
SELECT * FROM pg_temp.balances() WHERE account LIKE 'fc%';
SELECT symbol, last_price, trade_seq FROM exchange.markets
 WHERE symbol IN ('MFA-USDT', 'TFB-USDT', 'TFC-USDT') ORDER BY symbol;

SELECT * FROM exchange.check_invariants();
