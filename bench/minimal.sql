-- bench/minimal.sql — the minimal-schema peer of place_order and apply_trade, for the benchmark
-- only: what a developer writing the obvious PL/pgSQL over the smallest honest schema gets.
--
-- The schema (bench_min): the seed's tables with primary keys, the two foreign keys
-- orders -> accounts and orders -> markets, two indexes on orders (an account's orders; the live
-- book by symbol, side and price), non-negative CHECKs on balances, and plain journal, event and
-- outbox tables (a bigserial key, no CHECK, no foreign key).  No other constraint, no trigger.
--
-- The functions: the same arguments and the same result row type as the C functions' where the
-- schemas allow (bench_min.orders / bench_min.trades have fewer columns), the same business
-- refusals (stored REJECTED), the same arithmetic (lock of a BUY = notional rounded up to 8
-- places, average price half-even, fee = ceil8(rate x amount)), the same locks in the obvious
-- order (order row, then balance rows), one journal row per balance move and one outbox row per
-- call.  No argument validation beyond what the arithmetic needs, no idempotency keys, no
-- actor: that is what "minimal" means.
--
-- Loaded by bench/run.sh after bench/setup.sql: the fixture (accounts, market, balances, the
-- pool orders of bench.pool) is copied from the extension's tables, so that the pgbench scripts
-- of the four variants use the same ids.

SET search_path = pg_catalog, pg_temp;

CREATE SCHEMA bench_min;

CREATE TABLE bench_min.accounts (
	account_id	uuid PRIMARY KEY,
	user_id		text NOT NULL,
	status		text NOT NULL,
	kyc_status	text NOT NULL
);

CREATE TABLE bench_min.markets (
	symbol			text PRIMARY KEY,
	base_asset		text NOT NULL,
	quote_asset		text NOT NULL,
	tick_size		numeric NOT NULL,
	lot_size		numeric NOT NULL,
	min_quantity	numeric NOT NULL,
	min_notional	numeric NOT NULL,
	maker_fee_rate	numeric NOT NULL,
	taker_fee_rate	numeric NOT NULL,
	status			text NOT NULL
);

CREATE TABLE bench_min.balances (
	account_id		uuid NOT NULL,
	symbol			text NOT NULL,
	available_balance numeric NOT NULL DEFAULT 0 CHECK (available_balance >= 0),
	locked_balance	numeric NOT NULL DEFAULT 0 CHECK (locked_balance >= 0),
	last_updated	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account_id, symbol)
);

CREATE TABLE bench_min.orders (
	order_id		uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	account_id		uuid NOT NULL REFERENCES bench_min.accounts,
	symbol			text NOT NULL REFERENCES bench_min.markets,
	order_type		text NOT NULL,
	side			text NOT NULL,
	quantity		numeric NOT NULL,
	price			numeric,
	filled_quantity numeric NOT NULL DEFAULT 0,
	filled_value	numeric NOT NULL DEFAULT 0,
	average_price	numeric,
	status			text NOT NULL,
	time_in_force	text NOT NULL,
	lock_asset		text NOT NULL,
	locked_amount	numeric NOT NULL DEFAULT 0,
	reject_reason	text,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	filled_at		timestamptz
);
CREATE INDEX orders_account_idx ON bench_min.orders (account_id, created_at);
CREATE INDEX orders_book_idx ON bench_min.orders (symbol, side, price) WHERE status IN ('OPEN', 'PARTIAL');

CREATE TABLE bench_min.trades (
	trade_id		uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	order_id		uuid NOT NULL,
	account_id		uuid NOT NULL,
	symbol			text NOT NULL,
	side			text NOT NULL,
	quantity		numeric NOT NULL,
	price			numeric NOT NULL,
	fee				numeric NOT NULL,
	fee_currency	text NOT NULL,
	executed_at		timestamptz NOT NULL,
	trade_ref		text,
	liquidity		text
);

CREATE TABLE bench_min.journal (
	seq				bigserial PRIMARY KEY,
	account_id		uuid NOT NULL,
	asset			text NOT NULL,
	delta_available numeric NOT NULL,
	delta_locked	numeric NOT NULL,
	kind			text NOT NULL,
	order_id		uuid,
	trade_id		uuid,
	created_at		timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bench_min.events (
	seq				bigserial PRIMARY KEY,
	order_id		uuid NOT NULL,
	from_status		text,
	to_status		text NOT NULL,
	filled_delta	numeric NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bench_min.outbox (
	id				bigserial PRIMARY KEY,
	xid				xid8 NOT NULL,
	keys			text[] NOT NULL
);

-- The fixture, copied from the extension's tables (bench/setup.sql).
INSERT INTO bench_min.accounts SELECT account_id, user_id, status, kyc_status FROM exchange.accounts;
INSERT INTO bench_min.markets
SELECT symbol, base_asset, quote_asset, tick_size, lot_size, min_quantity, min_notional,
       maker_fee_rate, taker_fee_rate, status
  FROM exchange.markets;
INSERT INTO bench_min.balances (account_id, symbol, available_balance, locked_balance)
SELECT account_id, symbol, available_balance, locked_balance FROM exchange.balances;
INSERT INTO bench_min.orders (order_id, account_id, symbol, order_type, side, quantity, price,
                              filled_quantity, filled_value, average_price, status, time_in_force,
                              lock_asset, locked_amount)
SELECT order_id, account_id, symbol, order_type, side, quantity, price, filled_quantity,
       filled_value, average_price, status, time_in_force, lock_asset, locked_amount
  FROM exchange.orders WHERE order_id IN (SELECT order_id FROM bench.pool);

CREATE FUNCTION bench_min.place_order(account_id uuid, symbol text, side text, order_type text,
                                      quantity numeric, price numeric DEFAULT NULL)
RETURNS bench_min.orders LANGUAGE plpgsql AS $$
DECLARE
	a record;
	m record;
	reason text;
	lock_asset_ text;
	lock_ numeric;
	result bench_min.orders;
BEGIN
	SELECT ac.status, ac.kyc_status INTO a FROM bench_min.accounts ac
	 WHERE ac.account_id = place_order.account_id FOR SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'account % does not exist', place_order.account_id USING ERRCODE = 'LX003';
	END IF;
	SELECT * INTO m FROM bench_min.markets mk WHERE mk.symbol = place_order.symbol;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'market % does not exist', place_order.symbol USING ERRCODE = 'LX003';
	END IF;
	lock_asset_ := CASE WHEN side = 'BUY' THEN m.quote_asset ELSE m.base_asset END;
	reason := CASE
		WHEN a.status <> 'ACTIVE' THEN 'ACCOUNT_NOT_ACTIVE'
		WHEN a.kyc_status <> 'APPROVED' THEN 'KYC_NOT_APPROVED'
		WHEN m.status <> 'ACTIVE' THEN 'MARKET_HALTED'
		WHEN mod(price, m.tick_size) <> 0 THEN 'TICK_SIZE'
		WHEN mod(quantity, m.lot_size) <> 0 THEN 'LOT_SIZE'
		WHEN quantity < m.min_quantity THEN 'MIN_QUANTITY'
		WHEN quantity * price < m.min_notional THEN 'MIN_NOTIONAL'
	END;
	IF reason IS NULL THEN
		lock_ := CASE WHEN side = 'BUY' THEN ceil(quantity * price * 100000000) / 100000000 ELSE quantity END;
		UPDATE bench_min.balances b
		   SET available_balance = b.available_balance - lock_, locked_balance = b.locked_balance + lock_,
		       last_updated = now()
		 WHERE b.account_id = place_order.account_id AND b.symbol = lock_asset_
		   AND b.available_balance >= lock_;
		IF NOT FOUND THEN
			reason := 'INSUFFICIENT_FUNDS';
		END IF;
	END IF;
	IF reason IS NOT NULL THEN
		INSERT INTO bench_min.orders (account_id, symbol, order_type, side, quantity, price, status,
		                              time_in_force, lock_asset, locked_amount, reject_reason)
		VALUES (place_order.account_id, place_order.symbol, order_type, side, quantity, price,
		        'REJECTED', 'GTC', lock_asset_, 0, reason)
		RETURNING * INTO result;
		INSERT INTO bench_min.events (order_id, from_status, to_status, filled_delta)
		VALUES (result.order_id, NULL, 'REJECTED', 0);
		INSERT INTO bench_min.outbox (xid, keys)
		VALUES (pg_current_xact_id(), ARRAY['cache:order:' || result.order_id, 'cache:orders:' || place_order.account_id]);
		RETURN result;
	END IF;
	INSERT INTO bench_min.orders (account_id, symbol, order_type, side, quantity, price, status,
	                              time_in_force, lock_asset, locked_amount)
	VALUES (place_order.account_id, place_order.symbol, order_type, side, quantity, price,
	        'OPEN', 'GTC', lock_asset_, lock_)
	RETURNING * INTO result;
	INSERT INTO bench_min.journal (account_id, asset, delta_available, delta_locked, kind, order_id)
	VALUES (place_order.account_id, lock_asset_, -lock_, lock_, 'ORDER_LOCK', result.order_id);
	INSERT INTO bench_min.events (order_id, from_status, to_status, filled_delta)
	VALUES (result.order_id, NULL, 'OPEN', 0);
	INSERT INTO bench_min.outbox (xid, keys)
	VALUES (pg_current_xact_id(),
	        ARRAY['cache:balance:' || place_order.account_id || ':' || lock_asset_,
	              'cache:balances:' || place_order.account_id, 'cache:order:' || result.order_id,
	              'cache:orders:' || place_order.account_id, 'cache:book:' || place_order.symbol,
	              'cache:ticker:' || place_order.symbol]);
	RETURN result;
END $$;

CREATE FUNCTION bench_min.apply_trade(order_id uuid, quantity numeric, price numeric,
                                      fee numeric DEFAULT NULL, fee_currency text DEFAULT NULL,
                                      executed_at timestamptz DEFAULT now(),
                                      trade_ref text DEFAULT NULL, liquidity text DEFAULT NULL)
RETURNS bench_min.trades LANGUAGE plpgsql AS $$
DECLARE
	o record;
	is_buy boolean;
	received text;
	notional numeric;
	fee_ numeric := apply_trade.fee;
	ccy text;
	filled numeric;
	fvalue numeric;
	new_locked numeric;
	release numeric;
	result bench_min.trades;
BEGIN
	SELECT o2.*, mk.base_asset, mk.quote_asset, mk.maker_fee_rate, mk.taker_fee_rate INTO o
	  FROM bench_min.orders o2 JOIN bench_min.markets mk ON mk.symbol = o2.symbol
	 WHERE o2.order_id = apply_trade.order_id
	   FOR UPDATE OF o2;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'order % does not exist', apply_trade.order_id USING ERRCODE = 'LX003';
	END IF;
	IF o.status NOT IN ('OPEN', 'PARTIAL') THEN
		RAISE EXCEPTION 'order % cannot be filled in status %', o.order_id, o.status USING ERRCODE = 'LX002';
	END IF;
	IF quantity > o.quantity - o.filled_quantity THEN
		RAISE EXCEPTION 'fill of % overfills order %', quantity, o.order_id USING ERRCODE = 'LX007';
	END IF;
	is_buy := o.side = 'BUY';
	received := CASE WHEN is_buy THEN o.base_asset ELSE o.quote_asset END;
	notional := trunc(quantity * price, 8);
	ccy := coalesce(apply_trade.fee_currency, received);
	IF fee_ IS NULL THEN
		fee_ := CASE WHEN liquidity IS NULL THEN 0
		             ELSE ceil(CASE WHEN ccy = o.base_asset THEN quantity ELSE notional END
		                       * CASE WHEN liquidity = 'MAKER' THEN o.maker_fee_rate ELSE o.taker_fee_rate END
		                       * 100000000) / 100000000 END;
	END IF;
	filled := o.filled_quantity + quantity;
	fvalue := o.filled_value + quantity * price;
	new_locked := CASE WHEN filled = o.quantity THEN 0
	                   WHEN is_buy THEN ceil((o.quantity - filled) * o.price * 100000000) / 100000000
	                   ELSE o.locked_amount - quantity END;
	release := o.locked_amount - new_locked;

	INSERT INTO bench_min.trades (order_id, account_id, symbol, side, quantity, price, fee,
	                              fee_currency, executed_at, trade_ref, liquidity)
	VALUES (o.order_id, o.account_id, o.symbol, o.side, quantity, price, fee_, ccy,
	        coalesce(executed_at, now()), trade_ref, liquidity)
	RETURNING * INTO result;
	UPDATE bench_min.orders o2
	   SET filled_quantity = filled, filled_value = fvalue,
	       average_price = round(fvalue / filled, 8),
	       status = CASE WHEN filled = o.quantity THEN 'FILLED' ELSE 'PARTIAL' END,
	       locked_amount = new_locked, updated_at = now(),
	       filled_at = CASE WHEN filled = o.quantity THEN now() END
	 WHERE o2.order_id = o.order_id;
	INSERT INTO bench_min.events (order_id, from_status, to_status, filled_delta)
	VALUES (o.order_id, o.status, CASE WHEN filled = o.quantity THEN 'FILLED' ELSE 'PARTIAL' END, quantity);

	-- the balance moves: pay out of the lock, receive, fee (the fee here in the received asset)
	UPDATE bench_min.balances b
	   SET available_balance = b.available_balance + CASE WHEN is_buy THEN release - notional ELSE 0 END,
	       locked_balance = b.locked_balance - release, last_updated = now()
	 WHERE b.account_id = o.account_id AND b.symbol = o.lock_asset;
	UPDATE bench_min.balances b
	   SET available_balance = b.available_balance + CASE WHEN is_buy THEN quantity ELSE notional END
	                           - CASE WHEN ccy = received THEN fee_ ELSE 0 END,
	       last_updated = now()
	 WHERE b.account_id = o.account_id AND b.symbol = received;
	IF ccy <> received AND fee_ <> 0 THEN
		UPDATE bench_min.balances b SET available_balance = b.available_balance - fee_, last_updated = now()
		 WHERE b.account_id = o.account_id AND b.symbol = ccy;
	END IF;
	INSERT INTO bench_min.journal (account_id, asset, delta_available, delta_locked, kind, order_id, trade_id)
	VALUES (o.account_id, o.lock_asset, CASE WHEN is_buy THEN release - notional ELSE 0 END, -release,
	        'TRADE', o.order_id, result.trade_id),
	       (o.account_id, received, CASE WHEN is_buy THEN quantity ELSE notional END, 0,
	        'TRADE', o.order_id, result.trade_id),
	       (o.account_id, ccy, -fee_, 0, 'FEE', o.order_id, result.trade_id);
	INSERT INTO bench_min.outbox (xid, keys)
	VALUES (pg_current_xact_id(),
	        ARRAY['cache:order:' || o.order_id, 'cache:orders:' || o.account_id,
	              'cache:trades:' || o.account_id, 'cache:balances:' || o.account_id,
	              'cache:book:' || o.symbol, 'cache:ticker:' || o.symbol,
	              'cache:balance:' || o.account_id || ':' || o.lock_asset,
	              'cache:balance:' || o.account_id || ':' || received]);
	RETURN result;
END $$;

VACUUM ANALYZE;
