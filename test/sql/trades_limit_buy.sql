-- Trades: a LIMIT BUY filled in four parts at or below its limit (README "Order lifecycle and
-- arithmetic").  Each fill of q at p: notional = trunc8(q x p) is paid; the order's lock
-- becomes ceil8(remaining x limit), the lock released beyond the notional is refunded; the fee
-- is computed ceil8(quantity x rate) in the base (the proceeds) when NULL with a liquidity, or
-- explicit in the base, the quote or a third asset (taken from the available balance when not
-- the received asset) and written to fee_ledger; average_price = round_half_even8(sum(q x p) /
-- sum(q)).  After each fill: the trade, the order, the balances, the journal, event and
-- fee_ledger rows.
--
-- Numbers, by hand (limit 100, quantity 3, lock 300):
--   fill 1: 1      at 99.5   notional  99.5        lock 300 -> 200    refund 0.5       fee 0.002 TLB (taker 0.002 x 1)
--   fill 2: 0.5    at 98.25  notional  49.125      lock 200 -> 150    refund 0.875     fee 0.1 USDT (explicit)
--   fill 3: 1.2345 at 97.13  notional 119.906985   lock 150 -> 26.55  refund 3.543015  fee 0.01 TLF (explicit)
--   fill 4: 0.2655 at 100    notional  26.55       lock 26.55 -> 0    refund 0         fee ceil8(0.2655 x 0.00075 = 0.000199125) = 0.00019913 TLB (maker)
--   average: 99.5, 148.625/1.5 = 99.08333333, 268.531985/2.7345 = 98.20149387(457), 295.081985/3 = 98.36066167
--   USDT: 10000 - 295.081985 - 0.1 = 9704.818015; TLB: 3 - 0.002 - 0.00019913 = 2.99780087; TLF: 4.99
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol, maker_fee_rate, taker_fee_rate
  FROM exchange.create_market('TLB-USDT', 'TLB', 'USDT', 0.001, 0.0001, 0, 0, 0.00075, 0.002);
SELECT pg_temp.trader('lb_buyer');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('lb_buyer'), 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('lb_buyer'), 'TLF', 5);
SELECT pg_temp.label(order_id, 'buy'), status, quantity, price, locked_amount
  FROM exchange.place_order(pg_temp.id('lb_buyer'), 'TLB-USDT', 'BUY', 'LIMIT', 3, 100);
SELECT * FROM pg_temp.balances();
SELECT pg_temp.skip();

-- 1. 1 at 99.5, taker, fee computed in the base from the proceeds: 0.002 TLB.
SELECT pg_temp.label(trade_id, 'f1'), side, quantity, price, fee, fee_currency, liquidity, trade_ref
  FROM exchange.apply_trade(pg_temp.id('buy'), 1, 99.5, liquidity => 'TAKER', trade_ref => 'lb-1');
SELECT * FROM pg_temp.o('buy');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();
SELECT * FROM pg_temp.new_outbox();

-- 2. 0.5 at 98.25, an explicit fee of 0.1 in the quote: it comes out of available USDT
-- (after the refund), not out of the proceeds.
SELECT pg_temp.label(trade_id, 'f2'), side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_trade(pg_temp.id('buy'), 0.5, 98.25, 0.1, 'USDT');
SELECT * FROM pg_temp.o('buy');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();

-- 3. A fee in a third asset the account lacks is refused (LX001) and the fill changes
-- nothing: no trade, no journal, the order as it was.
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('buy'), 1.2345, 97.13, 5.01, 'TLF') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('buy'), 1.2345, 97.13, 0.01, 'TLZ') $$);
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.o('buy');

-- 4. 1.2345 at 97.13 with 0.01 TLF of fee, taken from the TLF balance.
SELECT pg_temp.label(trade_id, 'f3'), side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_trade(pg_temp.id('buy'), 1.2345, 97.13, 0.01, 'TLF');
SELECT * FROM pg_temp.o('buy');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();

-- 5. Refused and changing nothing: above the limit (LX006), more than remains (LX007).
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('buy'), 0.2655, 100.001) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('buy'), 0.2656, 100) $$);
SELECT * FROM pg_temp.counts();

-- 6. The last 0.2655 at the limit, maker: fee ceil8(0.2655 x 0.00075) = 0.00019913 TLB.
-- FILLED, filled_at set, nothing left locked, no refund (the notional is the whole lock).
SELECT pg_temp.label(trade_id, 'f4'), side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_trade(pg_temp.id('buy'), 0.2655, 100, liquidity => 'MAKER');
SELECT * FROM pg_temp.o('buy');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_fees();

-- 7. The trades; the fee ledger holds every non-zero fee; the journal of the order sums to
-- what the buyer paid (notional 295.081985) and received (3 TLB); a fill of a FILLED order
-- is LX002.
SELECT * FROM pg_temp.trades();
SELECT f.asset, sum(f.amount)
  FROM exchange.fee_ledger f JOIN exchange.trades t USING (trade_id)
 WHERE t.order_id = pg_temp.id('buy') GROUP BY 1 ORDER BY 1;
SELECT asset, kind, sum(delta_available) AS available, sum(delta_locked) AS locked,
       sum(delta_available + delta_locked) AS net
  FROM exchange.balance_journal WHERE order_id = pg_temp.id('buy')
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT o.filled_quantity, o.average_price,
       round(sum(t.quantity * t.price) / sum(t.quantity), 8) AS vwap_check
  FROM exchange.orders o JOIN exchange.trades t USING (order_id)
 WHERE o.order_id = pg_temp.id('buy') GROUP BY 1, 2;
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('buy'), 0.0001, 99) $$);

SELECT * FROM exchange.check_invariants();
