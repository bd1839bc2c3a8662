-- The order lifecycle guard (README "Order lifecycle and arithmetic"): a BEFORE UPDATE trigger
-- on exchange.orders, ENABLE ALWAYS, that refuses with LX002 every change the lifecycle table
-- does not allow, whoever makes it -- here a superuser writing the table directly.  place_order
-- and the settlement functions are not used: one order per status is inserted directly (the
-- guard does not act on INSERT, so pg_restore can reload any row), then updated.  Every update
-- runs in a rolled-back subtransaction (pg_temp.fails), so each starts from the same orders.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

SELECT pg_temp.label(account_id, 'ivy') FROM exchange.create_account('exa_lifecycle_ivy');
SELECT pg_temp.label(account_id, 'jon') FROM exchange.create_account('exa_lifecycle_jon');
SELECT symbol FROM exchange.create_market('LFCA-LFCB', 'LFCA', 'LFCB');
SELECT symbol FROM exchange.create_market('LFCC-LFCB', 'LFCC', 'LFCB');

-- One order in each status (quantity 2, price 10).
INSERT INTO exchange.orders (account_id, symbol, order_type, side, quantity, price, stop_price,
							 filled_quantity, status, time_in_force, lock_asset, locked_amount,
							 reject_reason, client_order_id)
VALUES (pg_temp.id('ivy'), 'LFCA-LFCB', 'STOP',  'BUY', 2, 10, 9, 0, 'PENDING',   'GTC', 'LFCB', 20, NULL, 'o-pending'),
	   (pg_temp.id('ivy'), 'LFCA-LFCB', 'LIMIT', 'BUY', 2, 10, NULL, 0, 'OPEN',      'GTC', 'LFCB', 20, NULL, 'o-open'),
	   (pg_temp.id('ivy'), 'LFCA-LFCB', 'LIMIT', 'BUY', 2, 10, NULL, 1, 'PARTIAL',   'GTC', 'LFCB', 10, NULL, 'o-partial'),
	   (pg_temp.id('ivy'), 'LFCA-LFCB', 'LIMIT', 'BUY', 2, 10, NULL, 2, 'FILLED',    'GTC', 'LFCB', 0, NULL, 'o-filled'),
	   (pg_temp.id('ivy'), 'LFCA-LFCB', 'LIMIT', 'BUY', 2, 10, NULL, 0, 'CANCELLED', 'GTC', 'LFCB', 0, NULL, 'o-cancelled'),
	   (pg_temp.id('ivy'), 'LFCA-LFCB', 'LIMIT', 'BUY', 2, 10, NULL, 0, 'REJECTED',  'GTC', 'LFCB', 0, 'INSUFFICIENT_FUNDS', 'o-rejected'),
	   (pg_temp.id('ivy'), 'LFCA-LFCB', 'LIMIT', 'BUY', 2, 10, NULL, 1, 'EXPIRED',   'IOC', 'LFCB', 0, NULL, 'o-expired')
RETURNING pg_temp.label(order_id, lower(status)), status, filled_quantity, locked_amount;

SELECT tgname, tgenabled, tgtype & 16 <> 0 AS on_update, tgtype & 4 <> 0 AS on_insert,
	   tgtype & 2 <> 0 AS before
  FROM pg_trigger WHERE tgrelid = 'exchange.orders'::regclass AND NOT tgisinternal;

-- 1. Every status change, made the way a caller would make it: to PARTIAL with a fill of 0.5
-- that leaves a remainder, to FILLED with filled_quantity = quantity, to a terminal status with
-- the lock released, to the same status with only metadata changed.  'ok' = accepted.
CREATE FUNCTION pg_temp.move(p_from text, p_to text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	sets text := CASE p_to
		WHEN 'PARTIAL' THEN 'status = ''PARTIAL'', filled_quantity = filled_quantity + 0.5'
		WHEN 'FILLED' THEN 'status = ''FILLED'', filled_quantity = quantity, locked_amount = 0, filled_at = now()'
		WHEN 'CANCELLED' THEN 'status = ''CANCELLED'', locked_amount = 0, cancelled_at = now()'
		WHEN 'EXPIRED' THEN 'status = ''EXPIRED'', locked_amount = 0'
		WHEN 'REJECTED' THEN 'status = ''REJECTED'', locked_amount = 0, reject_reason = ''MIN_NOTIONAL'''
		ELSE format('status = %L', p_to) END;
	r record;
BEGIN
	IF p_from = p_to THEN
		sets := 'metadata = ''{"note": "touched"}'', updated_at = now()';
	END IF;
	SELECT * INTO r FROM pg_temp.fails(format(
		'UPDATE exchange.orders SET %s WHERE order_id = pg_temp.id(%L)', sets, lower(p_from)));
	RETURN CASE r.sqlstate WHEN 'no error' THEN 'ok' ELSE r.sqlstate END;
END
$$;

SELECT f AS "from \ to",
	   pg_temp.move(f, 'PENDING') AS "PENDING", pg_temp.move(f, 'OPEN') AS "OPEN",
	   pg_temp.move(f, 'PARTIAL') AS "PARTIAL", pg_temp.move(f, 'FILLED') AS "FILLED",
	   pg_temp.move(f, 'CANCELLED') AS "CANCELLED", pg_temp.move(f, 'REJECTED') AS "REJECTED",
	   pg_temp.move(f, 'EXPIRED') AS "EXPIRED"
  FROM unnest('{PENDING,OPEN,PARTIAL,FILLED,CANCELLED,REJECTED,EXPIRED}'::text[])
	   WITH ORDINALITY AS s (f, n)
 ORDER BY n;

-- 2. What the guard says, for each kind of refusal.
CREATE TEMP TABLE cases (n serial, what text, stmt text);
INSERT INTO cases (what, stmt) VALUES
	('PENDING -> PARTIAL (a stop order cannot be filled)',
	 $$UPDATE exchange.orders SET status = 'PARTIAL', filled_quantity = 1 WHERE order_id = pg_temp.id('pending')$$),
	('PENDING keeps its status but is filled',
	 $$UPDATE exchange.orders SET filled_quantity = 1 WHERE order_id = pg_temp.id('pending')$$),
	('OPEN -> PENDING',
	 $$UPDATE exchange.orders SET status = 'PENDING' WHERE order_id = pg_temp.id('open')$$),
	('OPEN -> REJECTED (a refusal is stored at placement, never later)',
	 $$UPDATE exchange.orders SET status = 'REJECTED', locked_amount = 0, reject_reason = 'LOT_SIZE' WHERE order_id = pg_temp.id('open')$$),
	('OPEN keeps its status but is filled',
	 $$UPDATE exchange.orders SET filled_quantity = 0.5 WHERE order_id = pg_temp.id('open')$$),
	('OPEN -> PARTIAL without a fill',
	 $$UPDATE exchange.orders SET status = 'PARTIAL' WHERE order_id = pg_temp.id('open')$$),
	('OPEN -> PARTIAL with a fill that completes it',
	 $$UPDATE exchange.orders SET status = 'PARTIAL', filled_quantity = 2 WHERE order_id = pg_temp.id('open')$$),
	('OPEN -> FILLED with a remainder',
	 $$UPDATE exchange.orders SET status = 'FILLED', filled_quantity = 1.5 WHERE order_id = pg_temp.id('open')$$),
	('OPEN -> CANCELLED with a fill in the same update',
	 $$UPDATE exchange.orders SET status = 'CANCELLED', filled_quantity = 0.5, locked_amount = 0 WHERE order_id = pg_temp.id('open')$$),
	('OPEN filled above its quantity',
	 $$UPDATE exchange.orders SET status = 'FILLED', filled_quantity = 2.5, locked_amount = 0 WHERE order_id = pg_temp.id('open')$$),
	('PARTIAL -> OPEN',
	 $$UPDATE exchange.orders SET status = 'OPEN' WHERE order_id = pg_temp.id('partial')$$),
	('PARTIAL filled_quantity decreases',
	 $$UPDATE exchange.orders SET filled_quantity = 0.5 WHERE order_id = pg_temp.id('partial')$$),
	('PARTIAL -> PARTIAL with a fill that completes it',
	 $$UPDATE exchange.orders SET filled_quantity = 2 WHERE order_id = pg_temp.id('partial')$$),
	('PARTIAL -> EXPIRED with a fill in the same update',
	 $$UPDATE exchange.orders SET status = 'EXPIRED', filled_quantity = 1.5, locked_amount = 0 WHERE order_id = pg_temp.id('partial')$$),
	('status set to an unknown value',
	 $$UPDATE exchange.orders SET status = 'ARCHIVED' WHERE order_id = pg_temp.id('open')$$),
	('status set to NULL',
	 $$UPDATE exchange.orders SET status = NULL WHERE order_id = pg_temp.id('open')$$),
	('FILLED: metadata only',
	 $$UPDATE exchange.orders SET metadata = '{"note": "late"}' WHERE order_id = pg_temp.id('filled')$$),
	('CANCELLED -> OPEN (reopened)',
	 $$UPDATE exchange.orders SET status = 'OPEN', locked_amount = 20 WHERE order_id = pg_temp.id('cancelled')$$),
	('REJECTED -> OPEN (accepted after all)',
	 $$UPDATE exchange.orders SET status = 'OPEN', reject_reason = NULL, locked_amount = 20 WHERE order_id = pg_temp.id('rejected')$$),
	('EXPIRED -> PARTIAL (a late fill)',
	 $$UPDATE exchange.orders SET status = 'PARTIAL', filled_quantity = 1.5 WHERE order_id = pg_temp.id('expired')$$),
	('one terminal order among several refuses the whole statement',
	 $$UPDATE exchange.orders SET status = 'CANCELLED', locked_amount = 0 WHERE client_order_id IN ('o-open', 'o-partial', 'o-filled')$$);

SELECT c.what, f.sqlstate, f.message, f.detail
  FROM cases c, pg_temp.fails(c.stmt) f
 ORDER BY c.n;

-- 3. Columns fixed when the order is placed cannot change, in any live status (LX002) ...
SELECT col, o AS "order", (pg_temp.fails(format('UPDATE exchange.orders SET %I = %s WHERE order_id = pg_temp.id(%L)',
												col, val, o))).*
  FROM (VALUES ('order_id', 'gen_random_uuid()', 'open'), ('account_id', 'pg_temp.id(''jon'')', 'open'),
			   ('symbol', '''LFCC-LFCB''', 'open'), ('order_type', '''MARKET''', 'partial'),
			   ('side', '''SELL''', 'open'), ('quantity', '1.5', 'partial'), ('price', '11', 'open'),
			   ('stop_price', '8', 'pending'), ('time_in_force', '''FOK''', 'pending'),
			   ('client_order_id', '''o-other''', 'partial'), ('lock_asset', '''LFCA''', 'open'),
			   ('created_at', 'created_at - interval ''1 day''', 'pending')) AS v (col, val, o)
 ORDER BY col;
-- ... but the same value written again is no change (numeric compared by value: 10 = 10.0).
SELECT * FROM pg_temp.fails($$ UPDATE exchange.orders SET price = 10.0, quantity = 2.00, side = 'BUY' WHERE order_id = pg_temp.id('open') $$);

-- 4. What a live order may change without a status move: its lock, its average price, its
-- timestamps and metadata.
UPDATE exchange.orders
   SET locked_amount = 15, average_price = 9.5, updated_at = now(), metadata = '{"note": "repriced lock"}'
 WHERE order_id = pg_temp.id('open')
RETURNING pg_temp.l(order_id), status, locked_amount, average_price, metadata;

-- 5. Legal moves commit; afterwards the order is held to its new status.
UPDATE exchange.orders SET status = 'OPEN' WHERE order_id = pg_temp.id('pending')
RETURNING pg_temp.l(order_id), order_type, status, filled_quantity;
UPDATE exchange.orders SET status = 'PARTIAL', filled_quantity = 0.5 WHERE order_id = pg_temp.id('pending')
RETURNING pg_temp.l(order_id), status, filled_quantity;
UPDATE exchange.orders SET status = 'PARTIAL', filled_quantity = 1.25 WHERE order_id = pg_temp.id('pending')
RETURNING pg_temp.l(order_id), status, filled_quantity;
UPDATE exchange.orders SET status = 'FILLED', filled_quantity = 2, locked_amount = 0 WHERE order_id = pg_temp.id('pending')
RETURNING pg_temp.l(order_id), status, filled_quantity, locked_amount;
SELECT sqlstate, message FROM pg_temp.fails($$ UPDATE exchange.orders SET status = 'CANCELLED' WHERE order_id = pg_temp.id('pending') $$);

-- 6. The guard holds for replication too (ENABLE ALWAYS): session_replication_role = replica
-- skips ordinary triggers, not this one.
SET session_replication_role = replica;
SELECT sqlstate, message FROM pg_temp.fails($$ UPDATE exchange.orders SET status = 'OPEN' WHERE order_id = pg_temp.id('cancelled') $$);
RESET session_replication_role;

-- 7. The guard only refuses: it writes no event and no journal row.
SELECT count(*) AS order_events FROM exchange.order_events
 WHERE order_id IN (SELECT order_id FROM exchange.orders WHERE account_id = pg_temp.id('ivy'));
SELECT * FROM pg_temp.new_journal();

-- Clean up the orders made by hand, and the markets; the ledger is sound again.
DELETE FROM exchange.orders WHERE account_id = pg_temp.id('ivy');
DELETE FROM exchange.markets WHERE symbol IN ('LFCA-LFCB', 'LFCC-LFCB');
SELECT * FROM exchange.check_invariants();
