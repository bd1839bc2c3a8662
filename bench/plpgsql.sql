-- bench/plpgsql.sql — place_order and apply_trade in PL/pgSQL, for the benchmark only.
--
-- The yardstick the C functions are measured against (bench/run.sh): the same contract as
-- exchange.place_order and exchange.apply_trade (src/orders.c, src/trades.c, src/ledger.c),
-- written the way a careful PL/pgSQL developer would write it:
--   * SECURITY DEFINER with SET search_path = pg_catalog, pg_temp, like the C functions;
--   * the same argument checks and SQLSTATEs, the same business refusals (stored REJECTED);
--   * the same locks in the same order: the account row FOR SHARE, the advisory lock of a
--     client_order_id (the very key the C code computes), the order row FOR UPDATE, then the
--     balance rows in ascending (account_id, asset) order;
--   * the same rows: balance UPDATEs, one balance_journal row per move, the orders / trades /
--     order_events / fee_ledger rows, one outbox row with the same keys in the same order;
--   * no wasted work: the balance-move fast path (one guarded UPDATE, one journal INSERT) is
--     inline, only the rare slow path (missing row, shortage) is a helper call; RETURNING only
--     what is used; statements are planned once per session by PL/pgSQL's plan cache.
--
-- Loaded into the benchmark's own cluster after CREATE EXTENSION; never part of the extension.

SET search_path = pg_catalog, pg_temp;

CREATE SCHEMA exchange_plpgsql;
REVOKE ALL ON SCHEMA exchange_plpgsql FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Helpers (not SECURITY DEFINER: only the two API functions below call them, as the definer).

-- The precise error for an amount that failed the fast check of the callers (README
-- "Order lifecycle and arithmetic"): not finite, beyond numeric(24,8), more than 8 decimals,
-- not positive / negative.
CREATE FUNCTION exchange_plpgsql.amount_error(value numeric, name text, positive boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF value IN ('NaN', 'Infinity', '-Infinity') THEN
		RAISE EXCEPTION '% must be a finite number', name
			USING ERRCODE = '22023', DETAIL = format('The value given was %s.', value);
	ELSIF abs(value) >= 10000000000000000 THEN
		RAISE EXCEPTION '% is out of range', name
			USING ERRCODE = '22003',
				  DETAIL = format('The value given was %s; amounts are numeric(24,8), below 1e16.', value);
	ELSIF round(value, 8) <> value THEN
		RAISE EXCEPTION '% has more than 8 decimal places', name
			USING ERRCODE = '22023', DETAIL = format('The value given was %s.', value),
				  HINT = 'Amounts are exact multiples of 0.00000001.';
	ELSIF positive THEN
		RAISE EXCEPTION '% must be positive', name
			USING ERRCODE = '22023', DETAIL = format('The value given was %s.', value);
	ELSE
		RAISE EXCEPTION '% must not be negative', name
			USING ERRCODE = '22023', DETAIL = format('The value given was %s.', value);
	END IF;
END $$;

CREATE FUNCTION exchange_plpgsql.text_error(value text, name text, maxlen int, null_ok boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF value IS NULL THEN
		RAISE EXCEPTION '% must not be null', name USING ERRCODE = '22004';
	ELSIF value = '' THEN
		RAISE EXCEPTION '% must not be empty', name USING ERRCODE = '22023',
			HINT = CASE WHEN null_ok THEN 'Pass NULL instead of an empty string.' ELSE '' END;
	ELSE
		RAISE EXCEPTION '% is too long', name USING ERRCODE = '22023',
			DETAIL = format('It has %s characters; at most %s are allowed.', char_length(value), maxlen);
	END IF;
END $$;

CREATE FUNCTION exchange_plpgsql.enum_error(value text, name text, allowed text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF value IS NULL THEN
		RAISE EXCEPTION '% must not be null', name USING ERRCODE = '22004';
	END IF;
	RAISE EXCEPTION 'invalid % "%"', name, value USING ERRCODE = '22023',
		HINT = format('Valid values are %s (exact upper case).', array_to_string(allowed, ', '));
END $$;

-- session_user, and the outer role when it differs (README "Data model").
CREATE FUNCTION exchange_plpgsql.actor() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN current_setting('role') IN ('none', '') OR current_setting('role') = session_user::text
	            THEN session_user::text
	            ELSE session_user::text || '/' || current_setting('role') END
$$;

-- The slow path of a balance move, after the guarded UPDATE changed no row (as
-- ledger_move_one): the row is missing (created when the move only adds) or would go below
-- zero.  Takes the row FOR UPDATE, retries while it now fits; returns false on a shortage when
-- soft, raises LX001 otherwise.  Writes no journal row: the caller does, after a true return.
CREATE FUNCTION exchange_plpgsql.move_slow(acct uuid, asset text, da numeric, dl numeric, soft boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	avail numeric;
	locked numeric;
	created boolean := false;
BEGIN
	LOOP
		UPDATE exchange.balances b
		   SET available_balance = b.available_balance + da,
		       locked_balance = b.locked_balance + dl,
		       last_updated = now()
		 WHERE b.account_id = acct AND b.symbol = asset
		   AND b.available_balance + da >= 0 AND b.locked_balance + dl >= 0;
		IF FOUND THEN
			RETURN true;
		END IF;
		SELECT b.available_balance, b.locked_balance INTO avail, locked
		  FROM exchange.balances b
		 WHERE b.account_id = acct AND b.symbol = asset
		   FOR UPDATE;
		IF NOT FOUND THEN
			IF NOT created AND da >= 0 AND dl >= 0 THEN
				INSERT INTO exchange.balances (account_id, symbol) VALUES (acct, asset)
				ON CONFLICT (account_id, symbol) DO NOTHING;
				created := true;
				CONTINUE;
			END IF;
			avail := 0;
			locked := 0;
		ELSIF avail + da >= 0 AND locked + dl >= 0 THEN
			CONTINUE;			-- it changed since the UPDATE looked: now locked
		END IF;
		EXIT;
	END LOOP;
	IF soft THEN
		RETURN false;
	END IF;
	IF avail + da < 0 THEN
		RAISE EXCEPTION 'insufficient funds in account % for asset %', acct, asset
			USING ERRCODE = 'LX001',
				  DETAIL = format('Available balance is %s; %s is needed.', avail, -da);
	END IF;
	RAISE EXCEPTION 'insufficient locked funds in account % for asset %', acct, asset
		USING ERRCODE = 'LX001',
			  DETAIL = format('Locked balance is %s; %s is to be released.', locked, -dl),
			  HINT = 'Run exchange.check_invariants() to find the inconsistency.';
END $$;

-- ---------------------------------------------------------------------------------------------
-- place_order

CREATE FUNCTION exchange_plpgsql.place_order(account_id uuid, symbol text, side text, order_type text,
                                             quantity numeric, price numeric DEFAULT NULL,
                                             time_in_force text DEFAULT NULL,
                                             stop_price numeric DEFAULT NULL,
                                             client_order_id text DEFAULT NULL,
                                             metadata jsonb DEFAULT '{}')
RETURNS exchange.orders
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct uuid := place_order.account_id;
	sym text := place_order.symbol;
	qty numeric := place_order.quantity;
	px numeric := place_order.price;
	stop numeric := place_order.stop_price;
	tif text := place_order.time_in_force;
	cid text := place_order.client_order_id;
	meta jsonb := coalesce(place_order.metadata, '{}');
	is_buy boolean;
	acct_status text;
	acct_kyc text;
	m record;
	prior exchange.orders;
	diff text := '';
	reject text;
	lock_asset text;
	lock_amount numeric;
	new_id uuid;
	new_status text;
	who text;
	moved boolean := false;
	result exchange.orders;
BEGIN
	-- Arguments (each check's error as in src/args.c).
	IF acct IS NULL THEN
		RAISE EXCEPTION 'account_id must not be null' USING ERRCODE = '22004';
	END IF;
	IF sym IS NULL OR sym = '' OR char_length(sym) > 21 THEN
		PERFORM exchange_plpgsql.text_error(sym, 'symbol', 21, false);
	END IF;
	IF side IS NULL OR side NOT IN ('BUY', 'SELL') THEN
		PERFORM exchange_plpgsql.enum_error(side, 'side', '{BUY,SELL}');
	END IF;
	IF order_type IS NULL OR order_type NOT IN ('MARKET', 'LIMIT', 'STOP') THEN
		PERFORM exchange_plpgsql.enum_error(order_type, 'order_type', '{MARKET,LIMIT,STOP}');
	END IF;
	IF qty IS NULL THEN
		RAISE EXCEPTION 'quantity must not be null' USING ERRCODE = '22004';
	ELSIF NOT (qty > 0 AND qty < 10000000000000000 AND round(qty, 8) = qty) THEN
		PERFORM exchange_plpgsql.amount_error(qty, 'quantity', true);
	END IF;
	qty := qty::numeric(24,8);
	IF px IS NOT NULL THEN
		IF NOT (px > 0 AND px < 10000000000000000 AND round(px, 8) = px) THEN
			PERFORM exchange_plpgsql.amount_error(px, 'price', true);
		END IF;
		px := px::numeric(24,8);
	END IF;
	IF tif IS NOT NULL AND tif NOT IN ('GTC', 'IOC', 'FOK') THEN
		PERFORM exchange_plpgsql.enum_error(tif, 'time_in_force', '{GTC,IOC,FOK}');
	END IF;
	IF stop IS NOT NULL THEN
		IF NOT (stop > 0 AND stop < 10000000000000000 AND round(stop, 8) = stop) THEN
			PERFORM exchange_plpgsql.amount_error(stop, 'stop_price', true);
		END IF;
		stop := stop::numeric(24,8);
	END IF;
	IF cid IS NOT NULL AND (cid = '' OR char_length(cid) > 64) THEN
		PERFORM exchange_plpgsql.text_error(cid, 'client_order_id', 64, true);
	END IF;
	IF jsonb_typeof(meta) <> 'object' THEN
		RAISE EXCEPTION 'metadata must be a JSON object' USING ERRCODE = '22023';
	END IF;
	is_buy := side = 'BUY';

	-- Malformed calls raise and change nothing.
	IF stop IS NOT NULL AND order_type <> 'STOP' THEN
		RAISE EXCEPTION 'stop_price is only allowed on STOP orders' USING ERRCODE = '22023',
			HINT = 'Pass NULL as stop_price, or use order_type STOP.';
	END IF;
	IF stop IS NULL AND order_type = 'STOP' THEN
		RAISE EXCEPTION 'a STOP order needs a stop_price' USING ERRCODE = '22023',
			HINT = 'A BUY stop triggers when the last price reaches stop_price or more, a SELL stop at stop_price or less.';
	END IF;
	IF px IS NULL AND order_type = 'LIMIT' THEN
		RAISE EXCEPTION 'a LIMIT order needs a price' USING ERRCODE = '22023';
	END IF;
	IF px IS NULL AND is_buy AND order_type IN ('MARKET', 'STOP') THEN
		RAISE EXCEPTION 'a % BUY order needs a protection price', order_type USING ERRCODE = '22023',
			DETAIL = format('The price of a %s BUY order is the most it may pay per unit; it sizes the funds locked.', order_type),
			HINT = 'Pass price, for example the best ask plus a margin.';
	END IF;
	IF tif IS NULL THEN
		tif := CASE WHEN order_type = 'MARKET' THEN 'IOC' ELSE 'GTC' END;
	ELSIF order_type = 'MARKET' AND tif = 'GTC' THEN
		RAISE EXCEPTION 'a MARKET order cannot be GTC' USING ERRCODE = '22023',
			HINT = 'Use IOC or FOK, or NULL for IOC.';
	END IF;

	-- (1) the account, FOR SHARE.
	SELECT a.status, a.kyc_status INTO acct_status, acct_kyc
	  FROM exchange.accounts a WHERE a.account_id = acct
	   FOR SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'account % does not exist', acct USING ERRCODE = 'LX003';
	END IF;

	-- Idempotency: the advisory lock C takes (same key), then the stored order.
	IF cid IS NOT NULL THEN
		PERFORM pg_advisory_xact_lock(1163411761,
			(SELECT ((h # (h >> 32))::bit(32))::int FROM (SELECT uuid_hash_extended(acct, hashtextextended(cid, hashtextextended('ORDER', 0))) AS h) k));
		SELECT * INTO prior FROM exchange.orders o
		 WHERE o.account_id = acct AND o.client_order_id = cid;
		IF FOUND THEN
			IF prior.symbol <> sym THEN
				diff := diff || format(' symbol %s (now %s);', prior.symbol, sym);
			END IF;
			IF prior.side <> side THEN
				diff := diff || format(' side %s (now %s);', prior.side, side);
			END IF;
			IF prior.order_type <> order_type THEN
				diff := diff || format(' order_type %s (now %s);', prior.order_type, order_type);
			END IF;
			IF prior.quantity <> qty THEN
				diff := diff || format(' quantity %s (now %s);', prior.quantity, qty);
			END IF;
			IF prior.price IS DISTINCT FROM px THEN
				diff := diff || format(' price %s (now %s);', coalesce(prior.price::text, 'NULL'), coalesce(px::text, 'NULL'));
			END IF;
			IF prior.time_in_force <> tif THEN
				diff := diff || format(' time_in_force %s (now %s);', prior.time_in_force, tif);
			END IF;
			IF prior.stop_price IS DISTINCT FROM stop THEN
				diff := diff || format(' stop_price %s (now %s);', coalesce(prior.stop_price::text, 'NULL'), coalesce(stop::text, 'NULL'));
			END IF;
			IF diff <> '' THEN
				RAISE EXCEPTION 'client_order_id "%" was already used for another order', cid
					USING ERRCODE = 'LX009',
						  DETAIL = 'The stored order has' || left(diff, -1) || '.',
						  HINT = 'Use a new client_order_id for a new order.';
			END IF;
			RETURN prior;
		END IF;
	END IF;

	-- The market: read, never locked.
	SELECT mk.base_asset, mk.quote_asset, mk.tick_size, mk.lot_size, mk.min_quantity,
	       mk.min_notional, mk.status
	  INTO m FROM exchange.markets mk WHERE mk.symbol = sym;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'market "%" does not exist', sym USING ERRCODE = 'LX003';
	END IF;

	-- Business refusals: stored REJECTED, nothing locked.
	IF acct_status <> 'ACTIVE' THEN
		reject := 'ACCOUNT_NOT_ACTIVE';
	ELSIF acct_kyc <> 'APPROVED' THEN
		reject := 'KYC_NOT_APPROVED';
	ELSIF m.status <> 'ACTIVE' THEN
		reject := 'MARKET_HALTED';
	ELSIF (px IS NOT NULL AND mod(px, m.tick_size) <> 0)
	   OR (stop IS NOT NULL AND mod(stop, m.tick_size) <> 0) THEN
		reject := 'TICK_SIZE';
	ELSIF mod(qty, m.lot_size) <> 0 THEN
		reject := 'LOT_SIZE';
	ELSIF qty < m.min_quantity THEN
		reject := 'MIN_QUANTITY';
	ELSIF px IS NOT NULL AND qty * px < m.min_notional THEN
		reject := 'MIN_NOTIONAL';
	END IF;

	IF is_buy THEN
		lock_asset := m.quote_asset;
		lock_amount := trunc(qty * px, 8);
		IF lock_amount < qty * px THEN
			lock_amount := lock_amount + 0.00000001;
		END IF;
	ELSE
		lock_asset := m.base_asset;
		lock_amount := qty;
	END IF;
	new_id := gen_random_uuid();
	who := exchange_plpgsql.actor();

	-- (4) the balance row: the guarded UPDATE, a shortage is a refusal.
	IF reject IS NULL THEN
		UPDATE exchange.balances b
		   SET available_balance = b.available_balance - lock_amount,
		       locked_balance = b.locked_balance + lock_amount,
		       last_updated = now()
		 WHERE b.account_id = acct AND b.symbol = lock_asset
		   AND b.available_balance - lock_amount >= 0 AND b.locked_balance + lock_amount >= 0;
		moved := FOUND;
		IF NOT moved THEN
			moved := exchange_plpgsql.move_slow(acct, lock_asset, -lock_amount, lock_amount, true);
		END IF;
		IF moved THEN
			INSERT INTO exchange.balance_journal
				(account_id, asset, delta_available, delta_locked, kind, order_id, actor)
			VALUES (acct, lock_asset, -lock_amount, lock_amount, 'ORDER_LOCK', new_id, who);
		ELSE
			reject := 'INSUFFICIENT_FUNDS';
		END IF;
	END IF;
	IF reject IS NOT NULL THEN
		lock_amount := 0;
	END IF;
	new_status := CASE WHEN reject IS NOT NULL THEN 'REJECTED'
	                   WHEN order_type = 'STOP' THEN 'PENDING' ELSE 'OPEN' END;

	INSERT INTO exchange.orders
		(order_id, account_id, symbol, order_type, side, quantity, price, status, time_in_force,
		 metadata, stop_price, client_order_id, lock_asset, locked_amount, reject_reason)
	VALUES (new_id, acct, sym, order_type, side, qty, px, new_status, tif,
	        meta, stop, cid, lock_asset, lock_amount, reject)
	RETURNING * INTO result;

	INSERT INTO exchange.order_events (order_id, from_status, to_status, filled_delta, reason, actor)
	VALUES (new_id, NULL, new_status, 0, reject, who);

	-- One outbox row, the keys in the order the C code names them.
	INSERT INTO exchange.outbox (xid, kind, keys)
	VALUES (pg_current_xact_id(), 'cache',
	        CASE WHEN moved THEN
	             ARRAY['cache:balance:' || acct || ':' || lock_asset, 'cache:balances:' || acct,
	                   'cache:order:' || new_id, 'cache:orders:' || acct]
	             ELSE
	             ARRAY['cache:order:' || new_id, 'cache:orders:' || acct,
	                   'cache:balance:' || acct || ':' || lock_asset, 'cache:balances:' || acct]
	        END
	        || CASE WHEN new_status IN ('OPEN', 'PARTIAL') THEN ARRAY['cache:book:' || sym, 'cache:ticker:' || sym]
	                ELSE '{}'::text[] END);
	RETURN result;
END $$;

-- ---------------------------------------------------------------------------------------------
-- apply_trade

CREATE FUNCTION exchange_plpgsql.apply_trade(order_id uuid, quantity numeric, price numeric,
                                             fee numeric DEFAULT NULL, fee_currency text DEFAULT NULL,
                                             executed_at timestamptz DEFAULT now(),
                                             trade_ref text DEFAULT NULL, liquidity text DEFAULT NULL)
RETURNS exchange.trades
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	oid_ uuid := apply_trade.order_id;
	q numeric := apply_trade.quantity;
	p numeric := apply_trade.price;
	fee_ numeric := apply_trade.fee;
	ccy text := apply_trade.fee_currency;
	ref text := apply_trade.trade_ref;
	liq text := apply_trade.liquidity;
	exec_at timestamptz := coalesce(apply_trade.executed_at, transaction_timestamp());
	o record;
	stored exchange.trades;
	diff text := '';
	is_buy boolean;
	received text;
	notional numeric;
	proceeds numeric;
	remaining numeric;
	filled numeric;
	fvalue numeric;
	avg_price numeric;
	x numeric;
	scaled numeric;
	rem2 numeric;
	complete boolean;
	new_status text;
	new_locked numeric;
	release numeric;
	trade_id_ uuid;
	who text;
	-- the moves: pay (out of the lock), receive, fee; applied in (asset, position) order
	assets text[];
	das numeric[];
	dls numeric[];
	kinds text[];
	ord int[];
	n int;
	i int;
	j int;
	t int;
	keys text[];
	result exchange.trades;
BEGIN
	IF oid_ IS NULL THEN
		RAISE EXCEPTION 'order_id must not be null' USING ERRCODE = '22004';
	END IF;
	IF q IS NULL THEN
		RAISE EXCEPTION 'quantity must not be null' USING ERRCODE = '22004';
	ELSIF NOT (q > 0 AND q < 10000000000000000 AND round(q, 8) = q) THEN
		PERFORM exchange_plpgsql.amount_error(q, 'quantity', true);
	END IF;
	q := q::numeric(24,8);
	IF p IS NULL THEN
		RAISE EXCEPTION 'price must not be null' USING ERRCODE = '22004';
	ELSIF NOT (p > 0 AND p < 10000000000000000 AND round(p, 8) = p) THEN
		PERFORM exchange_plpgsql.amount_error(p, 'price', true);
	END IF;
	p := p::numeric(24,8);
	IF fee_ IS NOT NULL THEN
		IF NOT (fee_ >= 0 AND fee_ < 10000000000000000 AND round(fee_, 8) = fee_) THEN
			PERFORM exchange_plpgsql.amount_error(fee_, 'fee', false);
		END IF;
		fee_ := fee_::numeric(24,8);
	END IF;
	IF ccy IS NOT NULL AND ccy !~ '^[A-Z0-9]{1,10}$' THEN
		RAISE EXCEPTION 'invalid fee_currency "%"', ccy USING ERRCODE = '22023',
			HINT = 'Asset codes are 1 to 10 upper-case letters or digits, like BTC or USDT.';
	END IF;
	IF ref IS NOT NULL AND (ref = '' OR char_length(ref) > 128) THEN
		PERFORM exchange_plpgsql.text_error(ref, 'trade_ref', 128, true);
	END IF;
	IF liq IS NOT NULL AND liq NOT IN ('MAKER', 'TAKER') THEN
		PERFORM exchange_plpgsql.enum_error(liq, 'liquidity', '{MAKER,TAKER}');
	END IF;

	-- (1) the order's account FOR SHARE, (2) the order FOR UPDATE, read with its market.
	PERFORM FROM exchange.accounts a
	 WHERE a.account_id = (SELECT o2.account_id FROM exchange.orders o2 WHERE o2.order_id = oid_)
	   FOR SHARE OF a;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'order % does not exist', oid_ USING ERRCODE = 'LX003';
	END IF;
	SELECT o2.account_id, o2.symbol, o2.side, o2.status, o2.time_in_force, o2.lock_asset,
	       mk.base_asset, mk.quote_asset, o2.quantity, o2.price, o2.filled_quantity,
	       o2.filled_value, o2.locked_amount, mk.maker_fee_rate, mk.taker_fee_rate
	  INTO o
	  FROM exchange.orders o2 JOIN exchange.markets mk ON mk.symbol = o2.symbol
	 WHERE o2.order_id = oid_
	   FOR UPDATE OF o2;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'order % does not exist', oid_ USING ERRCODE = 'LX003';
	END IF;

	-- Effective fee (README "Order lifecycle and arithmetic"): explicit (in the received asset at
	-- most the proceeds), or ceil8(rate x the fill's amount in the fee's currency: quantity in the
	-- base asset, notional in the quote asset), or 0.
	is_buy := o.side = 'BUY';
	received := CASE WHEN is_buy THEN o.base_asset ELSE o.quote_asset END;
	notional := trunc(q * p, 8);
	proceeds := CASE WHEN is_buy THEN q ELSE notional END;
	ccy := coalesce(ccy, received);
	IF fee_ IS NOT NULL THEN
		IF ccy = received AND fee_ > proceeds THEN
			RAISE EXCEPTION 'fee % % exceeds the fill''s proceeds', fee_, ccy USING ERRCODE = '22023',
				DETAIL = format('The fill of order %s receives %s %s.', oid_, proceeds, received),
				HINT = 'A fee in the received asset is taken from the proceeds.';
		END IF;
	ELSIF liq IS NULL THEN
		fee_ := 0;
	ELSE
		IF ccy = o.base_asset THEN
			x := q;
		ELSIF ccy = o.quote_asset THEN
			x := notional;
		ELSE
			RAISE EXCEPTION 'a fee in % cannot be computed for market %', ccy, o.symbol USING ERRCODE = '22023',
				DETAIL = format('A computed fee is the %s rate of the fill''s quantity in %s or of its notional in %s.',
				                liq, o.base_asset, o.quote_asset),
				HINT = 'Pass the fee explicitly to charge it in another asset.';
		END IF;
		x := x * CASE WHEN liq = 'MAKER' THEN o.maker_fee_rate ELSE o.taker_fee_rate END;
		fee_ := trunc(x, 8);			-- ceil8
		IF fee_ < x THEN
			fee_ := fee_ + 0.00000001;
		END IF;
	END IF;

	-- A retry with the same trade_ref: the stored trade, or LX009.
	IF ref IS NOT NULL THEN
		SELECT * INTO stored FROM exchange.trades t2 WHERE t2.order_id = oid_ AND t2.trade_ref = ref;
		IF FOUND THEN
			IF stored.quantity <> q THEN
				diff := diff || format(' quantity %s (now %s);', stored.quantity, q);
			END IF;
			IF stored.price <> p THEN
				diff := diff || format(' price %s (now %s);', stored.price, p);
			END IF;
			IF stored.fee <> fee_ THEN
				diff := diff || format(' fee %s (now %s);', stored.fee, fee_);
			END IF;
			IF stored.fee_currency <> ccy THEN
				diff := diff || format(' fee_currency %s (now %s);', stored.fee_currency, ccy);
			END IF;
			IF stored.liquidity IS DISTINCT FROM liq THEN
				diff := diff || format(' liquidity %s (now %s);', coalesce(stored.liquidity, 'NULL'), coalesce(liq, 'NULL'));
			END IF;
			IF diff <> '' THEN
				RAISE EXCEPTION 'trade_ref "%" was already used for another fill of order %', ref, oid_
					USING ERRCODE = 'LX009', DETAIL = 'The stored trade has' || left(diff, -1) || '.',
						  HINT = 'Use a new trade_ref for a new fill.';
			END IF;
			RETURN stored;
		END IF;
	END IF;

	-- Refusals: LX002, LX007, LX008, LX006.
	remaining := o.quantity - o.filled_quantity;
	IF o.status NOT IN ('OPEN', 'PARTIAL') THEN
		IF o.status = 'PENDING' THEN
			RAISE EXCEPTION 'order % cannot be filled in status %', oid_, o.status USING ERRCODE = 'LX002',
				HINT = 'A STOP order fills once exchange.trigger_stop_orders() has opened it.';
		END IF;
		RAISE EXCEPTION 'order % cannot be filled in status %', oid_, o.status USING ERRCODE = 'LX002',
			DETAIL = 'Only OPEN and PARTIAL orders take fills.';
	END IF;
	IF q > remaining THEN
		RAISE EXCEPTION 'fill of % overfills order %', q, oid_ USING ERRCODE = 'LX007',
			DETAIL = format('The order has %s of %s left.', remaining, o.quantity);
	END IF;
	IF o.time_in_force = 'FOK' AND q < remaining THEN
		RAISE EXCEPTION 'fill-or-kill order % must be filled completely', oid_ USING ERRCODE = 'LX008',
			DETAIL = format('The fill is %s; the order has %s left.', q, remaining),
			HINT = 'Expire the order with exchange.expire_order() if it cannot be filled.';
	END IF;
	IF o.price IS NOT NULL AND ((is_buy AND p > o.price) OR (NOT is_buy AND p < o.price)) THEN
		RAISE EXCEPTION 'fill price % is outside the limit of order %', p, oid_ USING ERRCODE = 'LX006',
			DETAIL = format('A %s order with limit %s fills at %s that.', o.side, o.price,
			                CASE WHEN is_buy THEN 'or below' ELSE 'or above' END);
	END IF;

	-- The fill: trade row, order row, event.
	filled := o.filled_quantity + q;
	fvalue := o.filled_value + q * p;
	-- average_price = round_half_even8(fvalue / filled), exact
	scaled := fvalue * 100000000;
	avg_price := div(scaled, filled);
	rem2 := (scaled - avg_price * filled) * 2;
	IF rem2 > filled OR (rem2 = filled AND mod(avg_price, 2) = 1) THEN
		avg_price := avg_price + 1;
	END IF;
	avg_price := avg_price / 100000000;
	complete := filled = o.quantity;
	new_status := CASE WHEN complete THEN 'FILLED' ELSE 'PARTIAL' END;
	IF complete THEN
		new_locked := 0;
	ELSIF is_buy THEN
		new_locked := trunc((o.quantity - filled) * o.price, 8);
		IF new_locked < (o.quantity - filled) * o.price THEN
			new_locked := new_locked + 0.00000001;
		END IF;
	ELSE
		new_locked := o.locked_amount - q;
	END IF;
	release := o.locked_amount - new_locked;
	trade_id_ := gen_random_uuid();
	who := exchange_plpgsql.actor();

	INSERT INTO exchange.trades
		(trade_id, order_id, account_id, symbol, side, quantity, price, fee, fee_currency,
		 executed_at, trade_ref, liquidity, match_id)
	VALUES (trade_id_, oid_, o.account_id, o.symbol, o.side, q, p, fee_, ccy, exec_at, ref, liq, NULL)
	RETURNING * INTO result;

	UPDATE exchange.orders o2
	   SET filled_quantity = filled, filled_value = fvalue, average_price = avg_price,
	       status = new_status, locked_amount = new_locked, updated_at = now(),
	       filled_at = CASE WHEN new_status = 'FILLED' THEN now() ELSE o2.filled_at END
	 WHERE o2.order_id = oid_;

	INSERT INTO exchange.order_events (order_id, from_status, to_status, filled_delta, reason, actor)
	VALUES (oid_, o.status, new_status, q, ref, who);

	-- The moves: what the order pays (out of its lock), what it receives, the fee; sorted by
	-- asset (byte order), keeping the given order on one asset.
	assets := ARRAY[o.lock_asset, received];
	das := ARRAY[CASE WHEN is_buy THEN release - notional ELSE 0 END,
	             CASE WHEN is_buy THEN q ELSE notional END];
	dls := ARRAY[-release, 0];
	kinds := '{TRADE,TRADE}';
	IF fee_ <> 0 THEN
		assets := assets || ccy;
		das := das || -fee_;
		dls := dls || 0::numeric;
		kinds := kinds || 'FEE'::text;
	END IF;
	n := cardinality(assets);
	ord := CASE n WHEN 2 THEN '{1,2}'::int[] ELSE '{1,2,3}'::int[] END;
	FOR i IN 2 .. n LOOP			-- insertion sort of at most 3
		j := i;
		WHILE j > 1 AND assets[ord[j - 1]] COLLATE "C" > assets[ord[j]] LOOP
			t := ord[j]; ord[j] := ord[j - 1]; ord[j - 1] := t;
			j := j - 1;
		END LOOP;
	END LOOP;

	keys := ARRAY['cache:order:' || oid_, 'cache:orders:' || o.account_id,
	              'cache:trades:' || o.account_id, 'cache:balances:' || o.account_id,
	              'cache:book:' || o.symbol, 'cache:ticker:' || o.symbol];
	FOREACH i IN ARRAY ord LOOP
		CONTINUE WHEN das[i] = 0 AND dls[i] = 0;	-- a move that changes nothing writes nothing
		UPDATE exchange.balances b
		   SET available_balance = b.available_balance + das[i],
		       locked_balance = b.locked_balance + dls[i],
		       last_updated = now()
		 WHERE b.account_id = o.account_id AND b.symbol = assets[i]
		   AND b.available_balance + das[i] >= 0 AND b.locked_balance + dls[i] >= 0;
		IF NOT FOUND THEN
			PERFORM exchange_plpgsql.move_slow(o.account_id, assets[i], das[i], dls[i], false);
		END IF;
		INSERT INTO exchange.balance_journal
			(account_id, asset, delta_available, delta_locked, kind, order_id, trade_id, actor)
		VALUES (o.account_id, assets[i], das[i], dls[i], kinds[i], oid_, trade_id_, who);
		IF NOT ('cache:balance:' || o.account_id || ':' || assets[i]) = ANY (keys) THEN
			keys := keys || ('cache:balance:' || o.account_id || ':' || assets[i]);
		END IF;
	END LOOP;

	IF fee_ <> 0 THEN
		INSERT INTO exchange.fee_ledger (trade_id, market, asset, amount)
		VALUES (trade_id_, o.symbol, ccy, fee_);
	END IF;

	INSERT INTO exchange.outbox (xid, kind, keys) VALUES (pg_current_xact_id(), 'cache', keys);
	RETURN result;
END $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA exchange_plpgsql FROM PUBLIC;
COMMENT ON SCHEMA exchange_plpgsql IS
	'Benchmark yardstick (bench/plpgsql.sql): place_order and apply_trade in PL/pgSQL with the C functions'' contract, locks and rows.';
