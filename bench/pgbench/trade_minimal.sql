-- apply_trade through the minimal-schema PL/pgSQL peer (bench/minimal.sql): one statement, one
-- round trip.  A fill of 0.001 at 100, TAKER, on one of the client's account's 100 pool orders
-- (copied into bench_min.orders with the same ids).
\set an :client_id % :naccts + 1 + :acct0
\set k random(1, 100)
SELECT trade_id FROM bench_min.apply_trade((SELECT order_id FROM bench.pool WHERE n = :an AND k = :k), 0.001, 100, NULL, NULL, now(), NULL, 'TAKER');
