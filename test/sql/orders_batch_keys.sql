-- Orders: the outbox row of a batch call on many orders (README "Redis delivery", keys table).
-- cancel_orders and expire_orders name every closed order's cache:order key and, once each,
-- the account's orders, balance and balances keys and the market's book key: the row holds
-- each key exactly once, in the order the call first named it (the orders ascending by
-- order_id).  The batches here are long enough for the call to de-duplicate with its hash
-- table rather than its short-list scan (src/ledger.c, exa_call_key).
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('OBK-USDT', 'OBK', 'USDT', 0.01, 0.001);
SELECT symbol FROM exchange.create_market('OBL-USDT', 'OBL', 'USDT', 0.01, 0.001);
SELECT pg_temp.trader('bk_alice');
SELECT pg_temp.trader('bk_bob');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('bk_alice'), 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('bk_alice'), 'OBK', 100);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('bk_bob'), 'USDT', 10000);

-- The keys the batch call must name, in order: per order (ascending order_id) its cache:order
-- key, then the keys of the account, asset and book the first time each is met.
CREATE FUNCTION pg_temp.expected_keys(p_ids uuid[]) RETURNS text[]
LANGUAGE sql STABLE AS $$
	WITH per_order AS (
		SELECT o.order_id, k.n, k.key
		  FROM exchange.orders o,
			   LATERAL (VALUES (1, 'cache:order:' || o.order_id),
							   (2, 'cache:orders:' || o.account_id),
							   (3, 'cache:balance:' || o.account_id || ':' || o.lock_asset),
							   (4, 'cache:balances:' || o.account_id),
							   (5, CASE WHEN o.status IN ('OPEN', 'PARTIAL')
										THEN 'cache:book:' || o.symbol END),
							   (6, CASE WHEN o.status IN ('OPEN', 'PARTIAL')
										THEN 'cache:ticker:' || o.symbol END)) k (n, key)
		 WHERE o.order_id = ANY (p_ids) AND k.key IS NOT NULL),
	firsts AS (
		SELECT key, min(ARRAY[(SELECT count(*) FROM unnest(p_ids) i WHERE i < order_id), n]) AS pos
		  FROM per_order GROUP BY key)
	SELECT array_agg(key ORDER BY pos) FROM firsts
$$;

-- 1. cancel_orders on one account with 60 live orders on two markets (BUY locks USDT, SELL
-- locks OBK, STOP orders are PENDING: no book key of their own).
SELECT count(*) FROM (
	SELECT exchange.place_order(pg_temp.id('bk_alice'), 'OBK-USDT', 'BUY', 'LIMIT', 0.001, 1 + g * 0.01)
	  FROM generate_series(1, 25) g) x;
SELECT count(*) FROM (
	SELECT exchange.place_order(pg_temp.id('bk_alice'), 'OBK-USDT', 'SELL', 'LIMIT', 0.001, 100 + g)
	  FROM generate_series(1, 15) g) x;
SELECT count(*) FROM (
	SELECT exchange.place_order(pg_temp.id('bk_alice'), 'OBK-USDT', 'SELL', 'STOP', 0.001, stop_price => 50)
	  FROM generate_series(1, 5) g) x;
SELECT count(*) FROM (
	SELECT exchange.place_order(pg_temp.id('bk_alice'), 'OBL-USDT', 'BUY', 'LIMIT', 0.002, 2)
	  FROM generate_series(1, 15) g) x;
SELECT pg_temp.skip();
CREATE TEMP TABLE live AS
	SELECT array_agg(order_id) AS ids, pg_temp.expected_keys(array_agg(order_id)) AS keys
	  FROM exchange.orders WHERE account_id = pg_temp.id('bk_alice')
	   AND status IN ('OPEN', 'PARTIAL', 'PENDING');
SELECT cardinality(ids) AS orders, cardinality(keys) AS expected_keys FROM live;
SELECT count(*) AS cancelled FROM exchange.cancel_orders(pg_temp.id('bk_alice'));
-- One outbox row; its keys are distinct and exactly the expected ones, in order.
SELECT count(*) AS rows, cardinality(o.keys) AS keys,
	   (SELECT count(DISTINCT k) FROM unnest(o.keys) k) AS distinct_keys,
	   o.keys = (SELECT keys FROM live) AS as_expected
  FROM exchange.outbox o
 WHERE o.id > (SELECT upto FROM pg_temp.shown WHERE what = 'outbox')
 GROUP BY o.keys;
-- The keys besides the orders' (sorted here: their place in the row depends on the random
-- order ids, which as_expected checks).
SELECT pg_temp.masked(k) AS key
  FROM exchange.outbox o, unnest(o.keys) k
 WHERE o.id > (SELECT upto FROM pg_temp.shown WHERE what = 'outbox')
   AND k NOT LIKE 'cache:order:%'
 ORDER BY 1;
SELECT pg_temp.skip();

-- 2. expire_orders over two accounts, 40 orders each, interleaved: each account's keys once.
SELECT count(*) FROM (
	SELECT exchange.place_order(pg_temp.id(CASE WHEN g % 2 = 0 THEN 'bk_alice' ELSE 'bk_bob' END),
								'OBL-USDT', 'BUY', 'LIMIT', 0.001, 1 + g * 0.01)
	  FROM generate_series(1, 80) g) x;
SELECT pg_temp.skip();
CREATE TEMP TABLE expirable AS
	SELECT array_agg(order_id) AS ids, pg_temp.expected_keys(array_agg(order_id)) AS keys
	  FROM exchange.orders WHERE symbol = 'OBL-USDT' AND status IN ('OPEN', 'PARTIAL', 'PENDING');
SELECT cardinality(ids) AS orders, cardinality(keys) AS expected_keys FROM expirable;
SELECT count(*) AS expired FROM exchange.expire_orders('OBL-USDT', now());
SELECT count(*) AS rows, cardinality(o.keys) AS keys,
	   (SELECT count(DISTINCT k) FROM unnest(o.keys) k) AS distinct_keys,
	   o.keys = (SELECT keys FROM expirable) AS as_expected
  FROM exchange.outbox o
 WHERE o.id > (SELECT upto FROM pg_temp.shown WHERE what = 'outbox')
 GROUP BY o.keys;
SELECT pg_temp.masked(k) AS key
  FROM exchange.outbox o, unnest(o.keys) k
 WHERE o.id > (SELECT upto FROM pg_temp.shown WHERE what = 'outbox')
   AND k NOT LIKE 'cache:order:%'
 ORDER BY 1;
SELECT pg_temp.skip();

SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();
