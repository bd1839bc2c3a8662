-- Holds: funds locked outside orders (a card authorisation, a pending withdrawal), then
-- released with unlock_balance or taken out of the account with capture_hold.  After each step:
-- the holds, the balances and the journal rows the step wrote (ids by label, see
-- include/helpers.psql).
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

SELECT pg_temp.label(account_id, 'erin') FROM exchange.create_account('exa_holds_erin');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('erin'), 'USDT', 100);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('erin'), 'BTC', 2);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 1. Lock 40 USDT under a hold: available 60, locked 40.
SELECT pg_temp.label(hold_id, 'card'), asset, amount, remaining, captured, reason,
	   released_at IS NOT NULL AS released
  FROM exchange.lock_balance(pg_temp.id('erin'), 'USDT', 40, 'card authorisation');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 2. More than is available cannot be locked (LX001): no hold row, no journal row.
SELECT * FROM pg_temp.fails($$ SELECT exchange.lock_balance(pg_temp.id('erin'), 'USDT', 60.00000001) $$);
-- Nor an asset never deposited; no balance row is created for it either.
SELECT * FROM pg_temp.fails($$ SELECT exchange.lock_balance(pg_temp.id('erin'), 'ETH', 1) $$);
SELECT * FROM pg_temp.holds();
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();

-- 3. Release 10 of the hold: 30 remains.
SELECT pg_temp.l(hold_id), amount, remaining, captured, released_at IS NOT NULL AS released
  FROM exchange.unlock_balance(pg_temp.id('card'), 10);
SELECT * FROM pg_temp.balances() WHERE asset = 'USDT';
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 4. Capture 5 of it with a reference: the 5 leave the account from locked funds.
SELECT pg_temp.l(hold_id), amount, remaining, captured, released_at IS NOT NULL AS released
  FROM exchange.capture_hold(pg_temp.id('card'), 5, 'settle-1');
SELECT * FROM pg_temp.balances() WHERE asset = 'USDT';
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 5. The capture's retry returns the hold and writes nothing; other values are LX009.
SELECT pg_temp.l(hold_id), amount, remaining, captured
  FROM exchange.capture_hold(pg_temp.id('card'), 5, 'settle-1');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();
SELECT * FROM pg_temp.fails($$ SELECT exchange.capture_hold(pg_temp.id('card'), 6, 'settle-1') $$);

-- 6. Asking for more than remains is a bad argument (22023), with the amounts.
SELECT * FROM pg_temp.fails($$ SELECT exchange.unlock_balance(pg_temp.id('card'), 25.00000001) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.capture_hold(pg_temp.id('card'), 26) $$);

-- 7. Capture all that remains (amount NULL): the hold is finished.
SELECT pg_temp.l(hold_id), amount, remaining, captured, released_at IS NOT NULL AS released
  FROM exchange.capture_hold(pg_temp.id('card'));
SELECT * FROM pg_temp.balances() WHERE asset = 'USDT';
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 8. A finished hold can be neither released nor captured again (LX002) ...
SELECT * FROM pg_temp.fails($$ SELECT exchange.unlock_balance(pg_temp.id('card')) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.capture_hold(pg_temp.id('card'), 1) $$);
-- ... and the capture reference stays bound to it: reusing it on another hold is LX009.
SELECT pg_temp.label(hold_id, 'wire'), amount FROM exchange.lock_balance(pg_temp.id('erin'), 'USDT', 20, 'pending wire');
SELECT * FROM pg_temp.fails($$ SELECT exchange.capture_hold(pg_temp.id('wire'), 5, 'settle-1') $$);

-- 9. Release a whole hold (amount NULL) in another asset.
SELECT pg_temp.label(hold_id, 'margin_call'), asset, amount FROM exchange.lock_balance(pg_temp.id('erin'), 'BTC', 1.5);
SELECT * FROM pg_temp.balances();
SELECT pg_temp.l(hold_id), amount, remaining, captured, released_at IS NOT NULL AS released
  FROM exchange.unlock_balance(pg_temp.id('margin_call'));
SELECT * FROM pg_temp.balances() WHERE asset = 'BTC';
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 10. Two live holds in one asset: locked is the sum of what remains of them.
SELECT pg_temp.label(hold_id, 'fee_reserve'), amount FROM exchange.lock_balance(pg_temp.id('erin'), 'USDT', 30);
SELECT * FROM pg_temp.holds() WHERE NOT released;
SELECT * FROM pg_temp.balances() WHERE asset = 'USDT';
SELECT * FROM exchange.check_invariants();

-- 11. A SUSPENDED account may still release and capture its holds (not lock new ones).
SELECT status FROM exchange.set_account_status(pg_temp.id('erin'), 'SUSPENDED');
SELECT pg_temp.l(hold_id), remaining FROM exchange.unlock_balance(pg_temp.id('wire'), 15);
SELECT pg_temp.l(hold_id), remaining, captured FROM exchange.capture_hold(pg_temp.id('fee_reserve'), 30, 'fees-2024-06');
SELECT * FROM pg_temp.fails($$ SELECT exchange.lock_balance(pg_temp.id('erin'), 'USDT', 1) $$);
SELECT status FROM exchange.set_account_status(pg_temp.id('erin'), 'ACTIVE');
SELECT * FROM pg_temp.holds();
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 12. Unknown holds are LX003.
SELECT * FROM pg_temp.fails($$ SELECT exchange.unlock_balance('00000000-0000-0000-0000-000000000000') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.capture_hold('00000000-0000-0000-0000-000000000000', 1) $$);

-- 13. Erin empties and closes the account.  Unlock stays allowed (the finished hold says so),
-- a capture on a CLOSED account is refused (LX004).
SELECT pg_temp.l(hold_id), remaining FROM exchange.unlock_balance(pg_temp.id('wire'));
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('erin'), 'USDT', 40);
SELECT symbol, available_balance FROM exchange.withdraw(pg_temp.id('erin'), 'BTC', 2);
SELECT status FROM exchange.set_account_status(pg_temp.id('erin'), 'CLOSED');
SELECT * FROM pg_temp.fails($$ SELECT exchange.unlock_balance(pg_temp.id('wire')) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.capture_hold(pg_temp.id('wire'), 1) $$);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();

-- 14. The holds' story in numbers: every hold's amount = remaining + captured + released.
SELECT pg_temp.l(h.hold_id) AS hold, h.amount, h.remaining, h.captured,
	   coalesce(sum(j.delta_available) FILTER (WHERE j.kind = 'UNLOCK'), 0) AS released,
	   h.amount = h.remaining + h.captured
				  + coalesce(sum(j.delta_available) FILTER (WHERE j.kind = 'UNLOCK'), 0) AS adds_up
  FROM exchange.holds h
  JOIN exchange.balance_journal j ON j.hold_id = h.hold_id
 WHERE h.account_id = pg_temp.id('erin')
 GROUP BY h.hold_id, h.amount, h.remaining, h.captured
 ORDER BY 1;
SELECT * FROM exchange.check_invariants();
