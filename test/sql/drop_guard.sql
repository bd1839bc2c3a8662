-- The DROP EXTENSION guard (README "Security model") is an event trigger enabled ALWAYS: a
-- session with session_replication_role = replica (as replication tools and some restore
-- scripts set it) cannot drop a ledger that holds rows either, nor the schema under it.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

SELECT evtname, evtevent, evtenabled FROM pg_event_trigger
 WHERE evtname = 'exchange_adapter_drop_guard';

-- The ledger holds a row.
SELECT pg_temp.label(account_id, 'guarded') FROM exchange.create_account('drop-guard-user');

SET session_replication_role = replica;
SELECT sqlstate, message FROM pg_temp.fails('DROP EXTENSION exchange_adapter CASCADE');
SELECT sqlstate, message FROM pg_temp.fails('DROP SCHEMA exchange CASCADE');
SET session_replication_role = local;
SELECT sqlstate, message FROM pg_temp.fails('DROP EXTENSION exchange_adapter CASCADE');
RESET session_replication_role;
SELECT sqlstate, message FROM pg_temp.fails('DROP EXTENSION exchange_adapter');

-- Nothing was dropped.
SELECT extversion FROM pg_extension WHERE extname = 'exchange_adapter';
SELECT user_id FROM exchange.accounts WHERE account_id = pg_temp.id('guarded');
SELECT * FROM exchange.check_invariants();
