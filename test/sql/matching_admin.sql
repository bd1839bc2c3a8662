-- Matching engine, administration (README "Matching engine"): create_market's matching and
-- self_trade arguments; set_market_matching only while the market is HALTED and, to INTERNAL,
-- only on a book that is not crossed (55000, best bid and ask in the detail); outside fills on
-- an INTERNAL market's orders are refused (LX012); book changes on an INTERNAL market refuse
-- REPEATABLE READ and SERIALIZABLE (0A000); an EXTERNAL market does not match.
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/trading.psql
\set ECHO all

-- Defaults, and refused arguments.
SELECT symbol, matching, self_trade, last_price, last_trade_at, trade_seq
  FROM exchange.create_market('TAD-USDT', 'TAD', 'USDT', 0.01, 0.01);
SELECT * FROM pg_temp.fails($$SELECT exchange.create_market('TAE-USDT', 'TAE', 'USDT', matching => 'BOTH')$$);
SELECT * FROM pg_temp.fails($$SELECT exchange.create_market('TAE-USDT', 'TAE', 'USDT', self_trade => NULL)$$);
SELECT * FROM pg_temp.fails($$SELECT exchange.create_market('TAE-USDT', 'TAE', 'USDT', self_trade => 'expire_maker')$$);

-- An EXTERNAL market keeps crossing orders apart: the book is crossed.
SELECT pg_temp.trader('ad_a'), pg_temp.trader('ad_b');
SELECT count(*) FROM (
  SELECT exchange.deposit(pg_temp.id('ad_a'), 'USDT', 1000)
  UNION ALL SELECT exchange.deposit(pg_temp.id('ad_b'), 'TAD', 10)) d;
SELECT pg_temp.label(order_id, 'bid'), status, book_seq IS NOT NULL AS has_seq
  FROM exchange.place_order(pg_temp.id('ad_a'), 'TAD-USDT', 'BUY', 'LIMIT', 1, 101);
SELECT pg_temp.label(order_id, 'ask'), status
  FROM exchange.place_order(pg_temp.id('ad_b'), 'TAD-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT count(*) AS trades FROM exchange.trades WHERE symbol = 'TAD-USDT';

-- set_market_matching: HALTED only; not onto a crossed book; unknown market; bad mode.
SELECT * FROM pg_temp.fails($$SELECT exchange.set_market_matching('TAD-USDT', 'INTERNAL')$$);
SELECT status FROM exchange.set_market_status('TAD-USDT', 'HALTED');
SELECT * FROM pg_temp.fails($$SELECT exchange.set_market_matching('TAD-USDT', 'INTERNAL')$$);
SELECT * FROM pg_temp.fails($$SELECT exchange.set_market_matching('NOPE-USDT', 'INTERNAL')$$);
SELECT * FROM pg_temp.fails($$SELECT exchange.set_market_matching('TAD-USDT', 'internal')$$);
SELECT * FROM pg_temp.fails($$SELECT exchange.set_market_matching('TAD-USDT', 'INTERNAL', 'NEVER')$$);
SELECT status FROM exchange.cancel_order(pg_temp.id('ask'));
SELECT matching, self_trade, status
  FROM exchange.set_market_matching('TAD-USDT', 'INTERNAL');
SELECT matching, self_trade FROM exchange.set_market_matching('TAD-USDT', 'INTERNAL', 'ALLOW');
SELECT matching, self_trade FROM exchange.set_market_matching('TAD-USDT', 'INTERNAL', NULL);
-- a HALTED INTERNAL market matches nothing: the order is REJECTED
SELECT status, reject_reason, book_seq IS NULL AS no_seq
  FROM exchange.place_order(pg_temp.id('ad_b'), 'TAD-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT status FROM exchange.set_market_status('TAD-USDT', 'ACTIVE');
-- nothing matched on resume; the next crossing order takes the bid
SELECT count(*) AS trades FROM exchange.trades WHERE symbol = 'TAD-USDT';
SELECT pg_temp.label(order_id, 'ask2'), status, filled_quantity, average_price
  FROM exchange.place_order(pg_temp.id('ad_b'), 'TAD-USDT', 'SELL', 'LIMIT', 1, 100);
SELECT * FROM pg_temp.o('bid');

-- Fills from outside are refused on an INTERNAL market (LX012).
SELECT pg_temp.label(order_id, 'rest') , status
  FROM exchange.place_order(pg_temp.id('ad_a'), 'TAD-USDT', 'BUY', 'LIMIT', 1, 90);
SELECT pg_temp.label(order_id, 'rest_sell'), status
  FROM exchange.place_order(pg_temp.id('ad_b'), 'TAD-USDT', 'SELL', 'LIMIT', 1, 95);
SELECT * FROM pg_temp.fails(format($$SELECT exchange.apply_trade(%L, 1, 90)$$, pg_temp.id('rest')));
SELECT * FROM pg_temp.fails(format($$SELECT exchange.apply_match(%L, %L, 1, 92)$$,
                                   pg_temp.id('rest'), pg_temp.id('rest_sell')));
SELECT * FROM pg_temp.fails($$SELECT exchange.trigger_stop_orders('TAD-USDT', 100)$$);

-- REPEATABLE READ and SERIALIZABLE: 0A000 for book changes on an INTERNAL market only.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM pg_temp.fails(format($$SELECT exchange.place_order(%L, 'TAD-USDT', 'BUY', 'LIMIT', 1, 90)$$,
                                   pg_temp.id('ad_a')));
SELECT * FROM pg_temp.fails(format($$SELECT exchange.cancel_order(%L)$$, pg_temp.id('rest')));
SELECT * FROM pg_temp.fails($$SELECT exchange.expire_orders('TAD-USDT', now())$$);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT * FROM pg_temp.fails(format($$SELECT exchange.cancel_orders(%L)$$, pg_temp.id('ad_a')));
SELECT * FROM pg_temp.fails($$SELECT exchange.set_market_matching('TAD-USDT', 'EXTERNAL')$$);
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT status FROM exchange.create_market('TAF-USDT', 'TAF', 'USDT');
SELECT status, book_seq IS NOT NULL AS has_seq
  FROM exchange.place_order(pg_temp.id('ad_a'), 'TAF-USDT', 'BUY', 'LIMIT', 1, 90);
ROLLBACK;

-- Cancel and expire work on an INTERNAL market as in 1.0.
SELECT status FROM exchange.cancel_order(pg_temp.id('rest'));
SELECT pg_temp.l(order_id), status FROM exchange.expire_orders('TAD-USDT', now() + interval '1 day');
SELECT count(*) AS resting FROM exchange.order_book WHERE symbol = 'TAD-USDT';

-- On an EXTERNAL market a stop triggered from outside also ranks by trigger time.
SELECT symbol, matching FROM exchange.create_market('TAG-USDT', 'TAG', 'USDT');
SELECT pg_temp.label(order_id, 'ext_stop'), status
  FROM exchange.place_order(pg_temp.id('ad_a'), 'TAG-USDT', 'BUY', 'STOP', 1, 100, stop_price => 100);
SELECT pg_temp.label(order_id, 'ext_later'), status
  FROM exchange.place_order(pg_temp.id('ad_a'), 'TAG-USDT', 'BUY', 'LIMIT', 1, 90);
SELECT pg_temp.l(order_id), status,
       book_seq > (SELECT book_seq FROM exchange.orders WHERE order_id = pg_temp.id('ext_later'))
         AS fresh_book_seq
  FROM exchange.trigger_stop_orders('TAG-USDT', 100);
SELECT count(*) FROM exchange.cancel_orders(pg_temp.id('ad_a'), 'TAG-USDT');

SELECT * FROM exchange.check_invariants();
