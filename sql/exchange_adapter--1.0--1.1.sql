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

-- == trade feed ==
-- Every execution is published after commit on <prefix>trades:<symbol>
-- (README "Trade feed"): the call's outbox row names its executions, one
-- trade id each (the trade of apply_trade, the TAKER leg of a match), in
-- execution order, and the deliverer renders the messages from
-- exchange.trades after the row's deletions and invalidation message.  NULL:
-- the call executed nothing.  The 1.1 library detects a 1.0 catalog by this
-- column's absence and then writes and delivers outbox rows as 1.0 did.
ALTER TABLE exchange.outbox ADD COLUMN trade_ids uuid[];
COMMENT ON COLUMN exchange.outbox.trade_ids IS
	'Trade feed: one trade id per execution of the call (the trade of apply_trade, the TAKER leg of a match), in order; published on <key_prefix>trades:<symbol> after the row''s invalidation message. NULL when the call executed nothing.';
