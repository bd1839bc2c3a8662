-- exchange_adapter 1.1 — install script (fresh installs).
--
-- Installs the exchange ledger into schema exchange (created by core from the
-- control file when absent; never created or dropped here).  Existing 1.0
-- installations reach the same catalog through exchange_adapter--1.0--1.1.sql
-- (test/t/060_upgrade.pl compares the two): every change made here after the
-- 1.0 release is made there too.
--
-- Hardening rules this file follows, because a non-superuser may own objects
-- in the schema, or hold CREATE on it, before we run (README "Security
-- model"; test/sql/install_hostile.sql, test/t/061_install_race.pl):
--   * search_path is pinned to pg_catalog, pg_temp for the whole script, and
--     every object, function, type and operator is schema-qualified anyway;
--   * no other session can create a function or an operator anywhere in the
--     database while the script runs (SHARE locks on pg_proc and pg_operator,
--     taken first), CREATE on the schema is revoked from everybody but its
--     owner, and planted functions and operators are moved out before ours
--     are created; a CREATE that passed its permission check before the
--     revoke became visible and is still waiting on those locks when the
--     install commits is cancelled at commit (exa_install_guard, ddl_guard.c);
--   * role names are passed as regrole text, which is already quoted: never
--     through %I or quote_ident a second time;
--   * no row is inserted into a dumped table, and no trigger on one acts on
--     INSERT (pg_restore must reload data untouched);
--   * every object's ACL is reset to owner-only before anything is granted,
--     so default privileges planted on the schema never reach our objects.

\echo Use "CREATE EXTENSION exchange_adapter" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

-- Nobody creates a function or an operator in this database until we commit:
-- creators already running finish first (the lock waits for them), so the
-- check below sees everything they planted; later ones wait for our commit.
LOCK TABLE pg_catalog.pg_proc, pg_catalog.pg_operator IN SHARE MODE;

-- Cancels, when this transaction commits, the CREATE FUNCTION and CREATE
-- OPERATOR statements of non-superusers that are then waiting on the locks
-- above: their permission check on the schema ran before our REVOKE was
-- visible.  Dropped again at the end of this script.
CREATE FUNCTION exchange.exa_install_guard() RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'exa_install_guard';
SELECT exchange.exa_install_guard();

-- The schema must be one that only a superuser controls.  CREATE on it lets a
-- role plant objects that shadow ours, so it is taken from everybody but the
-- owner.  (CREATE EXTENSION raises client_min_messages to WARNING while this
-- script runs, so the list is a WARNING: a NOTICE would never be seen.)
DO $exa$
DECLARE
	owner_name name;
	owner_super boolean;
	revoked text[];
	quarantined text[];
	r record;
BEGIN
	SELECT o.rolname, o.rolsuper INTO owner_name, owner_super
	  FROM pg_catalog.pg_namespace n
	  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) n.nspowner
	 WHERE n.nspname OPERATOR(pg_catalog.=) 'exchange';

	IF NOT owner_super THEN
		RAISE EXCEPTION 'schema "exchange" is owned by non-superuser role "%"', owner_name
			USING ERRCODE = '42501',
				  DETAIL = 'The extension keeps its ledger in schema "exchange"; its owner could replace any object in it.',
				  HINT = pg_catalog.format('Run ALTER SCHEMA exchange OWNER TO a superuser (it is owned by %I), or drop the schema, then retry.', owner_name);
	END IF;

	FOR r IN
		SELECT DISTINCT a.grantee
		  FROM pg_catalog.pg_namespace n,
			   LATERAL pg_catalog.aclexplode(n.nspacl) a
		 WHERE n.nspname OPERATOR(pg_catalog.=) 'exchange'
		   AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
		   AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
	LOOP
		IF r.grantee OPERATOR(pg_catalog.=) 0 THEN
			EXECUTE 'REVOKE CREATE ON SCHEMA exchange FROM PUBLIC';
			revoked := revoked OPERATOR(pg_catalog.||) 'PUBLIC'::pg_catalog.text;
		ELSE
			-- regrole's text form is already an identifier, quoted if needed
			EXECUTE pg_catalog.format('REVOKE CREATE ON SCHEMA exchange FROM %s',
									  r.grantee::pg_catalog.regrole::pg_catalog.text);
			revoked := revoked OPERATOR(pg_catalog.||) r.grantee::pg_catalog.regrole::pg_catalog.text;
		END IF;
	END LOOP;

	IF revoked IS NOT NULL THEN
		RAISE WARNING 'revoked CREATE on schema "exchange" from %',
			pg_catalog.array_to_string(revoked, ', ')
			USING DETAIL = 'Only the schema owner may create objects beside the ledger.';
	END IF;

	-- Functions and operators that other roles created in the schema could
	-- shadow ours: an overload taking text wins over ours for untyped
	-- literals, even in a superuser's call.  Move them, before anything is
	-- created, to schema exchange_quarantine (not part of the extension, so
	-- it survives DROP EXTENSION) for the DBA to review.
	FOR r IN
		SELECT q.kind, q.obj, q.rolname FROM (
			SELECT CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE'
				   ELSE 'FUNCTION' END AS kind,
				   p.oid::pg_catalog.regprocedure::pg_catalog.text AS obj, o.rolname
			  FROM pg_catalog.pg_proc p
			  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) p.proowner
			 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'exchange'::pg_catalog.regnamespace
			   AND NOT o.rolsuper
			UNION ALL
			SELECT 'OPERATOR', op.oid::pg_catalog.regoperator::pg_catalog.text, o.rolname
			  FROM pg_catalog.pg_operator op
			  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) op.oprowner
			 WHERE op.oprnamespace OPERATOR(pg_catalog.=) 'exchange'::pg_catalog.regnamespace
			   AND NOT o.rolsuper) q
		 -- functions before operators, each in a stable order for the WARNING
		 ORDER BY q.kind COLLATE pg_catalog."C", q.obj COLLATE pg_catalog."C"
	LOOP
		IF quarantined IS NULL
		   AND NOT EXISTS (SELECT FROM pg_catalog.pg_namespace
							WHERE nspname OPERATOR(pg_catalog.=) 'exchange_quarantine') THEN
			EXECUTE 'CREATE SCHEMA exchange_quarantine';
			EXECUTE 'ALTER EXTENSION exchange_adapter DROP SCHEMA exchange_quarantine';
			EXECUTE 'REVOKE ALL ON SCHEMA exchange_quarantine FROM PUBLIC';
		END IF;
		EXECUTE pg_catalog.format('ALTER %s %s SET SCHEMA exchange_quarantine', r.kind, r.obj);
		quarantined := quarantined OPERATOR(pg_catalog.||)
			pg_catalog.format('%s %s owned by %I', pg_catalog.lower(r.kind), r.obj, r.rolname);
	END LOOP;

	IF quarantined IS NOT NULL THEN
		RAISE WARNING 'moved % function(s) and operator(s) owned by non-superusers from schema "exchange" to schema "exchange_quarantine"',
			pg_catalog.cardinality(quarantined)
			USING DETAIL = pg_catalog.array_to_string(quarantined, E'\n'),
				  HINT = 'They could shadow the extension''s functions and operators. Review them, then drop them (or the schema exchange_quarantine).';
	END IF;
END
$exa$;

-- ---------------------------------------------------------------------------
-- Tables.  Amounts are numeric(24,8); enumerations are varchar + CHECK in
-- exact upper case; metadata is jsonb NOT NULL DEFAULT '{}'.  Column names are
-- those of the original Go schema so that its readers keep working.
-- ---------------------------------------------------------------------------

CREATE TABLE exchange.accounts (
	account_id		uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	user_id			varchar(255) NOT NULL,
	account_type	varchar(16) NOT NULL DEFAULT 'SPOT',
	status			varchar(16) NOT NULL DEFAULT 'ACTIVE',
	kyc_status		varchar(16) NOT NULL DEFAULT 'PENDING',
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	metadata		jsonb NOT NULL DEFAULT '{}'::pg_catalog.jsonb,
	CONSTRAINT accounts_pkey PRIMARY KEY (account_id),
	CONSTRAINT accounts_user_id_account_type_key UNIQUE (user_id, account_type),
	CONSTRAINT accounts_user_id_check CHECK (user_id OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT accounts_account_type_check
		CHECK (account_type::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{SPOT,MARGIN,FUTURES}'::pg_catalog.text[])),
	CONSTRAINT accounts_status_check
		CHECK (status::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{ACTIVE,SUSPENDED,CLOSED}'::pg_catalog.text[])),
	CONSTRAINT accounts_kyc_status_check
		CHECK (kyc_status::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{PENDING,APPROVED,REJECTED}'::pg_catalog.text[])),
	CONSTRAINT accounts_metadata_check
		CHECK (pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.=) 'object')
);

CREATE TABLE exchange.markets (
	symbol			varchar(21) NOT NULL,
	base_asset		varchar(10) NOT NULL,
	quote_asset		varchar(10) NOT NULL,
	tick_size		numeric(24,8) NOT NULL DEFAULT 0.00000001,
	lot_size		numeric(24,8) NOT NULL DEFAULT 0.00000001,
	min_quantity	numeric(24,8) NOT NULL DEFAULT 0,
	min_notional	numeric(24,8) NOT NULL DEFAULT 0,
	maker_fee_rate	numeric(24,8) NOT NULL DEFAULT 0,
	taker_fee_rate	numeric(24,8) NOT NULL DEFAULT 0,
	status			varchar(16) NOT NULL DEFAULT 'ACTIVE',
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	metadata		jsonb NOT NULL DEFAULT '{}'::pg_catalog.jsonb,
	CONSTRAINT markets_pkey PRIMARY KEY (symbol),
	CONSTRAINT markets_base_asset_check
		CHECK (base_asset OPERATOR(pg_catalog.~) '^[A-Z0-9]{1,10}$'),
	CONSTRAINT markets_quote_asset_check
		CHECK (quote_asset OPERATOR(pg_catalog.~) '^[A-Z0-9]{1,10}$'),
	CONSTRAINT markets_assets_differ_check
		CHECK (base_asset OPERATOR(pg_catalog.<>) quote_asset),
	CONSTRAINT markets_symbol_check
		CHECK (symbol::pg_catalog.text OPERATOR(pg_catalog.=)
			   (base_asset::pg_catalog.text OPERATOR(pg_catalog.||) '-' OPERATOR(pg_catalog.||) quote_asset::pg_catalog.text)),
	CONSTRAINT markets_tick_size_check CHECK (tick_size OPERATOR(pg_catalog.>) 0.0),
	CONSTRAINT markets_lot_size_check CHECK (lot_size OPERATOR(pg_catalog.>) 0.0),
	CONSTRAINT markets_min_quantity_check CHECK (min_quantity OPERATOR(pg_catalog.>=) 0.0),
	CONSTRAINT markets_min_notional_check CHECK (min_notional OPERATOR(pg_catalog.>=) 0.0),
	CONSTRAINT markets_maker_fee_rate_check
		CHECK (maker_fee_rate OPERATOR(pg_catalog.>=) 0.0 AND maker_fee_rate OPERATOR(pg_catalog.<=) 0.1),
	CONSTRAINT markets_taker_fee_rate_check
		CHECK (taker_fee_rate OPERATOR(pg_catalog.>=) 0.0 AND taker_fee_rate OPERATOR(pg_catalog.<=) 0.1),
	CONSTRAINT markets_status_check CHECK (status::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{ACTIVE,HALTED}'::pg_catalog.text[])),
	-- numeric(24,8) holds NaN, which compares above every number: refuse it.
	CONSTRAINT markets_amounts_not_nan_check
		CHECK (tick_size OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND lot_size OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND min_quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND min_notional OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND maker_fee_rate OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND taker_fee_rate OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	CONSTRAINT markets_metadata_check
		CHECK (pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.=) 'object')
);

CREATE TABLE exchange.orders (
	order_id		uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	account_id		uuid NOT NULL,
	symbol			varchar(21) NOT NULL,
	order_type		varchar(8) NOT NULL,
	side			varchar(4) NOT NULL,
	quantity		numeric(24,8) NOT NULL,
	price			numeric(24,8),
	filled_quantity numeric(24,8) NOT NULL DEFAULT 0,
	average_price	numeric(24,8),
	status			varchar(16) NOT NULL,
	time_in_force	varchar(3) NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	filled_at		timestamptz,
	cancelled_at	timestamptz,
	metadata		jsonb NOT NULL DEFAULT '{}'::pg_catalog.jsonb,
	stop_price		numeric(24,8),
	client_order_id varchar(64),
	lock_asset		varchar(10) NOT NULL,
	locked_amount	numeric(24,8) NOT NULL DEFAULT 0,
	reject_reason	varchar(32),
	filled_value	numeric NOT NULL DEFAULT 0,
	CONSTRAINT orders_pkey PRIMARY KEY (order_id),
	CONSTRAINT orders_order_id_account_id_key UNIQUE (order_id, account_id),
	CONSTRAINT orders_account_id_client_order_id_key UNIQUE (account_id, client_order_id),
	-- the target of trades_order_fkey: a trade's symbol and side are its order's
	CONSTRAINT orders_trade_target_key UNIQUE (order_id, account_id, symbol, side),
	CONSTRAINT orders_account_id_fkey FOREIGN KEY (account_id)
		REFERENCES exchange.accounts (account_id),
	CONSTRAINT orders_symbol_fkey FOREIGN KEY (symbol)
		REFERENCES exchange.markets (symbol),
	CONSTRAINT orders_order_type_check CHECK (order_type::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{MARKET,LIMIT,STOP}'::pg_catalog.text[])),
	CONSTRAINT orders_side_check CHECK (side::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{BUY,SELL}'::pg_catalog.text[])),
	CONSTRAINT orders_status_check
		CHECK (status::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{PENDING,OPEN,PARTIAL,FILLED,CANCELLED,REJECTED,EXPIRED}'::pg_catalog.text[])),
	CONSTRAINT orders_time_in_force_check CHECK (time_in_force::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{GTC,IOC,FOK}'::pg_catalog.text[])),
	CONSTRAINT orders_quantity_check CHECK (quantity OPERATOR(pg_catalog.>) 0.0),
	CONSTRAINT orders_price_check CHECK (price OPERATOR(pg_catalog.>) 0.0),
	CONSTRAINT orders_stop_price_check CHECK (stop_price OPERATOR(pg_catalog.>) 0.0),
	CONSTRAINT orders_average_price_check CHECK (average_price OPERATOR(pg_catalog.>) 0.0),
	CONSTRAINT orders_filled_quantity_check
		CHECK (filled_quantity OPERATOR(pg_catalog.>=) 0.0
			   AND filled_quantity OPERATOR(pg_catalog.<=) quantity),
	CONSTRAINT orders_locked_amount_check CHECK (locked_amount OPERATOR(pg_catalog.>=) 0.0),
	-- numeric(24,8) holds NaN, which compares above every number: refuse it.
	CONSTRAINT orders_amounts_not_nan_check
		CHECK (quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND filled_quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND average_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND stop_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND locked_amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND filled_value OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	CONSTRAINT orders_filled_value_check CHECK (filled_value OPERATOR(pg_catalog.>=) 0.0),
	CONSTRAINT orders_lock_asset_check
		CHECK (lock_asset OPERATOR(pg_catalog.~) '^[A-Z0-9]{1,10}$'),
	CONSTRAINT orders_client_order_id_check
		CHECK (client_order_id OPERATOR(pg_catalog.<>) ''),
	-- README "Order lifecycle and arithmetic": only STOP orders carry stop_price and start PENDING; a LIMIT
	-- order has a price; MARKET is never GTC.
	CONSTRAINT orders_stop_check
		CHECK ((order_type OPERATOR(pg_catalog.=) 'STOP') OPERATOR(pg_catalog.=) (stop_price IS NOT NULL)),
	CONSTRAINT orders_limit_price_check
		CHECK (order_type OPERATOR(pg_catalog.<>) 'LIMIT' OR price IS NOT NULL),
	CONSTRAINT orders_pending_check
		CHECK (status OPERATOR(pg_catalog.<>) 'PENDING' OR order_type OPERATOR(pg_catalog.=) 'STOP'),
	CONSTRAINT orders_market_tif_check
		CHECK (order_type OPERATOR(pg_catalog.<>) 'MARKET' OR time_in_force OPERATOR(pg_catalog.<>) 'GTC'),
	-- invariant 3: terminal orders hold no lock; FILLED means fully filled.
	CONSTRAINT orders_terminal_unlocked_check
		CHECK (NOT (status::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{FILLED,CANCELLED,REJECTED,EXPIRED}'::pg_catalog.text[]))
			   OR locked_amount OPERATOR(pg_catalog.=) 0.0),
	CONSTRAINT orders_filled_check
		CHECK ((status OPERATOR(pg_catalog.=) 'FILLED') OPERATOR(pg_catalog.=)
			   (filled_quantity OPERATOR(pg_catalog.=) quantity)),
	CONSTRAINT orders_reject_reason_check
		CHECK ((status OPERATOR(pg_catalog.=) 'REJECTED') OPERATOR(pg_catalog.=) (reject_reason IS NOT NULL)),
	CONSTRAINT orders_reject_reason_value_check
		CHECK (reject_reason IN ('ACCOUNT_NOT_ACTIVE', 'KYC_NOT_APPROVED', 'MARKET_HALTED',
								 'TICK_SIZE', 'LOT_SIZE', 'MIN_QUANTITY', 'MIN_NOTIONAL',
								 'INSUFFICIENT_FUNDS')),
	CONSTRAINT orders_metadata_check
		CHECK (pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.=) 'object')
);

-- A user's orders, newest first, keyset-paginated on (created_at, order_id).
CREATE INDEX orders_account_created_idx
	ON exchange.orders (account_id, created_at, order_id);
-- The live book: open orders by symbol, side and price (order_book, matching).
CREATE INDEX orders_book_idx
	ON exchange.orders (symbol, side, price, created_at)
	WHERE status IN ('OPEN', 'PARTIAL');
-- Pending stop orders by symbol and trigger price (trigger_stop_orders), and
-- every live order by symbol and age (expire_orders).
CREATE INDEX orders_stop_idx
	ON exchange.orders (symbol, side, stop_price)
	WHERE status OPERATOR(pg_catalog.=) 'PENDING';
CREATE INDEX orders_live_symbol_created_idx
	ON exchange.orders (symbol, created_at)
	WHERE status IN ('PENDING', 'OPEN', 'PARTIAL');

CREATE TABLE exchange.trades (
	trade_id		uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	order_id		uuid NOT NULL,
	account_id		uuid NOT NULL,
	symbol			varchar(21) NOT NULL,
	side			varchar(4) NOT NULL,
	quantity		numeric(24,8) NOT NULL,
	price			numeric(24,8) NOT NULL,
	fee				numeric(24,8) NOT NULL DEFAULT 0,
	fee_currency	varchar(10) NOT NULL,
	executed_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	metadata		jsonb NOT NULL DEFAULT '{}'::pg_catalog.jsonb,
	trade_ref		varchar(128),
	liquidity		varchar(5),
	match_id		uuid,
	CONSTRAINT trades_pkey PRIMARY KEY (trade_id),
	CONSTRAINT trades_order_id_trade_ref_key UNIQUE (order_id, trade_ref),
	-- (order_id, account_id) -> orders, with the order's symbol and side (README "Data model")
	CONSTRAINT trades_order_fkey FOREIGN KEY (order_id, account_id, symbol, side)
		REFERENCES exchange.orders (order_id, account_id, symbol, side),
	CONSTRAINT trades_symbol_fkey FOREIGN KEY (symbol)
		REFERENCES exchange.markets (symbol),
	CONSTRAINT trades_side_check CHECK (side::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{BUY,SELL}'::pg_catalog.text[])),
	CONSTRAINT trades_quantity_check CHECK (quantity OPERATOR(pg_catalog.>) 0.0),
	CONSTRAINT trades_price_check CHECK (price OPERATOR(pg_catalog.>) 0.0),
	CONSTRAINT trades_fee_check CHECK (fee OPERATOR(pg_catalog.>=) 0.0),
	-- numeric(24,8) holds NaN, which compares above every number: refuse it.
	CONSTRAINT trades_amounts_not_nan_check
		CHECK (quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND fee OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	CONSTRAINT trades_fee_currency_check
		CHECK (fee_currency OPERATOR(pg_catalog.~) '^[A-Z0-9]{1,10}$'),
	CONSTRAINT trades_liquidity_check CHECK (liquidity::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{MAKER,TAKER}'::pg_catalog.text[])),
	CONSTRAINT trades_trade_ref_check CHECK (trade_ref OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT trades_metadata_check
		CHECK (pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.=) 'object')
);

CREATE INDEX trades_account_executed_idx
	ON exchange.trades (account_id, executed_at, trade_id);
CREATE INDEX trades_symbol_executed_idx
	ON exchange.trades (symbol, executed_at);
CREATE INDEX trades_match_id_idx
	ON exchange.trades (match_id) WHERE match_id IS NOT NULL;

CREATE TABLE exchange.balances (
	balance_id		uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	account_id		uuid NOT NULL,
	symbol			varchar(10) NOT NULL,
	available_balance numeric(24,8) NOT NULL DEFAULT 0,
	locked_balance	numeric(24,8) NOT NULL DEFAULT 0,
	total_balance	numeric(24,8) GENERATED ALWAYS AS
		(available_balance OPERATOR(pg_catalog.+) locked_balance) STORED,
	last_updated	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	metadata		jsonb NOT NULL DEFAULT '{}'::pg_catalog.jsonb,
	CONSTRAINT balances_pkey PRIMARY KEY (balance_id),
	CONSTRAINT balances_account_id_symbol_key UNIQUE (account_id, symbol),
	CONSTRAINT balances_account_id_fkey FOREIGN KEY (account_id)
		REFERENCES exchange.accounts (account_id),
	CONSTRAINT balances_symbol_check
		CHECK (symbol OPERATOR(pg_catalog.~) '^[A-Z0-9]{1,10}$'),
	CONSTRAINT balances_available_balance_check
		CHECK (available_balance OPERATOR(pg_catalog.>=) 0.0),
	CONSTRAINT balances_locked_balance_check
		CHECK (locked_balance OPERATOR(pg_catalog.>=) 0.0),
	-- numeric(24,8) holds NaN, which compares above every number: refuse it.
	CONSTRAINT balances_amounts_not_nan_check
		CHECK (available_balance OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND locked_balance OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	CONSTRAINT balances_metadata_check
		CHECK (pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.=) 'object')
);

CREATE TABLE exchange.holds (
	hold_id			uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	account_id		uuid NOT NULL,
	asset			varchar(10) NOT NULL,
	amount			numeric(24,8) NOT NULL,
	remaining		numeric(24,8) NOT NULL,
	captured		numeric(24,8) NOT NULL DEFAULT 0,
	reason			text,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	released_at		timestamptz,
	CONSTRAINT holds_pkey PRIMARY KEY (hold_id),
	CONSTRAINT holds_account_id_fkey FOREIGN KEY (account_id)
		REFERENCES exchange.accounts (account_id),
	CONSTRAINT holds_asset_check CHECK (asset OPERATOR(pg_catalog.~) '^[A-Z0-9]{1,10}$'),
	CONSTRAINT holds_amount_check CHECK (amount OPERATOR(pg_catalog.>) 0.0),
	-- numeric(24,8) holds NaN, which compares above every number: refuse it.
	CONSTRAINT holds_amounts_not_nan_check
		CHECK (amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND remaining OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND captured OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	CONSTRAINT holds_remaining_check
		CHECK (remaining OPERATOR(pg_catalog.>=) 0.0 AND captured OPERATOR(pg_catalog.>=) 0.0
			   AND (remaining OPERATOR(pg_catalog.+) captured) OPERATOR(pg_catalog.<=) amount),
	-- a hold is finished (released_at set) exactly when nothing remains
	CONSTRAINT holds_released_check
		CHECK ((remaining OPERATOR(pg_catalog.=) 0.0) OPERATOR(pg_catalog.=) (released_at IS NOT NULL))
);

CREATE INDEX holds_account_asset_idx
	ON exchange.holds (account_id, asset, created_at)
	WHERE released_at IS NULL;

CREATE TABLE exchange.balance_journal (
	seq				bigint GENERATED ALWAYS AS IDENTITY,
	account_id		uuid NOT NULL,
	asset			varchar(10) NOT NULL,
	delta_available numeric(24,8) NOT NULL DEFAULT 0,
	delta_locked	numeric(24,8) NOT NULL DEFAULT 0,
	kind			varchar(16) NOT NULL,
	order_id		uuid,
	trade_id		uuid,
	hold_id			uuid,
	reference		varchar(128),
	actor			text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT balance_journal_pkey PRIMARY KEY (seq),
	CONSTRAINT balance_journal_account_id_fkey FOREIGN KEY (account_id)
		REFERENCES exchange.accounts (account_id),
	CONSTRAINT balance_journal_asset_check
		CHECK (asset OPERATOR(pg_catalog.~) '^[A-Z0-9]{1,10}$'),
	CONSTRAINT balance_journal_kind_check
		CHECK (kind IN ('DEPOSIT', 'WITHDRAWAL', 'LOCK', 'UNLOCK', 'CAPTURE',
						'ORDER_LOCK', 'ORDER_RELEASE', 'TRADE', 'FEE', 'MIGRATION')),
	-- numeric(24,8) holds NaN, which compares above every number: refuse it.
	CONSTRAINT balance_journal_amounts_not_nan_check
		CHECK (delta_available OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric AND delta_locked OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	CONSTRAINT balance_journal_nonzero_check
		CHECK (delta_available OPERATOR(pg_catalog.<>) 0.0 OR delta_locked OPERATOR(pg_catalog.<>) 0.0)
);

CREATE INDEX balance_journal_account_asset_idx
	ON exchange.balance_journal (account_id, asset, seq);
-- Idempotency of deposit / withdraw / capture_hold with a reference: one
-- journal row per (account, kind, reference).
CREATE UNIQUE INDEX balance_journal_reference_key
	ON exchange.balance_journal (account_id, kind, reference)
	WHERE reference IS NOT NULL AND kind IN ('DEPOSIT', 'WITHDRAWAL', 'CAPTURE');
CREATE INDEX balance_journal_order_idx
	ON exchange.balance_journal (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE exchange.order_events (
	seq				bigint GENERATED ALWAYS AS IDENTITY,
	order_id		uuid NOT NULL,
	from_status		varchar(16),
	to_status		varchar(16) NOT NULL,
	filled_delta	numeric(24,8) NOT NULL DEFAULT 0,
	reason			text,
	actor			text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT order_events_pkey PRIMARY KEY (seq),
	CONSTRAINT order_events_order_id_fkey FOREIGN KEY (order_id)
		REFERENCES exchange.orders (order_id),
	CONSTRAINT order_events_from_status_check
		CHECK (from_status::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{PENDING,OPEN,PARTIAL,FILLED,CANCELLED,REJECTED,EXPIRED}'::pg_catalog.text[])),
	CONSTRAINT order_events_to_status_check
		CHECK (to_status::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{PENDING,OPEN,PARTIAL,FILLED,CANCELLED,REJECTED,EXPIRED}'::pg_catalog.text[])),
	-- numeric(24,8) holds NaN, which compares above every number: refuse it.
	CONSTRAINT order_events_amounts_not_nan_check
		CHECK (filled_delta OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	CONSTRAINT order_events_filled_delta_check CHECK (filled_delta OPERATOR(pg_catalog.>=) 0.0)
);

CREATE INDEX order_events_order_idx ON exchange.order_events (order_id, seq);

CREATE TABLE exchange.fee_ledger (
	seq				bigint GENERATED ALWAYS AS IDENTITY,
	trade_id		uuid NOT NULL,
	market			varchar(21) NOT NULL,
	asset			varchar(10) NOT NULL,
	amount			numeric(24,8) NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT fee_ledger_pkey PRIMARY KEY (seq),
	CONSTRAINT fee_ledger_trade_id_fkey FOREIGN KEY (trade_id)
		REFERENCES exchange.trades (trade_id),
	CONSTRAINT fee_ledger_asset_check
		CHECK (asset OPERATOR(pg_catalog.~) '^[A-Z0-9]{1,10}$'),
	-- numeric(24,8) holds NaN, which compares above every number: refuse it.
	CONSTRAINT fee_ledger_amounts_not_nan_check
		CHECK (amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	CONSTRAINT fee_ledger_amount_check CHECK (amount OPERATOR(pg_catalog.>) 0.0)
);

CREATE INDEX fee_ledger_asset_idx ON exchange.fee_ledger (asset, seq);

-- Internal: what changed, waiting for the worker to push it to Redis (§5).
-- Not dumped: a restored copy must not replay another database's pushes.
CREATE TABLE exchange.outbox (
	id				bigint GENERATED ALWAYS AS IDENTITY,
	xid				pg_catalog.xid8 NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	kind			varchar(8) NOT NULL,
	keys			text[] NOT NULL DEFAULT '{}'::text[],
	service_id		text,
	claimed_at		timestamptz,
	attempts		integer NOT NULL DEFAULT 0,
	CONSTRAINT outbox_pkey PRIMARY KEY (id),
	CONSTRAINT outbox_kind_check CHECK (kind IN ('cache', 'registry')),
	CONSTRAINT outbox_registry_check
		CHECK ((kind OPERATOR(pg_catalog.=) 'registry') OPERATOR(pg_catalog.=) (service_id IS NOT NULL))
)
-- Half of each page stays free so the worker's claim (claimed_at, attempts:
-- no index) is a HOT update: measured to double the drain rate of a backlog.
WITH (fillfactor = 50);
-- keys out of line uncompressed: a batch call (expire_orders) writes a key
-- per order, and pglz over a million keys cost a fifth of the call
-- (bench/README.md).
ALTER TABLE exchange.outbox ALTER COLUMN keys SET STORAGE EXTERNAL;

-- Internal: the durable service registry; Redis holds its projection (§5).
-- Not dumped: a restored copy must not re-announce another environment's services.
CREATE TABLE exchange.services (
	service_id		text NOT NULL,
	service_name	text NOT NULL,
	address			text NOT NULL,
	port			integer NOT NULL,
	version			text,
	metadata		jsonb NOT NULL DEFAULT '{}'::pg_catalog.jsonb,
	ttl				interval NOT NULL DEFAULT '90 seconds'::interval,
	registered_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_heartbeat	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT services_pkey PRIMARY KEY (service_id),
	CONSTRAINT services_service_id_check CHECK (service_id OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT services_service_name_check CHECK (service_name OPERATOR(pg_catalog.<>) ''),
	CONSTRAINT services_port_check
		CHECK (port OPERATOR(pg_catalog.>=) 1 AND port OPERATOR(pg_catalog.<=) 65535),
	CONSTRAINT services_ttl_check CHECK (ttl OPERATOR(pg_catalog.>) '0'::interval),
	CONSTRAINT services_metadata_check
		CHECK (pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.=) 'object')
);

-- ---------------------------------------------------------------------------
-- Views: the reads applications make.
-- ---------------------------------------------------------------------------

CREATE VIEW exchange.open_orders AS
SELECT o.order_id, o.account_id, o.symbol, o.side, o.order_type, o.status,
	   o.quantity, o.filled_quantity,
	   (o.quantity OPERATOR(pg_catalog.-) o.filled_quantity) AS remaining_quantity,
	   o.price, o.stop_price, o.average_price, o.time_in_force,
	   o.lock_asset, o.locked_amount, o.client_order_id, o.created_at, o.updated_at
  FROM exchange.orders o
 WHERE o.status IN ('PENDING', 'OPEN', 'PARTIAL');

CREATE VIEW exchange.order_book AS
SELECT o.symbol, o.side, o.price,
	   pg_catalog.sum(o.quantity OPERATOR(pg_catalog.-) o.filled_quantity)::numeric(24,8) AS quantity,
	   pg_catalog.count(*) AS orders
  FROM exchange.orders o
 WHERE o.status IN ('OPEN', 'PARTIAL')
   AND o.order_type OPERATOR(pg_catalog.<>) 'MARKET'
   AND o.price IS NOT NULL
 GROUP BY o.symbol, o.side, o.price;

CREATE VIEW exchange.account_balances AS
SELECT b.account_id, a.user_id, a.account_type, a.status AS account_status,
	   b.symbol AS asset, b.available_balance, b.locked_balance, b.total_balance,
	   b.last_updated
  FROM exchange.balances b
  JOIN exchange.accounts a ON a.account_id OPERATOR(pg_catalog.=) b.account_id;

-- ---------------------------------------------------------------------------
-- Triggers.  UPDATE-only: no trigger on a dumped table acts on INSERT.
-- ---------------------------------------------------------------------------

CREATE FUNCTION exchange.orders_lifecycle_guard() RETURNS trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'exa_orders_lifecycle_guard';

CREATE TRIGGER orders_lifecycle_guard
	BEFORE UPDATE ON exchange.orders
	FOR EACH ROW EXECUTE FUNCTION exchange.orders_lifecycle_guard();
-- ALWAYS: the lifecycle holds for replication and session_replication_role too.
ALTER TABLE exchange.orders ENABLE ALWAYS TRIGGER orders_lifecycle_guard;

-- ---------------------------------------------------------------------------
-- Administration functions (C, superuser-only).
-- ---------------------------------------------------------------------------

CREATE FUNCTION exchange.grant_adapter(role pg_catalog.regrole, profile pg_catalog.text DEFAULT 'all')
	RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_grant_adapter';

CREATE FUNCTION exchange.revoke_adapter(role pg_catalog.regrole)
	RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_revoke_adapter';

-- DROP EXTENSION guard: refuse while the ledger holds rows unless
-- exchange_adapter.allow_drop is on.
CREATE FUNCTION exchange.exa_drop_guard() RETURNS event_trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'exa_drop_guard';

CREATE EVENT TRIGGER exchange_adapter_drop_guard
	ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION exchange.exa_drop_guard();
-- ALWAYS: session_replication_role = replica must not switch the guard off.
ALTER EVENT TRIGGER exchange_adapter_drop_guard ENABLE ALWAYS;

-- ---------------------------------------------------------------------------
-- SQL API: accounts, markets, funds and holds (C; SECURITY DEFINER with a
-- pinned search_path; PARALLEL UNSAFE: every one writes or locks).
-- ---------------------------------------------------------------------------

CREATE FUNCTION exchange.create_account(user_id text, account_type text DEFAULT 'SPOT',
										metadata jsonb DEFAULT '{}'::pg_catalog.jsonb)
	RETURNS exchange.accounts
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_create_account';

CREATE FUNCTION exchange.set_account_status(account_id uuid, status text)
	RETURNS exchange.accounts
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_set_account_status';

CREATE FUNCTION exchange.set_kyc_status(account_id uuid, kyc_status text)
	RETURNS exchange.accounts
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_set_kyc_status';

CREATE FUNCTION exchange.create_market(symbol text, base_asset text, quote_asset text,
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

CREATE FUNCTION exchange.set_market_status(symbol text, status text)
	RETURNS exchange.markets
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_set_market_status';

CREATE FUNCTION exchange.deposit(account_id uuid, asset text, amount numeric,
								 reference text DEFAULT NULL)
	RETURNS exchange.balances
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_deposit';

CREATE FUNCTION exchange.withdraw(account_id uuid, asset text, amount numeric,
								  reference text DEFAULT NULL)
	RETURNS exchange.balances
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_withdraw';

CREATE FUNCTION exchange.lock_balance(account_id uuid, asset text, amount numeric,
									  reason text DEFAULT NULL)
	RETURNS exchange.holds
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_lock_balance';

CREATE FUNCTION exchange.unlock_balance(hold_id uuid, amount numeric DEFAULT NULL)
	RETURNS exchange.holds
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_unlock_balance';

CREATE FUNCTION exchange.capture_hold(hold_id uuid, amount numeric DEFAULT NULL,
									  reference text DEFAULT NULL)
	RETURNS exchange.holds
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_capture_hold';

CREATE FUNCTION exchange.place_order(account_id uuid, symbol text, side text, order_type text,
									 quantity numeric, price numeric DEFAULT NULL,
									 time_in_force text DEFAULT NULL,
									 stop_price numeric DEFAULT NULL,
									 client_order_id text DEFAULT NULL,
									 metadata jsonb DEFAULT '{}'::pg_catalog.jsonb)
	RETURNS exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_place_order';

CREATE FUNCTION exchange.cancel_order(order_id uuid, reason text DEFAULT NULL)
	RETURNS exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_cancel_order';

CREATE FUNCTION exchange.cancel_orders(account_id uuid, symbol text DEFAULT NULL)
	RETURNS SETOF exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_cancel_orders';

CREATE FUNCTION exchange.expire_order(order_id uuid, reason text DEFAULT NULL)
	RETURNS exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_expire_order';

CREATE FUNCTION exchange.expire_orders(symbol text, placed_before timestamptz)
	RETURNS SETOF exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_expire_orders';

CREATE FUNCTION exchange.trigger_stop_orders(symbol text, last_price numeric)
	RETURNS SETOF exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_trigger_stop_orders';

CREATE FUNCTION exchange.apply_trade(order_id uuid, quantity numeric, price numeric,
									 fee numeric DEFAULT NULL, fee_currency text DEFAULT NULL,
									 executed_at timestamptz DEFAULT pg_catalog.now(),
									 trade_ref text DEFAULT NULL, liquidity text DEFAULT NULL)
	RETURNS exchange.trades
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_apply_trade';

CREATE FUNCTION exchange.apply_match(buy_order_id uuid, sell_order_id uuid, quantity numeric,
									 price numeric, buy_fee numeric DEFAULT NULL,
									 sell_fee numeric DEFAULT NULL, trade_ref text DEFAULT NULL,
									 maker text DEFAULT NULL)
	RETURNS SETOF exchange.trades
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_apply_match';

CREATE FUNCTION exchange.check_invariants()
	RETURNS TABLE (invariant text, detail text)
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_check_invariants';

-- ---------------------------------------------------------------------------
-- SQL API: service registry and Redis delivery (C; SECURITY DEFINER with a
-- pinned search_path; PARALLEL UNSAFE).  The registry functions only change
-- exchange.services and queue an outbox row; discover_services and
-- flush_outbox are the only functions that talk to Redis, in the calling
-- backend, with deadlines (LX011 when Redis fails).
-- ---------------------------------------------------------------------------

CREATE TYPE exchange.service_instance AS (
	service_id		text,
	service_name	text,
	address			text,
	port			integer,
	version			text,
	metadata		jsonb,
	registered_at	timestamptz,
	last_heartbeat	timestamptz
);

CREATE FUNCTION exchange.register_service(service_id text, service_name text, address text,
										  port integer, version text DEFAULT NULL,
										  metadata jsonb DEFAULT '{}'::pg_catalog.jsonb,
										  ttl interval DEFAULT '90 seconds'::interval)
	RETURNS exchange.services
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_register_service';

CREATE FUNCTION exchange.heartbeat_service(service_id text)
	RETURNS exchange.services
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_heartbeat_service';

CREATE FUNCTION exchange.deregister_service(service_id text)
	RETURNS boolean
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_deregister_service';

-- Its result columns are a type of their own: service_name is both a
-- parameter and a result column, which RETURNS TABLE cannot express.
CREATE FUNCTION exchange.discover_services(service_name text DEFAULT NULL)
	RETURNS SETOF exchange.service_instance
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_discover_services';

CREATE FUNCTION exchange.adapter_status(OUT worker_pid integer, OUT database text,
										OUT redis_connected boolean, OUT last_error text,
										OUT last_push_at timestamptz, OUT outbox_pending bigint,
										OUT outbox_oldest timestamptz, OUT pushed_keys bigint,
										OUT failed_pushes bigint)
	RETURNS record
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_adapter_status';

CREATE FUNCTION exchange.flush_outbox(max_rows integer DEFAULT 1000)
	RETURNS integer
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_flush_outbox';

-- ---------------------------------------------------------------------------
-- pg_dump: ledger tables and their identity sequences are dumped; the outbox
-- and the service registry are not.
-- ---------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('exchange.accounts'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('exchange.markets'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('exchange.orders'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('exchange.trades'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('exchange.balances'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('exchange.holds'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('exchange.balance_journal'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('exchange.order_events'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump('exchange.fee_ledger'::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(
		pg_catalog.pg_get_serial_sequence('exchange.balance_journal', 'seq')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(
		pg_catalog.pg_get_serial_sequence('exchange.order_events', 'seq')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(
		pg_catalog.pg_get_serial_sequence('exchange.fee_ledger', 'seq')::pg_catalog.regclass, '');

-- ---------------------------------------------------------------------------
-- Documentation: \d+ and \df+ describe every public object.
-- ---------------------------------------------------------------------------

COMMENT ON TABLE exchange.accounts IS
	'Trading accounts: one per (user_id, account_type). status ACTIVE <-> SUSPENDED, -> CLOSED (final); kyc_status PENDING -> APPROVED | REJECTED. Written only by the exchange functions.';
COMMENT ON COLUMN exchange.accounts.account_id IS 'Account identifier (uuid).';
COMMENT ON COLUMN exchange.accounts.user_id IS 'The owning user''s identifier in the calling system.';
COMMENT ON COLUMN exchange.accounts.account_type IS 'SPOT, MARGIN or FUTURES.';
COMMENT ON COLUMN exchange.accounts.status IS 'ACTIVE, SUSPENDED or CLOSED; only ACTIVE accounts may place orders, withdraw or lock funds.';
COMMENT ON COLUMN exchange.accounts.kyc_status IS 'PENDING, APPROVED or REJECTED; orders need APPROVED.';
COMMENT ON COLUMN exchange.accounts.metadata IS 'Free-form JSON object.';

COMMENT ON TABLE exchange.markets IS
	'Tradable markets <BASE>-<QUOTE> with their tick, lot, minimums and fee rates. status ACTIVE or HALTED (a halt refuses new orders; settlement continues).';
COMMENT ON COLUMN exchange.markets.symbol IS 'Market symbol <BASE>-<QUOTE>, e.g. BTC-USDT.';
COMMENT ON COLUMN exchange.markets.tick_size IS 'Prices must be multiples of this.';
COMMENT ON COLUMN exchange.markets.lot_size IS 'Quantities must be multiples of this.';
COMMENT ON COLUMN exchange.markets.min_quantity IS 'Smallest order quantity.';
COMMENT ON COLUMN exchange.markets.min_notional IS 'Smallest quantity x price (or protection price).';
COMMENT ON COLUMN exchange.markets.maker_fee_rate IS 'Fee rate in [0, 0.1] applied to maker fills when no explicit fee is given.';
COMMENT ON COLUMN exchange.markets.taker_fee_rate IS 'Fee rate in [0, 0.1] applied to taker fills when no explicit fee is given.';

COMMENT ON TABLE exchange.orders IS
	'Orders and their lifecycle (PENDING, OPEN, PARTIAL, FILLED, CANCELLED, REJECTED, EXPIRED). Every status change is checked by trigger orders_lifecycle_guard and journaled in order_events.';
COMMENT ON COLUMN exchange.orders.price IS 'Limit price; for MARKET and STOP BUY orders the protection price (the most they may pay).';
COMMENT ON COLUMN exchange.orders.filled_quantity IS 'Sum of the quantities of this order''s trades.';
COMMENT ON COLUMN exchange.orders.average_price IS 'Volume-weighted average fill price, rounded half-even to 8 decimals.';
COMMENT ON COLUMN exchange.orders.time_in_force IS 'GTC, IOC or FOK (MARKET is never GTC).';
COMMENT ON COLUMN exchange.orders.stop_price IS 'Trigger price of a STOP order (BUY: last >= stop, SELL: last <= stop).';
COMMENT ON COLUMN exchange.orders.client_order_id IS 'Caller''s idempotency key, unique per account.';
COMMENT ON COLUMN exchange.orders.lock_asset IS 'Asset whose funds this order holds (quote for BUY, base for SELL).';
COMMENT ON COLUMN exchange.orders.locked_amount IS 'Funds this order holds now; 0 once terminal.';
COMMENT ON COLUMN exchange.orders.filled_value IS 'Exact sum of quantity x price over this order''s trades (average_price is derived from it).';
COMMENT ON COLUMN exchange.orders.reject_reason IS 'Why a REJECTED order was refused (ACCOUNT_NOT_ACTIVE, KYC_NOT_APPROVED, MARKET_HALTED, TICK_SIZE, LOT_SIZE, MIN_QUANTITY, MIN_NOTIONAL, INSUFFICIENT_FUNDS).';

COMMENT ON TABLE exchange.trades IS
	'Fills applied to orders (one row per order side of an execution). apply_match writes two rows sharing match_id.';
COMMENT ON COLUMN exchange.trades.fee IS 'Fee charged for this fill, in fee_currency.';
COMMENT ON COLUMN exchange.trades.trade_ref IS 'Caller''s idempotency key, unique per order.';
COMMENT ON COLUMN exchange.trades.liquidity IS 'MAKER or TAKER: selects the market''s fee rate when no fee is given.';
COMMENT ON COLUMN exchange.trades.match_id IS 'Shared by the two trades of one apply_match.';

COMMENT ON TABLE exchange.balances IS
	'Per account and asset: available and locked funds (both >= 0). Every change is journaled in balance_journal.';
COMMENT ON COLUMN exchange.balances.symbol IS 'The asset code (e.g. BTC); named symbol for compatibility with the original schema.';
COMMENT ON COLUMN exchange.balances.available_balance IS 'Funds free to trade or withdraw.';
COMMENT ON COLUMN exchange.balances.locked_balance IS 'Funds held by live orders and holds.';
COMMENT ON COLUMN exchange.balances.total_balance IS 'available_balance + locked_balance.';

COMMENT ON TABLE exchange.holds IS
	'Funds held outside orders (lock_balance): released by unlock_balance or captured (withdrawn) by capture_hold.';
COMMENT ON COLUMN exchange.holds.remaining IS 'Part of the hold still locked.';
COMMENT ON COLUMN exchange.holds.captured IS 'Part of the hold that left the account through capture_hold.';
COMMENT ON COLUMN exchange.holds.released_at IS 'When nothing remained of the hold.';

COMMENT ON TABLE exchange.balance_journal IS
	'Append-only: one row per balance change, with its deltas, kind, cause (order, trade, hold, reference) and actor.';
COMMENT ON COLUMN exchange.balance_journal.kind IS 'DEPOSIT, WITHDRAWAL, LOCK, UNLOCK, CAPTURE, ORDER_LOCK, ORDER_RELEASE, TRADE, FEE or MIGRATION.';
COMMENT ON COLUMN exchange.balance_journal.actor IS 'session_user, and the outer role when it differs (session/role).';

COMMENT ON TABLE exchange.order_events IS
	'Append-only: one row per order status change and per fill, including creation (from_status NULL).';
COMMENT ON TABLE exchange.fee_ledger IS
	'Append-only exchange revenue: one row per non-zero fee.';
COMMENT ON TABLE exchange.outbox IS
	'Internal: Redis pushes waiting for delivery after commit. Not readable by application roles; not dumped.';
COMMENT ON TABLE exchange.services IS
	'Internal: the durable service registry whose live rows the worker projects into Redis. Not dumped.';

COMMENT ON VIEW exchange.open_orders IS 'Live orders (PENDING, OPEN, PARTIAL) with their remaining quantity.';
COMMENT ON VIEW exchange.order_book IS 'Aggregated open quantity per symbol, side and price level of resting LIMIT and triggered stop-limit orders (a MARKET order''s price is only its protection price).';
COMMENT ON VIEW exchange.account_balances IS 'Balances with their account''s user, type and status.';

COMMENT ON FUNCTION exchange.orders_lifecycle_guard() IS
	'Trigger: refuses any order update outside the lifecycle table (SQLSTATE LX002).';
COMMENT ON FUNCTION exchange.exa_drop_guard() IS
	'Event trigger: refuses DROP EXTENSION exchange_adapter while the ledger holds rows unless exchange_adapter.allow_drop is on.';
COMMENT ON FUNCTION exchange.grant_adapter(pg_catalog.regrole, pg_catalog.text) IS
	'Grants a role USAGE on schema exchange, SELECT on the ledger tables and views, and EXECUTE on the functions of a profile: trader, engine, operator or all. Superuser only.';
COMMENT ON FUNCTION exchange.revoke_adapter(pg_catalog.regrole) IS
	'Revokes everything grant_adapter may have granted to a role. Superuser only.';

COMMENT ON FUNCTION exchange.create_account(text, text, jsonb) IS
	'Creates an ACTIVE account with KYC PENDING. A second account of the same user and type raises LX010 with the existing account_id in the detail. Stale key: cache:account:<id>.';
COMMENT ON FUNCTION exchange.set_account_status(uuid, text) IS
	'ACTIVE <-> SUSPENDED; -> CLOSED (final) only with zero balances and no live order or hold (else LX002). Locks the account FOR NO KEY UPDATE.';
COMMENT ON FUNCTION exchange.set_kyc_status(uuid, text) IS
	'KYC: PENDING -> APPROVED | REJECTED, APPROVED -> REJECTED, REJECTED -> PENDING (else LX002).';
COMMENT ON FUNCTION exchange.create_market(text, text, text, numeric, numeric, numeric, numeric, numeric, numeric, jsonb) IS
	'Creates an ACTIVE market <BASE>-<QUOTE>; fee rates in [0, 0.1]. A duplicate raises LX010.';
COMMENT ON FUNCTION exchange.set_market_status(text, text) IS
	'ACTIVE <-> HALTED. A halt refuses orders placed after it commits; settlement, cancel and expire continue.';
COMMENT ON FUNCTION exchange.deposit(uuid, text, numeric, text) IS
	'Credits available funds (journal kind DEPOSIT); refused on CLOSED accounts (LX004). With a reference, a retry returns the balance and changes nothing; other values raise LX009.';
COMMENT ON FUNCTION exchange.withdraw(uuid, text, numeric, text) IS
	'Debits available funds (journal kind WITHDRAWAL); needs an ACTIVE account (LX004) and enough available funds (LX001). Idempotent per reference like deposit.';
COMMENT ON FUNCTION exchange.lock_balance(uuid, text, numeric, text) IS
	'Moves available funds to locked under a new hold (journal kind LOCK) and returns the hold; needs an ACTIVE account and enough available funds (LX001).';
COMMENT ON FUNCTION exchange.unlock_balance(uuid, numeric) IS
	'Releases part (or, with NULL, all that remains) of a hold back to available (journal kind UNLOCK); allowed whatever the account status.';
COMMENT ON FUNCTION exchange.capture_hold(uuid, numeric, text) IS
	'Takes part (or, with NULL, all that remains) of a hold out of the account as a withdrawal from locked funds (journal kind CAPTURE); refused on CLOSED accounts. Idempotent per reference.';
COMMENT ON FUNCTION exchange.place_order(uuid, text, text, text, numeric, numeric, text, numeric, text, jsonb) IS
	'Places an order: LIMIT and MARKET start OPEN, STOP starts PENDING; a business refusal is stored REJECTED with reject_reason and locks nothing. BUY locks ceil8(quantity x price) of the quote asset (price is the protection price for MARKET and STOP BUY), SELL locks quantity of the base asset. Idempotent per (account_id, client_order_id).';
COMMENT ON FUNCTION exchange.cancel_order(uuid, text) IS
	'PENDING, OPEN or PARTIAL -> CANCELLED, releasing the order''s lock (journal kind ORDER_RELEASE); LX002 otherwise. Allowed whatever the account or market status.';
COMMENT ON FUNCTION exchange.cancel_orders(uuid, text) IS
	'Cancels every live order of an account (of one market when symbol is given); returns the cancelled orders.';
COMMENT ON FUNCTION exchange.expire_order(uuid, text) IS
	'PENDING, OPEN or PARTIAL -> EXPIRED, releasing the lock; the caller expires IOC and FOK remainders with it.';
COMMENT ON FUNCTION exchange.expire_orders(text, timestamptz) IS
	'The operator''s end-of-day batch: expires every live order of a market placed before a time; returns them.';
COMMENT ON FUNCTION exchange.trigger_stop_orders(text, numeric) IS
	'Opens the PENDING stops of a market whose condition holds at last_price (BUY: last >= stop, SELL: last <= stop); returns them. A HALTED market triggers nothing.';
COMMENT ON FUNCTION exchange.apply_trade(uuid, numeric, numeric, numeric, text, timestamptz, text, text) IS
	'Applies a fill of an OPEN or PARTIAL order against an outside counterparty: notional trunc8(q x p), lock recomputed as ceil8(remaining x limit) with the rest refunded, fee and fee_ledger, VWAP, PARTIAL/FILLED. LX007 overfill, LX008 fill-or-kill, LX006 price outside limit. Idempotent per (order_id, trade_ref).';
COMMENT ON FUNCTION exchange.apply_match(uuid, uuid, numeric, numeric, numeric, numeric, text, text) IS
	'Fills a BUY and a SELL order of one market against each other, both or neither, with one match_id; returns the BUY then the SELL trade. maker BUY, SELL or NULL (the older order). Idempotent per (buy, sell, trade_ref).';
COMMENT ON FUNCTION exchange.check_invariants() IS
	'Checks the ledger invariants; returns one row per violation, named after its clause (locked_balance, journal_balance, asset_conservation, match_netting, filled_quantity, terminal_locked, trade_order, closed_account, event_replay). Empty when sound.';

COMMENT ON TYPE exchange.service_instance IS
	'A service instance as discover_services reads it from Redis (Go layout).';
COMMENT ON FUNCTION exchange.register_service(text, text, text, integer, text, jsonb, interval) IS
	'Registers or re-registers a service instance in exchange.services; after commit the worker writes exchange:service:<id> (JSON in the Go layout) and exchange:heartbeat:<id>, both expiring when last_heartbeat + ttl passes. ttl must exceed exchange_adapter.heartbeat_interval; metadata is a flat object of strings.';
COMMENT ON FUNCTION exchange.heartbeat_service(text) IS
	'Renews a registration (last_heartbeat = now()); after commit the worker rewrites its keys with the new LastHeartbeat and expiry. LX003 when the id is not registered.';
COMMENT ON FUNCTION exchange.deregister_service(text) IS
	'Removes a registration; after commit the worker deletes its keys. Returns false (and changes nothing) when it was not registered.';
COMMENT ON FUNCTION exchange.discover_services(text) IS
	'Lists the service instances found in Redis (SCAN + MGET, written by any service in the Go layout), of one service_name or all. Talks to Redis in the calling backend within the connect and command timeouts; cancellable; LX011 when Redis fails.';
COMMENT ON FUNCTION exchange.adapter_status() IS
	'The delivery worker: pid, served database, Redis connection, last error (refusals included), last push, keys pushed and failed pushes since server start; and this database''s outbox backlog. Without shared_preload_libraries only database and the outbox columns are filled.';
COMMENT ON FUNCTION exchange.flush_outbox(integer) IS
	'Delivers up to max_rows committed outbox rows to Redis in the calling backend (never the caller''s own uncommitted rows) and returns how many; they stay locked until the caller''s transaction ends. LX011 when Redis fails: the rows stay for the worker.';

-- == trade feed ==
-- Every execution is published after commit on <prefix>trades:<symbol>
-- (README "Trade feed"): the call's outbox row names its executions, one
-- trade id each (the trade of apply_trade, the TAKER leg of a match), in
-- execution order, and the deliverer renders the messages from
-- exchange.trades after the row's deletions and invalidation message.  NULL:
-- the call executed nothing.  On a 1.0 catalog (catalog_version.c) the 1.1
-- library writes and delivers outbox rows as 1.0 did.
ALTER TABLE exchange.outbox ADD COLUMN trade_ids uuid[];
COMMENT ON COLUMN exchange.outbox.trade_ids IS
	'Trade feed: one trade id per execution of the call (the trade of apply_trade, the TAKER leg of a match), in order; published on <key_prefix>trades:<symbol> after the row''s invalidation message. NULL when the call executed nothing.';

-- == market data ==
-- README "Market data": order_book_depth, ticker and candles read the book and
-- the trades of both kinds of market.  An execution is one trade without
-- match_id (apply_trade) or one match (the two trades sharing a match_id),
-- counted once through its BUY leg.  PL/pgSQL only to check the arguments and
-- raise; each answer is one SQL statement.  search_path is pinned, so the
-- bodies' unqualified operators and functions are pg_catalog's.  jit is off:
-- the planner prices a day of candles above jit_above_cost, and compiling
-- (about 0.4 s) would cost more than the scan it speeds up.

-- The executions of a market in time order, with the columns ticker and
-- candles aggregate: the 24-hour window, the newest execution and a range of
-- candles are index-only range scans of (symbol, executed_at), the predicate
-- leaving one entry per execution.
CREATE INDEX trades_executions_idx
	ON exchange.trades (symbol, executed_at) INCLUDE (price, quantity)
	WHERE match_id IS NULL OR side OPERATOR(pg_catalog.=) 'BUY';

CREATE FUNCTION exchange.order_book_depth(symbol text, levels integer DEFAULT 20)
	RETURNS TABLE (side text, price numeric, quantity numeric, orders integer)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET jit = off
	AS $exa$
#variable_conflict use_column
BEGIN
	IF order_book_depth.symbol IS NULL THEN
		RAISE EXCEPTION 'symbol must not be null' USING ERRCODE = '22004';
	END IF;
	IF order_book_depth.levels IS NULL THEN
		RAISE EXCEPTION 'levels must not be null' USING ERRCODE = '22004';
	END IF;
	IF order_book_depth.levels < 1 THEN
		RAISE EXCEPTION 'levels must be positive'
			USING ERRCODE = '22023',
				  DETAIL = format('levels is %s.', order_book_depth.levels);
	END IF;
	PERFORM FROM exchange.markets m WHERE m.symbol = order_book_depth.symbol;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'market "%" does not exist', order_book_depth.symbol
			USING ERRCODE = 'LX003';
	END IF;

	-- Resting orders as the view order_book counts them (a MARKET order's
	-- price is a protection price, not a level): orders_book_idx, best first.
	RETURN QUERY
	SELECT d.side, d.price, d.quantity, d.orders
	  FROM ((SELECT 'BUY'::text AS side, o.price,
					sum(o.quantity - o.filled_quantity) AS quantity,
					count(*)::integer AS orders
			   FROM exchange.orders o
			  WHERE o.symbol = order_book_depth.symbol
				AND o.side = 'BUY'
				AND o.status IN ('OPEN', 'PARTIAL')
				AND o.order_type <> 'MARKET'
				AND o.price IS NOT NULL
			  GROUP BY o.price
			  ORDER BY o.price DESC
			  LIMIT order_book_depth.levels)
			UNION ALL
			(SELECT 'SELL'::text, o.price,
					sum(o.quantity - o.filled_quantity),
					count(*)::integer
			   FROM exchange.orders o
			  WHERE o.symbol = order_book_depth.symbol
				AND o.side = 'SELL'
				AND o.status IN ('OPEN', 'PARTIAL')
				AND o.order_type <> 'MARKET'
				AND o.price IS NOT NULL
			  GROUP BY o.price
			  ORDER BY o.price
			  LIMIT order_book_depth.levels)) d
	 ORDER BY d.side, CASE WHEN d.side = 'BUY' THEN -d.price ELSE d.price END;
END
$exa$;

-- ticker's row: a type of its own, since its symbol column and the symbol
-- argument cannot share a name in one parameter list.
CREATE TYPE exchange.market_ticker AS (
	symbol			text,
	last_price		numeric,
	best_bid		numeric,
	best_ask		numeric,
	open_24h		numeric,
	high_24h		numeric,
	low_24h			numeric,
	volume_24h		numeric,
	quote_volume_24h numeric,
	trades_24h		bigint,
	updated_at		timestamptz
);

CREATE FUNCTION exchange.ticker(symbol text DEFAULT NULL)
	RETURNS SETOF exchange.market_ticker
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET jit = off
	AS $exa$
#variable_conflict use_column
BEGIN
	IF ticker.symbol IS NOT NULL THEN
		PERFORM FROM exchange.markets m WHERE m.symbol = ticker.symbol;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'market "%" does not exist', ticker.symbol
				USING ERRCODE = 'LX003';
		END IF;
	END IF;

	-- Per market: the newest execution (trades_executions_idx backwards),
	-- the best bid and ask (orders_book_idx), and the executions of
	-- (now() - 24 h, now()] (trades_executions_idx), whose first one gives
	-- the open.  Executions at one executed_at are ordered by seq, then trade_id.
	RETURN QUERY
	SELECT mk.symbol::text, lt.price, bid.price, ask.price, op.price, w.high, w.low,
		   coalesce(w.volume, 0), coalesce(w.quote_volume, 0), w.trades, lt.executed_at
	  FROM exchange.markets mk
	  LEFT JOIN LATERAL
		   (SELECT t.price, t.executed_at
			  FROM exchange.trades t
			 WHERE t.symbol = mk.symbol
			   AND (t.match_id IS NULL OR t.side = 'BUY')
			 ORDER BY t.executed_at DESC, t.seq DESC NULLS LAST, t.trade_id DESC
			 LIMIT 1) lt ON true
	 CROSS JOIN LATERAL
		   (SELECT max(o.price) AS price
			  FROM exchange.orders o
			 WHERE o.symbol = mk.symbol
			   AND o.side = 'BUY'
			   AND o.status IN ('OPEN', 'PARTIAL')
			   AND o.order_type <> 'MARKET'
			   AND o.price IS NOT NULL) bid
	 CROSS JOIN LATERAL
		   (SELECT min(o.price) AS price
			  FROM exchange.orders o
			 WHERE o.symbol = mk.symbol
			   AND o.side = 'SELL'
			   AND o.status IN ('OPEN', 'PARTIAL')
			   AND o.order_type <> 'MARKET'
			   AND o.price IS NOT NULL) ask
	 CROSS JOIN LATERAL
		   (SELECT min(t.executed_at) AS first_at, max(t.price) AS high,
				   min(t.price) AS low, sum(t.quantity) AS volume,
				   sum(trunc(t.quantity * t.price, 8)) AS quote_volume,
				   count(*) AS trades
			  FROM exchange.trades t
			 WHERE t.symbol = mk.symbol
			   AND (t.match_id IS NULL OR t.side = 'BUY')
			   AND t.executed_at > now() - interval '24 hours'
			   AND t.executed_at <= now()) w
	  LEFT JOIN LATERAL
		   (SELECT t.price
			  FROM exchange.trades t
			 WHERE t.symbol = mk.symbol
			   AND (t.match_id IS NULL OR t.side = 'BUY')
			   AND t.executed_at = w.first_at
			 ORDER BY t.seq NULLS FIRST, t.trade_id
			 LIMIT 1) op ON true
	 WHERE ticker.symbol IS NULL OR mk.symbol = ticker.symbol
	 ORDER BY mk.symbol;
END
$exa$;

CREATE FUNCTION exchange.candles(symbol text, width interval, since timestamptz,
								 until timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (bucket timestamptz, open numeric, high numeric, low numeric,
				   close numeric, volume numeric, quote_volume numeric, trades bigint)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET jit = off
	AS $exa$
#variable_conflict use_column
BEGIN
	IF candles.symbol IS NULL THEN
		RAISE EXCEPTION 'symbol must not be null' USING ERRCODE = '22004';
	END IF;
	IF candles.width IS NULL THEN
		RAISE EXCEPTION 'width must not be null' USING ERRCODE = '22004';
	END IF;
	IF candles.since IS NULL THEN
		RAISE EXCEPTION 'since must not be null' USING ERRCODE = '22004';
	END IF;
	IF candles.until IS NULL THEN
		RAISE EXCEPTION 'until must not be null' USING ERRCODE = '22004';
	END IF;
	IF NOT candles.width = ANY ('{1 minute,5 minutes,15 minutes,1 hour,4 hours,1 day}'::interval[]) THEN
		RAISE EXCEPTION 'invalid candle width "%"', candles.width
			USING ERRCODE = '22023',
				  HINT = 'The widths are 1 minute, 5 minutes, 15 minutes, 1 hour, 4 hours and 1 day.';
	END IF;
	IF candles.since > candles.until THEN
		RAISE EXCEPTION 'since must not be later than until'
			USING ERRCODE = '22023',
				  DETAIL = format('since is %s, until is %s.', candles.since, candles.until);
	END IF;
	PERFORM FROM exchange.markets m WHERE m.symbol = candles.symbol;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'market "%" does not exist', candles.symbol
			USING ERRCODE = 'LX003';
	END IF;

	-- The executions of [since, until) (one range scan of
	-- trades_executions_idx) grouped into buckets aligned to the Unix epoch;
	-- open and close are the prices of each bucket's first and last
	-- execution (one index probe each; executions at one executed_at are
	-- ordered by seq, then trade_id).  OFFSET 0 keeps the bucket an expression the
	-- planner has no statistics for: it then expects few buckets and hashes
	-- them, where it would otherwise expect one per execution and sort every
	-- execution (on disk, at a million).
	RETURN QUERY
	SELECT b.bucket, op.price, b.high, b.low, cl.price, b.volume, b.quote_volume, b.trades
	  FROM (SELECT e.bucket,
				   min(e.executed_at) AS first_at, max(e.executed_at) AS last_at,
				   max(e.price) AS high, min(e.price) AS low,
				   sum(e.quantity) AS volume,
				   sum(trunc(e.quantity * e.price, 8)) AS quote_volume,
				   count(*) AS trades
			  FROM (SELECT date_bin(candles.width, t.executed_at,
									'1970-01-01 00:00:00+00'::timestamptz) AS bucket,
						   t.executed_at, t.price, t.quantity
					  FROM exchange.trades t
					 WHERE t.symbol = candles.symbol
					   AND (t.match_id IS NULL OR t.side = 'BUY')
					   AND t.executed_at >= candles.since
					   AND t.executed_at < candles.until
					OFFSET 0) e
			 GROUP BY e.bucket) b
	 CROSS JOIN LATERAL
		   (SELECT t.price
			  FROM exchange.trades t
			 WHERE t.symbol = candles.symbol
			   AND (t.match_id IS NULL OR t.side = 'BUY')
			   AND t.executed_at = b.first_at
			 ORDER BY t.seq NULLS FIRST, t.trade_id
			 LIMIT 1) op
	 CROSS JOIN LATERAL
		   (SELECT t.price
			  FROM exchange.trades t
			 WHERE t.symbol = candles.symbol
			   AND (t.match_id IS NULL OR t.side = 'BUY')
			   AND t.executed_at = b.last_at
			 ORDER BY t.seq DESC NULLS LAST, t.trade_id DESC
			 LIMIT 1) cl
	 ORDER BY b.bucket;
END
$exa$;

REVOKE ALL ON FUNCTION exchange.order_book_depth(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION exchange.ticker(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION exchange.candles(text, interval, timestamptz, timestamptz) FROM PUBLIC;

COMMENT ON INDEX exchange.trades_executions_idx IS
	'One entry per execution (a trade without match_id, or the BUY leg of a match) by market and time, with price and quantity: ticker and candles read it index-only.';
COMMENT ON FUNCTION exchange.order_book_depth(text, integer) IS
	'The book of a market aggregated per price level (resting OPEN and PARTIAL orders, remaining quantity, number of orders), up to levels levels per side: BUY best (highest) first, then SELL best (lowest) first. LX003 for an unknown market.';
COMMENT ON TYPE exchange.market_ticker IS
	'A row of ticker(): one market''s last price, best bid and ask, and its last 24 hours.';
COMMENT ON FUNCTION exchange.ticker(text) IS
	'One row per market (all markets when symbol is NULL): last price and time of the newest execution, best bid and ask, and open, high, low, volume, quote volume and number of the executions of the last 24 hours. LX003 for an unknown market.';
COMMENT ON FUNCTION exchange.candles(text, interval, timestamp with time zone, timestamp with time zone) IS
	'OHLC candles of the executions of [since, until) in buckets of width 1 minute, 5 minutes, 15 minutes, 1 hour, 4 hours or 1 day (else 22023) aligned to the Unix epoch; buckets without an execution are omitted. LX003 for an unknown market.';

-- == matching engine ==
-- README "Matching engine": markets marked INTERNAL match every order inside
-- place_order with price-time priority; EXTERNAL markets keep 1.0's
-- behaviour (fills come from outside through apply_trade/apply_match).  The
-- same block ends exchange_adapter--1.0--1.1.sql, so that a fresh install and
-- an upgraded one give one catalog (columns added by ALTER TABLE in both).

ALTER TABLE exchange.markets
	ADD COLUMN matching varchar(8) NOT NULL DEFAULT 'EXTERNAL',
	ADD COLUMN self_trade varchar(12) NOT NULL DEFAULT 'EXPIRE_MAKER',
	ADD COLUMN last_price numeric(24,8),
	ADD COLUMN last_trade_at timestamptz,
	ADD COLUMN trade_seq bigint NOT NULL DEFAULT 0,
	ADD CONSTRAINT markets_matching_check
		CHECK (matching::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{EXTERNAL,INTERNAL}'::pg_catalog.text[])),
	ADD CONSTRAINT markets_self_trade_check
		CHECK (self_trade::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{EXPIRE_MAKER,EXPIRE_TAKER,EXPIRE_BOTH,ALLOW}'::pg_catalog.text[])),
	ADD CONSTRAINT markets_last_price_check
		CHECK (last_price OPERATOR(pg_catalog.>) 0.0 AND last_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
	ADD CONSTRAINT markets_trade_seq_check CHECK (trade_seq OPERATOR(pg_catalog.>=) 0);

-- Time priority: one sequence for every market, taken by every accepted order
-- at placement and afresh by a stop when it triggers.
CREATE SEQUENCE exchange.order_book_seq AS bigint;
SELECT pg_catalog.pg_extension_config_dump('exchange.order_book_seq'::pg_catalog.regclass, '');

ALTER TABLE exchange.orders
	ADD COLUMN book_seq bigint,
	ADD CONSTRAINT orders_book_seq_check
		CHECK (status OPERATOR(pg_catalog.<>) 'REJECTED' OR book_seq IS NULL);

ALTER TABLE exchange.trades
	ADD COLUMN seq bigint,
	ADD CONSTRAINT trades_seq_check CHECK (seq OPERATOR(pg_catalog.>) 0);

-- The book: resting orders by (symbol, side, price, book_seq), in the order
-- the matcher takes them (asks forward, bids by price backward).  It replaces
-- 1.0's (symbol, side, price, created_at): the order_book view uses the same
-- (symbol, side, price) prefix, and created_at no longer ranks anything.
DROP INDEX exchange.orders_book_idx;
CREATE INDEX orders_book_idx
	ON exchange.orders (symbol, side, price, book_seq)
	WHERE status IN ('OPEN', 'PARTIAL');

-- create_market gains its trailing matching arguments (the C function also
-- serves the 1.0 declaration, with fewer arguments).
DROP FUNCTION exchange.create_market(text, text, text, numeric, numeric, numeric, numeric,
									 numeric, numeric, jsonb);
CREATE FUNCTION exchange.create_market(symbol text, base_asset text, quote_asset text,
									   tick_size numeric DEFAULT 0.00000001,
									   lot_size numeric DEFAULT 0.00000001,
									   min_quantity numeric DEFAULT 0,
									   min_notional numeric DEFAULT 0,
									   maker_fee_rate numeric DEFAULT 0,
									   taker_fee_rate numeric DEFAULT 0,
									   metadata jsonb DEFAULT '{}'::pg_catalog.jsonb,
									   matching text DEFAULT 'EXTERNAL',
									   self_trade text DEFAULT 'EXPIRE_MAKER')
	RETURNS exchange.markets
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_create_market';

CREATE FUNCTION exchange.set_market_matching(symbol text, matching text,
											 self_trade text DEFAULT NULL)
	RETURNS exchange.markets
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_set_market_matching';

COMMENT ON COLUMN exchange.markets.matching IS
	'EXTERNAL: fills come from outside (apply_trade, apply_match); INTERNAL: place_order matches against the book with price-time priority.';
COMMENT ON COLUMN exchange.markets.self_trade IS
	'Self-trade prevention of an INTERNAL market: EXPIRE_MAKER, EXPIRE_TAKER, EXPIRE_BOTH or ALLOW.';
COMMENT ON COLUMN exchange.markets.last_price IS
	'Price of the last execution of an INTERNAL market (NULL before the first; EXTERNAL markets leave it NULL).';
COMMENT ON COLUMN exchange.markets.last_trade_at IS
	'Time of the last execution of an INTERNAL market.';
COMMENT ON COLUMN exchange.markets.trade_seq IS
	'Executions of an INTERNAL market so far: the seq of its last trades (0 on EXTERNAL markets).';
COMMENT ON COLUMN exchange.orders.book_seq IS
	'Time priority in the book: taken at placement by every accepted order and afresh by a stop when it triggers; NULL for REJECTED orders and orders placed under 1.0.';
COMMENT ON COLUMN exchange.trades.seq IS
	'The market''s trade_seq at this execution (both legs of one match carry it); NULL on EXTERNAL markets.';
COMMENT ON SEQUENCE exchange.order_book_seq IS
	'Source of orders.book_seq (time priority in the book).';
COMMENT ON FUNCTION exchange.create_market(text, text, text, numeric, numeric, numeric, numeric, numeric, numeric, jsonb, text, text) IS
	'Creates an ACTIVE market <BASE>-<QUOTE>; fee rates in [0, 0.1]; matching EXTERNAL or INTERNAL, self_trade EXPIRE_MAKER, EXPIRE_TAKER, EXPIRE_BOTH or ALLOW. A duplicate raises LX010.';
COMMENT ON FUNCTION exchange.set_market_matching(text, text, text) IS
	'Changes a HALTED market''s matching mode and self-trade mode (NULL keeps it); to INTERNAL only when its book is not crossed. 55000 otherwise.';
COMMENT ON FUNCTION exchange.check_invariants() IS
	'Checks the ledger invariants; returns one row per violation, named after its clause (locked_balance, journal_balance, asset_conservation, match_netting, filled_quantity, terminal_locked, trade_order, closed_account, event_replay, book_crossed, trade_seq). Empty when sound.';

-- == hot path ==
-- One CHECK per hot table calling an immutable C validator of the row's columns
-- (src/row_checks.c) instead of one CHECK per rule: PostgreSQL rebuilds every
-- CHECK expression from its stored text at the start of each statement that
-- writes the table, and the many small expressions cost more than the rest of
-- place_order.  The validators state the same rules (README "Data model"),
-- tested in the order PostgreSQL tested the old constraints; a broken rule
-- raises 23514 naming the old constraint.  Owner-only EXECUTE: only the owner
-- (the API functions) and superusers write these tables.

CREATE FUNCTION exchange.orders_row_check(order_type text, side text, status text,
		time_in_force text, quantity numeric, price numeric, stop_price numeric,
		average_price numeric, filled_quantity numeric, locked_amount numeric,
		filled_value numeric, lock_asset text, client_order_id text,
		reject_reason text, metadata jsonb)
	RETURNS boolean
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'exa_orders_row_check';
CREATE FUNCTION exchange.trades_row_check(side text, quantity numeric, price numeric,
		fee numeric, fee_currency text, liquidity text, trade_ref text, metadata jsonb)
	RETURNS boolean
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'exa_trades_row_check';
CREATE FUNCTION exchange.balances_row_check(symbol text, available_balance numeric,
		locked_balance numeric, metadata jsonb)
	RETURNS boolean
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'exa_balances_row_check';
CREATE FUNCTION exchange.balance_journal_row_check(asset text, delta_available numeric,
		delta_locked numeric, kind text)
	RETURNS boolean
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'exa_balance_journal_row_check';
CREATE FUNCTION exchange.order_events_row_check(from_status text, to_status text,
		filled_delta numeric)
	RETURNS boolean
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'exa_order_events_row_check';

REVOKE ALL ON FUNCTION exchange.orders_row_check(text, text, text, text, numeric, numeric,
	numeric, numeric, numeric, numeric, numeric, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION exchange.trades_row_check(text, numeric, numeric, numeric, text,
	text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION exchange.balances_row_check(text, numeric, numeric, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION exchange.balance_journal_row_check(text, numeric, numeric, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION exchange.order_events_row_check(text, text, numeric) FROM PUBLIC;

-- Default privileges on the schema may have granted something on the
-- validators: back to owner-only, as the install script leaves every function.
DO $exa$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS obj, a.grantee
		  FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'exchange'::pg_catalog.regnamespace
		   AND p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['orders_row_check', 'trades_row_check',
				'balances_row_check', 'balance_journal_row_check', 'order_events_row_check'])
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
		   AND a.grantee OPERATOR(pg_catalog.<>) 0
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', r.obj,
								  r.grantee::pg_catalog.regrole::pg_catalog.text);
	END LOOP;
END
$exa$;

ALTER TABLE exchange.orders
	DROP CONSTRAINT orders_amounts_not_nan_check,
	DROP CONSTRAINT orders_average_price_check,
	DROP CONSTRAINT orders_client_order_id_check,
	DROP CONSTRAINT orders_filled_check,
	DROP CONSTRAINT orders_filled_quantity_check,
	DROP CONSTRAINT orders_filled_value_check,
	DROP CONSTRAINT orders_limit_price_check,
	DROP CONSTRAINT orders_lock_asset_check,
	DROP CONSTRAINT orders_locked_amount_check,
	DROP CONSTRAINT orders_market_tif_check,
	DROP CONSTRAINT orders_metadata_check,
	DROP CONSTRAINT orders_order_type_check,
	DROP CONSTRAINT orders_pending_check,
	DROP CONSTRAINT orders_price_check,
	DROP CONSTRAINT orders_quantity_check,
	DROP CONSTRAINT orders_reject_reason_check,
	DROP CONSTRAINT orders_reject_reason_value_check,
	DROP CONSTRAINT orders_side_check,
	DROP CONSTRAINT orders_status_check,
	DROP CONSTRAINT orders_stop_check,
	DROP CONSTRAINT orders_stop_price_check,
	DROP CONSTRAINT orders_terminal_unlocked_check,
	DROP CONSTRAINT orders_time_in_force_check,
	ADD CONSTRAINT orders_row_check CHECK (exchange.orders_row_check(order_type, side, status,
		time_in_force, quantity, price, stop_price, average_price, filled_quantity,
		locked_amount, filled_value, lock_asset, client_order_id, reject_reason, metadata));
ALTER TABLE exchange.trades
	DROP CONSTRAINT trades_amounts_not_nan_check,
	DROP CONSTRAINT trades_fee_check,
	DROP CONSTRAINT trades_fee_currency_check,
	DROP CONSTRAINT trades_liquidity_check,
	DROP CONSTRAINT trades_metadata_check,
	DROP CONSTRAINT trades_price_check,
	DROP CONSTRAINT trades_quantity_check,
	DROP CONSTRAINT trades_side_check,
	DROP CONSTRAINT trades_trade_ref_check,
	ADD CONSTRAINT trades_row_check CHECK (exchange.trades_row_check(side, quantity, price,
		fee, fee_currency, liquidity, trade_ref, metadata));
ALTER TABLE exchange.balances
	DROP CONSTRAINT balances_amounts_not_nan_check,
	DROP CONSTRAINT balances_available_balance_check,
	DROP CONSTRAINT balances_locked_balance_check,
	DROP CONSTRAINT balances_metadata_check,
	DROP CONSTRAINT balances_symbol_check,
	ADD CONSTRAINT balances_row_check CHECK (exchange.balances_row_check(symbol,
		available_balance, locked_balance, metadata));
ALTER TABLE exchange.balance_journal
	DROP CONSTRAINT balance_journal_amounts_not_nan_check,
	DROP CONSTRAINT balance_journal_asset_check,
	DROP CONSTRAINT balance_journal_kind_check,
	DROP CONSTRAINT balance_journal_nonzero_check,
	ADD CONSTRAINT balance_journal_row_check CHECK (exchange.balance_journal_row_check(asset,
		delta_available, delta_locked, kind));
ALTER TABLE exchange.order_events
	DROP CONSTRAINT order_events_amounts_not_nan_check,
	DROP CONSTRAINT order_events_filled_delta_check,
	DROP CONSTRAINT order_events_from_status_check,
	DROP CONSTRAINT order_events_to_status_check,
	ADD CONSTRAINT order_events_row_check CHECK (exchange.order_events_row_check(from_status,
		to_status, filled_delta));

COMMENT ON FUNCTION exchange.orders_row_check(text, text, text, text, numeric, numeric,
	numeric, numeric, numeric, numeric, numeric, text, text, text, jsonb) IS
	'The rules of an orders row (constraint orders_row_check): true, or 23514 naming the rule broken. Internal.';
COMMENT ON FUNCTION exchange.trades_row_check(text, numeric, numeric, numeric, text, text, text, jsonb) IS
	'The rules of a trades row (constraint trades_row_check): true, or 23514 naming the rule broken. Internal.';
COMMENT ON FUNCTION exchange.balances_row_check(text, numeric, numeric, jsonb) IS
	'The rules of a balances row (constraint balances_row_check): true, or 23514 naming the rule broken. Internal.';
COMMENT ON FUNCTION exchange.balance_journal_row_check(text, numeric, numeric, text) IS
	'The rules of a balance_journal row (constraint balance_journal_row_check): true, or 23514 naming the rule broken. Internal.';
COMMENT ON FUNCTION exchange.order_events_row_check(text, text, numeric) IS
	'The rules of an order_events row (constraint order_events_row_check): true, or 23514 naming the rule broken. Internal.';
COMMENT ON CONSTRAINT orders_row_check ON exchange.orders IS
	'Every rule of an order row in one check (exchange.orders_row_check): the old constraint names amounts_not_nan, average_price, client_order_id, filled, filled_quantity, filled_value, limit_price, lock_asset, locked_amount, market_tif, metadata, order_type, pending, price, quantity, reject_reason, reject_reason_value, side, status, stop, stop_price, terminal_unlocked, time_in_force (orders_<rule>_check) name the broken rule.';
COMMENT ON CONSTRAINT trades_row_check ON exchange.trades IS
	'Every rule of a trade row in one check (exchange.trades_row_check); the error names the broken rule as trades_<rule>_check.';
COMMENT ON CONSTRAINT balances_row_check ON exchange.balances IS
	'Every rule of a balance row in one check (exchange.balances_row_check); the error names the broken rule as balances_<rule>_check.';
COMMENT ON CONSTRAINT balance_journal_row_check ON exchange.balance_journal IS
	'Every rule of a journal row in one check (exchange.balance_journal_row_check); the error names the broken rule as balance_journal_<rule>_check.';
COMMENT ON CONSTRAINT order_events_row_check ON exchange.order_events IS
	'Every rule of an order event in one check (exchange.order_events_row_check); the error names the broken rule as order_events_<rule>_check.';

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

-- == batches ==
-- place_orders, cancel_order_ids, apply_trades and apply_matches (README "Batches"): the
-- single calls' semantics per item, one outbox row and the locks of all items taken once.

CREATE FUNCTION exchange.place_orders(orders jsonb)
	RETURNS SETOF exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_place_orders';

CREATE FUNCTION exchange.cancel_order_ids(order_ids uuid[], reason text DEFAULT NULL)
	RETURNS SETOF exchange.orders
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_cancel_order_ids';

CREATE FUNCTION exchange.apply_trades(trades jsonb)
	RETURNS SETOF exchange.trades
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_apply_trades';

CREATE FUNCTION exchange.apply_matches(matches jsonb)
	RETURNS SETOF exchange.trades
	LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'exa_apply_matches';

COMMENT ON FUNCTION exchange.place_orders(jsonb) IS
	'Places a JSON array of orders (objects keyed by place_order''s argument names) in array order, each as place_order would, REJECTED and idempotent retries included; returns the rows in input order. A malformed item raises for the whole call with its index in the detail. At most exchange_adapter.max_batch items (54000).';
COMMENT ON FUNCTION exchange.cancel_order_ids(uuid[], text) IS
	'Cancels the orders in array order, each as cancel_order would (LX002 for one that is not live, LX003 for an unknown one, raised for the whole call with its index); returns the rows in input order. At most exchange_adapter.max_batch items (54000).';
COMMENT ON FUNCTION exchange.apply_trades(jsonb) IS
	'Applies a JSON array of fills (objects keyed by apply_trade''s argument names) in array order, each as apply_trade would, trade_ref retries included; returns the trades in input order. A malformed or refused item raises for the whole call with its index in the detail. At most exchange_adapter.max_batch items (54000).';
COMMENT ON FUNCTION exchange.apply_matches(jsonb) IS
	'Applies a JSON array of matches (objects keyed by apply_match''s argument names) in array order, each as apply_match would, trade_ref retries included; returns per item its BUY then its SELL trade, in input order. A malformed or refused item raises for the whole call with its index in the detail. At most exchange_adapter.max_batch items (54000).';

-- == create guard ==
-- README "Security model", the install race: a non-superuser's CREATE that
-- passed its privilege check on schema exchange before the install revoked
-- CREATE and committed, but reached pg_proc only after, is refused at the end
-- of its command (src/ddl_guard.c).  ALWAYS, like the DROP guard.
CREATE FUNCTION exchange.exa_create_guard() RETURNS event_trigger
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'exa_create_guard';
REVOKE ALL ON FUNCTION exchange.exa_create_guard() FROM PUBLIC;

CREATE EVENT TRIGGER exchange_adapter_create_guard
	ON ddl_command_end
	WHEN TAG IN ('CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE AGGREGATE', 'CREATE OPERATOR')
	EXECUTE FUNCTION exchange.exa_create_guard();
ALTER EVENT TRIGGER exchange_adapter_create_guard ENABLE ALWAYS;

COMMENT ON FUNCTION exchange.exa_create_guard() IS
	'Event trigger (ddl_command_end): refuses with 42501 a function, procedure, aggregate or operator a non-superuser created in schema exchange.';
COMMENT ON EVENT TRIGGER exchange_adapter_create_guard IS
	'Only superusers create objects in schema exchange (exchange.exa_create_guard).';

-- ---------------------------------------------------------------------------
-- Privileges, last: reset every member's ACL to owner-only (default
-- privileges on the schema may have granted something at creation), then
-- grant the profile 'all' to a role named exchange_adapter if one exists.
-- ---------------------------------------------------------------------------

DO $exa$
DECLARE
	ext_oid oid;
	r record;
BEGIN
	SELECT e.oid INTO ext_oid
	  FROM pg_catalog.pg_extension e
	 WHERE e.extname OPERATOR(pg_catalog.=) 'exchange_adapter';

	FOR r IN
		SELECT DISTINCT c.oid::pg_catalog.regclass::pg_catalog.text AS obj,
			   CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS objtype,
			   a.grantee
		  FROM pg_catalog.pg_depend d
		  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid,
			   LATERAL pg_catalog.aclexplode(c.relacl) a
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) ext_oid
		   AND d.deptype OPERATOR(pg_catalog.=) 'e'
		   AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
		UNION
		SELECT DISTINCT pg_catalog.pg_get_serial_sequence(c.oid::pg_catalog.regclass::pg_catalog.text, att.attname),
			   'SEQUENCE', a.grantee
		  FROM pg_catalog.pg_depend d
		  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid
		  JOIN pg_catalog.pg_attribute att ON att.attrelid OPERATOR(pg_catalog.=) c.oid
			   AND att.attidentity OPERATOR(pg_catalog.<>) ''
		  JOIN pg_catalog.pg_class s
			ON s.oid OPERATOR(pg_catalog.=) pg_catalog.pg_get_serial_sequence(c.oid::pg_catalog.regclass::pg_catalog.text, att.attname)::pg_catalog.regclass,
			   LATERAL pg_catalog.aclexplode(s.relacl) a
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) ext_oid
		   AND d.deptype OPERATOR(pg_catalog.=) 'e'
		   AND a.grantee OPERATOR(pg_catalog.<>) s.relowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s', r.objtype, r.obj,
			CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE r.grantee::pg_catalog.regrole::pg_catalog.text END);
	END LOOP;

	-- Functions: PUBLIC gets EXECUTE by default; default privileges may add more.
	FOR r IN
		SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS obj
		  FROM pg_catalog.pg_depend d
		  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) ext_oid
		   AND d.deptype OPERATOR(pg_catalog.=) 'e'
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', r.obj);
	END LOOP;
	FOR r IN
		SELECT DISTINCT p.oid::pg_catalog.regprocedure::pg_catalog.text AS obj, a.grantee
		  FROM pg_catalog.pg_depend d
		  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid,
			   LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) ext_oid
		   AND d.deptype OPERATOR(pg_catalog.=) 'e'
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
		   AND a.grantee OPERATOR(pg_catalog.<>) 0
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', r.obj,
								  r.grantee::pg_catalog.regrole::pg_catalog.text);
	END LOOP;

	-- Types (the composite result types): default privileges may grant USAGE.
	FOR r IN
		SELECT DISTINCT t.oid::pg_catalog.regtype::pg_catalog.text AS obj, a.grantee
		  FROM pg_catalog.pg_depend d
		  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) d.objid,
			   LATERAL pg_catalog.aclexplode(t.typacl) a
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) ext_oid
		   AND d.deptype OPERATOR(pg_catalog.=) 'e'
		   AND a.grantee OPERATOR(pg_catalog.<>) t.typowner
		   AND a.grantee OPERATOR(pg_catalog.<>) 0
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON TYPE %s FROM %s', r.obj,
								  r.grantee::pg_catalog.regrole::pg_catalog.text);
	END LOOP;

	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'exchange_adapter') THEN
		PERFORM exchange.grant_adapter('exchange_adapter'::pg_catalog.regrole, 'all'::pg_catalog.text);
	END IF;
END
$exa$;

-- The install guard has done its work (it stays armed until commit).
DROP FUNCTION exchange.exa_install_guard();
