-- Order lifecycle: every move the lifecycle table refuses (README "Order lifecycle and
-- arithmetic"), tried through the API on an order in each status.  Refusals raise LX002 and
-- change nothing; trigger_stop_orders leaves every status but PENDING unchanged (it returns no
-- row for them, and writes no event).
--
--   status \ event  | trigger   | fill leaving a remainder | fill completing | cancel | expire
--   PENDING (STOP)  | -> OPEN   | refuse                   | refuse          | ok     | ok
--   OPEN, PARTIAL   | unchanged | ok                       | ok              | ok     | ok
--   FILLED, CANCELLED, EXPIRED, REJECTED | unchanged | refuse | refuse        | refuse | refuse
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('LIL-USDT', 'LIL', 'USDT', 0.01, 0.01);
SELECT pg_temp.trader('il_alice');
SELECT pg_temp.trader('il_bob');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('il_alice'), 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('il_bob'), 'LIL', 100);

-- One STOP BUY order (stop 10, limit 12, quantity 2) in each status; all would trigger at 20.
-- open, partial, filled, cancelled and expired are triggered at 10 first; the last two are
-- partly filled before they end, so a fill of the rest would fit.
SELECT pg_temp.label(order_id, 'open'), status
  FROM exchange.place_order(pg_temp.id('il_alice'), 'LIL-USDT', 'BUY', 'STOP', 2, 12, stop_price => 10);
SELECT pg_temp.label(order_id, 'partial'), status
  FROM exchange.place_order(pg_temp.id('il_alice'), 'LIL-USDT', 'BUY', 'STOP', 2, 12, stop_price => 10);
SELECT pg_temp.label(order_id, 'filled'), status
  FROM exchange.place_order(pg_temp.id('il_alice'), 'LIL-USDT', 'BUY', 'STOP', 2, 12, stop_price => 10);
SELECT pg_temp.label(order_id, 'cancelled'), status
  FROM exchange.place_order(pg_temp.id('il_alice'), 'LIL-USDT', 'BUY', 'STOP', 2, 12, stop_price => 10);
SELECT pg_temp.label(order_id, 'expired'), status
  FROM exchange.place_order(pg_temp.id('il_alice'), 'LIL-USDT', 'BUY', 'STOP', 2, 12, stop_price => 10);
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('LIL-USDT', 10) ORDER BY 1;
SELECT pg_temp.label(order_id, 'pending'), status
  FROM exchange.place_order(pg_temp.id('il_alice'), 'LIL-USDT', 'BUY', 'STOP', 2, 12, stop_price => 10);
SELECT pg_temp.label(order_id, 'rejected'), status, reject_reason
  FROM exchange.place_order(pg_temp.id('il_alice'), 'LIL-USDT', 'BUY', 'STOP', 2, 12.001, stop_price => 10);
SELECT quantity FROM exchange.apply_trade(pg_temp.id('partial'), 1, 11);
SELECT quantity FROM exchange.apply_trade(pg_temp.id('filled'), 2, 11);
SELECT quantity FROM exchange.apply_trade(pg_temp.id('cancelled'), 0.5, 11);
SELECT quantity FROM exchange.apply_trade(pg_temp.id('expired'), 0.5, 11);
SELECT status FROM exchange.cancel_order(pg_temp.id('cancelled'));
SELECT status FROM exchange.expire_order(pg_temp.id('expired'));
SELECT "order", type, side, quantity, price, stop_price, status, filled, locked, reject_reason
  FROM pg_temp.orders();
-- A SELL order of Bob's, OPEN, as the other side of the matches below.
SELECT pg_temp.label(order_id, 'bob_sell'), status
  FROM exchange.place_order(pg_temp.id('il_bob'), 'LIL-USDT', 'SELL', 'LIMIT', 50, 11);
SELECT pg_temp.skip();
SELECT * FROM pg_temp.counts();

-- Each move tried on each order (in a rolled-back subtransaction): the SQLSTATE and message.
-- Every move on a terminal order and every fill of a PENDING one is LX002; cancelling or
-- expiring a PENDING stop is legal ('no error', rolled back here).
CREATE FUNCTION pg_temp.try(p_order text, p_event text) RETURNS TABLE (sqlstate text, message text)
LANGUAGE plpgsql AS $$
DECLARE
	v_id uuid := pg_temp.id(p_order);
	v_remaining numeric := (SELECT quantity - filled_quantity FROM exchange.orders WHERE order_id = v_id);
	v_stmt text;
BEGIN
	v_stmt := CASE p_event
		WHEN 'fill leaving a remainder' THEN format('SELECT exchange.apply_trade(%L, 0.5, 11)', v_id)
		WHEN 'fill completing' THEN format('SELECT exchange.apply_trade(%L, %s, 11)', v_id, greatest(v_remaining, 0.5))
		WHEN 'match leaving a remainder' THEN format('SELECT exchange.apply_match(%L, %L, 0.5, 11)', v_id, pg_temp.id('bob_sell'))
		WHEN 'match completing' THEN format('SELECT exchange.apply_match(%L, %L, %s, 11)', v_id, pg_temp.id('bob_sell'), greatest(v_remaining, 0.5))
		WHEN 'cancel_order' THEN format('SELECT exchange.cancel_order(%L)', v_id)
		WHEN 'expire_order' THEN format('SELECT exchange.expire_order(%L)', v_id)
	END;
	RETURN QUERY SELECT f.sqlstate, f.message FROM pg_temp.fails(v_stmt) f;
END
$$;

SELECT o."order", o.status, e.event, t.sqlstate, t.message
  FROM pg_temp.orders() o
 CROSS JOIN (VALUES (1, 'fill leaving a remainder'), (2, 'fill completing'),
                    (3, 'match leaving a remainder'), (4, 'match completing'),
                    (5, 'cancel_order'), (6, 'expire_order')) AS e (n, event)
 CROSS JOIN LATERAL pg_temp.try(o."order", e.event) t
 WHERE o.status IN ('PENDING', 'FILLED', 'CANCELLED', 'EXPIRED', 'REJECTED')
 ORDER BY array_position(ARRAY['PENDING', 'FILLED', 'CANCELLED', 'EXPIRED', 'REJECTED'], o.status::text), e.n;

-- Nothing changed: no row anywhere, every order as it was.
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT "order", status, filled, locked FROM pg_temp.orders();

-- The same refusals with their detail, once each: a PENDING fill has a hint; terminal orders
-- name their status.
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('pending'), 2, 11) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('filled'), 0.5, 11) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.cancel_order(pg_temp.id('rejected')) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.expire_order(pg_temp.id('expired')) $$);

-- The trigger column: at 20 every STOP's condition holds, but only the PENDING ones open; the
-- OPEN, PARTIAL and terminal ones are left unchanged, with no event.
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('LIL-USDT', 20) ORDER BY 1;
SELECT * FROM pg_temp.new_events() ORDER BY 1;
SELECT "order", status, filled, locked FROM pg_temp.orders();
-- And once more: nothing is left to trigger.
SELECT pg_temp.l(order_id), status FROM exchange.trigger_stop_orders('LIL-USDT', 20);

-- Batch calls skip terminal orders instead of failing: cancel_orders and expire_orders
-- touch only the live ones.
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('il_bob')) ORDER BY 1;
SELECT pg_temp.l(order_id), status FROM exchange.expire_orders('LIL-USDT', now()) ORDER BY 1;
SELECT pg_temp.l(order_id), status FROM exchange.expire_orders('LIL-USDT', now());
SELECT "order", status, filled, locked FROM pg_temp.orders();
SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();
