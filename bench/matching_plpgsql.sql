-- bench/matching_plpgsql.sql — the matching of place_order on an INTERNAL market, in PL/pgSQL,
-- for bench/matching_bench.sh only (loaded after bench/plpgsql.sql; never part of the
-- extension).
--
-- exchange_plpgsql.place_order_matching has exchange.place_order's arguments and result and
-- follows README "Matching engine" rules: price-time priority (price, then book_seq), execution
-- at the maker's price for min(both remainders), two trades per match (MAKER/TAKER, one
-- match_id, fees from the market's rates, trades.seq = the market's next trade_seq),
-- last_price/last_trade_at/trade_seq on the market row, IOC/MARKET remainders EXPIRED (IOC),
-- FOK all or nothing (own makers counted per the self-trade mode), self-trade modes.
-- Locks: the market row FOR NO KEY UPDATE first; then, per execution, the maker and taker rows
-- and their balances (through exchange_plpgsql.apply_trade, ascending (account_id, asset) per
-- call).  The market lock serialises every matching call of the market, as in C.
--
-- Built on the 1.0 peers of bench/plpgsql.sql (validation and funds lock of place_order, the
-- settlement of one fill of apply_trade), and on exchange.expire_order for IOC/FOK/self-trade
-- expiries (its external behaviour is what the C engine does for an expiry).
--
-- NOT implemented (known gaps, see bench/README.md): the stop cascade (stops are placed
-- PENDING and never triggered here), and one outbox row per call (each settled fill and each
-- expiry writes its own outbox row, as the 1.0 calls it reuses do).

CREATE FUNCTION exchange_plpgsql.place_order_matching(account_id uuid, symbol text, side text,
                                                      order_type text, quantity numeric,
                                                      price numeric DEFAULT NULL,
                                                      time_in_force text DEFAULT NULL,
                                                      stop_price numeric DEFAULT NULL,
                                                      client_order_id text DEFAULT NULL,
                                                      metadata jsonb DEFAULT '{}')
RETURNS exchange.orders
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sym text := place_order_matching.symbol;
	m record;
	t exchange.orders;
	mk record;
	is_buy boolean;
	lim numeric;
	remaining numeric;
	q numeric;
	avail numeric;
	seq_ bigint;
	mid uuid;
	tr exchange.trades;
	last_px numeric;
	stop_taker boolean := false;
BEGIN
	-- Lock order 0: the market row, before anything else (INTERNAL markets only).
	SELECT mm.matching, mm.self_trade, mm.trade_seq INTO m
	  FROM exchange.markets mm WHERE mm.symbol = sym;
	IF FOUND AND m.matching = 'INTERNAL' THEN
		SELECT mm.matching, mm.self_trade, mm.trade_seq INTO m
		  FROM exchange.markets mm WHERE mm.symbol = sym FOR NO KEY UPDATE;
	END IF;

	t := exchange_plpgsql.place_order(place_order_matching.account_id, sym, place_order_matching.side,
	                                  place_order_matching.order_type, place_order_matching.quantity,
	                                  place_order_matching.price, place_order_matching.time_in_force,
	                                  place_order_matching.stop_price, place_order_matching.client_order_id,
	                                  place_order_matching.metadata);
	IF m.matching IS DISTINCT FROM 'INTERNAL' OR t.status = 'REJECTED' THEN
		RETURN t;
	END IF;
	UPDATE exchange.orders o SET book_seq = nextval('exchange.order_book_seq')
	 WHERE o.order_id = t.order_id RETURNING o.book_seq INTO t.book_seq;
	IF t.status <> 'OPEN' THEN			-- PENDING stop: rests untriggered (see the header)
		RETURN t;
	END IF;

	is_buy := t.side = 'BUY';
	lim := t.price;						-- NULL: a MARKET SELL without price crosses any bid
	remaining := t.quantity;
	seq_ := m.trade_seq;

	-- FOK: judge the whole quantity against the book first.
	IF t.time_in_force = 'FOK' THEN
		avail := 0;
		FOR mk IN
			SELECT o.account_id = t.account_id AS own, o.quantity - o.filled_quantity AS rem
			  FROM exchange.orders o
			 WHERE o.symbol = sym AND o.side = CASE WHEN is_buy THEN 'SELL' ELSE 'BUY' END
			   AND o.status IN ('OPEN', 'PARTIAL')
			   AND (lim IS NULL OR CASE WHEN is_buy THEN o.price <= lim ELSE o.price >= lim END)
			 ORDER BY CASE WHEN is_buy THEN o.price END, CASE WHEN NOT is_buy THEN o.price END DESC, o.book_seq
		LOOP
			EXIT WHEN avail >= remaining;
			IF mk.own AND m.self_trade IN ('EXPIRE_TAKER', 'EXPIRE_BOTH') THEN
				EXIT;
			ELSIF mk.own AND m.self_trade = 'EXPIRE_MAKER' THEN
				CONTINUE;
			END IF;
			avail := avail + mk.rem;
		END LOOP;
		IF avail < remaining THEN
			RETURN exchange.expire_order(t.order_id, 'FOK');
		END IF;
	END IF;

	-- Take liquidity: best price first, then time.
	FOR mk IN
		SELECT o.order_id, o.account_id, o.price, o.quantity - o.filled_quantity AS rem
		  FROM exchange.orders o
		 WHERE o.symbol = sym AND o.side = CASE WHEN is_buy THEN 'SELL' ELSE 'BUY' END
		   AND o.status IN ('OPEN', 'PARTIAL')
		   AND (lim IS NULL OR CASE WHEN is_buy THEN o.price <= lim ELSE o.price >= lim END)
		 ORDER BY CASE WHEN is_buy THEN o.price END, CASE WHEN NOT is_buy THEN o.price END DESC, o.book_seq
	LOOP
		EXIT WHEN remaining = 0;
		IF mk.account_id = t.account_id AND m.self_trade <> 'ALLOW' THEN
			IF m.self_trade IN ('EXPIRE_MAKER', 'EXPIRE_BOTH') THEN
				PERFORM exchange.expire_order(mk.order_id, 'SELF_TRADE');
			END IF;
			IF m.self_trade IN ('EXPIRE_TAKER', 'EXPIRE_BOTH') THEN
				stop_taker := true;
				EXIT;
			END IF;
			CONTINUE;
		END IF;
		q := least(remaining, mk.rem);
		seq_ := seq_ + 1;
		mid := gen_random_uuid();
		tr := exchange_plpgsql.apply_trade(mk.order_id, q, mk.price, NULL, NULL, now(), NULL, 'MAKER');
		UPDATE exchange.trades x SET match_id = mid, seq = seq_ WHERE x.trade_id = tr.trade_id;
		tr := exchange_plpgsql.apply_trade(t.order_id, q, mk.price, NULL, NULL, now(), NULL, 'TAKER');
		UPDATE exchange.trades x SET match_id = mid, seq = seq_ WHERE x.trade_id = tr.trade_id;
		remaining := remaining - q;
		last_px := mk.price;
	END LOOP;

	IF last_px IS NOT NULL THEN
		UPDATE exchange.markets mm SET last_price = last_px, last_trade_at = now(), trade_seq = seq_
		 WHERE mm.symbol = sym;
	END IF;
	IF remaining > 0 AND (stop_taker OR t.order_type = 'MARKET' OR t.time_in_force IN ('IOC', 'FOK')) THEN
		RETURN exchange.expire_order(t.order_id, CASE WHEN stop_taker THEN 'SELF_TRADE' ELSE 'IOC' END);
	END IF;
	SELECT * INTO t FROM exchange.orders o WHERE o.order_id = t.order_id;
	RETURN t;
END
$$;
