-- Foreign keys the API vouches for (README "Data model"): the API's own INSERTs into orders,
-- trades, order_events, balance_journal and fee_ledger queue no check of the keys whose
-- referenced row the call already holds.  Any other trigger an INSERT fires, another key, a key
-- of a vouched name on other columns, tables or referenced tables, or a rule makes the API's
-- INSERTs into that table check every key again; what the INSERT itself runs (a CHECK's
-- function) and every write outside the API check every key.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('FKV-USDT', 'FKV', 'USDT');
SELECT pg_temp.trader('fkv_ann');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('fkv_ann'), 'USDT', 100000);

CREATE FUNCTION pg_temp.buy(q numeric) RETURNS uuid
LANGUAGE sql AS $$
	SELECT order_id FROM exchange.place_order(pg_temp.id('fkv_ann'), 'FKV-USDT', 'BUY',
											  'LIMIT', q, 10)
$$;

-- A foreign-key check finds its row through the referenced key's index: the index scans of
-- the referenced tables during one place_order and one apply_trade of it, as counted for the
-- current transaction.  The calls scan them themselves too (the account and the market they
-- read, the order apply_trade locks); each key checked adds one.
CREATE FUNCTION pg_temp.key_scans() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	idx text[] := ARRAY['accounts', 'markets', 'orders', 'trades'];
	before bigint[];
	after bigint[];
	oid uuid;
	r text := '';
BEGIN
	SELECT array_agg(coalesce(s.idx_scan, 0) ORDER BY i.n) INTO before
	  FROM unnest(idx) WITH ORDINALITY AS i (name, n)
	  LEFT JOIN pg_catalog.pg_stat_xact_user_tables s
		ON s.schemaname = 'exchange' AND s.relname = i.name;
	oid := pg_temp.buy(1);
	PERFORM exchange.apply_trade(oid, 0.5, 10, trade_ref => 'fkv-' || oid::text,
								 liquidity => 'TAKER');
	SELECT array_agg(coalesce(s.idx_scan, 0) ORDER BY i.n) INTO after
	  FROM unnest(idx) WITH ORDINALITY AS i (name, n)
	  LEFT JOIN pg_catalog.pg_stat_xact_user_tables s
		ON s.schemaname = 'exchange' AND s.relname = i.name;
	FOR k IN 1 .. array_length(idx, 1) LOOP
		r := r || idx[k] || ' ' || (after[k] - before[k]) || '  ';
	END LOOP;
	RETURN rtrim(r);
END
$$;

CREATE TABLE public.fkv_log (what text NOT NULL);
CREATE FUNCTION public.fkv_note() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.fkv_log VALUES (TG_NAME || ' ' || TG_TABLE_NAME);
	RETURN NULL;
END
$$;

-- 1. Every key vouched for: the scans are the calls' own.
BEGIN;
SELECT pg_temp.key_scans() AS vouched;
ROLLBACK;

-- 2. A trigger of the DBA's on order_events fires for the API's rows, and the events' key is
--    checked again (one more scan of orders per event: place, fill); the other tables
--    keep theirs vouched.
CREATE TRIGGER fkv_events AFTER INSERT ON exchange.order_events
	FOR EACH ROW EXECUTE FUNCTION public.fkv_note();
BEGIN;
SELECT pg_temp.key_scans() AS with_trigger;
SELECT what, count(*) FROM public.fkv_log GROUP BY what ORDER BY what;
ROLLBACK;

-- 3. The same trigger ENABLE REPLICA: it must not fire for the API (it fires only when the
--    session replicates), and the key is checked.
ALTER TABLE exchange.order_events ENABLE REPLICA TRIGGER fkv_events;
BEGIN;
SELECT pg_temp.key_scans() AS with_replica_trigger;
SELECT count(*) AS fired FROM public.fkv_log;
ROLLBACK;

-- 4. ENABLE ALWAYS: it fires, and the key is checked.
ALTER TABLE exchange.order_events ENABLE ALWAYS TRIGGER fkv_events;
BEGIN;
SELECT pg_temp.key_scans() AS with_always_trigger;
SELECT what, count(*) FROM public.fkv_log GROUP BY what ORDER BY what;
ROLLBACK;

-- 5. Disabled: it does not matter; dropped: every key is vouched for again.
ALTER TABLE exchange.order_events DISABLE TRIGGER fkv_events;
BEGIN;
SELECT pg_temp.key_scans() AS with_disabled_trigger;
ROLLBACK;
DROP TRIGGER fkv_events ON exchange.order_events;
BEGIN;
SELECT pg_temp.key_scans() AS vouched_again;
ROLLBACK;

-- 6. A rule on the table: the API's INSERT runs as any other (the rule applies, the key is
--    checked).
CREATE RULE fkv_rule AS ON INSERT TO exchange.order_events
	DO ALSO INSERT INTO public.fkv_log VALUES ('rule ' || NEW.to_status);
BEGIN;
SELECT pg_temp.key_scans() AS with_rule;
SELECT what, count(*) FROM public.fkv_log GROUP BY what ORDER BY what;
ROLLBACK;
DROP RULE fkv_rule ON exchange.order_events;
-- (relhasrules stays set until a VACUUM; the rules themselves are gone)
BEGIN;
SELECT pg_temp.key_scans() AS rule_dropped;
ROLLBACK;

-- 7. A key the DBA adds to the journal is checked for the API's rows: a buy journals USDT,
--    which public.fkv_assets does not hold (23503, nothing written).
CREATE TABLE public.fkv_assets (asset varchar(10) PRIMARY KEY);
INSERT INTO public.fkv_assets VALUES ('FKV');
ALTER TABLE exchange.balance_journal ADD CONSTRAINT fkv_asset_fkey
	FOREIGN KEY (asset) REFERENCES public.fkv_assets (asset) NOT VALID;
SELECT count(*) AS orders_before FROM exchange.orders WHERE symbol = 'FKV-USDT';
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(1)$$);
SELECT count(*) AS orders_after FROM exchange.orders WHERE symbol = 'FKV-USDT';
ALTER TABLE exchange.balance_journal DROP CONSTRAINT fkv_asset_fkey;

-- 8. A vouched key's name on another key is not vouched for: to another table, on other
--    columns, or on another table.
CREATE TABLE public.fkv_accounts (account_id uuid PRIMARY KEY);
BEGIN;
ALTER TABLE exchange.balance_journal DROP CONSTRAINT balance_journal_account_id_fkey,
	ADD CONSTRAINT balance_journal_account_id_fkey
	FOREIGN KEY (account_id) REFERENCES public.fkv_accounts (account_id) NOT VALID;
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(1)$$);
ROLLBACK;
BEGIN;
ALTER TABLE exchange.balance_journal DROP CONSTRAINT balance_journal_account_id_fkey,
	ADD CONSTRAINT balance_journal_account_id_fkey
	FOREIGN KEY (order_id) REFERENCES exchange.accounts (account_id) NOT VALID;
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(1)$$);
ROLLBACK;
BEGIN;
ALTER TABLE exchange.order_events ADD CONSTRAINT fee_ledger_trade_id_fkey
	FOREIGN KEY (order_id) REFERENCES exchange.trades (trade_id) NOT VALID;
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(1)$$);
ROLLBACK;

-- 9. What the API's INSERT runs itself is checked as usual: a CHECK on the events calling a
--    function that writes a row of no parent (23503 from the function's INSERT).
CREATE TABLE public.fkv_parent (id integer PRIMARY KEY);
CREATE TABLE public.fkv_child (id integer REFERENCES public.fkv_parent);
CREATE FUNCTION public.fkv_audit(s text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.fkv_child VALUES (999);
	RETURN true;
END
$$;
ALTER TABLE exchange.order_events ADD CONSTRAINT fkv_audit_check CHECK (public.fkv_audit(to_status))
	NOT VALID;
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(1)$$);
ALTER TABLE exchange.order_events DROP CONSTRAINT fkv_audit_check;
DROP FUNCTION public.fkv_audit(text);
DROP TABLE public.fkv_child, public.fkv_parent;
-- In a session that replicates, PostgreSQL fires no origin trigger, checks included; the API
-- works the same.
SET session_replication_role = replica;
SELECT pg_temp.buy(1) IS NOT NULL AS placed;
RESET session_replication_role;

-- 10. Outside the API every key is checked: an event of no order, a journal row of no account,
--     an order of no market.
SELECT sqlstate, message FROM pg_temp.fails($$
	INSERT INTO exchange.order_events (order_id, to_status, actor)
	VALUES ('00000000-0000-4000-8000-000000000001', 'OPEN', 'fkv')$$);
SELECT sqlstate, message FROM pg_temp.fails($$
	INSERT INTO exchange.balance_journal (account_id, asset, delta_available, kind, actor)
	VALUES ('00000000-0000-4000-8000-000000000001', 'USDT', 1, 'DEPOSIT', 'fkv')$$);
SELECT sqlstate, message FROM pg_temp.fails(format($$
	INSERT INTO exchange.orders (account_id, symbol, order_type, side, quantity, price, status,
								 time_in_force, lock_asset)
	VALUES (%L, 'NONE-USDT', 'LIMIT', 'BUY', 1, 10, 'OPEN', 'GTC', 'USDT')$$,
	pg_temp.id('fkv_ann')));

-- 11. A reading of the table that fails midway (here: a CHECK whose immutable function fails
--     when planned, as a switch says) is read again by the next statement, though it changed
--     no count of constraints: the trigger whose creation made it read again then fires, and
--     the key is checked.
CREATE FUNCTION public.fkv_fragile(i integer) RETURNS boolean
LANGUAGE sql IMMUTABLE AS
$$ SELECT i / (CASE WHEN current_setting('fkv.fail', true) = 'on' THEN 0 ELSE 1 END) > 0 $$;
ALTER TABLE exchange.order_events ADD CONSTRAINT fkv_fragile_check CHECK (public.fkv_fragile(1))
	NOT VALID;
SELECT pg_temp.buy(1) IS NOT NULL AS placed;
SET fkv.fail = on;
CREATE TRIGGER fkv_events AFTER INSERT ON exchange.order_events
	FOR EACH ROW EXECUTE FUNCTION public.fkv_note();
SELECT sqlstate, message FROM pg_temp.fails($$SELECT pg_temp.buy(1)$$);
RESET fkv.fail;
BEGIN;
SELECT pg_temp.key_scans() AS after_failed_reading;
SELECT what, count(*) FROM public.fkv_log GROUP BY what ORDER BY what;
ROLLBACK;
ALTER TABLE exchange.order_events DROP CONSTRAINT fkv_fragile_check;
DROP TRIGGER fkv_events ON exchange.order_events;
DROP FUNCTION public.fkv_fragile(integer);

DROP TABLE public.fkv_log, public.fkv_assets, public.fkv_accounts;
DROP FUNCTION public.fkv_note();
