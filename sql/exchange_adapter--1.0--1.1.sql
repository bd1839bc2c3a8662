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

-- == exa_ symbols ==
-- Every C function of the 1.0 catalog is rebound to its exa_-prefixed symbol
-- (the names exchange_adapter--1.1.sql binds), so that the library's globals
-- cannot clash with another library's in the same backend.  CREATE OR REPLACE
-- repeats each 1.0 declaration word for word (arguments, defaults, result,
-- volatility, parallel safety, SECURITY DEFINER, search_path) and changes
-- only the symbol; it keeps the function's oid, owner, ACL, comment and
-- extension membership.  The unprefixed symbols stay in the library only for a
-- 1.0 catalog not yet updated (src/compat_1_0.c).  exa_drop_guard keeps its
-- name.

CREATE OR REPLACE FUNCTION exchange.orders_lifecycle_guard() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'exa_orders_lifecycle_guard';

CREATE OR REPLACE FUNCTION exchange.grant_adapter(role pg_catalog.regrole, profile pg_catalog.text DEFAULT 'all')
	RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_grant_adapter';

CREATE OR REPLACE FUNCTION exchange.revoke_adapter(role pg_catalog.regrole)
	RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_revoke_adapter';

CREATE OR REPLACE FUNCTION exchange.create_account(user_id text, account_type text DEFAULT 'SPOT',
												   metadata jsonb DEFAULT '{}'::pg_catalog.jsonb)
	RETURNS exchange.accounts
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_create_account';

CREATE OR REPLACE FUNCTION exchange.set_account_status(account_id uuid, status text)
	RETURNS exchange.accounts
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_set_account_status';

CREATE OR REPLACE FUNCTION exchange.set_kyc_status(account_id uuid, kyc_status text)
	RETURNS exchange.accounts
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_set_kyc_status';

CREATE OR REPLACE FUNCTION exchange.create_market(symbol text, base_asset text, quote_asset text,
												  tick_size numeric DEFAULT 0.00000001,
												  lot_size numeric DEFAULT 0.00000001,
												  min_quantity numeric DEFAULT 0,
												  min_notional numeric DEFAULT 0,
												  maker_fee_rate numeric DEFAULT 0,
												  taker_fee_rate numeric DEFAULT 0,
												  metadata jsonb DEFAULT '{}'::pg_catalog.jsonb)
	RETURNS exchange.markets
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_create_market';

CREATE OR REPLACE FUNCTION exchange.set_market_status(symbol text, status text)
	RETURNS exchange.markets
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_set_market_status';

CREATE OR REPLACE FUNCTION exchange.deposit(account_id uuid, asset text, amount numeric,
											reference text DEFAULT NULL)
	RETURNS exchange.balances
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_deposit';

CREATE OR REPLACE FUNCTION exchange.withdraw(account_id uuid, asset text, amount numeric,
											 reference text DEFAULT NULL)
	RETURNS exchange.balances
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_withdraw';

CREATE OR REPLACE FUNCTION exchange.lock_balance(account_id uuid, asset text, amount numeric,
												 reason text DEFAULT NULL)
	RETURNS exchange.holds
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_lock_balance';

CREATE OR REPLACE FUNCTION exchange.unlock_balance(hold_id uuid, amount numeric DEFAULT NULL)
	RETURNS exchange.holds
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_unlock_balance';

CREATE OR REPLACE FUNCTION exchange.capture_hold(hold_id uuid, amount numeric DEFAULT NULL,
												 reference text DEFAULT NULL)
	RETURNS exchange.holds
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_capture_hold';

CREATE OR REPLACE FUNCTION exchange.place_order(account_id uuid, symbol text, side text, order_type text,
												quantity numeric, price numeric DEFAULT NULL,
												time_in_force text DEFAULT NULL,
												stop_price numeric DEFAULT NULL,
												client_order_id text DEFAULT NULL,
												metadata jsonb DEFAULT '{}'::pg_catalog.jsonb)
	RETURNS exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_place_order';

CREATE OR REPLACE FUNCTION exchange.cancel_order(order_id uuid, reason text DEFAULT NULL)
	RETURNS exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_cancel_order';

CREATE OR REPLACE FUNCTION exchange.cancel_orders(account_id uuid, symbol text DEFAULT NULL)
	RETURNS SETOF exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_cancel_orders';

CREATE OR REPLACE FUNCTION exchange.expire_order(order_id uuid, reason text DEFAULT NULL)
	RETURNS exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_expire_order';

CREATE OR REPLACE FUNCTION exchange.expire_orders(symbol text, placed_before timestamptz)
	RETURNS SETOF exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_expire_orders';

CREATE OR REPLACE FUNCTION exchange.trigger_stop_orders(symbol text, last_price numeric)
	RETURNS SETOF exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_trigger_stop_orders';

CREATE OR REPLACE FUNCTION exchange.apply_trade(order_id uuid, quantity numeric, price numeric,
												fee numeric DEFAULT NULL, fee_currency text DEFAULT NULL,
												executed_at timestamptz DEFAULT pg_catalog.now(),
												trade_ref text DEFAULT NULL, liquidity text DEFAULT NULL)
	RETURNS exchange.trades
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_apply_trade';

CREATE OR REPLACE FUNCTION exchange.apply_match(buy_order_id uuid, sell_order_id uuid, quantity numeric,
												price numeric, buy_fee numeric DEFAULT NULL,
												sell_fee numeric DEFAULT NULL, trade_ref text DEFAULT NULL,
												maker text DEFAULT NULL)
	RETURNS SETOF exchange.trades
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_apply_match';

CREATE OR REPLACE FUNCTION exchange.check_invariants()
	RETURNS TABLE (invariant text, detail text)
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_check_invariants';

CREATE OR REPLACE FUNCTION exchange.register_service(service_id text, service_name text, address text,
													 port integer, version text DEFAULT NULL,
													 metadata jsonb DEFAULT '{}'::pg_catalog.jsonb,
													 ttl interval DEFAULT '90 seconds'::interval)
	RETURNS exchange.services
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_register_service';

CREATE OR REPLACE FUNCTION exchange.heartbeat_service(service_id text)
	RETURNS exchange.services
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_heartbeat_service';

CREATE OR REPLACE FUNCTION exchange.deregister_service(service_id text)
	RETURNS boolean
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_deregister_service';

CREATE OR REPLACE FUNCTION exchange.discover_services(service_name text DEFAULT NULL)
	RETURNS SETOF exchange.service_instance
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_discover_services';

CREATE OR REPLACE FUNCTION exchange.adapter_status(OUT worker_pid integer, OUT database text,
												   OUT redis_connected boolean, OUT last_error text,
												   OUT last_push_at timestamptz, OUT outbox_pending bigint,
												   OUT outbox_oldest timestamptz, OUT pushed_keys bigint,
												   OUT failed_pushes bigint)
	RETURNS record
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_adapter_status';

CREATE OR REPLACE FUNCTION exchange.flush_outbox(max_rows integer DEFAULT 1000)
	RETURNS integer
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_flush_outbox';

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
