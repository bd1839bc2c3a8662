-- Funds: deposits and withdrawals through the one balance-move primitive.  After each step:
-- the balances, the journal rows and the outbox rows the step wrote (ids by label, see
-- include/helpers.psql).  Holds have their own file (holds.sql).
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

-- An operator application role: the calls it makes are journaled under its name.
SET client_min_messages = warning;
DROP ROLE IF EXISTS exa_regress_funds_teller;
DROP ROLE IF EXISTS exa_regress_funds_trader;
RESET client_min_messages;
CREATE ROLE exa_regress_funds_teller;
CREATE ROLE exa_regress_funds_trader;
SELECT exchange.grant_adapter('exa_regress_funds_teller', 'operator');
SELECT exchange.grant_adapter('exa_regress_funds_trader', 'trader');

SELECT pg_temp.label(account_id, 'carol') FROM exchange.create_account('exa_funds_carol');
SELECT pg_temp.label(account_id, 'dave') FROM exchange.create_account('exa_funds_dave');
SELECT * FROM pg_temp.new_outbox();

-- 1. Carol's first deposit creates her BTC balance row.
SELECT * FROM pg_temp.balances();
SELECT symbol, available_balance, locked_balance, total_balance
  FROM exchange.deposit(pg_temp.id('carol'), 'BTC', 1.5);
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 2. A deposit with a reference (the caller's transfer id); trailing zeros are fine.
SELECT symbol, available_balance, locked_balance, total_balance
  FROM exchange.deposit(pg_temp.id('carol'), 'BTC', 0.25000000000, 'tx-1001');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 3. Its retry returns the balance and changes nothing: no journal row, no outbox row.
SELECT symbol, available_balance, locked_balance, total_balance
  FROM exchange.deposit(pg_temp.id('carol'), 'BTC', 0.25, 'tx-1001');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();
-- The same reference with another amount or asset is an idempotency conflict (LX009).
SELECT * FROM pg_temp.fails($$ SELECT exchange.deposit(pg_temp.id('carol'), 'BTC', 0.26, 'tx-1001') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.deposit(pg_temp.id('carol'), 'ETH', 0.25, 'tx-1001') $$);
-- References are per account and per kind: Dave may use it, and so may a withdrawal (below).
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('dave'), 'BTC', 3, 'tx-1001');

-- 4. A second asset gets its own row.
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('carol'), 'USDT', 1000);
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 5. Withdrawals take available funds.
SELECT symbol, available_balance, locked_balance, total_balance
  FROM exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.75);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();
-- More than is available: LX001 with the amounts, and nothing written.
SELECT * FROM pg_temp.fails($$ SELECT exchange.withdraw(pg_temp.id('carol'), 'BTC', 1.00000001) $$);
-- An asset never deposited: LX001 too, and no balance row is created for it.
SELECT * FROM pg_temp.fails($$ SELECT exchange.withdraw(pg_temp.id('carol'), 'ETH', 1) $$);
SELECT * FROM pg_temp.balances() WHERE account = 'carol';
-- Everything that is available can leave.
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('dave'), 'BTC', 3);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 6. An idempotent withdrawal; the reference was used by a deposit, but kinds are separate.
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.5, 'tx-1001');
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.5, 'tx-1001');
SELECT * FROM pg_temp.fails($$ SELECT exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.4, 'tx-1001') $$);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();
-- A withdrawal refused for want of funds leaves its reference free for a retry that succeeds.
SELECT * FROM pg_temp.fails($$ SELECT exchange.withdraw(pg_temp.id('carol'), 'USDT', 2000, 'wd-7') $$);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('carol'), 'USDT', 1000);
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('carol'), 'USDT', 2000, 'wd-7');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 7. Locked funds are not available: with 0.4 of Carol's 0.5 BTC held, 0.2 cannot leave.
SELECT pg_temp.label(hold_id, 'carol_hold'), amount FROM exchange.lock_balance(pg_temp.id('carol'), 'BTC', 0.4);
SELECT * FROM pg_temp.balances() WHERE account = 'carol';
SELECT * FROM pg_temp.fails($$ SELECT exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.2) $$);
SELECT pg_temp.l(hold_id), remaining FROM exchange.unlock_balance(pg_temp.id('carol_hold'));
SELECT symbol, available_balance, locked_balance FROM exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.2);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 8. A SUSPENDED account takes deposits but no withdrawal or lock (LX004); once reactivated
-- it withdraws again.
SELECT status FROM exchange.set_account_status(pg_temp.id('carol'), 'SUSPENDED');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('carol'), 'BTC', 0.1);
SELECT * FROM pg_temp.fails($$ SELECT exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.1) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.lock_balance(pg_temp.id('carol'), 'BTC', 0.1) $$);
-- An idempotent retry of an earlier withdrawal still answers: it changes nothing.
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.5, 'tx-1001');
SELECT status FROM exchange.set_account_status(pg_temp.id('carol'), 'ACTIVE');
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('carol'), 'BTC', 0.1);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 9. An application role with the operator profile: the journal names the session user and
-- the role it acts as.
SET ROLE exa_regress_funds_teller;
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('dave'), 'USDT', 42.42424242, 'tx-2001');
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('dave'), 'USDT', 0.42424242);
RESET ROLE;
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();
-- A trader may read balances but not move funds (42501).
SET ROLE exa_regress_funds_trader;
SELECT asset, available_balance FROM exchange.account_balances WHERE user_id = 'exa_funds_dave' ORDER BY asset;
SELECT * FROM pg_temp.fails($$ SELECT exchange.deposit(pg_temp.id('dave'), 'USDT', 1) $$);
RESET ROLE;

-- 10. Where the funds stand: the read view, and the journal sums that equal every balance.
SELECT user_id, asset, account_status, available_balance, locked_balance, total_balance
  FROM exchange.account_balances WHERE user_id LIKE 'exa_funds_%' ORDER BY user_id, asset;
SELECT pg_temp.l(account_id) AS account, asset, sum(delta_available) AS available,
	   sum(delta_locked) AS locked, count(*) AS journal_rows
  FROM exchange.balance_journal
 WHERE account_id IN (pg_temp.id('carol'), pg_temp.id('dave'))
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT * FROM exchange.check_invariants();

SELECT exchange.revoke_adapter('exa_regress_funds_teller');
SELECT exchange.revoke_adapter('exa_regress_funds_trader');
DROP ROLE exa_regress_funds_teller;
DROP ROLE exa_regress_funds_trader;
