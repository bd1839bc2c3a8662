-- Accounts: an operator opens accounts, moves them through KYC and the account lifecycle of
-- README "Order lifecycle and arithmetic", and closes one.  After each step: the account, the
-- journal rows and the outbox rows the step wrote.  Ids are shown by label (see
-- include/helpers.psql).
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

-- 1. Alice opens a SPOT account (the default type): ACTIVE, KYC PENDING, empty metadata.
SELECT pg_temp.label(account_id, 'alice'), user_id, account_type, status, kyc_status, metadata
  FROM exchange.create_account('exa_accounts_alice');
SELECT * FROM pg_temp.new_outbox();

-- 2. And a MARGIN account with metadata: one account per (user, type).
SELECT pg_temp.label(account_id, 'alice_margin'), user_id, account_type, status, kyc_status, metadata
  FROM exchange.create_account('exa_accounts_alice', 'MARGIN', '{"tier": "gold"}');
SELECT pg_temp.label(account_id, 'bob'), user_id, account_type, status, kyc_status, metadata
  FROM exchange.create_account(user_id => 'exa_accounts_bob', account_type => 'FUTURES');
SELECT * FROM pg_temp.new_outbox();

-- 3. A second SPOT account for Alice is refused with LX010, naming the existing account.
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_account('exa_accounts_alice') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_account('exa_accounts_alice', 'MARGIN', '{"tier": "other"}') $$);
-- ... and wrote nothing.
SELECT count(*) AS alice_accounts FROM exchange.accounts WHERE user_id = 'exa_accounts_alice';
SELECT * FROM pg_temp.new_outbox();

-- 4. KYC: PENDING -> APPROVED.
SELECT pg_temp.l(account_id), status, kyc_status FROM exchange.set_kyc_status(pg_temp.id('alice'), 'APPROVED');
SELECT * FROM pg_temp.new_outbox();
-- Setting the same value again changes nothing and writes no outbox row.
SELECT pg_temp.l(account_id), status, kyc_status FROM exchange.set_kyc_status(pg_temp.id('alice'), 'APPROVED');
SELECT * FROM pg_temp.new_outbox();
-- APPROVED -> PENDING is not a KYC move (LX002).
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_kyc_status(pg_temp.id('alice'), 'PENDING') $$);
-- APPROVED -> REJECTED, then REJECTED -> APPROVED is refused, REJECTED -> PENDING is allowed.
SELECT pg_temp.l(account_id), kyc_status FROM exchange.set_kyc_status(pg_temp.id('alice'), 'REJECTED');
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_kyc_status(pg_temp.id('alice'), 'APPROVED') $$);
SELECT pg_temp.l(account_id), kyc_status FROM exchange.set_kyc_status(pg_temp.id('alice'), 'PENDING');
-- PENDING -> REJECTED directly (Bob), then back to PENDING and on to APPROVED.
SELECT pg_temp.l(account_id), kyc_status FROM exchange.set_kyc_status(pg_temp.id('bob'), 'REJECTED');
SELECT pg_temp.l(account_id), kyc_status FROM exchange.set_kyc_status(pg_temp.id('bob'), 'PENDING');
SELECT pg_temp.l(account_id), kyc_status FROM exchange.set_kyc_status(pg_temp.id('bob'), 'APPROVED');
SELECT * FROM pg_temp.new_outbox();

-- 5. Account status: ACTIVE -> SUSPENDED -> ACTIVE.
SELECT pg_temp.l(account_id), status, kyc_status FROM exchange.set_account_status(pg_temp.id('alice'), 'SUSPENDED');
SELECT pg_temp.l(account_id), status FROM exchange.set_account_status(pg_temp.id('alice'), 'SUSPENDED');
SELECT pg_temp.l(account_id), status FROM exchange.set_account_status(pg_temp.id('alice'), 'ACTIVE');
SELECT * FROM pg_temp.new_outbox();
-- The status change bumps updated_at, never created_at.
SELECT updated_at > created_at AS updated FROM exchange.accounts WHERE account_id = pg_temp.id('alice');

-- 6. An account that holds funds cannot be closed (LX002), whatever part of them is locked.
SELECT asset, available, locked FROM pg_temp.balances() WHERE account = 'alice';
SELECT symbol, available_balance, locked_balance FROM exchange.deposit(pg_temp.id('alice'), 'USDT', 250);
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_account_status(pg_temp.id('alice'), 'CLOSED') $$);
SELECT pg_temp.label(hold_id, 'alice_hold'), amount FROM exchange.lock_balance(pg_temp.id('alice'), 'USDT', 250, 'card authorisation');
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_account_status(pg_temp.id('alice'), 'CLOSED') $$);
SELECT hold, remaining, released FROM pg_temp.holds();
-- Releasing the hold leaves the funds: still refused.
SELECT pg_temp.l(hold_id), remaining FROM exchange.unlock_balance(pg_temp.id('alice_hold'));
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_account_status(pg_temp.id('alice'), 'CLOSED') $$);
SELECT symbol, available_balance, locked_balance FROM exchange.withdraw(pg_temp.id('alice'), 'USDT', 250);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 7. A live order blocks closing too.  (place_order is not part of this file: the order row is
-- inserted directly, as a superuser, and deleted again below.)
SELECT (exchange.create_market('ACCT-USD', 'ACCT', 'USD')).symbol IS NOT NULL AS market_created;
INSERT INTO exchange.orders (account_id, symbol, order_type, side, quantity, price, status,
							 time_in_force, lock_asset)
VALUES (pg_temp.id('alice'), 'ACCT-USD', 'LIMIT', 'BUY', 1, 1, 'OPEN', 'GTC', 'USD');
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_account_status(pg_temp.id('alice'), 'CLOSED') $$);
DELETE FROM exchange.orders WHERE account_id = pg_temp.id('alice');
DELETE FROM exchange.markets WHERE symbol = 'ACCT-USD';
SELECT * FROM pg_temp.new_outbox();

-- 8. With zero balances and nothing live, Alice's SPOT account closes (a zero balance row is
-- fine).  A suspended account may close as well (Bob).
SELECT pg_temp.l(account_id), status FROM exchange.set_account_status(pg_temp.id('alice'), 'CLOSED');
SELECT pg_temp.l(account_id), status FROM exchange.set_account_status(pg_temp.id('bob'), 'SUSPENDED');
SELECT pg_temp.l(account_id), status FROM exchange.set_account_status(pg_temp.id('bob'), 'CLOSED');
SELECT * FROM pg_temp.new_outbox();

-- 9. CLOSED is final: it cannot become ACTIVE or SUSPENDED again (LX002); CLOSED again is a
-- no-op that writes nothing.
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_account_status(pg_temp.id('alice'), 'ACTIVE') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_account_status(pg_temp.id('alice'), 'SUSPENDED') $$);
SELECT pg_temp.l(account_id), status FROM exchange.set_account_status(pg_temp.id('alice'), 'CLOSED');
SELECT * FROM pg_temp.new_outbox();

-- 10. A closed account takes no deposit and no withdrawal or lock (LX004) ...
SELECT * FROM pg_temp.fails($$ SELECT exchange.deposit(pg_temp.id('alice'), 'USDT', 1) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.withdraw(pg_temp.id('alice'), 'USDT', 1) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.lock_balance(pg_temp.id('alice'), 'USDT', 1) $$);
-- ... while Alice's MARGIN account, a different account, is untouched.
SELECT pg_temp.l(account_id), account_type, status, kyc_status, metadata
  FROM exchange.accounts WHERE user_id = 'exa_accounts_alice' ORDER BY account_type;
-- The closed SPOT account still blocks a new SPOT account for Alice: accounts are never reused.
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_account('exa_accounts_alice', 'SPOT') $$);

-- 11. Unknown accounts are LX003.
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_account_status('00000000-0000-0000-0000-000000000000', 'SUSPENDED') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_kyc_status('00000000-0000-0000-0000-000000000000', 'APPROVED') $$);

-- 12. Nothing of the failed steps reached the journal or the outbox, and the ledger is sound.
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();
SELECT * FROM exchange.check_invariants();
