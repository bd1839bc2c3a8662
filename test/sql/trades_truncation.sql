-- Trades: where truncation matters (README "Order lifecycle and arithmetic": every amount a multiple of 1e-8).
-- notional = trunc8(q x p); a BUY keeps ceil8(remaining x limit) locked; a fill releases
-- old_locked - new_locked, spends the notional and refunds the rest; average_price is
-- round_half_even8(sum(q x p) / sum(q)).  Every scenario ends with nothing locked.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

-- A market with the default tick and lot (1e-8) and no fees.
SELECT symbol, tick_size, lot_size FROM exchange.create_market('TTR-USDT', 'TTR', 'USDT');
SELECT pg_temp.trader('tr_buyer');
SELECT pg_temp.trader('tr_seller');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('tr_buyer'), 'USDT', 100);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('tr_seller'), 'TTR', 100);
SELECT pg_temp.skip();

-- 1. BUY 1 at 0.00000003 against SELL 1 at 0.00000003, matched as 0.5 + 0.5.
--    The BUY locks ceil8(1 x 0.00000003) = 0.00000003.
--    match 1: notional trunc8(0.5 x 0.00000003 = 0.000000015) = 0.00000001; the BUY's lock
--             becomes ceil8(0.5 x 0.00000003) = 0.00000002: 0.00000001 released, all spent.
--    match 2: notional 0.00000001; the lock goes to 0: 0.00000002 released, 0.00000001
--             spent, 0.00000001 refunded.
--    The buyer pays 0.00000002 for 1 TTR and the seller receives exactly that; the legs of
--    each match net to zero; average_price 0.00000003 on both.
SELECT pg_temp.label(order_id, 'tiny_buy'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('tr_buyer'), 'TTR-USDT', 'BUY', 'LIMIT', 1, 0.00000003);
SELECT pg_temp.label(order_id, 'tiny_sell'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('tr_seller'), 'TTR-USDT', 'SELL', 'LIMIT', 1, 0.00000003);
SELECT * FROM pg_temp.balances();
SELECT pg_temp.skip();
SELECT pg_temp.label(trade_id, 'tiny_m1_' || lower(side)), side, quantity, price, fee
  FROM exchange.apply_match(pg_temp.id('tiny_buy'), pg_temp.id('tiny_sell'), 0.5, 0.00000003);
SELECT * FROM pg_temp.o('tiny_buy');
SELECT * FROM pg_temp.o('tiny_sell');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal() ORDER BY account, asset, kind;
SELECT pg_temp.label(trade_id, 'tiny_m2_' || lower(side)), side, quantity, price, fee
  FROM exchange.apply_match(pg_temp.id('tiny_buy'), pg_temp.id('tiny_sell'), 0.5, 0.00000003);
SELECT * FROM pg_temp.o('tiny_buy');
SELECT * FROM pg_temp.o('tiny_sell');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal() ORDER BY account, asset, kind;
SELECT * FROM pg_temp.new_events();

-- 2. The same BUY filled by an outside counterparty (apply_trade, 0.5 + 0.5): the same
-- arithmetic on the buyer's side alone.
SELECT pg_temp.label(order_id, 'tiny_ext'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('tr_buyer'), 'TTR-USDT', 'BUY', 'LIMIT', 1, 0.00000003);
SELECT pg_temp.skip();
SELECT pg_temp.label(trade_id, 'tiny_ext_1'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('tiny_ext'), 0.5, 0.00000003);
SELECT * FROM pg_temp.o('tiny_ext');
SELECT pg_temp.label(trade_id, 'tiny_ext_2'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('tiny_ext'), 0.5, 0.00000003);
SELECT * FROM pg_temp.o('tiny_ext');
SELECT * FROM pg_temp.new_journal();

-- 3. Quantities and prices with 8 significant decimals: BUY 12.34567891 at 0.98765432
-- (lock ceil8(12.1932631087943912) = 12.19326311) against SELL 12.34567891 at 0.98765431.
--    match 1: 3.33333333 at 0.98765432  q x p 3.2921810633744856  notional 3.29218106
--             lock -> ceil8(9.01234558 x 0.98765432) = 8.90108205  released 3.29218106  refund 0
--    match 2: 5.55555555 at 0.98765431  q x p 5.4869683834019205  notional 5.48696838
--             lock -> ceil8(3.45679003 x 0.98765432) = 3.41411361  released 5.48696844  refund 0.00000006
--    match 3: 3.45679003 at 0.98765431  q x p 3.4141135718945293  notional 3.41411357
--             lock -> 0  released 3.41411361  refund 0.00000004
--    average: 0.98765432, then round_half_even8(0.98765431375) = 0.98765431, then 0.98765431(27).
--    The buyer pays 12.19326301; the seller receives 12.19326301.
SELECT pg_temp.label(order_id, 'sig_buy'), status, quantity, price, locked_amount
  FROM exchange.place_order(pg_temp.id('tr_buyer'), 'TTR-USDT', 'BUY', 'LIMIT', 12.34567891, 0.98765432);
SELECT pg_temp.label(order_id, 'sig_sell'), status, quantity, price, locked_amount
  FROM exchange.place_order(pg_temp.id('tr_seller'), 'TTR-USDT', 'SELL', 'LIMIT', 12.34567891, 0.98765431);
SELECT pg_temp.skip();
SELECT pg_temp.label(trade_id, 'sig_m1_' || lower(side)), side, quantity, price
  FROM exchange.apply_match(pg_temp.id('sig_buy'), pg_temp.id('sig_sell'), 3.33333333, 0.98765432);
SELECT * FROM pg_temp.o('sig_buy');
SELECT * FROM pg_temp.o('sig_sell');
SELECT * FROM pg_temp.new_journal() ORDER BY account, asset, kind;
SELECT pg_temp.label(trade_id, 'sig_m2_' || lower(side)), side, quantity, price
  FROM exchange.apply_match(pg_temp.id('sig_buy'), pg_temp.id('sig_sell'), 5.55555555, 0.98765431);
SELECT * FROM pg_temp.o('sig_buy');
SELECT * FROM pg_temp.o('sig_sell');
SELECT * FROM pg_temp.new_journal() ORDER BY account, asset, kind;
SELECT pg_temp.label(trade_id, 'sig_m3_' || lower(side)), side, quantity, price
  FROM exchange.apply_match(pg_temp.id('sig_buy'), pg_temp.id('sig_sell'), 3.45679003, 0.98765431);
SELECT * FROM pg_temp.o('sig_buy');
SELECT * FROM pg_temp.o('sig_sell');
SELECT * FROM pg_temp.new_journal() ORDER BY account, asset, kind;
-- What each side paid and received over the three matches.
SELECT pg_temp.l(j.account_id) AS account, j.asset, sum(j.delta_available + j.delta_locked) AS net
  FROM exchange.balance_journal j
 WHERE j.order_id IN (pg_temp.id('sig_buy'), pg_temp.id('sig_sell')) AND j.kind = 'TRADE'
 GROUP BY 1, 2 ORDER BY 1, 2;

-- 4. average_price rounds half to even: fills of 1 at 0.00000001 and 1 at 0.00000002
-- average 0.000000015 -> 0.00000002; fills of 1 at 0.00000002 and 1 at 0.00000003 average
-- 0.000000025 -> 0.00000002 (half-up would give 0.00000003).
SELECT pg_temp.label(order_id, 'even_a'), locked_amount
  FROM exchange.place_order(pg_temp.id('tr_buyer'), 'TTR-USDT', 'BUY', 'LIMIT', 2, 0.00000003);
SELECT pg_temp.label(order_id, 'even_b'), locked_amount
  FROM exchange.place_order(pg_temp.id('tr_buyer'), 'TTR-USDT', 'BUY', 'LIMIT', 2, 0.00000003);
SELECT pg_temp.skip();
SELECT quantity, price FROM exchange.apply_trade(pg_temp.id('even_a'), 1, 0.00000001);
SELECT quantity, price FROM exchange.apply_trade(pg_temp.id('even_a'), 1, 0.00000002);
SELECT quantity, price FROM exchange.apply_trade(pg_temp.id('even_b'), 1, 0.00000002);
SELECT quantity, price FROM exchange.apply_trade(pg_temp.id('even_b'), 1, 0.00000003);
SELECT * FROM pg_temp.o('even_a');
SELECT * FROM pg_temp.o('even_b');
SELECT account, asset, delta_available, delta_locked, kind, "order" FROM pg_temp.new_journal();

-- 5. A fill whose notional truncates to zero: 0.1 at 0.00000003 (q x p = 0.000000003) would
-- deliver 0.1 TTR for nothing; it is refused (22023) and writes nothing (README "Order
-- lifecycle and arithmetic", fill).  No fill of this order (0.2 at 0.00000003) has a notional:
-- it can only be cancelled, which returns its lock ceil8(0.2 x 0.00000003) = 0.00000001.
SELECT pg_temp.label(order_id, 'zero_notional'), locked_amount
  FROM exchange.place_order(pg_temp.id('tr_buyer'), 'TTR-USDT', 'BUY', 'LIMIT', 0.2, 0.00000003);
SELECT pg_temp.skip();
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('zero_notional'), 0.1, 0.00000003) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('zero_notional'), 0.2, 0.00000003) $$);
SELECT * FROM pg_temp.o('zero_notional');
SELECT account, asset, delta_available, delta_locked, kind, "order" FROM pg_temp.new_journal();
SELECT pg_temp.l(order_id), status, locked_amount FROM exchange.cancel_order(pg_temp.id('zero_notional'));
SELECT account, asset, delta_available, delta_locked, kind, "order" FROM pg_temp.new_journal();

-- Every order FILLED (zero_notional CANCELLED), nothing locked anywhere.
SELECT "order", side, quantity, price, status, filled, avg_price, locked FROM pg_temp.orders();
SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();
