-- Market data (README "Market data"): order_book_depth, ticker and candles over the book and the
-- trades of EXTERNAL markets.  An execution is one apply_trade fill (match_id NULL) or one
-- apply_match (two trades, counted once).  Depth aggregates the resting OPEN and PARTIAL orders
-- per price level (remaining quantity), best first, without MARKET orders; the ticker's last
-- price is the newest execution, its 24-hour figures cover (now() - 24 h, now()]; candles cover
-- [since, until) in buckets aligned to the epoch and omit empty ones.  Times are controlled
-- through apply_trade's executed_at (apply_match executes at now()).
--
-- Numbers, by hand.
--   Book of MDA-USDT: BUY 1 @ 99, 2 @ 99, 1.5 @ 98, 3 @ 97, MARKET BUY 1 (protection 150, left
--   out); SELL 1 @ 101 filled 0.25 (PARTIAL), 0.5 @ 101, 2 @ 102, 4 @ 105, a cancelled SELL @ 100
--   and a PENDING stop SELL (left out).
--     BUY 99 = 3 (2 orders), 98 = 1.5, 97 = 3; SELL 101 = 0.75 + 0.5 = 1.25 (2 orders), 102 = 2,
--     105 = 4.  levels 2: BUY 99, 98; SELL 101, 102.
--   Executions of MDA-USDT (xb BUY 10 @ 110, xs SELL 10 @ 95; age = before now()):
--     e0 s1 0.25 @ 101 30 h   e2 xb 2 @ 104 26 h   e7 xs 1.5 @ 96 25 h      (outside 24 h)
--     e1 xs 1 @ 100 23 h      e5 xs 0.5 @ 98 2 h   e4 xb 1 @ 106 1 h
--     m3 match 3 @ 103, then m6 match 4 @ 102 (both at now(), m6 last)
--     24 h: open 100 (e1), high 106, low 98, volume 1 + 0.5 + 1 + 3 + 4 = 9.5,
--     quote 100 + 49 + 106 + 309 + 408 = 972, 5 executions; last 102 (m6).
--     xb: 2 + 1 + 3 + 4 = 10 FILLED; xs: 1 + 0.5 + 1.5 + 3 + 4 = 10 FILLED.
--   Candles of MDC-USDT (fills of one BUY 20 @ 200, fixed times on 2026-01-05 UTC):
--     t7 09:59:59 90 x 1, t1 10:00:10 100 x 1, t2 10:00:40 105 x 2, t3 10:01:30 95 x 1,
--     t4 10:03:05 110 x 0.5, t5 10:04:59 108 x 1.5, t6 10:05:00 112 x 1, t8 10:20:00 120 x 2
--     1 minute [10:00, 10:20): 10:00 100/105/100/105 v 3 q 310 n 2; 10:01 95 v 1 q 95;
--       (10:02 empty); 10:03 110 v 0.5 q 55; 10:04 108 v 1.5 q 162; 10:05 112 v 1 q 112
--     5 minutes [10:00, 10:20): 10:00 100/110/95/108 v 6 q 622 n 5; 10:05 112 v 1 q 112 n 1
--       (10:10 and 10:15 empty)
--     1 day [2026-01-05, 2026-01-06): 90/120/90/120 v 10 q 1064 n 8
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all
SET timezone = 'UTC';

SELECT symbol FROM exchange.create_market('MDA-USDT', 'MDA', 'USDT', 0.01, 0.01);
SELECT symbol FROM exchange.create_market('MDB-USDT', 'MDB', 'USDT', 0.01, 0.01);
SELECT symbol FROM exchange.create_market('MDC-USDT', 'MDC', 'USDT', 0.01, 0.01);
SELECT pg_temp.trader('md_buyer');
SELECT pg_temp.trader('md_seller');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('md_buyer'), 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('md_seller'), 'MDA', 100);

-- 1. The book.
SELECT pg_temp.label(order_id, 'b1'), status
  FROM exchange.place_order(pg_temp.id('md_buyer'), 'MDA-USDT', 'BUY', 'LIMIT', 1, 99);
SELECT pg_temp.label(order_id, 'b2'), status
  FROM exchange.place_order(pg_temp.id('md_buyer'), 'MDA-USDT', 'BUY', 'LIMIT', 2, 99);
SELECT pg_temp.label(order_id, 'b3'), status
  FROM exchange.place_order(pg_temp.id('md_buyer'), 'MDA-USDT', 'BUY', 'LIMIT', 1.5, 98);
SELECT pg_temp.label(order_id, 'b4'), status
  FROM exchange.place_order(pg_temp.id('md_buyer'), 'MDA-USDT', 'BUY', 'LIMIT', 3, 97);
SELECT pg_temp.label(order_id, 'bm'), status, order_type, price
  FROM exchange.place_order(pg_temp.id('md_buyer'), 'MDA-USDT', 'BUY', 'MARKET', 1, 150, 'IOC');
SELECT pg_temp.label(order_id, 's1'), status
  FROM exchange.place_order(pg_temp.id('md_seller'), 'MDA-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.label(order_id, 's2'), status
  FROM exchange.place_order(pg_temp.id('md_seller'), 'MDA-USDT', 'SELL', 'LIMIT', 0.5, 101);
SELECT pg_temp.label(order_id, 's3'), status
  FROM exchange.place_order(pg_temp.id('md_seller'), 'MDA-USDT', 'SELL', 'LIMIT', 2, 102);
SELECT pg_temp.label(order_id, 's4'), status
  FROM exchange.place_order(pg_temp.id('md_seller'), 'MDA-USDT', 'SELL', 'LIMIT', 4, 105);
SELECT pg_temp.label(order_id, 'sc'), status
  FROM exchange.place_order(pg_temp.id('md_seller'), 'MDA-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT status FROM exchange.cancel_order(pg_temp.id('sc'));
SELECT pg_temp.label(order_id, 'sstop'), status
  FROM exchange.place_order(pg_temp.id('md_seller'), 'MDA-USDT', 'SELL', 'STOP', 1, 90,
							stop_price => 95);
-- e0: s1 partly filled 30 hours ago (outside the ticker's window).
SELECT pg_temp.label(trade_id, 'e0'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('s1'), 0.25, 101, executed_at => now() - interval '30 hours');
SELECT * FROM pg_temp.o('s1');

-- Every level, best first on each side: BUY 99, 98, 97; SELL 101 (s1's remainder and s2), 102,
-- 105.  Neither the MARKET order's protection price, nor the cancelled or the PENDING order.
SELECT * FROM exchange.order_book_depth('MDA-USDT');
-- levels caps each side.
SELECT * FROM exchange.order_book_depth('MDA-USDT', 2);
SELECT * FROM exchange.order_book_depth('MDA-USDT', levels => 1);
-- An empty book.
SELECT count(*) FROM exchange.order_book_depth('MDB-USDT');

-- 2. Executions in and out of the last 24 hours, through apply_trade and apply_match.
SELECT pg_temp.label(order_id, 'xb'), status
  FROM exchange.place_order(pg_temp.id('md_buyer'), 'MDA-USDT', 'BUY', 'LIMIT', 10, 110);
SELECT pg_temp.label(order_id, 'xs'), status
  FROM exchange.place_order(pg_temp.id('md_seller'), 'MDA-USDT', 'SELL', 'LIMIT', 10, 95);
SELECT pg_temp.label(trade_id, 'e1'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('xs'), 1, 100, executed_at => now() - interval '23 hours');
SELECT pg_temp.label(trade_id, 'e2'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('xb'), 2, 104, executed_at => now() - interval '26 hours');
SELECT pg_temp.label(trade_id, 'm3_' || lower(side)), quantity, price
  FROM exchange.apply_match(pg_temp.id('xb'), pg_temp.id('xs'), 3, 103);
SELECT pg_temp.label(trade_id, 'e4'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('xb'), 1, 106, executed_at => now() - interval '1 hour');
SELECT pg_temp.label(trade_id, 'e5'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('xs'), 0.5, 98, executed_at => now() - interval '2 hours');
SELECT pg_temp.label(trade_id, 'e7'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('xs'), 1.5, 96, executed_at => now() - interval '25 hours');
SELECT pg_temp.label(trade_id, 'm6_' || lower(side)), quantity, price
  FROM exchange.apply_match(pg_temp.id('xb'), pg_temp.id('xs'), 4, 102);
SELECT * FROM pg_temp.o('xb');
SELECT * FROM pg_temp.o('xs');

-- The ticker: last 102 (m6, the newest execution), best bid 99 and ask 101 (xb and xs are
-- FILLED), open 100 (e1), high 106, low 98, volume 9.5, quote volume 972, 5 executions (each
-- match once); updated_at is m6's time.  MDB-USDT: nothing traded, nothing resting.
SELECT symbol, last_price, best_bid, best_ask, open_24h, high_24h, low_24h, volume_24h,
	   quote_volume_24h, trades_24h,
	   updated_at = (SELECT executed_at FROM exchange.trades WHERE trade_id = pg_temp.id('m6_buy'))
		 AS updated_at_is_m6
  FROM exchange.ticker('MDA-USDT');
SELECT * FROM exchange.ticker('MDB-USDT');
-- NULL: every market, in symbol order (only this file's markets are shown).
SELECT symbol, last_price, best_bid, best_ask, open_24h, volume_24h, trades_24h
  FROM exchange.ticker() WHERE symbol LIKE 'MD_-USDT';
SELECT symbol, last_price, trades_24h FROM exchange.ticker(NULL) WHERE symbol LIKE 'MD_-USDT';
-- Both legs of each match are stored; the ticker counted each match once.
SELECT count(*) AS trade_rows, count(DISTINCT match_id) AS matches
  FROM exchange.trades WHERE symbol = 'MDA-USDT';
-- The 1-minute candles of the last 24 hours hold the same executions, whatever minutes they
-- fall in.
SELECT sum(trades) AS trades, sum(volume) AS volume, sum(quote_volume) AS quote_volume,
	   max(high) AS high, min(low) AS low
  FROM exchange.candles('MDA-USDT', '1 minute', now() - interval '24 hours');

-- 3. Candles at fixed times, applied out of time order.
SELECT pg_temp.label(order_id, 'cb'), status
  FROM exchange.place_order(pg_temp.id('md_buyer'), 'MDC-USDT', 'BUY', 'LIMIT', 20, 200);
SELECT pg_temp.label(trade_id, label), quantity, price
  FROM (VALUES ('t2', 2, 105, '2026-01-05 10:00:40+00'), ('t1', 1, 100, '2026-01-05 10:00:10+00'),
			   ('t8', 2, 120, '2026-01-05 10:20:00+00'), ('t4', 0.5, 110, '2026-01-05 10:03:05+00'),
			   ('t3', 1, 95, '2026-01-05 10:01:30+00'), ('t6', 1, 112, '2026-01-05 10:05:00+00'),
			   ('t5', 1.5, 108, '2026-01-05 10:04:59+00'), ('t7', 1, 90, '2026-01-05 09:59:59+00'))
	   AS v (label, q, p, at),
	   LATERAL exchange.apply_trade(pg_temp.id('cb'), q, p, executed_at => at::timestamptz);
-- 1 minute: the 10:02 bucket is empty and omitted; t7 is before since, t8 at until (excluded).
SELECT * FROM exchange.candles('MDC-USDT', '1 minute', '2026-01-05 10:00:00+00', '2026-01-05 10:20:00+00');
-- 5 minutes: 10:10 and 10:15 are empty and omitted.
SELECT * FROM exchange.candles('MDC-USDT', '5 minutes', '2026-01-05 10:00:00+00', '2026-01-05 10:20:00+00');
-- 1 day, aligned to midnight UTC: every fill.
SELECT * FROM exchange.candles('MDC-USDT', '1 day', '2026-01-05 00:00:00+00', '2026-01-06 00:00:00+00');
-- An equal interval spelled otherwise is the same width; a range without executions is empty.
SELECT bucket, open, close, trades
  FROM exchange.candles('MDC-USDT', '60 minutes', '2026-01-05 09:00:00+00', '2026-01-05 11:00:00+00');
SELECT count(*) FROM exchange.candles('MDC-USDT', '1 minute', '2026-01-05 10:06:00+00', '2026-01-05 10:20:00+00');
SELECT count(*) FROM exchange.candles('MDB-USDT', '1 hour', '2026-01-01 00:00:00+00');

-- 4. Errors: unknown market LX003; NULL arguments 22004; bad width, levels or range 22023.
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.order_book_depth('NOPE-USDT') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.ticker('NOPE-USDT') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.candles('NOPE-USDT', '1 hour', now() - interval '1 day') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.candles('MDC-USDT', '2 minutes', now() - interval '1 day') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.candles('MDC-USDT', '1 month', now() - interval '1 year') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.candles('MDC-USDT', '1 hour', '2026-01-05 11:00:00+00', '2026-01-05 10:00:00+00') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.candles(NULL, '1 hour', now() - interval '1 day') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.candles('MDC-USDT', NULL, now() - interval '1 day') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.candles('MDC-USDT', '1 hour', NULL) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.candles('MDC-USDT', '1 hour', now() - interval '1 day', NULL) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.order_book_depth(NULL) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.order_book_depth('MDA-USDT', NULL) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.order_book_depth('MDA-USDT', 0) $$);

SELECT * FROM exchange.check_invariants();
