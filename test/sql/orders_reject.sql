-- Orders: every business refusal of place_order (README "Order lifecycle and arithmetic") is
-- stored REJECTED with its reject_reason, locks nothing, writes no journal row, and is
-- returned: ACCOUNT_NOT_ACTIVE, KYC_NOT_APPROVED, MARKET_HALTED, TICK_SIZE, LOT_SIZE,
-- MIN_QUANTITY, MIN_NOTIONAL, INSUFFICIENT_FUNDS.  Malformed calls raise and change nothing.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

-- Setup: ORJ-USDT with tick 0.01, lot 0.001, min_quantity 0.01 and min_notional 10; a halted
-- market; accounts in every state.
SELECT symbol FROM exchange.create_market('ORJ-USDT', 'ORJ', 'USDT', 0.01, 0.001, 0.01, 10);
SELECT symbol FROM exchange.create_market('ORH-USDT', 'ORH', 'USDT', 0.01, 0.001, 0.01, 10);
SELECT symbol, status FROM exchange.set_market_status('ORH-USDT', 'HALTED');
SELECT pg_temp.trader('rj_ok');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('rj_ok'), 'USDT', 1000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('rj_ok'), 'ORJ', 5);
SELECT pg_temp.trader('rj_suspended');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('rj_suspended'), 'USDT', 1000);
SELECT status FROM exchange.set_account_status(pg_temp.id('rj_suspended'), 'SUSPENDED');
SELECT pg_temp.trader('rj_closed');
SELECT status FROM exchange.set_account_status(pg_temp.id('rj_closed'), 'CLOSED');
SELECT pg_temp.label(account_id, 'rj_kyc_pending'), status, kyc_status
  FROM exchange.create_account('exa_rj_kyc_pending');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('rj_kyc_pending'), 'USDT', 1000);
SELECT pg_temp.trader('rj_kyc_rejected');
SELECT kyc_status FROM exchange.set_kyc_status(pg_temp.id('rj_kyc_rejected'), 'REJECTED');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('rj_kyc_rejected'), 'USDT', 1000);
SELECT pg_temp.trader('rj_poor');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('rj_poor'), 'USDT', 10);
SELECT pg_temp.skip();
SELECT * FROM pg_temp.balances();

-- 1. ACCOUNT_NOT_ACTIVE: a SUSPENDED account (with funds) and a CLOSED one.
SELECT pg_temp.label(order_id, 'r_suspended'), status, reject_reason, lock_asset, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_suspended'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100);
SELECT pg_temp.label(order_id, 'r_closed'), status, reject_reason, lock_asset, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_closed'), 'ORJ-USDT', 'SELL', 'LIMIT', 1, 100);
-- Nothing is locked or journaled; the refusal is an event (creation as REJECTED, with the
-- reason) and an outbox row without the book key (the order never was in the book).
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 2. KYC_NOT_APPROVED: KYC PENDING (the status of a new account) and REJECTED.
SELECT pg_temp.label(order_id, 'r_kyc_pending'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_kyc_pending'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100);
SELECT pg_temp.label(order_id, 'r_kyc_rejected'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_kyc_rejected'), 'ORJ-USDT', 'BUY', 'MARKET', 1, 100);

-- 3. MARKET_HALTED.
SELECT pg_temp.label(order_id, 'r_halted'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORH-USDT', 'BUY', 'LIMIT', 1, 100);

-- 4. TICK_SIZE: the price, and a stop_price, must be multiples of 0.01.
SELECT pg_temp.label(order_id, 'r_tick_price'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100.005);
SELECT pg_temp.label(order_id, 'r_tick_stop'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'STOP', 1, 99,
                            stop_price => 99.999);
-- The protection price of a MARKET BUY too.
SELECT pg_temp.label(order_id, 'r_tick_protection'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'MARKET', 1, 100.001);

-- 5. LOT_SIZE: the quantity must be a multiple of 0.001.
SELECT pg_temp.label(order_id, 'r_lot'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'LIMIT', 1.0005, 100);

-- 6. MIN_QUANTITY: 0.009 < 0.01 (a multiple of the lot).
SELECT pg_temp.label(order_id, 'r_min_qty'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 0.009, 100);

-- 7. MIN_NOTIONAL: quantity x price below 10, with the limit price or the protection price.
SELECT pg_temp.label(order_id, 'r_notional_limit'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'LIMIT', 0.5, 19.99);
SELECT pg_temp.label(order_id, 'r_notional_protection'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'MARKET', 0.05, 100);
SELECT pg_temp.label(order_id, 'r_notional_stop'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'STOP', 0.05, 100,
                            stop_price => 99);
-- Exactly 10 is enough; a MARKET SELL or a stop-market SELL without a price is not checked.
SELECT pg_temp.label(order_id, 'ok_notional_10'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'LIMIT', 0.5, 20);
SELECT pg_temp.label(order_id, 'ok_market_sell'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'MARKET', 0.05);
SELECT pg_temp.label(order_id, 'ok_stop_market_sell'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'STOP', 0.05,
                            stop_price => 50);

-- 8. INSUFFICIENT_FUNDS: a BUY needs ceil8(quantity x price) of the quote, a SELL its
-- quantity of the base; an account with no balance row in the asset has none (and gets none).
-- rj_ok has 1000 USDT: 10.011 x 99.9 = 1000.0989 is too much.
SELECT pg_temp.label(order_id, 'r_funds_buy'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 10.011, 99.9);
-- rj_ok has 5 ORJ, of which 0.6 are locked by the orders above: 5 is not available.
SELECT pg_temp.label(order_id, 'r_funds_sell'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'LIMIT', 5, 100);
SELECT pg_temp.label(order_id, 'r_funds_no_row'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_poor'), 'ORJ-USDT', 'SELL', 'LIMIT', 1, 100);
-- rj_poor has 10 USDT: a MARKET BUY of 0.2 with protection price 50.01 locks 10.002.
SELECT pg_temp.label(order_id, 'r_funds_protection'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_poor'), 'ORJ-USDT', 'BUY', 'MARKET', 0.2, 50.01);
-- What is available is enough: 0.2 at 50 locks exactly the 10 USDT.
SELECT pg_temp.label(order_id, 'ok_all_funds'), status, reject_reason, locked_amount
  FROM exchange.place_order(pg_temp.id('rj_poor'), 'ORJ-USDT', 'BUY', 'LIMIT', 0.2, 50);

-- 9. The first refusal in the order of README "Order lifecycle and arithmetic" wins: account,
-- KYC, market, tick, lot, minimum quantity, minimum notional, funds.
SELECT pg_temp.label(order_id, 'p_account'), reject_reason   -- suspended, halted, bad tick
  FROM exchange.place_order(pg_temp.id('rj_suspended'), 'ORH-USDT', 'BUY', 'LIMIT', 1, 1.001);
SELECT pg_temp.label(order_id, 'p_kyc'), reject_reason       -- KYC, halted, bad lot
  FROM exchange.place_order(pg_temp.id('rj_kyc_pending'), 'ORH-USDT', 'BUY', 'LIMIT', 0.0001, 1);
SELECT pg_temp.label(order_id, 'p_market'), reject_reason    -- halted, bad tick, no funds
  FROM exchange.place_order(pg_temp.id('rj_poor'), 'ORH-USDT', 'BUY', 'LIMIT', 1000, 1.001);
SELECT pg_temp.label(order_id, 'p_tick'), reject_reason      -- bad tick, bad lot
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1.0001, 1.001);
SELECT pg_temp.label(order_id, 'p_lot'), reject_reason       -- bad lot, below min quantity
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 0.0001, 1);
SELECT pg_temp.label(order_id, 'p_min_qty'), reject_reason   -- below both minimums
  FROM exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 0.001, 1);
SELECT pg_temp.label(order_id, 'p_min_notional'), reject_reason  -- below min notional, no funds
  FROM exchange.place_order(pg_temp.id('rj_poor'), 'ORJ-USDT', 'SELL', 'LIMIT', 0.01, 1);

-- Every refusal as stored: REJECTED, with its reason, nothing locked.
SELECT "order", account, symbol, type, side, tif, quantity, price, stop_price, status,
       filled, locked, reject_reason
  FROM pg_temp.orders();
-- Only the accepted orders locked funds (ORDER_LOCK rows); no balance row was created.
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.balances();
-- One creation event per order, REJECTED ones with their reason.
SELECT * FROM pg_temp.new_events();
-- The outbox rows of the refusals carry no book key; those of the accepted orders do (the
-- PENDING stop excepted).
SELECT * FROM pg_temp.new_outbox();

-- 10. Malformed calls raise and change nothing (SQLSTATEs are asserted in
-- test/pgtap/orders_errors.sql; here the messages).
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'MARKET', 1) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'STOP', 1, stop_price => 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'STOP', 1, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'LIMIT', 1, 100, stop_price => 90) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'MARKET', 1, NULL, 'GTC') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'buy', 'LIMIT', 1, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'STOP_LIMIT', 1, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100, 'DAY') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 0, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, -100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 'NaN', 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, 'Infinity') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 0.000000001, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1e16, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'SELL', 'STOP', 1, stop_price => 0) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(NULL, 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), NULL, 'BUY', 'LIMIT', 1, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', NULL, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order('00000000-0000-0000-0000-000000000000', 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'NOPE-USDT', 'BUY', 'LIMIT', 1, 100) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100, metadata => '[1]') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100, client_order_id => '') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('rj_ok'), 'ORJ-USDT', 'BUY', 'LIMIT', 1, 100, client_order_id => repeat('x', 65)) $$);
SELECT * FROM pg_temp.counts();

SELECT * FROM exchange.check_invariants();
