-- bench/matching_setup.sql — the fixture of bench/matching_bench.sh, loaded after
-- bench/setup.sql (accounts 1..8, bench.acct), bench/plpgsql.sql and bench/matching_plpgsql.sql.
--
--   * INTERNAL markets (self_trade ALLOW: the two clients' takers and makers may meet):
--     MC-USDT (matched by the C place_order), MP-USDT (by the PL/pgSQL peer), M1..M4-USDT (the
--     parallel runs), RI-USDT (resting orders on an INTERNAL market); EXTERNAL RE-USDT;
--     tick 0.01, lot 0.001, no minimum notional (orders of one lot at 101 must not be refused), maker 0.1 %, taker 0.2 %;
--   * accounts 1..8 funded in every base asset;
--   * bench.make_book(symbol, n): n resting orders of 0.001, half asks from 101.00 up, half bids
--     from 99.00 down, 100 price levels a side, placed by accounts 1 and 2 alternately.

SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION bench.new_internal_market(sym text, matching text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM exchange.create_market(sym, split_part(sym, '-', 1), 'USDT', 0.01, 0.001, 0.001, 0, 0.001, 0.002);
	IF matching = 'INTERNAL' THEN
		PERFORM exchange.set_market_status(sym, 'HALTED');
		PERFORM exchange.set_market_matching(sym, 'INTERNAL', 'ALLOW');
		PERFORM exchange.set_market_status(sym, 'ACTIVE');
	END IF;
	PERFORM exchange.deposit(bench.acct(n), split_part(sym, '-', 1), 1000000000) FROM generate_series(1, 8) n;
END
$$;

CREATE FUNCTION bench.make_book(sym text, n int) RETURNS void LANGUAGE sql AS $$
	SELECT count(exchange.place_order(bench.acct(1 + i % 2), sym,
	                                  CASE WHEN i % 2 = 0 THEN 'SELL' ELSE 'BUY' END, 'LIMIT', 0.001,
	                                  CASE WHEN i % 2 = 0 THEN 101 + (i / 2 % 100) * 0.01
	                                       ELSE 99 - (i / 2 % 100) * 0.01 END))
	  FROM generate_series(0, n - 1) i
$$;

SELECT bench.new_internal_market(s, 'INTERNAL')
  FROM unnest(ARRAY['MC-USDT', 'MP-USDT', 'M1-USDT', 'M2-USDT', 'M3-USDT', 'M4-USDT', 'RI-USDT']) s;
SELECT bench.new_internal_market('RE-USDT', 'EXTERNAL');
