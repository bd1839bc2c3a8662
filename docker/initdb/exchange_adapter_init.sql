-- exchange_adapter_init.sql — run by 10-exchange-adapter.sh with psql
-- -v ON_ERROR_STOP=1 as a superuser, in the database to set up.
--
-- psql variables (all set by the shell script):
--   role_name         the application login role
--   profile           grant_adapter profile (trader, engine, operator, all)
--   database_setting  value for exchange_adapter.database ('' = leave alone)
--   set_password      on: set the role's password from password_file
--   password_file     file holding the password (read here, by psql)
--
-- Idempotent: a second run changes no catalog row and no setting.  The role,
-- the extension and the grants are made in ONE transaction, so a refusal (the
-- legacy tables, a superuser application role, a schema owned by a
-- non-superuser) leaves the database exactly as it was.  Never granted here:
-- CREATE on schema exchange, default privileges in it, or any write privilege
-- on the ledger (README "Security model"); existing ones are taken away.

\set ON_ERROR_STOP on
\set QUIET on
-- Our messages say where they come from; PL/pgSQL context lines would not help.
\set SHOW_CONTEXT never

-- Keep the role's password out of the server log, whatever the server's
-- logging settings: it is sent (to be hashed by the server) in this session.
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET log_min_duration_statement = -1;
SET search_path = pg_catalog, pg_temp;
SET client_min_messages = notice;

\if :set_password
\set app_password `cat -- :'password_file'`
\else
\set app_password ''
\endif

BEGIN;

-- ---------------------------------------------------------------------------
-- Helpers, in this session's temporary schema (gone when it ends).
-- ---------------------------------------------------------------------------

-- Stop, before anything is changed, when schema exchange holds objects that
-- the extension does not own while the extension is absent: these are the
-- legacy Go adapter's tables (or something else that CREATE EXTENSION would
-- collide with).
CREATE FUNCTION pg_temp.exa_refuse_foreign_objects() RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
	found text;
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'exchange_adapter') THEN
		RETURN;
	END IF;
	SELECT pg_catalog.string_agg(o.name, ', ' ORDER BY o.name) INTO found
	  FROM (SELECT pg_catalog.format('%s %I.%I',
				CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
							   WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
							   ELSE 'table' END,
				n.nspname, c.relname) AS name
			  FROM pg_catalog.pg_class c
			  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			 WHERE n.nspname = 'exchange'
			   AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
			UNION ALL
			SELECT pg_catalog.format('function %s', p.oid::pg_catalog.regprocedure)
			  FROM pg_catalog.pg_proc p
			  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
			 WHERE n.nspname = 'exchange') o;
	IF found IS NOT NULL THEN
		RAISE EXCEPTION 'schema "exchange" already holds objects that are not part of extension exchange_adapter'
			USING ERRCODE = '55000',
				  DETAIL = pg_catalog.format('Found: %s. These look like the legacy exchange adapter''s tables; CREATE EXTENSION exchange_adapter installs its own ledger in schema "exchange". Nothing was installed.', found),
				  HINT = 'Follow "Migrating from the legacy tables" in README.md: ALTER SCHEMA exchange RENAME TO exchange_legacy; run this init script again; then run migrate_legacy.sql as a superuser.';
	END IF;
END
$f$;

-- The application role: created when missing, an ordinary LOGIN role.
CREATE FUNCTION pg_temp.exa_ensure_role(role_name text) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
	r record;
BEGIN
	SELECT rolsuper, rolcanlogin INTO r FROM pg_catalog.pg_roles WHERE rolname = role_name;
	IF NOT FOUND THEN
		EXECUTE pg_catalog.format('CREATE ROLE %I LOGIN', role_name);
		RAISE NOTICE 'created login role "%"', role_name;
		RETURN;
	END IF;
	IF r.rolsuper THEN
		RAISE EXCEPTION 'application role "%" is a superuser', role_name
			USING ERRCODE = '42501',
				  DETAIL = 'A superuser bypasses every privilege: the ledger could be written around its functions.',
				  HINT = pg_catalog.format('Run as another superuser (POSTGRES_USER must not be %I), or ALTER ROLE %I NOSUPERUSER, then retry.', role_name, role_name);
	END IF;
	IF NOT r.rolcanlogin THEN
		EXECUTE pg_catalog.format('ALTER ROLE %I LOGIN', role_name);
	END IF;
END
$f$;

-- HMAC-SHA-256 and PBKDF2, to check a SCRAM verifier against a password
-- without changing it (ALTER ROLE ... PASSWORD would store a new salt, and a
-- re-run must change nothing).
CREATE FUNCTION pg_temp.exa_xor(a bytea, b bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $f$
	SELECT pg_catalog.decode(pg_catalog.string_agg(
			pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.get_byte(a, i) # pg_catalog.get_byte(b, i)), 2, '0'),
			'' ORDER BY i), 'hex')
	  FROM pg_catalog.generate_series(0, pg_catalog.length(a) - 1) AS i
$f$;

CREATE FUNCTION pg_temp.exa_hmac_pads(key bytea, OUT ipad bytea, OUT opad bytea)
LANGUAGE plpgsql IMMUTABLE STRICT AS $f$
DECLARE
	k bytea := key;
BEGIN
	IF pg_catalog.length(k) > 64 THEN
		k := pg_catalog.sha256(k);
	END IF;
	k := k || pg_catalog.decode(pg_catalog.repeat('00', 64 - pg_catalog.length(k)), 'hex');
	ipad := pg_temp.exa_xor(k, pg_catalog.decode(pg_catalog.repeat('36', 64), 'hex'));
	opad := pg_temp.exa_xor(k, pg_catalog.decode(pg_catalog.repeat('5c', 64), 'hex'));
END
$f$;

CREATE FUNCTION pg_temp.exa_hmac(key bytea, msg bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $f$
	SELECT pg_catalog.sha256(p.opad || pg_catalog.sha256(p.ipad || msg))
	  FROM pg_temp.exa_hmac_pads(key) p
$f$;

CREATE FUNCTION pg_temp.exa_password_matches(role_name text, password text) RETURNS boolean
LANGUAGE plpgsql AS $f$
DECLARE
	stored text;
	m text[];
	pads record;
	u bytea;
	acc bit(256);
	salted bytea;
BEGIN
	SELECT rolpassword INTO stored FROM pg_catalog.pg_authid WHERE rolname = role_name;
	IF stored IS NULL THEN
		RETURN false;
	END IF;
	IF stored LIKE 'md5%' THEN
		RETURN stored = 'md5' || pg_catalog.md5(password || role_name);
	END IF;
	-- SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	m := pg_catalog.regexp_match(stored, '^SCRAM-SHA-256\$([0-9]+):([^$]+)\$([^:]+):(.+)$');
	IF m IS NULL THEN
		RETURN false;
	END IF;
	-- SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations), one block.
	pads := pg_temp.exa_hmac_pads(pg_catalog.convert_to(password, 'UTF8'));
	u := pg_catalog.sha256(pads.opad || pg_catalog.sha256(pads.ipad
			|| pg_catalog.decode(m[2], 'base64') || '\x00000001'::bytea));
	acc := ('x' || pg_catalog.encode(u, 'hex'))::bit(256);
	FOR i IN 2 .. m[1]::integer LOOP
		u := pg_catalog.sha256(pads.opad || pg_catalog.sha256(pads.ipad || u));
		acc := acc # ('x' || pg_catalog.encode(u, 'hex'))::bit(256);
	END LOOP;
	SELECT pg_catalog.decode(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(
				pg_catalog.substring(acc, 1 + 32 * i, 32)::integer), 8, '0'), '' ORDER BY i), 'hex')
	  INTO salted
	  FROM pg_catalog.generate_series(0, 7) AS i;
	RETURN pg_catalog.encode(pg_catalog.sha256(pg_temp.exa_hmac(salted, 'Client Key'::bytea)), 'base64') = m[3]
	   AND pg_catalog.encode(pg_temp.exa_hmac(salted, 'Server Key'::bytea), 'base64') = m[4];
END
$f$;

-- Set the password only when the stored one does not already match it.
CREATE FUNCTION pg_temp.exa_set_password(role_name text, password text) RETURNS void
LANGUAGE plpgsql AS $f$
BEGIN
	IF NOT pg_temp.exa_password_matches(role_name, password) THEN
		EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', role_name, password);
		RAISE NOTICE 'set the password of role "%" from its secret file', role_name;
	END IF;
END
$f$;

-- Nobody but the owner may create in schema exchange, and no default
-- privileges may be attached to it: both would let a role plant or receive
-- objects beside the ledger (README "Security model").  The orchestrator's schema script
-- granted both to the application role; they are taken away here.  (The
-- install script revokes CREATE too, but only when it runs; this also covers
-- re-runs on an installed database.)
CREATE FUNCTION pg_temp.exa_lock_down_schema() RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
	r record;
	done text[];
BEGIN
	FOR r IN
		SELECT DISTINCT a.grantee
		  FROM pg_catalog.pg_namespace n, LATERAL pg_catalog.aclexplode(n.nspacl) a
		 WHERE n.nspname = 'exchange' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE CREATE ON SCHEMA exchange FROM %s',
			CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
		done := done || pg_catalog.format('CREATE on schema exchange from %s',
			CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(r.grantee)::text END);
	END LOOP;

	FOR r IN
		SELECT DISTINCT d.defaclrole, d.defaclobjtype, a.grantee
		  FROM pg_catalog.pg_default_acl d
		  JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace,
			   LATERAL pg_catalog.aclexplode(d.defaclacl) a
		 WHERE n.nspname = 'exchange'
		 ORDER BY 1, 2, 3
	LOOP
		EXECUTE pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA exchange REVOKE ALL ON %s FROM %s',
			pg_catalog.pg_get_userbyid(r.defaclrole),
			CASE r.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
								 WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' END,
			CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
		done := done || pg_catalog.format('default privileges of %s on %s in schema exchange from %s',
			pg_catalog.pg_get_userbyid(r.defaclrole),
			CASE r.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
								 WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' END,
			CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(r.grantee)::text END);
	END LOOP;

	IF done IS NOT NULL THEN
		RAISE WARNING 'revoked %', pg_catalog.array_to_string(done, '; ')
			USING DETAIL = 'Only the schema owner may create in schema "exchange", and no default privileges apply there.';
	END IF;
END
$f$;

-- Write privileges on the ledger go only through the API functions: take
-- away any direct INSERT, UPDATE, DELETE, TRUNCATE (and REFERENCES, TRIGGER,
-- sequence USAGE/UPDATE) the role holds on the extension's relations, e.g.
-- granted by hand after install.  grant_adapter then grants the profile.
CREATE FUNCTION pg_temp.exa_revoke_writes(role_name text) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT DISTINCT c.oid::pg_catalog.regclass AS rel, c.relkind
		  FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
			   LATERAL pg_catalog.aclexplode(c.relacl) a
		 WHERE n.nspname = 'exchange'
		   AND a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = role_name)
		   AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER', 'USAGE')
	LOOP
		IF r.relkind = 'S' THEN
			EXECUTE pg_catalog.format('REVOKE USAGE, UPDATE ON SEQUENCE %s FROM %I', r.rel, role_name);
		ELSE
			EXECUTE pg_catalog.format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE %s FROM %I',
									  r.rel, role_name);
		END IF;
		RAISE WARNING 'revoked write privileges on % from "%"', r.rel, role_name;
	END LOOP;
END
$f$;

-- ---------------------------------------------------------------------------
-- The set-up itself.
-- ---------------------------------------------------------------------------

DO $f$
BEGIN
	IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		RAISE EXCEPTION 'exchange_adapter init must run as a superuser, not as "%"', current_user
			USING ERRCODE = '42501',
				  DETAIL = 'CREATE EXTENSION exchange_adapter is not trusted; creating roles and ALTER SYSTEM need a superuser too.';
	END IF;
END
$f$;

SELECT pg_temp.exa_refuse_foreign_objects() \g /dev/null
SELECT pg_temp.exa_ensure_role(:'role_name') \g /dev/null
\if :set_password
SELECT pg_temp.exa_set_password(:'role_name', :'app_password') \g /dev/null
\endif
\unset app_password

SELECT pg_temp.exa_lock_down_schema() \g /dev/null

SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'exchange_adapter') AS need_create \gset
\if :need_create
-- The install script grants profile 'all' to a role named exchange_adapter.
CREATE EXTENSION exchange_adapter;
\else
-- A newer image may carry a newer default_version; a no-op otherwise.
ALTER EXTENSION exchange_adapter UPDATE;
\endif

SELECT pg_temp.exa_revoke_writes(:'role_name') \g /dev/null
SELECT :'profile' = 'all' AS profile_is_all \gset
\if :profile_is_all
\else
-- A narrower profile: drop what 'all' (granted at install) gave, then grant it.
SELECT exchange.revoke_adapter(pg_catalog.quote_ident(:'role_name')::pg_catalog.regrole) \g /dev/null
\endif
SELECT exchange.grant_adapter(pg_catalog.quote_ident(:'role_name')::pg_catalog.regrole, :'profile'::pg_catalog.text) \g /dev/null

COMMIT;

-- ---------------------------------------------------------------------------
-- exchange_adapter.database, for the background worker: ALTER SYSTEM cannot
-- run in a transaction block, and is skipped when postgresql.auto.conf
-- already says so (a re-run then rewrites nothing).
-- ---------------------------------------------------------------------------
SELECT :'database_setting' <> ''
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_file_settings
					WHERE name = 'exchange_adapter.database'
					  AND sourcefile LIKE '%postgresql.auto.conf'
					  AND setting = :'database_setting') AS need_database_setting \gset
\if :need_database_setting
-- ALTER SYSTEM checks the value, so the library defining it must be loaded.
LOAD 'exchange_adapter';
ALTER SYSTEM SET exchange_adapter.database = :'database_setting';
SELECT pg_catalog.pg_reload_conf() \g /dev/null
\echo 'exchange_adapter init: ALTER SYSTEM SET exchange_adapter.database =' :'database_setting'
\endif

DO $f$
BEGIN
	IF NOT 'exchange_adapter' = ANY (pg_catalog.string_to_array(
			pg_catalog.replace(pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ',')) THEN
		RAISE WARNING 'exchange_adapter is not in shared_preload_libraries: the ledger works, but nothing is pushed to Redis'
			USING HINT = 'Add exchange_adapter to shared_preload_libraries in postgresql.conf and restart the server.';
	END IF;
END
$f$;

\set QUIET off
\pset footer off
SELECT e.extversion AS exchange_adapter,
	   :'role_name' AS role,
	   :'profile' AS profile,
	   pg_catalog.current_setting('exchange_adapter.database', true) AS "exchange_adapter.database"
  FROM pg_catalog.pg_extension e
 WHERE e.extname = 'exchange_adapter';
