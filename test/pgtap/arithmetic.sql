-- pgTAP: the arithmetic and input rules of README "Order lifecycle and arithmetic" and "SQL API"
-- at their edges:
--   * average_price is round_half_even8(filled_value / filled_quantity) at every magnitude (at
--     2e12 and more too, where numeric division keeps fewer than 8 decimals);
--   * a deposit (or any balance move) that would take a balance beyond numeric(24,8) is 22003
--     naming the account and the asset, and changes nothing; a fill's credit is checked before
--     its fee in the same asset is taken;
--   * a fill whose notional trunc8(q x p) is 0 is refused (22023) on either side, apply_trade
--     and apply_match, and writes nothing;
--   * a fill's price is a multiple of the market's tick_size and its quantity of its lot_size
--     (22023), as place_order's TICK_SIZE and LOT_SIZE refusals;
--   * set_kyc_status on a CLOSED account is LX004;
--   * a capture_hold retry (same reference, amount NULL or the same amount) returns the hold as
--     the first call left it, whatever happened to the hold since, and writes nothing.
-- Runs in one transaction that is rolled back (scripts/test.sh runs each file in database
-- `pgtap`, which has the pgtap extension).
BEGIN;
CREATE EXTENSION exchange_adapter;

SELECT plan(48);

CREATE TEMP TABLE ids (label text PRIMARY KEY, id uuid NOT NULL);
CREATE FUNCTION pg_temp.id(l text) RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT id FROM pg_temp.ids WHERE label = l $$;
CREATE FUNCTION pg_temp.trader(l text) RETURNS uuid LANGUAGE sql AS $$
	INSERT INTO pg_temp.ids SELECT l, account_id FROM exchange.create_account('tap_arith_' || l);
	SELECT kyc_status FROM exchange.set_kyc_status(pg_temp.id(l), 'APPROVED');
	SELECT pg_temp.id(l);
$$;
-- What a refused call must leave as it was.
CREATE FUNCTION pg_temp.ledger() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT concat_ws(' | ',
		(SELECT count(*) FROM exchange.trades), (SELECT count(*) FROM exchange.balance_journal),
		(SELECT count(*) FROM exchange.order_events), (SELECT count(*) FROM exchange.outbox),
		(SELECT string_agg(format('%s %s %s %s', order_id, status, filled_quantity, locked_amount), ','
						   ORDER BY order_id) FROM exchange.orders),
		(SELECT string_agg(format('%s %s %s/%s', account_id, symbol, available_balance, locked_balance), ','
						   ORDER BY account_id, symbol) FROM exchange.balances),
		(SELECT string_agg(format('%s %s/%s', hold_id, remaining, captured), ',' ORDER BY hold_id)
		   FROM exchange.holds))
$$;

-- 1. average_price at 2e12 and beyond ------------------------------------------------------------
SELECT symbol FROM exchange.create_market('BIGA-USDT', 'BIGA', 'USDT') \gset
SELECT pg_temp.trader('whale') \gset
SELECT pg_temp.trader('seller') \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('whale'), 'USDT', 9000000000000000) \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('seller'), 'BIGA', 1000) \gset
INSERT INTO ids SELECT 'big1', order_id
  FROM exchange.place_order(pg_temp.id('whale'), 'BIGA-USDT', 'BUY', 'LIMIT', 1, 2000000000000.12345678);
SELECT quantity FROM exchange.apply_trade(pg_temp.id('big1'), 1, 2000000000000.12345678) \gset
SELECT is((SELECT average_price FROM exchange.orders WHERE order_id = pg_temp.id('big1')),
		  2000000000000.12345678::numeric,
		  'average_price of one fill at 2000000000000.12345678 is that price, all 8 decimals');
-- Two fills whose mean has a 9th decimal 5: half-even rounds ...0.000000015 up to ...02 and
-- ...0.000000025 down to ...02.
INSERT INTO ids SELECT 'big2', order_id
  FROM exchange.place_order(pg_temp.id('whale'), 'BIGA-USDT', 'BUY', 'LIMIT', 2, 3000000000000);
SELECT quantity FROM exchange.apply_trade(pg_temp.id('big2'), 1, 2999999999999.00000001) \gset
SELECT quantity FROM exchange.apply_trade(pg_temp.id('big2'), 1, 2999999999999.00000002) \gset
SELECT is((SELECT average_price FROM exchange.orders WHERE order_id = pg_temp.id('big2')),
		  2999999999999.00000002::numeric,
		  'average_price ...0.000000015 rounds half-even to ...0.00000002');
INSERT INTO ids SELECT 'big3', order_id
  FROM exchange.place_order(pg_temp.id('whale'), 'BIGA-USDT', 'BUY', 'LIMIT', 2, 3000000000000);
SELECT quantity FROM exchange.apply_trade(pg_temp.id('big3'), 1, 2999999999999.00000002) \gset
SELECT quantity FROM exchange.apply_trade(pg_temp.id('big3'), 1, 2999999999999.00000003) \gset
SELECT is((SELECT average_price FROM exchange.orders WHERE order_id = pg_temp.id('big3')),
		  2999999999999.00000002::numeric,
		  'average_price ...0.000000025 rounds half-even to ...0.00000002');
-- The same through apply_match, on both legs (average_price of the SELL too).
INSERT INTO ids SELECT 'big_buy', order_id
  FROM exchange.place_order(pg_temp.id('whale'), 'BIGA-USDT', 'BUY', 'LIMIT', 3, 2500000000000);
INSERT INTO ids SELECT 'big_sell', order_id
  FROM exchange.place_order(pg_temp.id('seller'), 'BIGA-USDT', 'SELL', 'LIMIT', 3, 2000000000000);
SELECT count(*) FROM exchange.apply_match(pg_temp.id('big_buy'), pg_temp.id('big_sell'), 1, 2222222222222.22222222, maker => 'SELL') \gset
SELECT count(*) FROM exchange.apply_match(pg_temp.id('big_buy'), pg_temp.id('big_sell'), 2, 2222222222222.22222223, maker => 'SELL') \gset
SELECT is((SELECT array_agg(average_price ORDER BY side) FROM exchange.orders
			WHERE order_id IN (pg_temp.id('big_buy'), pg_temp.id('big_sell'))),
		  ARRAY[2222222222222.22222223, 2222222222222.22222223]::numeric[],
		  'apply_match: average_price of both legs is round_half_even8 (…0.222222226666… → …0.22222223)');
SELECT is((SELECT array_agg(average_price = round(filled_value / filled_quantity, 8))
			 FROM exchange.orders
			WHERE order_id IN (pg_temp.id('big1'), pg_temp.id('big2'), pg_temp.id('big_buy'), pg_temp.id('big_sell'))),
		  ARRAY[true, true, true, true],
		  'where half-even and half-up agree, average_price equals round(filled_value / filled_quantity, 8) in SQL');

-- 2. A balance beyond numeric(24,8) is a clean 22003 ---------------------------------------------
SELECT pg_temp.trader('rich') \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('rich'), 'OVF', 9999999999999999.99999999) \gset
CREATE TEMP TABLE before_ovf AS SELECT pg_temp.ledger() AS l;
SELECT throws_ok(format($$SELECT exchange.deposit(%L, 'OVF', 0.00000001)$$, pg_temp.id('rich')),
	'22003', format('balance of account %s in asset OVF would be out of range', pg_temp.id('rich')),
	'a deposit that takes available beyond numeric(24,8) is 22003 naming the account and the asset');
SELECT throws_ok(format($$SELECT exchange.deposit(%L, 'OVF', 1, 'ovf-ref')$$, pg_temp.id('rich')),
	'22003', format('balance of account %s in asset OVF would be out of range', pg_temp.id('rich')),
	'... with a reference too');
-- total_balance = available + locked is numeric(24,8) as well: a lock keeps the total, a deposit
-- on top of locked funds overflows the total.
SELECT hold_id FROM exchange.lock_balance(pg_temp.id('rich'), 'OVF', 5000000000000000) \gset
DELETE FROM before_ovf;
INSERT INTO before_ovf SELECT pg_temp.ledger();
SELECT throws_ok(format($$SELECT exchange.deposit(%L, 'OVF', 0.00000001)$$, pg_temp.id('rich')),
	'22003', format('balance of account %s in asset OVF would be out of range', pg_temp.id('rich')),
	'a deposit that takes available + locked beyond numeric(24,8) is 22003');
SELECT is(pg_temp.ledger(), (SELECT l FROM before_ovf), 'the refused deposits changed nothing');
SELECT lives_ok(format($$SELECT exchange.deposit(%L, 'OVF2', 9999999999999999.99999999)$$, pg_temp.id('rich')),
	'the largest numeric(24,8) amount is still a valid deposit');
-- A fill credits its proceeds, then takes a fee in the received asset from them: two moves in
-- sequence (README "Order lifecycle and arithmetic", fee), each checked.  A credit that would
-- take the balance beyond numeric(24,8) is 22003 even when the credit less the fee would not,
-- and the error describes the credit; the same fill one unit lower goes through.
SELECT symbol FROM exchange.create_market('OVX-OVQ', 'OVX', 'OVQ') \gset
SELECT pg_temp.trader('rich_seller') \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('rich_seller'), 'OVX', 10) \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('rich_seller'), 'OVQ', 9999999999999999) \gset
INSERT INTO ids SELECT 'ovf_sell', order_id
  FROM exchange.place_order(pg_temp.id('rich_seller'), 'OVX-OVQ', 'SELL', 'LIMIT', 2, 2);
DELETE FROM before_ovf;
INSERT INTO before_ovf SELECT pg_temp.ledger();
CREATE FUNCTION pg_temp.fill_error(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
	v_detail text;
BEGIN
	EXECUTE p_sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_detail = PG_EXCEPTION_DETAIL;
	RETURN v_state || ': ' || v_detail;
END
$$;
SELECT is(pg_temp.fill_error(format($$SELECT exchange.apply_trade(%L, 1, 2, 1.5, 'OVQ')$$, pg_temp.id('ovf_sell'))),
	'22003: Available balance is 9999999999999999.00000000 and locked balance 0.00000000; the change is 2.00000000 available and 0 locked. Balances are numeric(24,8), below 1e16.',
	'apply_trade: proceeds of 2 on 9999999999999999 are 22003 describing the credit, though the fee of 1.5 would bring the net under 1e16');
SELECT is(pg_temp.ledger(), (SELECT l FROM before_ovf), 'the refused fill changed nothing');
SELECT symbol FROM exchange.withdraw(pg_temp.id('rich_seller'), 'OVQ', 2) \gset
SELECT lives_ok(format($$SELECT exchange.apply_trade(%L, 1, 2, 1.5, 'OVQ')$$, pg_temp.id('ovf_sell')),
	'the same fill on 9999999999999997 goes through: its proceeds take the balance to 9999999999999999');
SELECT is((SELECT available_balance FROM exchange.balances
			WHERE account_id = pg_temp.id('rich_seller') AND symbol = 'OVQ'),
		  9999999999999997.50000000::numeric, 'it credited 2 and took the fee of 1.5');

-- 3. A fill whose notional truncates to 0 is refused ----------------------------------------------
SELECT symbol FROM exchange.create_market('DUST-USDT', 'DUST', 'USDT') \gset
SELECT pg_temp.trader('dust_buyer') \gset
SELECT pg_temp.trader('dust_seller') \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('dust_buyer'), 'USDT', 1) \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('dust_seller'), 'DUST', 10) \gset
INSERT INTO ids SELECT 'dust_buy', order_id
  FROM exchange.place_order(pg_temp.id('dust_buyer'), 'DUST-USDT', 'BUY', 'LIMIT', 1, 0.00000003);
INSERT INTO ids SELECT 'dust_sell', order_id
  FROM exchange.place_order(pg_temp.id('dust_seller'), 'DUST-USDT', 'SELL', 'LIMIT', 1, 0.00000003);
CREATE TEMP TABLE before_dust AS SELECT pg_temp.ledger() AS l;
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 0.00000003)$$, pg_temp.id('dust_buy')),
	'22023', 'fill of 0.10000000 at 0.00000003 has no value',
	'apply_trade: BUY 0.1 at 0.00000003 (notional trunc8(0.000000003) = 0) is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.1, 0.00000003)$$, pg_temp.id('dust_sell')),
	'22023', 'fill of 0.10000000 at 0.00000003 has no value',
	'apply_trade: SELL 0.1 at 0.00000003 is 22023 too (the seller would give it away)');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.1, 0.00000003)$$,
						pg_temp.id('dust_buy'), pg_temp.id('dust_sell')),
	'22023', 'fill of 0.10000000 at 0.00000003 has no value',
	'apply_match: a match of 0.1 at 0.00000003 is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 0.33333333, 0.00000003)$$, pg_temp.id('dust_buy')),
	'22023', 'fill of 0.33333333 at 0.00000003 has no value',
	'apply_trade: notional 0.0000000099999999 truncates to 0: 22023');
SELECT is(pg_temp.ledger(), (SELECT l FROM before_dust), 'the refused dust fills changed nothing');
SELECT is((SELECT quantity FROM exchange.apply_trade(pg_temp.id('dust_buy'), 0.33333334, 0.00000003)),
	0.33333334::numeric, 'a fill of notional 0.00000001 (0.33333334 at 0.00000003) is accepted');
SELECT is((SELECT count(*) FROM exchange.apply_match(pg_temp.id('dust_buy'), pg_temp.id('dust_sell'), 0.66666666, 0.00000003)),
	2::bigint, 'a match of notional 0.00000001 is accepted');
SELECT is((SELECT array_agg(status || ' ' || locked_amount ORDER BY side) FROM exchange.orders
			WHERE order_id IN (pg_temp.id('dust_buy'), pg_temp.id('dust_sell'))),
		  ARRAY['FILLED 0.00000000', 'PARTIAL 0.33333334'],
		  'the dust orders: the BUY filled and unlocked, the SELL keeps its remaining quantity locked');

-- 4. Tick and lot ---------------------------------------------------------------------------------
SELECT symbol FROM exchange.create_market('TICK-USDT', 'TICK', 'USDT', 0.05, 0.01) \gset
SELECT pg_temp.trader('tick_buyer') \gset
SELECT pg_temp.trader('tick_seller') \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('tick_buyer'), 'USDT', 1000) \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('tick_seller'), 'TICK', 100) \gset
INSERT INTO ids SELECT 'tick_buy', order_id
  FROM exchange.place_order(pg_temp.id('tick_buyer'), 'TICK-USDT', 'BUY', 'LIMIT', 10, 10);
INSERT INTO ids SELECT 'tick_sell', order_id
  FROM exchange.place_order(pg_temp.id('tick_seller'), 'TICK-USDT', 'SELL', 'LIMIT', 10, 9);
-- place_order's own rule, for comparison: a price off the tick is stored REJECTED TICK_SIZE.
SELECT is((SELECT reject_reason FROM exchange.place_order(pg_temp.id('tick_buyer'), 'TICK-USDT', 'BUY', 'LIMIT', 1, 9.99)),
	'TICK_SIZE', 'place_order at 9.99 on tick 0.05 is REJECTED TICK_SIZE');
CREATE TEMP TABLE before_tick AS SELECT pg_temp.ledger() AS l;
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1, 9.99)$$, pg_temp.id('tick_buy')),
	'22023', 'fill price 9.99000000 is not a multiple of the tick size of market TICK-USDT',
	'apply_trade at a price off the tick (9.99, tick 0.05) is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1, 9.00000001)$$, pg_temp.id('tick_sell')),
	'22023', 'fill price 9.00000001 is not a multiple of the tick size of market TICK-USDT',
	'apply_trade on the SELL at 9.00000001 is 22023');
SELECT throws_ok(format($$SELECT exchange.apply_trade(%L, 1.005, 9.95)$$, pg_temp.id('tick_buy')),
	'22023', 'fill quantity 1.00500000 is not a multiple of the lot size of market TICK-USDT',
	'apply_trade of a quantity off the lot (1.005, lot 0.01) is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 1, 9.52)$$,
						pg_temp.id('tick_buy'), pg_temp.id('tick_sell')),
	'22023', 'fill price 9.52000000 is not a multiple of the tick size of market TICK-USDT',
	'apply_match at a price off the tick is 22023');
SELECT throws_ok(format($$SELECT * FROM exchange.apply_match(%L, %L, 0.001, 9.5)$$,
						pg_temp.id('tick_buy'), pg_temp.id('tick_sell')),
	'22023', 'fill quantity 0.00100000 is not a multiple of the lot size of market TICK-USDT',
	'apply_match of a quantity off the lot is 22023');
SELECT is(pg_temp.ledger(), (SELECT l FROM before_tick), 'the refused fills changed nothing');
SELECT is((SELECT quantity FROM exchange.apply_trade(pg_temp.id('tick_buy'), 1.01, 9.95)),
	1.01::numeric, 'apply_trade of 1.01 at 9.95 (on the lot and the tick) is accepted');
SELECT is((SELECT count(*) FROM exchange.apply_match(pg_temp.id('tick_buy'), pg_temp.id('tick_sell'), 2.5, 9.5)),
	2::bigint, 'apply_match of 2.5 at 9.5 is accepted');
SELECT is((SELECT count(*) FROM exchange.apply_match(pg_temp.id('tick_buy'), pg_temp.id('tick_sell'), 6.49, 10)),
	2::bigint, 'a fill at the limit price itself (10, a multiple of the tick) is accepted');

-- 5. set_kyc_status on a CLOSED account is LX004 --------------------------------------------------
INSERT INTO ids SELECT 'closed', account_id FROM exchange.create_account('tap_arith_closed');
SELECT status FROM exchange.set_account_status(pg_temp.id('closed'), 'CLOSED') \gset
CREATE TEMP TABLE before_kyc AS
	SELECT kyc_status, updated_at, (SELECT count(*) FROM exchange.outbox) AS outbox
	  FROM exchange.accounts WHERE account_id = pg_temp.id('closed');
SELECT throws_ok(format($$SELECT exchange.set_kyc_status(%L, 'APPROVED')$$, pg_temp.id('closed')),
	'LX004', format('account %s is not active', pg_temp.id('closed')),
	'set_kyc_status PENDING -> APPROVED on a CLOSED account is LX004');
SELECT throws_ok(format($$SELECT exchange.set_kyc_status(%L, 'REJECTED')$$, pg_temp.id('closed')),
	'LX004', NULL, 'set_kyc_status PENDING -> REJECTED on a CLOSED account is LX004');
SELECT throws_ok(format($$SELECT exchange.set_kyc_status(%L, 'PENDING')$$, pg_temp.id('closed')),
	'LX004', NULL, 'set_kyc_status to its current value on a CLOSED account is LX004 as well');
SELECT is((SELECT ROW(kyc_status, updated_at, (SELECT count(*) FROM exchange.outbox))::text
			 FROM exchange.accounts WHERE account_id = pg_temp.id('closed')),
		  (SELECT ROW(kyc_status, updated_at, outbox)::text FROM before_kyc),
		  'the CLOSED account is unchanged and no outbox row was written');
SELECT pg_temp.trader('suspended') \gset
SELECT status FROM exchange.set_account_status(pg_temp.id('suspended'), 'SUSPENDED') \gset
SELECT is((SELECT kyc_status::text FROM exchange.set_kyc_status(pg_temp.id('suspended'), 'REJECTED')),
	'REJECTED', 'set_kyc_status on a SUSPENDED account is still allowed');

-- 6. capture_hold retries return what the first call returned -----------------------------------
SELECT pg_temp.trader('payer') \gset
SELECT symbol FROM exchange.deposit(pg_temp.id('payer'), 'EUR', 100) \gset
INSERT INTO ids SELECT 'hold', hold_id FROM exchange.lock_balance(pg_temp.id('payer'), 'EUR', 100);
CREATE TEMP TABLE first_capture AS
	SELECT * FROM exchange.capture_hold(pg_temp.id('hold'), 40, 'cap-40');
SELECT is((SELECT remaining || '/' || captured || '/' || (released_at IS NULL) FROM first_capture),
	'60.00000000/40.00000000/true', 'the first capture of 40 leaves 60 remaining, 40 captured');
SELECT is((SELECT row(h.*)::text FROM exchange.capture_hold(pg_temp.id('hold'), 40, 'cap-40') h),
		  (SELECT row(f.*)::text FROM first_capture f),
		  'an immediate retry with the same amount returns the same row');
-- Later calls change the hold: a capture of 10 with another reference, a release of 5.
SELECT remaining FROM exchange.capture_hold(pg_temp.id('hold'), 10, 'cap-10') \gset
SELECT remaining FROM exchange.unlock_balance(pg_temp.id('hold'), 5) \gset
CREATE TEMP TABLE before_retry AS SELECT pg_temp.ledger() AS l;
SELECT is((SELECT row(h.*)::text FROM exchange.capture_hold(pg_temp.id('hold'), NULL, 'cap-40') h),
		  (SELECT row(f.*)::text FROM first_capture f),
		  'a retry with amount NULL after later changes returns what the first call returned');
SELECT is((SELECT row(h.*)::text FROM exchange.capture_hold(pg_temp.id('hold'), 40, 'cap-40') h),
		  (SELECT row(f.*)::text FROM first_capture f),
		  'a retry with the same amount after later changes returns what the first call returned');
SELECT throws_ok(format($$SELECT exchange.capture_hold(%L, 45, 'cap-40')$$, pg_temp.id('hold')),
	'LX009', NULL, 'a retry with another amount is LX009');
SELECT is(pg_temp.ledger(), (SELECT l FROM before_retry), 'the retries wrote nothing');
-- Capture the rest (45) with amount NULL: the hold is finished; its retry says so, and cap-10
-- still answers 50 remaining, 50 captured.
CREATE TEMP TABLE last_capture AS
	SELECT * FROM exchange.capture_hold(pg_temp.id('hold'), NULL, 'cap-rest');
SELECT is((SELECT remaining || '/' || captured || '/' || (released_at IS NOT NULL) FROM last_capture),
	'0.00000000/95.00000000/true', 'capturing all that remains finishes the hold');
SELECT is((SELECT row(h.*)::text FROM exchange.capture_hold(pg_temp.id('hold'), NULL, 'cap-rest') h),
		  (SELECT row(f.*)::text FROM last_capture f),
		  'the retry of the finishing capture returns the finished hold, released_at included');
SELECT is((SELECT remaining || '/' || captured || '/' || (released_at IS NULL)
			 FROM exchange.capture_hold(pg_temp.id('hold'), NULL, 'cap-10')),
	'50.00000000/50.00000000/true', 'the retry of the capture of 10 returns the hold as it left it');
SELECT is((SELECT row(h.*)::text FROM exchange.capture_hold(pg_temp.id('hold'), NULL, 'cap-40') h),
		  (SELECT row(f.*)::text FROM first_capture f),
		  'and the first capture''s retry still returns its own row');

SELECT is_empty('SELECT * FROM exchange.check_invariants()', 'the ledger is sound');

SELECT * FROM finish();
ROLLBACK;
