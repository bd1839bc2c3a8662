-- Orders: idempotency of place_order by (account_id, client_order_id) (README "SQL API").  A
-- retry with the same symbol, side, order_type, quantity, price, time_in_force and stop_price
-- returns the stored row whatever its status now, and writes nothing (no journal, event or
-- outbox row); any difference raises LX009 naming the differences.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

SELECT symbol FROM exchange.create_market('OID-USDT', 'OID', 'USDT', 0.01, 0.01);
SELECT symbol FROM exchange.create_market('OIE-USDT', 'OIE', 'USDT', 0.01, 0.01);
SELECT pg_temp.trader('id_alice');
SELECT pg_temp.trader('id_bob');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('id_alice'), 'USDT', 1000);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('id_alice'), 'OID', 10);
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('id_bob'), 'USDT', 1000);
SELECT pg_temp.skip();

-- 1. The first call places the order.
SELECT pg_temp.label(order_id, 'c1'), status, locked_amount, client_order_id
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'LIMIT', 2, 50,
                            client_order_id => 'cli-1');
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.skip();

-- 2. The same call again returns the same row and writes nothing.  Equal values written
-- differently are the same (2 = 2.00000000, an explicit GTC = the default of a LIMIT order);
-- metadata is not part of the comparison.
SELECT pg_temp.l(order_id), status, locked_amount
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'LIMIT', 2, 50,
                            client_order_id => 'cli-1');
SELECT pg_temp.l(order_id), status, locked_amount, metadata
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'LIMIT', 2.00000000,
                            50.0, 'GTC', client_order_id => 'cli-1', metadata => '{"retry": 1}');
SELECT * FROM pg_temp.counts();
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();
SELECT * FROM pg_temp.balances() WHERE account = 'id_alice';

-- 3. Any difference is LX009, with what differs in the detail, and changes nothing.
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'LIMIT', 2, 51, client_order_id => 'cli-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'LIMIT', 3, 50, client_order_id => 'cli-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'SELL', 'LIMIT', 2, 50, client_order_id => 'cli-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'OIE-USDT', 'BUY', 'LIMIT', 2, 50, client_order_id => 'cli-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'LIMIT', 2, 50, 'IOC', client_order_id => 'cli-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'MARKET', 2, 50, client_order_id => 'cli-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'STOP', 2, 50, stop_price => 49, client_order_id => 'cli-1') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'SELL', 'MARKET', 1, client_order_id => 'cli-1') $$);
-- A symbol that does not exist differs from the stored one: LX009 too (the stored order is
-- looked up first).
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_alice'), 'NOPE-USDT', 'BUY', 'LIMIT', 2, 50, client_order_id => 'cli-1') $$);
SELECT * FROM pg_temp.counts();

-- 4. The key is per account: Bob's cli-1 is another order.
SELECT pg_temp.label(order_id, 'bob_c1'), status, locked_amount, client_order_id
  FROM exchange.place_order(pg_temp.id('id_bob'), 'OID-USDT', 'BUY', 'LIMIT', 1, 45,
                            client_order_id => 'cli-1');
SELECT * FROM pg_temp.new_events();

-- 5. The retry returns the row as it is now: after a fill (PARTIAL), after a cancel
-- (CANCELLED); still no journal or event row, and the order is not placed again.
SELECT pg_temp.label(trade_id, 't_c1'), quantity, price
  FROM exchange.apply_trade(pg_temp.id('c1'), 0.5, 49);
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'LIMIT', 2, 50,
                            client_order_id => 'cli-1');
SELECT pg_temp.l(order_id), status FROM exchange.cancel_order(pg_temp.id('c1'));
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, filled_quantity, locked_amount
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'BUY', 'LIMIT', 2, 50,
                            client_order_id => 'cli-1');
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_events();
SELECT * FROM pg_temp.new_outbox();

-- 6. A REJECTED order is stored under its client_order_id too: once the funds are there the
-- retry still returns the REJECTED row (a new client_order_id places a new order).
SELECT pg_temp.label(order_id, 'c2'), status, reject_reason
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'SELL', 'LIMIT', 20, 50,
                            client_order_id => 'cli-2');
SELECT symbol, available_balance FROM exchange.deposit(pg_temp.id('id_alice'), 'OID', 10);
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, reject_reason
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'SELL', 'LIMIT', 20, 50,
                            client_order_id => 'cli-2');
SELECT * FROM pg_temp.new_events();
SELECT pg_temp.label(order_id, 'c3'), status, locked_amount
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'SELL', 'LIMIT', 20, 50,
                            client_order_id => 'cli-3');

-- 7. A retry is answered whatever the account's status now: SUSPENDED returns the stored
-- OPEN order (a new client_order_id would be REJECTED).
SELECT status FROM exchange.set_account_status(pg_temp.id('id_alice'), 'SUSPENDED');
SELECT pg_temp.skip();
SELECT pg_temp.l(order_id), status, locked_amount
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'SELL', 'LIMIT', 20, 50,
                            client_order_id => 'cli-3');
SELECT * FROM pg_temp.new_events();
SELECT pg_temp.label(order_id, 'c4'), status, reject_reason
  FROM exchange.place_order(pg_temp.id('id_alice'), 'OID-USDT', 'SELL', 'LIMIT', 1, 50,
                            client_order_id => 'cli-4');
SELECT status FROM exchange.set_account_status(pg_temp.id('id_alice'), 'ACTIVE');

-- 8. A STOP and a MARKET order retried: the normalised time_in_force (GTC, IOC) matches
-- NULL and the explicit value alike.
SELECT pg_temp.label(order_id, 'c5'), status, time_in_force
  FROM exchange.place_order(pg_temp.id('id_bob'), 'OID-USDT', 'BUY', 'STOP', 1, 61,
                            stop_price => 60, client_order_id => 'cli-5');
SELECT pg_temp.l(order_id), status, time_in_force
  FROM exchange.place_order(pg_temp.id('id_bob'), 'OID-USDT', 'BUY', 'STOP', 1, 61, 'GTC',
                            stop_price => 60.00, client_order_id => 'cli-5');
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_bob'), 'OID-USDT', 'BUY', 'STOP', 1, 61, stop_price => 60.01, client_order_id => 'cli-5') $$);
SELECT pg_temp.label(order_id, 'c6'), status, time_in_force
  FROM exchange.place_order(pg_temp.id('id_bob'), 'OID-USDT', 'BUY', 'MARKET', 1, 62,
                            client_order_id => 'cli-6');
SELECT pg_temp.l(order_id), status, time_in_force
  FROM exchange.place_order(pg_temp.id('id_bob'), 'OID-USDT', 'BUY', 'MARKET', 1, 62, 'IOC',
                            client_order_id => 'cli-6');
SELECT * FROM pg_temp.fails($$ SELECT exchange.place_order(pg_temp.id('id_bob'), 'OID-USDT', 'BUY', 'MARKET', 1, 62, 'FOK', client_order_id => 'cli-6') $$);

-- Every order once; each client_order_id names one order per account.
SELECT "order", account, side, type, tif, quantity, price, stop_price, status, filled, locked,
       reject_reason, client_order_id
  FROM pg_temp.orders();
SELECT pg_temp.l(account_id), client_order_id, count(*)
  FROM exchange.orders WHERE account_id IN (pg_temp.id('id_alice'), pg_temp.id('id_bob'))
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('id_alice')) ORDER BY 1;
SELECT pg_temp.l(order_id), status FROM exchange.cancel_orders(pg_temp.id('id_bob')) ORDER BY 1;
SELECT * FROM pg_temp.balances();
SELECT * FROM exchange.check_invariants();
