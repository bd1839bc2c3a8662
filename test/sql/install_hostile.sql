-- Installing into a hostile schema (README "Security model").  The orchestrator's init
-- creates schema exchange before the extension exists, granting its application role
-- exchange_adapter USAGE and CREATE on it and default privileges on what is created in it.
-- That role may then plant objects in exchange that shadow what the install script uses: here
-- exact-type overloads of built-ins and of API functions, and operators, each raising if it is
-- ever invoked.  CREATE EXTENSION must succeed without invoking any of them and leave the role
-- no way to write the ledger; a schema owned by a non-superuser is refused; DROP EXTENSION is
-- refused while the ledger holds rows and leaves schema exchange empty and without grants.
--
-- This file drops and recreates the extension, and creates roles (cluster-wide: the role
-- exchange_adapter, whose name the extension knows, and exa_regress_install_*), which it drops
-- again at the end.  It leaves a fresh, empty extension installed.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

-- 0. Start from nothing: no extension, no schema exchange, no role of this file.
SET client_min_messages = warning;
SET exchange_adapter.allow_drop = on;
DROP EXTENSION exchange_adapter;
RESET exchange_adapter.allow_drop;
DROP SCHEMA exchange;
DROP ROLE IF EXISTS exchange_adapter;
DROP ROLE IF EXISTS exa_regress_install_app;
DROP ROLE IF EXISTS exa_regress_install_owner;
RESET client_min_messages;
SELECT count(*) AS exchange_schemas FROM pg_namespace WHERE nspname = 'exchange';

-- 1. The orchestrator's preparation, as a superuser: the role, the schema (owned by the
-- superuser), CREATE and USAGE for the role, and default privileges in the schema.
CREATE ROLE exchange_adapter LOGIN;
CREATE SCHEMA exchange;
GRANT USAGE, CREATE ON SCHEMA exchange TO exchange_adapter;
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON TABLES TO exchange_adapter;
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON SEQUENCES TO exchange_adapter;
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON FUNCTIONS TO exchange_adapter;
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON TYPES TO exchange_adapter;
SELECT r.rolsuper AS owner_is_superuser,
	   has_schema_privilege('exchange_adapter', n.oid, 'CREATE') AS role_may_create
  FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'exchange';
SELECT d.defaclobjtype, a.grantee::regrole, a.privilege_type
  FROM pg_default_acl d, aclexplode(d.defaclacl) a
 WHERE d.defaclnamespace = 'exchange'::regnamespace
 ORDER BY 1, 3;

-- 2. The role plants its objects in exchange.  Each raises if invoked.
SET ROLE exchange_adapter;
CREATE FUNCTION exchange.hostile(what text) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hostile % invoked', what; END $$;
-- built-ins the install script and the C code call
CREATE FUNCTION exchange.gen_random_uuid() RETURNS uuid
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('gen_random_uuid()'); RETURN NULL; END $$;
CREATE FUNCTION exchange.now() RETURNS timestamptz
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('now()'); RETURN NULL; END $$;
CREATE FUNCTION exchange.jsonb_typeof(jsonb) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('jsonb_typeof(jsonb)'); RETURN NULL; END $$;
CREATE FUNCTION exchange.format(text, name) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('format(text, name)'); RETURN NULL; END $$;
CREATE FUNCTION exchange.format(text, text, text, text) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('format(text, text, text, text)'); RETURN NULL; END $$;
CREATE FUNCTION exchange.array_to_string(text[], text) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('array_to_string(text[], text)'); RETURN NULL; END $$;
CREATE FUNCTION exchange.quote_ident(text) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('quote_ident(text)'); RETURN NULL; END $$;
CREATE FUNCTION exchange.aclexplode(acl aclitem[], OUT grantor oid, OUT grantee oid,
									OUT privilege_type text, OUT is_grantable boolean)
RETURNS SETOF record
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('aclexplode(aclitem[])'); END $$;
CREATE FUNCTION exchange.pg_extension_config_dump(regclass, text) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('pg_extension_config_dump(regclass, text)'); END $$;
CREATE FUNCTION exchange.pg_get_serial_sequence(text, text) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('pg_get_serial_sequence(text, text)'); RETURN NULL; END $$;
CREATE FUNCTION exchange.string_agg(text, text) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('string_agg(text, text)'); RETURN NULL; END $$;
CREATE FUNCTION exchange.count(text) RETURNS bigint
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('count(text)'); RETURN NULL; END $$;
-- operators on the exact types of the columns the script and the C code compare
CREATE FUNCTION exchange.op_varchar_varchar(varchar, varchar) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RETURN exchange.hostile('operator(varchar, varchar)'); END $$;
CREATE FUNCTION exchange.op_varchar_text(varchar, text) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RETURN exchange.hostile('operator(varchar, text)'); END $$;
CREATE FUNCTION exchange.op_uuid_uuid(uuid, uuid) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RETURN exchange.hostile('operator(uuid, uuid)'); END $$;
CREATE FUNCTION exchange.op_name_text(name, text) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RETURN exchange.hostile('operator(name, text)'); END $$;
CREATE FUNCTION exchange.op_numeric_numeric(numeric, numeric) RETURNS numeric
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('operator(numeric, numeric)'); RETURN NULL; END $$;
CREATE FUNCTION exchange.op_numeric_integer(numeric, integer) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RETURN exchange.hostile('operator(numeric, integer)'); END $$;
CREATE FUNCTION exchange.op_text_text(text, text) RETURNS text
LANGUAGE plpgsql AS $$ BEGIN PERFORM exchange.hostile('operator(text, text)'); RETURN NULL; END $$;
CREATE OPERATOR exchange.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = exchange.op_varchar_varchar);
CREATE OPERATOR exchange.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = exchange.op_varchar_text);
CREATE OPERATOR exchange.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = exchange.op_uuid_uuid);
CREATE OPERATOR exchange.= (LEFTARG = name, RIGHTARG = text, FUNCTION = exchange.op_name_text);
CREATE OPERATOR exchange.<> (LEFTARG = varchar, RIGHTARG = text, FUNCTION = exchange.op_varchar_text);
CREATE OPERATOR exchange.~ (LEFTARG = varchar, RIGHTARG = text, FUNCTION = exchange.op_varchar_text);
CREATE OPERATOR exchange.+ (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = exchange.op_numeric_numeric);
CREATE OPERATOR exchange.>= (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = exchange.op_numeric_integer);
CREATE OPERATOR exchange.> (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = exchange.op_numeric_integer);
CREATE OPERATOR exchange.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = exchange.op_text_text);
-- overloads of API functions with other argument types
CREATE FUNCTION exchange.deposit(text, text, numeric) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RETURN exchange.hostile('deposit(text, text, numeric)'); END $$;
CREATE FUNCTION exchange.create_account(varchar, varchar) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RETURN exchange.hostile('create_account(varchar, varchar)'); END $$;
CREATE FUNCTION exchange.grant_adapter(text, text) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RETURN exchange.hostile('grant_adapter(text, text)'); END $$;
RESET ROLE;
-- What the role planted, by kind.
SELECT 'function' AS kind, count(*) FROM pg_proc
 WHERE pronamespace = 'exchange'::regnamespace AND proowner = 'exchange_adapter'::regrole
UNION ALL
SELECT 'operator', count(*) FROM pg_operator
 WHERE oprnamespace = 'exchange'::regnamespace AND oprowner = 'exchange_adapter'::regrole;

-- 3. The superuser installs the extension.  It revokes CREATE on the schema from the role (a
-- WARNING, since CREATE EXTENSION hides NOTICEs) and succeeds: none of the planted objects
-- was invoked, since each would have raised and aborted it.
CREATE EXTENSION exchange_adapter;
SELECT extname, extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'exchange_adapter';
SELECT count(*) > 0 AS dump_registered FROM pg_extension, unnest(extconfig) WHERE extname = 'exchange_adapter';

-- 4. Afterwards: the role may use the schema but not create in it ...
SELECT has_schema_privilege('exchange_adapter', 'exchange', 'USAGE') AS usage,
	   has_schema_privilege('exchange_adapter', 'exchange', 'CREATE') AS "create";
-- ... it reads the ledger (profile 'all', granted at install because the role exists) but
-- cannot write any table, nor read the internal ones, whatever the default privileges said ...
CREATE TEMP VIEW members AS
SELECT d.classid::regclass AS catalog, d.objid
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'exchange_adapter';
SELECT c.relname, c.relkind,
	   array_to_string(ARRAY(SELECT p FROM unnest('{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}'::text[]) p
							  WHERE has_table_privilege('exchange_adapter', c.oid, p)), ',') AS exchange_adapter_may,
	   array_to_string(ARRAY(SELECT p FROM unnest('{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}'::text[]) p
							  WHERE has_table_privilege('public', c.oid, p)), ',') AS public_may
  FROM members m JOIN pg_class c ON c.oid = m.objid
 WHERE m.catalog = 'pg_class'::regclass AND c.relkind IN ('r', 'v', 'p')
 ORDER BY c.relkind, c.relname;
SELECT c.relname,
	   array_to_string(ARRAY(SELECT p FROM unnest('{USAGE,SELECT,UPDATE}'::text[]) p
							  WHERE has_sequence_privilege('exchange_adapter', c.oid, p)), ',') AS exchange_adapter_may
  FROM members m JOIN pg_class c ON c.oid = m.objid
 WHERE m.catalog = 'pg_class'::regclass AND c.relkind = 'S'
 ORDER BY c.relname;
-- ... and executes the API functions, never the administration, trigger or row-check functions
-- (README "Data model": the row checks are internal); PUBLIC executes none.
SELECT bool_and(has_function_privilege('exchange_adapter', p.oid, 'EXECUTE'))
		   FILTER (WHERE p.proname NOT IN ('grant_adapter', 'revoke_adapter')
					 AND p.proname !~ '_row_check$'
					 AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)) AS executes_every_api_function,
	   bool_or(has_function_privilege('public', p.oid, 'EXECUTE')) AS public_executes_any
  FROM members m JOIN pg_proc p ON p.oid = m.objid
 WHERE m.catalog = 'pg_proc'::regclass;
SELECT p.oid::regprocedure AS function,
	   has_function_privilege('exchange_adapter', p.oid, 'EXECUTE') AS exchange_adapter_may
  FROM members m JOIN pg_proc p ON p.oid = m.objid
 WHERE m.catalog = 'pg_proc'::regclass
   AND (p.proname IN ('grant_adapter', 'revoke_adapter')
		OR p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype))
 ORDER BY p.proname;
-- The default privileges reached no member: every grant on a member is its owner's, the
-- profile's (SELECT on a table or view, EXECUTE on a function) or PUBLIC's built-in USAGE on a
-- type.  Any other grant is listed here.
SELECT pg_describe_object(m.catalog, m.objid, 0) AS object, a.grantee::regrole, a.privilege_type
  FROM members m
  LEFT JOIN pg_class c ON m.catalog = 'pg_class'::regclass AND c.oid = m.objid
  LEFT JOIN pg_proc p ON m.catalog = 'pg_proc'::regclass AND p.oid = m.objid
  LEFT JOIN pg_type t ON m.catalog = 'pg_type'::regclass AND t.oid = m.objid,
	   aclexplode(coalesce(c.relacl, p.proacl, t.typacl)) a
 WHERE a.grantee <> coalesce(c.relowner, p.proowner, t.typowner)
   AND NOT (a.grantee = 'exchange_adapter'::regrole AND a.privilege_type = 'SELECT' AND c.relkind IN ('r', 'v', 'p'))
   AND NOT (a.grantee = 'exchange_adapter'::regrole AND a.privilege_type = 'EXECUTE' AND p.oid IS NOT NULL)
   AND NOT (a.grantee = 0 AND a.privilege_type = 'USAGE' AND t.oid IS NOT NULL)
 ORDER BY 1, 2, 3;

-- 5. The planted objects were moved out of the way, before anything was created, to schema
-- exchange_quarantine (not part of the extension): still the role's own, no privilege on them
-- granted to anyone, and none left in exchange to shadow the extension's names.
SELECT p.oid::regprocedure AS planted, p.proowner::regrole AS owner, p.proacl IS NULL AS acl_untouched
  FROM pg_proc p
 WHERE p.pronamespace = 'exchange_quarantine'::regnamespace
   AND p.proname IN ('deposit', 'create_account', 'grant_adapter', 'gen_random_uuid', 'now')
 ORDER BY 1::text;
SELECT count(*) AS planted_left_in_exchange
  FROM pg_proc p
 WHERE p.pronamespace = 'exchange'::regnamespace
   AND NOT EXISTS (SELECT FROM members m WHERE m.catalog = 'pg_proc'::regclass AND m.objid = p.oid);
SELECT count(*) AS extension_members_in_quarantine
  FROM members m JOIN pg_proc p ON m.catalog = 'pg_proc'::regclass AND p.oid = m.objid
 WHERE p.pronamespace = 'exchange_quarantine'::regnamespace;

-- 6. The role works through the API; typed arguments reach the extension's functions, not the
-- planted overloads.
SET ROLE exchange_adapter;
SELECT pg_temp.label(account_id, 'kim'), user_id, status FROM exchange.create_account('exa_install_kim');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('kim'), 'BTC'::text, 2.5::numeric);
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('kim'), 'BTC', 0.5);
SELECT * FROM exchange.check_invariants();
-- Its writes are refused, and it can no longer create anything in exchange.
SELECT sqlstate, message FROM pg_temp.fails($$ UPDATE exchange.balances SET available_balance = 1000 $$);
SELECT sqlstate, message FROM pg_temp.fails($$ INSERT INTO exchange.accounts (user_id) VALUES ('exa_install_sneak') $$);
SELECT sqlstate, message FROM pg_temp.fails($$ TRUNCATE exchange.balance_journal $$);
SELECT sqlstate, message FROM pg_temp.fails($$ SELECT * FROM exchange.outbox $$);
SELECT sqlstate, message FROM pg_temp.fails($$ CREATE FUNCTION exchange.withdraw(text, text, numeric) RETURNS boolean LANGUAGE sql AS 'SELECT true' $$);
SELECT sqlstate, message FROM pg_temp.fails($$ CREATE OR REPLACE FUNCTION exchange.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT NULL::timestamptz' $$);
SELECT sqlstate, message FROM pg_temp.fails($$ SELECT exchange.grant_adapter('exchange_adapter'::regrole, 'all') $$);
RESET ROLE;

-- 7. Calls written the natural way, with untyped literals, must reach the extension's functions
-- too, not an overload the role planted.  The superuser grants a profile to another
-- application role as the README shows it ...
CREATE ROLE exa_regress_install_app;
SELECT exchange.grant_adapter('exa_regress_install_app', 'operator');
SELECT exchange.grant_adapter('exa_regress_install_app'::regrole, 'operator'::text);
-- ... which grants nothing on the planted functions ...
SELECT p.oid::regprocedure AS planted_function_granted
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.pronamespace = 'exchange'::regnamespace
   AND p.proowner = 'exchange_adapter'::regrole
   AND a.grantee = 'exa_regress_install_app'::regrole;
-- ... and opens an account with literals (the planted create_account(varchar, varchar) loses
-- to create_account(text, ...) here) ...
SELECT pg_temp.label(account_id, 'lee'), user_id FROM exchange.create_account('exa_install_lee', 'SPOT');
-- ... and that role deposits with the account id written as a literal, as a client library
-- sends it.
SET ROLE exa_regress_install_app;
SELECT 'deposit(''<uuid>'', ''BTC'', 1)' AS call,
	   (pg_temp.fails(format('SELECT exchange.deposit(%L, %L, 1)', pg_temp.id('lee'), 'BTC'))).*;
RESET ROLE;

-- 8. DROP EXTENSION is refused while the ledger holds rows (and so is DROP SCHEMA ... CASCADE,
-- which would drop the extension with it).
SELECT sqlstate, message, detail, hint FROM pg_temp.fails('DROP EXTENSION exchange_adapter');
SELECT sqlstate, message FROM pg_temp.fails('DROP SCHEMA exchange CASCADE');
SELECT sqlstate, message FROM pg_temp.fails('DROP EXTENSION exchange_adapter CASCADE');
SELECT count(*) AS accounts FROM exchange.accounts;
-- allow_drop is for superusers only.
SET ROLE exchange_adapter;
SELECT sqlstate, message FROM pg_temp.fails('SET exchange_adapter.allow_drop = on');
RESET ROLE;
-- With allow_drop on, it goes; the schema stays behind with its grants revoked.
SET exchange_adapter.allow_drop = on;
DROP EXTENSION exchange_adapter;
RESET exchange_adapter.allow_drop;
SELECT a.grantee::regrole, a.privilege_type
  FROM pg_namespace n, aclexplode(n.nspacl) a
 WHERE n.nspname = 'exchange' AND a.grantee <> n.nspowner;
-- Schema exchange is left empty; the quarantined objects are the role's own ...
SELECT 'function' AS kind, count(*), bool_and(proowner = 'exchange_adapter'::regrole) AS all_the_roles
  FROM pg_proc WHERE pronamespace = 'exchange'::regnamespace
UNION ALL
SELECT 'operator', count(*), bool_and(oprowner = 'exchange_adapter'::regrole)
  FROM pg_operator WHERE oprnamespace = 'exchange'::regnamespace
UNION ALL
SELECT 'relation', count(*), bool_and(relowner = 'exchange_adapter'::regrole)
  FROM pg_class WHERE relnamespace = 'exchange'::regnamespace;
SELECT 'quarantined function' AS kind, count(*), bool_and(proowner = 'exchange_adapter'::regrole) AS all_the_roles
  FROM pg_proc WHERE pronamespace = 'exchange_quarantine'::regnamespace
UNION ALL
SELECT 'quarantined operator', count(*), bool_and(oprowner = 'exchange_adapter'::regrole)
  FROM pg_operator WHERE oprnamespace = 'exchange_quarantine'::regnamespace;
-- ... and so are the orchestrator's default privileges (they name no object: they are what
-- CREATE EXTENSION found, and reset, at install).  DROP OWNED removes both.
SELECT d.defaclobjtype, a.grantee::regrole, a.privilege_type
  FROM pg_default_acl d, aclexplode(d.defaclacl) a
 WHERE d.defaclnamespace = 'exchange'::regnamespace AND a.privilege_type IN ('INSERT', 'EXECUTE', 'USAGE')
 ORDER BY 1, 3;
DROP OWNED BY exchange_adapter, exa_regress_install_app;
DROP SCHEMA exchange_quarantine;

-- 9. A schema exchange owned by a non-superuser is refused (42501); nothing is created.
CREATE ROLE exa_regress_install_owner;
ALTER SCHEMA exchange OWNER TO exa_regress_install_owner;
SELECT sqlstate, message, detail, hint FROM pg_temp.fails('CREATE EXTENSION exchange_adapter');
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'exchange_adapter';
ALTER SCHEMA exchange OWNER TO CURRENT_USER;
DROP ROLE exa_regress_install_owner;

-- 10. On an empty ledger DROP EXTENSION needs no allow_drop, and leaves schema exchange with no
-- object and no grant.
CREATE EXTENSION exchange_adapter;
SELECT has_schema_privilege('exchange_adapter', 'exchange', 'USAGE') AS role_usage_after_install;
DROP EXTENSION exchange_adapter;
SELECT 'relation' AS kind, count(*) FROM pg_class WHERE relnamespace = 'exchange'::regnamespace
UNION ALL SELECT 'function', count(*) FROM pg_proc WHERE pronamespace = 'exchange'::regnamespace
UNION ALL SELECT 'type', count(*) FROM pg_type WHERE typnamespace = 'exchange'::regnamespace
UNION ALL SELECT 'operator', count(*) FROM pg_operator WHERE oprnamespace = 'exchange'::regnamespace
UNION ALL SELECT 'event trigger', count(*) FROM pg_event_trigger WHERE evtname LIKE 'exchange_adapter%'
UNION ALL SELECT 'grant on the schema', count(*) FROM pg_namespace n, aclexplode(n.nspacl) a
							  WHERE n.nspname = 'exchange' AND a.grantee <> n.nspowner;

-- Clean up: the roles go, and a fresh extension is installed for the files that follow (core
-- creates the schema again).
DROP SCHEMA exchange;
DROP ROLE exchange_adapter;
DROP ROLE exa_regress_install_app;
CREATE EXTENSION exchange_adapter;
SELECT extname, extnamespace::regnamespace FROM pg_extension WHERE extname = 'exchange_adapter';
SELECT * FROM exchange.check_invariants();
