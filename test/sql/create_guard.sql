-- The creation guard (README "Security model", the install race): a role that still holds
-- CREATE on schema exchange (a grant made by mistake after the install, or a CREATE that passed
-- its privilege check before the install committed) cannot put a function, procedure, aggregate
-- or operator there; a superuser can. The refused command leaves nothing behind.
CREATE ROLE exa_regress_cg_planter;
GRANT USAGE, CREATE ON SCHEMA exchange TO exa_regress_cg_planter;
SET ROLE exa_regress_cg_planter;
CREATE FUNCTION exchange.cg_planted(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OR REPLACE FUNCTION exchange.grant_adapter(text, text) RETURNS void LANGUAGE sql AS '';
CREATE PROCEDURE exchange.cg_proc() LANGUAGE sql AS '';
CREATE AGGREGATE exchange.cg_agg(int) (SFUNC = pg_catalog.int4pl, STYPE = int);
CREATE OPERATOR exchange.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_catalog.texteq);
-- Elsewhere the role creates what it may.
CREATE FUNCTION pg_temp.cg_own() RETURNS int LANGUAGE sql AS 'SELECT 1';
SELECT pg_temp.cg_own();
DROP FUNCTION pg_temp.cg_own();
RESET ROLE;
SELECT p.oid::regprocedure::text AS planted FROM pg_proc p
 WHERE p.pronamespace = 'exchange'::regnamespace AND p.proowner = 'exa_regress_cg_planter'::regrole
UNION ALL
SELECT o.oid::regoperator::text FROM pg_operator o
 WHERE o.oprnamespace = 'exchange'::regnamespace AND o.oprowner = 'exa_regress_cg_planter'::regrole;
-- A superuser's function in the schema is allowed (and is not part of the extension).
CREATE FUNCTION exchange.cg_dba() RETURNS int LANGUAGE sql AS 'SELECT 1';
SELECT exchange.cg_dba();
DROP FUNCTION exchange.cg_dba();
-- The event trigger stays on under session_replication_role = replica.
SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'exchange_adapter_create_guard';
REVOKE ALL ON SCHEMA exchange FROM exa_regress_cg_planter;
DROP ROLE exa_regress_cg_planter;
-- The ledger is untouched.
SELECT * FROM exchange.check_invariants();
