-- Batches (README "Batches"): place_orders, cancel_order_ids, apply_trades and apply_matches run their items in array order
-- with the single calls' semantics and results, REJECTED and idempotent retries included, rows
-- in input order, one outbox row per call; a malformed item raises for the whole call with its
-- index and changes nothing; empty and over-limit arrays.  Twin fixture: the s_ accounts get the
-- single calls, the b_ accounts the same items in one batch.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('BAT-USDT', 'BAT', 'USDT', 0.01, 0.001);
SELECT symbol, matching FROM exchange.create_market('BAI-USDT', 'BAI', 'USDT', 0.01, 0.001,
                                                    matching => 'INTERNAL');
SELECT pg_temp.trader('s_ann'), pg_temp.trader('b_ann'), pg_temp.trader('b_bob');
SELECT pg_temp.label(account_id, 's_kyc') FROM exchange.create_account('exa_s_kyc');
SELECT pg_temp.label(account_id, 'b_kyc') FROM exchange.create_account('exa_b_kyc');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id(w || '_ann'), a, 1000)
    FROM unnest('{s,b}'::text[]) w, unnest('{USDT,BAT,BAI}'::text[]) a
  UNION ALL SELECT exchange.deposit(pg_temp.id('b_bob'), 'USDT', 1000)) d;

-- The items of one twin (w = 's' or 'b'): every kind of result of place_order.
CREATE FUNCTION pg_temp.items(w text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_array(
		-- 1. accepted BUY, amounts as numbers, with a client_order_id
		jsonb_build_object('account_id', pg_temp.id(w || '_ann'), 'symbol', 'BAT-USDT',
						   'side', 'BUY', 'order_type', 'LIMIT', 'quantity', 1, 'price', 100,
						   'client_order_id', 'c1', 'metadata', jsonb_build_object('n', 1)),
		-- 2. accepted SELL, amounts as strings, explicit JSON nulls
		jsonb_build_object('account_id', pg_temp.id(w || '_ann'), 'symbol', 'BAT-USDT',
						   'side', 'SELL', 'order_type', 'LIMIT', 'quantity', '0.5', 'price', '200',
						   'time_in_force', NULL, 'stop_price', NULL),
		-- 3. INSUFFICIENT_FUNDS
		jsonb_build_object('account_id', pg_temp.id(w || '_ann'), 'symbol', 'BAT-USDT',
						   'side', 'BUY', 'order_type', 'LIMIT', 'quantity', 100, 'price', 100),
		-- 4. TICK_SIZE
		jsonb_build_object('account_id', pg_temp.id(w || '_ann'), 'symbol', 'BAT-USDT',
						   'side', 'BUY', 'order_type', 'LIMIT', 'quantity', 1, 'price', 100.001),
		-- 5. a STOP: PENDING
		jsonb_build_object('account_id', pg_temp.id(w || '_ann'), 'symbol', 'BAT-USDT',
						   'side', 'SELL', 'order_type', 'STOP', 'quantity', 0.1, 'stop_price', 90),
		-- 6. MARKET BUY with a protection price, IOC by default
		jsonb_build_object('account_id', pg_temp.id(w || '_ann'), 'symbol', 'BAT-USDT',
						   'side', 'BUY', 'order_type', 'MARKET', 'quantity', 0.1, 'price', 150),
		-- 7. a retry of item 1: the same row
		jsonb_build_object('account_id', pg_temp.id(w || '_ann'), 'symbol', 'BAT-USDT',
						   'side', 'BUY', 'order_type', 'LIMIT', 'quantity', 1, 'price', 100,
						   'client_order_id', 'c1'),
		-- 8. KYC_NOT_APPROVED
		jsonb_build_object('account_id', pg_temp.id(w || '_kyc'), 'symbol', 'BAT-USDT',
						   'side', 'BUY', 'order_type', 'LIMIT', 'quantity', 1, 'price', 100))
$$;

-- One item through the single call.
CREATE FUNCTION pg_temp.place_one(i jsonb) RETURNS exchange.orders
LANGUAGE sql AS $$
	SELECT * FROM exchange.place_order((i->>'account_id')::uuid, i->>'symbol', i->>'side',
		i->>'order_type', (i->>'quantity')::numeric, (i->>'price')::numeric,
		i->>'time_in_force', (i->>'stop_price')::numeric, i->>'client_order_id',
		coalesce(i->'metadata', '{}'))
$$;

-- The stable columns of a result row, the account as its twin-free name.
CREATE FUNCTION pg_temp.shape(o exchange.orders) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT concat_ws(' ', substr(pg_temp.l(o.account_id), 3), o.symbol, o.side, o.order_type,
					 o.quantity, o.price, o.stop_price, o.time_in_force, o.status, o.locked_amount,
					 o.lock_asset, o.reject_reason, o.client_order_id, o.metadata)
$$;

SELECT pg_temp.skip();

-- 1. place_orders: the same rows as place_order, item by item.
CREATE TEMP TABLE s_res AS
	SELECT e.n, r AS o FROM jsonb_array_elements(pg_temp.items('s')) WITH ORDINALITY e (i, n),
		   LATERAL pg_temp.place_one(e.i) r ORDER BY e.n;
SELECT count(*) AS single_outbox_rows FROM pg_temp.new_outbox();
CREATE TEMP TABLE b_res AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.orders, to_jsonb(r) - 'ordinality') AS o
	  FROM exchange.place_orders(pg_temp.items('b')) WITH ORDINALITY r ORDER BY 1;
SELECT * FROM pg_temp.new_outbox();
SELECT b.n, pg_temp.shape(b.o) AS batch_row, pg_temp.shape(s.o) = pg_temp.shape(b.o) AS same
  FROM b_res b JOIN s_res s USING (n) ORDER BY b.n;
-- item 7 returned item 1's row
SELECT (SELECT (o).order_id FROM b_res WHERE n = 7) = (SELECT (o).order_id FROM b_res WHERE n = 1)
	AS retry_same_order;
-- the twins' balances are alike
SELECT substr(account, 3) AS twin, asset, available, locked, count(*) AS twins
  FROM pg_temp.balances() WHERE account LIKE '__ann'
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3;

-- the twins' journal rows and order events are alike, in the same order
SELECT (SELECT array_agg(concat_ws(' ', r.n, j.asset, j.delta_available, j.delta_locked, j.kind)
						 ORDER BY j.seq)
		  FROM exchange.balance_journal j JOIN s_res r ON (r.o).order_id = j.order_id AND r.n <> 7)
	 = (SELECT array_agg(concat_ws(' ', r.n, j.asset, j.delta_available, j.delta_locked, j.kind)
						 ORDER BY j.seq)
		  FROM exchange.balance_journal j JOIN b_res r ON (r.o).order_id = j.order_id AND r.n <> 7)
	AS same_journal,
	   (SELECT array_agg(concat_ws(' ', r.n, e.from_status, e.to_status, e.filled_delta, e.reason)
						 ORDER BY e.seq)
		  FROM exchange.order_events e JOIN s_res r ON (r.o).order_id = e.order_id AND r.n <> 7)
	 = (SELECT array_agg(concat_ws(' ', r.n, e.from_status, e.to_status, e.filled_delta, e.reason)
						 ORDER BY e.seq)
		  FROM exchange.order_events e JOIN b_res r ON (r.o).order_id = e.order_id AND r.n <> 7)
	AS same_events;

-- 1b. Items drawing on one balance: each sees the locks of the items before it (the batch
-- decides them in memory, on the rows it holds locked); a SELL of an asset the account has no
-- balance row of is INSUFFICIENT_FUNDS, as in place_order.
SELECT symbol FROM exchange.create_market('BAZ-USDT', 'BAZ', 'USDT', 0.01, 0.001);
SELECT pg_temp.trader('s_dee'), pg_temp.trader('b_dee');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id(w || '_dee'), a, 1000)
    FROM unnest('{s,b}'::text[]) w, unnest('{USDT,BAT}'::text[]) a) d;
CREATE FUNCTION pg_temp.draw(w text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_agg(jsonb_build_object('account_id', pg_temp.id(w || '_dee'), 'symbol', x.sym,
										'side', x.side, 'order_type', 'LIMIT', 'quantity', x.q,
										'price', 100) ORDER BY x.n)
	  FROM (VALUES (1, 'BAT-USDT', 'BUY', 5), (2, 'BAT-USDT', 'BUY', 4), (3, 'BAT-USDT', 'BUY', 3),
				   (4, 'BAZ-USDT', 'SELL', 1), (5, 'BAT-USDT', 'SELL', 999.9),
				   (6, 'BAT-USDT', 'SELL', 0.1)) x (n, sym, side, q)
$$;
CREATE TEMP TABLE s_draw AS
	SELECT e.n, r AS o FROM jsonb_array_elements(pg_temp.draw('s')) WITH ORDINALITY e (i, n),
		   LATERAL pg_temp.place_one(e.i) r ORDER BY e.n;
CREATE TEMP TABLE b_draw AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.orders, to_jsonb(r) - 'ordinality') AS o
	  FROM exchange.place_orders(pg_temp.draw('b')) WITH ORDINALITY r ORDER BY 1;
SELECT b.n, pg_temp.shape(b.o) AS batch_row, pg_temp.shape(s.o) = pg_temp.shape(b.o) AS same
  FROM b_draw b JOIN s_draw s USING (n) ORDER BY b.n;
SELECT substr(account, 3) AS twin, asset, available, locked, count(*) AS twins
  FROM pg_temp.balances() WHERE account LIKE '__dee'
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3;
SELECT pg_temp.skip();

-- 2. A retry of a whole batch whose items all carry a client_order_id returns the same rows.
CREATE TEMP TABLE retry1 AS
	SELECT order_id, status, ordinality FROM exchange.place_orders(jsonb_build_array(
		jsonb_build_object('account_id', pg_temp.id('b_ann'), 'symbol', 'BAT-USDT', 'side', 'BUY',
						   'order_type', 'LIMIT', 'quantity', 1, 'price', 10, 'client_order_id', 'r1'),
		jsonb_build_object('account_id', pg_temp.id('b_ann'), 'symbol', 'BAT-USDT', 'side', 'BUY',
						   'order_type', 'LIMIT', 'quantity', 1000, 'price', 10, 'client_order_id', 'r2')))
	WITH ORDINALITY;
SELECT pg_temp.skip();
SELECT * FROM pg_temp.counts();
SELECT (SELECT array_agg(order_id ORDER BY ordinality) FROM retry1)
	 = (SELECT array_agg(order_id ORDER BY ordinality) FROM exchange.place_orders(jsonb_build_array(
		jsonb_build_object('account_id', pg_temp.id('b_ann'), 'symbol', 'BAT-USDT', 'side', 'BUY',
						   'order_type', 'LIMIT', 'quantity', 1, 'price', 10, 'client_order_id', 'r1'),
		jsonb_build_object('account_id', pg_temp.id('b_ann'), 'symbol', 'BAT-USDT', 'side', 'BUY',
						   'order_type', 'LIMIT', 'quantity', 1000, 'price', 10, 'client_order_id', 'r2')))
		WITH ORDINALITY) AS same_rows,
	   (SELECT array_agg(status ORDER BY ordinality) FROM retry1) AS statuses;
SELECT * FROM pg_temp.counts();

-- 3. Malformed items raise for the whole call, name the item, and change nothing.
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->0, pg_temp.items('b')->1,
	jsonb_set(pg_temp.items('b')->1, '{side}', '"sell"'))));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, (pg_temp.items('b')->1) || '{"colour": "red"}')));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, (pg_temp.items('b')->1) - 'quantity')));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, jsonb_set(pg_temp.items('b')->1, '{quantity}', '-1'))));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, jsonb_set(pg_temp.items('b')->1, '{price}', '"abc"'))));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, 'true'::jsonb)));
-- raised while running: an unknown account, an unknown market, a conflicting retry
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, jsonb_set(pg_temp.items('b')->1, '{account_id}',
									 '"00000000-0000-0000-0000-000000000000"'))));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, pg_temp.items('b')->1, jsonb_set(pg_temp.items('b')->1, '{symbol}', '"NOPE-USDT"'))));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, jsonb_set(pg_temp.items('b')->0, '{quantity}', '2'))));
SELECT * FROM pg_temp.fails($$SELECT * FROM exchange.place_orders('{"a": 1}')$$);
SELECT * FROM pg_temp.fails($$SELECT * FROM exchange.place_orders(NULL)$$);
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.new_outbox();

-- 4. Empty and over-limit arrays.
SELECT count(*) FROM exchange.place_orders('[]');
SELECT count(*) FROM exchange.cancel_order_ids('{}');
SET exchange_adapter.max_batch = 2;
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.items('b')->1, pg_temp.items('b')->1, pg_temp.items('b')->1)));
SELECT * FROM pg_temp.fails($$SELECT * FROM exchange.cancel_order_ids(
	'{00000000-0000-0000-0000-000000000000,00000000-0000-0000-0000-000000000000,00000000-0000-0000-0000-000000000000}')$$);
RESET exchange_adapter.max_batch;
SELECT * FROM pg_temp.counts();

-- 5. cancel_order_ids: the same rows as cancel_order, item by item (the live orders of each
-- twin, in the order they were placed: OPEN BUY, OPEN SELL, PENDING STOP).
SELECT pg_temp.label((o).order_id, w || n) FROM (
	SELECT 's' AS w, n, o FROM s_res UNION ALL SELECT 'b', n, o FROM b_res) x
 WHERE (o).status IN ('OPEN', 'PENDING') AND n <> 7 ORDER BY w, n;
CREATE TEMP TABLE s_cancel AS
	SELECT n, exchange.cancel_order(pg_temp.id(l), 'tidy') AS o
	  FROM unnest('{s5,s1,s2}'::text[]) WITH ORDINALITY u (l, n);
SELECT pg_temp.skip();
CREATE TEMP TABLE b_cancel AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.orders, to_jsonb(r) - 'ordinality') AS o
	  FROM exchange.cancel_order_ids(ARRAY[pg_temp.id('b5'), pg_temp.id('b1'), pg_temp.id('b2')], 'tidy')
		   WITH ORDINALITY r;
SELECT * FROM pg_temp.new_outbox();
SELECT b.n, pg_temp.l((b.o).order_id), pg_temp.shape(b.o) AS batch_row, (b.o).cancelled_at IS NOT NULL AS cancelled_at,
	   pg_temp.shape(s.o) = pg_temp.shape(b.o) AS same
  FROM b_cancel b JOIN s_cancel s USING (n) ORDER BY b.n;
SELECT e.to_status, e.reason, count(*) FROM exchange.order_events e
 WHERE e.order_id IN (pg_temp.id('b1'), pg_temp.id('b2'), pg_temp.id('b5')) AND e.to_status = 'CANCELLED'
 GROUP BY 1, 2;
-- (b_ann holds 10 USDT more, locked by r1 of section 2)
SELECT substr(account, 3) AS twin, asset, available, locked, count(*) AS twins
  FROM pg_temp.balances() WHERE account LIKE '__ann'
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3;

-- 6. cancel_order_ids: an item that is not live, unknown or NULL raises for the whole call.
SELECT pg_temp.label(order_id, 'b9') FROM exchange.place_order(pg_temp.id('b_ann'), 'BAT-USDT', 'BUY', 'LIMIT', 1, 50);
SELECT pg_temp.skip();
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L]::uuid[])$$,
	pg_temp.id('b9'), pg_temp.id('b1')));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L]::uuid[])$$,
	pg_temp.id('b9'), '00000000-0000-0000-0000-000000000000'));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, NULL]::uuid[])$$,
	pg_temp.id('b9')));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.cancel_order_ids(ARRAY[%L, %L]::uuid[])$$,
	pg_temp.id('b9'), pg_temp.id('b9')));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.cancel_order_ids(ARRAY[%L]::uuid[], repeat('x', 300))$$,
	pg_temp.id('b9')));
SELECT * FROM pg_temp.o('b9');
SELECT * FROM pg_temp.new_outbox();

-- 7. An INTERNAL market: a crossing item matches an earlier item of the same batch.
SELECT pg_temp.label(r.order_id, 'i' || r.ordinality), r.status, r.filled_quantity, r.locked_amount
  FROM exchange.place_orders(jsonb_build_array(
	jsonb_build_object('account_id', pg_temp.id('b_ann'), 'symbol', 'BAI-USDT', 'side', 'SELL',
					   'order_type', 'LIMIT', 'quantity', 2, 'price', 100),
	jsonb_build_object('account_id', pg_temp.id('b_ann'), 'symbol', 'BAI-USDT', 'side', 'SELL',
					   'order_type', 'LIMIT', 'quantity', 1, 'price', 101),
	jsonb_build_object('account_id', pg_temp.id('b_bob'), 'symbol', 'BAI-USDT', 'side', 'BUY',
					   'order_type', 'LIMIT', 'quantity', 2.5, 'price', 101)))
	WITH ORDINALITY AS r
 ORDER BY r.ordinality;
SELECT * FROM pg_temp.o('i1') UNION ALL SELECT * FROM pg_temp.o('i2') UNION ALL SELECT * FROM pg_temp.o('i3');
SELECT "order", account, side, quantity, price, liquidity FROM pg_temp.trades();
SELECT count(*) AS outbox_rows FROM pg_temp.new_outbox();

-- 8. apply_trades: the same trades as apply_trade, item by item, on twin orders (a partial
-- fill, a fee in another currency, a full fill, a trade_ref retry that returns the same
-- trade); then a refused item (an overfill) raises for the whole call with its index.
SELECT pg_temp.label(order_id, 's_t1') FROM exchange.place_order(pg_temp.id('s_ann'), 'BAT-USDT', 'BUY', 'LIMIT', 2, 100);
SELECT pg_temp.label(order_id, 's_t2') FROM exchange.place_order(pg_temp.id('s_ann'), 'BAT-USDT', 'BUY', 'LIMIT', 2, 100);
SELECT pg_temp.label(order_id, 'b_t1') FROM exchange.place_order(pg_temp.id('b_ann'), 'BAT-USDT', 'BUY', 'LIMIT', 2, 100);
SELECT pg_temp.label(order_id, 'b_t2') FROM exchange.place_order(pg_temp.id('b_ann'), 'BAT-USDT', 'BUY', 'LIMIT', 2, 100);
CREATE FUNCTION pg_temp.fills(w text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_array(
		jsonb_build_object('order_id', pg_temp.id(w || '_t1'), 'quantity', 0.5, 'price', 99.5,
						   'trade_ref', 'f1', 'liquidity', 'MAKER'),
		jsonb_build_object('order_id', pg_temp.id(w || '_t2'), 'quantity', '2', 'price', '100',
						   'fee', 0.01, 'fee_currency', 'BAT', 'executed_at', '2026-01-01 00:00:00+00'),
		jsonb_build_object('order_id', pg_temp.id(w || '_t1'), 'quantity', 0.5, 'price', 99.5,
						   'trade_ref', 'f1', 'liquidity', 'MAKER'))
$$;
CREATE FUNCTION pg_temp.trade_one(i jsonb) RETURNS exchange.trades
LANGUAGE sql AS $$
	SELECT * FROM exchange.apply_trade((i->>'order_id')::uuid, (i->>'quantity')::numeric,
		(i->>'price')::numeric, (i->>'fee')::numeric, i->>'fee_currency',
		coalesce((i->>'executed_at')::timestamptz, now()), i->>'trade_ref', i->>'liquidity')
$$;
CREATE FUNCTION pg_temp.tshape(t exchange.trades) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT concat_ws(' ', substr(pg_temp.l(t.order_id), 3), substr(pg_temp.l(t.account_id), 3),
					 t.side, t.quantity, t.price, t.fee, t.fee_currency, t.liquidity, t.trade_ref)
$$;
SELECT pg_temp.skip();
CREATE TEMP TABLE s_trades AS
	SELECT e.n, r AS t FROM jsonb_array_elements(pg_temp.fills('s')) WITH ORDINALITY e (i, n),
		   LATERAL pg_temp.trade_one(e.i) r ORDER BY e.n;
SELECT pg_temp.skip();
CREATE TEMP TABLE b_trades AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.trades, to_jsonb(r) - 'ordinality') AS t
	  FROM exchange.apply_trades(pg_temp.fills('b')) WITH ORDINALITY r;
SELECT count(*) AS outbox_rows FROM pg_temp.new_outbox();
SELECT b.n, pg_temp.tshape(b.t) AS batch_row, pg_temp.tshape(s.t) = pg_temp.tshape(b.t) AS same
  FROM b_trades b JOIN s_trades s USING (n) ORDER BY b.n;
SELECT (SELECT (t).trade_id FROM b_trades WHERE n = 3) = (SELECT (t).trade_id FROM b_trades WHERE n = 1)
	AS retry_same_trade;
SELECT * FROM pg_temp.o('s_t1') UNION ALL SELECT * FROM pg_temp.o('b_t1')
UNION ALL SELECT * FROM pg_temp.o('s_t2') UNION ALL SELECT * FROM pg_temp.o('b_t2');
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.apply_trades(%L)$$, jsonb_build_array(
	jsonb_build_object('order_id', pg_temp.id('b_t1'), 'quantity', 0.5, 'price', 99),
	jsonb_build_object('order_id', pg_temp.id('b_t1'), 'quantity', 5, 'price', 99))));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.apply_trades(%L)$$, jsonb_build_array(
	jsonb_build_object('order_id', pg_temp.id('b_t1'), 'quantity', 0.5, 'price', 99, 'fee_curency', 'BAT'))));
SELECT * FROM pg_temp.o('b_t1');
SELECT count(*) FROM exchange.apply_trades('[]');

-- 9. apply_matches: the same trades as apply_match, item by item, on twin order pairs (a
-- partial match, a full one, a trade_ref retry that returns the same trades); the BUY then
-- the SELL trade of each item.  Then a refused item raises for the whole call.
SELECT pg_temp.label(order_id, 's_m' || side) FROM exchange.place_order(pg_temp.id('s_ann'), 'BAT-USDT', 'BUY', 'LIMIT', 1, 100) UNION ALL
SELECT pg_temp.label(order_id, 's_m' || side) FROM exchange.place_order(pg_temp.id('s_ann'), 'BAT-USDT', 'SELL', 'LIMIT', 1, 100) UNION ALL
SELECT pg_temp.label(order_id, 'b_m' || side) FROM exchange.place_order(pg_temp.id('b_ann'), 'BAT-USDT', 'BUY', 'LIMIT', 1, 100) UNION ALL
SELECT pg_temp.label(order_id, 'b_m' || side) FROM exchange.place_order(pg_temp.id('b_ann'), 'BAT-USDT', 'SELL', 'LIMIT', 1, 100);
CREATE FUNCTION pg_temp.matches(w text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_array(
		jsonb_build_object('buy_order_id', pg_temp.id(w || '_mBUY'), 'sell_order_id', pg_temp.id(w || '_mSELL'),
						   'quantity', 0.4, 'price', '100', 'trade_ref', 'm1', 'maker', 'SELL'),
		jsonb_build_object('buy_order_id', pg_temp.id(w || '_mBUY'), 'sell_order_id', pg_temp.id(w || '_mSELL'),
						   'quantity', '0.6', 'price', 100, 'buy_fee', 0.001, 'sell_fee', 0.1, 'maker', 'BUY'),
		jsonb_build_object('buy_order_id', pg_temp.id(w || '_mBUY'), 'sell_order_id', pg_temp.id(w || '_mSELL'),
						   'quantity', 0.4, 'price', '100', 'trade_ref', 'm1', 'maker', 'SELL'))
$$;
SELECT pg_temp.skip();
CREATE TEMP TABLE s_matches AS
	SELECT row_number() OVER (ORDER BY e.n, r.side) AS n, r AS t
	  FROM jsonb_array_elements(pg_temp.matches('s')) WITH ORDINALITY e (i, n),
		   LATERAL exchange.apply_match((e.i->>'buy_order_id')::uuid, (e.i->>'sell_order_id')::uuid,
				(e.i->>'quantity')::numeric, (e.i->>'price')::numeric, (e.i->>'buy_fee')::numeric,
				(e.i->>'sell_fee')::numeric, e.i->>'trade_ref', e.i->>'maker') r;
SELECT pg_temp.skip();
CREATE TEMP TABLE b_matches AS
	SELECT r.ordinality AS n, jsonb_populate_record(NULL::exchange.trades, to_jsonb(r) - 'ordinality') AS t
	  FROM exchange.apply_matches(pg_temp.matches('b')) WITH ORDINALITY r;
SELECT count(*) AS outbox_rows FROM pg_temp.new_outbox();
SELECT b.n, pg_temp.tshape(b.t) AS batch_row, pg_temp.tshape(s.t) = pg_temp.tshape(b.t) AS same
  FROM b_matches b JOIN s_matches s USING (n) ORDER BY b.n;
SELECT (SELECT array_agg((t).trade_id ORDER BY n) FROM b_matches WHERE n IN (1, 2))
	 = (SELECT array_agg((t).trade_id ORDER BY n) FROM b_matches WHERE n IN (5, 6)) AS retry_same_trades;
SELECT * FROM pg_temp.o('s_mBUY') UNION ALL SELECT * FROM pg_temp.o('b_mBUY')
UNION ALL SELECT * FROM pg_temp.o('s_mSELL') UNION ALL SELECT * FROM pg_temp.o('b_mSELL');
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.apply_matches(%L)$$, jsonb_build_array(
	jsonb_build_object('buy_order_id', pg_temp.id('b_t1'), 'sell_order_id', pg_temp.id('b_t1'),
					   'quantity', 0.1, 'price', 100))));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.apply_matches(%L)$$, jsonb_build_array(
	jsonb_build_object('buy_order_id', pg_temp.id('b_t1'), 'sell_order_id', pg_temp.id('b2'),
					   'quantity', 0.1, 'price', 100))));
SELECT count(*) FROM exchange.apply_matches('[]');

-- 10. An item naming an order of an INTERNAL market raises LX012 for the whole call, with its
-- index, after a valid item: nothing is written.
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.apply_trades(%L)$$, jsonb_build_array(
	jsonb_build_object('order_id', pg_temp.id('b_t1'), 'quantity', 0.1, 'price', 99),
	jsonb_build_object('order_id', pg_temp.id('i2'), 'quantity', 0.1, 'price', 101))));
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.apply_matches(%L)$$, jsonb_build_array(
	jsonb_build_object('buy_order_id', pg_temp.id('i3'), 'sell_order_id', pg_temp.id('i2'),
					   'quantity', 0.1, 'price', 101))));
SELECT * FROM pg_temp.counts();

-- 11. place_orders on an INTERNAL market (README "Batches", "Matching engine"): an item that
-- rests untouched is decided in memory against the top of the book (read once under the
-- market's lock, raised by the batch's own resting items); any other accepted item (crossing an
-- earlier item of the batch or the book, IOC, FOK, MARKET, STOP, a self-trade, a stop due) runs
-- through the matching engine after the rows before it are written.  The batch must leave what
-- the same items leave through place_order one by one, run first in a subtransaction that is
-- rolled back: the result rows, every order (time priority included), trade, balance, journal
-- row and order event (in the same order), the market's last_price and trade_seq, the fees and
-- the outbox keys.
SELECT symbol, matching FROM exchange.create_market('BIQ-USDT', 'BIQ', 'USDT', 0.01, 0.001,
	maker_fee_rate => 0.001, taker_fee_rate => 0.002, matching => 'INTERNAL');
SELECT pg_temp.trader('i_cat'), pg_temp.trader('i_dan');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id(u), a, 1000)
    FROM unnest('{i_cat,i_dan}'::text[]) u, unnest('{USDT,BIQ,BAT}'::text[]) a) d;
-- the book before: a bid at 95, an ask at 105, a SELL stop at 99 (the market has no last price)
SELECT pg_temp.label(order_id, 'q_bid') FROM exchange.place_order(pg_temp.id('i_cat'), 'BIQ-USDT', 'BUY', 'LIMIT', 1, 95);
SELECT pg_temp.label(order_id, 'q_ask') FROM exchange.place_order(pg_temp.id('i_dan'), 'BIQ-USDT', 'SELL', 'LIMIT', 1, 105);
SELECT pg_temp.label(order_id, 'q_stop') FROM exchange.place_order(pg_temp.id('i_dan'), 'BIQ-USDT', 'SELL', 'STOP', 0.2, 90,
	stop_price => 99);
SELECT pg_temp.skip();

-- The results of a scenario s: item n's row (a retry's row is its first item's order).
CREATE TEMP TABLE ires (s text, n int, o exchange.orders);
-- An order as its scenario and item ('qa1'), else its label.
CREATE FUNCTION pg_temp.il(p_id uuid) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce((SELECT s || n FROM pg_temp.ires WHERE (o).order_id = p_id ORDER BY n LIMIT 1),
					pg_temp.l(p_id))
$$;
-- Every uuid of a text as il() names it.
CREATE FUNCTION pg_temp.imasked(t text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m text[];
BEGIN
	FOR m IN SELECT regexp_matches(t, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', 'g')
	LOOP
		t := replace(t, m[1], pg_temp.il(m[1]::uuid));
	END LOOP;
	RETURN t;
END
$$;
-- An order row without generated ids; its time priority as its rank among i_cat's and
-- i_dan's orders (book_seq).
CREATE FUNCTION pg_temp.ishape(o exchange.orders) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT concat_ws(' ', pg_temp.il(o.order_id), pg_temp.l(o.account_id), o.symbol, o.side,
					 o.order_type, o.quantity, o.price, o.stop_price, o.time_in_force, o.status,
					 o.filled_quantity, o.average_price, o.locked_amount, o.lock_asset,
					 o.reject_reason, o.client_order_id, o.metadata, o.filled_at IS NOT NULL,
					 o.cancelled_at IS NOT NULL,
					 'rank ' || (SELECT count(*) FROM exchange.orders x
								  WHERE x.account_id IN (pg_temp.id('i_cat'), pg_temp.id('i_dan'))
									AND x.book_seq <= o.book_seq))
$$;
-- What i_cat's and i_dan's orders left, as text; the outbox rows after p_outbox: their keys
-- (a set) and how many executions they carry.
CREATE FUNCTION pg_temp.istate(p_outbox bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	WITH acc (id) AS (SELECT pg_temp.id(u) FROM unnest('{i_cat,i_dan}'::text[]) u)
	SELECT concat_ws(E'\n',
		(SELECT string_agg('result ' || s || n || ': ' || pg_temp.ishape(o), E'\n' ORDER BY s, n)
		   FROM pg_temp.ires),
		(SELECT string_agg('order ' || pg_temp.ishape(o), E'\n' ORDER BY pg_temp.il(o.order_id))
		   FROM exchange.orders o WHERE o.account_id IN (SELECT id FROM acc)),
		(SELECT string_agg(concat_ws(' ', 'trade', pg_temp.il(t.order_id), pg_temp.l(t.account_id),
									 t.side, t.quantity, t.price, t.fee, t.fee_currency, t.liquidity,
									 t.seq, t.match_id IS NOT NULL), E'\n' ORDER BY t.seq, t.side)
		   FROM exchange.trades t WHERE t.account_id IN (SELECT id FROM acc)),
		(SELECT string_agg(concat_ws(' ', 'journal', pg_temp.l(j.account_id), j.asset, j.delta_available,
									 j.delta_locked, j.kind, pg_temp.il(j.order_id),
									 j.trade_id IS NOT NULL), E'\n' ORDER BY j.seq)
		   FROM exchange.balance_journal j WHERE j.account_id IN (SELECT id FROM acc)),
		(SELECT string_agg(concat_ws(' ', 'event', pg_temp.il(e.order_id), e.from_status, e.to_status,
									 e.filled_delta, e.reason), E'\n' ORDER BY e.seq)
		   FROM exchange.order_events e JOIN exchange.orders o USING (order_id)
		  WHERE o.account_id IN (SELECT id FROM acc)),
		(SELECT string_agg(concat_ws(' ', 'balance', account, asset, available, locked), E'\n')
		   FROM pg_temp.balances() WHERE account IN ('i_cat', 'i_dan')),
		(SELECT concat_ws(' ', 'market', last_price, trade_seq, last_trade_at IS NOT NULL)
		   FROM exchange.markets WHERE symbol = 'BIQ-USDT'),
		(SELECT concat_ws(' ', 'fees', count(*), sum(f.amount))
		   FROM exchange.fee_ledger f JOIN exchange.trades t USING (trade_id)
		  WHERE t.account_id IN (SELECT id FROM acc)),
		(SELECT 'outbox keys ' || string_agg(DISTINCT pg_temp.imasked(k), ' ')
		   FROM exchange.outbox, unnest(keys) k WHERE id > p_outbox),
		(SELECT 'outbox executions ' || coalesce(sum(cardinality(trade_ids)), 0)
		   FROM exchange.outbox WHERE id > p_outbox))
$$;
-- The items of scenario s through place_order one by one, in a subtransaction rolled back:
-- what they left (istate).
CREATE FUNCTION pg_temp.singles(p_s text, p_items jsonb, p_outbox bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v text;
BEGIN
	BEGIN
		INSERT INTO pg_temp.ires
		SELECT p_s, e.n, r FROM jsonb_array_elements(p_items) WITH ORDINALITY e (i, n),
			   LATERAL pg_temp.place_one(e.i) r;
		v := pg_temp.istate(p_outbox);
		RAISE EXCEPTION USING ERRCODE = 'ZZ998', MESSAGE = 'roll the single calls back';
	EXCEPTION WHEN SQLSTATE 'ZZ998' THEN
		RETURN v;
	END;
END
$$;
CREATE FUNCTION pg_temp.as_order(r anyelement) RETURNS exchange.orders
LANGUAGE sql STABLE AS $$
	SELECT jsonb_populate_record(NULL::exchange.orders, to_jsonb(r) - 'ordinality')
$$;
-- The same items through place_orders: its result rows into ires.
CREATE FUNCTION pg_temp.batch(p_s text, p_items jsonb) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO pg_temp.ires
	SELECT p_s, r.ordinality, pg_temp.as_order(r) FROM exchange.place_orders(p_items) WITH ORDINALITY r
$$;
CREATE FUNCTION pg_temp.io(p_who text, p_symbol text, p_side text, p_type text, p_qty numeric,
						   p_price numeric, p_more jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('account_id', pg_temp.id(p_who), 'symbol', p_symbol, 'side', p_side,
							  'order_type', p_type, 'quantity', p_qty, 'price', p_price) || p_more
$$;

-- Scenario qa.
CREATE FUNCTION pg_temp.qa() RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_array(
		-- 1, 2: rest on both sides
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 1, 96),
		pg_temp.io('i_dan', 'BIQ-USDT', 'SELL', 'LIMIT', 1, 104),
		-- 3: an EXTERNAL market between them
		pg_temp.io('i_cat', 'BAT-USDT', 'BUY', 'LIMIT', 1, 10),
		-- 4: crosses item 1 (last price 96); the stop at 99 triggers and takes item 1 too
		pg_temp.io('i_dan', 'BIQ-USDT', 'SELL', 'LIMIT', 0.5, 96),
		-- 5: crosses item 2 and the book's ask at 105
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 2, 105),
		-- 6, 7: rest again, on the book as the engine left it
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 1, 97),
		pg_temp.io('i_dan', 'BIQ-USDT', 'SELL', 'LIMIT', 1, 110),
		-- 8: TICK_SIZE
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 1, 96.001),
		-- 9: IOC that crosses nothing: expires
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 0.1, 90, '{"time_in_force": "IOC"}'),
		-- 10: INSUFFICIENT_FUNDS
		pg_temp.io('i_dan', 'BIQ-USDT', 'SELL', 'LIMIT', 5000, 120),
		-- 11, 12: rests with a client_order_id, then its retry
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 0.5, 98, '{"client_order_id": "q1"}'),
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 0.5, 98, '{"client_order_id": "q1"}'),
		-- 13: a STOP, PENDING
		pg_temp.io('i_cat', 'BIQ-USDT', 'SELL', 'STOP', 0.1, 50, '{"stop_price": 80}'),
		-- 14: crosses its own bid (item 11): EXPIRE_MAKER, then rests at 98
		pg_temp.io('i_cat', 'BIQ-USDT', 'SELL', 'LIMIT', 0.1, 98),
		-- 15: rests below item 14
		pg_temp.io('i_dan', 'BIQ-USDT', 'BUY', 'LIMIT', 0.1, 97.5),
		-- 16: MARKET SELL: expires item 15 (its own), takes item 6
		pg_temp.io('i_dan', 'BIQ-USDT', 'SELL', 'MARKET', 0.1, NULL),
		-- 17: FOK that cannot complete
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 2, 110, '{"time_in_force": "FOK"}'),
		-- 18: rests
		pg_temp.io('i_dan', 'BIQ-USDT', 'SELL', 'LIMIT', 0.3, 111))
$$;
BEGIN;
SELECT coalesce(max(id), 0) AS ob FROM exchange.outbox \gset
SELECT pg_temp.singles('qa', pg_temp.qa(), :ob) AS single_state \gset
SELECT pg_temp.batch('qa', pg_temp.qa());
COMMIT;
SELECT n, pg_temp.ishape(o) AS batch_row FROM ires WHERE s = 'qa' ORDER BY n;
SELECT pg_temp.istate(:ob) = :'single_state' AS same_as_single_calls;
SELECT pg_temp.il(t.order_id) AS "order", pg_temp.l(t.account_id) AS account, t.side, t.quantity,
	   t.price, t.fee, t.liquidity, t.seq
  FROM exchange.trades t WHERE t.symbol = 'BIQ-USDT' ORDER BY t.seq, t.side;
SELECT * FROM pg_temp.new_outbox();

-- Scenario qb: a stop due.  A BUY stop placed while the market was EXTERNAL holds at its last
-- price; the next accepted place_order triggers it, so the batch's first item, a bid that would
-- rest, goes through the engine; item 2 then rests on the book the engine left.
SELECT status FROM exchange.set_market_status('BIQ-USDT', 'HALTED');
SELECT matching FROM exchange.set_market_matching('BIQ-USDT', 'EXTERNAL');
SELECT status FROM exchange.set_market_status('BIQ-USDT', 'ACTIVE');
SELECT pg_temp.label(order_id, 'q_due') FROM exchange.place_order(pg_temp.id('i_dan'), 'BIQ-USDT', 'BUY', 'STOP', 0.1, 120,
	stop_price => 50);
SELECT status FROM exchange.set_market_status('BIQ-USDT', 'HALTED');
SELECT matching FROM exchange.set_market_matching('BIQ-USDT', 'INTERNAL');
SELECT status FROM exchange.set_market_status('BIQ-USDT', 'ACTIVE');
SELECT pg_temp.skip();
CREATE FUNCTION pg_temp.qb() RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_array(
		pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 0.1, 60),
		pg_temp.io('i_dan', 'BIQ-USDT', 'SELL', 'LIMIT', 0.1, 150))
$$;
BEGIN;
SELECT coalesce(max(id), 0) AS ob FROM exchange.outbox \gset
SELECT pg_temp.singles('qb', pg_temp.qb(), :ob) AS single_state \gset
SELECT pg_temp.batch('qb', pg_temp.qb());
COMMIT;
SELECT n, pg_temp.ishape(o) AS batch_row FROM ires WHERE s = 'qb' ORDER BY n;
SELECT pg_temp.istate(:ob) = :'single_state' AS same_as_single_calls;
SELECT * FROM pg_temp.o('q_due');

-- An error of an item after the engine placed one: the whole call fails with its index and
-- writes nothing.
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.fails(format($$SELECT * FROM exchange.place_orders(%L)$$, jsonb_build_array(
	pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 0.1, 80),
	pg_temp.io('i_dan', 'BIQ-USDT', 'SELL', 'LIMIT', 0.1, 80),
	pg_temp.io('i_cat', 'BIQ-USDT', 'BUY', 'LIMIT', 0.2, 98, '{"client_order_id": "q1"}'))));
SELECT * FROM pg_temp.counts();

SELECT * FROM exchange.check_invariants();
