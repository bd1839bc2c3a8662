-- place_order done by the client: the statements the C function runs, sent one by one inside
-- BEGIN/COMMIT (9 round trips), the checks and the arithmetic in the client (pgbench integer
-- arithmetic in units of 1e-8; strings are chosen by the server in the statement that reads
-- them, pgbench having no string variables).  Run with -M prepared, as a driver with a
-- statement cache (pgx) would.  (-M prepared turns every ":name" into a parameter, even
-- inside a string literal: the colons of the outbox keys are written \x3a.)
--
-- A balance UPDATE that changes no row makes \gset fail and aborts the client: a real client
-- would probe the row and store the order REJECTED (INSUFFICIENT_FUNDS); pgbench cannot loop,
-- and the benchmark never runs short, so a shortage cannot go unnoticed.
\set an :client_id % :naccts + 1 + :acct0
\set s random(1, 2)
\set lots random(1, 1000)
\set ticks random(9000, 11000)
BEGIN;
SELECT a.account_id AS acct, (a.status = 'ACTIVE')::int AS active, (a.kyc_status = 'APPROVED')::int AS kyc, pg_catalog.gen_random_uuid() AS oid FROM exchange.accounts a WHERE a.account_id = bench.acct(:an) FOR SHARE \gset
SELECT (ARRAY[m.quote_asset, m.base_asset])[:s] AS lock_asset, (m.tick_size * 100000000)::bigint AS tick, (m.lot_size * 100000000)::bigint AS lot, (m.min_quantity * 100000000)::bigint AS minq, (m.min_notional * 100000000)::bigint AS minn, (m.status = 'ACTIVE')::int AS mactive FROM exchange.markets m WHERE m.symbol = 'BTC-USDT' \gset
\set q_u :lots * 100000
\set p_u :ticks * 1000000
\set notional_u :lots * :ticks * 1000
\set reject 0
\if :active = 0
\set reject 1
\elif :kyc = 0
\set reject 2
\elif :mactive = 0
\set reject 3
\elif :p_u % :tick <> 0
\set reject 4
\elif :q_u % :lot <> 0
\set reject 5
\elif :q_u < :minq
\set reject 6
\elif :notional_u < :minn
\set reject 7
\endif
\if :s = 1
\set lock_u :notional_u
\else
\set lock_u :q_u
\endif
\if :reject = 0
UPDATE exchange.balances SET available_balance = available_balance - :lock_u * 0.00000001, locked_balance = locked_balance + :lock_u * 0.00000001, last_updated = pg_catalog.now() WHERE account_id = :acct AND symbol = :lock_asset AND available_balance - :lock_u * 0.00000001 >= 0 AND locked_balance + :lock_u * 0.00000001 >= 0 RETURNING 1 AS moved \gset
INSERT INTO exchange.balance_journal (account_id, asset, delta_available, delta_locked, kind, order_id, trade_id, hold_id, reference, actor) VALUES (:acct, :lock_asset, -(:lock_u * 0.00000001), :lock_u * 0.00000001, 'ORDER_LOCK', :oid, NULL, NULL, NULL, session_user);
INSERT INTO exchange.orders (order_id, account_id, symbol, order_type, side, quantity, price, status, time_in_force, metadata, stop_price, client_order_id, lock_asset, locked_amount, reject_reason) VALUES (:oid, :acct, 'BTC-USDT', 'LIMIT', (ARRAY['BUY', 'SELL'])[:s], :q_u * 0.00000001, :p_u * 0.00000001, 'OPEN', 'GTC', '{}', NULL, NULL, :lock_asset, :lock_u * 0.00000001, NULL) RETURNING *;
INSERT INTO exchange.order_events (order_id, from_status, to_status, filled_delta, reason, actor) VALUES (:oid, NULL, 'OPEN', 0, NULL, session_user);
INSERT INTO exchange.outbox (xid, kind, keys) VALUES (pg_catalog.pg_current_xact_id(), 'cache', ARRAY[E'cache\x3abalance\x3a' || :acct::text || ':' || :lock_asset::text, E'cache\x3abalances\x3a' || :acct::text, E'cache\x3aorder\x3a' || :oid::text, E'cache\x3aorders\x3a' || :acct::text, E'cache\x3abook\x3aBTC-USDT', E'cache\x3aticker\x3aBTC-USDT']);
\else
INSERT INTO exchange.orders (order_id, account_id, symbol, order_type, side, quantity, price, status, time_in_force, metadata, stop_price, client_order_id, lock_asset, locked_amount, reject_reason) VALUES (:oid, :acct, 'BTC-USDT', 'LIMIT', (ARRAY['BUY', 'SELL'])[:s], :q_u * 0.00000001, :p_u * 0.00000001, 'REJECTED', 'GTC', '{}', NULL, NULL, :lock_asset, 0, (ARRAY['ACCOUNT_NOT_ACTIVE', 'KYC_NOT_APPROVED', 'MARKET_HALTED', 'TICK_SIZE', 'LOT_SIZE', 'MIN_QUANTITY', 'MIN_NOTIONAL'])[:reject]) RETURNING *;
INSERT INTO exchange.order_events (order_id, from_status, to_status, filled_delta, reason, actor) VALUES (:oid, NULL, 'REJECTED', 0, (ARRAY['ACCOUNT_NOT_ACTIVE', 'KYC_NOT_APPROVED', 'MARKET_HALTED', 'TICK_SIZE', 'LOT_SIZE', 'MIN_QUANTITY', 'MIN_NOTIONAL'])[:reject], session_user);
INSERT INTO exchange.outbox (xid, kind, keys) VALUES (pg_catalog.pg_current_xact_id(), 'cache', ARRAY[E'cache\x3aorder\x3a' || :oid::text, E'cache\x3aorders\x3a' || :acct::text, E'cache\x3abalance\x3a' || :acct::text || ':' || :lock_asset::text, E'cache\x3abalances\x3a' || :acct::text]);
\endif
COMMIT;
