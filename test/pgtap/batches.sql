-- pgTAP: the batch calls place_orders, cancel_order_ids, apply_trades and apply_matches (README
-- "Batches"; src/batch.c): SQLSTATEs, invariants and equality with the single calls.
--  (a) the same items through the single calls (in a savepoint that is rolled back) and through
--      the batch give the same rows, in input order, and the same ledger after (balances,
--      orders, trades, journal, events, fees; the outbox: one row for the batch, carrying the
--      union of the single calls' keys and executions); REJECTED items included;
--  (b) a malformed or refused item raises the single call's SQLSTATE with "Item i of n" in the
--      detail, and nothing is written;
--  (c) an idempotent item (client_order_id, trade_ref) returns the stored row and writes
--      nothing, also when the first use is in the same batch;
--  (d) an empty array returns no row and writes nothing, not even an outbox row;
--  (e) beyond exchange_adapter.max_batch items 54000; an argument that is not an array 22023,
--      NULL 22004.
-- Runs in one transaction that is rolled back (scripts/test.sh runs each file in database
-- `pgtap`, which has the pgtap extension).  No pgTAP assertion runs inside a savepoint that is
-- rolled back (its result would vanish with it): what the single calls did is captured into psql
-- variables, compared after the rollback.
BEGIN;
CREATE EXTENSION exchange_adapter;

SELECT plan(146);

-- Labels for generated ids -------------------------------------------------------------------
CREATE TEMP TABLE ids (label text PRIMARY KEY, id uuid NOT NULL UNIQUE);
CREATE FUNCTION pg_temp.id(p_label text) RETURNS uuid LANGUAGE plpgsql STABLE AS $f$
DECLARE
	r uuid;
BEGIN
	SELECT id INTO r FROM pg_temp.ids WHERE label = p_label;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'test bug: no id is labelled %', p_label;
	END IF;
	RETURN r;
END
$f$;
CREATE FUNCTION pg_temp.label(p_id uuid, p_label text) RETURNS text LANGUAGE sql AS $f$
	INSERT INTO pg_temp.ids VALUES (p_label, p_id) RETURNING label
$f$;
CREATE FUNCTION pg_temp.l(p_id uuid) RETURNS text LANGUAGE sql STABLE AS $f$
	SELECT coalesce((SELECT label FROM pg_temp.ids WHERE id = p_id), p_id::text)
$f$;

-- Setup: BT-USDT (tick 0.01, lot 0.001, min quantity 0.005, min notional 1, maker 0.001,
-- taker 0.002); BH-USDT, HALTED after some orders were placed on it; ann and bob APPROVED with
-- funds, kyc (KYC PENDING), sus (SUSPENDED).
SELECT symbol FROM exchange.create_market('BT-USDT', 'BT', 'USDT', 0.01, 0.001, 0.005, 1, 0.001, 0.002) \gset
SELECT symbol FROM exchange.create_market('BH-USDT', 'BH', 'USDT', 0.01, 0.001) \gset
SELECT count(pg_temp.label(account_id, u)) FROM (VALUES ('ann'), ('bob'), ('kyc'), ('sus')) v (u),
	LATERAL exchange.create_account('tap_batches_' || u) \gset
SELECT count(*) FROM (SELECT exchange.set_kyc_status(pg_temp.id(u), 'APPROVED')
						FROM unnest('{ann,bob,sus}'::text[]) u) k \gset
SELECT count(*) FROM (SELECT exchange.deposit(pg_temp.id(u), a, 100000)
						FROM unnest('{ann,bob,kyc,sus}'::text[]) u, unnest('{USDT,BT,BH}'::text[]) a) d \gset
SELECT status FROM exchange.set_account_status(pg_temp.id('sus'), 'SUSPENDED') \gset
-- Orders for sections 2 to 4 (cancels, fills, matches), some on BH-USDT before it halts.
CREATE FUNCTION pg_temp.place(p_label text, p_who text, p_symbol text, p_side text, p_type text,
							  p_qty numeric, p_price numeric, p_tif text DEFAULT NULL,
							  p_stop numeric DEFAULT NULL) RETURNS text LANGUAGE sql AS $f$
	SELECT pg_temp.label(order_id, p_label)
	  FROM exchange.place_order(pg_temp.id(p_who), p_symbol, p_side, p_type, p_qty, p_price, p_tif, p_stop)
$f$;
SELECT pg_temp.place('c_open', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 50) \gset
SELECT pg_temp.place('c_part', 'bob', 'BT-USDT', 'SELL', 'LIMIT', 2, 150) \gset
SELECT pg_temp.place('c_stop', 'bob', 'BT-USDT', 'SELL', 'STOP', 1, NULL, NULL, 40) \gset
SELECT pg_temp.place('c_halt', 'ann', 'BH-USDT', 'BUY', 'LIMIT', 1, 20) \gset
SELECT pg_temp.place('c_done', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 50) \gset
SELECT pg_temp.place('c_filled', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 50) \gset
SELECT pg_temp.place('t_buy', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 2, 100) \gset
SELECT pg_temp.place('t_sell', 'bob', 'BT-USDT', 'SELL', 'LIMIT', 2, 90) \gset
SELECT pg_temp.place('t_halt', 'ann', 'BH-USDT', 'BUY', 'LIMIT', 1, 10) \gset
SELECT pg_temp.place('t_fok', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 100, 'FOK') \gset
SELECT pg_temp.place('t_stop', 'bob', 'BT-USDT', 'SELL', 'STOP', 1, NULL, NULL, 40) \gset
SELECT pg_temp.place('m_buy', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 2, 100) \gset
SELECT pg_temp.place('m_sell', 'bob', 'BT-USDT', 'SELL', 'LIMIT', 2, 95) \gset
SELECT pg_temp.place('m_fok', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 100, 'FOK') \gset
SELECT pg_temp.place('m_sell2', 'bob', 'BT-USDT', 'SELL', 'LIMIT', 1, 99) \gset
SELECT pg_temp.place('m_hbuy', 'ann', 'BH-USDT', 'BUY', 'LIMIT', 1, 10) \gset
SELECT pg_temp.place('m_hsell', 'bob', 'BH-USDT', 'SELL', 'LIMIT', 1, 10) \gset
SELECT quantity FROM exchange.apply_trade(pg_temp.id('c_part'), 0.5, 150) \gset
SELECT status FROM exchange.cancel_order(pg_temp.id('c_done')) \gset
SELECT quantity FROM exchange.apply_trade(pg_temp.id('c_filled'), 1, 50) \gset
SELECT status FROM exchange.set_market_status('BH-USDT', 'HALTED') \gset

-- Helpers ----------------------------------------------------------------------------------
-- The ledger as text without generated ids, sequence numbers or order ids when p_drop names
-- order_id: balances, orders, trades, journal, events, fees.  Timestamps are all now(), the
-- transaction's start, in both runs.
CREATE FUNCTION pg_temp.state(p_drop text[] DEFAULT '{}') RETURNS text LANGUAGE sql STABLE AS $f$
	SELECT concat_ws(E'\n',
		(SELECT string_agg(x, E'\n' ORDER BY x) FROM (
			SELECT format('balance %s %s %s %s', pg_temp.l(account_id), symbol, available_balance,
						  locked_balance) FROM exchange.balances) b (x)),
		(SELECT string_agg(x, E'\n' ORDER BY x) FROM (
			SELECT 'order ' || (to_jsonb(o) - p_drop - 'book_seq')::text FROM exchange.orders o) o (x)),
		(SELECT string_agg(x, E'\n' ORDER BY x) FROM (
			SELECT 'trade ' || (to_jsonb(t) - p_drop - 'trade_id' - 'match_id'
								|| jsonb_build_object('matched', t.match_id IS NOT NULL))::text
			  FROM exchange.trades t) t (x)),
		(SELECT string_agg(x, E'\n' ORDER BY x) FROM (
			SELECT 'journal ' || (to_jsonb(j) - p_drop - 'seq' - 'trade_id')::text
			  FROM exchange.balance_journal j) j (x)),
		(SELECT string_agg(x, E'\n' ORDER BY x) FROM (
			SELECT 'event ' || (to_jsonb(e) - p_drop - 'seq')::text FROM exchange.order_events e) e (x)),
		(SELECT string_agg(x, E'\n' ORDER BY x) FROM (
			SELECT 'fee ' || (to_jsonb(f) - 'seq' - 'trade_id')::text FROM exchange.fee_ledger f) f (x)))
$f$;
-- Row counts of what a call writes.
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql STABLE AS $f$
	SELECT format('orders %s trades %s journal %s events %s fees %s outbox %s',
				  (SELECT count(*) FROM exchange.orders), (SELECT count(*) FROM exchange.trades),
				  (SELECT count(*) FROM exchange.balance_journal), (SELECT count(*) FROM exchange.order_events),
				  (SELECT count(*) FROM exchange.fee_ledger), (SELECT count(*) FROM exchange.outbox))
$f$;
-- The outbox rows after id p_after: how many, the union of their keys (order ids masked when
-- p_mask_orders), how many executions.
CREATE FUNCTION pg_temp.outbox_since(p_after bigint, p_mask_orders boolean DEFAULT false) RETURNS text
LANGUAGE sql STABLE AS $f$
	SELECT format('rows %s executions %s keys %s',
		(SELECT count(*) FROM exchange.outbox WHERE id > p_after),
		(SELECT coalesce(sum(cardinality(trade_ids)), 0) FROM exchange.outbox WHERE id > p_after),
		(SELECT string_agg(DISTINCT CASE WHEN p_mask_orders
									 THEN regexp_replace(k, '^cache:order:.*$', 'cache:order:*') ELSE k END, ' ')
		   FROM exchange.outbox, unnest(keys) k WHERE id > p_after))
$f$;
-- 'SQLSTATE Item i of n' (or 'SQLSTATE' alone without an item detail) of a statement, or
-- 'no error'.  The statement runs in a subtransaction.
CREATE FUNCTION pg_temp.err(p_stmt text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	v_state text;
	v_detail text;
BEGIN
	EXECUTE p_stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_detail = PG_EXCEPTION_DETAIL;
	RETURN concat_ws(' ', v_state, substring(v_detail FROM '^Item [0-9]+ of [0-9]+'));
END
$f$;
-- One order of an item, as the single call takes it; the rows of an array of items.
CREATE FUNCTION pg_temp.place_each(p_items jsonb) RETURNS SETOF exchange.orders LANGUAGE plpgsql AS $f$
DECLARE
	i jsonb;
BEGIN
	FOR i IN SELECT e FROM jsonb_array_elements(p_items) WITH ORDINALITY a (e, n) ORDER BY n LOOP
		RETURN QUERY SELECT * FROM exchange.place_order((i->>'account_id')::uuid, i->>'symbol', i->>'side',
			i->>'order_type', (i->>'quantity')::numeric, (i->>'price')::numeric, i->>'time_in_force',
			(i->>'stop_price')::numeric, i->>'client_order_id', coalesce(i->'metadata', '{}'));
	END LOOP;
END
$f$;
CREATE FUNCTION pg_temp.cancel_each(p_ids uuid[], p_reason text) RETURNS SETOF exchange.orders LANGUAGE plpgsql AS $f$
DECLARE
	v uuid;
BEGIN
	FOREACH v IN ARRAY p_ids LOOP
		RETURN QUERY SELECT * FROM exchange.cancel_order(v, p_reason);
	END LOOP;
END
$f$;
CREATE FUNCTION pg_temp.trade_each(p_items jsonb) RETURNS SETOF exchange.trades LANGUAGE plpgsql AS $f$
DECLARE
	i jsonb;
BEGIN
	FOR i IN SELECT e FROM jsonb_array_elements(p_items) WITH ORDINALITY a (e, n) ORDER BY n LOOP
		RETURN QUERY SELECT * FROM exchange.apply_trade((i->>'order_id')::uuid, (i->>'quantity')::numeric,
			(i->>'price')::numeric, (i->>'fee')::numeric, i->>'fee_currency',
			coalesce((i->>'executed_at')::timestamptz, now()), i->>'trade_ref', i->>'liquidity');
	END LOOP;
END
$f$;
CREATE FUNCTION pg_temp.match_each(p_items jsonb) RETURNS SETOF exchange.trades LANGUAGE plpgsql AS $f$
DECLARE
	i jsonb;
BEGIN
	FOR i IN SELECT e FROM jsonb_array_elements(p_items) WITH ORDINALITY a (e, n) ORDER BY n LOOP
		RETURN QUERY SELECT * FROM exchange.apply_match((i->>'buy_order_id')::uuid, (i->>'sell_order_id')::uuid,
			(i->>'quantity')::numeric, (i->>'price')::numeric, (i->>'buy_fee')::numeric,
			(i->>'sell_fee')::numeric, i->>'trade_ref', i->>'maker');
	END LOOP;
END
$f$;
-- A row of a function scan WITH ORDINALITY, without the ordinality.
CREATE FUNCTION pg_temp.as_order(r anyelement) RETURNS exchange.orders LANGUAGE sql STABLE AS $f$
	SELECT jsonb_populate_record(NULL::exchange.orders, to_jsonb(r) - 'ordinality')
$f$;
CREATE FUNCTION pg_temp.as_trade(r anyelement) RETURNS exchange.trades LANGUAGE sql STABLE AS $f$
	SELECT jsonb_populate_record(NULL::exchange.trades, to_jsonb(r) - 'ordinality')
$f$;
-- A result row without generated ids (order_id kept for fills: they name existing orders).
CREATE FUNCTION pg_temp.oshape(o exchange.orders, p_keep_id boolean) RETURNS text LANGUAGE sql STABLE AS $f$
	SELECT concat_ws(' ', CASE WHEN p_keep_id THEN pg_temp.l(o.order_id) END, pg_temp.l(o.account_id),
					 o.symbol, o.side, o.order_type, o.quantity, o.price, o.stop_price, o.time_in_force,
					 o.status, o.filled_quantity, o.average_price, o.locked_amount, o.lock_asset,
					 o.reject_reason, o.client_order_id, o.metadata, o.filled_at IS NOT NULL,
					 o.cancelled_at IS NOT NULL)
$f$;
CREATE FUNCTION pg_temp.tshape(t exchange.trades) RETURNS text LANGUAGE sql STABLE AS $f$
	SELECT concat_ws(' ', pg_temp.l(t.order_id), pg_temp.l(t.account_id), t.symbol, t.side, t.quantity,
					 t.price, t.fee, t.fee_currency, t.executed_at, t.trade_ref, t.liquidity,
					 t.match_id IS NOT NULL, t.metadata)
$f$;
CREATE FUNCTION pg_temp.o(p_who text, p_symbol text, p_side text, p_type text, p_qty numeric,
						  p_price numeric, p_more jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql STABLE AS $f$
	SELECT jsonb_build_object('account_id', pg_temp.id(p_who), 'symbol', p_symbol, 'side', p_side,
							  'order_type', p_type, 'quantity', p_qty, 'price', p_price) || p_more
$f$;
CREATE FUNCTION pg_temp.f(p_order text, p_qty numeric, p_price numeric, p_more jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql STABLE AS $f$
	SELECT jsonb_build_object('order_id', pg_temp.id(p_order), 'quantity', p_qty, 'price', p_price) || p_more
$f$;
CREATE FUNCTION pg_temp.m(p_buy text, p_sell text, p_qty numeric, p_price numeric, p_more jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql STABLE AS $f$
	SELECT jsonb_build_object('buy_order_id', pg_temp.id(p_buy), 'sell_order_id', pg_temp.id(p_sell),
							  'quantity', p_qty, 'price', p_price) || p_more
$f$;
\set nil '00000000-0000-0000-0000-000000000000'

-- ===========================================================================================
-- 1. place_orders
-- ===========================================================================================
-- (a) every kind of result place_order has: accepted (numbers, strings, JSON nulls, metadata),
-- the REJECTED reasons in the README's order, a STOP, a MARKET, a FOK, a client_order_id used
-- twice in the batch.
CREATE FUNCTION pg_temp.place_items() RETURNS jsonb LANGUAGE sql STABLE AS $f$
	SELECT jsonb_build_array(
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 100, '{"client_order_id": "p1", "metadata": {"n": 1}}'),
		pg_temp.o('ann', 'BT-USDT', 'SELL', 'LIMIT', NULL, NULL, '{"quantity": "0.5", "price": "200", "time_in_force": null, "stop_price": null}'),
		pg_temp.o('sus', 'BT-USDT', 'BUY', 'LIMIT', 1, 100),			-- ACCOUNT_NOT_ACTIVE
		pg_temp.o('kyc', 'BT-USDT', 'BUY', 'LIMIT', 1, 100),			-- KYC_NOT_APPROVED
		pg_temp.o('ann', 'BH-USDT', 'BUY', 'LIMIT', 1, 100),			-- MARKET_HALTED
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 100.001),		-- TICK_SIZE
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 0.0015, 100),		-- LOT_SIZE
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 0.002, 100),		-- MIN_QUANTITY
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 0.005, 100),		-- MIN_NOTIONAL
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 10000, 100),		-- INSUFFICIENT_FUNDS
		pg_temp.o('bob', 'BT-USDT', 'SELL', 'STOP', 0.1, NULL, '{"stop_price": 90}'),
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'MARKET', 0.1, 150),
		pg_temp.o('bob', 'BT-USDT', 'BUY', 'LIMIT', 2, 50, '{"time_in_force": "FOK", "client_order_id": "p2"}'),
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 100, '{"client_order_id": "p1"}'),	-- item 1 again
		pg_temp.o('bob', 'BT-USDT', 'SELL', 'LIMIT', 100001, 100))		-- INSUFFICIENT_FUNDS, SELL
$f$;
SELECT coalesce(max(id), 0) AS ob0 FROM exchange.outbox \gset
SAVEPOINT singles;
SELECT string_agg(pg_temp.oshape(pg_temp.as_order(r), false), E'\n' ORDER BY r.ordinality) AS single_rows
  FROM pg_temp.place_each(pg_temp.place_items()) WITH ORDINALITY r \gset
SELECT pg_temp.state('{order_id}') AS single_state, pg_temp.outbox_since(:ob0, true) AS single_outbox \gset
ROLLBACK TO SAVEPOINT singles;
SELECT coalesce(max(id), 0) AS ob1 FROM exchange.outbox \gset
CREATE TEMP TABLE b_place AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.orders, to_jsonb(r) - 'ordinality') AS o
	  FROM exchange.place_orders(pg_temp.place_items()) WITH ORDINALITY r;
SELECT is((SELECT string_agg(pg_temp.oshape(o, false), E'\n' ORDER BY n) FROM b_place), :'single_rows',
	'place_orders: the rows of place_order, item by item, in input order (REJECTED included)');
SELECT is((SELECT string_agg((o).status || coalesce(' ' || (o).reject_reason, ''), ',' ORDER BY n) FROM b_place),
	'OPEN,OPEN,REJECTED ACCOUNT_NOT_ACTIVE,REJECTED KYC_NOT_APPROVED,REJECTED MARKET_HALTED,'
	'REJECTED TICK_SIZE,REJECTED LOT_SIZE,REJECTED MIN_QUANTITY,REJECTED MIN_NOTIONAL,'
	'REJECTED INSUFFICIENT_FUNDS,PENDING,OPEN,OPEN,OPEN,REJECTED INSUFFICIENT_FUNDS',
	'place_orders: the statuses and reject reasons the items call for');
SELECT is(pg_temp.state('{order_id}'), :'single_state',
	'place_orders: the same balances, orders, journal and events as the single calls');
SELECT is(pg_temp.outbox_since(:ob1, true), regexp_replace(:'single_outbox', '^rows [0-9]+', 'rows 1'),
	'place_orders: one outbox row, with the union of the single calls'' keys');
SELECT is((SELECT (o).order_id FROM b_place WHERE n = 14), (SELECT (o).order_id FROM b_place WHERE n = 1),
	'place_orders: item 14, a client_order_id of item 1, returns item 1''s order');
SELECT is((SELECT count(*) FROM exchange.orders WHERE client_order_id = 'p1'), 1::bigint,
	'place_orders: a client_order_id used twice in one batch makes one order');

-- (c) a batch of retries only: the stored rows, nothing written.
SELECT pg_temp.counts() AS counts0 \gset
SELECT is((SELECT array_agg(order_id ORDER BY ordinality)
			 FROM exchange.place_orders(jsonb_build_array(
				pg_temp.o('bob', 'BT-USDT', 'BUY', 'LIMIT', 2, 50, '{"time_in_force": "FOK", "client_order_id": "p2"}'),
				pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 100, '{"client_order_id": "p1", "metadata": {"other": true}}')))
				WITH ORDINALITY),
	ARRAY[(SELECT (o).order_id FROM b_place WHERE n = 13), (SELECT (o).order_id FROM b_place WHERE n = 1)],
	'place_orders: retries return the stored orders, in input order (metadata is not compared)');
SELECT is(pg_temp.counts(), :'counts0', 'place_orders: a batch of retries writes nothing, no outbox row either');

-- (b) malformed and refused items: the single call's SQLSTATE, "Item i of n", nothing written.
SELECT pg_temp.state() AS state0 \gset
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10),
	pg_temp.o('ann', 'BT-USDT', 'sell', 'LIMIT', 1, 10)))), '22023 Item 3 of 3', 'place_orders: side "sell" is 22023, item 3 of 3');
SELECT is(pg_temp.err(format($$SELECT exchange.place_order(%L, 'BT-USDT', 'sell', 'LIMIT', 1, 10)$$, pg_temp.id('ann'))),
	'22023', 'place_order: side "sell" is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', -1, 10),
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10)))), '22023 Item 2 of 3', 'place_orders: a negative quantity is 22023, item 2 of 3');
SELECT is(pg_temp.err(format($$SELECT exchange.place_order(%L, 'BT-USDT', 'BUY', 'LIMIT', -1, 10)$$, pg_temp.id('ann'))),
	'22023', 'place_order: a negative quantity is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10) - 'quantity'))),
	'22023 Item 2 of 2', 'place_orders: an item without key "quantity" is 22023, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', NULL, 10)))),
	'22004 Item 2 of 2', 'place_orders: "quantity": null is 22004, item 2 of 2');
SELECT is(pg_temp.err(format($$SELECT exchange.place_order(%L, 'BT-USDT', 'BUY', 'LIMIT', NULL, 10)$$, pg_temp.id('ann'))),
	'22004', 'place_order: a NULL quantity is 22004');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10, '{"colour": "red"}')))),
	'22023 Item 1 of 1', 'place_orders: an unknown key is 22023, item 1 of 1');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), '[1]'::jsonb))),
	'22023 Item 2 of 2', 'place_orders: an item that is not an object is 22023, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'MARKET', 1, 10, '{"time_in_force": "GTC"}')))),
	'22023 Item 1 of 1', 'place_orders: a GTC MARKET order is 22023, item 1 of 1');
SELECT is(pg_temp.err(format($$SELECT exchange.place_order(%L, 'BT-USDT', 'BUY', 'MARKET', 1, 10, 'GTC')$$, pg_temp.id('ann'))),
	'22023', 'place_order: a GTC MARKET order is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10)
		|| jsonb_build_object('account_id', :'nil')))),
	'LX003 Item 2 of 2', 'place_orders: an unknown account is LX003, item 2 of 2');
SELECT is(pg_temp.err(format($$SELECT exchange.place_order(%L, 'BT-USDT', 'BUY', 'LIMIT', 1, 10)$$, :'nil')),
	'LX003', 'place_order: an unknown account is LX003');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10),
	pg_temp.o('ann', 'NO-USDT', 'BUY', 'LIMIT', 1, 10)))),
	'LX003 Item 3 of 3', 'place_orders: an unknown market is LX003, item 3 of 3');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 2, 100, '{"client_order_id": "p1"}')))),
	'LX009 Item 2 of 2', 'place_orders: a stored client_order_id with another quantity is LX009, item 2 of 2');
SELECT is(pg_temp.err(format($$SELECT exchange.place_order(%L, 'BT-USDT', 'BUY', 'LIMIT', 2, 100, client_order_id => 'p1')$$, pg_temp.id('ann'))),
	'LX009', 'place_order: a stored client_order_id with another quantity is LX009');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10, '{"client_order_id": "p9"}'),
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 11, '{"client_order_id": "p9"}')))),
	'LX009 Item 2 of 2', 'place_orders: a client_order_id of item 1 with another price is LX009, item 2 of 2');
SELECT is(pg_temp.state(), :'state0', 'place_orders: the refused batches changed nothing');
SELECT is(pg_temp.counts(), :'counts0', 'place_orders: the refused batches wrote no row, no outbox row');

-- (d) an INTERNAL market (README "Batches", "Matching engine"; src/orders.c exa_place_merged):
-- items that rest untouched (decided in memory against the top of the book and the batch's own
-- resting items) and items the matching engine places (crossing an earlier item of the batch or
-- the book, MARKET, FOK), with an EXTERNAL item and a REJECTED one between them, leave what the
-- single calls leave, time priority (book_seq order) included; an error after an engine item
-- names its item and writes nothing.
SELECT symbol FROM exchange.create_market('BI-USDT', 'BI', 'USDT', 0.01, 0.001, 0.001, 1, 0.001, 0.002,
										  matching => 'INTERNAL') \gset
SELECT count(*) FROM (SELECT exchange.deposit(pg_temp.id(u), 'BI', 100000)
						FROM unnest('{ann,bob}'::text[]) u) d \gset
SELECT pg_temp.place('i_ask', 'bob', 'BI-USDT', 'SELL', 'LIMIT', 0.5, 102) \gset
SELECT pg_temp.place('i_bid', 'ann', 'BI-USDT', 'BUY', 'LIMIT', 0.5, 98) \gset
CREATE FUNCTION pg_temp.internal_items() RETURNS jsonb LANGUAGE sql STABLE AS $f$
	SELECT jsonb_build_array(
		pg_temp.o('ann', 'BI-USDT', 'BUY', 'LIMIT', 1, 99),				-- rests
		pg_temp.o('bob', 'BI-USDT', 'SELL', 'LIMIT', 1, 101),			-- rests
		pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 50),				-- EXTERNAL
		pg_temp.o('bob', 'BI-USDT', 'SELL', 'LIMIT', 0.4, 99),			-- takes item 1
		pg_temp.o('ann', 'BI-USDT', 'BUY', 'LIMIT', 1.5, 102),			-- takes item 2 and i_ask
		pg_temp.o('kyc', 'BI-USDT', 'BUY', 'LIMIT', 1, 99),				-- KYC_NOT_APPROVED
		pg_temp.o('ann', 'BI-USDT', 'BUY', 'LIMIT', 1, 100),			-- rests
		pg_temp.o('bob', 'BI-USDT', 'SELL', 'LIMIT', 1, 100.5),			-- rests
		pg_temp.o('bob', 'BI-USDT', 'SELL', 'MARKET', 0.3, NULL),		-- takes item 7
		pg_temp.o('ann', 'BI-USDT', 'BUY', 'LIMIT', 1, 100.5, '{"time_in_force": "FOK"}'),	-- takes item 8
		pg_temp.o('ann', 'BI-USDT', 'BUY', 'LIMIT', 0.5, 99.5),			-- rests
		pg_temp.o('bob', 'BI-USDT', 'SELL', 'LIMIT', 1.2, 99.5))		-- takes items 7 and 11
$f$;
-- The book's orders in time priority (book_seq), as side, price, quantity, status.
CREATE FUNCTION pg_temp.priority() RETURNS text LANGUAGE sql STABLE AS $f$
	SELECT string_agg(concat_ws(' ', side, price, quantity, status), ',' ORDER BY book_seq)
	  FROM exchange.orders WHERE symbol = 'BI-USDT' AND book_seq IS NOT NULL
$f$;
SELECT coalesce(max(id), 0) AS ob0 FROM exchange.outbox \gset
SAVEPOINT singles;
SELECT string_agg(pg_temp.oshape(pg_temp.as_order(r), false), E'\n' ORDER BY r.ordinality) AS single_rows
  FROM pg_temp.place_each(pg_temp.internal_items()) WITH ORDINALITY r \gset
SELECT pg_temp.state('{order_id}') AS single_state, pg_temp.outbox_since(:ob0, true) AS single_outbox,
	   pg_temp.priority() AS single_priority,
	   (SELECT concat_ws(' ', last_price, trade_seq) FROM exchange.markets WHERE symbol = 'BI-USDT') AS single_market \gset
ROLLBACK TO SAVEPOINT singles;
SELECT coalesce(max(id), 0) AS ob1 FROM exchange.outbox \gset
CREATE TEMP TABLE b_internal AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.orders, to_jsonb(r) - 'ordinality') AS o
	  FROM exchange.place_orders(pg_temp.internal_items()) WITH ORDINALITY r;
SELECT is((SELECT string_agg(pg_temp.oshape(o, false), E'\n' ORDER BY n) FROM b_internal), :'single_rows',
	'place_orders, INTERNAL: the rows of place_order, item by item, in input order');
SELECT is((SELECT string_agg((o).status || coalesce(' ' || (o).reject_reason, ''), ',' ORDER BY n) FROM b_internal),
	'OPEN,OPEN,OPEN,FILLED,FILLED,REJECTED KYC_NOT_APPROVED,OPEN,OPEN,FILLED,FILLED,OPEN,FILLED',
	'place_orders, INTERNAL: the statuses the items call for, each row as its item left it');
SELECT is(pg_temp.state('{order_id}'), :'single_state',
	'place_orders, INTERNAL: the same balances, orders, trades, journal, events and fees as the single calls');
SELECT is(pg_temp.priority(), :'single_priority',
	'place_orders, INTERNAL: the same time priority (book_seq order) as the single calls');
SELECT is((SELECT concat_ws(' ', last_price, trade_seq) FROM exchange.markets WHERE symbol = 'BI-USDT'),
	:'single_market', 'place_orders, INTERNAL: the same last_price and trade_seq');
SELECT is(pg_temp.outbox_since(:ob1, true), regexp_replace(:'single_outbox', '^rows [0-9]+', 'rows 1'),
	'place_orders, INTERNAL: one outbox row, with the union of the single calls'' keys and every execution');
SELECT is((SELECT count(*) FROM exchange.trades t JOIN b_internal b ON (b.o).order_id = t.order_id
			WHERE b.n IN (1, 2, 7, 8, 11) AND t.liquidity = 'MAKER'), 6::bigint,
	'place_orders, INTERNAL: later items traded with the resting items 1, 2, 7 (twice), 8 and 11 as makers');
SELECT pg_temp.counts() AS counts0, pg_temp.state() AS state0 \gset
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BI-USDT', 'BUY', 'LIMIT', 0.1, 90), pg_temp.o('bob', 'BI-USDT', 'SELL', 'LIMIT', 0.1, 90),
	pg_temp.o('ann', 'NO-USDT', 'BUY', 'LIMIT', 1, 10)))),
	'LX003 Item 3 of 3', 'place_orders, INTERNAL: an unknown market after an engine item is LX003, item 3 of 3');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BI-USDT', 'BUY', 'LIMIT', 0.1, 90, '{"client_order_id": "i9"}'),
	pg_temp.o('bob', 'BI-USDT', 'SELL', 'LIMIT', 0.1, 90),
	pg_temp.o('ann', 'BI-USDT', 'BUY', 'LIMIT', 0.1, 91, '{"client_order_id": "i9"}')))),
	'LX009 Item 3 of 3', 'place_orders, INTERNAL: a client_order_id of item 1 with another price after an engine item is LX009, item 3 of 3');
SELECT is(pg_temp.state(), :'state0', 'place_orders, INTERNAL: the refused batches changed nothing');
SELECT is(pg_temp.counts(), :'counts0', 'place_orders, INTERNAL: the refused batches wrote no row, no outbox row');

-- ===========================================================================================
-- 2. cancel_order_ids
-- ===========================================================================================
-- (a) OPEN, PENDING, PARTIAL, and an order of a HALTED market (cancel works whatever the status).
SELECT format('{%s,%s,%s,%s}', pg_temp.id('c_stop'), pg_temp.id('c_open'), pg_temp.id('c_part'),
			  pg_temp.id('c_halt')) AS cancel_ids \gset
SELECT coalesce(max(id), 0) AS ob0 FROM exchange.outbox \gset
SAVEPOINT singles;
SELECT string_agg(pg_temp.oshape(pg_temp.as_order(r), true), E'\n' ORDER BY r.ordinality) AS single_rows
  FROM pg_temp.cancel_each(:'cancel_ids', 'tidy') WITH ORDINALITY r \gset
SELECT pg_temp.state() AS single_state, pg_temp.outbox_since(:ob0) AS single_outbox \gset
ROLLBACK TO SAVEPOINT singles;
SELECT coalesce(max(id), 0) AS ob1 FROM exchange.outbox \gset
SELECT is((SELECT string_agg(pg_temp.oshape(pg_temp.as_order(r), true), E'\n' ORDER BY r.ordinality)
			 FROM exchange.cancel_order_ids(:'cancel_ids', 'tidy') WITH ORDINALITY r), :'single_rows',
	'cancel_order_ids: the rows of cancel_order, item by item, in input order');
SELECT is(pg_temp.state(), :'single_state', 'cancel_order_ids: the same ledger as the single calls');
SELECT is(pg_temp.outbox_since(:ob1), regexp_replace(:'single_outbox', '^rows [0-9]+', 'rows 1'),
	'cancel_order_ids: one outbox row, with the union of the single calls'' keys');
SELECT is((SELECT string_agg(status || ' ' || locked_amount, ',' ORDER BY order_id) FROM exchange.orders
			WHERE order_id = ANY (:'cancel_ids')), 'CANCELLED 0.00000000,CANCELLED 0.00000000,CANCELLED 0.00000000,CANCELLED 0.00000000',
	'cancel_order_ids: every item CANCELLED, nothing locked');

-- (b) refused items
SELECT pg_temp.place('c_live', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 50) \gset
SELECT pg_temp.counts() AS counts0, pg_temp.state() AS state0 \gset
SELECT is(pg_temp.err(format('SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L]::uuid[])', pg_temp.id('c_live'), pg_temp.id('c_done'))),
	'LX002 Item 2 of 2', 'cancel_order_ids: a CANCELLED order is LX002, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT exchange.cancel_order(%L)', pg_temp.id('c_done'))), 'LX002',
	'cancel_order: a CANCELLED order is LX002');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L, %L]::uuid[])', pg_temp.id('c_live'), pg_temp.id('c_filled'), pg_temp.id('c_live'))),
	'LX002 Item 2 of 3', 'cancel_order_ids: a FILLED order is LX002, item 2 of 3');
SELECT is(pg_temp.err(format('SELECT exchange.cancel_order(%L)', pg_temp.id('c_filled'))), 'LX002',
	'cancel_order: a FILLED order is LX002');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L]::uuid[])', pg_temp.id('c_live'), :'nil')),
	'LX003 Item 2 of 2', 'cancel_order_ids: an unknown order is LX003, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT exchange.cancel_order(%L)', :'nil')), 'LX003', 'cancel_order: an unknown order is LX003');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, NULL]::uuid[])', pg_temp.id('c_live'))),
	'22004 Item 2 of 2', 'cancel_order_ids: a NULL id is 22004, item 2 of 2');
SELECT is(pg_temp.err('SELECT exchange.cancel_order(NULL)'), '22004', 'cancel_order: a NULL id is 22004');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L]::uuid[])', pg_temp.id('c_live'), pg_temp.id('c_live'))),
	'LX002 Item 2 of 2', 'cancel_order_ids: the same id twice is LX002 at the second, as a second cancel_order is');
SELECT is(pg_temp.err(format($$SELECT * FROM exchange.cancel_order_ids(ARRAY[%L]::uuid[], '')$$, pg_temp.id('c_live'))),
	'22023', 'cancel_order_ids: an empty reason is 22023 (no item: it is the call''s argument)');
SELECT is(pg_temp.err(format($$SELECT exchange.cancel_order(%L, '')$$, pg_temp.id('c_live'))),
	'22023', 'cancel_order: an empty reason is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.cancel_order_ids(ARRAY[[%L], [%L]]::uuid[])', pg_temp.id('c_live'), pg_temp.id('c_open'))),
	'22023', 'cancel_order_ids: a two-dimensional array is 22023');
SELECT is(pg_temp.err('SELECT * FROM exchange.cancel_order_ids(NULL)'), '22004', 'cancel_order_ids: NULL is 22004');
SELECT is(pg_temp.state(), :'state0', 'cancel_order_ids: the refused batches changed nothing');
SELECT is(pg_temp.counts(), :'counts0', 'cancel_order_ids: the refused batches wrote no row, no outbox row');

-- ===========================================================================================
-- 3. apply_trades
-- ===========================================================================================
-- (a) a computed maker fee, an explicit fee in the base asset, a fill on a HALTED market
-- (settlement works whatever the status), a FOK filled whole, a trade_ref retry inside the
-- batch, an explicit executed_at, a fill completing the order.
CREATE FUNCTION pg_temp.trade_items() RETURNS jsonb LANGUAGE sql STABLE AS $f$
	SELECT jsonb_build_array(
		pg_temp.f('t_buy', 0.5, 99.5, '{"trade_ref": "f1", "liquidity": "MAKER"}'),
		pg_temp.f('t_sell', NULL, NULL, '{"quantity": "2", "price": "95", "fee": 0.01, "fee_currency": "BT"}'),
		pg_temp.f('t_halt', 1, 10, '{"liquidity": "TAKER"}'),
		pg_temp.f('t_fok', 1, 100, '{"fee": null, "trade_ref": null}'),
		pg_temp.f('t_buy', 0.5, 99.5, '{"trade_ref": "f1", "liquidity": "MAKER"}'),
		pg_temp.f('t_buy', 1.5, 100, '{"executed_at": "2026-01-01 00:00:00+00", "liquidity": "TAKER"}'))
$f$;
SELECT coalesce(max(id), 0) AS ob0 FROM exchange.outbox \gset
SAVEPOINT singles;
SELECT string_agg(pg_temp.tshape(pg_temp.as_trade(r)), E'\n' ORDER BY r.ordinality) AS single_rows
  FROM pg_temp.trade_each(pg_temp.trade_items()) WITH ORDINALITY r \gset
SELECT pg_temp.state() AS single_state, pg_temp.outbox_since(:ob0) AS single_outbox \gset
ROLLBACK TO SAVEPOINT singles;
SELECT coalesce(max(id), 0) AS ob1 FROM exchange.outbox \gset
CREATE TEMP TABLE b_trades AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.trades, to_jsonb(r) - 'ordinality') AS t
	  FROM exchange.apply_trades(pg_temp.trade_items()) WITH ORDINALITY r;
SELECT is((SELECT string_agg(pg_temp.tshape(t), E'\n' ORDER BY n) FROM b_trades), :'single_rows',
	'apply_trades: the rows of apply_trade, item by item, in input order');
SELECT is((SELECT count(*) FROM b_trades), 6::bigint, 'apply_trades: one row per item');
SELECT is(pg_temp.state(), :'single_state', 'apply_trades: the same balances, orders, trades, journal, events and fees as the single calls');
SELECT is(pg_temp.outbox_since(:ob1), regexp_replace(:'single_outbox', '^rows [0-9]+', 'rows 1'),
	'apply_trades: one outbox row, with the union of the single calls'' keys and every execution');
SELECT is((SELECT (t).trade_id FROM b_trades WHERE n = 5), (SELECT (t).trade_id FROM b_trades WHERE n = 1),
	'apply_trades: item 5, a trade_ref of item 1, returns item 1''s trade');
SELECT is((SELECT string_agg(pg_temp.l(order_id) || ' ' || status || ' ' || filled_quantity, ',' ORDER BY pg_temp.l(order_id))
			 FROM exchange.orders WHERE order_id IN (pg_temp.id('t_buy'), pg_temp.id('t_sell'), pg_temp.id('t_halt'), pg_temp.id('t_fok'))),
	't_buy FILLED 2.00000000,t_fok FILLED 1.00000000,t_halt FILLED 1.00000000,t_sell FILLED 2.00000000',
	'apply_trades: the retry did not fill t_buy twice');

-- (c) retries only: the stored trade, nothing written.
SELECT pg_temp.counts() AS counts0, pg_temp.state() AS state0 \gset
SELECT is((SELECT array_agg(trade_id) FROM exchange.apply_trades(jsonb_build_array(
			pg_temp.f('t_buy', 0.5, 99.5, '{"trade_ref": "f1", "liquidity": "MAKER"}'),
			pg_temp.f('t_buy', 0.5, 99.5, '{"trade_ref": "f1", "liquidity": "MAKER"}')))),
	ARRAY[(SELECT (t).trade_id FROM b_trades WHERE n = 1), (SELECT (t).trade_id FROM b_trades WHERE n = 1)],
	'apply_trades: retries of a stored trade_ref (on a FILLED order) return the stored trade');
SELECT is(pg_temp.counts(), :'counts0', 'apply_trades: a batch of retries writes nothing, no outbox row either');

-- (b) refused items
SELECT pg_temp.place('t_live', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 100) \gset
SELECT pg_temp.counts() AS counts0, pg_temp.state() AS state0 \gset
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100), pg_temp.f('t_live', 0.6, 100)))),
	'LX007 Item 2 of 2', 'apply_trades: an overfill after item 1''s fill is LX007, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT exchange.apply_trade(%L, 1.1, 100)', pg_temp.id('t_live'))), 'LX007',
	'apply_trade: an overfill is LX007');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100), pg_temp.f('t_live', -0.5, 100)))),
	'22023 Item 2 of 2', 'apply_trades: a negative quantity is 22023, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT exchange.apply_trade(%L, -0.5, 100)', pg_temp.id('t_live'))), '22023',
	'apply_trade: a negative quantity is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100), pg_temp.f('t_live', 0.5, 100) - 'price'))),
	'22023 Item 2 of 2', 'apply_trades: an item without key "price" is 22023, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100, '{"fee_curency": "BT"}')))),
	'22023 Item 1 of 1', 'apply_trades: an unknown key is 22023, item 1 of 1');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100), pg_temp.f('t_live', 0.5, 100, '{"liquidity": "maker"}')))),
	'22023 Item 2 of 2', 'apply_trades: liquidity "maker" is 22023, item 2 of 2');
SELECT is(pg_temp.err(format($$SELECT exchange.apply_trade(%L, 0.5, 100, liquidity => 'maker')$$, pg_temp.id('t_live'))), '22023',
	'apply_trade: liquidity "maker" is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100), pg_temp.f('t_live', 0.5, 100.01)))),
	'LX006 Item 2 of 2', 'apply_trades: a BUY fill above the limit is LX006, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT exchange.apply_trade(%L, 0.5, 100.01)', pg_temp.id('t_live'))), 'LX006',
	'apply_trade: a BUY fill above the limit is LX006');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 99.995)))),
	'22023 Item 1 of 1', 'apply_trades: a price off the tick is 22023, item 1 of 1');
SELECT is(pg_temp.err(format('SELECT exchange.apply_trade(%L, 0.5, 99.995)', pg_temp.id('t_live'))), '22023',
	'apply_trade: a price off the tick is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100), jsonb_build_object('order_id', :'nil', 'quantity', 1, 'price', 1)))),
	'LX003 Item 2 of 2', 'apply_trades: an unknown order is LX003, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT exchange.apply_trade(%L, 1, 1)', :'nil')), 'LX003',
	'apply_trade: an unknown order is LX003');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100), pg_temp.f('t_stop', 0.5, 100)))),
	'LX002 Item 2 of 2', 'apply_trades: a PENDING stop is LX002, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT exchange.apply_trade(%L, 0.5, 100)', pg_temp.id('t_stop'))), 'LX002',
	'apply_trade: a PENDING stop is LX002');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.1, 100, '{"trade_ref": "x"}'), pg_temp.f('t_live', 0.2, 100, '{"trade_ref": "x"}')))),
	'LX009 Item 2 of 2', 'apply_trades: the trade_ref of item 1 with another quantity is LX009, item 2 of 2');
SELECT is(pg_temp.err(format($$SELECT exchange.apply_trade(%L, 0.4, 99.5, trade_ref => 'f1', liquidity => 'MAKER')$$, pg_temp.id('t_buy'))),
	'LX009', 'apply_trade: a stored trade_ref with another quantity is LX009');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.5, 100), pg_temp.f('t_buy', 0.4, 99.5, '{"trade_ref": "f1", "liquidity": "MAKER"}')))),
	'LX009 Item 2 of 2', 'apply_trades: a stored trade_ref with another quantity is LX009, item 2 of 2');
SELECT is(pg_temp.state(), :'state0', 'apply_trades: the refused batches changed nothing');
SELECT is(pg_temp.counts(), :'counts0', 'apply_trades: the refused batches wrote no row, no outbox row');

-- ===========================================================================================
-- 4. apply_matches
-- ===========================================================================================
-- (a) computed fees (maker SELL), explicit fees (maker BUY), a match on a HALTED market, a
-- trade_ref retry inside the batch, a FOK BUY filled whole with maker NULL, a match completing
-- both orders.
CREATE FUNCTION pg_temp.match_items() RETURNS jsonb LANGUAGE sql STABLE AS $f$
	SELECT jsonb_build_array(
		pg_temp.m('m_buy', 'm_sell', 0.5, 97, '{"trade_ref": "m1", "maker": "SELL"}'),
		pg_temp.m('m_buy', 'm_sell', NULL, NULL, '{"quantity": "0.5", "price": "96", "buy_fee": 0.001, "sell_fee": 0.1, "maker": "BUY"}'),
		pg_temp.m('m_hbuy', 'm_hsell', 1, 10),
		pg_temp.m('m_buy', 'm_sell', 0.5, 97, '{"trade_ref": "m1", "maker": "SELL"}'),
		pg_temp.m('m_fok', 'm_sell2', 1, 99.5, '{"maker": null}'),
		pg_temp.m('m_buy', 'm_sell', 1, 95))
$f$;
SELECT coalesce(max(id), 0) AS ob0 FROM exchange.outbox \gset
SAVEPOINT singles;
SELECT string_agg(pg_temp.tshape(pg_temp.as_trade(r)), E'\n' ORDER BY r.ordinality) AS single_rows
  FROM pg_temp.match_each(pg_temp.match_items()) WITH ORDINALITY r \gset
SELECT pg_temp.state() AS single_state, pg_temp.outbox_since(:ob0) AS single_outbox \gset
ROLLBACK TO SAVEPOINT singles;
SELECT coalesce(max(id), 0) AS ob1 FROM exchange.outbox \gset
CREATE TEMP TABLE b_matches AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.trades, to_jsonb(r) - 'ordinality') AS t
	  FROM exchange.apply_matches(pg_temp.match_items()) WITH ORDINALITY r;
SELECT is((SELECT string_agg(pg_temp.tshape(t), E'\n' ORDER BY n) FROM b_matches), :'single_rows',
	'apply_matches: the rows of apply_match, item by item (BUY then SELL), in input order');
SELECT is((SELECT count(*) FROM b_matches), 12::bigint, 'apply_matches: two rows per item');
SELECT is(pg_temp.state(), :'single_state', 'apply_matches: the same balances, orders, trades, journal, events and fees as the single calls');
SELECT is(pg_temp.outbox_since(:ob1), regexp_replace(:'single_outbox', '^rows [0-9]+', 'rows 1'),
	'apply_matches: one outbox row, with the union of the single calls'' keys and every execution');
SELECT is((SELECT array_agg((t).trade_id ORDER BY n) FROM b_matches WHERE n IN (7, 8)),
		  (SELECT array_agg((t).trade_id ORDER BY n) FROM b_matches WHERE n IN (1, 2)),
	'apply_matches: item 4, a trade_ref of item 1, returns item 1''s two trades');
SELECT is((SELECT count(DISTINCT (t).match_id) FROM b_matches), 5::bigint,
	'apply_matches: one match_id per item, the retry''s is item 1''s');
SELECT is((SELECT string_agg(pg_temp.l(order_id) || ' ' || status || ' ' || filled_quantity, ',' ORDER BY pg_temp.l(order_id))
			 FROM exchange.orders WHERE order_id IN (pg_temp.id('m_buy'), pg_temp.id('m_sell'), pg_temp.id('m_fok'),
													 pg_temp.id('m_sell2'), pg_temp.id('m_hbuy'), pg_temp.id('m_hsell'))),
	'm_buy FILLED 2.00000000,m_fok FILLED 1.00000000,m_hbuy FILLED 1.00000000,m_hsell FILLED 1.00000000,m_sell FILLED 2.00000000,m_sell2 FILLED 1.00000000',
	'apply_matches: the retry did not match m_buy and m_sell twice');

-- (c) retries only: the stored trades, nothing written.
SELECT pg_temp.counts() AS counts0 \gset
SELECT is((SELECT array_agg(trade_id ORDER BY ordinality) FROM exchange.apply_matches(jsonb_build_array(
			pg_temp.m('m_buy', 'm_sell', 0.5, 97, '{"trade_ref": "m1", "maker": "SELL"}'))) WITH ORDINALITY),
	(SELECT array_agg((t).trade_id ORDER BY n) FROM b_matches WHERE n IN (1, 2)),
	'apply_matches: a retry of a stored trade_ref (on FILLED orders) returns the stored trades');
SELECT is(pg_temp.counts(), :'counts0', 'apply_matches: a batch of retries writes nothing, no outbox row either');

-- (b) refused items
SELECT pg_temp.place('m_lbuy', 'ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 100) \gset
SELECT pg_temp.place('m_lsell', 'bob', 'BT-USDT', 'SELL', 'LIMIT', 1, 90) \gset
SELECT pg_temp.counts() AS counts0, pg_temp.state() AS state0 \gset
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_lbuy', 'm_lsell', 0.6, 95)))),
	'LX007 Item 2 of 2', 'apply_matches: an overfill after item 1''s match is LX007, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_match(%L, %L, 1.1, 95)', pg_temp.id('m_lbuy'), pg_temp.id('m_lsell'))),
	'LX007', 'apply_match: an overfill is LX007');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_lsell', 'm_lbuy', 0.5, 95)))),
	'22023 Item 2 of 2', 'apply_matches: the sides swapped is 22023, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_match(%L, %L, 0.5, 95)', pg_temp.id('m_lsell'), pg_temp.id('m_lbuy'))),
	'22023', 'apply_match: the sides swapped is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lbuy', 0.5, 95)))),
	'22023 Item 1 of 1', 'apply_matches: the same order on both sides is 22023, item 1 of 1');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_lbuy', 'm_lsell', 0.5, 89)))),
	'LX006 Item 2 of 2', 'apply_matches: below the SELL limit is LX006, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_match(%L, %L, 0.5, 89)', pg_temp.id('m_lbuy'), pg_temp.id('m_lsell'))),
	'LX006', 'apply_match: below the SELL limit is LX006');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_lbuy', 'm_lsell', -0.5, 95)))),
	'22023 Item 2 of 2', 'apply_matches: a negative quantity is 22023, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_match(%L, %L, -0.5, 95)', pg_temp.id('m_lbuy'), pg_temp.id('m_lsell'))),
	'22023', 'apply_match: a negative quantity is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95, '{"maker": "buy"}')))),
	'22023 Item 2 of 2', 'apply_matches: maker "buy" is 22023, item 2 of 2');
SELECT is(pg_temp.err(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 95, maker => 'buy')$$, pg_temp.id('m_lbuy'), pg_temp.id('m_lsell'))),
	'22023', 'apply_match: maker "buy" is 22023');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95) - 'sell_order_id'))),
	'22023 Item 1 of 1', 'apply_matches: an item without key "sell_order_id" is 22023, item 1 of 1');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95, '{"sell_order_id": null}')))),
	'22004 Item 1 of 1', 'apply_matches: "sell_order_id": null is 22004, item 1 of 1');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_match(%L, NULL, 0.5, 95)', pg_temp.id('m_lbuy'))),
	'22004', 'apply_match: a NULL sell_order_id is 22004');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95, '{"buyfee": 1}')))),
	'22023 Item 1 of 1', 'apply_matches: an unknown key is 22023, item 1 of 1');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_lbuy', 'm_sell2', 0.5, 95)))),
	'LX002 Item 2 of 2', 'apply_matches: a FILLED SELL is LX002, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_lbuy', 'm_hsell', 0.5, 95)))),
	'22023 Item 2 of 2', 'apply_matches: orders of two markets is 22023, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_lbuy', 'c_part', 0.5, 95)))),
	'LX002 Item 2 of 2', 'apply_matches: a CANCELLED SELL is LX002, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_match(%L, %L, 0.5, 95)', pg_temp.id('m_lbuy'), pg_temp.id('c_part'))),
	'LX002', 'apply_match: a CANCELLED SELL is LX002');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), jsonb_build_object('buy_order_id', :'nil', 'sell_order_id', pg_temp.id('m_lsell'), 'quantity', 0.1, 'price', 95)))),
	'LX003 Item 2 of 2', 'apply_matches: an unknown BUY is LX003, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.1, 95, '{"trade_ref": "x"}'), pg_temp.m('m_lbuy', 'm_lsell', 0.2, 95, '{"trade_ref": "x"}')))),
	'LX009 Item 2 of 2', 'apply_matches: the trade_ref of item 1 with another quantity is LX009, item 2 of 2');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.5, 95), pg_temp.m('m_buy', 'm_sell', 0.5, 97, '{"trade_ref": "m1", "maker": "BUY"}')))),
	'LX009 Item 2 of 2', 'apply_matches: a stored trade_ref with another maker is LX009, item 2 of 2');
SELECT is(pg_temp.err(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 97, trade_ref => 'm1', maker => 'BUY')$$, pg_temp.id('m_buy'), pg_temp.id('m_sell'))),
	'LX009', 'apply_match: a stored trade_ref with another maker is LX009');
SELECT is(pg_temp.state(), :'state0', 'apply_matches: the refused batches changed nothing');
SELECT is(pg_temp.counts(), :'counts0', 'apply_matches: the refused batches wrote no row, no outbox row');

-- ===========================================================================================
-- 5. Empty arrays, exchange_adapter.max_batch, arguments that are not arrays
-- ===========================================================================================
SELECT pg_temp.counts() AS counts0, pg_temp.state() AS state0 \gset
SELECT is_empty($$SELECT * FROM exchange.place_orders('[]')$$, 'place_orders: [] returns no row');
SELECT is_empty($$SELECT * FROM exchange.cancel_order_ids('{}')$$, 'cancel_order_ids: {} returns no row');
SELECT is_empty($$SELECT * FROM exchange.cancel_order_ids('{}', 'tidy')$$, 'cancel_order_ids: {} with a reason returns no row');
SELECT is_empty($$SELECT * FROM exchange.apply_trades('[]')$$, 'apply_trades: [] returns no row');
SELECT is_empty($$SELECT * FROM exchange.apply_matches('[]')$$, 'apply_matches: [] returns no row');
SELECT is(pg_temp.counts(), :'counts0', 'empty batches write nothing, no outbox row either');

SET exchange_adapter.max_batch = 2;
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10), pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10),
	pg_temp.o('ann', 'BT-USDT', 'BUY', 'LIMIT', 1, 10)))), '54000', 'place_orders: 3 items beyond max_batch 2 is 54000');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L, %L]::uuid[])',
	pg_temp.id('c_live'), pg_temp.id('t_live'), pg_temp.id('m_lbuy'))), '54000', 'cancel_order_ids: 3 ids beyond max_batch 2 is 54000');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.1, 100), pg_temp.f('t_live', 0.1, 100), pg_temp.f('t_live', 0.1, 100)))),
	'54000', 'apply_trades: 3 items beyond max_batch 2 is 54000');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_matches(%L)', jsonb_build_array(
	pg_temp.m('m_lbuy', 'm_lsell', 0.1, 95), pg_temp.m('m_lbuy', 'm_lsell', 0.1, 95), pg_temp.m('m_lbuy', 'm_lsell', 0.1, 95)))),
	'54000', 'apply_matches: 3 items beyond max_batch 2 is 54000');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.place_orders(%L)', jsonb_build_array(1, 2, 3))),
	'54000', 'place_orders: the limit is checked before the items (3 malformed items: 54000)');
-- at the limit: the items run (an unknown id at item 2 proves it)
SELECT is(pg_temp.err(format('SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L]::uuid[])', pg_temp.id('c_live'), :'nil')),
	'LX003 Item 2 of 2', 'cancel_order_ids: 2 ids at max_batch 2 run');
SELECT is(pg_temp.err(format('SELECT * FROM exchange.apply_trades(%L)', jsonb_build_array(
	pg_temp.f('t_live', 0.1, 100), jsonb_build_object('order_id', :'nil', 'quantity', 1, 'price', 1)))),
	'LX003 Item 2 of 2', 'apply_trades: 2 items at max_batch 2 run');
RESET exchange_adapter.max_batch;

SELECT is(pg_temp.err($$SELECT * FROM exchange.place_orders('{"account_id": "x"}')$$), '22023', 'place_orders: a JSON object is 22023');
SELECT is(pg_temp.err($$SELECT * FROM exchange.place_orders('1')$$), '22023', 'place_orders: a JSON number is 22023');
SELECT is(pg_temp.err($$SELECT * FROM exchange.place_orders('null')$$), '22023', 'place_orders: JSON null is 22023');
SELECT is(pg_temp.err($$SELECT * FROM exchange.place_orders(NULL)$$), '22004', 'place_orders: NULL is 22004');
SELECT is(pg_temp.err($$SELECT * FROM exchange.apply_trades('{}')$$), '22023', 'apply_trades: a JSON object is 22023');
SELECT is(pg_temp.err($$SELECT * FROM exchange.apply_trades('"[]"')$$), '22023', 'apply_trades: a JSON string is 22023');
SELECT is(pg_temp.err($$SELECT * FROM exchange.apply_trades(NULL)$$), '22004', 'apply_trades: NULL is 22004');
SELECT is(pg_temp.err($$SELECT * FROM exchange.apply_matches('{}')$$), '22023', 'apply_matches: a JSON object is 22023');
SELECT is(pg_temp.err($$SELECT * FROM exchange.apply_matches('true')$$), '22023', 'apply_matches: JSON true is 22023');
SELECT is(pg_temp.err($$SELECT * FROM exchange.apply_matches(NULL)$$), '22004', 'apply_matches: NULL is 22004');
SELECT is(pg_temp.state(), :'state0', 'none of section 5''s calls changed the ledger');
SELECT is(pg_temp.counts(), :'counts0', 'none of section 5''s calls wrote a row');

SELECT is_empty('SELECT * FROM exchange.check_invariants()', 'the ledger is sound');

SELECT * FROM finish();
ROLLBACK;
