-- Trades: fill-or-kill (README "Order lifecycle and arithmetic").  A fill of a FOK order
-- smaller than its remaining quantity is refused (LX008) and changes nothing; only a complete
-- fill is taken; a FOK order that cannot be filled is expired by the caller.  An overfill stays
-- LX007; an apply_match with a FOK leg filled partly is refused as a whole.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('TFK-USDT', 'TFK', 'USDT', 0.01, 0.01);
SELECT pg_temp.trader('fk_alice');
SELECT pg_temp.trader('fk_bob');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('fk_alice'), 'USDT', 1000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('fk_bob'), 'TFK', 10);

-- 1. A LIMIT BUY FOK of 2 at 10 (20 locked): a fill of 1 is refused with LX008 and a hint.
SELECT pg_temp.label(order_id, 'fok_buy'), status, time_in_force, locked_amount
  FROM exchange.place_order(pg_temp.id('fk_alice'), 'TFK-USDT', 'BUY', 'LIMIT', 2, 10, 'FOK');
SELECT pg_temp.skip();
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('fok_buy'), 1, 10) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('fok_buy'), 1.99, 9.5) $$);
-- More than remains is an overfill (LX007), not a fill-or-kill refusal.
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('fok_buy'), 2.01, 10) $$);
-- Nothing changed.
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.o('fok_buy');
SELECT * FROM pg_temp.balances();

-- 2. The whole quantity at 9.5: FILLED, 1 USDT refunded.
SELECT pg_temp.label(trade_id, 'fok_fill'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('fok_buy'), 2, 9.5);
SELECT * FROM pg_temp.o('fok_buy');
SELECT * FROM pg_temp.balances();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 3. A MARKET SELL FOK that finds no complete fill is expired by the caller: its lock
-- comes back.
SELECT pg_temp.label(order_id, 'fok_sell'), status, time_in_force, locked_amount
  FROM exchange.place_order(pg_temp.id('fk_bob'), 'TFK-USDT', 'SELL', 'MARKET', 3, NULL, 'FOK');
SELECT * FROM pg_temp.fails($$ SELECT exchange.apply_trade(pg_temp.id('fok_sell'), 2.99, 11) $$);
SELECT pg_temp.l(order_id), status, filled_quantity, locked_amount
  FROM exchange.expire_order(pg_temp.id('fok_sell'), 'fill-or-kill: no liquidity');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();

-- 4. apply_match with a FOK BUY filled partly: LX008, neither leg is written; GTC SELL
-- untouched.  The complete quantity matches.
SELECT pg_temp.label(order_id, 'fok_buy2'), status, time_in_force, locked_amount
  FROM exchange.place_order(pg_temp.id('fk_alice'), 'TFK-USDT', 'BUY', 'LIMIT', 4, 12, 'FOK');
SELECT pg_temp.label(order_id, 'gtc_sell'), status, time_in_force, locked_amount
  FROM exchange.place_order(pg_temp.id('fk_bob'), 'TFK-USDT', 'SELL', 'LIMIT', 6, 11);
SELECT pg_temp.skip();
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('fok_buy2'), pg_temp.id('gtc_sell'), 3, 11) $$);
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.o('fok_buy2');
SELECT * FROM pg_temp.o('gtc_sell');
SELECT pg_temp.label(trade_id, 'm_' || lower(side)), side, quantity, price
  FROM exchange.apply_match(pg_temp.id('fok_buy2'), pg_temp.id('gtc_sell'), 4, 11);
SELECT * FROM pg_temp.o('fok_buy2');
SELECT * FROM pg_temp.o('gtc_sell');
-- The SELL side is FOK now: a GTC BUY filling it partly is refused the same way.
SELECT pg_temp.label(order_id, 'fok_sell2'), status, time_in_force, locked_amount
  FROM exchange.place_order(pg_temp.id('fk_bob'), 'TFK-USDT', 'SELL', 'LIMIT', 1, 11, 'FOK');
SELECT pg_temp.label(order_id, 'gtc_buy'), status, time_in_force, locked_amount
  FROM exchange.place_order(pg_temp.id('fk_alice'), 'TFK-USDT', 'BUY', 'LIMIT', 5, 12);
SELECT * FROM pg_temp.fails($$ SELECT * FROM exchange.apply_match(pg_temp.id('gtc_buy'), pg_temp.id('fok_sell2'), 0.5, 11.5) $$);

SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('fk_alice')) ORDER BY 1;
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('fk_bob')) ORDER BY 1;
SELECT "order", type, side, tif, quantity, price, status, filled, avg_price, locked FROM pg_temp.orders();
SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();
