-- pgTAP: README "Security model".  PUBLIC can do nothing on the
-- schema, its tables, sequences and functions; a role granted a profile with grant_adapter can
-- execute exactly that profile's functions (among those that exist); no application role can
-- write a table directly, or read the outbox or the service registry; only superusers grant.
-- Roles are created inside the transaction, which is rolled back, so they never outlive it.
BEGIN;
CREATE EXTENSION exchange_adapter;

CREATE ROLE exa_regress_trader;
CREATE ROLE exa_regress_engine;
CREATE ROLE exa_regress_operator;
CREATE ROLE exa_regress_all;
CREATE ROLE exa_regress_nobody;
SELECT exchange.grant_adapter('exa_regress_trader'::regrole, 'trader');
SELECT exchange.grant_adapter('exa_regress_engine'::regrole, 'engine');
SELECT exchange.grant_adapter('exa_regress_operator'::regrole, 'operator');
SELECT exchange.grant_adapter('exa_regress_all'::regrole);

-- The profiles (README "Security model"): trader (place, cancel, reads), engine (apply_trade,
-- apply_match, trigger, expire), operator (accounts, markets, funds, holds, registry -- and the
-- operator's tools check_invariants, adapter_status, flush_outbox), all = the union; every
-- profile also executes the market-data reads (README "Market data").
CREATE TEMP TABLE profile_functions (profile text, fn name);
INSERT INTO profile_functions
SELECT profile, unnest('{order_book_depth,ticker,candles}'::name[])
  FROM unnest('{trader,engine,operator}'::text[]) profile
UNION ALL
SELECT 'trader', unnest('{place_order,cancel_order,cancel_orders,place_orders,cancel_order_ids}'::name[])
UNION ALL
SELECT 'engine', unnest('{apply_trade,apply_match,trigger_stop_orders,expire_order,expire_orders,apply_trades,apply_matches}'::name[])
UNION ALL
SELECT 'operator', unnest('{create_account,set_account_status,set_kyc_status,create_market,set_market_status,
							set_market_matching,
							deposit,withdraw,lock_balance,unlock_balance,capture_hold,check_invariants,
							register_service,heartbeat_service,deregister_service,discover_services,
							adapter_status,flush_outbox}'::name[]);
INSERT INTO profile_functions SELECT DISTINCT 'all', fn FROM profile_functions;

CREATE TEMP TABLE app_roles (role name, profile text);
INSERT INTO app_roles VALUES ('exa_regress_trader', 'trader'), ('exa_regress_engine', 'engine'),
	('exa_regress_operator', 'operator'), ('exa_regress_all', 'all'), ('exa_regress_nobody', NULL);

CREATE TEMP VIEW ledger_relations AS
SELECT c.oid, c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'exchange'::regnamespace AND c.relkind IN ('r', 'v', 'p')
   AND c.relname NOT IN ('outbox', 'services');

-- Runs stmt as role in a subtransaction that is always rolled back; returns the SQLSTATE, or
-- 'ok' when it succeeded.
CREATE FUNCTION pg_temp.as_role(r name, stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		EXECUTE format('SET LOCAL ROLE %I', r);
		EXECUTE stmt;
		RAISE EXCEPTION USING ERRCODE = 'ZZ999';
	EXCEPTION WHEN OTHERS THEN
		RETURN CASE SQLSTATE WHEN 'ZZ999' THEN 'ok' ELSE SQLSTATE END;
	END;
END
$$;

SELECT plan(4 + 5 * 6 + 4 * 2 + 9 + 4 + 6);

-- PUBLIC
SELECT ok(NOT has_schema_privilege('public', 'exchange', 'USAGE')
		  AND NOT has_schema_privilege('public', 'exchange', 'CREATE'),
		  'PUBLIC has neither USAGE nor CREATE on schema exchange');
SELECT is_empty($$ SELECT c.relname, p FROM pg_class c,
						 unnest('{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}'::text[]) p
					WHERE c.relnamespace = 'exchange'::regnamespace AND c.relkind IN ('r', 'v', 'p')
					  AND has_table_privilege('public', c.oid, p) $$,
				'PUBLIC has no privilege on any table or view');
SELECT is_empty($$ SELECT c.relname, p FROM pg_class c, unnest('{USAGE,SELECT,UPDATE}'::text[]) p
					WHERE c.relnamespace = 'exchange'::regnamespace AND c.relkind = 'S'
					  AND has_sequence_privilege('public', c.oid, p) $$,
				'PUBLIC has no privilege on any sequence');
SELECT is_empty($$ SELECT oid::regprocedure FROM pg_proc
					WHERE pronamespace = 'exchange'::regnamespace
					  AND has_function_privilege('public', oid, 'EXECUTE') $$,
				'PUBLIC executes no function of schema exchange');

-- Each application role (5 roles x 6 tests)
SELECT is(has_schema_privilege(role, 'exchange', 'USAGE'), profile IS NOT NULL,
		  format('%s: USAGE on schema exchange %s', role, CASE WHEN profile IS NULL THEN 'not granted' ELSE 'granted' END))
  FROM app_roles ORDER BY role;
SELECT ok(NOT has_schema_privilege(role, 'exchange', 'CREATE'), format('%s: no CREATE on schema exchange', role))
  FROM app_roles ORDER BY role;
SELECT is(ARRAY(SELECT l.relname::text FROM ledger_relations l WHERE has_table_privilege(a.role, l.oid, 'SELECT')
				 ORDER BY l.relname COLLATE "C"),
		  CASE WHEN a.profile IS NULL THEN '{}'::text[]
			   ELSE ARRAY(SELECT l.relname::text FROM ledger_relations l ORDER BY l.relname COLLATE "C") END,
		  format('%s: SELECT on %s', a.role, CASE WHEN a.profile IS NULL THEN 'nothing' ELSE 'every ledger table and view' END))
  FROM app_roles a ORDER BY role;
SELECT is_empty(format($q$ SELECT c.relname, p FROM pg_class c,
							   unnest('{INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}'::text[]) p
						  WHERE c.relnamespace = 'exchange'::regnamespace AND c.relkind IN ('r', 'v', 'p')
							AND has_table_privilege(%L, c.oid, p)
						 UNION ALL
						 SELECT c.relname, p FROM pg_class c, unnest('{USAGE,SELECT,UPDATE}'::text[]) p
						  WHERE c.relnamespace = 'exchange'::regnamespace AND c.relkind = 'S'
							AND has_sequence_privilege(%L, c.oid, p) $q$, role, role),
				format('%s: cannot write any table (no INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER) nor use a sequence', role))
  FROM app_roles ORDER BY role;
SELECT ok(NOT has_table_privilege(role, 'exchange.outbox', 'SELECT')
		  AND NOT has_table_privilege(role, 'exchange.services', 'SELECT'),
		  format('%s: cannot read the outbox or the service registry', role))
  FROM app_roles ORDER BY role;
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
				 WHERE p.pronamespace = 'exchange'::regnamespace
				   AND has_function_privilege(a.role, p.oid, 'EXECUTE')
				 ORDER BY p.proname COLLATE "C"),
		  ARRAY(SELECT p.proname::text FROM pg_proc p JOIN profile_functions f ON f.fn = p.proname
				 WHERE p.pronamespace = 'exchange'::regnamespace AND f.profile = a.profile
				 ORDER BY p.proname COLLATE "C"),
		  format('%s: executes exactly the functions of profile %s that exist', a.role, coalesce(a.profile, '(none)')))
  FROM app_roles a ORDER BY role;

-- What the roles try (4 x 2): a trader and an operator, reading and writing.
SELECT is(pg_temp.as_role('exa_regress_trader', 'INSERT INTO exchange.accounts (user_id) VALUES (''exa_regress_x'')'),
		  '42501', 'trader: INSERT INTO accounts is refused');
SELECT is(pg_temp.as_role('exa_regress_trader', 'SELECT exchange.deposit(gen_random_uuid(), ''BTC'', 1)'),
		  '42501', 'trader: deposit() is refused');
SELECT is(pg_temp.as_role('exa_regress_operator', 'SELECT exchange.create_account(''exa_regress_op_user'')'),
		  'ok', 'operator: create_account() works');
SELECT is(pg_temp.as_role('exa_regress_operator', 'UPDATE exchange.balances SET available_balance = 1'),
		  '42501', 'operator: UPDATE balances is refused');
SELECT is(pg_temp.as_role('exa_regress_operator', 'DELETE FROM exchange.balance_journal'),
		  '42501', 'operator: DELETE FROM balance_journal is refused');
SELECT is(pg_temp.as_role('exa_regress_all', 'TRUNCATE exchange.orders'),
		  '42501', 'all: TRUNCATE orders is refused');
SELECT is(pg_temp.as_role('exa_regress_all', 'SELECT * FROM exchange.outbox'),
		  '42501', 'all: reading the outbox is refused');
SELECT is(pg_temp.as_role('exa_regress_all', 'SELECT count(*) FROM exchange.account_balances'),
		  'ok', 'all: reading the account_balances view works');

-- The market-data reads (6): every profile calls them, a role without one cannot, nor PUBLIC.
SELECT is(pg_temp.as_role('exa_regress_trader', 'SELECT * FROM exchange.ticker()'),
		  'ok', 'trader: ticker() works');
SELECT is(pg_temp.as_role('exa_regress_engine', 'SELECT * FROM exchange.ticker()'),
		  'ok', 'engine: ticker() works');
SELECT is(pg_temp.as_role('exa_regress_operator', 'SELECT * FROM exchange.ticker()'),
		  'ok', 'operator: ticker() works');
SELECT is(pg_temp.as_role('exa_regress_all', 'SELECT * FROM exchange.ticker()'),
		  'ok', 'all: ticker() works');
SELECT is(pg_temp.as_role('exa_regress_nobody', 'SELECT * FROM exchange.ticker()'),
		  '42501', 'a role without a profile cannot call ticker()');
SELECT ok(NOT has_function_privilege('public', 'exchange.order_book_depth(text, integer)', 'EXECUTE')
		  AND NOT has_function_privilege('public', 'exchange.ticker(text)', 'EXECUTE')
		  AND NOT has_function_privilege('public', 'exchange.candles(text, interval, timestamptz, timestamptz)', 'EXECUTE'),
		  'PUBLIC cannot execute order_book_depth, ticker or candles');

-- Granting is for superusers only (9)
SELECT is(pg_temp.as_role('exa_regress_all', 'SELECT exchange.grant_adapter(''exa_regress_nobody''::regrole, ''all'')'),
		  '42501', 'an application role cannot call grant_adapter');
SELECT is(pg_temp.as_role('exa_regress_all', 'SELECT exchange.revoke_adapter(''exa_regress_trader''::regrole)'),
		  '42501', 'an application role cannot call revoke_adapter');
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA exchange TO exa_regress_nobody;
GRANT USAGE ON SCHEMA exchange TO exa_regress_nobody;
SELECT is(pg_temp.as_role('exa_regress_nobody', 'SELECT exchange.grant_adapter(''exa_regress_nobody''::regrole, ''all'')'),
		  '42501', 'grant_adapter refuses a non-superuser even with EXECUTE granted on it');
SELECT is(pg_temp.as_role('exa_regress_nobody', 'SELECT exchange.revoke_adapter(''exa_regress_trader''::regrole)'),
		  '42501', 'revoke_adapter refuses a non-superuser even with EXECUTE granted on it');
SELECT exchange.revoke_adapter('exa_regress_nobody'::regrole);
SELECT ok(NOT has_schema_privilege('exa_regress_nobody', 'exchange', 'USAGE'),
		  'revoke_adapter takes back USAGE, whoever granted it');
SELECT is_empty($$ SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'exchange'::regnamespace
					  AND has_function_privilege('exa_regress_nobody', oid, 'EXECUTE') $$,
				'revoke_adapter takes back EXECUTE on every function');
SELECT exchange.revoke_adapter('exa_regress_all'::regrole);
SELECT is_empty($$ SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'exchange'::regnamespace
					  AND has_table_privilege('exa_regress_all', c.oid, 'SELECT') $$,
				'revoke_adapter takes back SELECT on every table and view');
SELECT is(pg_temp.as_role('exa_regress_all', 'SELECT count(*) FROM exchange.accounts'),
		  '42501', 'after revoke_adapter the role reads nothing');
SELECT throws_ok($$ SELECT exchange.revoke_adapter((SELECT nspowner FROM pg_namespace WHERE nspname = 'exchange')::regrole) $$,
				 '22023', NULL, 'revoke_adapter refuses the schema owner');

-- A role named exchange_adapter gets profile all at install (4).
SET client_min_messages = warning;
DROP EXTENSION exchange_adapter;
RESET client_min_messages;
DO $$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'exchange_adapter') THEN
		CREATE ROLE exchange_adapter;
	END IF;
END $$;
CREATE EXTENSION exchange_adapter;
SELECT ok(has_schema_privilege('exchange_adapter', 'exchange', 'USAGE'), 'exchange_adapter: USAGE on schema exchange after install');
SELECT ok(has_table_privilege('exchange_adapter', 'exchange.balances', 'SELECT')
		  AND NOT has_table_privilege('exchange_adapter', 'exchange.balances', 'UPDATE'),
		  'exchange_adapter: reads balances, cannot update them');
SELECT ok(has_function_privilege('exchange_adapter', 'exchange.deposit(uuid,text,numeric,text)', 'EXECUTE')
		  AND NOT has_function_privilege('exchange_adapter', 'exchange.grant_adapter(regrole,text)', 'EXECUTE'),
		  'exchange_adapter: executes deposit, not grant_adapter');
SELECT ok(NOT has_table_privilege('exchange_adapter', 'exchange.outbox', 'SELECT'),
		  'exchange_adapter: cannot read the outbox');

SELECT * FROM finish();
ROLLBACK;
