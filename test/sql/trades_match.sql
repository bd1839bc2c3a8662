-- Trades: apply_match (README "Order lifecycle and arithmetic", "Orders and trades").  A BUY
-- and a SELL order of one market are filled against each other, both legs or neither, sharing
-- one match_id; the buyer pays and the seller receives exactly trunc8(q x p), so the legs net
-- to zero in every asset apart from fees.  maker NULL makes the older order the maker
-- (created_at, then order_id); fees are computed from the maker and taker rates unless given.
-- A retry with the same (buy, sell, trade_ref) and values returns the two stored trades and
-- writes nothing; any difference is LX009.
--
-- Numbers, by hand (SELL 2 at 100 placed first, BUY 3 at 101; maker 0.001, taker 0.002):
--   m1: 1.5 at 100.5, maker NULL (the SELL): buyer taker fee ceil8(1.5 x 0.002) = 0.003 TMA,
--       seller maker fee ceil8(150.75 x 0.001) = 0.15075 USDT; buyer lock 303 -> 151.5, refund 0.75
--   m2: 0.5 at 100, maker BUY: buyer fee ceil8(0.5 x 0.001) = 0.0005 TMA, seller fee
--       ceil8(50 x 0.002) = 0.1 USDT; buyer lock 151.5 -> 101, refund 0.5; the SELL is FILLED
--   m3: 1 at 99 against a second SELL, fees 0 given: buyer lock 101 -> 0, refund 2; FILLED
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol, maker_fee_rate, taker_fee_rate
  FROM exchange.create_market('TMA-USDT', 'TMA', 'USDT', 0.01, 0.01, 0, 0, 0.001, 0.002);
SELECT symbol FROM exchange.create_market('TMB-USDT', 'TMB', 'USDT', 0.01, 0.01);
SELECT pg_temp.trader('ma_buyer');
SELECT pg_temp.trader('ma_seller');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('ma_buyer'), 'USDT', 1000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('ma_seller'), 'TMA', 10);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('ma_seller'), 'TMB', 10);
SELECT pg_temp.label(order_id, 'sell'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMA-USDT', 'SELL', 'LIMIT', 2, 100);
SELECT pg_temp.label(order_id, 'buy'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ma_buyer'), 'TMA-USDT', 'BUY', 'LIMIT', 3, 101);
SELECT * FROM pg_temp.balances();
SELECT pg_temp.skip();

-- 1. m1: both trades, BUY first, one match_id, the trade_ref on both; the SELL (older) is
-- the maker.
SELECT pg_temp.label(trade_id, 'm1_' || lower(side)), pg_temp.l(order_id) AS "order", side,
       quantity, price, fee, fee_currency, liquidity, trade_ref, match_id IS NOT NULL AS matched
  FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 1.5, 100.5, trade_ref => 'm-1');
SELECT count(DISTINCT match_id) AS match_ids, count(*) AS trades
  FROM exchange.trades WHERE trade_id IN (pg_temp.id('m1_buy'), pg_temp.id('m1_sell'));
SELECT * FROM pg_temp.o('buy');
SELECT * FROM pg_temp.o('sell');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal() ORDER BY account, asset, kind;
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();
-- One outbox row naming both sides' keys.
SELECT * FROM pg_temp.new_outbox();
-- The legs net to zero in every asset (journal TRADE rows of the match).
SELECT j.asset, sum(j.delta_available + j.delta_locked) AS net
  FROM exchange.balance_journal j JOIN exchange.trades t USING (trade_id)
 WHERE t.trade_id IN (pg_temp.id('m1_buy'), pg_temp.id('m1_sell')) AND j.kind = 'TRADE'
 GROUP BY 1 ORDER BY 1;
-- Each side's journal rows of m1 in the order written: by asset (lock order), and on the
-- received asset the proceeds, then the fee taken from them.
SELECT pg_temp.l(j.account_id) AS account, j.asset, j.delta_available, j.delta_locked, j.kind
  FROM exchange.balance_journal j
 WHERE j.trade_id IN (pg_temp.id('m1_buy'), pg_temp.id('m1_sell'))
 ORDER BY 1, j.seq;

-- 2. The retry returns the same two trades and writes nothing, also with the computed fees
-- and the maker given explicitly.
SELECT * FROM pg_temp.counts();
SELECT pg_temp.l(trade_id), side, quantity, price, fee, liquidity
  FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 1.5, 100.5, trade_ref => 'm-1');
SELECT pg_temp.l(trade_id), side, quantity, price, fee, liquidity
  FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 1.50, 100.50, 0.003, 0.15075, 'm-1', 'SELL');
SELECT * FROM pg_temp.counts();

-- 3. Any difference is LX009 and changes nothing: quantity, price, fee, maker; the same
-- trade_ref with another SELL or another BUY; a trade_ref that apply_trade used.
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 1, 100.5, trade_ref => 'm-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 1.5, 100.4, trade_ref => 'm-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 1.5, 100.5, sell_fee => 0, trade_ref => 'm-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 1.5, 100.5, trade_ref => 'm-1', maker => 'BUY') $$);
SELECT pg_temp.label(order_id, 'sell2'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMA-USDT', 'SELL', 'LIMIT', 1, 99);
SELECT pg_temp.label(order_id, 'buy2'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('ma_buyer'), 'TMA-USDT', 'BUY', 'LIMIT', 1, 99);
SELECT pg_temp.skip();
SELECT * FROM pg_temp.counts();
-- (maker SELL keeps the BUY leg's values equal to the stored ones: only the SELL differs)
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell2'), 1.5, 100.5, trade_ref => 'm-1', maker => 'SELL') $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy2'), pg_temp.id('sell'), 1.5, 100.5, trade_ref => 'm-1') $$);
SELECT pg_temp.label(trade_id, 'ext'), quantity, price, fee, liquidity, trade_ref
  FROM exchange.apply_trade(pg_temp.id('buy2'), 0.1, 98, trade_ref => 'x-1', liquidity => 'TAKER');
SELECT * FROM pg_temp.skip();
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy2'), pg_temp.id('sell2'), 0.1, 98, trade_ref => 'x-1', maker => 'SELL') $$);
SELECT * FROM pg_temp.counts();

-- 4. m2: 0.5 at 100 with the BUY as maker: the buyer pays the maker rate, the seller the
-- taker rate.  The SELL is FILLED.
SELECT pg_temp.label(trade_id, 'm2_' || lower(side)), side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 0.5, 100, maker => 'BUY');
SELECT * FROM pg_temp.o('buy');
SELECT * FROM pg_temp.o('sell');
SELECT * FROM pg_temp.new_journal() ORDER BY account, asset, kind;
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();

-- 5. m3: 1 at 99 against sell2 with both fees given as 0: no FEE row, no fee_ledger row.
-- The BUY is FILLED; 2 USDT refunded.
SELECT pg_temp.label(trade_id, 'm3_' || lower(side)), side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell2'), 1, 99, 0, 0);
SELECT * FROM pg_temp.o('buy');
SELECT * FROM pg_temp.o('sell2');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal() ORDER BY account, asset, kind;
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();

-- 6. Orders created in one transaction share created_at: the lower order_id is the maker.
-- (Which one that is differs on every run, so the fees are given, 0, and only whether the
-- rule held is shown.)
BEGIN;
SELECT pg_temp.label(order_id, 'tie_buy'), status
  FROM exchange.place_order(pg_temp.id('ma_buyer'), 'TMA-USDT', 'BUY', 'LIMIT', 1, 50);
SELECT pg_temp.label(order_id, 'tie_sell'), status
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMA-USDT', 'SELL', 'LIMIT', 1, 50);
COMMIT;
SELECT count(DISTINCT created_at) AS created_ats FROM exchange.orders
 WHERE order_id IN (pg_temp.id('tie_buy'), pg_temp.id('tie_sell'));
SELECT pg_temp.label(trade_id, 'tie_' || lower(side) || '_trade'), side,
       liquidity = CASE WHEN (side = 'BUY') = (pg_temp.id('tie_buy') < pg_temp.id('tie_sell'))
                        THEN 'MAKER' ELSE 'TAKER' END AS lower_order_id_is_maker
  FROM exchange.apply_match(pg_temp.id('tie_buy'), pg_temp.id('tie_sell'), 1, 50, 0, 0);

-- 7. Settlement is allowed whatever the account or market status: a SUSPENDED seller on a
-- HALTED market (buy2 against sell2 is impossible now: sell2 is FILLED, so a new SELL).
SELECT pg_temp.label(order_id, 'sell3'), status
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMA-USDT', 'SELL', 'LIMIT', 0.9, 98);
SELECT status FROM exchange.set_account_status(pg_temp.id('ma_seller'), 'SUSPENDED');
SELECT symbol, status FROM exchange.set_market_status('TMA-USDT', 'HALTED');
SELECT pg_temp.label(trade_id, 'm4_' || lower(side)), side, quantity, price
  FROM exchange.apply_match(pg_temp.id('buy2'), pg_temp.id('sell3'), 0.9, 98.5);
SELECT * FROM pg_temp.o('buy2');
SELECT * FROM pg_temp.o('sell3');
SELECT status FROM exchange.set_account_status(pg_temp.id('ma_seller'), 'ACTIVE');
SELECT symbol, status FROM exchange.set_market_status('TMA-USDT', 'ACTIVE');

-- 8. A self-match (one account on both sides) is allowed and nets to zero for it.
SELECT pg_temp.label(order_id, 'self_sell'), status
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMB-USDT', 'SELL', 'LIMIT', 1, 5);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('ma_seller'), 'USDT', 5);
SELECT pg_temp.label(order_id, 'self_buy'), status
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMB-USDT', 'BUY', 'LIMIT', 1, 5);
SELECT pg_temp.skip();
SELECT pg_temp.label(trade_id, 'self_' || lower(side) || '_trade'), side, quantity, price, liquidity
  FROM exchange.apply_match(pg_temp.id('self_buy'), pg_temp.id('self_sell'), 1, 5);
SELECT asset, sum(delta_available) AS available, sum(delta_locked) AS locked
  FROM pg_temp.new_journal() GROUP BY 1 ORDER BY 1;

-- 9. Refusals, each changing nothing: the same order twice, two BUY orders, two markets
-- (22023); an unknown order (LX003); a PENDING leg (LX002); an overfilled leg (LX007); a
-- price outside either limit (LX006); NULL, negative, bad maker (22004, 22023).
SELECT pg_temp.label(order_id, 'buy_open'), status
  FROM exchange.place_order(pg_temp.id('ma_buyer'), 'TMA-USDT', 'BUY', 'LIMIT', 2, 60);
SELECT pg_temp.label(order_id, 'sell_open'), status
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMA-USDT', 'SELL', 'LIMIT', 1, 55);
SELECT pg_temp.label(order_id, 'sell_other_market'), status
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMB-USDT', 'SELL', 'LIMIT', 1, 55);
SELECT pg_temp.label(order_id, 'sell_pending'), status
  FROM exchange.place_order(pg_temp.id('ma_seller'), 'TMA-USDT', 'SELL', 'STOP', 1, 55, stop_price => 50);
SELECT pg_temp.skip();
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('buy_open'), 1, 58) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('tie_buy'), 1, 58) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('sell_open'), pg_temp.id('buy_open'), 1, 58) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('sell_other_market'), 1, 58) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), '00000000-0000-0000-0000-000000000000', 1, 58) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('sell_pending'), 1, 58) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('sell_open'), 1.5, 58) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('sell_open'), 1, 60.01) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('sell_open'), 1, 54.99) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), NULL, 1, 58) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('sell_open'), 1, 58, -1) $$);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('buy_open'), pg_temp.id('sell_open'), 1, 58, maker => 'maker') $$);
SELECT * FROM pg_temp.counts();
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('ma_buyer')) ORDER BY 1;
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('ma_seller')) ORDER BY 1;

-- Every match: two trades (BUY and SELL), legs netting to zero per asset apart from fees.
SELECT trade, "order", account, side, quantity, price, fee, fee_currency,
       CASE WHEN "order" LIKE 'tie%' THEN '(tie)' ELSE liquidity END AS liquidity, trade_ref, matched
  FROM pg_temp.trades();
SELECT pg_temp.l(min(t.trade_id::text)::uuid) AS a_trade, j.asset, sum(j.delta_available + j.delta_locked) AS net
  FROM exchange.balance_journal j JOIN exchange.trades t USING (trade_id)
  JOIN pg_temp.labels x ON x.id = t.account_id
 WHERE t.match_id IS NOT NULL AND j.kind = 'TRADE'
 GROUP BY t.match_id, j.asset
HAVING sum(j.delta_available + j.delta_locked) <> 0;
SELECT "order", side, quantity, price, status, filled, avg_price, locked FROM pg_temp.orders();
SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();
