-- bench/setup.sql — the benchmark's fixture, loaded by bench/run.sh after CREATE EXTENSION and
-- bench/plpgsql.sql.
--
--   * market BTC-USDT (tick 0.01, lot 0.001, minimum notional 1, maker 0.1 %, taker 0.2 %);
--   * accounts 1..8 with fixed ids 00000000-0000-0000-0000-0000000000NN (bench.acct(n)), so
--     that a pgbench client finds its account without a lookup: client c uses account
--     c % naccts + 1 (naccts = number of clients, or 1 for the hot-account runs); ACTIVE, KYC
--     APPROVED, funded far beyond what any run spends (no refusal ever happens);
--   * bench.pool: per account 100 big LIMIT orders (odd k BUY at 101, even k SELL at 99, 100000
--     BTC each) that apply_trade fills 0.001 at a time, at 100, TAKER.
-- The accounts are inserted directly (fixed ids); everything else goes through the C API.

SET search_path = pg_catalog, pg_temp;

CREATE SCHEMA bench;

CREATE FUNCTION bench.acct(n int) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid $$;

-- round_half_even8(num / den), exact: what the client-side scripts use for average_price
-- (pgbench cannot do decimal arithmetic; a Go client would do this in its own code).
CREATE FUNCTION bench.half_even8(num numeric, den numeric) RETURNS numeric LANGUAGE sql IMMUTABLE
	AS $$
	SELECT (div(num * 100000000, den)
	        + CASE WHEN (num * 100000000 - div(num * 100000000, den) * den) * 2 > den
	                 OR ((num * 100000000 - div(num * 100000000, den) * den) * 2 = den
	                     AND mod(div(num * 100000000, den), 2) = 1) THEN 1 ELSE 0 END)
	       / 100000000
	$$;

-- Every row written for one account, normalised so that two accounts that went through the same
-- calls compare equal: ids replaced by the rank of the order (by its creation event) and of the
-- trade (by its first journal row), timestamps left out (executed_at kept when times).  Used by
-- bench/equivalence.sql and by bench/run.sh to check that the three variants write the same
-- rows.
CREATE FUNCTION bench.rows(acct uuid, times boolean DEFAULT true) RETURNS TABLE (tbl text, n bigint, row_text text) LANGUAGE sql AS $$
	WITH o AS (
		SELECT o.*, 'O' || row_number() OVER (ORDER BY (SELECT min(e.seq) FROM exchange.order_events e WHERE e.order_id = o.order_id)) AS label
		  FROM exchange.orders o WHERE o.account_id = acct),
	t AS (
		SELECT t.*, 'T' || row_number() OVER (ORDER BY (SELECT min(j.seq) FROM exchange.balance_journal j WHERE j.trade_id = t.trade_id)) AS label
		  FROM exchange.trades t WHERE t.account_id = acct),
	ids AS (SELECT order_id AS id, label FROM o UNION ALL SELECT trade_id, label FROM t UNION ALL SELECT acct, 'ACCT')
	SELECT 'orders', row_number() OVER (ORDER BY o.label),
	       concat_ws(' ', o.label, o.symbol, o.order_type, o.side, o.quantity, o.price, o.filled_quantity,
	                 o.filled_value, o.average_price, o.status, o.time_in_force, o.stop_price, o.client_order_id,
	                 o.lock_asset, o.locked_amount, o.reject_reason, o.metadata,
	                 o.filled_at IS NULL, o.cancelled_at IS NULL)
	  FROM o
	UNION ALL
	SELECT 'trades', row_number() OVER (ORDER BY t.label),
	       concat_ws(' ', t.label, (SELECT label FROM o WHERE o.order_id = t.order_id), t.symbol, t.side,
	                 t.quantity, t.price, t.fee, t.fee_currency, CASE WHEN times THEN t.executed_at END, t.trade_ref, t.liquidity,
	                 t.match_id, t.metadata)
	  FROM t
	UNION ALL
	SELECT 'balance_journal', row_number() OVER (ORDER BY j.seq),
	       concat_ws(' ', j.asset, j.delta_available, j.delta_locked, j.kind,
	                 (SELECT label FROM ids WHERE ids.id = j.order_id), (SELECT label FROM ids WHERE ids.id = j.trade_id),
	                 j.hold_id, j.reference, j.actor)
	  FROM exchange.balance_journal j WHERE j.account_id = acct
	UNION ALL
	SELECT 'order_events', row_number() OVER (ORDER BY e.seq),
	       concat_ws(' ', (SELECT label FROM o WHERE o.order_id = e.order_id), e.from_status, e.to_status,
	                 e.filled_delta, e.reason, e.actor)
	  FROM exchange.order_events e WHERE e.order_id IN (SELECT order_id FROM o)
	UNION ALL
	SELECT 'fee_ledger', row_number() OVER (ORDER BY f.seq),
	       concat_ws(' ', (SELECT label FROM t WHERE t.trade_id = f.trade_id), f.market, f.asset, f.amount)
	  FROM exchange.fee_ledger f WHERE f.trade_id IN (SELECT trade_id FROM t)
	UNION ALL
	SELECT 'balances', row_number() OVER (ORDER BY b.symbol),
	       concat_ws(' ', b.symbol, b.available_balance, b.locked_balance, b.total_balance)
	  FROM exchange.balances b WHERE b.account_id = acct
	UNION ALL
	SELECT 'outbox', row_number() OVER (ORDER BY x.id),
	       concat_ws(' ', x.kind, (SELECT string_agg(coalesce(replace(u.k, s.id, coalesce((SELECT label FROM ids WHERE ids.id::text = s.id), '?')), u.k),
	                                                  ',' ORDER BY u.ord)
	                                 FROM unnest(x.keys) WITH ORDINALITY AS u(k, ord),
	                                      LATERAL (SELECT substring(u.k FROM '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}') AS id) s))
	  FROM exchange.outbox x
	 WHERE EXISTS (SELECT FROM unnest(x.keys) k WHERE k LIKE '%' || acct || '%')
$$;

SELECT exchange.create_market('BTC-USDT', 'BTC', 'USDT', 0.01, 0.001, 0.001, 1, 0.001, 0.002);

INSERT INTO exchange.accounts (account_id, user_id, status, kyc_status)
SELECT bench.acct(n), 'bench-' || n, 'ACTIVE', 'APPROVED' FROM generate_series(1, 8) n;
SELECT exchange.deposit(bench.acct(n), 'USDT', 1000000000000) FROM generate_series(1, 8) n;
SELECT exchange.deposit(bench.acct(n), 'BTC', 1000000000) FROM generate_series(1, 8) n;

CREATE TABLE bench.pool (n int, k int, order_id uuid NOT NULL, PRIMARY KEY (n, k));
INSERT INTO bench.pool
SELECT n, k, (exchange.place_order(bench.acct(n), 'BTC-USDT',
                                   CASE WHEN k % 2 = 1 THEN 'BUY' ELSE 'SELL' END, 'LIMIT',
                                   100000, CASE WHEN k % 2 = 1 THEN 101 ELSE 99 END)).order_id
  FROM generate_series(1, 8) n, generate_series(1, 100) k;

VACUUM ANALYZE;
