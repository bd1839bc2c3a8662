-- Trade feed (README "Trade feed"): the outbox row of a call names its executions in trade_ids,
-- one trade id each, in execution order: the trade of an apply_trade, the TAKER leg of a match
-- (a match is one execution, not two).  A call that executes nothing (a deposit, an idempotent
-- retry) names none; the worker renders the messages from these trades.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('TFA-USDT', 'TFA', 'USDT', 0.01, 0.01);
SELECT pg_temp.trader('tf_buyer');
SELECT pg_temp.trader('tf_seller');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('tf_buyer'), 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('tf_seller'), 'TFA', 100);
SELECT pg_temp.label(order_id, 'buy'), status
  FROM exchange.place_order(pg_temp.id('tf_buyer'), 'TFA-USDT', 'BUY', 'LIMIT', 10, 100);
SELECT pg_temp.label(order_id, 'sell'), status
  FROM exchange.place_order(pg_temp.id('tf_seller'), 'TFA-USDT', 'SELL', 'LIMIT', 10, 90);

-- The executions named by the latest outbox row (NULL: none).
CREATE FUNCTION pg_temp.last_executions() RETURNS text[]
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN o.trade_ids IS NULL THEN NULL
				ELSE ARRAY(SELECT pg_temp.l(t) FROM unnest(o.trade_ids) t) END
	  FROM exchange.outbox o ORDER BY o.id DESC LIMIT 1
$$;

-- 1. An order placed executes nothing.
SELECT pg_temp.last_executions();

-- 2. apply_trade: its trade, whatever its liquidity.
SELECT pg_temp.label(trade_id, 't1'), liquidity
  FROM exchange.apply_trade(pg_temp.id('buy'), 1, 95, trade_ref => 't1', liquidity => 'TAKER');
SELECT pg_temp.last_executions();
SELECT pg_temp.label(trade_id, 't2'), liquidity
  FROM exchange.apply_trade(pg_temp.id('sell'), 1, 95, liquidity => 'MAKER');
SELECT pg_temp.last_executions();

-- 3. An idempotent retry executes nothing and writes no outbox row.
SELECT count(*) AS outbox_rows FROM exchange.outbox \gset
SELECT pg_temp.l(trade_id)
  FROM exchange.apply_trade(pg_temp.id('buy'), 1, 95, trade_ref => 't1', liquidity => 'TAKER');
SELECT count(*) - :outbox_rows AS new_outbox_rows FROM exchange.outbox;

-- 4. apply_match: one execution, the TAKER leg (the BUY when the SELL is the maker, and the
-- other way round).
SELECT pg_temp.label(trade_id, 'm1_' || lower(side)), liquidity
  FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 2, 92, maker => 'SELL');
SELECT pg_temp.last_executions();
SELECT pg_temp.label(trade_id, 'm2_' || lower(side)), liquidity
  FROM exchange.apply_match(pg_temp.id('buy'), pg_temp.id('sell'), 1, 91, maker => 'BUY');
SELECT pg_temp.last_executions();

-- 5. A call that changes balances only names none.
SELECT symbol FROM exchange.deposit(pg_temp.id('tf_buyer'), 'USDT', 1);
SELECT pg_temp.last_executions();

SELECT * FROM exchange.check_invariants();
