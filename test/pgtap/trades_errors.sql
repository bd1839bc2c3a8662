-- pgTAP: apply_trade and apply_match: the SQLSTATE of every refusal (README "Errors": LX007
-- overfill, LX006 price outside limit, LX002 illegal transition, LX008 fill-or-kill, LX009
-- idempotency conflict, LX003 unknown order, LX001 fee shortage; 22023, 22004, 22003 for
-- arguments), a refusal changes nothing; both functions are C, SECURITY DEFINER with the
-- pinned search_path, PARALLEL UNSAFE; EXECUTE per grant_adapter profile (engine: yes;
-- trader, operator: no).
-- Runs in one transaction that is rolled back (scripts/test.sh runs each file in database
-- `pgtap`, which has the pgtap extension).
BEGIN;
CREATE EXTENSION exchange_adapter;

SELECT plan(99);

-- Setup: two markets; a buyer and a seller with funds; orders in every state the refusals need.
SELECT symbol FROM exchange.create_market('TTE-USDT', 'TTE', 'USDT', 0.01, 0.01, 0, 0, 0.001, 0.002) \gset
SELECT symbol FROM exchange.create_market('TTF-USDT', 'TTF', 'USDT', 0.01, 0.01) \gset
SELECT account_id AS buyer FROM exchange.create_account('tap_trades_buyer') \gset
SELECT account_id AS seller FROM exchange.create_account('tap_trades_seller') \gset
SELECT kyc_status FROM exchange.set_kyc_status(:'buyer', 'APPROVED') \gset
SELECT kyc_status FROM exchange.set_kyc_status(:'seller', 'APPROVED') \gset
SELECT symbol FROM exchange.deposit(:'buyer', 'USDT', 10000) \gset
SELECT symbol FROM exchange.deposit(:'seller', 'TTE', 100) \gset
SELECT symbol FROM exchange.deposit(:'seller', 'TTF', 100) \gset
-- buy: LIMIT BUY 2 at 10; sell: LIMIT SELL 2 at 9; fok: LIMIT BUY 2 at 10 FOK;
-- pending: a STOP SELL; filled, cancelled: ended orders; other_market: a SELL on TTF-USDT.
SELECT order_id AS buy FROM exchange.place_order(:'buyer', 'TTE-USDT', 'BUY', 'LIMIT', 2, 10) \gset
SELECT order_id AS sell FROM exchange.place_order(:'seller', 'TTE-USDT', 'SELL', 'LIMIT', 2, 9) \gset
SELECT order_id AS fok FROM exchange.place_order(:'buyer', 'TTE-USDT', 'BUY', 'LIMIT', 2, 10, 'FOK') \gset
SELECT order_id AS fok_sell FROM exchange.place_order(:'seller', 'TTE-USDT', 'SELL', 'LIMIT', 2, 9, 'FOK') \gset
SELECT order_id AS mkt FROM exchange.place_order(:'buyer', 'TTE-USDT', 'BUY', 'MARKET', 1, 12) \gset
SELECT order_id AS pending FROM exchange.place_order(:'seller', 'TTE-USDT', 'SELL', 'STOP', 1, stop_price => 5) \gset
SELECT order_id AS filled FROM exchange.place_order(:'buyer', 'TTE-USDT', 'BUY', 'LIMIT', 1, 10) \gset
SELECT quantity FROM exchange.apply_trade(:'filled', 1, 10) \gset
SELECT order_id AS cancelled FROM exchange.place_order(:'buyer', 'TTE-USDT', 'BUY', 'LIMIT', 1, 10) \gset
SELECT status FROM exchange.cancel_order(:'cancelled') \gset
SELECT order_id AS other_market FROM exchange.place_order(:'seller', 'TTF-USDT', 'SELL', 'LIMIT', 1, 9) \gset
-- A fill with a trade_ref and one match with a trade_ref, for the conflicts.  (Every order here
-- has the same created_at, so maker NULL would pick the lower order_id: maker is given.)
SELECT quantity FROM exchange.apply_trade(:'buy', 0.5, 9.5, trade_ref => 'f-1', liquidity => 'TAKER') \gset
SELECT count(*) FROM exchange.apply_match(:'buy', :'sell', 0.5, 9.5, trade_ref => 'm-1', maker => 'SELL') \gset
\set nil '''00000000-0000-0000-0000-000000000000'''

CREATE TEMP TABLE counts_before AS
SELECT (SELECT count(*) FROM exchange.trades) AS trades,
	   (SELECT count(*) FROM exchange.balance_journal) AS journal,
	   (SELECT count(*) FROM exchange.order_events) AS events,
	   (SELECT count(*) FROM exchange.fee_ledger) AS fees,
	   (SELECT count(*) FROM exchange.outbox) AS outbox,
	   (SELECT string_agg(order_id || status || filled_quantity || locked_amount, ',' ORDER BY order_id)
		  FROM exchange.orders) AS orders;

-- apply_trade: domain refusals --------------------------------------------------------------
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1.01, 9)$$, :'buy'), 'LX007', NULL,
	'apply_trade: more than remains (1 of 2 left) is LX007');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1, 10.01)$$, :'buy'), 'LX006', NULL,
	'apply_trade: a BUY fill above its limit is LX006');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.5, 8.99)$$, :'sell'), 'LX006', NULL,
	'apply_trade: a SELL fill below its limit is LX006');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.5, 12.01)$$, :'mkt'), 'LX006', NULL,
	'apply_trade: a MARKET BUY fill above its protection price is LX006');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1, 5)$$, :'pending'), 'LX002', NULL,
	'apply_trade: a PENDING stop is LX002');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1, 10)$$, :'filled'), 'LX002', NULL,
	'apply_trade: a FILLED order is LX002');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1, 10)$$, :'cancelled'), 'LX002', NULL,
	'apply_trade: a CANCELLED order is LX002');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1, 10)$$, :'fok'), 'LX008', NULL,
	'apply_trade: a FOK order filled partly is LX008');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 2.01, 10)$$, :'fok'), 'LX007', NULL,
	'apply_trade: a FOK order overfilled is LX007');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%s, 1, 10)$$, :'nil'), 'LX003', NULL,
	'apply_trade: an unknown order is LX003');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9, 0.01, 'NOFUNDS')$$, :'buy'), 'LX001', NULL,
	'apply_trade: a fee in an asset the account lacks is LX001');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9, 100, 'USDT')$$, :'sell'), '22023', NULL,
	'apply_trade: a fee in the received asset above the fill''s proceeds is 22023');
-- apply_trade: idempotency conflicts (LX009), and the same retry ------------------------------
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.4, 9.5, trade_ref => 'f-1', liquidity => 'TAKER')$$, :'buy'),
	'LX009', NULL, 'apply_trade: a trade_ref retry with another quantity is LX009');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.5, 9.4, trade_ref => 'f-1', liquidity => 'TAKER')$$, :'buy'),
	'LX009', NULL, 'apply_trade: a trade_ref retry with another price is LX009');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.5, 9.5, 0.5, trade_ref => 'f-1', liquidity => 'TAKER')$$, :'buy'),
	'LX009', NULL, 'apply_trade: a trade_ref retry with another fee is LX009');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.5, 9.5, 0.001, 'USDT', trade_ref => 'f-1', liquidity => 'TAKER')$$, :'buy'),
	'LX009', NULL, 'apply_trade: a trade_ref retry with another fee_currency is LX009');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.5, 9.5, trade_ref => 'f-1', liquidity => 'MAKER')$$, :'buy'),
	'LX009', NULL, 'apply_trade: a trade_ref retry with another liquidity is LX009');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.5, 9.5, trade_ref => 'f-1')$$, :'buy'),
	'LX009', NULL, 'apply_trade: a trade_ref retry without the liquidity is LX009');
SELECT is((SELECT t.trade_id FROM exchange.apply_trade(:'buy', 0.5, 9.5, trade_ref => 'f-1', liquidity => 'TAKER') t),
	(SELECT trade_id FROM exchange.trades WHERE order_id = :'buy' AND trade_ref = 'f-1'),
	'apply_trade: the same retry returns the stored trade');
SELECT is((SELECT t.trade_id FROM exchange.apply_trade(:'buy', 0.5, 9.5, 0.001, 'TTE', trade_ref => 'f-1', liquidity => 'TAKER') t),
	(SELECT trade_id FROM exchange.trades WHERE order_id = :'buy' AND trade_ref = 'f-1'),
	'apply_trade: a retry giving the computed fee explicitly is the same fill');
-- apply_trade: 22023, 22004, 22003 -----------------------------------------------------------
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0, 9)$$, :'buy'), '22023', 'parameter "quantity" must be positive',
	'apply_trade: quantity 0 is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, -1, 9)$$, :'buy'), '22023', 'parameter "quantity" must be positive',
	'apply_trade: a negative quantity is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 0)$$, :'buy'), '22023', 'parameter "price" must be positive',
	'apply_trade: price 0 is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9.000000001)$$, :'buy'), '22023', 'parameter "price" has more than 8 decimal places',
	'apply_trade: a price with 9 decimals is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 'NaN', 9)$$, :'buy'), '22023', 'parameter "quantity" must be a finite number',
	'apply_trade: NaN quantity is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9, -0.01)$$, :'buy'), '22023', 'parameter "fee" must not be negative',
	'apply_trade: a negative fee is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9, 0.01, 'usdt')$$, :'buy'), '22023', 'invalid value for parameter "fee_currency": "usdt"',
	'apply_trade: a fee_currency that is not an asset code is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9, liquidity => 'maker')$$, :'buy'), '22023', 'invalid value for parameter "liquidity": "maker"',
	'apply_trade: a liquidity not in exact upper case is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9, trade_ref => '')$$, :'buy'), '22023', 'parameter "trade_ref" must not be empty',
	'apply_trade: an empty trade_ref is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9, trade_ref => repeat('t', 129))$$, :'buy'), '22023', 'parameter "trade_ref" is too long',
	'apply_trade: a trade_ref of 129 characters is 22023');
SELECT throws_ok($$SELECT exchange.apply_trade(NULL, 0.1, 9)$$, '22004', 'parameter "order_id" must not be null',
	'apply_trade: NULL order_id is 22004');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, NULL, 9)$$, :'buy'), '22004', 'parameter "quantity" must not be null',
	'apply_trade: NULL quantity is 22004');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, NULL)$$, :'buy'), '22004', 'parameter "price" must not be null',
	'apply_trade: NULL price is 22004');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1e16, 9)$$, :'buy'), '22003', 'parameter "quantity" is out of range',
	'apply_trade: quantity 1e16 is 22003');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, -1e17)$$, :'buy'), '22003', 'parameter "price" is out of range',
	'apply_trade: price -1e17 is 22003');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 9, 1e16)$$, :'buy'), '22003', 'parameter "fee" is out of range',
	'apply_trade: fee 1e16 is 22003');

-- apply_match: domain refusals --------------------------------------------------------------
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 1.5, 9.5)$$, :'buy', :'sell'), 'LX007', NULL,
	'apply_match: more than the SELL has left is LX007');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 1.5, 9.5)$$, :'filled', :'sell'), 'LX002', NULL,
	'apply_match: a FILLED BUY is LX002');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5)$$, :'buy', :'pending'), 'LX002', NULL,
	'apply_match: a PENDING SELL is LX002');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5)$$, :'cancelled', :'sell'), 'LX002', NULL,
	'apply_match: a CANCELLED BUY is LX002');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 10.01)$$, :'buy', :'sell'), 'LX006', NULL,
	'apply_match: above the BUY limit is LX006');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 8.99)$$, :'buy', :'sell'), 'LX006', NULL,
	'apply_match: below the SELL limit is LX006');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 1, 9.5)$$, :'fok', :'sell'), 'LX008', NULL,
	'apply_match: a FOK BUY filled partly is LX008');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 1, 9.5)$$, :'buy', :'fok_sell'), 'LX008', NULL,
	'apply_match: a FOK SELL filled partly is LX008');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %s, 0.5, 9.5)$$, :'buy', :'nil'), 'LX003', NULL,
	'apply_match: an unknown SELL order is LX003');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%s, %L, 0.5, 9.5)$$, :'nil', :'sell'), 'LX003', NULL,
	'apply_match: an unknown BUY order is LX003');
-- apply_match: idempotency conflicts (LX009), and the same retry ------------------------------
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.4, 9.5, trade_ref => 'm-1', maker => 'SELL')$$, :'buy', :'sell'),
	'LX009', NULL, 'apply_match: a trade_ref retry with another quantity is LX009');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.6, trade_ref => 'm-1', maker => 'SELL')$$, :'buy', :'sell'),
	'LX009', NULL, 'apply_match: a trade_ref retry with another price is LX009');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5, 0.1, trade_ref => 'm-1', maker => 'SELL')$$, :'buy', :'sell'),
	'LX009', NULL, 'apply_match: a trade_ref retry with another buy_fee is LX009');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5, trade_ref => 'm-1', maker => 'BUY')$$, :'buy', :'sell'),
	'LX009', NULL, 'apply_match: a trade_ref retry with another maker is LX009');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5, trade_ref => 'f-1')$$, :'buy', :'sell'),
	'LX009', NULL, 'apply_match: a trade_ref apply_trade used on the BUY is LX009');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5, trade_ref => 'm-1', maker => 'SELL')$$, :'fok', :'sell'),
	'LX009', NULL, 'apply_match: the trade_ref of another match of the SELL is LX009');
SELECT is((SELECT array_agg(t.trade_id ORDER BY t.side) FROM exchange.apply_match(:'buy', :'sell', 0.5, 9.5, trade_ref => 'm-1', maker => 'SELL') t),
	(SELECT array_agg(trade_id ORDER BY side) FROM exchange.trades WHERE trade_ref = 'm-1' AND order_id IN (:'buy', :'sell')),
	'apply_match: the same retry returns the two stored trades');
-- apply_match: 22023, 22004, 22003 -----------------------------------------------------------
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5)$$, :'buy', :'buy'), '22023',
	'parameters "buy_order_id" and "sell_order_id" must differ', 'apply_match: the same order on both sides is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5)$$, :'buy', :'fok'), '22023',
	'apply_match needs a BUY order and a SELL order', 'apply_match: two BUY orders is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5)$$, :'sell', :'buy'), '22023',
	'apply_match needs a BUY order and a SELL order', 'apply_match: the sides swapped is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5)$$, :'buy', :'other_market'), '22023',
	'orders of different markets cannot match', 'apply_match: orders of two markets is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5, maker => 'buy')$$, :'buy', :'sell'), '22023',
	'invalid value for parameter "maker": "buy"', 'apply_match: a maker not in exact upper case is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0, 9.5)$$, :'buy', :'sell'), '22023',
	'parameter "quantity" must be positive', 'apply_match: quantity 0 is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5, sell_fee => -1)$$, :'buy', :'sell'), '22023',
	'parameter "sell_fee" must not be negative', 'apply_match: a negative sell_fee is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5, trade_ref => '')$$, :'buy', :'sell'), '22023',
	'parameter "trade_ref" must not be empty', 'apply_match: an empty trade_ref is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(NULL, %L, 0.5, 9.5)$$, :'sell'), '22004',
	'parameter "buy_order_id" must not be null', 'apply_match: NULL buy_order_id is 22004');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, NULL, 0.5, 9.5)$$, :'buy'), '22004',
	'parameter "sell_order_id" must not be null', 'apply_match: NULL sell_order_id is 22004');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, NULL, 9.5)$$, :'buy', :'sell'), '22004',
	'parameter "quantity" must not be null', 'apply_match: NULL quantity is 22004');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, NULL)$$, :'buy', :'sell'), '22004',
	'parameter "price" must not be null', 'apply_match: NULL price is 22004');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 1e16)$$, :'buy', :'sell'), '22003',
	'parameter "price" is out of range', 'apply_match: price 1e16 is 22003');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.5, 9.5, 1e16)$$, :'buy', :'sell'), '22003',
	'parameter "buy_fee" is out of range', 'apply_match: buy_fee 1e16 is 22003');

-- A computed fee (fee NULL, liquidity given) is ceil8(proceeds x rate), an amount of the
-- proceeds' asset (README "Order lifecycle and arithmetic").  With fee_currency naming another
-- asset the same number must not be charged in that asset: the call is either refused (22023)
-- or charges the fee computed in that asset.  (Each call runs in a subtransaction that is
-- rolled back.)
CREATE FUNCTION pg_temp.computed_fee_in(p_order uuid, p_quantity numeric, p_price numeric,
										p_currency text, p_right_fee numeric) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	v_fee numeric;
BEGIN
	BEGIN
		SELECT t.fee INTO v_fee
		  FROM exchange.apply_trade(p_order, p_quantity, p_price, NULL, p_currency, liquidity => 'TAKER') t;
		RAISE EXCEPTION USING ERRCODE = 'ZZ998';
	EXCEPTION
		WHEN invalid_parameter_value THEN
			RETURN 'refused';
		WHEN SQLSTATE 'ZZ998' THEN
			RETURN CASE WHEN v_fee = p_right_fee THEN 'right fee'
						ELSE format('charged %s %s', v_fee, p_currency) END;
	END;
END
$f$;
-- BUY 0.1 at 9, taker 0.002, fee in USDT: 0.0018 USDT (= 0.9 x 0.002), not 0.0002 (= 0.1 x 0.002).
SELECT ok(pg_temp.computed_fee_in(:'buy', 0.1, 9, 'USDT', 0.0018) IN ('refused', 'right fee'),
	format('apply_trade: a computed fee charged in the quote by a BUY is in quote units (%s)',
		   pg_temp.computed_fee_in(:'buy', 0.1, 9, 'USDT', 0.0018)));
-- SELL 0.1 at 9.5, taker 0.002, fee in TTE: 0.0002 TTE (= 0.1 x 0.002), not 0.0019 (= 0.95 x 0.002).
SELECT ok(pg_temp.computed_fee_in(:'sell', 0.1, 9.5, 'TTE', 0.0002) IN ('refused', 'right fee'),
	format('apply_trade: a computed fee charged in the base by a SELL is in base units (%s)',
		   pg_temp.computed_fee_in(:'sell', 0.1, 9.5, 'TTE', 0.0002)));

-- None of the refusals and retries wrote anything.
SELECT is((SELECT count(*) FROM exchange.trades), (SELECT trades FROM counts_before), 'no trade was written');
SELECT is((SELECT count(*) FROM exchange.balance_journal), (SELECT journal FROM counts_before), 'no journal row was written');
SELECT is((SELECT count(*) FROM exchange.order_events), (SELECT events FROM counts_before), 'no order event was written');
SELECT is((SELECT count(*) FROM exchange.fee_ledger), (SELECT fees FROM counts_before), 'no fee_ledger row was written');
SELECT is((SELECT count(*) FROM exchange.outbox), (SELECT outbox FROM counts_before), 'no outbox row was written');
SELECT is((SELECT string_agg(order_id || status || filled_quantity || locked_amount, ',' ORDER BY order_id) FROM exchange.orders),
	(SELECT orders FROM counts_before), 'no order changed');
SELECT is_empty('SELECT * FROM exchange.check_invariants()', 'the ledger is sound');

-- C, SECURITY DEFINER, pinned search_path, PARALLEL UNSAFE ------------------------------------
SELECT is_definer('exchange', 'apply_trade',
	ARRAY['uuid', 'numeric', 'numeric', 'numeric', 'text', 'timestamp with time zone', 'text', 'text'],
	'apply_trade is SECURITY DEFINER');
SELECT is_definer('exchange', 'apply_match',
	ARRAY['uuid', 'uuid', 'numeric', 'numeric', 'numeric', 'numeric', 'text', 'text'],
	'apply_match is SECURITY DEFINER');
SELECT function_lang_is('exchange', 'apply_trade',
	ARRAY['uuid', 'numeric', 'numeric', 'numeric', 'text', 'timestamp with time zone', 'text', 'text'], 'c',
	'apply_trade is C');
SELECT function_lang_is('exchange', 'apply_match',
	ARRAY['uuid', 'uuid', 'numeric', 'numeric', 'numeric', 'numeric', 'text', 'text'], 'c',
	'apply_match is C');
SELECT is(
	(SELECT string_agg(format('%s: %s definer=%s parallel=%s %s', p.proname, l.lanname, p.prosecdef,
							  p.proparallel, array_to_string(p.proconfig, ';')), ' | ' ORDER BY p.proname)
	   FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	  WHERE p.pronamespace = 'exchange'::regnamespace AND p.proname IN ('apply_trade', 'apply_match')),
	'apply_match: c definer=t parallel=u search_path=pg_catalog, pg_temp'
	' | apply_trade: c definer=t parallel=u search_path=pg_catalog, pg_temp',
	'the trade functions: one overload each, C, SECURITY DEFINER, PARALLEL UNSAFE, search_path pinned');
SELECT ok(NOT has_function_privilege('public', p.oid, 'EXECUTE'),
		  format('PUBLIC cannot execute %s', p.oid::regprocedure))
  FROM pg_proc p
 WHERE p.pronamespace = 'exchange'::regnamespace AND p.proname IN ('apply_trade', 'apply_match')
 ORDER BY p.proname;

-- Privileges per profile -------------------------------------------------------------------
CREATE ROLE tap_trades_trader;
CREATE ROLE tap_trades_engine;
CREATE ROLE tap_trades_operator;
CREATE ROLE tap_trades_all;
SELECT exchange.grant_adapter('tap_trades_trader', 'trader');
SELECT exchange.grant_adapter('tap_trades_engine', 'engine');
SELECT exchange.grant_adapter('tap_trades_operator', 'operator');
SELECT exchange.grant_adapter('tap_trades_all', 'all');
SELECT is(has_function_privilege(r.role, p.oid, 'EXECUTE'), r.allowed,
		  format('%s %s execute %s', r.role, CASE WHEN r.allowed THEN 'may' ELSE 'may not' END, p.proname))
  FROM (VALUES
	('tap_trades_trader', 'apply_trade', false), ('tap_trades_trader', 'apply_match', false),
	('tap_trades_engine', 'apply_trade', true), ('tap_trades_engine', 'apply_match', true),
	('tap_trades_operator', 'apply_trade', false), ('tap_trades_operator', 'apply_match', false),
	('tap_trades_all', 'apply_trade', true), ('tap_trades_all', 'apply_match', true)
  ) AS r (role, fn, allowed)
  JOIN pg_proc p ON p.proname = r.fn AND p.pronamespace = 'exchange'::regnamespace
 ORDER BY r.role, r.fn;

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
SELECT is(pg_temp.as_role('tap_trades_trader', format($$SELECT exchange.apply_trade(%L, 0.1, 9)$$, :'buy')),
		  '42501', 'the trader profile cannot apply_trade (42501)');
SELECT is(pg_temp.as_role('tap_trades_trader', format($$SELECT * FROM exchange.apply_match(%L, %L, 0.1, 9.5)$$, :'buy', :'sell')),
		  '42501', 'the trader profile cannot apply_match (42501)');
SELECT is(pg_temp.as_role('tap_trades_operator', format($$SELECT exchange.apply_trade(%L, 0.1, 9)$$, :'buy')),
		  '42501', 'the operator profile cannot apply_trade (42501)');
SELECT is(pg_temp.as_role('tap_trades_engine', format($$SELECT exchange.apply_trade(%L, 0.1, 9)$$, :'buy')),
		  'ok', 'the engine profile applies a trade');
SELECT is(pg_temp.as_role('tap_trades_engine', format($$SELECT * FROM exchange.apply_match(%L, %L, 0.1, 9.5)$$, :'buy', :'sell')),
		  'ok', 'the engine profile applies a match');
SELECT is(pg_temp.as_role('tap_trades_engine', format($$SELECT exchange.place_order(%L, 'TTE-USDT', 'BUY', 'LIMIT', 1, 5)$$, :'buyer')),
		  '42501', 'the engine profile cannot place_order (42501)');
SELECT is(pg_temp.as_role('tap_trades_engine', $$INSERT INTO exchange.trades (order_id, account_id, symbol, side, quantity, price, fee_currency) SELECT order_id, account_id, symbol, side, 1, 1, 'USDT' FROM exchange.orders LIMIT 1$$),
		  '42501', 'the engine profile cannot INSERT into exchange.trades (42501)');
SELECT is_empty('SELECT * FROM exchange.check_invariants()', 'the ledger is sound after the engine''s calls');

SELECT * FROM finish();
ROLLBACK;
