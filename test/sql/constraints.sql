-- Constraints: every CHECK, FOREIGN KEY, UNIQUE and NOT NULL of the data model (README "Data
-- model") refuses what it should, whoever writes.  Written as a superuser with direct INSERTs
-- and UPDATEs, the way no application role can (they have no INSERT/UPDATE privilege): each
-- case inserts a copy of a valid row with one thing wrong.  Every case runs in a rolled-back
-- subtransaction (pg_temp.fails); the valid rows it copies are deleted at the end.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

-- The valid rows: two accounts, two markets, a PARTIAL order of Ann with one trade.
SELECT pg_temp.label(account_id, 'ann') FROM exchange.create_account('exa_constraints_ann');
SELECT pg_temp.label(account_id, 'ben') FROM exchange.create_account('exa_constraints_ben');
SELECT symbol FROM exchange.create_market('CNST-CUSD', 'CNST', 'CUSD');
SELECT symbol FROM exchange.create_market('CNSV-CUSD', 'CNSV', 'CUSD');
INSERT INTO exchange.orders (account_id, symbol, order_type, side, quantity, price, filled_quantity,
							 status, time_in_force, lock_asset, locked_amount, client_order_id)
VALUES (pg_temp.id('ann'), 'CNST-CUSD', 'LIMIT', 'BUY', 2, 10, 1, 'PARTIAL', 'GTC', 'CUSD', 0, 'cl-1')
RETURNING pg_temp.label(order_id, 'ann_order');
INSERT INTO exchange.trades (order_id, account_id, symbol, side, quantity, price, fee_currency, trade_ref)
VALUES (pg_temp.id('ann_order'), pg_temp.id('ann'), 'CNST-CUSD', 'BUY', 1, 10, 'CNST', 'fill-1')
RETURNING pg_temp.label(trade_id, 'ann_trade');

-- pg_temp.variant(table, changes): inserts the table's base row (below) with the changes.
CREATE TEMP TABLE base_rows (tbl text PRIMARY KEY, base jsonb NOT NULL);
INSERT INTO base_rows VALUES
	('accounts', jsonb_build_object('user_id', 'exa_constraints_new', 'account_type', 'SPOT',
		'status', 'ACTIVE', 'kyc_status', 'PENDING', 'metadata', '{}'::jsonb)),
	('markets', jsonb_build_object('symbol', 'CNSU-CUSD', 'base_asset', 'CNSU', 'quote_asset', 'CUSD',
		'tick_size', 0.01, 'lot_size', 0.001, 'min_quantity', 0, 'min_notional', 0,
		'maker_fee_rate', 0.001, 'taker_fee_rate', 0.002, 'status', 'ACTIVE', 'metadata', '{}'::jsonb)),
	('orders', jsonb_build_object('account_id', pg_temp.id('ann'), 'symbol', 'CNST-CUSD',
		'order_type', 'LIMIT', 'side', 'BUY', 'quantity', 2, 'price', 10, 'filled_quantity', 0,
		'status', 'OPEN', 'time_in_force', 'GTC', 'lock_asset', 'CUSD', 'locked_amount', 20,
		'metadata', '{}'::jsonb)),
	('trades', jsonb_build_object('order_id', pg_temp.id('ann_order'), 'account_id', pg_temp.id('ann'),
		'symbol', 'CNST-CUSD', 'side', 'BUY', 'quantity', 0.5, 'price', 10, 'fee', 0.01,
		'fee_currency', 'CUSD', 'liquidity', 'TAKER', 'metadata', '{}'::jsonb)),
	('balances', jsonb_build_object('account_id', pg_temp.id('ben'), 'symbol', 'CUSD',
		'available_balance', 1, 'locked_balance', 0, 'metadata', '{}'::jsonb)),
	('holds', jsonb_build_object('account_id', pg_temp.id('ann'), 'asset', 'CUSD', 'amount', 5,
		'remaining', 5, 'captured', 0)),
	('balance_journal', jsonb_build_object('account_id', pg_temp.id('ann'), 'asset', 'CUSD',
		'delta_available', 1, 'delta_locked', 0, 'kind', 'DEPOSIT', 'actor', 'test')),
	('order_events', jsonb_build_object('order_id', pg_temp.id('ann_order'), 'from_status', 'OPEN',
		'to_status', 'PARTIAL', 'filled_delta', 1, 'actor', 'test')),
	('fee_ledger', jsonb_build_object('trade_id', pg_temp.id('ann_trade'), 'market', 'CNST-CUSD',
		'asset', 'CUSD', 'amount', 0.01)),
	('outbox', jsonb_build_object('xid', '1', 'kind', 'cache', 'keys', '{cache:x}')),
	('services', jsonb_build_object('service_id', 'svc-1', 'service_name', 'matcher',
		'address', '127.0.0.1', 'port', 8080, 'ttl', '90 seconds'));

CREATE FUNCTION pg_temp.variant(p_tbl text, p_changes jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r jsonb := (SELECT base FROM pg_temp.base_rows WHERE tbl = p_tbl) || p_changes;
	cols text;
BEGIN
	SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(r) AS k;
	EXECUTE format('INSERT INTO exchange.%I (%s) SELECT %s FROM jsonb_populate_record(NULL::exchange.%I, $1)',
				   p_tbl, cols, cols, p_tbl) USING r;
END
$$;

CREATE TEMP TABLE cases (n serial, tbl text, bad_input text, stmt text);
INSERT INTO cases (tbl, bad_input, stmt) VALUES
	-- accounts
	('accounts', '(valid row)', $$SELECT pg_temp.variant('accounts')$$),
	('accounts', 'user_id NULL', $$SELECT pg_temp.variant('accounts', '{"user_id": null}')$$),
	('accounts', 'user_id empty', $$SELECT pg_temp.variant('accounts', '{"user_id": ""}')$$),
	('accounts', 'user_id of 256 characters', format($$SELECT pg_temp.variant('accounts', '{"user_id": "%s"}')$$, repeat('u', 256))),
	('accounts', 'account_type lower case', $$SELECT pg_temp.variant('accounts', '{"account_type": "spot"}')$$),
	('accounts', 'account_type unknown', $$SELECT pg_temp.variant('accounts', '{"account_type": "SAVINGS"}')$$),
	('accounts', 'status unknown', $$SELECT pg_temp.variant('accounts', '{"status": "DELETED"}')$$),
	('accounts', 'kyc_status unknown', $$SELECT pg_temp.variant('accounts', '{"kyc_status": "VERIFIED"}')$$),
	('accounts', 'metadata NULL', $$SELECT pg_temp.variant('accounts', '{"metadata": null}')$$),
	('accounts', 'metadata an array', $$SELECT pg_temp.variant('accounts', '{"metadata": []}')$$),
	('accounts', 'a second account of the same type', $$SELECT pg_temp.variant('accounts', '{"user_id": "exa_constraints_ann"}')$$),
	('accounts', 'account_id taken', format($$SELECT pg_temp.variant('accounts', '{"account_id": "%s"}')$$, pg_temp.id('ann'))),
	-- markets
	('markets', '(valid row)', $$SELECT pg_temp.variant('markets')$$),
	('markets', 'symbol taken', $$SELECT pg_temp.variant('markets', '{"symbol": "CNST-CUSD", "base_asset": "CNST"}')$$),
	('markets', 'symbol not BASE-QUOTE', $$SELECT pg_temp.variant('markets', '{"symbol": "CNSUCUSD"}')$$),
	('markets', 'base_asset lower case', $$SELECT pg_temp.variant('markets', '{"symbol": "cnsu-CUSD", "base_asset": "cnsu"}')$$),
	('markets', 'quote_asset with punctuation', $$SELECT pg_temp.variant('markets', '{"symbol": "CNSU-C.USD", "quote_asset": "C.USD"}')$$),
	('markets', 'base_asset = quote_asset', $$SELECT pg_temp.variant('markets', '{"symbol": "CUSD-CUSD", "base_asset": "CUSD"}')$$),
	('markets', 'tick_size 0', $$SELECT pg_temp.variant('markets', '{"tick_size": 0}')$$),
	('markets', 'tick_size below 1e-8 (rounds to 0)', $$SELECT pg_temp.variant('markets', '{"tick_size": 0.000000001}')$$),
	('markets', 'lot_size negative', $$SELECT pg_temp.variant('markets', '{"lot_size": -0.001}')$$),
	('markets', 'min_quantity negative', $$SELECT pg_temp.variant('markets', '{"min_quantity": -1}')$$),
	('markets', 'min_notional negative', $$SELECT pg_temp.variant('markets', '{"min_notional": -1}')$$),
	('markets', 'maker_fee_rate above 0.1', $$SELECT pg_temp.variant('markets', '{"maker_fee_rate": 0.10000001}')$$),
	('markets', 'taker_fee_rate negative', $$SELECT pg_temp.variant('markets', '{"taker_fee_rate": -0.001}')$$),
	('markets', 'status unknown', $$SELECT pg_temp.variant('markets', '{"status": "CLOSED"}')$$),
	('markets', 'metadata a number', $$SELECT pg_temp.variant('markets', '{"metadata": 1}')$$),
	('markets', 'tick_size beyond numeric(24,8)', $$SELECT pg_temp.variant('markets', '{"tick_size": 1e16}')$$),
	-- orders
	('orders', '(valid row)', $$SELECT pg_temp.variant('orders')$$),
	('orders', 'account unknown', $$SELECT pg_temp.variant('orders', '{"account_id": "00000000-0000-0000-0000-000000000000"}')$$),
	('orders', 'market unknown', $$SELECT pg_temp.variant('orders', '{"symbol": "NONE-CUSD"}')$$),
	('orders', 'order_type unknown', $$SELECT pg_temp.variant('orders', '{"order_type": "ICEBERG"}')$$),
	('orders', 'side unknown', $$SELECT pg_temp.variant('orders', '{"side": "HOLD"}')$$),
	('orders', 'status unknown', $$SELECT pg_temp.variant('orders', '{"status": "ACTIVE"}')$$),
	('orders', 'status lower case', $$SELECT pg_temp.variant('orders', '{"status": "open"}')$$),
	('orders', 'time_in_force unknown', $$SELECT pg_temp.variant('orders', '{"time_in_force": "DAY"}')$$),
	('orders', 'time_in_force NULL', $$SELECT pg_temp.variant('orders', '{"time_in_force": null}')$$),
	('orders', 'quantity 0', $$SELECT pg_temp.variant('orders', '{"quantity": 0, "status": "FILLED", "locked_amount": 0}')$$),
	('orders', 'quantity negative', $$SELECT pg_temp.variant('orders', '{"quantity": -2}')$$),
	('orders', 'price 0', $$SELECT pg_temp.variant('orders', '{"price": 0}')$$),
	('orders', 'average_price negative', $$SELECT pg_temp.variant('orders', '{"average_price": -10}')$$),
	('orders', 'filled_quantity negative', $$SELECT pg_temp.variant('orders', '{"filled_quantity": -1}')$$),
	('orders', 'filled_quantity above quantity', $$SELECT pg_temp.variant('orders', '{"filled_quantity": 2.00000001, "status": "PARTIAL"}')$$),
	('orders', 'FILLED below quantity', $$SELECT pg_temp.variant('orders', '{"filled_quantity": 1, "status": "FILLED", "locked_amount": 0}')$$),
	('orders', 'fully filled but OPEN', $$SELECT pg_temp.variant('orders', '{"filled_quantity": 2, "locked_amount": 0}')$$),
	('orders', 'locked_amount negative', $$SELECT pg_temp.variant('orders', '{"locked_amount": -1}')$$),
	('orders', 'terminal order still locking', $$SELECT pg_temp.variant('orders', '{"status": "CANCELLED", "locked_amount": 20}')$$),
	('orders', 'lock_asset invalid', $$SELECT pg_temp.variant('orders', '{"lock_asset": "usd"}')$$),
	('orders', 'stop_price on a LIMIT order', $$SELECT pg_temp.variant('orders', '{"stop_price": 9}')$$),
	('orders', 'STOP without stop_price', $$SELECT pg_temp.variant('orders', '{"order_type": "STOP", "status": "PENDING"}')$$),
	('orders', 'stop_price 0', $$SELECT pg_temp.variant('orders', '{"order_type": "STOP", "status": "PENDING", "stop_price": 0}')$$),
	('orders', 'LIMIT without price', $$SELECT pg_temp.variant('orders', '{"price": null}')$$),
	('orders', 'PENDING but not STOP', $$SELECT pg_temp.variant('orders', '{"status": "PENDING"}')$$),
	('orders', 'MARKET with GTC', $$SELECT pg_temp.variant('orders', '{"order_type": "MARKET"}')$$),
	('orders', 'REJECTED without reason', $$SELECT pg_temp.variant('orders', '{"status": "REJECTED", "locked_amount": 0}')$$),
	('orders', 'reject_reason on an OPEN order', $$SELECT pg_temp.variant('orders', '{"reject_reason": "LOT_SIZE"}')$$),
	('orders', 'reject_reason unknown', $$SELECT pg_temp.variant('orders', '{"status": "REJECTED", "locked_amount": 0, "reject_reason": "BAD_MOOD"}')$$),
	('orders', 'client_order_id empty', $$SELECT pg_temp.variant('orders', '{"client_order_id": ""}')$$),
	('orders', 'client_order_id taken in the account', $$SELECT pg_temp.variant('orders', '{"client_order_id": "cl-1"}')$$),
	('orders', 'client_order_id of another account', format($$SELECT pg_temp.variant('orders', '{"client_order_id": "cl-1", "account_id": "%s"}')$$, pg_temp.id('ben'))),
	('orders', 'metadata a string', $$SELECT pg_temp.variant('orders', '{"metadata": "x"}')$$),
	-- trades
	('trades', '(valid row)', $$SELECT pg_temp.variant('trades')$$),
	('trades', 'account not the order''s', format($$SELECT pg_temp.variant('trades', '{"account_id": "%s"}')$$, pg_temp.id('ben'))),
	('trades', 'order unknown', $$SELECT pg_temp.variant('trades', '{"order_id": "00000000-0000-0000-0000-000000000000"}')$$),
	('trades', 'market unknown', $$SELECT pg_temp.variant('trades', '{"symbol": "NONE-CUSD"}')$$),
	('trades', 'side unknown', $$SELECT pg_temp.variant('trades', '{"side": "BOTH"}')$$),
	('trades', 'quantity 0', $$SELECT pg_temp.variant('trades', '{"quantity": 0}')$$),
	('trades', 'price negative', $$SELECT pg_temp.variant('trades', '{"price": -10}')$$),
	('trades', 'fee negative', $$SELECT pg_temp.variant('trades', '{"fee": -0.01}')$$),
	('trades', 'fee_currency NULL', $$SELECT pg_temp.variant('trades', '{"fee_currency": null}')$$),
	('trades', 'fee_currency invalid', $$SELECT pg_temp.variant('trades', '{"fee_currency": "usd"}')$$),
	('trades', 'liquidity unknown', $$SELECT pg_temp.variant('trades', '{"liquidity": "BOTH"}')$$),
	('trades', 'trade_ref empty', $$SELECT pg_temp.variant('trades', '{"trade_ref": ""}')$$),
	('trades', 'trade_ref taken on the order', $$SELECT pg_temp.variant('trades', '{"trade_ref": "fill-1"}')$$),
	('trades', 'metadata an array', $$SELECT pg_temp.variant('trades', '{"metadata": []}')$$),
	-- balances
	('balances', '(valid row)', $$SELECT pg_temp.variant('balances')$$),
	('balances', 'account unknown', $$SELECT pg_temp.variant('balances', '{"account_id": "00000000-0000-0000-0000-000000000000"}')$$),
	('balances', 'available_balance negative', $$SELECT pg_temp.variant('balances', '{"available_balance": -0.00000001}')$$),
	('balances', 'locked_balance negative', $$SELECT pg_temp.variant('balances', '{"locked_balance": -1}')$$),
	('balances', 'asset (symbol) invalid', $$SELECT pg_temp.variant('balances', '{"symbol": "CNST-CUSD"}')$$),
	('balances', 'a second row for (account, asset)', format($$SELECT pg_temp.variant('balances', '{"account_id": "%s"}'); SELECT pg_temp.variant('balances', '{"account_id": "%s"}')$$, pg_temp.id('ann'), pg_temp.id('ann'))),
	('balances', 'total_balance given', $$SELECT pg_temp.variant('balances', '{"total_balance": 1}')$$),
	('balances', 'available_balance beyond numeric(24,8)', $$SELECT pg_temp.variant('balances', '{"available_balance": 1e16}')$$),
	-- holds
	('holds', '(valid row)', $$SELECT pg_temp.variant('holds')$$),
	('holds', 'account unknown', $$SELECT pg_temp.variant('holds', '{"account_id": "00000000-0000-0000-0000-000000000000"}')$$),
	('holds', 'asset invalid', $$SELECT pg_temp.variant('holds', '{"asset": ""}')$$),
	('holds', 'amount 0', $$SELECT pg_temp.variant('holds', '{"amount": 0, "remaining": 0, "released_at": "2024-01-01"}')$$),
	('holds', 'remaining negative', $$SELECT pg_temp.variant('holds', '{"remaining": -1}')$$),
	('holds', 'captured negative', $$SELECT pg_temp.variant('holds', '{"captured": -1, "remaining": 4}')$$),
	('holds', 'remaining + captured above amount', $$SELECT pg_temp.variant('holds', '{"remaining": 3, "captured": 3}')$$),
	('holds', 'released while something remains', $$SELECT pg_temp.variant('holds', '{"released_at": "2024-01-01"}')$$),
	('holds', 'nothing remains but not released', $$SELECT pg_temp.variant('holds', '{"remaining": 0, "captured": 5}')$$),
	-- balance_journal
	('balance_journal', '(valid row)', $$SELECT pg_temp.variant('balance_journal')$$),
	('balance_journal', 'account unknown', $$SELECT pg_temp.variant('balance_journal', '{"account_id": "00000000-0000-0000-0000-000000000000"}')$$),
	('balance_journal', 'kind unknown', $$SELECT pg_temp.variant('balance_journal', '{"kind": "GIFT"}')$$),
	('balance_journal', 'no change at all', $$SELECT pg_temp.variant('balance_journal', '{"delta_available": 0}')$$),
	('balance_journal', 'asset invalid', $$SELECT pg_temp.variant('balance_journal', '{"asset": "C USD"}')$$),
	('balance_journal', 'actor NULL', $$SELECT pg_temp.variant('balance_journal', '{"actor": null}')$$),
	('balance_journal', 'seq given (identity ALWAYS)', $$SELECT pg_temp.variant('balance_journal', '{"seq": 1}')$$),
	('balance_journal', 'DEPOSIT reference taken in the account', $$SELECT pg_temp.variant('balance_journal', '{"reference": "r-1"}'); SELECT pg_temp.variant('balance_journal', '{"reference": "r-1", "delta_available": 2}')$$),
	('balance_journal', 'same reference, another kind', $$SELECT pg_temp.variant('balance_journal', '{"reference": "r-1"}'); SELECT pg_temp.variant('balance_journal', '{"reference": "r-1", "kind": "WITHDRAWAL", "delta_available": -1}')$$),
	-- order_events
	('order_events', '(valid row)', $$SELECT pg_temp.variant('order_events')$$),
	('order_events', 'order unknown', $$SELECT pg_temp.variant('order_events', '{"order_id": "00000000-0000-0000-0000-000000000000"}')$$),
	('order_events', 'from_status unknown', $$SELECT pg_temp.variant('order_events', '{"from_status": "NEW"}')$$),
	('order_events', 'to_status NULL', $$SELECT pg_temp.variant('order_events', '{"to_status": null}')$$),
	('order_events', 'to_status unknown', $$SELECT pg_temp.variant('order_events', '{"to_status": "DONE"}')$$),
	('order_events', 'filled_delta negative', $$SELECT pg_temp.variant('order_events', '{"filled_delta": -1}')$$),
	-- fee_ledger
	('fee_ledger', '(valid row)', $$SELECT pg_temp.variant('fee_ledger')$$),
	('fee_ledger', 'trade unknown', $$SELECT pg_temp.variant('fee_ledger', '{"trade_id": "00000000-0000-0000-0000-000000000000"}')$$),
	('fee_ledger', 'amount 0', $$SELECT pg_temp.variant('fee_ledger', '{"amount": 0}')$$),
	('fee_ledger', 'amount negative', $$SELECT pg_temp.variant('fee_ledger', '{"amount": -0.01}')$$),
	('fee_ledger', 'asset invalid', $$SELECT pg_temp.variant('fee_ledger', '{"asset": "cusd"}')$$),
	-- outbox
	('outbox', '(valid row)', $$SELECT pg_temp.variant('outbox')$$),
	('outbox', 'kind unknown', $$SELECT pg_temp.variant('outbox', '{"kind": "email"}')$$),
	('outbox', 'registry row without service_id', $$SELECT pg_temp.variant('outbox', '{"kind": "registry"}')$$),
	('outbox', 'cache row with a service_id', $$SELECT pg_temp.variant('outbox', '{"service_id": "svc-1"}')$$),
	('outbox', 'xid NULL', $$SELECT pg_temp.variant('outbox', '{"xid": null}')$$),
	-- services
	('services', '(valid row)', $$SELECT pg_temp.variant('services')$$),
	('services', 'service_id empty', $$SELECT pg_temp.variant('services', '{"service_id": ""}')$$),
	('services', 'service_name empty', $$SELECT pg_temp.variant('services', '{"service_name": ""}')$$),
	('services', 'port 0', $$SELECT pg_temp.variant('services', '{"port": 0}')$$),
	('services', 'port 65536', $$SELECT pg_temp.variant('services', '{"port": 65536}')$$),
	('services', 'ttl 0', $$SELECT pg_temp.variant('services', '{"ttl": "0 seconds"}')$$),
	('services', 'metadata an array', $$SELECT pg_temp.variant('services', '{"metadata": []}')$$),
	('services', 'service_id taken', $$SELECT pg_temp.variant('services'); SELECT pg_temp.variant('services')$$);

SELECT c.tbl, c.bad_input, f.sqlstate, f.message
  FROM cases c, pg_temp.fails(c.stmt) f
 ORDER BY c.n;

-- Amounts that are not numbers.  numeric(24,8) can hold NaN, and NaN compares above every
-- number, so a CHECK (x >= 0) alone lets it through: each of these must be refused (23514).
SELECT bad_input, (pg_temp.fails(stmt)).sqlstate
  FROM (VALUES
	('balances.available_balance NaN', $$SELECT pg_temp.variant('balances', '{"available_balance": "NaN"}')$$),
	('balances.locked_balance NaN', $$SELECT pg_temp.variant('balances', '{"locked_balance": "NaN"}')$$),
	('holds.amount and remaining NaN', $$SELECT pg_temp.variant('holds', '{"amount": "NaN", "remaining": "NaN"}')$$),
	('orders.quantity NaN', $$SELECT pg_temp.variant('orders', '{"quantity": "NaN", "filled_quantity": 0}')$$),
	('orders.locked_amount NaN', $$SELECT pg_temp.variant('orders', '{"locked_amount": "NaN"}')$$),
	('trades.price NaN', $$SELECT pg_temp.variant('trades', '{"price": "NaN"}')$$),
	('balance_journal.delta_available NaN', $$SELECT pg_temp.variant('balance_journal', '{"delta_available": "NaN"}')$$),
	('fee_ledger.amount NaN', $$SELECT pg_temp.variant('fee_ledger', '{"amount": "NaN"}')$$),
	('markets.tick_size NaN', $$SELECT pg_temp.variant('markets', '{"tick_size": "NaN"}')$$)
  ) AS v (bad_input, stmt);

-- README "Data model": a trade's symbol and side are its order's.  The foreign key covers the
-- account; symbol and side must be refused the same way (23xxx, whatever the constraint's
-- name).
SELECT bad_input, (pg_temp.fails(stmt)).sqlstate LIKE '23%' AS refused
  FROM (VALUES
	('trade symbol not the order''s', $$SELECT pg_temp.variant('trades', '{"symbol": "CNSV-CUSD"}')$$),
	('trade side not the order''s', $$SELECT pg_temp.variant('trades', '{"side": "SELL"}')$$)
  ) AS v (bad_input, stmt);

-- Updates are held to the same rules.
SELECT sqlstate, message FROM pg_temp.fails($$ SELECT pg_temp.variant('balances'); UPDATE exchange.balances SET available_balance = available_balance - 2 WHERE account_id = pg_temp.id('ben') $$);
SELECT sqlstate, message FROM pg_temp.fails($$ SELECT pg_temp.variant('balances'); UPDATE exchange.balances SET total_balance = 5 WHERE account_id = pg_temp.id('ben') $$);
SELECT sqlstate, message FROM pg_temp.fails($$ UPDATE exchange.accounts SET status = 'GONE' WHERE account_id = pg_temp.id('ann') $$);
SELECT sqlstate, message FROM pg_temp.fails($$ UPDATE exchange.trades SET account_id = pg_temp.id('ben') WHERE trade_id = pg_temp.id('ann_trade') $$);
-- The rules of orders, trades, balances, balance_journal and order_events are one CHECK per
-- table (<table>_row_check, a C validator of the row): a broken rule still reads as its own
-- constraint, in the message and in the error's constraint-name field, and the detail states it.
SELECT sqlstate, message, detail FROM pg_temp.fails($$ SELECT pg_temp.variant('orders', '{"side": "HOLD"}') $$);
SELECT sqlstate, message, detail FROM pg_temp.fails($$ SELECT pg_temp.variant('balances'); UPDATE exchange.balances SET locked_balance = -1 WHERE account_id = pg_temp.id('ben') $$);
DO $$
DECLARE
	v_constraint text;
	v_table text;
	v_schema text;
BEGIN
	PERFORM pg_temp.variant('orders', '{"status": "FILLED"}');
EXCEPTION WHEN check_violation THEN
	GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME, v_table = TABLE_NAME, v_schema = SCHEMA_NAME;
	RAISE NOTICE 'constraint %, table %.%', v_constraint, v_schema, v_table;
END $$;
-- The generated total follows its parts.
SELECT pg_temp.variant('balances', '{"available_balance": 1.5, "locked_balance": 0.25}');
SELECT available_balance, locked_balance, total_balance FROM exchange.balances WHERE account_id = pg_temp.id('ben');
DELETE FROM exchange.balances WHERE account_id = pg_temp.id('ben');

-- Referenced rows cannot go while something points at them.
SELECT sqlstate, message FROM pg_temp.fails($$ DELETE FROM exchange.orders WHERE order_id = pg_temp.id('ann_order') $$);
SELECT sqlstate, message FROM pg_temp.fails($$ DELETE FROM exchange.markets WHERE symbol = 'CNST-CUSD' $$);
SELECT sqlstate, message FROM pg_temp.fails($$ DELETE FROM exchange.accounts WHERE account_id = pg_temp.id('ann') $$);

-- Clean up the rows made by hand, and the markets; the ledger is sound again.
DELETE FROM exchange.trades WHERE trade_id = pg_temp.id('ann_trade');
DELETE FROM exchange.orders WHERE order_id = pg_temp.id('ann_order');
DELETE FROM exchange.markets WHERE symbol IN ('CNST-CUSD', 'CNSV-CUSD');
SELECT * FROM exchange.check_invariants();
