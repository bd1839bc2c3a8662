-- migrate_legacy.sql — imports the legacy Go adapter's accounts and balances
-- into the exchange_adapter ledger.  Superuser only; one transaction; refuses
-- to run twice.  See docker/README.md, "Migrating from the legacy tables".
--
--   psql -v ON_ERROR_STOP=1 -d exchange -f docker/migrate_legacy.sql
--   psql ... -v legacy_schema=old_exchange -f ...     (default: exchange_legacy)
--
-- Before: the legacy schema was renamed (ALTER SCHEMA exchange RENAME TO
-- exchange_legacy) and the init script has created the extension.
--
-- What it does:
--   * accounts: every legacy row, same account_id, user_id, type, status, KYC
--     status, timestamps and metadata (enumerations upper-cased, NULLs given
--     the ledger's defaults, a metadata value that is not a JSON object kept
--     under {"legacy_metadata": ...});
--   * balances: one row per legacy (account, asset), same balance_id, as an
--     OPENING balance: available = legacy available + legacy locked, locked 0.
--     Orders are not imported, so no lock would have an order to belong to
--     (invariant 1); cancel or settle open orders in the old system first;
--   * balance_journal: one row of kind MIGRATION, actor 'migration',
--     reference 'legacy balance <balance_id>', per non-zero balance, so that the
--     balances equal the sums of their journals and check_invariants() holds
--     (a zero balance has no journal row: journal rows are never zero);
--   * nothing else: orders, trades and markets stay in the legacy schema for
--     reference (create markets with exchange.create_market).
-- Rows are inserted directly (the API functions would journal DEPOSITs and
-- push to Redis); no trigger of the ledger acts on INSERT.  When
-- exchange.check_invariants() exists it must return nothing, or everything
-- is rolled back.
--
-- The legacy columns are read by name through to_jsonb(row), so a column the
-- old schema lacked is taken as NULL: accounts(account_id, user_id,
-- account_type, status, kyc_status, created_at, updated_at, metadata),
-- balances(balance_id, account_id, symbol or asset, available_balance or
-- available, locked_balance or locked, last_updated or updated_at).

\set ON_ERROR_STOP on
\set QUIET on
\set SHOW_CONTEXT never
\if :{?legacy_schema}
\else
\set legacy_schema exchange_legacy
\endif

SET search_path = pg_catalog, pg_temp;
SET client_min_messages = notice;

BEGIN;

SELECT pg_catalog.set_config('exchange_adapter_migrate.legacy_schema', :'legacy_schema', true) \g /dev/null

-- Preconditions, with the reason spelled out.
DO $m$
DECLARE
	legacy text := pg_catalog.current_setting('exchange_adapter_migrate.legacy_schema');
	n bigint;
BEGIN
	IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		RAISE EXCEPTION 'the legacy migration must run as a superuser, not as "%"', current_user
			USING ERRCODE = '42501',
				  DETAIL = 'It writes the ledger tables directly; application roles may only call the exchange functions.';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'exchange_adapter') THEN
		RAISE EXCEPTION 'extension exchange_adapter is not installed in database "%"', pg_catalog.current_database()
			USING ERRCODE = '55000',
				  HINT = 'Run the init script (docker/initdb/10-exchange-adapter.sh) first.';
	END IF;
	IF pg_catalog.to_regclass(pg_catalog.format('%I.accounts', legacy)) IS NULL
	   OR pg_catalog.to_regclass(pg_catalog.format('%I.balances', legacy)) IS NULL THEN
		RAISE EXCEPTION 'no legacy tables %.accounts and %.balances', legacy, legacy
			USING ERRCODE = '42P01',
				  HINT = 'Rename the legacy schema first (ALTER SCHEMA exchange RENAME TO exchange_legacy), or pass -v legacy_schema=NAME.';
	END IF;
	SELECT (SELECT pg_catalog.count(*) FROM exchange.accounts)
		 + (SELECT pg_catalog.count(*) FROM exchange.balances)
		 + (SELECT pg_catalog.count(*) FROM exchange.balance_journal) INTO n;
	IF n > 0 THEN
		RAISE EXCEPTION 'the ledger is not empty: the legacy migration runs once, into a new ledger'
			USING ERRCODE = '55000',
				  DETAIL = pg_catalog.format('exchange.accounts, balances and balance_journal hold %s rows (%s of them MIGRATION journal rows).',
					n, (SELECT pg_catalog.count(*) FROM exchange.balance_journal WHERE kind = 'MIGRATION'));
	END IF;
END
$m$;

-- The legacy rows, normalised, in temporary tables (gone at commit).
CREATE TEMPORARY TABLE legacy_accounts ON COMMIT DROP AS
SELECT (j->>'account_id')::uuid AS account_id,
	   j->>'user_id' AS user_id,
	   pg_catalog.upper(pg_catalog.btrim(COALESCE(j->>'account_type', 'SPOT'))) AS account_type,
	   pg_catalog.upper(pg_catalog.btrim(COALESCE(j->>'status', 'ACTIVE'))) AS status,
	   pg_catalog.upper(pg_catalog.btrim(COALESCE(j->>'kyc_status', 'PENDING'))) AS kyc_status,
	   COALESCE((j->>'created_at')::timestamptz, pg_catalog.now()) AS created_at,
	   COALESCE((j->>'updated_at')::timestamptz, (j->>'created_at')::timestamptz, pg_catalog.now()) AS updated_at,
	   CASE WHEN j->'metadata' IS NULL OR pg_catalog.jsonb_typeof(j->'metadata') = 'null' THEN '{}'::jsonb
			WHEN pg_catalog.jsonb_typeof(j->'metadata') = 'object' THEN j->'metadata'
			WHEN pg_catalog.jsonb_typeof(j->'metadata') = 'string'
				 AND pg_catalog.left(pg_catalog.ltrim(j->>'metadata'), 1) = '{' THEN (j->>'metadata')::jsonb
			ELSE pg_catalog.jsonb_build_object('legacy_metadata', j->'metadata') END AS metadata
  FROM :"legacy_schema".accounts a, LATERAL pg_catalog.to_jsonb(a) j;

CREATE TEMPORARY TABLE legacy_balances ON COMMIT DROP AS
SELECT COALESCE((j->>'balance_id')::uuid, pg_catalog.gen_random_uuid()) AS balance_id,
	   (j->>'account_id')::uuid AS account_id,
	   pg_catalog.upper(pg_catalog.btrim(COALESCE(j->>'symbol', j->>'asset'))) AS asset,
	   COALESCE((j->>'available_balance')::numeric, (j->>'available')::numeric, 0) AS available,
	   COALESCE((j->>'locked_balance')::numeric, (j->>'locked')::numeric, 0) AS locked,
	   COALESCE((j->>'last_updated')::timestamptz, (j->>'updated_at')::timestamptz, pg_catalog.now()) AS last_updated
  FROM :"legacy_schema".balances b, LATERAL pg_catalog.to_jsonb(b) j;

-- Refuse data the ledger would not hold, listing every problem at once
-- (fix it in the legacy schema, then run this again).
DO $m$
DECLARE
	problems text[];
	r record;
BEGIN
	FOR r IN
		SELECT 'account ' || COALESCE(account_id::text, '(null id)') || ': ' || what AS problem
		  FROM (SELECT account_id, 'user_id is empty' AS what FROM pg_temp.legacy_accounts
				 WHERE user_id IS NULL OR user_id = ''
				UNION ALL
				SELECT account_id, 'account_id is NULL' FROM pg_temp.legacy_accounts WHERE account_id IS NULL
				UNION ALL
				SELECT account_id, pg_catalog.format('account_type %L is not SPOT, MARGIN or FUTURES', account_type)
				  FROM pg_temp.legacy_accounts WHERE account_type NOT IN ('SPOT', 'MARGIN', 'FUTURES')
				UNION ALL
				SELECT account_id, pg_catalog.format('status %L is not ACTIVE, SUSPENDED or CLOSED', status)
				  FROM pg_temp.legacy_accounts WHERE status NOT IN ('ACTIVE', 'SUSPENDED', 'CLOSED')
				UNION ALL
				SELECT account_id, pg_catalog.format('kyc_status %L is not PENDING, APPROVED or REJECTED', kyc_status)
				  FROM pg_temp.legacy_accounts WHERE kyc_status NOT IN ('PENDING', 'APPROVED', 'REJECTED')
				UNION ALL
				SELECT a.account_id, pg_catalog.format('(user_id, account_type) = (%L, %L) is not unique', a.user_id, a.account_type)
				  FROM pg_temp.legacy_accounts a
				 WHERE (SELECT pg_catalog.count(*) FROM pg_temp.legacy_accounts b
						 WHERE b.user_id = a.user_id AND b.account_type = a.account_type) > 1) p
		UNION ALL
		SELECT pg_catalog.format('balance %s (account %s, asset %L): %s', balance_id, account_id, asset, what)
		  FROM (SELECT *, 'asset code must match ^[A-Z0-9]{1,10}$' AS what FROM pg_temp.legacy_balances
				 WHERE asset IS NULL OR asset !~ '^[A-Z0-9]{1,10}$'
				UNION ALL
				SELECT *, 'no such legacy account' FROM pg_temp.legacy_balances b
				 WHERE NOT EXISTS (SELECT FROM pg_temp.legacy_accounts a WHERE a.account_id = b.account_id)
				UNION ALL
				SELECT *, pg_catalog.format('negative amount (available %s, locked %s)', available, locked)
				  FROM pg_temp.legacy_balances WHERE available < 0 OR locked < 0
				UNION ALL
				SELECT *, pg_catalog.format('amount not a multiple of 1e-8 or beyond numeric(24,8) (available %s, locked %s)', available, locked)
				  FROM pg_temp.legacy_balances
				 WHERE pg_catalog.round(available, 8) <> available OR pg_catalog.round(locked, 8) <> locked
					OR available + locked >= 1e16
				UNION ALL
				SELECT b.*, 'duplicate (account, asset)' FROM pg_temp.legacy_balances b
				 WHERE (SELECT pg_catalog.count(*) FROM pg_temp.legacy_balances c
						 WHERE c.account_id = b.account_id AND c.asset = b.asset) > 1) q
		ORDER BY 1
	LOOP
		problems := problems || r.problem;
	END LOOP;
	IF problems IS NOT NULL THEN
		RAISE EXCEPTION 'the legacy data has % row(s) the ledger cannot hold; nothing was migrated', pg_catalog.cardinality(problems)
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.array_to_string(problems[1:50], E'\n'),
				  HINT = 'Correct these rows in the legacy schema, then run migrate_legacy.sql again.';
	END IF;
	FOR r IN
		SELECT a.account_id, pg_catalog.sum(b.available + b.locked) AS held
		  FROM pg_temp.legacy_accounts a JOIN pg_temp.legacy_balances b USING (account_id)
		 WHERE a.status = 'CLOSED'
		 GROUP BY a.account_id HAVING pg_catalog.sum(b.available + b.locked) > 0
	LOOP
		RAISE WARNING 'CLOSED account % holds funds (%); migrated as it is', r.account_id, r.held;
	END LOOP;
END
$m$;

INSERT INTO exchange.accounts
	   (account_id, user_id, account_type, status, kyc_status, created_at, updated_at, metadata)
SELECT account_id, user_id, account_type, status, kyc_status, created_at, updated_at, metadata
  FROM pg_temp.legacy_accounts;

INSERT INTO exchange.balances
	   (balance_id, account_id, symbol, available_balance, locked_balance, last_updated)
SELECT balance_id, account_id, asset, available + locked, 0, last_updated
  FROM pg_temp.legacy_balances;

INSERT INTO exchange.balance_journal
	   (account_id, asset, delta_available, delta_locked, kind, reference, actor)
SELECT account_id, asset, available + locked, 0, 'MIGRATION', 'legacy balance ' || balance_id, 'migration'
  FROM pg_temp.legacy_balances
 WHERE available + locked <> 0
 ORDER BY account_id, asset;

-- The ledger's own check, when this version has it: any violation rolls the
-- whole migration back.
DO $m$
DECLARE
	violations text;
BEGIN
	IF pg_catalog.to_regprocedure('exchange.check_invariants()') IS NULL THEN
		RAISE NOTICE 'exchange.check_invariants() does not exist in this version: not run';
		RETURN;
	END IF;
	EXECUTE 'SELECT pg_catalog.string_agg(pg_catalog.format(''%s: %s'', invariant, detail), E''\n'') FROM exchange.check_invariants()'
		INTO violations;
	IF violations IS NOT NULL THEN
		RAISE EXCEPTION 'the migrated ledger breaks its invariants; nothing was migrated'
			USING ERRCODE = '23514', DETAIL = violations;
	END IF;
END
$m$;

-- What was migrated, per asset.
\set QUIET off
\pset footer off
SELECT b.asset,
	   pg_catalog.count(*) AS balances,
	   pg_catalog.sum(b.available + b.locked) AS migrated_total,
	   pg_catalog.sum(b.locked) AS of_which_was_locked
  FROM pg_temp.legacy_balances b
 GROUP BY b.asset
 ORDER BY b.asset;
SELECT (SELECT pg_catalog.count(*) FROM exchange.accounts) AS accounts,
	   (SELECT pg_catalog.count(*) FROM exchange.balances) AS balances,
	   (SELECT pg_catalog.count(*) FROM exchange.balance_journal WHERE kind = 'MIGRATION') AS migration_journal_rows;

COMMIT;
