-- bench/equivalence.sql — the PL/pgSQL yardstick must do what the C functions do.
--
-- Runs one scenario twice, on two accounts funded alike: once through exchange.place_order /
-- exchange.apply_trade (C), once through exchange_plpgsql.* (bench/plpgsql.sql).  The scenario
-- covers idempotent retries and conflicts, every business refusal, argument errors, refusals of
-- fills (LX002, LX006, LX007, LX008, LX009), fees from the market's rates, explicit fees in the
-- received and in a third asset, FOK, refunds, truncation at 1e-8 and 8-decimal quantities and
-- prices.  Then every row each run wrote — orders, trades, balance_journal, order_events,
-- fee_ledger, balances, outbox keys, and the SQLSTATE of every refused call — is normalised
-- (ids replaced by their rank) and compared.  Any difference raises, and bench/run.sh stops.

SET search_path = pg_catalog, pg_temp;

CREATE SCHEMA eq;
CREATE TABLE eq.outcome (impl text, step int, sqlstate text);
CREATE TABLE eq.ids (impl text, name text, id uuid);

SELECT exchange.create_market('ETH-USDT', 'ETH', 'USDT', 0.00000001, 0.00000001, 0, 0, 0.00123456, 0.00234567);

-- run(impl, account): the scenario through schema impl.
CREATE FUNCTION eq.run(impl text, acct uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	step int := 0;
	id uuid;
	o text;
	calls text[] := ARRAY[
		-- place_order: OPEN, idempotent retry, conflict, every refusal, argument errors
		$c$P o1 | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1.5, 100.01, NULL, NULL, 'cid-1')$c$,
		$c$P o1b | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1.50000000, 100.010, 'GTC', NULL, 'cid-1')$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1.6, 100.01, NULL, NULL, 'cid-1')$c$,
		$c$P o2 | %1$I.place_order($1, 'BTC-USDT', 'SELL', 'LIMIT', 0.7, 99.5)$c$,
		$c$P o3 | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'MARKET', 0.3, 101)$c$,
		$c$P o4 | %1$I.place_order($1, 'BTC-USDT', 'SELL', 'STOP', 0.2, NULL, NULL, 95)$c$,
		$c$P o5 | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 0.0015, 100)$c$,
		$c$P o6 | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1, 100.001)$c$,
		$c$P o7 | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1000, 100)$c$,
		$c$P o8 | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 0.005, 100)$c$,
		$c$P o8b | %1$I.place_order($1, 'BTC-USDT', 'SELL', 'STOP', 0.2, NULL, NULL, 95.001, 'cid-2', '{"k": 1}')$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 0.000000001, 100)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'MARKET', 1, 100, 'GTC')$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1, NULL)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'MARKET', 1, NULL)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'STOP', 1, 100)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1, 100, NULL, 99)$c$,
		$c$P x | %1$I.place_order($1, 'XRP-USDT', 'BUY', 'LIMIT', 1, 100)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'buy', 'LIMIT', 1, 100)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 'NaN', 100)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1e16, 100)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', -1, 100)$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1, 100, NULL, NULL, '')$c$,
		$c$P x | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 1, 100, NULL, NULL, NULL, '[]')$c$,
		$c$P x | %1$I.place_order('00000000-0000-0000-0000-00000000ffff', 'BTC-USDT', 'BUY', 'LIMIT', 1, 100)$c$,
		-- apply_trade on the BUY: maker fee, retry, conflict, explicit fee in a third asset, taker fill to FILLED
		$c$T t1 | %1$I.apply_trade(:o1, 0.5, 99.99, NULL, NULL, '2024-01-01 00:00:00+00', 'r1', 'MAKER')$c$,
		$c$T t1b | %1$I.apply_trade(:o1, 0.5, 99.99, NULL, NULL, '2024-01-01 00:00:00+00', 'r1', 'MAKER')$c$,
		$c$T x | %1$I.apply_trade(:o1, 0.4, 99.99, NULL, NULL, '2024-01-01 00:00:00+00', 'r1', 'MAKER')$c$,
		$c$T x | %1$I.apply_trade(:o1, 0.1, 100.02)$c$,
		$c$T t2 | %1$I.apply_trade(:o1, 0.25, 100, 0.01, 'BNB', '2024-01-01 00:00:01+00', 'r2', NULL)$c$,
		$c$T x | %1$I.apply_trade(:o1, 1, 100)$c$,
		$c$T t3 | %1$I.apply_trade(:o1, 0.75, 100.01, NULL, NULL, '2024-01-01 00:00:02+00', NULL, 'TAKER')$c$,
		$c$T x | %1$I.apply_trade(:o1, 0.1, 100)$c$,
		-- the SELL: below its limit, overfill, partial with taker fee, completing with a fee in USDT
		$c$T x | %1$I.apply_trade(:o2, 0.3, 99.4)$c$,
		$c$T x | %1$I.apply_trade(:o2, 0.8, 100)$c$,
		$c$T t4 | %1$I.apply_trade(:o2, 0.3, 100.5, NULL, NULL, '2024-01-01 00:00:03+00', NULL, 'TAKER')$c$,
		$c$T t5 | %1$I.apply_trade(:o2, 0.4, 101, 0.5, 'USDT', '2024-01-01 00:00:04+00')$c$,
		-- the MARKET BUY with its protection price; the PENDING stop refuses a fill; a fee larger than the BNB held
		$c$T t6 | %1$I.apply_trade(:o3, 0.1, 100.5, NULL, NULL, '2024-01-01 00:00:05+00', NULL, 'TAKER')$c$,
		$c$T x | %1$I.apply_trade(:o4, 0.1, 100)$c$,
		$c$T x | %1$I.apply_trade(:o3, 0.1, 100.5, 5, 'BNB')$c$,
		$c$T x | %1$I.apply_trade(:o3, 0.1, 100.5, -1)$c$,
		$c$T x | %1$I.apply_trade('00000000-0000-0000-0000-00000000ffff', 0.1, 100)$c$,
		-- fee rules: explicit above the proceeds, computed in a third asset, computed in the quote for a BUY
		$c$T x | %1$I.apply_trade(:o3, 0.1, 100.5, 0.2)$c$,
		$c$T x | %1$I.apply_trade(:o3, 0.1, 100.5, NULL, 'BNB', now(), NULL, 'MAKER')$c$,
		$c$T t6b | %1$I.apply_trade(:o3, 0.05, 100.5, NULL, 'USDT', '2024-01-01 00:00:05+00', NULL, 'MAKER')$c$,
		$c$T t6c | %1$I.apply_trade(:o3, 0.05, 100.5, 0.05, 'BTC', '2024-01-01 00:00:05+00')$c$,
		-- FOK: partial refused, full fill below the limit (refund)
		$c$P o9 | %1$I.place_order($1, 'BTC-USDT', 'BUY', 'LIMIT', 0.2, 100, 'FOK')$c$,
		$c$T x | %1$I.apply_trade(:o9, 0.1, 100)$c$,
		$c$T t7 | %1$I.apply_trade(:o9, 0.2, 99.12, NULL, NULL, '2024-01-01 00:00:06+00', NULL, 'MAKER')$c$,
		-- truncation: BUY 1 at 0.00000003 filled 0.5 + 0.5; 8-decimal quantities and prices
		$c$P o10 | %1$I.place_order($1, 'ETH-USDT', 'BUY', 'LIMIT', 1, 0.00000003)$c$,
		$c$T t8 | %1$I.apply_trade(:o10, 0.5, 0.00000003, NULL, NULL, '2024-01-01 00:00:07+00', NULL, 'TAKER')$c$,
		$c$T t9 | %1$I.apply_trade(:o10, 0.5, 0.00000003, NULL, NULL, '2024-01-01 00:00:08+00', NULL, 'MAKER')$c$,
		$c$P o11 | %1$I.place_order($1, 'ETH-USDT', 'SELL', 'LIMIT', 0.12345678, 1234.56789012)$c$,
		$c$T t10 | %1$I.apply_trade(:o11, 0.02345678, 1234.56789013, NULL, NULL, '2024-01-01 00:00:09+00', NULL, 'TAKER')$c$,
		$c$T t11 | %1$I.apply_trade(:o11, 0.00000001, 1300.00000001, NULL, NULL, '2024-01-01 00:00:10+00', NULL, 'MAKER')$c$,
		$c$P o12 | %1$I.place_order($1, 'ETH-USDT', 'BUY', 'LIMIT', 0.33333333, 3.33333333)$c$,
		$c$T t12 | %1$I.apply_trade(:o12, 0.11111111, 3.33333332, NULL, NULL, '2024-01-01 00:00:11+00', NULL, 'TAKER')$c$,
		$c$T t13 | %1$I.apply_trade(:o12, 0.11111111, 3.1, NULL, NULL, '2024-01-01 00:00:12+00', NULL, 'TAKER')$c$,
		$c$T t14 | %1$I.apply_trade(:o12, 0.11111111, 3.33333333, 0, NULL, '2024-01-01 00:00:13+00')$c$
	];
	c text;
	name text;
	sql text;
	r record;
BEGIN
	FOREACH c IN ARRAY calls LOOP
		step := step + 1;
		name := trim(split_part(c, '|', 1));
		sql := trim(substr(c, strpos(c, '|') + 1));
		-- :oN -> that order's id
		FOR r IN SELECT i.name AS n, i.id FROM eq.ids i WHERE i.impl = run.impl ORDER BY length(i.name) DESC LOOP
			sql := replace(sql, ':' || r.n, quote_literal(r.id) || '::uuid');
		END LOOP;
		sql := format('SELECT (' || sql || ').' || CASE WHEN name LIKE 'P%' THEN 'order_id' ELSE 'trade_id' END, impl);
		BEGIN
			EXECUTE sql INTO id USING acct;
			INSERT INTO eq.outcome VALUES (impl, step, '00000');
			IF split_part(name, ' ', 2) <> 'x' THEN
				INSERT INTO eq.ids VALUES (impl, split_part(name, ' ', 2), id);
			END IF;
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO eq.outcome VALUES (impl, step, SQLSTATE);
		END;
	END LOOP;
END $$;

-- Two accounts funded alike, then the scenario through each implementation.
CREATE TABLE eq.acct AS
SELECT impl, (exchange.create_account('eq-' || impl)).account_id AS account_id
  FROM unnest(ARRAY['exchange', 'exchange_plpgsql']) impl;
SELECT exchange.set_kyc_status(account_id, 'APPROVED') FROM eq.acct;
SELECT exchange.deposit(account_id, 'USDT', 10000) FROM eq.acct;
SELECT exchange.deposit(account_id, 'BTC', 10) FROM eq.acct;
SELECT exchange.deposit(account_id, 'ETH', 10) FROM eq.acct;
SELECT exchange.deposit(account_id, 'BNB', 1) FROM eq.acct;
SELECT eq.run(impl, account_id) FROM eq.acct ORDER BY impl;

DO $$
DECLARE
	c uuid := (SELECT account_id FROM eq.acct WHERE impl = 'exchange');
	p uuid := (SELECT account_id FROM eq.acct WHERE impl = 'exchange_plpgsql');
	diff text;
	steps int;
BEGIN
	SELECT string_agg(format('step %s: C %s, PL/pgSQL %s', a.step, a.sqlstate, b.sqlstate), E'\n' ORDER BY a.step)
	  INTO diff
	  FROM eq.outcome a JOIN eq.outcome b ON b.step = a.step AND b.impl = 'exchange_plpgsql'
	 WHERE a.impl = 'exchange' AND a.sqlstate <> b.sqlstate;
	IF diff IS NOT NULL THEN
		RAISE EXCEPTION 'the two implementations refused different calls' USING DETAIL = diff;
	END IF;

	SELECT string_agg(format('%s #%s: C      %s%sPL/pgSQL %s', coalesce(x.tbl, y.tbl), coalesce(x.n, y.n),
	                         coalesce(x.row_text, '(none)'), E'\n  ', coalesce(y.row_text, '(none)')), E'\n')
	  INTO diff
	  FROM bench.rows(c) x FULL JOIN bench.rows(p) y ON y.tbl = x.tbl AND y.n = x.n
	 WHERE x.row_text IS DISTINCT FROM y.row_text;
	IF diff IS NOT NULL THEN
		RAISE EXCEPTION 'the two implementations wrote different rows' USING DETAIL = diff;
	END IF;

	SELECT count(*) INTO steps FROM eq.outcome WHERE impl = 'exchange';
	RAISE NOTICE 'equivalent: % calls (% refused) through each, the same % rows',
		steps, (SELECT count(*) FROM eq.outcome WHERE impl = 'exchange' AND sqlstate <> '00000'),
		(SELECT count(*) FROM bench.rows(c));
END $$;

DO $$
BEGIN
	IF EXISTS (SELECT FROM exchange.check_invariants()) THEN
		RAISE EXCEPTION 'check_invariants() is not empty after the scenario'
			USING DETAIL = (SELECT string_agg(invariant || ': ' || detail, E'\n') FROM exchange.check_invariants());
	END IF;
END $$;

-- The scenario's rows stay (they are ledger rows now); its helper schema goes.
SET client_min_messages = warning;
DROP SCHEMA eq CASCADE;
