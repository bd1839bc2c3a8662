-- place_order through the minimal-schema PL/pgSQL peer (bench/minimal.sql): one statement, one
-- round trip, the same random choices as place_c.sql.
\set an :client_id % :naccts + 1 + :acct0
\set s random(1, 2)
\set lots random(1, 1000)
\set ticks random(9000, 11000)
SELECT order_id FROM bench_min.place_order(bench.acct(:an), 'BTC-USDT', (ARRAY['BUY', 'SELL'])[:s], 'LIMIT', :lots * 0.001, :ticks * 0.01);
