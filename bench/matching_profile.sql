-- bench/matching_profile.sql — where a crossing transaction of bench/matching_bench.sh spends
-- its server time, C against the PL/pgSQL peer, without commit or client round trips:
-- :n iterations of the crossing workload (a BUY taker of k lots at 110, then k resting SELLs at
-- 101, k = 1, 2, 3 in turn) on MC-USDT (C) and MP-USDT (PL/pgSQL), each in a subtransaction
-- that rolls back, timed with clock_timestamp(); with track_functions = all, the time of every
-- function involved (pg_stat_user_functions: calls, total and self ms).

SET track_functions = 'all';
\o /dev/null
SELECT pg_stat_reset();
CREATE TEMP TABLE prof (impl text, part text, ms numeric);
DO $$
DECLARE
	impl text;
	i int;
	k int;
	t0 timestamptz;
	t1 timestamptz;
	taker_ms numeric;
	rest_ms numeric;
BEGIN
	FOREACH impl IN ARRAY ARRAY['C', 'PL'] LOOP
		taker_ms := 0;
		rest_ms := 0;
		BEGIN
			FOR i IN 1 .. current_setting('bench.n')::int LOOP
				k := 1 + i % 3;
				t0 := clock_timestamp();
				IF impl = 'C' THEN
					PERFORM exchange.place_order(bench.acct(1 + i % 2), 'MC-USDT', 'BUY', 'LIMIT', k * 0.001, 110);
				ELSE
					PERFORM exchange_plpgsql.place_order_matching(bench.acct(1 + i % 2), 'MP-USDT', 'BUY', 'LIMIT', k * 0.001, 110);
				END IF;
				t1 := clock_timestamp();
				IF impl = 'C' THEN
					PERFORM exchange.place_order(bench.acct(1 + i % 2), 'MC-USDT', 'SELL', 'LIMIT', 0.001, 101) FROM generate_series(1, k);
				ELSE
					PERFORM exchange_plpgsql.place_order_matching(bench.acct(1 + i % 2), 'MP-USDT', 'SELL', 'LIMIT', 0.001, 101) FROM generate_series(1, k);
				END IF;
				taker_ms := taker_ms + extract(epoch FROM t1 - t0) * 1000;
				rest_ms := rest_ms + extract(epoch FROM clock_timestamp() - t1) * 1000;
			END LOOP;
			RAISE EXCEPTION 'roll back';
		EXCEPTION WHEN raise_exception THEN
			INSERT INTO prof VALUES (impl, 'taker', taker_ms), (impl, 'resting', rest_ms);
		END;
	END LOOP;
END
$$;
SELECT pg_stat_force_next_flush();
\o
\echo '-- server time per crossing transaction (ms), in-call only'
SELECT impl, round(sum(ms) FILTER (WHERE part = 'taker') / current_setting('bench.n')::int, 3) AS taker_ms,
       round(sum(ms) FILTER (WHERE part = 'resting') / current_setting('bench.n')::int, 3) AS resting_ms,
       round(sum(ms) / current_setting('bench.n')::int, 3) AS total_ms
  FROM prof GROUP BY impl ORDER BY impl;
\echo '-- functions (track_functions = all)'
SELECT schemaname || '.' || funcname AS function, calls, round(total_time::numeric, 1) AS total_ms,
       round(self_time::numeric, 1) AS self_ms
  FROM pg_stat_user_functions WHERE calls > 0 ORDER BY total_time DESC LIMIT 12;
\echo '-- the books after the runs (resting orders per side)'
SELECT symbol, side, count(*) AS resting, min(price) AS min_price, max(price) AS max_price
  FROM exchange.orders WHERE symbol IN ('MC-USDT', 'MP-USDT') AND status IN ('OPEN', 'PARTIAL')
 GROUP BY symbol, side ORDER BY symbol, side;
