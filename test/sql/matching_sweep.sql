-- Matching engine, price-time priority (README "Matching engine", rules 1-3): on an INTERNAL
-- market place_order takes the resting orders of the other side, best price first, then the
-- earliest book_seq, at the maker's price, each execution settled as apply_match settles it with
-- fees NULL (maker and taker rates); a maker may be filled partly; a BUY taker locks at its limit
-- and gets the price improvement back; a GTC remainder rests.
--
-- Numbers, by hand (tick 0.01, lot 0.01, maker 0.001, taker 0.002):
--   asks: a1 s1 1 @ 101, a2 s2 2 @ 100, a3 s1 1 @ 100 (after a2), a4 s2 1 @ 103
--   t1: b BUY 3.5 @ 102 locks ceil8(3.5 x 102) = 357 USDT and takes
--     seq 1: a2 2 @ 100, notional 200; lock 357 -> ceil8(1.5 x 102) = 153, refund 204 - 200 = 4;
--            taker fee ceil8(2 x 0.002) = 0.004 TMS, maker fee ceil8(200 x 0.001) = 0.2 USDT
--     seq 2: a3 1 @ 100 (same level, later), notional 100; lock 153 -> 51, refund 2;
--            fees 0.002 TMS and 0.1 USDT
--     seq 3: a1 0.5 @ 101 (a1 PARTIAL), notional 50.5; lock 51 -> 0, refund 0.5;
--            fees 0.001 TMS and ceil8(50.5 x 0.001) = 0.0505 USDT; a4 at 103 does not cross
--     b: USDT 1000 - 350.5 = 649.5, TMS 3.5 - 0.007 = 3.493; t1 FILLED, average
--        (200 + 100 + 50.5) / 3.5 = 100.14285714
--     s1: TMS 10 - 1.5 = 8.5 (0.5 still locked in a1); USDT 150.5 - 0.1505 = 150.3495
--     s2: TMS 10 - 2 = 8 (1 locked in a4); USDT 200 - 0.2 = 199.8
--   t2: b BUY 1 @ 100 crosses nothing (best ask 101) and rests, locking 100
--   t3: s2 SELL 1.5 @ 99 takes t2 at its price 100 (seq 4, notional 100, s2 taker fee
--       ceil8(100 x 0.002) = 0.2 USDT, b maker fee ceil8(1 x 0.001) = 0.001 TMS) and rests
--       0.5 at 99 PARTIAL; the market's last price is 100, trade_seq 4
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol, matching, self_trade, trade_seq, last_price
  FROM exchange.create_market('TMS-USDT', 'TMS', 'USDT', 0.01, 0.01, 0, 0, 0.001, 0.002,
                              matching => 'INTERNAL');
SELECT pg_temp.trader('ms_s1'), pg_temp.trader('ms_s2'), pg_temp.trader('ms_b');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('ms_s1'), 'TMS', 10)
  UNION ALL SELECT exchange.deposit(pg_temp.id('ms_s2'), 'TMS', 10)
  UNION ALL SELECT exchange.deposit(pg_temp.id('ms_b'), 'USDT', 1000)) d;

SELECT pg_temp.label(order_id, 'a1'), status, book_seq IS NOT NULL AS has_seq
  FROM exchange.place_order(pg_temp.id('ms_s1'), 'TMS-USDT', 'SELL', 'LIMIT', 1, 101);
SELECT pg_temp.label(order_id, 'a2'), status
  FROM exchange.place_order(pg_temp.id('ms_s2'), 'TMS-USDT', 'SELL', 'LIMIT', 2, 100);
SELECT pg_temp.label(order_id, 'a3'), status
  FROM exchange.place_order(pg_temp.id('ms_s1'), 'TMS-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT pg_temp.label(order_id, 'a4'), status
  FROM exchange.place_order(pg_temp.id('ms_s2'), 'TMS-USDT', 'SELL', 'LIMIT', 1, 103);
SELECT pg_temp.skip();

-- t1 sweeps two levels: a2 then a3 at 100 (time priority), then half of a1 at 101.
SELECT pg_temp.label(order_id, 't1'), status, filled_quantity, average_price, locked_amount
  FROM exchange.place_order(pg_temp.id('ms_b'), 'TMS-USDT', 'BUY', 'LIMIT', 3.5, 102);
SELECT t.seq, pg_temp.l(t.order_id) AS "order", t.side, t.quantity, t.price, t.fee,
       t.fee_currency, t.liquidity, t.trade_ref
  FROM exchange.trades t WHERE t.symbol = 'TMS-USDT' ORDER BY t.seq, t.side;
SELECT count(DISTINCT match_id) AS matches, count(*) AS trades
  FROM exchange.trades WHERE symbol = 'TMS-USDT';
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();
SELECT * FROM pg_temp.o('a1');
SELECT * FROM pg_temp.o('a2');
SELECT * FROM pg_temp.o('a3');
SELECT * FROM pg_temp.o('a4');
SELECT * FROM pg_temp.balances();
SELECT last_price, trade_seq, last_trade_at IS NOT NULL AS traded
  FROM exchange.markets WHERE symbol = 'TMS-USDT';
-- Each account's journal rows of t1 in the order written: its lock, then the fills settled
-- by asset (lock order 4), each in execution order, a fill's fee right after the proceeds it
-- is taken from (README "Matching engine": settled as apply_match settles).
SELECT pg_temp.l(j.account_id) AS account, j.asset, j.delta_available, j.delta_locked, j.kind,
       pg_temp.l(j.order_id) AS "order", t.seq AS execution
  FROM exchange.balance_journal j LEFT JOIN exchange.trades t USING (trade_id)
 WHERE j.seq > (SELECT upto FROM pg_temp.shown WHERE what = 'journal')
 ORDER BY 1, j.seq;

-- README "Market data": executions of one call share executed_at and go by seq, so the ticker's
-- last price and the candle's open and close are the market's, whatever the trades' uuids.
SELECT tk.last_price = m.last_price AS ticker_last_is_markets, c.open, c.close, c.trades
  FROM exchange.ticker('TMS-USDT') tk, exchange.markets m,
       exchange.candles('TMS-USDT', '1 day', now() - interval '1 day', now() + interval '1 day') c
 WHERE m.symbol = 'TMS-USDT';

-- t2 crosses nothing and rests; t3 takes it at the maker's price and rests its remainder.
SELECT pg_temp.label(order_id, 't2'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ms_b'), 'TMS-USDT', 'BUY', 'LIMIT', 1, 100);
SELECT pg_temp.label(order_id, 't3'), status, filled_quantity, average_price, locked_amount
  FROM exchange.place_order(pg_temp.id('ms_s2'), 'TMS-USDT', 'SELL', 'LIMIT', 1.5, 99);
SELECT t.seq, pg_temp.l(t.order_id) AS "order", t.side, t.quantity, t.price, t.fee,
       t.fee_currency, t.liquidity
  FROM exchange.trades t WHERE t.symbol = 'TMS-USDT' AND t.seq > 3 ORDER BY t.seq, t.side;
SELECT * FROM pg_temp.o('t2');
SELECT * FROM pg_temp.balances();
SELECT last_price, trade_seq FROM exchange.markets WHERE symbol = 'TMS-USDT';
SELECT side, price, quantity FROM exchange.order_book WHERE symbol = 'TMS-USDT'
 ORDER BY side, price;


SELECT * FROM exchange.check_invariants();
