-- pgTAP: the order functions (place_order, cancel_order, cancel_orders, expire_order,
-- expire_orders, trigger_stop_orders): the SQLSTATE of every refusal (README "Errors": 22023,
-- 22004, 22003 for arguments; LX002 illegal transition, LX003 unknown ids, LX009 idempotency
-- conflict), a refusal changes nothing; each function is C, SECURITY DEFINER with the pinned
-- search_path, PARALLEL UNSAFE; EXECUTE per grant_adapter profile (trader: place and cancel;
-- engine: trigger and expire; operator and a role without a profile: none of them).
-- Runs in one transaction that is rolled back (scripts/test.sh runs each file in database
-- `pgtap`, which has the pgtap extension).
BEGIN;
CREATE EXTENSION exchange_adapter;

SELECT plan(126);

-- Setup: a market with a tick of 0.01 and a lot of 0.01, an APPROVED account with funds, an
-- OPEN order with a client_order_id, a CANCELLED one, a FILLED one.
SELECT symbol FROM exchange.create_market('TAP-USDT', 'TAP', 'USDT', 0.01, 0.01) \gset
SELECT account_id AS acct FROM exchange.create_account('tap_orders_alice') \gset
SELECT kyc_status FROM exchange.set_kyc_status(:'acct', 'APPROVED') \gset
SELECT symbol FROM exchange.deposit(:'acct', 'USDT', 1000) \gset
SELECT symbol FROM exchange.deposit(:'acct', 'TAP', 10) \gset
SELECT order_id AS open_id FROM exchange.place_order(:'acct', 'TAP-USDT', 'BUY', 'LIMIT', 1, 10,
	client_order_id => 'tap-1') \gset
SELECT order_id AS cancelled_id FROM exchange.place_order(:'acct', 'TAP-USDT', 'SELL', 'LIMIT', 1, 20) \gset
SELECT status FROM exchange.cancel_order(:'cancelled_id') \gset
SELECT order_id AS filled_id FROM exchange.place_order(:'acct', 'TAP-USDT', 'SELL', 'LIMIT', 1, 20) \gset
SELECT quantity FROM exchange.apply_trade(:'filled_id', 1, 20) \gset
SELECT order_id AS rejected_id FROM exchange.place_order(:'acct', 'TAP-USDT', 'SELL', 'LIMIT', 1000, 20) \gset
\set nil '''00000000-0000-0000-0000-000000000000'''

CREATE TEMP TABLE counts_before AS
SELECT (SELECT count(*) FROM exchange.orders) AS orders,
	   (SELECT count(*) FROM exchange.balance_journal) AS journal,
	   (SELECT count(*) FROM exchange.order_events) AS events,
	   (SELECT count(*) FROM exchange.outbox) AS outbox;

-- place_order: 22023 -------------------------------------------------------------------------
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1)$$, :'acct'),
	'22023', 'a LIMIT order needs parameter "price"', 'place_order: LIMIT without price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'SELL', 'LIMIT', 1)$$, :'acct'),
	'22023', 'a LIMIT order needs parameter "price"', 'place_order: LIMIT SELL without price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'MARKET', 1)$$, :'acct'),
	'22023', 'a MARKET BUY order needs a protection price', 'place_order: MARKET BUY without protection price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'STOP', 1, stop_price => 5)$$, :'acct'),
	'22023', 'a STOP BUY order needs a protection price', 'place_order: STOP BUY without protection price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'SELL', 'STOP', 1, 5)$$, :'acct'),
	'22023', 'a STOP order needs parameter "stop_price"', 'place_order: STOP without stop_price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10, stop_price => 5)$$, :'acct'),
	'22023', 'parameter "stop_price" is only allowed on STOP orders', 'place_order: stop_price on a LIMIT order is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'SELL', 'MARKET', 1, stop_price => 5)$$, :'acct'),
	'22023', 'parameter "stop_price" is only allowed on STOP orders', 'place_order: stop_price on a MARKET order is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'MARKET', 1, 10, 'GTC')$$, :'acct'),
	'22023', 'a MARKET order cannot be GTC', 'place_order: GTC MARKET is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'SELL', 'MARKET', 1, NULL, 'GTC')$$, :'acct'),
	'22023', 'a MARKET order cannot be GTC', 'place_order: GTC MARKET SELL is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'buy', 'LIMIT', 1, 10)$$, :'acct'),
	'22023', 'invalid value for parameter "side": "buy"', 'place_order: a side not in exact upper case is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'HOLD', 'LIMIT', 1, 10)$$, :'acct'),
	'22023', 'invalid value for parameter "side": "HOLD"', 'place_order: an unknown side is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'STOP_LIMIT', 1, 10)$$, :'acct'),
	'22023', 'invalid value for parameter "order_type": "STOP_LIMIT"', 'place_order: an unknown order_type is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10, 'DAY')$$, :'acct'),
	'22023', 'invalid value for parameter "time_in_force": "DAY"', 'place_order: an unknown time_in_force is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 0, 10)$$, :'acct'),
	'22023', 'parameter "quantity" must be positive', 'place_order: quantity 0 is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', -1, 10)$$, :'acct'),
	'22023', 'parameter "quantity" must be positive', 'place_order: a negative quantity is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, -10)$$, :'acct'),
	'22023', 'parameter "price" must be positive', 'place_order: a negative price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 0)$$, :'acct'),
	'22023', 'parameter "price" must be positive', 'place_order: price 0 is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'SELL', 'STOP', 1, stop_price => -5)$$, :'acct'),
	'22023', 'parameter "stop_price" must be positive', 'place_order: a negative stop_price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 'NaN', 10)$$, :'acct'),
	'22023', 'parameter "quantity" must be a finite number', 'place_order: NaN quantity is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 'Infinity')$$, :'acct'),
	'22023', 'parameter "price" must be a finite number', 'place_order: infinite price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, '-Infinity')$$, :'acct'),
	'22023', 'parameter "price" must be a finite number', 'place_order: -Infinity price is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 0.000000001, 10)$$, :'acct'),
	'22023', 'parameter "quantity" has more than 8 decimal places', 'place_order: a quantity with 9 decimals is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10.000000001)$$, :'acct'),
	'22023', 'parameter "price" has more than 8 decimal places', 'place_order: a price with 9 decimals is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'SELL', 'STOP', 1, stop_price => 5.000000001)$$, :'acct'),
	'22023', 'parameter "stop_price" has more than 8 decimal places', 'place_order: a stop_price with 9 decimals is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, '', 'BUY', 'LIMIT', 1, 10)$$, :'acct'),
	'22023', 'parameter "symbol" must not be empty', 'place_order: an empty symbol is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10, client_order_id => '')$$, :'acct'),
	'22023', 'parameter "client_order_id" must not be empty', 'place_order: an empty client_order_id is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10, client_order_id => repeat('c', 65))$$, :'acct'),
	'22023', 'parameter "client_order_id" is too long', 'place_order: a client_order_id of 65 characters is 22023');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10, metadata => '"x"')$$, :'acct'),
	'22023', 'parameter "metadata" must be a JSON object', 'place_order: metadata that is not an object is 22023');
-- place_order: 22004 -------------------------------------------------------------------------
SELECT throws_ok($$SELECT exchange.place_order(NULL, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10)$$,
	'22004', 'parameter "account_id" must not be null', 'place_order: NULL account_id is 22004');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, NULL, 'BUY', 'LIMIT', 1, 10)$$, :'acct'),
	'22004', 'parameter "symbol" must not be null', 'place_order: NULL symbol is 22004');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', NULL, 'LIMIT', 1, 10)$$, :'acct'),
	'22004', 'parameter "side" must not be null', 'place_order: NULL side is 22004');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', NULL, 1, 10)$$, :'acct'),
	'22004', 'parameter "order_type" must not be null', 'place_order: NULL order_type is 22004');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', NULL, 10)$$, :'acct'),
	'22004', 'parameter "quantity" must not be null', 'place_order: NULL quantity is 22004');
-- place_order: 22003 -------------------------------------------------------------------------
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1e16, 10)$$, :'acct'),
	'22003', 'parameter "quantity" is out of range', 'place_order: quantity 1e16 is 22003');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 1e20)$$, :'acct'),
	'22003', 'parameter "price" is out of range', 'place_order: price 1e20 is 22003');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'SELL', 'STOP', 1, stop_price => 1e16)$$, :'acct'),
	'22003', 'parameter "stop_price" is out of range', 'place_order: stop_price 1e16 is 22003');
-- place_order: LX003, LX009 ------------------------------------------------------------------
SELECT throws_ok(format($$SELECT exchange.place_order(%s, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10)$$, :'nil'),
	'LX003', NULL, 'place_order: an unknown account is LX003');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'NOPE-USDT', 'BUY', 'LIMIT', 1, 10)$$, :'acct'),
	'LX003', 'market "NOPE-USDT" does not exist', 'place_order: an unknown market is LX003');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 2, 10, client_order_id => 'tap-1')$$, :'acct'),
	'LX009', 'client_order_id "tap-1" was already used for another order',
	'place_order: a client_order_id retry with another quantity is LX009');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 11, client_order_id => 'tap-1')$$, :'acct'),
	'LX009', NULL, 'place_order: a client_order_id retry with another price is LX009');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'SELL', 'LIMIT', 1, 10, client_order_id => 'tap-1')$$, :'acct'),
	'LX009', NULL, 'place_order: a client_order_id retry with another side is LX009');
SELECT throws_ok(format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 10, 'FOK', client_order_id => 'tap-1')$$, :'acct'),
	'LX009', NULL, 'place_order: a client_order_id retry with another time_in_force is LX009');
SELECT is((SELECT order_id FROM exchange.place_order(:'acct', 'TAP-USDT', 'BUY', 'LIMIT', 1, 10, client_order_id => 'tap-1')),
	:'open_id'::uuid, 'place_order: the same retry returns the stored order');
-- Business refusals do not raise: stored REJECTED.
SELECT is((SELECT status::text || ' ' || reject_reason FROM exchange.orders WHERE order_id = :'rejected_id'),
	'REJECTED INSUFFICIENT_FUNDS', 'place_order: a business refusal is stored REJECTED, not raised');

-- cancel_order, expire_order ----------------------------------------------------------------
SELECT throws_ok($$SELECT exchange.cancel_order(NULL)$$, '22004', 'parameter "order_id" must not be null',
	'cancel_order: NULL order_id is 22004');
SELECT throws_ok(format($$SELECT exchange.cancel_order(%s)$$, :'nil'), 'LX003', NULL,
	'cancel_order: an unknown order is LX003');
SELECT throws_ok(format($$SELECT exchange.cancel_order(%L)$$, :'cancelled_id'), 'LX002',
	'illegal order transition from CANCELLED to CANCELLED', 'cancel_order: a CANCELLED order is LX002');
SELECT throws_ok(format($$SELECT exchange.cancel_order(%L)$$, :'filled_id'), 'LX002',
	'illegal order transition from FILLED to CANCELLED', 'cancel_order: a FILLED order is LX002');
SELECT throws_ok(format($$SELECT exchange.cancel_order(%L)$$, :'rejected_id'), 'LX002',
	'illegal order transition from REJECTED to CANCELLED', 'cancel_order: a REJECTED order is LX002');
SELECT throws_ok(format($$SELECT exchange.cancel_order(%L, '')$$, :'open_id'), '22023',
	'parameter "reason" must not be empty', 'cancel_order: an empty reason is 22023');
SELECT throws_ok(format($$SELECT exchange.cancel_order(%L, repeat('r', 257))$$, :'open_id'), '22023',
	'parameter "reason" is too long', 'cancel_order: a reason of 257 characters is 22023');
SELECT throws_ok($$SELECT exchange.expire_order(NULL)$$, '22004', 'parameter "order_id" must not be null',
	'expire_order: NULL order_id is 22004');
SELECT throws_ok(format($$SELECT exchange.expire_order(%s)$$, :'nil'), 'LX003', NULL,
	'expire_order: an unknown order is LX003');
SELECT throws_ok(format($$SELECT exchange.expire_order(%L)$$, :'cancelled_id'), 'LX002',
	'illegal order transition from CANCELLED to EXPIRED', 'expire_order: a CANCELLED order is LX002');
SELECT throws_ok(format($$SELECT exchange.expire_order(%L)$$, :'filled_id'), 'LX002',
	'illegal order transition from FILLED to EXPIRED', 'expire_order: a FILLED order is LX002');
SELECT throws_ok(format($$SELECT exchange.expire_order(%L)$$, :'rejected_id'), 'LX002',
	'illegal order transition from REJECTED to EXPIRED', 'expire_order: a REJECTED order is LX002');
-- cancel_orders, expire_orders, trigger_stop_orders -----------------------------------------
SELECT throws_ok($$SELECT * FROM exchange.cancel_orders(NULL)$$, '22004', 'parameter "account_id" must not be null',
	'cancel_orders: NULL account_id is 22004');
SELECT throws_ok(format($$SELECT * FROM exchange.cancel_orders(%s)$$, :'nil'), 'LX003', NULL,
	'cancel_orders: an unknown account is LX003');
SELECT throws_ok(format($$SELECT * FROM exchange.cancel_orders(%L, '')$$, :'acct'), '22023',
	'parameter "symbol" must not be empty', 'cancel_orders: an empty symbol is 22023');
SELECT throws_ok($$SELECT * FROM exchange.expire_orders(NULL, now())$$, '22004', 'parameter "symbol" must not be null',
	'expire_orders: NULL symbol is 22004');
SELECT throws_ok($$SELECT * FROM exchange.expire_orders('TAP-USDT', NULL)$$, '22004',
	'parameter "placed_before" must not be null', 'expire_orders: NULL placed_before is 22004');
SELECT throws_ok($$SELECT * FROM exchange.expire_orders('NOPE-USDT', now())$$, 'LX003',
	'market "NOPE-USDT" does not exist', 'expire_orders: an unknown market is LX003');
SELECT throws_ok($$SELECT * FROM exchange.trigger_stop_orders(NULL, 10)$$, '22004', 'parameter "symbol" must not be null',
	'trigger_stop_orders: NULL symbol is 22004');
SELECT throws_ok($$SELECT * FROM exchange.trigger_stop_orders('TAP-USDT', NULL)$$, '22004',
	'parameter "last_price" must not be null', 'trigger_stop_orders: NULL last_price is 22004');
SELECT throws_ok($$SELECT * FROM exchange.trigger_stop_orders('TAP-USDT', 0)$$, '22023',
	'parameter "last_price" must be positive', 'trigger_stop_orders: last_price 0 is 22023');
SELECT throws_ok($$SELECT * FROM exchange.trigger_stop_orders('TAP-USDT', 'NaN')$$, '22023',
	'parameter "last_price" must be a finite number', 'trigger_stop_orders: NaN last_price is 22023');
SELECT throws_ok($$SELECT * FROM exchange.trigger_stop_orders('TAP-USDT', 1.000000001)$$, '22023',
	'parameter "last_price" has more than 8 decimal places', 'trigger_stop_orders: a last_price with 9 decimals is 22023');
SELECT throws_ok($$SELECT * FROM exchange.trigger_stop_orders('TAP-USDT', 1e16)$$, '22003',
	'parameter "last_price" is out of range', 'trigger_stop_orders: last_price 1e16 is 22003');
SELECT throws_ok($$SELECT * FROM exchange.trigger_stop_orders('NOPE-USDT', 10)$$, 'LX003',
	'market "NOPE-USDT" does not exist', 'trigger_stop_orders: an unknown market is LX003');

-- None of the refusals wrote anything.
SELECT is((SELECT count(*) FROM exchange.orders), (SELECT orders FROM counts_before), 'the refusals placed no order');
SELECT is((SELECT count(*) FROM exchange.balance_journal), (SELECT journal FROM counts_before), 'the refusals wrote no journal row');
SELECT is((SELECT count(*) FROM exchange.order_events), (SELECT events FROM counts_before), 'the refusals wrote no order event');
SELECT is((SELECT count(*) FROM exchange.outbox), (SELECT outbox FROM counts_before), 'the refusals wrote no outbox row');

-- C, SECURITY DEFINER, pinned search_path, PARALLEL UNSAFE ------------------------------------
SELECT is_definer('exchange', 'place_order', ARRAY['uuid', 'text', 'text', 'text', 'numeric', 'numeric', 'text', 'numeric', 'text', 'jsonb'], 'place_order is SECURITY DEFINER');
SELECT is_definer('exchange', 'cancel_order', ARRAY['uuid', 'text'], 'cancel_order is SECURITY DEFINER');
SELECT is_definer('exchange', 'cancel_orders', ARRAY['uuid', 'text'], 'cancel_orders is SECURITY DEFINER');
SELECT is_definer('exchange', 'expire_order', ARRAY['uuid', 'text'], 'expire_order is SECURITY DEFINER');
SELECT is_definer('exchange', 'expire_orders', ARRAY['text', 'timestamp with time zone'], 'expire_orders is SECURITY DEFINER');
SELECT is_definer('exchange', 'trigger_stop_orders', ARRAY['text', 'numeric'], 'trigger_stop_orders is SECURITY DEFINER');
SELECT function_lang_is('exchange', 'place_order', ARRAY['uuid', 'text', 'text', 'text', 'numeric', 'numeric', 'text', 'numeric', 'text', 'jsonb'], 'c', 'place_order is C');
SELECT function_lang_is('exchange', 'cancel_order', ARRAY['uuid', 'text'], 'c', 'cancel_order is C');
SELECT function_lang_is('exchange', 'cancel_orders', ARRAY['uuid', 'text'], 'c', 'cancel_orders is C');
SELECT function_lang_is('exchange', 'expire_order', ARRAY['uuid', 'text'], 'c', 'expire_order is C');
SELECT function_lang_is('exchange', 'expire_orders', ARRAY['text', 'timestamp with time zone'], 'c', 'expire_orders is C');
SELECT function_lang_is('exchange', 'trigger_stop_orders', ARRAY['text', 'numeric'], 'c', 'trigger_stop_orders is C');
SELECT is(
	(SELECT string_agg(format('%s: %s definer=%s parallel=%s %s', p.proname, l.lanname, p.prosecdef,
							  p.proparallel, array_to_string(p.proconfig, ';')), ' | ' ORDER BY p.proname)
	   FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	  WHERE p.pronamespace = 'exchange'::regnamespace
		AND p.proname IN ('place_order', 'cancel_order', 'cancel_orders', 'expire_order',
						  'expire_orders', 'trigger_stop_orders')),
	'cancel_order: c definer=t parallel=u search_path=pg_catalog, pg_temp'
	' | cancel_orders: c definer=t parallel=u search_path=pg_catalog, pg_temp'
	' | expire_order: c definer=t parallel=u search_path=pg_catalog, pg_temp'
	' | expire_orders: c definer=t parallel=u search_path=pg_catalog, pg_temp'
	' | place_order: c definer=t parallel=u search_path=pg_catalog, pg_temp'
	' | trigger_stop_orders: c definer=t parallel=u search_path=pg_catalog, pg_temp',
	'the order functions: one overload each, C, SECURITY DEFINER, PARALLEL UNSAFE, search_path pinned');
SELECT ok(NOT has_function_privilege('public', p.oid, 'EXECUTE'),
		  format('PUBLIC cannot execute %s', p.oid::regprocedure))
  FROM pg_proc p
 WHERE p.pronamespace = 'exchange'::regnamespace
   AND p.proname IN ('place_order', 'cancel_order', 'cancel_orders', 'expire_order',
					 'expire_orders', 'trigger_stop_orders')
 ORDER BY p.proname;

-- Privileges per profile -------------------------------------------------------------------
CREATE ROLE tap_orders_trader;
CREATE ROLE tap_orders_engine;
CREATE ROLE tap_orders_operator;
CREATE ROLE tap_orders_all;
CREATE ROLE tap_orders_nobody;
SELECT exchange.grant_adapter('tap_orders_trader', 'trader');
SELECT exchange.grant_adapter('tap_orders_engine', 'engine');
SELECT exchange.grant_adapter('tap_orders_operator', 'operator');
SELECT exchange.grant_adapter('tap_orders_all', 'all');

-- The matrix (role, function, may execute), checked with has_function_privilege.
SELECT is(has_function_privilege(r.role, p.oid, 'EXECUTE'), r.allowed,
		  format('%s %s execute %s', r.role, CASE WHEN r.allowed THEN 'may' ELSE 'may not' END, p.proname))
  FROM (VALUES
	('tap_orders_trader', 'place_order', true), ('tap_orders_trader', 'cancel_order', true),
	('tap_orders_trader', 'cancel_orders', true), ('tap_orders_trader', 'expire_order', false),
	('tap_orders_trader', 'expire_orders', false), ('tap_orders_trader', 'trigger_stop_orders', false),
	('tap_orders_engine', 'place_order', false), ('tap_orders_engine', 'cancel_order', false),
	('tap_orders_engine', 'cancel_orders', false), ('tap_orders_engine', 'expire_order', true),
	('tap_orders_engine', 'expire_orders', true), ('tap_orders_engine', 'trigger_stop_orders', true),
	('tap_orders_operator', 'place_order', false), ('tap_orders_operator', 'cancel_order', false),
	('tap_orders_operator', 'trigger_stop_orders', false), ('tap_orders_operator', 'expire_order', false),
	('tap_orders_all', 'place_order', true), ('tap_orders_all', 'cancel_orders', true),
	('tap_orders_all', 'expire_orders', true), ('tap_orders_all', 'trigger_stop_orders', true),
	('tap_orders_nobody', 'place_order', false), ('tap_orders_nobody', 'cancel_order', false)
  ) AS r (role, fn, allowed)
  JOIN pg_proc p ON p.proname = r.fn AND p.pronamespace = 'exchange'::regnamespace
 ORDER BY r.role, r.fn;

-- And in practice, calling as the role: 42501 when not allowed.
CREATE FUNCTION pg_temp.as_role(p_role text, p_stmt text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	v_state text := 'ok';
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', p_role);
	BEGIN
		EXECUTE p_stmt;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
	END;
	RESET ROLE;
	RETURN v_state;
END
$f$;
SELECT is(pg_temp.as_role('tap_orders_trader',
		  format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 5)$$, :'acct')),
		  'ok', 'the trader profile places an order');
SELECT is(pg_temp.as_role('tap_orders_trader', format($$SELECT exchange.cancel_order(%L)$$, :'open_id')),
		  'ok', 'the trader profile cancels an order');
SELECT is(pg_temp.as_role('tap_orders_trader', format($$SELECT exchange.expire_order(%L)$$, :'open_id')),
		  '42501', 'the trader profile cannot expire an order (42501)');
SELECT is(pg_temp.as_role('tap_orders_trader', $$SELECT * FROM exchange.trigger_stop_orders('TAP-USDT', 10)$$),
		  '42501', 'the trader profile cannot trigger stops (42501)');
SELECT is(pg_temp.as_role('tap_orders_engine',
		  format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 5)$$, :'acct')),
		  '42501', 'the engine profile cannot place an order (42501)');
SELECT is(pg_temp.as_role('tap_orders_engine', format($$SELECT exchange.cancel_order(%L)$$, :'open_id')),
		  '42501', 'the engine profile cannot cancel an order (42501)');
SELECT is(pg_temp.as_role('tap_orders_engine', $$SELECT * FROM exchange.trigger_stop_orders('TAP-USDT', 10)$$),
		  'ok', 'the engine profile triggers stops');
SELECT is(pg_temp.as_role('tap_orders_engine', $$SELECT * FROM exchange.expire_orders('TAP-USDT', now())$$),
		  'ok', 'the engine profile expires orders');
SELECT is(pg_temp.as_role('tap_orders_operator',
		  format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 5)$$, :'acct')),
		  '42501', 'the operator profile cannot place an order (42501)');
SELECT is(pg_temp.as_role('tap_orders_nobody',
		  format($$SELECT exchange.place_order(%L, 'TAP-USDT', 'BUY', 'LIMIT', 1, 5)$$, :'acct')),
		  '42501', 'a role without a profile cannot place an order (42501)');
-- No profile may write the order tables directly: the lifecycle cannot be bypassed.
SELECT is(pg_temp.as_role('tap_orders_all',
		  format($$UPDATE exchange.orders SET status = 'FILLED' WHERE order_id = %L$$, :'open_id')),
		  '42501', 'the all profile cannot UPDATE exchange.orders (42501)');
SELECT is(pg_temp.as_role('tap_orders_all', $$DELETE FROM exchange.order_events$$),
		  '42501', 'the all profile cannot DELETE from exchange.order_events (42501)');

SELECT * FROM finish();
ROLLBACK;
