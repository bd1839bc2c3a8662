-- The ids the API makes (order_id, trade_id, match_id: README "Data model") are random version-4
-- uuids, as gen_random_uuid() makes them (src/args.c, exa_new_uuid: strong random bytes drawn 64
-- ids at a time): the version nibble is 4, the variant bits 10, and no two are equal, over more
-- ids than one draw holds and across calls.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('IDS-USDT', 'IDS', 'USDT');
SELECT symbol FROM exchange.create_market('IDI-USDT', 'IDI', 'USDT', matching => 'INTERNAL');
SELECT pg_temp.trader('ids_ann');
SELECT pg_temp.trader('ids_bob');
SELECT symbol FROM exchange.deposit(pg_temp.id('ids_ann'), 'USDT', 100000);
SELECT symbol FROM exchange.deposit(pg_temp.id('ids_bob'), 'IDI', 100);

CREATE FUNCTION pg_temp.v4(u uuid) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT substr(u::text, 15, 1) = '4' AND substr(u::text, 20, 1) IN ('8', '9', 'a', 'b')
$$;

-- 1. 150 orders in one batch and 10 single calls: 160 distinct version-4 ids.
SELECT count(*) FROM exchange.place_orders((
	SELECT jsonb_agg(jsonb_build_object('account_id', pg_temp.id('ids_ann'), 'symbol', 'IDS-USDT',
										'side', 'BUY', 'order_type', 'LIMIT', 'quantity', 1,
										'price', 10 + g))
	  FROM generate_series(1, 150) g));
SELECT count(*) FROM generate_series(1, 10) g,
	LATERAL exchange.place_order(pg_temp.id('ids_ann'), 'IDS-USDT', 'BUY', 'LIMIT', 1, g);
SELECT count(*) AS orders, count(DISTINCT order_id) AS distinct_ids, bool_and(pg_temp.v4(order_id)) AS v4
  FROM exchange.orders WHERE account_id = pg_temp.id('ids_ann');

-- 2. Fills: trade ids (70 apply_trade) and match ids (a BUY crossing 5 asks: 5 matches of 2 rows).
SELECT count(*) FROM (
	SELECT exchange.apply_trade(o.order_id, 1, o.price, trade_ref => 'ids-' || o.price)
	  FROM exchange.orders o
	 WHERE o.account_id = pg_temp.id('ids_ann') AND o.price BETWEEN 11 AND 80) t;
SELECT count(*) FROM generate_series(1, 5) g,
	LATERAL exchange.place_order(pg_temp.id('ids_bob'), 'IDI-USDT', 'SELL', 'LIMIT', 1, 10 - g * 0.5);
SELECT status FROM exchange.place_order(pg_temp.id('ids_ann'), 'IDI-USDT', 'BUY', 'LIMIT', 5, 10);
SELECT count(*) AS trades, count(DISTINCT trade_id) AS distinct_ids,
	   bool_and(pg_temp.v4(trade_id)) AS v4,
	   count(DISTINCT match_id) AS matches, bool_and(match_id IS NULL OR pg_temp.v4(match_id)) AS match_v4
  FROM exchange.trades
 WHERE account_id IN (pg_temp.id('ids_ann'), pg_temp.id('ids_bob'));

SELECT * FROM exchange.check_invariants();
