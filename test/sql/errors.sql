-- Errors: every class of bad input for every function of the funds ledger, with the SQLSTATE a
-- caller branches on (README "Errors"): 22004 a NULL where a value is needed, 22023 a malformed
-- value (enumerations, NaN, ±Infinity, zero or negative amounts, more than 8 decimal places,
-- bad asset codes, empty or too long text, JSON that is not an object), 22003 a value beyond
-- numeric(24,8), and the LX class for what the ledger refuses.  A malformed call raises and
-- writes nothing: the counts at the end are those of the start.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

-- The scene: Frank (ACTIVE; 10 BTC deposited with reference dep-1; a live hold of 1 BTC; a
-- hold of 1 BTC finished by a capture with reference cap-1), Gina (SUSPENDED, 5 BTC), Hugo
-- (CLOSED), market ERRA-ERRB.
SELECT pg_temp.label(account_id, 'frank') FROM exchange.create_account('exa_errors_frank');
SELECT pg_temp.label(account_id, 'gina') FROM exchange.create_account('exa_errors_gina');
SELECT pg_temp.label(account_id, 'hugo') FROM exchange.create_account('exa_errors_hugo');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('frank'), 'BTC', 10, 'dep-1');
SELECT pg_temp.label(hold_id, 'frank_hold'), remaining FROM exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1);
SELECT pg_temp.label(hold_id, 'frank_done'), remaining FROM exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1);
SELECT pg_temp.l(hold_id), remaining FROM exchange.capture_hold(pg_temp.id('frank_done'), NULL, 'cap-1');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('gina'), 'BTC', 5);
SELECT status FROM exchange.set_account_status(pg_temp.id('gina'), 'SUSPENDED');
SELECT status FROM exchange.set_account_status(pg_temp.id('hugo'), 'CLOSED');
SELECT symbol FROM exchange.create_market('ERRA-ERRB', 'ERRA', 'ERRB');
SELECT * FROM pg_temp.balances();

CREATE TEMP TABLE counts_before AS
SELECT (SELECT count(*) FROM exchange.accounts) AS accounts,
	   (SELECT count(*) FROM exchange.markets) AS markets,
	   (SELECT count(*) FROM exchange.balances) AS balances,
	   (SELECT count(*) FROM exchange.holds) AS holds,
	   (SELECT count(*) FROM exchange.balance_journal) AS journal,
	   (SELECT count(*) FROM exchange.outbox) AS outbox,
	   (SELECT string_agg(symbol || ' ' || available_balance || '/' || locked_balance, ', ' ORDER BY symbol)
		  FROM exchange.balances WHERE account_id = pg_temp.id('frank')) AS frank_balances;

-- Each case: the function, the bad input, and how the call fails.
CREATE TEMP TABLE cases (n serial, fn text, bad_input text, stmt text);
INSERT INTO cases (fn, bad_input, stmt) VALUES
	-- create_account(user_id, account_type, metadata)
	('create_account', 'user_id NULL', $$SELECT exchange.create_account(NULL)$$),
	('create_account', 'user_id empty', $$SELECT exchange.create_account('')$$),
	('create_account', 'user_id of 256 characters', $$SELECT exchange.create_account(repeat('u', 256))$$),
	('create_account', 'account_type NULL', $$SELECT exchange.create_account('exa_errors_x', NULL)$$),
	('create_account', 'account_type lower case', $$SELECT exchange.create_account('exa_errors_x', 'spot')$$),
	('create_account', 'account_type unknown', $$SELECT exchange.create_account('exa_errors_x', 'SAVINGS')$$),
	('create_account', 'metadata an array', $$SELECT exchange.create_account('exa_errors_x', 'SPOT', '[1]')$$),
	('create_account', 'metadata a string', $$SELECT exchange.create_account('exa_errors_x', 'SPOT', '"vip"')$$),
	('create_account', 'metadata JSON null', $$SELECT exchange.create_account('exa_errors_x', 'SPOT', 'null')$$),
	('create_account', 'existing (user, type)', $$SELECT exchange.create_account('exa_errors_frank', 'SPOT')$$),
	-- set_account_status(account_id, status)
	('set_account_status', 'account_id NULL', $$SELECT exchange.set_account_status(NULL, 'ACTIVE')$$),
	('set_account_status', 'status NULL', $$SELECT exchange.set_account_status(pg_temp.id('frank'), NULL)$$),
	('set_account_status', 'status lower case', $$SELECT exchange.set_account_status(pg_temp.id('frank'), 'suspended')$$),
	('set_account_status', 'status unknown', $$SELECT exchange.set_account_status(pg_temp.id('frank'), 'FROZEN')$$),
	('set_account_status', 'unknown account', $$SELECT exchange.set_account_status('00000000-0000-0000-0000-000000000000', 'ACTIVE')$$),
	('set_account_status', 'CLOSED -> ACTIVE', $$SELECT exchange.set_account_status(pg_temp.id('hugo'), 'ACTIVE')$$),
	('set_account_status', 'close with funds', $$SELECT exchange.set_account_status(pg_temp.id('frank'), 'CLOSED')$$),
	-- set_kyc_status(account_id, kyc_status)
	('set_kyc_status', 'account_id NULL', $$SELECT exchange.set_kyc_status(NULL, 'APPROVED')$$),
	('set_kyc_status', 'kyc_status NULL', $$SELECT exchange.set_kyc_status(pg_temp.id('frank'), NULL)$$),
	('set_kyc_status', 'kyc_status lower case', $$SELECT exchange.set_kyc_status(pg_temp.id('frank'), 'approved')$$),
	('set_kyc_status', 'kyc_status unknown', $$SELECT exchange.set_kyc_status(pg_temp.id('frank'), 'VERIFIED')$$),
	('set_kyc_status', 'unknown account', $$SELECT exchange.set_kyc_status('00000000-0000-0000-0000-000000000000', 'APPROVED')$$),
	-- create_market(symbol, base_asset, quote_asset, tick_size, lot_size, min_quantity,
	--               min_notional, maker_fee_rate, taker_fee_rate, metadata)
	('create_market', 'symbol NULL', $$SELECT exchange.create_market(NULL, 'ERRC', 'ERRB')$$),
	('create_market', 'base_asset NULL', $$SELECT exchange.create_market('ERRC-ERRB', NULL, 'ERRB')$$),
	('create_market', 'quote_asset NULL', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', NULL)$$),
	('create_market', 'tick_size NULL', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => NULL)$$),
	('create_market', 'lot_size NULL', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', lot_size => NULL)$$),
	('create_market', 'min_quantity NULL', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_quantity => NULL)$$),
	('create_market', 'min_notional NULL', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_notional => NULL)$$),
	('create_market', 'maker_fee_rate NULL', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', maker_fee_rate => NULL)$$),
	('create_market', 'taker_fee_rate NULL', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', taker_fee_rate => NULL)$$),
	('create_market', 'symbol empty', $$SELECT exchange.create_market('', 'ERRC', 'ERRB')$$),
	('create_market', 'symbol of 22 characters', $$SELECT exchange.create_market('ERRCERRCERR-ERRBERRBER', 'ERRCERRCER', 'ERRBERRBER')$$),
	('create_market', 'symbol not BASE-QUOTE', $$SELECT exchange.create_market('ERRC/ERRB', 'ERRC', 'ERRB')$$),
	('create_market', 'base_asset lower case', $$SELECT exchange.create_market('errc-ERRB', 'errc', 'ERRB')$$),
	('create_market', 'base_asset of 11 characters', $$SELECT exchange.create_market('ERRCERRCERR-ERRB', 'ERRCERRCERR', 'ERRB')$$),
	('create_market', 'quote_asset with punctuation', $$SELECT exchange.create_market('ERRC-ERR.B', 'ERRC', 'ERR.B')$$),
	('create_market', 'quote_asset empty', $$SELECT exchange.create_market('ERRC-', 'ERRC', '')$$),
	('create_market', 'base_asset = quote_asset', $$SELECT exchange.create_market('ERRB-ERRB', 'ERRB', 'ERRB')$$),
	('create_market', 'tick_size 0', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => 0)$$),
	('create_market', 'tick_size negative', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => -0.01)$$),
	('create_market', 'tick_size NaN', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => 'NaN')$$),
	('create_market', 'tick_size Infinity', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => 'Infinity')$$),
	('create_market', 'tick_size 9 decimals', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => 0.000000001)$$),
	('create_market', 'tick_size 1e16', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', tick_size => 1e16)$$),
	('create_market', 'lot_size 0', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', lot_size => 0)$$),
	('create_market', 'lot_size -Infinity', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', lot_size => '-Infinity')$$),
	('create_market', 'min_quantity negative', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_quantity => -1)$$),
	('create_market', 'min_quantity 9 decimals', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_quantity => 0.123456789)$$),
	('create_market', 'min_notional NaN', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_notional => 'NaN')$$),
	('create_market', 'min_notional 1e16', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', min_notional => 1e16)$$),
	('create_market', 'maker_fee_rate negative', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', maker_fee_rate => -0.001)$$),
	('create_market', 'maker_fee_rate above 0.1', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', maker_fee_rate => 0.11)$$),
	('create_market', 'taker_fee_rate Infinity', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', taker_fee_rate => 'Infinity')$$),
	('create_market', 'taker_fee_rate 9 decimals', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', taker_fee_rate => 0.001000001)$$),
	('create_market', 'metadata an array', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', metadata => '[]')$$),
	('create_market', 'existing symbol', $$SELECT exchange.create_market('ERRA-ERRB', 'ERRA', 'ERRB')$$),
	-- set_market_status(symbol, status)
	('set_market_status', 'symbol NULL', $$SELECT exchange.set_market_status(NULL, 'HALTED')$$),
	('set_market_status', 'status NULL', $$SELECT exchange.set_market_status('ERRA-ERRB', NULL)$$),
	('set_market_status', 'symbol empty', $$SELECT exchange.set_market_status('', 'HALTED')$$),
	('set_market_status', 'status lower case', $$SELECT exchange.set_market_status('ERRA-ERRB', 'halted')$$),
	('set_market_status', 'status unknown', $$SELECT exchange.set_market_status('ERRA-ERRB', 'PAUSED')$$),
	('set_market_status', 'unknown market', $$SELECT exchange.set_market_status('ERRZ-ERRB', 'HALTED')$$),
	-- deposit(account_id, asset, amount, reference)
	('deposit', 'account_id NULL', $$SELECT exchange.deposit(NULL, 'BTC', 1)$$),
	('deposit', 'asset NULL', $$SELECT exchange.deposit(pg_temp.id('frank'), NULL, 1)$$),
	('deposit', 'amount NULL', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', NULL)$$),
	('deposit', 'asset lower case', $$SELECT exchange.deposit(pg_temp.id('frank'), 'btc', 1)$$),
	('deposit', 'asset empty', $$SELECT exchange.deposit(pg_temp.id('frank'), '', 1)$$),
	('deposit', 'asset of 11 characters', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTCBTCBTCBT', 1)$$),
	('deposit', 'asset a market symbol', $$SELECT exchange.deposit(pg_temp.id('frank'), 'ERRA-ERRB', 1)$$),
	('deposit', 'asset with a space', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC ', 1)$$),
	('deposit', 'amount 0', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 0)$$),
	('deposit', 'amount negative', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', -1)$$),
	('deposit', 'amount NaN', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 'NaN')$$),
	('deposit', 'amount Infinity', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 'Infinity')$$),
	('deposit', 'amount -Infinity', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', '-Infinity')$$),
	('deposit', 'amount 9 decimals', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 0.000000001)$$),
	('deposit', 'amount 1.000000001', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1.000000001)$$),
	('deposit', 'amount 1e16', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1e16)$$),
	('deposit', 'amount -1e16', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', -1e16)$$),
	('deposit', 'amount 1e30', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1e30)$$),
	('deposit', 'reference empty', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1, '')$$),
	('deposit', 'reference of 129 characters', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1, repeat('r', 129))$$),
	('deposit', 'unknown account', $$SELECT exchange.deposit('00000000-0000-0000-0000-000000000000', 'BTC', 1)$$),
	('deposit', 'CLOSED account', $$SELECT exchange.deposit(pg_temp.id('hugo'), 'BTC', 1)$$),
	('deposit', 'reference reused, other amount', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 11, 'dep-1')$$),
	('deposit', 'balance beyond numeric(24,8)', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 9999999999999999.99999999)$$),
	-- withdraw(account_id, asset, amount, reference)
	('withdraw', 'account_id NULL', $$SELECT exchange.withdraw(NULL, 'BTC', 1)$$),
	('withdraw', 'asset NULL', $$SELECT exchange.withdraw(pg_temp.id('frank'), NULL, 1)$$),
	('withdraw', 'amount NULL', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', NULL)$$),
	('withdraw', 'asset lower case', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'Btc', 1)$$),
	('withdraw', 'amount 0', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 0.00000000)$$),
	('withdraw', 'amount negative', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', -0.5)$$),
	('withdraw', 'amount NaN', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 'NaN')$$),
	('withdraw', 'amount Infinity', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 'Infinity')$$),
	('withdraw', 'amount 9 decimals', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 0.123456789)$$),
	('withdraw', 'amount 1e16', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 10000000000000000)$$),
	('withdraw', 'reference empty', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 1, '')$$),
	('withdraw', 'reference of 129 characters', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 1, repeat('r', 129))$$),
	('withdraw', 'unknown account', $$SELECT exchange.withdraw('00000000-0000-0000-0000-000000000000', 'BTC', 1)$$),
	('withdraw', 'more than available', $$SELECT exchange.withdraw(pg_temp.id('frank'), 'BTC', 8.00000001)$$),
	('withdraw', 'SUSPENDED account', $$SELECT exchange.withdraw(pg_temp.id('gina'), 'BTC', 1)$$),
	('withdraw', 'CLOSED account', $$SELECT exchange.withdraw(pg_temp.id('hugo'), 'BTC', 1)$$),
	-- lock_balance(account_id, asset, amount, reason)
	('lock_balance', 'account_id NULL', $$SELECT exchange.lock_balance(NULL, 'BTC', 1)$$),
	('lock_balance', 'asset NULL', $$SELECT exchange.lock_balance(pg_temp.id('frank'), NULL, 1)$$),
	('lock_balance', 'amount NULL', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', NULL)$$),
	('lock_balance', 'asset of 11 characters', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'ABCDEFGHIJK', 1)$$),
	('lock_balance', 'amount 0', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 0)$$),
	('lock_balance', 'amount negative', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', -2)$$),
	('lock_balance', 'amount NaN', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 'NaN')$$),
	('lock_balance', 'amount -Infinity', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', '-Infinity')$$),
	('lock_balance', 'amount 9 decimals', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1.000000005)$$),
	('lock_balance', 'amount 1e16', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1e16)$$),
	('lock_balance', 'reason empty', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1, '')$$),
	('lock_balance', 'reason of 257 characters', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 1, repeat('r', 257))$$),
	('lock_balance', 'unknown account', $$SELECT exchange.lock_balance('00000000-0000-0000-0000-000000000000', 'BTC', 1)$$),
	('lock_balance', 'more than available', $$SELECT exchange.lock_balance(pg_temp.id('frank'), 'BTC', 9)$$),
	('lock_balance', 'SUSPENDED account', $$SELECT exchange.lock_balance(pg_temp.id('gina'), 'BTC', 1)$$),
	('lock_balance', 'CLOSED account', $$SELECT exchange.lock_balance(pg_temp.id('hugo'), 'BTC', 1)$$),
	-- unlock_balance(hold_id, amount)
	('unlock_balance', 'hold_id NULL', $$SELECT exchange.unlock_balance(NULL)$$),
	('unlock_balance', 'amount 0', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 0)$$),
	('unlock_balance', 'amount negative', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), -1)$$),
	('unlock_balance', 'amount NaN', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 'NaN')$$),
	('unlock_balance', 'amount Infinity', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 'Infinity')$$),
	('unlock_balance', 'amount 9 decimals', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 0.000000001)$$),
	('unlock_balance', 'amount 1e16', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 1e16)$$),
	('unlock_balance', 'unknown hold', $$SELECT exchange.unlock_balance('00000000-0000-0000-0000-000000000000')$$),
	('unlock_balance', 'more than remains', $$SELECT exchange.unlock_balance(pg_temp.id('frank_hold'), 2)$$),
	('unlock_balance', 'finished hold', $$SELECT exchange.unlock_balance(pg_temp.id('frank_done'))$$),
	-- capture_hold(hold_id, amount, reference)
	('capture_hold', 'hold_id NULL', $$SELECT exchange.capture_hold(NULL)$$),
	('capture_hold', 'amount 0', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 0)$$),
	('capture_hold', 'amount negative', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), -1)$$),
	('capture_hold', 'amount NaN', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 'NaN')$$),
	('capture_hold', 'amount -Infinity', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), '-Infinity')$$),
	('capture_hold', 'amount 9 decimals', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 0.999999999)$$),
	('capture_hold', 'amount -1e16', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), -1e16)$$),
	('capture_hold', 'reference empty', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 1, '')$$),
	('capture_hold', 'reference of 129 characters', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 1, repeat('r', 129))$$),
	('capture_hold', 'unknown hold', $$SELECT exchange.capture_hold('00000000-0000-0000-0000-000000000000')$$),
	('capture_hold', 'more than remains', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), 1.00000001)$$),
	('capture_hold', 'finished hold', $$SELECT exchange.capture_hold(pg_temp.id('frank_done'))$$),
	('capture_hold', 'reference reused, other hold', $$SELECT exchange.capture_hold(pg_temp.id('frank_hold'), NULL, 'cap-1')$$),
	-- grant_adapter(role, profile), revoke_adapter(role)
	('grant_adapter', 'role NULL', $$SELECT exchange.grant_adapter(NULL)$$),
	('grant_adapter', 'role PUBLIC', $$SELECT exchange.grant_adapter('-')$$),
	('grant_adapter', 'profile NULL', $$SELECT exchange.grant_adapter(current_user::regrole, NULL)$$),
	('grant_adapter', 'profile unknown', $$SELECT exchange.grant_adapter(current_user::regrole, 'admin')$$),
	('revoke_adapter', 'role NULL', $$SELECT exchange.revoke_adapter(NULL)$$),
	('revoke_adapter', 'role PUBLIC', $$SELECT exchange.revoke_adapter('-')$$);

SELECT c.fn, c.bad_input, f.sqlstate, f.message
  FROM cases c, pg_temp.fails(c.stmt) f
 ORDER BY c.n;

-- The details and hints that tell the caller what to fix, for one case of each kind.
SELECT c.fn, c.bad_input, f.detail, f.hint
  FROM cases c, pg_temp.fails(c.stmt) f
 WHERE c.bad_input IN ('user_id of 256 characters', 'account_type lower case', 'existing (user, type)',
					   'symbol not BASE-QUOTE', 'amount 9 decimals', 'amount 1e16', 'amount NaN',
					   'more than available', 'reference reused, other amount', 'SUSPENDED account',
					   'more than remains', 'reference empty')
   AND c.fn IN ('create_account', 'create_market', 'deposit', 'withdraw', 'capture_hold')
 ORDER BY c.n;

-- Boundaries that are accepted (run and rolled back by pg_temp.fails, so 'no error'): the
-- largest numeric(24,8) amount, 8 decimals, trailing zeros past the 8th, the fee rate 0.1, a
-- user_id of 255 characters, NULL metadata (taken as '{}').
SELECT bad_input AS boundary, (pg_temp.fails(stmt)).sqlstate
  FROM (VALUES
	('deposit 9999999999999999.99999999', $$SELECT exchange.deposit(pg_temp.id('gina'), 'ETH', 9999999999999999.99999999)$$),
	('deposit 0.00000001', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 0.00000001)$$),
	('deposit 1.10000000000000', $$SELECT exchange.deposit(pg_temp.id('frank'), 'BTC', 1.10000000000000)$$),
	('create_market fee rates 0.1', $$SELECT exchange.create_market('ERRC-ERRB', 'ERRC', 'ERRB', maker_fee_rate => 0.1, taker_fee_rate => 0.1)$$),
	('create_account user_id of 255 characters', $$SELECT exchange.create_account(repeat('u', 255))$$),
	('create_account metadata NULL', $$SELECT exchange.create_account('exa_errors_x', 'SPOT', NULL)$$)
  ) AS b (bad_input, stmt);

-- Nothing was written by any of them.
SELECT (SELECT count(*) FROM exchange.accounts) - accounts AS new_accounts,
	   (SELECT count(*) FROM exchange.markets) - markets AS new_markets,
	   (SELECT count(*) FROM exchange.balances) - balances AS new_balances,
	   (SELECT count(*) FROM exchange.holds) - holds AS new_holds,
	   (SELECT count(*) FROM exchange.balance_journal) - journal AS new_journal_rows,
	   (SELECT count(*) FROM exchange.outbox) - outbox AS new_outbox_rows,
	   (SELECT string_agg(symbol || ' ' || available_balance || '/' || locked_balance, ', ' ORDER BY symbol)
		  FROM exchange.balances WHERE account_id = pg_temp.id('frank')) = frank_balances AS frank_unchanged
  FROM counts_before;
SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();

DELETE FROM exchange.markets WHERE symbol = 'ERRA-ERRB';
