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
	AS 'MODULE_PATHNAME', 'create_market';

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
