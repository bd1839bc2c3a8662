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

-- Default privileges on the schema may have granted something on what this
-- block created: back to owner-only, as the install script leaves it.
DO $exa$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS obj, a.grantee
		  FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
				'exchange.order_book_depth(text, integer)'::pg_catalog.regprocedure,
				'exchange.ticker(text)'::pg_catalog.regprocedure,
				'exchange.candles(text, interval, timestamptz, timestamptz)'::pg_catalog.regprocedure]::pg_catalog.oid[])
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', r.obj,
			CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE r.grantee::pg_catalog.regrole::pg_catalog.text END);
	END LOOP;
	FOR r IN
		SELECT DISTINCT a.grantee
		  FROM pg_catalog.pg_type t, LATERAL pg_catalog.aclexplode(t.typacl) a
		 WHERE t.oid OPERATOR(pg_catalog.=) 'exchange.market_ticker'::pg_catalog.regtype
		   AND a.grantee OPERATOR(pg_catalog.<>) t.typowner
		   AND a.grantee OPERATOR(pg_catalog.<>) 0
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON TYPE exchange.market_ticker FROM %s',
								  r.grantee::pg_catalog.regrole::pg_catalog.text);
	END LOOP;

	-- As the install script does: a role named exchange_adapter, if one
	-- exists, gets profile all, which now includes these three.  Roles that
	-- grant_adapter gave a profile under 1.0 get them when grant_adapter is
	-- run again (README "Upgrading"): a GRANT run here would be recorded as
	-- the functions' initial privileges (pg_init_privs), which a fresh
	-- install does not have.
	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'exchange_adapter') THEN
		GRANT EXECUTE ON FUNCTION exchange.order_book_depth(text, integer),
			exchange.ticker(text),
			exchange.candles(text, interval, timestamptz, timestamptz)
			TO exchange_adapter;
	END IF;
END
$exa$;

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

-- The objects created above start owner-only, as the install's privilege
-- reset leaves them (default privileges on the schema may have granted
-- something at creation); then the roles that hold set_market_status (the
-- operator profile of README "Security model") get the market functions
-- that were dropped and created again, or are new.
DO $exa$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT 'SEQUENCE' AS objtype, 'exchange.order_book_seq' AS obj, a.grantee
		  FROM pg_catalog.pg_class c, LATERAL pg_catalog.aclexplode(c.relacl) a
		 WHERE c.oid OPERATOR(pg_catalog.=) 'exchange.order_book_seq'::pg_catalog.regclass
		   AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
		UNION
		SELECT 'FUNCTION', p.oid::pg_catalog.regprocedure::pg_catalog.text, a.grantee
		  FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
				'exchange.create_market(text, text, text, numeric, numeric, numeric, numeric, numeric, numeric, jsonb, text, text)'::pg_catalog.regprocedure,
				'exchange.set_market_matching(text, text, text)'::pg_catalog.regprocedure]::pg_catalog.oid[])
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s', r.objtype, r.obj,
			CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE r.grantee::pg_catalog.regrole::pg_catalog.text END);
	END LOOP;
	REVOKE ALL ON FUNCTION exchange.create_market(text, text, text, numeric, numeric, numeric,
		numeric, numeric, numeric, jsonb, text, text) FROM PUBLIC;
	REVOKE ALL ON FUNCTION exchange.set_market_matching(text, text, text) FROM PUBLIC;

	FOR r IN
		SELECT DISTINCT a.grantee
		  FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE p.oid OPERATOR(pg_catalog.=) 'exchange.set_market_status(text, text)'::pg_catalog.regprocedure
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
		   AND a.grantee OPERATOR(pg_catalog.<>) 0
		   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
	LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION exchange.create_market(text, text, text, numeric, numeric, numeric, numeric, numeric, numeric, jsonb, text, text) TO %s',
								  r.grantee::pg_catalog.regrole::pg_catalog.text);
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION exchange.set_market_matching(text, text, text) TO %s',
								  r.grantee::pg_catalog.regrole::pg_catalog.text);
	END LOOP;
END
$exa$;

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

-- Default privileges on the schema may have granted something on what this
-- block created: back to owner-only, as the install script leaves it.  As
-- the market-data block: a role named exchange_adapter, if one exists, gets
-- them (profile all); roles that grant_adapter gave profile trader or engine under 1.0
-- get them when grant_adapter is run again (README "Upgrading"), since a
-- GRANT run here would be recorded in pg_init_privs, which a fresh install
-- does not have.
DO $exa$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS obj, a.grantee
		  FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
				'exchange.place_orders(jsonb)'::pg_catalog.regprocedure,
				'exchange.cancel_order_ids(uuid[], text)'::pg_catalog.regprocedure,
				'exchange.apply_trades(jsonb)'::pg_catalog.regprocedure,
				'exchange.apply_matches(jsonb)'::pg_catalog.regprocedure]::pg_catalog.oid[])
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', r.obj,
			CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE r.grantee::pg_catalog.regrole::pg_catalog.text END);
	END LOOP;
	REVOKE ALL ON FUNCTION exchange.place_orders(jsonb) FROM PUBLIC;
	REVOKE ALL ON FUNCTION exchange.cancel_order_ids(uuid[], text) FROM PUBLIC;
	REVOKE ALL ON FUNCTION exchange.apply_trades(jsonb) FROM PUBLIC;
	REVOKE ALL ON FUNCTION exchange.apply_matches(jsonb) FROM PUBLIC;

	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'exchange_adapter') THEN
		GRANT EXECUTE ON FUNCTION exchange.place_orders(jsonb),
			exchange.cancel_order_ids(uuid[], text),
			exchange.apply_trades(jsonb),
			exchange.apply_matches(jsonb)
			TO exchange_adapter;
	END IF;
END
$exa$;

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

-- Default privileges on the schema may have granted something on the guard:
-- back to owner-only, as the install script leaves every function.
DO $exa$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT a.grantee
		  FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE p.oid OPERATOR(pg_catalog.=) 'exchange.exa_create_guard()'::pg_catalog.regprocedure
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
		   AND a.grantee OPERATOR(pg_catalog.<>) 0
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION exchange.exa_create_guard() FROM %s',
								  r.grantee::pg_catalog.regrole::pg_catalog.text);
	END LOOP;
END
$exa$;
