-- exchange_adapter 1.0 -> 1.1 — upgrade script.
--
-- ALTER EXTENSION exchange_adapter UPDATE runs this on a 1.0 installation; it
-- must leave exactly the catalog that a fresh CREATE EXTENSION at 1.1 builds
-- from exchange_adapter--1.1.sql (test/t/060_upgrade.pl compares the schema
-- dumps, ACLs, comments and dump registrations of the two).  The same rules
-- as the install script hold: search_path pinned, everything qualified, no
-- row written to a dumped table, and the ACL of every object created here
-- reset to owner-only before anything is granted (default privileges on the
-- schema must reach nothing).
--
-- The library is the same file for both versions: between the package
-- upgrade and this script it serves the 1.0 catalog (README "Upgrading").

\echo Use "ALTER EXTENSION exchange_adapter UPDATE TO '1.1'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

-- The DROP EXTENSION guard fires whatever session_replication_role says: a
-- session in replica mode must not drop a ledger that holds rows.
ALTER EVENT TRIGGER exchange_adapter_drop_guard ENABLE ALWAYS;

-- check_invariants() gained the closed_account clause (README "Invariants").
COMMENT ON FUNCTION exchange.check_invariants() IS
	'Checks the ledger invariants; returns one row per violation, named after its clause (locked_balance, journal_balance, asset_conservation, match_netting, filled_quantity, terminal_locked, trade_order, closed_account, event_replay). Empty when sound.';

-- Outbox keys out of line uncompressed (a batch call writes a key per order;
-- see exchange_adapter--1.1.sql).
ALTER TABLE exchange.outbox ALTER COLUMN keys SET STORAGE EXTERNAL;

-- == batch close ==
-- Fewer index entries per order UPDATE (a status change is never HOT: status
-- is in the partial indexes' predicates, so every version inserts into every
-- index whose predicate it meets).  README "Data model" uniqueness holds:
--   (order_id, account_id) is unique because order_id is the primary key; no
--   foreign key used orders_order_id_account_id_key and no query needs it
--   (orders_pkey serves every lookup by order_id);
--   (account_id, client_order_id) stays unique through a partial unique index
--   of the same name over the orders that have a client_order_id (NULLs never
--   conflicted), so that orders without one, the batch calls' usual case, add
--   no entry to it.
ALTER TABLE exchange.orders DROP CONSTRAINT orders_order_id_account_id_key;
ALTER TABLE exchange.orders DROP CONSTRAINT orders_account_id_client_order_id_key;
CREATE UNIQUE INDEX orders_account_id_client_order_id_key
	ON exchange.orders (account_id, client_order_id)
	WHERE client_order_id IS NOT NULL;
COMMENT ON INDEX exchange.orders_account_id_client_order_id_key IS
	'One order per (account_id, client_order_id) (README "Data model"); orders without a client_order_id have no entry.';
