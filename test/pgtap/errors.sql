-- pgTAP: the SQLSTATE of every class of bad input for every function of the funds ledger
-- (README "Order lifecycle and arithmetic", inputs, and README "Errors"):
--   22004 a NULL where a value is needed; 22023 enumerations, NaN, ±Infinity, zero or negative
--   amounts, more than 8 decimal places, bad asset codes, empty or too long text, non-object
--   metadata; 22003 beyond numeric(24,8); LX001 insufficient funds; LX002 illegal transition;
--   LX003 not found; LX004 account not active; LX009 idempotency conflict; LX010 already exists.
-- And that a refused call writes nothing, and the boundaries that are accepted.
BEGIN;
CREATE EXTENSION exchange_adapter;

CREATE TEMP TABLE ids (label text PRIMARY KEY, id uuid NOT NULL);
CREATE FUNCTION pg_temp.id(l text) RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT id FROM pg_temp.ids WHERE label = l $$;

-- Frank: ACTIVE, 10 BTC deposited with reference dep-1, a live hold of 1 BTC and a hold
-- finished by a capture with reference cap-1.  Gina: SUSPENDED, KYC APPROVED, with 5 BTC.
-- Hugo: CLOSED, KYC APPROVED.  Market ERRA-ERRB.
INSERT INTO ids SELECT 'frank', account_id FROM exchange.create_account('exa_errors_frank');
INSERT INTO ids SELECT 'gina', account_id FROM exchange.create_account('exa_errors_gina');
INSERT INTO ids SELECT 'hugo', account_id FROM exchange.create_account('exa_errors_hugo');
INSERT INTO ids SELECT 'frank_hold', hold_id
  FROM exchange.deposit(pg_temp.id('frank'), 'BTC', 10, 'dep-1'),
	   exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1);
INSERT INTO ids SELECT 'frank_done', hold_id FROM exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1);
DO $$
BEGIN
	PERFORM exchange.capture_hold(pg_temp.id('frank_done'), NULL, 'cap-1');
	PERFORM exchange.deposit(pg_temp.id('gina'), 'BTC', 5);
	PERFORM exchange.set_kyc_status(pg_temp.id('gina'), 'APPROVED');
	PERFORM exchange.set_account_status(pg_temp.id('gina'), 'SUSPENDED');
	PERFORM exchange.set_kyc_status(pg_temp.id('hugo'), 'APPROVED');
	PERFORM exchange.set_account_status(pg_temp.id('hugo'), 'CLOSED');
	PERFORM exchange.create_market('ERRA-ERRB', 'ERRA', 'ERRB');
END
$$;

CREATE TEMP TABLE counts_before AS
SELECT (SELECT count(*) FROM exchange.accounts) AS accounts, (SELECT count(*) FROM exchange.markets) AS markets,
	   (SELECT count(*) FROM exchange.balances) AS balances, (SELECT count(*) FROM exchange.holds) AS holds,
	   (SELECT count(*) FROM exchange.balance_journal) AS journal, (SELECT count(*) FROM exchange.outbox) AS outbox,
	   (SELECT sum(total_balance) FROM exchange.balances) AS total;

CREATE TEMP TABLE cases (n serial, fn text, bad_input text, sqlstate char(5), stmt text);
INSERT INTO cases (fn, bad_input, sqlstate, stmt) VALUES
	('create_account', 'user_id NULL', '22004', $$SELECT exchange.create_account(NULL)$$),
	('create_account', 'account_type NULL', '22004', $$SELECT exchange.create_account('exa_e', NULL)$$),
	('create_account', 'user_id empty', '22023', $$SELECT exchange.create_account('')$$),
	('create_account', 'user_id too long', '22023', $$SELECT exchange.create_account(repeat('u', 256))$$),
	('create_account', 'account_type lower case', '22023', $$SELECT exchange.create_account('exa_e', 'spot')$$),
	('create_account', 'account_type unknown', '22023', $$SELECT exchange.create_account('exa_e', 'SAVINGS')$$),
	('create_account', 'metadata not an object', '22023', $$SELECT exchange.create_account('exa_e', 'SPOT', '[]')$$),
	('create_account', 'existing (user, type)', 'LX010', $$SELECT exchange.create_account('exa_errors_frank')$$),

	('set_account_status', 'account_id NULL', '22004', $$SELECT exchange.set_account_status(NULL, 'ACTIVE')$$),
	('set_account_status', 'status NULL', '22004', $$SELECT exchange.set_account_status(pg_temp.id('frank'), NULL)$$),
	('set_account_status', 'status lower case', '22023', $$SELECT exchange.set_account_status(pg_temp.id('frank'), 'active')$$),
	('set_account_status', 'status unknown', '22023', $$SELECT exchange.set_account_status(pg_temp.id('frank'), 'FROZEN')$$),
	('set_account_status', 'unknown account', 'LX003', $$SELECT exchange.set_account_status('00000000-0000-0000-0000-000000000000', 'ACTIVE')$$),
	('set_account_status', 'CLOSED -> ACTIVE', 'LX002', $$SELECT exchange.set_account_status(pg_temp.id('hugo'), 'ACTIVE')$$),
	('set_account_status', 'CLOSED -> SUSPENDED', 'LX002', $$SELECT exchange.set_account_status(pg_temp.id('hugo'), 'SUSPENDED')$$),
	('set_account_status', 'close with funds and a hold', 'LX002', $$SELECT exchange.set_account_status(pg_temp.id('frank'), 'CLOSED')$$),

	('set_kyc_status', 'account_id NULL', '22004', $$SELECT exchange.set_kyc_status(NULL, 'APPROVED')$$),
	('set_kyc_status', 'kyc_status NULL', '22004', $$SELECT exchange.set_kyc_status(pg_temp.id('frank'), NULL)$$),
	('set_kyc_status', 'kyc_status lower case', '22023', $$SELECT exchange.set_kyc_status(pg_temp.id('frank'), 'approved')$$),
	('set_kyc_status', 'kyc_status unknown', '22023', $$SELECT exchange.set_kyc_status(pg_temp.id('frank'), 'VERIFIED')$$),
	('set_kyc_status', 'unknown account', 'LX003', $$SELECT exchange.set_kyc_status('00000000-0000-0000-0000-000000000000', 'APPROVED')$$),
	('set_kyc_status', 'APPROVED -> PENDING', 'LX002', $$SELECT exchange.set_kyc_status(pg_temp.id('gina'), 'PENDING')$$),
	('set_kyc_status', 'CLOSED account', 'LX004', $$SELECT exchange.set_kyc_status(pg_temp.id('hugo'), 'PENDING')$$),

	('create_market', 'symbol NULL', '22004', $$SELECT exchange.create_market(NULL, 'ERRC', 'ERRB')$$),
	('create_market', 'base_asset NULL', '22004', $$SELECT exchange.create_market('ERRC-ERRB', NULL, 'ERRB')$$),
	('create_market', 'quote_asset NULL', '22004', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', NULL)$$),
	('create_market', 'tick_size NULL', '22004', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => NULL)$$),
	('create_market', 'lot_size NULL', '22004', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', lot_size => NULL)$$),
	('create_market', 'min_quantity NULL', '22004', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_quantity => NULL)$$),
	('create_market', 'min_notional NULL', '22004', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_notional => NULL)$$),
	('create_market', 'maker_fee_rate NULL', '22004', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', maker_fee_rate => NULL)$$),
	('create_market', 'taker_fee_rate NULL', '22004', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', taker_fee_rate => NULL)$$),
	('create_market', 'symbol not BASE-QUOTE', '22023', $$SELECT exchange.create_market('ERRCERRB', 'ERRC', 'ERRB')$$),
	('create_market', 'symbol too long', '22023', $$SELECT exchange.create_market('ERRCERRCERR-ERRBERRBER', 'ERRCERRCER', 'ERRBERRBER')$$),
	('create_market', 'base_asset lower case', '22023', $$SELECT exchange.create_market('errc-ERRB', 'errc', 'ERRB')$$),
	('create_market', 'quote_asset too long', '22023', $$SELECT exchange.create_market('ERRC-ERRBERRBERR', 'ERRC', 'ERRBERRBERR')$$),
	('create_market', 'base = quote', '22023', $$SELECT exchange.create_market('ERRB-ERRB', 'ERRB', 'ERRB')$$),
	('create_market', 'tick_size 0', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => 0)$$),
	('create_market', 'lot_size negative', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', lot_size => -1)$$),
	('create_market', 'tick_size NaN', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => 'NaN')$$),
	('create_market', 'lot_size Infinity', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', lot_size => 'Infinity')$$),
	('create_market', 'min_quantity -Infinity', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_quantity => '-Infinity')$$),
	('create_market', 'min_notional negative', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_notional => -0.01)$$),
	('create_market', 'tick_size 9 decimals', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => 0.000000001)$$),
	('create_market', 'maker_fee_rate above 0.1', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', maker_fee_rate => 0.100000001)$$),
	('create_market', 'taker_fee_rate negative', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', taker_fee_rate => -0.01)$$),
	('create_market', 'metadata not an object', '22023', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', metadata => '"x"')$$),
	('create_market', 'lot_size 1e16', '22003', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', lot_size => 1e16)$$),
	('create_market', 'min_quantity 1e20', '22003', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_quantity => 1e20)$$),
	('create_market', 'existing symbol', 'LX010', $$SELECT exchange.create_market('ERRA-ERRB', 'ERRA', 'ERRB')$$),

	('set_market_status', 'symbol NULL', '22004', $$SELECT exchange.set_market_status(NULL, 'HALTED')$$),
	('set_market_status', 'status NULL', '22004', $$SELECT exchange.set_market_status('ERRA-ERRB', NULL)$$),
	('set_market_status', 'status lower case', '22023', $$SELECT exchange.set_market_status('ERRA-ERRB', 'halted')$$),
	('set_market_status', 'status unknown', '22023', $$SELECT exchange.set_market_status('ERRA-ERRB', 'PAUSED')$$),
	('set_market_status', 'symbol empty', '22023', $$SELECT exchange.set_market_status('', 'HALTED')$$),
	('set_market_status', 'unknown market', 'LX003', $$SELECT exchange.set_market_status('ERRZ-ERRB', 'HALTED')$$),

	('deposit', 'account_id NULL', '22004', $$SELECT exchange.deposit(NULL, 'BTC', 1)$$),
	('deposit', 'asset NULL', '22004', $$SELECT exchange.deposit(pg_temp.id('frank'), NULL, 1)$$),
	('deposit', 'amount NULL', '22004', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', NULL)$$),
	('deposit', 'asset lower case', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'btc', 1)$$),
	('deposit', 'asset empty', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), '', 1)$$),
	('deposit', 'asset of 11 characters', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'ABCDEFGHIJK', 1)$$),
	('deposit', 'asset with punctuation', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC-USD', 1)$$),
	('deposit', 'amount 0', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 0)$$),
	('deposit', 'amount negative', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', -1)$$),
	('deposit', 'amount NaN', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 'NaN')$$),
	('deposit', 'amount Infinity', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 'Infinity')$$),
	('deposit', 'amount -Infinity', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', '-Infinity')$$),
	('deposit', 'amount 9 decimals', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1.000000001)$$),
	('deposit', 'reference empty', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1, '')$$),
	('deposit', 'reference too long', '22023', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1, repeat('r', 129))$$),
	('deposit', 'amount 1e16', '22003', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1e16)$$),
	('deposit', 'amount -1e16', '22003', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', -1e16)$$),
	('deposit', 'resulting balance beyond numeric(24,8)', '22003', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 9999999999999999.99999999)$$),
	('deposit', 'unknown account', 'LX003', $$SELECT exchange.deposit('00000000-0000-0000-0000-000000000000', 'BTC', 1)$$),
	('deposit', 'CLOSED account', 'LX004', $$SELECT exchange.deposit(pg_temp.id('hugo'), 'BTC', 1)$$),
	('deposit', 'reference reused with another amount', 'LX009', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 11, 'dep-1')$$),
	('deposit', 'reference reused with another asset', 'LX009', $$SELECT exchange.deposit(pg_temp.id('frank'), 'ETH', 10, 'dep-1')$$),

	('withdraw', 'account_id NULL', '22004', $$SELECT exchange.withdraw(NULL, 'BTC', 1)$$),
	('withdraw', 'asset NULL', '22004', $$SELECT exchange.withdraw(pg_temp.id('frank'), NULL, 1)$$),
	('withdraw', 'amount NULL', '22004', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', NULL)$$),
	('withdraw', 'asset lower case', '22023', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'btc', 1)$$),
	('withdraw', 'amount 0', '22023', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 0)$$),
	('withdraw', 'amount negative', '22023', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', -5)$$),
	('withdraw', 'amount NaN', '22023', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 'NaN')$$),
	('withdraw', 'amount Infinity', '22023', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 'Infinity')$$),
	('withdraw', 'amount 9 decimals', '22023', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 0.000000001)$$),
	('withdraw', 'reference empty', '22023', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 1, '')$$),
	('withdraw', 'amount 1e16', '22003', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 1e16)$$),
	('withdraw', 'unknown account', 'LX003', $$SELECT exchange.withdraw('00000000-0000-0000-0000-000000000000', 'BTC', 1)$$),
	('withdraw', 'more than available', 'LX001', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 8.00000001)$$),
	('withdraw', 'asset never deposited', 'LX001', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'ETH', 1)$$),
	('withdraw', 'SUSPENDED account', 'LX004', $$SELECT exchange.withdraw(pg_temp.id('gina'), 'BTC', 1)$$),
	('withdraw', 'CLOSED account', 'LX004', $$SELECT exchange.withdraw(pg_temp.id('hugo'), 'BTC', 1)$$),

	('lock_balance', 'account_id NULL', '22004', $$SELECT exchange.lock_balance(NULL, 'BTC', 1)$$),
	('lock_balance', 'asset NULL', '22004', $$SELECT exchange.lock_balance(pg_temp.id('frank'), NULL, 1)$$),
	('lock_balance', 'amount NULL', '22004', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', NULL)$$),
	('lock_balance', 'asset of 11 characters', '22023', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTCBTCBTCBT', 1)$$),
	('lock_balance', 'amount 0', '22023', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 0)$$),
	('lock_balance', 'amount negative', '22023', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', -1)$$),
	('lock_balance', 'amount NaN', '22023', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 'NaN')$$),
	('lock_balance', 'amount -Infinity', '22023', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', '-Infinity')$$),
	('lock_balance', 'amount 9 decimals', '22023', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 0.123456789)$$),
	('lock_balance', 'reason empty', '22023', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1, '')$$),
	('lock_balance', 'reason too long', '22023', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1, repeat('r', 257))$$),
	('lock_balance', 'amount 1e16', '22003', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1e16)$$),
	('lock_balance', 'unknown account', 'LX003', $$SELECT exchange.lock_balance('00000000-0000-0000-0000-000000000000', 'BTC', 1)$$),
	('lock_balance', 'more than available', 'LX001', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 9)$$),
	('lock_balance', 'SUSPENDED account', 'LX004', $$SELECT exchange.lock_balance(pg_temp.id('gina'), 'BTC', 1)$$),
	('lock_balance', 'CLOSED account', 'LX004', $$SELECT exchange.lock_balance(pg_temp.id('hugo'), 'BTC', 1)$$),

	('unlock_balance', 'hold_id NULL', '22004', $$SELECT exchange.unlock_balance(NULL)$$),
	('unlock_balance', 'amount 0', '22023', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 0)$$),
	('unlock_balance', 'amount negative', '22023', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), -1)$$),
	('unlock_balance', 'amount NaN', '22023', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 'NaN')$$),
	('unlock_balance', 'amount Infinity', '22023', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 'Infinity')$$),
	('unlock_balance', 'amount 9 decimals', '22023', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 0.000000009)$$),
	('unlock_balance', 'more than remains', '22023', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 1.00000001)$$),
	('unlock_balance', 'amount 1e16', '22003', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 1e16)$$),
	('unlock_balance', 'unknown hold', 'LX003', $$SELECT exchange.unlock_balance('00000000-0000-0000-0000-000000000000')$$),
	('unlock_balance', 'finished hold', 'LX002', $$SELECT exchange.unlock_balance(pg_temp.id('frank_done'))$$),

	('capture_hold', 'hold_id NULL', '22004', $$SELECT exchange.capture_hold(NULL)$$),
	('capture_hold', 'amount 0', '22023', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 0)$$),
	('capture_hold', 'amount negative', '22023', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), -0.5)$$),
	('capture_hold', 'amount NaN', '22023', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 'NaN')$$),
	('capture_hold', 'amount -Infinity', '22023', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), '-Infinity')$$),
	('capture_hold', 'amount 9 decimals', '22023', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 0.100000001)$$),
	('capture_hold', 'reference empty', '22023', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 1, '')$$),
	('capture_hold', 'reference too long', '22023', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 1, repeat('r', 129))$$),
	('capture_hold', 'more than remains', '22023', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 2)$$),
	('capture_hold', 'amount 1e16', '22003', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 1e16)$$),
	('capture_hold', 'unknown hold', 'LX003', $$SELECT exchange.capture_hold('00000000-0000-0000-0000-000000000000')$$),
	('capture_hold', 'finished hold', 'LX002', $$SELECT exchange.capture_hold(pg_temp.id('frank_done'))$$),
	('capture_hold', 'reference reused on another hold', 'LX009', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), NULL, 'cap-1')$$),

	('grant_adapter', 'role NULL', '22004', $$SELECT exchange.grant_adapter(NULL)$$),
	('grant_adapter', 'profile NULL', '22004', $$SELECT exchange.grant_adapter(current_user::regrole, NULL)$$),
	('grant_adapter', 'role PUBLIC', '22023', $$SELECT exchange.grant_adapter('-'::regrole)$$),
	('grant_adapter', 'profile unknown', '22023', $$SELECT exchange.grant_adapter(current_user::regrole, 'admin')$$),
	('revoke_adapter', 'role NULL', '22004', $$SELECT exchange.revoke_adapter(NULL)$$),
	('revoke_adapter', 'role PUBLIC', '22023', $$SELECT exchange.revoke_adapter('-'::regrole)$$);

-- Accepted boundaries: the largest numeric(24,8) amount, 8 decimals, trailing zeros past the
-- 8th, fee rates of exactly 0 and 0.1, a user_id of 255 characters.
CREATE TEMP TABLE accepted (n serial, what text, stmt text);
INSERT INTO accepted (what, stmt) VALUES
	('deposit 9999999999999999.99999999 into a new balance', $$SELECT exchange.deposit(pg_temp.id('gina'), 'ETH', 9999999999999999.99999999)$$),
	('deposit 0.00000001', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 0.00000001)$$),
	('deposit 1.10000000000000 (trailing zeros)', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1.10000000000000)$$),
	('create_market with fee rates 0 and 0.1', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', maker_fee_rate => 0, taker_fee_rate => 0.1)$$),
	('create_account with a user_id of 255 characters', $$SELECT exchange.create_account(repeat('u', 255))$$),
	('unlock_balance of exactly what remains', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 1.00000000)$$),
	('withdraw exactly what is available', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 8)$$);

-- Runs stmt in a subtransaction that is always rolled back; 'ok' when it succeeded.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		EXECUTE stmt;
		RAISE EXCEPTION USING ERRCODE = 'ZZ999';
	EXCEPTION WHEN OTHERS THEN
		RETURN CASE SQLSTATE WHEN 'ZZ999' THEN 'ok' ELSE SQLSTATE END;
	END;
END
$$;

SELECT plan((SELECT count(*)::int FROM cases) + (SELECT count(*)::int FROM accepted) + 2);

SELECT throws_ok(stmt, sqlstate, NULL, format('%s: %s -> %s', fn, bad_input, sqlstate))
  FROM cases ORDER BY n;
SELECT is(pg_temp.try(stmt), 'ok', 'accepted: ' || what) FROM accepted ORDER BY n;

SELECT is((SELECT format('%s %s %s %s %s %s %s', (SELECT count(*) FROM exchange.accounts) - accounts,
						 (SELECT count(*) FROM exchange.markets) - markets,
						 (SELECT count(*) FROM exchange.balances) - balances,
						 (SELECT count(*) FROM exchange.holds) - holds,
						 (SELECT count(*) FROM exchange.balance_journal) - journal,
						 (SELECT count(*) FROM exchange.outbox) - outbox,
						 (SELECT sum(total_balance) FROM exchange.balances) - total)
			 FROM counts_before),
		  '0 0 0 0 0 0 0.00000000',
		  'the refused calls wrote nothing: no account, market, balance, hold, journal or outbox row, no funds moved');
SELECT is_empty('SELECT * FROM exchange.check_invariants()', 'the ledger is sound');

SELECT * FROM finish();
ROLLBACK;
