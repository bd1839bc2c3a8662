-- Trades: a LIMIT SELL filled in three parts at or above its limit, then cancelled
-- (README "Order lifecycle and arithmetic").  A SELL locks its remaining quantity of the base;
-- each fill moves q out of the lock and credits trunc8(q x p) of the quote; a computed fee is
-- ceil8(notional x rate) in the quote, taken from the proceeds; an explicit fee in the base
-- comes out of the available base.  Cancel releases what remains locked.
--
-- Numbers, by hand (SELL 2 at 50, lock 2 TSL; maker 0.001, taker 0.002):
--   fill 1: 0.75   at 50.5    notional 37.875      fee ceil8(37.875 x 0.001)      = 0.037875 USDT   lock 2 -> 1.25
--   fill 2: 0.3333 at 50.017  notional 16.6706661  fee ceil8(0.0333413322)        = 0.03334134 USDT lock 1.25 -> 0.9167
--   fill 3: 0.1    at 51      notional 5.1         fee 0.001 TSL (explicit, from available TSL)     lock 0.9167 -> 0.8167
--   cancel: 0.8167 TSL released.  average: 50.5, 54.5456661/1.0833 = 50.3513949(04), 59.6456661/1.1833 = 50.40620815
--   USDT: 37.875 + 16.6706661 + 5.1 - 0.037875 - 0.03334134 = 59.57444976; TSL: 5 - 1.1833 - 0.001 = 3.8157
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol, maker_fee_rate, taker_fee_rate
  FROM exchange.create_market('TSL-USDT', 'TSL', 'USDT', 0.001, 0.0001, 0, 0, 0.001, 0.002);
SELECT pg_temp.trader('sl_seller');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('sl_seller'), 'TSL', 5);
SELECT pg_temp.label(order_id, 'sell'), status, quantity, price, lock_asset, locked_amount
  FROM exchange.place_order(pg_temp.id('sl_seller'), 'TSL-USDT', 'SELL', 'LIMIT', 2, 50);
SELECT * FROM pg_temp.balances();
SELECT pg_temp.skip();

-- 1. 0.75 at 50.5 (above the limit: fine), maker, fee from the USDT proceeds.  The USDT
-- balance row is created by the fill.
SELECT pg_temp.label(trade_id, 'f1'), side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_trade(pg_temp.id('sell'), 0.75, 50.5, liquidity => 'MAKER');
SELECT * FROM pg_temp.o('sell');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();

-- 2. Below the limit: LX006, nothing changes.
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('sell'), 0.5, 49.999) $$);

-- From here to step 5, a trigger of our own records each UPDATE of the seller's balance rows
-- (README "Order lifecycle and arithmetic", fee): a fee in the received asset is taken from the
-- proceeds by the UPDATE that credits them (one UPDATE of the row, two journal rows); a fee in
-- another asset is its own UPDATE of that asset's row.
CREATE TEMP TABLE seen_updates (n serial, asset text, available_before numeric,
                                available_after numeric, locked_before numeric, locked_after numeric);
CREATE FUNCTION pg_temp.see_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO pg_temp.seen_updates (asset, available_before, available_after, locked_before, locked_after)
	VALUES (NEW.symbol, OLD.available_balance, NEW.available_balance, OLD.locked_balance, NEW.locked_balance);
	RETURN NULL;
END
$$;
CREATE TRIGGER trades_sell_see_update AFTER UPDATE ON exchange.balances
	FOR EACH ROW EXECUTE FUNCTION pg_temp.see_update();

-- 3. 0.3333 at 50.017, taker: the fee is rounded up to 0.03334134.
SELECT pg_temp.label(trade_id, 'f2'), side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_trade(pg_temp.id('sell'), 0.3333, 50.017, liquidity => 'TAKER');
SELECT * FROM pg_temp.o('sell');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_fees();

-- 4. 0.1 at 51 with an explicit fee of 0.001 TSL: not the received asset, so it comes out
-- of the available TSL, not out of the lock.
SELECT pg_temp.label(trade_id, 'f3'), side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_trade(pg_temp.id('sell'), 0.1, 51, 0.001, 'TSL');
SELECT * FROM pg_temp.o('sell');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();

-- The UPDATEs of steps 3 and 4: f2's USDT proceeds less its fee in one, f3's TSL fee apart.
DROP TRIGGER trades_sell_see_update ON exchange.balances;
SELECT asset, available_before, available_after, locked_before, locked_after
  FROM pg_temp.seen_updates ORDER BY n;

-- 5. Cancel: the remaining 0.8167 TSL come back; the fills stay.
SELECT pg_temp.l(order_id), status, filled_quantity, average_price, locked_amount,
       cancelled_at IS NOT NULL AS cancelled_at, filled_at IS NOT NULL AS filled_at
  FROM exchange.cancel_order(pg_temp.id('sell'), 'done');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
-- A cancelled order takes no more fills (LX002), even one that would fit.
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('sell'), 0.1, 51) $$);

SELECT * FROM pg_temp.trades();
SELECT asset, kind, sum(delta_available) AS available, sum(delta_locked) AS locked
  FROM exchange.balance_journal WHERE order_id = pg_temp.id('sell')
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT * FROM exchange.check_invariants();
