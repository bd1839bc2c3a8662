-- The CHECK constraints of the ledger's tables, read once per backend for the API's own
-- statements (README "Data model", src/check_cache.c): a constraint added, dropped or whose
-- function is replaced applies from the API's next statement in the same session, inside a
-- transaction too, and nothing is written by a call it refuses.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('CCH-USDT', 'CCH', 'USDT');
SELECT pg_temp.trader('cch_ann');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('cch_ann'), 'USDT', 100000);

CREATE FUNCTION pg_temp.buy(q numeric) RETURNS text
LANGUAGE sql AS $$
	SELECT status::text FROM exchange.place_order(pg_temp.id('cch_ann'), 'CCH-USDT', 'BUY',
												  'LIMIT', q, 10)
$$;
CREATE FUNCTION pg_temp.n_orders() RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM exchange.orders WHERE account_id = pg_temp.id('cch_ann')
$$;

-- 1. Calls before any change: the session has read the checks of orders, balances, the journal
--    and the events.
SELECT pg_temp.buy(6), pg_temp.buy(6), pg_temp.n_orders();

-- 2. A constraint added in the session applies to the next call (23514 naming it), which
--    writes nothing; replaced or dropped, the next call obeys what is there now.
ALTER TABLE exchange.orders ADD CONSTRAINT cch_small CHECK (quantity <= 5) NOT VALID;
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(6)$$);
SELECT pg_temp.n_orders();
SELECT pg_temp.buy(5);
-- One constraint for another (as many as before: only the invalidation tells).
ALTER TABLE exchange.orders DROP CONSTRAINT cch_small,
	ADD CONSTRAINT cch_wide CHECK (quantity <= 100) NOT VALID;
SELECT pg_temp.buy(6), pg_temp.n_orders();
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(101)$$);
ALTER TABLE exchange.orders DROP CONSTRAINT cch_wide;
SELECT pg_temp.buy(101), pg_temp.n_orders();

-- 3. A check calling an SQL function, which PostgreSQL inlines into the expression read:
--    replacing the function changes what the next call checks.
CREATE FUNCTION public.cch_limit(q numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT q <= 5 $$;
ALTER TABLE exchange.orders ADD CONSTRAINT cch_fn CHECK (public.cch_limit(quantity)) NOT VALID;
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(6)$$);
CREATE OR REPLACE FUNCTION public.cch_limit(q numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT q <= 50 $$;
SELECT pg_temp.buy(6);
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(51)$$);
ALTER TABLE exchange.orders DROP CONSTRAINT cch_fn;
DROP FUNCTION public.cch_limit(numeric);

-- 3b. A check casting to a domain without constraints (PostgreSQL drops such a cast from the
--     expression it plans): a constraint added to the domain applies to the next call.
CREATE DOMAIN public.cch_qty AS numeric;
ALTER TABLE exchange.orders ADD CONSTRAINT cch_dom CHECK ((quantity::public.cch_qty) IS NOT NULL)
	NOT VALID;
SELECT pg_temp.buy(6);
ALTER DOMAIN public.cch_qty ADD CONSTRAINT cch_qty_max CHECK (VALUE <= 5);
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(6)$$);
ALTER TABLE exchange.orders DROP CONSTRAINT cch_dom;
DROP DOMAIN public.cch_qty;

-- 4. Inside one transaction: a constraint added after a call applies to the next call.
BEGIN;
SELECT pg_temp.buy(7);
ALTER TABLE exchange.orders ADD CONSTRAINT cch_tx CHECK (quantity <> 7) NOT VALID;
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(7)$$);
SELECT pg_temp.buy(8);
-- what the change retired is kept until the transaction ends, then freed
SELECT count(*) > 0 AS retired_kept FROM pg_backend_memory_contexts
 WHERE parent = 'exchange_adapter retired checks';
ROLLBACK;
SELECT count(*) AS retired_left FROM pg_backend_memory_contexts
 WHERE parent = 'exchange_adapter retired checks';
SELECT pg_temp.buy(7);

-- 5. The journal: a check refusing LOCK rows refuses lock_balance's move (23514 naming it,
--    no hold written); the balance rows and the orders' journal rows pass.
ALTER TABLE exchange.balance_journal ADD CONSTRAINT cch_no_lock
	CHECK (kind::text <> 'LOCK') NOT VALID;
SELECT pg_temp.buy(1), pg_temp.buy(1);
SELECT sqlstate, message FROM pg_temp.fails($$SELECT hold_id FROM exchange.lock_balance(pg_temp.id('cch_ann'),
	'USDT', 1, 'cch-hold')$$);
SELECT count(*) AS holds FROM exchange.holds WHERE account_id = pg_temp.id('cch_ann');
ALTER TABLE exchange.balance_journal DROP CONSTRAINT cch_no_lock;
SELECT amount FROM exchange.lock_balance(pg_temp.id('cch_ann'), 'USDT', 1, 'cch-hold');
SELECT pg_temp.n_orders();

SELECT * FROM exchange.check_invariants();
