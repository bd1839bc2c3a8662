-- Roles whose names need quoting (README "Security model"): "AppRole" and "order-api" hold
-- CREATE and default privileges on a schema exchange that exists before the extension, as an
-- orchestrator may leave it.  CREATE EXTENSION revokes their CREATE, resets every ACL their
-- default privileges put on the new objects, and succeeds; grant_adapter and revoke_adapter
-- take them as regrole.  Each name is written once, by the role's own quoting rules: never
-- quoted a second time.
--
-- This file drops and recreates the extension and creates the two roles, which it drops again
-- at the end.  It leaves a fresh, empty extension installed.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

-- 0. Start from nothing.
SET client_min_messages = warning;
SET exchange_adapter.allow_drop = on;
DROP EXTENSION exchange_adapter;
RESET exchange_adapter.allow_drop;
DROP SCHEMA exchange;
DROP ROLE IF EXISTS "AppRole";
DROP ROLE IF EXISTS "order-api";
RESET client_min_messages;

-- 1. The orchestrator's preparation with those names.
CREATE ROLE "AppRole";
CREATE ROLE "order-api";
CREATE SCHEMA exchange;
GRANT USAGE, CREATE ON SCHEMA exchange TO "AppRole", "order-api";
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON TABLES TO "AppRole";
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON SEQUENCES TO "order-api";
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON FUNCTIONS TO "AppRole", "order-api";
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON TYPES TO "order-api";

-- 2. The install succeeds and names the roles as they are written in SQL.
CREATE EXTENSION exchange_adapter;
SELECT extversion FROM pg_extension WHERE extname = 'exchange_adapter';

-- 3. Neither role may create in the schema, and no member carries a grant of theirs.
SELECT r AS role, has_schema_privilege(r, 'exchange', 'USAGE') AS usage,
	   has_schema_privilege(r, 'exchange', 'CREATE') AS "create"
  FROM unnest('{AppRole,order-api}'::text[]) r ORDER BY 1;
CREATE TEMP VIEW member_grants AS
SELECT pg_describe_object(d.classid, d.objid, 0) AS object, a.grantee::regrole AS grantee,
	   a.privilege_type
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid
  LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
  LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
  LEFT JOIN pg_type t ON d.classid = 'pg_type'::regclass AND t.oid = d.objid,
	   aclexplode(coalesce(c.relacl, p.proacl, t.typacl)) a
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND e.extname = 'exchange_adapter'
   AND a.grantee::regrole::text IN ('"AppRole"', '"order-api"');
SELECT count(*) AS grants_to_the_roles FROM member_grants;

-- 4. grant_adapter and revoke_adapter, called as documented (typed regrole).
SELECT exchange.grant_adapter('"AppRole"'::regrole, 'trader'::text);
SELECT exchange.grant_adapter('"order-api"'::regrole, 'engine'::text);
SELECT r AS role,
	   has_schema_privilege(r, 'exchange', 'CREATE') AS "create",
	   has_table_privilege(r, 'exchange.orders', 'SELECT') AS select_orders,
	   has_table_privilege(r, 'exchange.orders', 'INSERT') AS insert_orders,
	   has_function_privilege(r, 'exchange.place_order(uuid, text, text, text, numeric, numeric, text, numeric, text, jsonb)', 'EXECUTE') AS place_order,
	   has_function_privilege(r, 'exchange.apply_trade(uuid, numeric, numeric, numeric, text, timestamptz, text, text)', 'EXECUTE') AS apply_trade
  FROM unnest('{AppRole,order-api}'::text[]) r ORDER BY 1;
SELECT exchange.revoke_adapter('"AppRole"'::regrole);
SELECT exchange.revoke_adapter('"order-api"'::regrole);
SELECT count(*) AS grants_to_the_roles FROM member_grants;
SELECT r AS role, has_schema_privilege(r, 'exchange', 'USAGE') AS usage
  FROM unnest('{AppRole,order-api}'::text[]) r ORDER BY 1;

-- 5. Clean up: the roles' default privileges, the roles.
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange REVOKE ALL ON TABLES FROM "AppRole";
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange REVOKE ALL ON SEQUENCES FROM "order-api";
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange REVOKE ALL ON FUNCTIONS FROM "AppRole", "order-api";
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange REVOKE ALL ON TYPES FROM "order-api";
DROP VIEW member_grants;
DROP ROLE "AppRole";
DROP ROLE "order-api";
SELECT * FROM exchange.check_invariants();
