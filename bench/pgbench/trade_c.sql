-- apply_trade through the C function: one statement, one round trip.  A fill of 0.001 at 100,
-- TAKER (fee from the market's rate), on one of the client's account's 100 pool orders.
\set an :client_id % :naccts + 1 + :acct0
\set k random(1, 100)
SELECT trade_id FROM exchange.apply_trade((SELECT order_id FROM bench.pool WHERE n = :an AND k = :k), 0.001, 100, NULL, NULL, now(), NULL, 'TAKER');
