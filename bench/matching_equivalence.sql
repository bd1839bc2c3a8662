-- bench/matching_equivalence.sql — the PL/pgSQL peer (bench/matching_plpgsql.sql) must match
-- as the C place_order does.
--
-- One sequence of orders runs on two identical INTERNAL markets, each with its own three
-- accounts funded alike: QC-USDT through exchange.place_order (C), QP-USDT through
-- exchange_plpgsql.place_order_matching.  It covers price-time priority across levels, partial
-- fills, a taker sweeping several makers, price improvement of a BUY taker, IOC, MARKET with and
-- without price, FOK that completes and FOK that cannot, and the self-trade mode EXPIRE_MAKER.
-- Then the trades (in execution order: side, price, quantity, fee, fee currency, liquidity, the
-- taker's and the maker's account and order ranks, seq), the final state of every order, the
-- balances of the six accounts and the market's last_price/trade_seq are compared.  Any
-- difference raises (bench/matching_bench.sh stops).

SET search_path = pg_catalog, pg_temp;

CREATE SCHEMA meq;
SELECT bench.new_internal_market(s, 'INTERNAL') FROM unnest(ARRAY['QC-USDT', 'QP-USDT']) s;
SELECT exchange.set_market_status(s, 'HALTED'), exchange.set_market_matching(s, 'INTERNAL', 'EXPIRE_MAKER'),
       exchange.set_market_status(s, 'ACTIVE') FROM unnest(ARRAY['QC-USDT', 'QP-USDT']) s;
INSERT INTO exchange.accounts (account_id, user_id, status, kyc_status)
SELECT bench.acct(n), 'bench-' || n, 'ACTIVE', 'APPROVED' FROM generate_series(21, 26) n;
SELECT exchange.deposit(bench.acct(n), a, 1000000) FROM generate_series(21, 26) n, unnest(ARRAY['USDT', 'QC', 'QP']) a;

-- (account 1..3, side, type, quantity, price, time_in_force)
CREATE TABLE meq.seq (step int PRIMARY KEY, a int, side text, typ text, qty numeric, px numeric, tif text);
INSERT INTO meq.seq VALUES
	(1, 1, 'SELL', 'LIMIT', 1.000, 101.00, NULL),
	(2, 2, 'SELL', 'LIMIT', 0.500, 100.50, NULL),
	(3, 1, 'SELL', 'LIMIT', 0.300, 100.50, NULL),
	(4, 3, 'BUY', 'LIMIT', 0.600, 100.50, NULL),		-- two makers at 100.50, time priority
	(5, 2, 'BUY', 'LIMIT', 2.000, 99.00, NULL),
	(6, 1, 'BUY', 'LIMIT', 0.400, 99.50, NULL),
	(7, 3, 'SELL', 'LIMIT', 0.700, 99.00, NULL),		-- sweeps 99.50 then 99.00
	(8, 3, 'BUY', 'LIMIT', 0.500, 102.00, NULL),		-- price improvement 100.50/101 vs 102
	(9, 2, 'BUY', 'LIMIT', 5.000, 101.00, 'IOC'),		-- IOC remainder expires
	(10, 1, 'SELL', 'LIMIT', 1.000, 103.00, NULL),
	(11, 3, 'BUY', 'LIMIT', 2.000, 103.00, 'FOK'),		-- cannot complete: expires, nothing executes
	(12, 3, 'BUY', 'LIMIT', 0.500, 103.00, 'FOK'),		-- completes
	(13, 1, 'SELL', 'MARKET', 0.300, NULL, NULL),		-- any bid
	(14, 2, 'SELL', 'LIMIT', 0.200, 98.00, NULL),		-- own bid at 99: EXPIRE_MAKER
	(15, 3, 'BUY', 'MARKET', 0.400, 105.00, NULL),		-- protection price; remainder expires
	(16, 1, 'BUY', 'LIMIT', 0.250, 98.00, NULL),
	(17, 2, 'SELL', 'LIMIT', 0.100, 97.00, 'IOC');

CREATE FUNCTION meq.acct(impl text, a int) RETURNS uuid LANGUAGE sql IMMUTABLE
	AS $$ SELECT bench.acct(CASE impl WHEN 'c' THEN 20 ELSE 23 END + a) $$;

DO $$
DECLARE
	s record;
BEGIN
	FOR s IN SELECT * FROM meq.seq ORDER BY step LOOP
		PERFORM exchange.place_order(meq.acct('c', s.a), 'QC-USDT', s.side, s.typ, s.qty, s.px, s.tif);
		PERFORM exchange_plpgsql.place_order_matching(meq.acct('p', s.a), 'QP-USDT', s.side, s.typ, s.qty, s.px, s.tif);
	END LOOP;
END
$$;

-- Normalised results of one implementation.
CREATE FUNCTION meq.result(impl text, sym text) RETURNS TABLE (what text, n bigint, row_text text) LANGUAGE sql AS $$
	WITH o AS (SELECT o.*, row_number() OVER (ORDER BY o.book_seq) AS r FROM exchange.orders o WHERE o.symbol = sym),
	acc AS (SELECT a, meq.acct(impl, a) AS id FROM generate_series(1, 3) a)
	SELECT 'order', o.r, concat_ws(' ', (SELECT a FROM acc WHERE acc.id = o.account_id), o.side, o.order_type, o.quantity, o.price,
	       o.status, o.time_in_force, o.filled_quantity, o.filled_value, o.average_price, replace(o.lock_asset, split_part(sym, '-', 1), 'BASE'), o.locked_amount)
	  FROM o
	UNION ALL
	SELECT 'trade', row_number() OVER (ORDER BY t.seq, t.liquidity DESC),
	       concat_ws(' ', t.seq, (SELECT a FROM acc WHERE acc.id = t.account_id), (SELECT r FROM o WHERE o.order_id = t.order_id),
	                 t.side, t.price, t.quantity, t.fee, replace(t.fee_currency, split_part(sym, '-', 1), 'BASE'), t.liquidity,
	                 (SELECT r FROM o JOIN exchange.trades u ON u.order_id = o.order_id WHERE u.match_id = t.match_id AND u.trade_id <> t.trade_id))
	  FROM exchange.trades t WHERE t.symbol = sym
	UNION ALL
	SELECT 'balance', row_number() OVER (ORDER BY acc.a, b.symbol = 'USDT'),
	       concat_ws(' ', acc.a, replace(b.symbol, split_part(sym, '-', 1), 'BASE'), b.available_balance, b.locked_balance)
	  FROM acc JOIN exchange.balances b ON b.account_id = acc.id AND b.symbol IN ('USDT', split_part(sym, '-', 1))
	UNION ALL
	SELECT 'market', 1, concat_ws(' ', m.last_price, m.trade_seq) FROM exchange.markets m WHERE m.symbol = sym
$$;

DO $$
DECLARE
	d text;
	n int;
BEGIN
	SELECT count(*) INTO n FROM meq.result('c', 'QC-USDT') WHERE what = 'trade';
	SELECT string_agg(format('%s #%s: C %s | PL %s', coalesce(x.what, y.what), coalesce(x.n, y.n), x.row_text, y.row_text), E'\n')
	  INTO d
	  FROM meq.result('c', 'QC-USDT') x FULL JOIN meq.result('p', 'QP-USDT') y ON y.what = x.what AND y.n = x.n
	 WHERE x.row_text IS DISTINCT FROM y.row_text;
	IF d IS NOT NULL THEN
		RAISE EXCEPTION 'the PL/pgSQL peer matches differently from the C place_order:%', E'\n' || d;
	END IF;
	RAISE NOTICE 'matching equivalence: % trades, same orders, trades and balances', n;
END
$$;
