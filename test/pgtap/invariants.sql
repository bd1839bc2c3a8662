-- pgTAP: check_invariants() (README "Invariants").  A sound ledger -- funds, holds, and orders
-- and trades as the next issue's functions will write them (inserted here directly, as a
-- superuser, with their journal rows, events and balances) -- has no violation.  Then one
-- deliberate corruption per clause of README "Invariants", each made by a superuser and rolled
-- back, is reported under that clause's name and no other.  Clauses that a CHECK constraint
-- also guards are corrupted after dropping the constraint (inside the rolled-back corruption).
BEGIN;
CREATE EXTENSION exchange_adapter;

CREATE TEMP TABLE ids (label text PRIMARY KEY, id uuid NOT NULL);
CREATE FUNCTION pg_temp.id(l text) RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT id FROM pg_temp.ids WHERE label = l $$;

-- Accounts: a buyer, a seller, a holder.  Markets INVA-INVQ and INVC-INVQ.
INSERT INTO ids SELECT 'buyer', account_id FROM exchange.create_account('exa_inv_buyer');
INSERT INTO ids SELECT 'seller', account_id FROM exchange.create_account('exa_inv_seller');
INSERT INTO ids SELECT 'holder', account_id FROM exchange.create_account('exa_inv_holder');
DO $$
BEGIN
	PERFORM exchange.create_market('INVA-INVQ', 'INVA', 'INVQ');
	PERFORM exchange.create_market('INVC-INVQ', 'INVC', 'INVQ');
	-- funds through the API
	PERFORM exchange.deposit(pg_temp.id('buyer'), 'INVQ', 100);
	PERFORM exchange.deposit(pg_temp.id('seller'), 'INVA', 5);
	PERFORM exchange.deposit(pg_temp.id('holder'), 'INVQ', 50, 'dep-h');
END
$$;
INSERT INTO ids SELECT 'hold', hold_id FROM exchange.lock_balance(pg_temp.id('holder'), 'INVQ', 10, 'card');
INSERT INTO ids SELECT 'released_hold', hold_id FROM exchange.lock_balance(pg_temp.id('holder'), 'INVQ', 5);
DO $$
BEGIN
	PERFORM exchange.capture_hold(pg_temp.id('hold'), 4, 'cap-h');
	PERFORM exchange.unlock_balance(pg_temp.id('released_hold'));
	PERFORM exchange.withdraw(pg_temp.id('holder'), 'INVQ', 1);
END
$$;

-- Orders and trades as place_order / apply_match / apply_trade leave them: a BUY and a SELL
-- order matched once (1 at 10), and a SELL order filled 0.5 at 10 by an external trade.
INSERT INTO exchange.orders (account_id, symbol, order_type, side, quantity, price, filled_quantity,
							 average_price, status, time_in_force, lock_asset, locked_amount)
VALUES (pg_temp.id('buyer'), 'INVA-INVQ', 'LIMIT', 'BUY', 2, 10, 1, 10, 'PARTIAL', 'GTC', 'INVQ', 10);
INSERT INTO ids SELECT 'buy_order', order_id FROM exchange.orders WHERE account_id = pg_temp.id('buyer');
INSERT INTO exchange.orders (account_id, symbol, order_type, side, quantity, price, filled_quantity,
							 average_price, status, time_in_force, lock_asset, locked_amount, client_order_id)
VALUES (pg_temp.id('seller'), 'INVA-INVQ', 'LIMIT', 'SELL', 2, 10, 1, 10, 'PARTIAL', 'GTC', 'INVA', 1, 'matched'),
	   (pg_temp.id('seller'), 'INVA-INVQ', 'LIMIT', 'SELL', 1, 10, 0.5, 10, 'PARTIAL', 'GTC', 'INVA', 0.5, 'external');
INSERT INTO ids SELECT 'sell_order', order_id FROM exchange.orders WHERE client_order_id = 'matched';
INSERT INTO ids SELECT 'ext_order', order_id FROM exchange.orders WHERE client_order_id = 'external';
INSERT INTO ids VALUES ('match', gen_random_uuid());
INSERT INTO exchange.order_events (order_id, from_status, to_status, filled_delta, actor)
SELECT pg_temp.id(o), e.f, e.t, CASE WHEN e.t = 'PARTIAL' THEN q ELSE 0 END, 'test'
  FROM (VALUES ('buy_order', 1), ('sell_order', 1), ('ext_order', 0.5)) AS x (o, q),
	   (VALUES (NULL, 'OPEN', 1), ('OPEN', 'PARTIAL', 2)) AS e (f, t, k)
 ORDER BY x.o, e.k;
INSERT INTO exchange.trades (order_id, account_id, symbol, side, quantity, price, fee, fee_currency, match_id, liquidity)
VALUES (pg_temp.id('buy_order'), pg_temp.id('buyer'), 'INVA-INVQ', 'BUY', 1, 10, 0, 'INVA', pg_temp.id('match'), 'TAKER'),
	   (pg_temp.id('sell_order'), pg_temp.id('seller'), 'INVA-INVQ', 'SELL', 1, 10, 0, 'INVQ', pg_temp.id('match'), 'MAKER'),
	   (pg_temp.id('ext_order'), pg_temp.id('seller'), 'INVA-INVQ', 'SELL', 0.5, 10, 0, 'INVQ', NULL, NULL);
INSERT INTO ids SELECT 'buy_trade', trade_id FROM exchange.trades WHERE order_id = pg_temp.id('buy_order');
INSERT INTO ids SELECT 'sell_trade', trade_id FROM exchange.trades WHERE order_id = pg_temp.id('sell_order');
INSERT INTO ids SELECT 'ext_trade', trade_id FROM exchange.trades WHERE order_id = pg_temp.id('ext_order');
-- their journal rows: the order locks, then each fill's legs
INSERT INTO exchange.balance_journal (account_id, asset, delta_available, delta_locked, kind, order_id, trade_id, actor)
VALUES (pg_temp.id('buyer'), 'INVQ', -20, 20, 'ORDER_LOCK', pg_temp.id('buy_order'), NULL, 'test'),
	   (pg_temp.id('seller'), 'INVA', -2, 2, 'ORDER_LOCK', pg_temp.id('sell_order'), NULL, 'test'),
	   (pg_temp.id('seller'), 'INVA', -1, 1, 'ORDER_LOCK', pg_temp.id('ext_order'), NULL, 'test'),
	   (pg_temp.id('buyer'), 'INVQ', 0, -10, 'TRADE', pg_temp.id('buy_order'), pg_temp.id('buy_trade'), 'test'),
	   (pg_temp.id('buyer'), 'INVA', 1, 0, 'TRADE', pg_temp.id('buy_order'), pg_temp.id('buy_trade'), 'test'),
	   (pg_temp.id('seller'), 'INVA', 0, -1, 'TRADE', pg_temp.id('sell_order'), pg_temp.id('sell_trade'), 'test'),
	   (pg_temp.id('seller'), 'INVQ', 10, 0, 'TRADE', pg_temp.id('sell_order'), pg_temp.id('sell_trade'), 'test'),
	   (pg_temp.id('seller'), 'INVA', 0, -0.5, 'TRADE', pg_temp.id('ext_order'), pg_temp.id('ext_trade'), 'test'),
	   (pg_temp.id('seller'), 'INVQ', 5, 0, 'TRADE', pg_temp.id('ext_order'), pg_temp.id('ext_trade'), 'test');
-- ... and the balances they add up to
INSERT INTO exchange.balances (account_id, symbol)
SELECT DISTINCT account_id, asset FROM exchange.balance_journal ON CONFLICT DO NOTHING;
UPDATE exchange.balances b SET available_balance = j.a, locked_balance = j.l
  FROM (SELECT account_id, asset, sum(delta_available) AS a, sum(delta_locked) AS l
		  FROM exchange.balance_journal GROUP BY 1, 2) j
 WHERE j.account_id = b.account_id AND j.asset = b.symbol;

-- The clauses check_invariants() reports after a corruption, which is then rolled back.
CREATE FUNCTION pg_temp.violations_after(corruption text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	v text[];
BEGIN
	BEGIN
		EXECUTE corruption;
		SELECT coalesce(array_agg(DISTINCT invariant ORDER BY invariant), '{}') INTO v
		  FROM exchange.check_invariants();
		RAISE EXCEPTION USING ERRCODE = 'ZZ998';
	EXCEPTION WHEN SQLSTATE 'ZZ998' THEN
		RETURN v;
	END;
END
$$;

-- ... and the details it gives.
CREATE FUNCTION pg_temp.details_after(corruption text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	v text[];
BEGIN
	BEGIN
		EXECUTE corruption;
		SELECT coalesce(array_agg(detail ORDER BY detail), '{}') INTO v FROM exchange.check_invariants();
		RAISE EXCEPTION USING ERRCODE = 'ZZ998';
	EXCEPTION WHEN SQLSTATE 'ZZ998' THEN
		RETURN v;
	END;
END
$$;

SELECT plan(28);

SELECT results_eq(
	$$ SELECT account_id::text || ' ' || symbol || ' ' || available_balance || '/' || locked_balance
		 FROM exchange.balances ORDER BY 1 $$,
	$$ SELECT x FROM (VALUES
		 (pg_temp.id('buyer')::text || ' INVA 1.00000000/0.00000000'),
		 (pg_temp.id('buyer')::text || ' INVQ 80.00000000/10.00000000'),
		 (pg_temp.id('seller')::text || ' INVA 2.00000000/1.50000000'),
		 (pg_temp.id('seller')::text || ' INVQ 15.00000000/0.00000000'),
		 (pg_temp.id('holder')::text || ' INVQ 39.00000000/6.00000000')) v (x) ORDER BY 1 $$,
	'the scenario''s balances');
SELECT is_empty('SELECT * FROM exchange.check_invariants()', 'a sound ledger has no violation');

-- 1. locked_balance
SELECT is(pg_temp.violations_after($$ UPDATE exchange.holds SET remaining = remaining - 1 WHERE hold_id = pg_temp.id('hold') $$),
		  '{locked_balance}', 'a hold that shrank without its funds being released: locked_balance');
SELECT is(pg_temp.violations_after($$ UPDATE exchange.orders SET locked_amount = 9 WHERE order_id = pg_temp.id('buy_order') $$),
		  '{locked_balance}', 'an order lock changed without the balance: locked_balance');
SELECT is(pg_temp.details_after($$ UPDATE exchange.holds SET remaining = remaining - 1 WHERE hold_id = pg_temp.id('hold') $$),
		  ARRAY[format('account %s asset INVQ: locked_balance 6.00000000, but live orders and holds lock 5.00000000',
					   pg_temp.id('holder'))],
		  'the detail names the account, the asset and both amounts');
-- journal_balance
SELECT is(pg_temp.violations_after($$ DELETE FROM exchange.balance_journal WHERE kind = 'UNLOCK' $$),
		  '{journal_balance}', 'a journal row lost: journal_balance');
-- 2. asset_conservation
SELECT is(pg_temp.violations_after($$ INSERT INTO exchange.fee_ledger (trade_id, market, asset, amount)
									  VALUES (pg_temp.id('ext_trade'), 'INVA-INVQ', 'INVQ', 0.5) $$),
		  '{asset_conservation}', 'fee revenue that no balance paid: asset_conservation');
SELECT is(pg_temp.violations_after($$ UPDATE exchange.balance_journal SET kind = 'ORDER_RELEASE'
									   WHERE kind = 'DEPOSIT' AND reference = 'dep-h' $$),
		  '{asset_conservation}', 'funds that came from no deposit: asset_conservation');
-- match_netting
SELECT is(pg_temp.violations_after($$ UPDATE exchange.trades SET match_id = gen_random_uuid()
									   WHERE trade_id = pg_temp.id('buy_trade') $$),
		  '{match_netting}', 'a match whose two trades were split apart: match_netting');
SELECT is(pg_temp.violations_after($$
			UPDATE exchange.balance_journal SET delta_available = 11
			 WHERE trade_id = pg_temp.id('sell_trade') AND asset = 'INVQ';
			INSERT INTO exchange.balance_journal (account_id, asset, delta_available, kind, actor)
			VALUES (pg_temp.id('seller'), 'INVQ', -1, 'ORDER_RELEASE', 'test') $$),
		  '{match_netting}', 'a match whose legs do not net to zero: match_netting');
-- 3. filled_quantity
SELECT is(pg_temp.violations_after($$ UPDATE exchange.trades SET quantity = 0.4 WHERE trade_id = pg_temp.id('ext_trade') $$),
		  '{filled_quantity}', 'filled_quantity no longer the sum of the trades: filled_quantity');
SELECT is(pg_temp.violations_after($$
			ALTER TABLE exchange.orders DROP CONSTRAINT orders_row_check;
			INSERT INTO exchange.orders (order_id, account_id, symbol, order_type, side, quantity, price,
										 filled_quantity, status, time_in_force, lock_asset, locked_amount)
			VALUES ('00000000-0000-0000-0000-0000000000f1', pg_temp.id('seller'), 'INVA-INVQ', 'LIMIT', 'SELL',
					2, 10, 3, 'PARTIAL', 'GTC', 'INVA', 0);
			INSERT INTO exchange.order_events (order_id, from_status, to_status, filled_delta, actor)
			VALUES ('00000000-0000-0000-0000-0000000000f1', NULL, 'OPEN', 0, 'test'),
				   ('00000000-0000-0000-0000-0000000000f1', 'OPEN', 'PARTIAL', 3, 'test');
			INSERT INTO exchange.trades (order_id, account_id, symbol, side, quantity, price, fee_currency)
			VALUES ('00000000-0000-0000-0000-0000000000f1', pg_temp.id('seller'), 'INVA-INVQ', 'SELL', 3, 10, 'INVQ') $$),
		  '{filled_quantity}', 'filled above quantity (CHECK dropped): filled_quantity');
SELECT is(pg_temp.violations_after($$
			ALTER TABLE exchange.orders DROP CONSTRAINT orders_row_check;
			INSERT INTO exchange.orders (order_id, account_id, symbol, order_type, side, quantity, price,
										 status, time_in_force, lock_asset, locked_amount)
			VALUES ('00000000-0000-0000-0000-0000000000f2', pg_temp.id('seller'), 'INVA-INVQ', 'LIMIT', 'SELL',
					1, 10, 'CANCELLED', 'GTC', 'INVA', 0.25);
			INSERT INTO exchange.order_events (order_id, from_status, to_status, actor)
			VALUES ('00000000-0000-0000-0000-0000000000f2', NULL, 'OPEN', 'test'),
				   ('00000000-0000-0000-0000-0000000000f2', 'OPEN', 'CANCELLED', 'test') $$),
		  '{terminal_locked}', 'a cancelled order still locking funds (CHECK dropped): terminal_locked');
SELECT is(pg_temp.violations_after($$ ALTER TABLE exchange.trades DROP CONSTRAINT trades_order_fkey;
									   UPDATE exchange.trades SET symbol = 'INVC-INVQ' WHERE trade_id = pg_temp.id('ext_trade') $$),
		  '{trade_order}', 'a trade in another market than its order (FK dropped): trade_order');
SELECT is(pg_temp.violations_after($$ ALTER TABLE exchange.trades DROP CONSTRAINT trades_order_fkey;
									   UPDATE exchange.trades SET side = 'BUY' WHERE trade_id = pg_temp.id('ext_trade') $$),
		  '{trade_order}', 'a trade on the other side than its order (FK dropped): trade_order');
-- foreign_keys: a row of each key the API vouches for (README "Data model") whose referenced row
-- is missing, written after dropping the key; each names the row and what it lacks.
SELECT is(pg_temp.details_after($$
			ALTER TABLE exchange.orders DROP CONSTRAINT orders_account_id_fkey;
			INSERT INTO exchange.orders (order_id, account_id, symbol, order_type, side, quantity, price,
										 status, time_in_force, lock_asset, reject_reason)
			VALUES ('00000000-0000-0000-0000-0000000000f3', '00000000-0000-0000-0000-0000000000a1',
					'INVA-INVQ', 'LIMIT', 'SELL', 1, 10, 'REJECTED', 'GTC', 'INVA', 'MIN_QUANTITY');
			INSERT INTO exchange.order_events (order_id, to_status, actor)
			VALUES ('00000000-0000-0000-0000-0000000000f3', 'REJECTED', 'test') $$),
		  ARRAY['orders 00000000-0000-0000-0000-0000000000f3 references accounts 00000000-0000-0000-0000-0000000000a1, which does not exist'],
		  'an order of no account: foreign_keys');
SELECT is(pg_temp.details_after($$
			ALTER TABLE exchange.orders DROP CONSTRAINT orders_symbol_fkey;
			INSERT INTO exchange.orders (order_id, account_id, symbol, order_type, side, quantity, price,
										 status, time_in_force, lock_asset, reject_reason)
			VALUES ('00000000-0000-0000-0000-0000000000f4', pg_temp.id('seller'),
					'NOPE-INVQ', 'LIMIT', 'SELL', 1, 10, 'REJECTED', 'GTC', 'NOPE', 'MIN_QUANTITY');
			INSERT INTO exchange.order_events (order_id, to_status, actor)
			VALUES ('00000000-0000-0000-0000-0000000000f4', 'REJECTED', 'test') $$),
		  ARRAY['orders 00000000-0000-0000-0000-0000000000f4 references markets NOPE-INVQ, which does not exist'],
		  'an order of no market: foreign_keys');
SELECT is(pg_temp.details_after($$
			ALTER TABLE exchange.trades DROP CONSTRAINT trades_order_fkey;
			INSERT INTO exchange.trades (trade_id, order_id, account_id, symbol, side, quantity, price,
										 fee_currency)
			VALUES ('00000000-0000-0000-0000-0000000000f5', '00000000-0000-0000-0000-0000000000f6',
					pg_temp.id('seller'), 'INVA-INVQ', 'SELL', 0.5, 10, 'INVQ') $$),
		  ARRAY['trades 00000000-0000-0000-0000-0000000000f5 references orders 00000000-0000-0000-0000-0000000000f6, which does not exist'],
		  'a trade of no order: foreign_keys');
SELECT is(pg_temp.details_after($$
			ALTER TABLE exchange.trades DROP CONSTRAINT trades_order_fkey,
				DROP CONSTRAINT trades_symbol_fkey;
			ALTER TABLE exchange.orders DROP CONSTRAINT orders_symbol_fkey,
				DISABLE TRIGGER orders_lifecycle_guard;
			UPDATE exchange.orders SET symbol = 'NOPE-INVQ' WHERE order_id = pg_temp.id('ext_order');
			UPDATE exchange.trades SET symbol = 'NOPE-INVQ' WHERE trade_id = pg_temp.id('ext_trade') $$),
		  ARRAY[format('orders %s references markets NOPE-INVQ, which does not exist', pg_temp.id('ext_order')),
				format('trades %s references markets NOPE-INVQ, which does not exist', pg_temp.id('ext_trade'))],
		  'a trade and its order of no market: foreign_keys');
SELECT matches(array_to_string(pg_temp.details_after($$
			ALTER TABLE exchange.balance_journal DROP CONSTRAINT balance_journal_account_id_fkey;
			INSERT INTO exchange.balance_journal (account_id, asset, delta_available, delta_locked, kind, actor)
			VALUES ('00000000-0000-0000-0000-0000000000a1', 'INVQ', -1, 1, 'LOCK', 'test'),
				   ('00000000-0000-0000-0000-0000000000a1', 'INVQ', 1, -1, 'UNLOCK', 'test') $$), ';'),
		  '^balance_journal [0-9]+ references accounts 00000000-0000-0000-0000-0000000000a1, which does not exist;'
		  'balance_journal [0-9]+ references accounts 00000000-0000-0000-0000-0000000000a1, which does not exist$',
		  'journal rows of no account: foreign_keys');
SELECT matches(array_to_string(pg_temp.details_after($$
			ALTER TABLE exchange.order_events DROP CONSTRAINT order_events_order_id_fkey;
			INSERT INTO exchange.order_events (order_id, to_status, actor)
			VALUES ('00000000-0000-0000-0000-0000000000f7', 'OPEN', 'test') $$), ';'),
		  '^order_events [0-9]+ references orders 00000000-0000-0000-0000-0000000000f7, which does not exist$',
		  'an event of no order: foreign_keys');
-- (the fee is taken from a balance, journalled, so that the ledger still adds up)
SELECT matches(array_to_string(pg_temp.details_after($$
			ALTER TABLE exchange.fee_ledger DROP CONSTRAINT fee_ledger_trade_id_fkey;
			INSERT INTO exchange.fee_ledger (trade_id, market, asset, amount)
			VALUES ('00000000-0000-0000-0000-0000000000f8', 'INVA-INVQ', 'INVQ', 1);
			UPDATE exchange.balances SET available_balance = available_balance - 1
			 WHERE account_id = pg_temp.id('buyer') AND symbol = 'INVQ';
			INSERT INTO exchange.balance_journal (account_id, asset, delta_available, kind, actor)
			VALUES (pg_temp.id('buyer'), 'INVQ', -1, 'LOCK', 'test') $$), ';'),
		  '^fee_ledger [0-9]+ references trades 00000000-0000-0000-0000-0000000000f8, which does not exist$',
		  'a fee of no trade: foreign_keys');
-- closed_account: an account closed while it still holds funds, an order or a hold.
SELECT is(pg_temp.violations_after($$ UPDATE exchange.accounts SET status = 'CLOSED'
									   WHERE account_id = pg_temp.id('holder') $$),
		  '{closed_account}', 'a CLOSED account that still holds funds and a hold: closed_account');
-- 4. event_replay
SELECT is(pg_temp.violations_after($$ DELETE FROM exchange.order_events
									   WHERE order_id = pg_temp.id('ext_order') AND to_status = 'PARTIAL' $$),
		  '{event_replay}', 'an order whose fill event is lost: event_replay');
SELECT is(pg_temp.violations_after($$ INSERT INTO exchange.order_events (order_id, from_status, to_status, actor)
									   VALUES (pg_temp.id('ext_order'), 'PARTIAL', 'OPEN', 'test') $$),
		  '{event_replay}', 'an event outside the lifecycle table: event_replay');
-- 5. the matching engine (README "Matching engine")
SELECT is(pg_temp.violations_after($$ UPDATE exchange.markets SET matching = 'INTERNAL'
									   WHERE symbol = 'INVA-INVQ' $$),
		  '{book_crossed}', 'an INTERNAL market whose bid 10 meets its ask 10: book_crossed');
SELECT is(pg_temp.violations_after($$ UPDATE exchange.markets SET trade_seq = 3
									   WHERE symbol = 'INVA-INVQ' $$),
		  '{trade_seq}', 'a trade_seq no trade carries: trade_seq');

SELECT is_empty('SELECT * FROM exchange.check_invariants()', 'every corruption was rolled back: the ledger is sound again');

SELECT * FROM finish();
ROLLBACK;
