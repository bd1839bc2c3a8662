-- apply_trade done by the client: the statements the C function runs, sent one by one inside
-- BEGIN/COMMIT (15 round trips), the checks and the arithmetic in the client (pgbench integer
-- arithmetic in units of 1e-8), except the two values whose exact decimal arithmetic would
-- overflow 64-bit integers, computed in the UPDATE that stores them: the BUY lock
-- ceil8(remaining x limit) and the average price (bench.half_even8).  Strings are chosen by
-- the server in the statement that reads them (pgbench has no string variables).  Run with
-- -M prepared.  The same fill as trade_c.sql: 0.001 at 100, TAKER.
--
-- Refusals (LX002, LX007, LX008, LX006) roll back; a balance UPDATE that changes no row makes
-- \gset fail and aborts the client (the benchmark never runs short).  The moves (what the order
-- pays out of its lock, what it receives, the fee) use one generic statement pair, as a client
-- library would, and follow lock order 4: the two assets in byte order, on one asset in the
-- given order.
\set an :client_id % :naccts + 1 + :acct0
\set k random(1, 100)
\set q_u 100000
\set p_u 10000000000
BEGIN;
SELECT a.account_id AS acct, p.order_id AS oid FROM bench.pool p, exchange.accounts a WHERE p.n = :an AND p.k = :k AND a.account_id = (SELECT o.account_id FROM exchange.orders o WHERE o.order_id = p.order_id) FOR SHARE OF a \gset
SELECT o.symbol AS sym, o.side AS side, o.status AS status, m.base_asset AS base, m.quote_asset AS quote, (m.base_asset COLLATE "C" < m.quote_asset)::int AS base_first, (o.quantity * 100000000)::bigint AS qty_u, (o.price * 100000000)::bigint AS price_u, (o.filled_quantity * 100000000)::bigint AS filled_u, (o.locked_amount * 100000000)::bigint AS old_locked_u, (m.taker_fee_rate * 100000000)::bigint AS rate_u, (o.side = 'BUY')::int AS buy, (o.status IN ('OPEN', 'PARTIAL'))::int AS fillable, (o.time_in_force = 'FOK')::int AS fok FROM exchange.orders o JOIN exchange.markets m ON m.symbol = o.symbol WHERE o.order_id = :oid FOR UPDATE OF o \gset
\set remaining_u :qty_u - :filled_u
\set notional_u (:q_u * :p_u) / 100000000
\if :buy = 1
\set proceeds_u :q_u
\else
\set proceeds_u :notional_u
\endif
\set fee_u (:proceeds_u * :rate_u + 99999999) / 100000000
\if :q_u = :remaining_u
\set complete 1
\else
\set complete 0
\endif
\set ok 1
\if :fillable = 0
\set ok 0
\elif :q_u > :remaining_u
\set ok 0
\elif :fok = 1 and :q_u < :remaining_u
\set ok 0
\elif :buy = 1 and :p_u > :price_u
\set ok 0
\elif :buy = 0 and :p_u < :price_u
\set ok 0
\endif
\if :ok = 1
INSERT INTO exchange.trades (trade_id, order_id, account_id, symbol, side, quantity, price, fee, fee_currency, executed_at, trade_ref, liquidity, match_id) VALUES (pg_catalog.gen_random_uuid(), :oid, :acct, :sym, :side, :q_u * 0.00000001, :p_u * 0.00000001, :fee_u * 0.00000001, (ARRAY[:quote, :base])[:buy + 1], pg_catalog.now(), NULL, 'TAKER', NULL) RETURNING trade_id AS tid \gset
UPDATE exchange.orders SET filled_quantity = filled_quantity + :q_u * 0.00000001, filled_value = filled_value + (:q_u * 0.00000001) * (:p_u * 0.00000001), average_price = bench.half_even8(filled_value + (:q_u * 0.00000001) * (:p_u * 0.00000001), filled_quantity + :q_u * 0.00000001), status = (ARRAY['PARTIAL', 'FILLED'])[:complete + 1], locked_amount = CASE WHEN :complete = 1 THEN 0 WHEN :buy = 1 THEN pg_catalog.ceil((quantity - filled_quantity - :q_u * 0.00000001) * price * 100000000) / 100000000 ELSE locked_amount - :q_u * 0.00000001 END, updated_at = pg_catalog.now(), filled_at = CASE WHEN :complete = 1 THEN pg_catalog.now() ELSE filled_at END WHERE order_id = :oid RETURNING (locked_amount * 100000000)::bigint AS new_locked_u \gset
INSERT INTO exchange.order_events (order_id, from_status, to_status, filled_delta, reason, actor) VALUES (:oid, :status, (ARRAY['PARTIAL', 'FILLED'])[:complete + 1], :q_u * 0.00000001, NULL, session_user);
\set release_u :old_locked_u - :new_locked_u
\if :buy = 1
\set pay_ai 2
\set pay_da :release_u - :notional_u
\set recv_ai 1
\set recv_da :q_u
\else
\set pay_ai 1
\set pay_da 0
\set recv_ai 2
\set recv_da :notional_u
\endif
\set pay_dl 0 - :release_u
\set fee_da 0 - :fee_u
\if (:pay_ai = 1 and :base_first = 1) or (:pay_ai = 2 and :base_first = 0)
\set m1_ai :pay_ai
\set m1_da :pay_da
\set m1_dl :pay_dl
\set m1_kind 1
\set m2_ai :recv_ai
\set m2_da :recv_da
\set m2_dl 0
\set m2_kind 1
\set m3_ai :recv_ai
\set m3_da :fee_da
\set m3_dl 0
\set m3_kind 2
\elif :fee_u > 0
\set m1_ai :recv_ai
\set m1_da :recv_da
\set m1_dl 0
\set m1_kind 1
\set m2_ai :recv_ai
\set m2_da :fee_da
\set m2_dl 0
\set m2_kind 2
\set m3_ai :pay_ai
\set m3_da :pay_da
\set m3_dl :pay_dl
\set m3_kind 1
\else
\set m1_ai :recv_ai
\set m1_da :recv_da
\set m1_dl 0
\set m1_kind 1
\set m2_ai :pay_ai
\set m2_da :pay_da
\set m2_dl :pay_dl
\set m2_kind 1
\endif
UPDATE exchange.balances SET available_balance = available_balance + :m1_da * 0.00000001, locked_balance = locked_balance + :m1_dl * 0.00000001, last_updated = pg_catalog.now() WHERE account_id = :acct AND symbol = (ARRAY[:base, :quote])[:m1_ai] AND available_balance + :m1_da * 0.00000001 >= 0 AND locked_balance + :m1_dl * 0.00000001 >= 0 RETURNING 1 AS moved \gset
INSERT INTO exchange.balance_journal (account_id, asset, delta_available, delta_locked, kind, order_id, trade_id, hold_id, reference, actor) VALUES (:acct, (ARRAY[:base, :quote])[:m1_ai], :m1_da * 0.00000001, :m1_dl * 0.00000001, (ARRAY['TRADE', 'FEE'])[:m1_kind], :oid, :tid, NULL, NULL, session_user);
UPDATE exchange.balances SET available_balance = available_balance + :m2_da * 0.00000001, locked_balance = locked_balance + :m2_dl * 0.00000001, last_updated = pg_catalog.now() WHERE account_id = :acct AND symbol = (ARRAY[:base, :quote])[:m2_ai] AND available_balance + :m2_da * 0.00000001 >= 0 AND locked_balance + :m2_dl * 0.00000001 >= 0 RETURNING 1 AS moved \gset
INSERT INTO exchange.balance_journal (account_id, asset, delta_available, delta_locked, kind, order_id, trade_id, hold_id, reference, actor) VALUES (:acct, (ARRAY[:base, :quote])[:m2_ai], :m2_da * 0.00000001, :m2_dl * 0.00000001, (ARRAY['TRADE', 'FEE'])[:m2_kind], :oid, :tid, NULL, NULL, session_user);
\if :fee_u > 0
UPDATE exchange.balances SET available_balance = available_balance + :m3_da * 0.00000001, locked_balance = locked_balance + :m3_dl * 0.00000001, last_updated = pg_catalog.now() WHERE account_id = :acct AND symbol = (ARRAY[:base, :quote])[:m3_ai] AND available_balance + :m3_da * 0.00000001 >= 0 AND locked_balance + :m3_dl * 0.00000001 >= 0 RETURNING 1 AS moved \gset
INSERT INTO exchange.balance_journal (account_id, asset, delta_available, delta_locked, kind, order_id, trade_id, hold_id, reference, actor) VALUES (:acct, (ARRAY[:base, :quote])[:m3_ai], :m3_da * 0.00000001, :m3_dl * 0.00000001, (ARRAY['TRADE', 'FEE'])[:m3_kind], :oid, :tid, NULL, NULL, session_user);
\endif
\if :fee_u > 0
INSERT INTO exchange.fee_ledger (trade_id, market, asset, amount) VALUES (:tid, :sym, (ARRAY[:quote, :base])[:buy + 1], :fee_u * 0.00000001);
\endif
INSERT INTO exchange.outbox (xid, kind, keys) VALUES (pg_catalog.pg_current_xact_id(), 'cache', ARRAY[E'cache\x3aorder\x3a' || :oid::text, E'cache\x3aorders\x3a' || :acct::text, E'cache\x3atrades\x3a' || :acct::text, E'cache\x3abalances\x3a' || :acct::text, E'cache\x3abook\x3a' || :sym::text, E'cache\x3aticker\x3a' || :sym::text, E'cache\x3abalance\x3a' || :acct::text || ':' || (ARRAY[:quote::text, :base::text])[:base_first + 1], E'cache\x3abalance\x3a' || :acct::text || ':' || (ARRAY[:base::text, :quote::text])[:base_first + 1]]);
COMMIT;
\else
ROLLBACK;
\endif
