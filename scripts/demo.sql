-- scripts/demo.sql — what scripts/demo.sh shows, in database `demo` (psql echoes each line).
-- The servers are throwaway: PostgreSQL 15 with exchange_adapter preloaded, its worker serving
-- this database, and a redis-server on loopback that the worker pushes to after each commit.

\pset footer off
\set QUIET on

-- The extension and the ledger's tables:
\dx exchange_adapter
\dt exchange.*

-- Two traders, approved, and a market with fees (maker 0.1 %, taker 0.2 %).
SELECT account_id AS alice FROM exchange.create_account('alice') \gset
SELECT account_id AS bob FROM exchange.create_account('bob') \gset
SELECT user_id, status, kyc_status FROM exchange.set_kyc_status(:'alice', 'APPROVED');
SELECT user_id, status, kyc_status FROM exchange.set_kyc_status(:'bob', 'APPROVED');
SELECT symbol, tick_size, lot_size, maker_fee_rate, taker_fee_rate
  FROM exchange.create_market('BTC-USDT', 'BTC', 'USDT', tick_size => 0.01, lot_size => 0.0001,
                              maker_fee_rate => 0.001, taker_fee_rate => 0.002);

-- Funding. A reference makes a deposit idempotent: the retry changes nothing.
SELECT symbol, available_balance FROM exchange.deposit(:'alice', 'USDT', 100000, reference => 'wire-001');
SELECT symbol, available_balance FROM exchange.deposit(:'alice', 'USDT', 100000, reference => 'wire-001');
SELECT symbol, available_balance FROM exchange.deposit(:'bob', 'BTC', 3, reference => 'chain-7f3a');

-- A hold outside orders (e.g. a pending withdrawal): part captured, the rest released.
SELECT hold_id AS hold, asset, amount, remaining FROM exchange.lock_balance(:'alice', 'USDT', 500, 'withdrawal review') \gset
SELECT asset, amount, remaining, captured FROM exchange.capture_hold(:'hold', 200, reference => 'payout-1');
SELECT asset, amount, remaining, captured, released_at IS NOT NULL AS finished FROM exchange.unlock_balance(:'hold');

-- Orders: alice buys 1 BTC at 30000 (locks 30000 USDT); bob sells 2 BTC at 29900 (locks 2 BTC).
SELECT order_id AS buy, status, lock_asset, locked_amount
  FROM exchange.place_order(:'alice', 'BTC-USDT', 'BUY', 'LIMIT', 1, 30000, client_order_id => 'a-1') \gset
SELECT order_id AS sell, status, lock_asset, locked_amount
  FROM exchange.place_order(:'bob', 'BTC-USDT', 'SELL', 'LIMIT', 2, 29900) \gset
SELECT side, status, quantity, price, lock_asset, locked_amount FROM exchange.orders ORDER BY created_at;

-- A business refusal is stored, not raised: too much for alice's funds.
SELECT side, status, reject_reason, locked_amount
  FROM exchange.place_order(:'alice', 'BTC-USDT', 'BUY', 'LIMIT', 100, 30000);

-- The matching engine fills 0.6 at 29950 between them (alice's order is older: the maker).
SELECT side, quantity, price, fee, fee_currency, liquidity
  FROM exchange.apply_match(:'buy', :'sell', 0.6, 29950, trade_ref => 'match-1');

-- An outside fill completes alice's order at a better price; the surplus lock is refunded.
SELECT side, quantity, price, fee, fee_currency
  FROM exchange.apply_trade(:'buy', 0.4, 29900, liquidity => 'TAKER', trade_ref => 'ext-1');

-- bob cancels the rest of his order: its lock returns to available.
SELECT side, status, filled_quantity, average_price, locked_amount FROM exchange.cancel_order(:'sell', 'demo');

-- Where everything stands.
SELECT side, status, quantity, filled_quantity, average_price, locked_amount
  FROM exchange.orders WHERE order_id IN (:'buy', :'sell') ORDER BY side;
SELECT user_id, asset, available_balance, locked_balance, total_balance
  FROM exchange.account_balances ORDER BY user_id, asset;
SELECT a.user_id, t.side, t.quantity, t.price, t.fee, t.fee_currency, t.liquidity, t.trade_ref
  FROM exchange.trades t JOIN exchange.accounts a USING (account_id) ORDER BY t.executed_at, a.user_id;
SELECT a.user_id, j.asset, j.kind, j.delta_available, j.delta_locked, j.reference
  FROM exchange.balance_journal j JOIN exchange.accounts a USING (account_id) ORDER BY j.seq;
SELECT e.from_status, e.to_status, e.filled_delta, e.reason
  FROM exchange.order_events e WHERE e.order_id = :'buy' ORDER BY e.seq;
SELECT market, asset, sum(amount) AS fees FROM exchange.fee_ledger GROUP BY market, asset ORDER BY asset;

-- ============================================================================================
-- An INTERNAL market: place_order matches every incoming order against the book, price then
-- time priority, at the maker's price. Self-trade mode EXPIRE_MAKER (the default, named here).
\echo
\echo '== INTERNAL market ETH-USDT: the engine matches inside place_order'
SELECT symbol, matching, self_trade, maker_fee_rate, taker_fee_rate
  FROM exchange.create_market('ETH-USDT', 'ETH', 'USDT', tick_size => 0.01, lot_size => 0.001,
                              maker_fee_rate => 0.001, taker_fee_rate => 0.002,
                              matching => 'INTERNAL', self_trade => 'EXPIRE_MAKER');

-- Three more traders build the book (alice and bob trade on it too).
SELECT account_id AS carol FROM exchange.create_account('carol') \gset
SELECT account_id AS dave FROM exchange.create_account('dave') \gset
SELECT account_id AS erin FROM exchange.create_account('erin') \gset
SELECT user_id, kyc_status FROM exchange.set_kyc_status(:'carol', 'APPROVED');
SELECT user_id, kyc_status FROM exchange.set_kyc_status(:'dave', 'APPROVED');
SELECT user_id, kyc_status FROM exchange.set_kyc_status(:'erin', 'APPROVED');
SELECT symbol, available_balance FROM exchange.deposit(:'carol', 'ETH', 5);
SELECT symbol, available_balance FROM exchange.deposit(:'carol', 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(:'dave', 'ETH', 5);
SELECT symbol, available_balance FROM exchange.deposit(:'dave', 'USDT', 10000);
SELECT symbol, available_balance FROM exchange.deposit(:'erin', 'ETH', 5);

\echo
\echo '== the book: asks from carol, dave and erin, bids from dave and carol'
SELECT side, quantity, price, status FROM exchange.place_order(:'carol', 'ETH-USDT', 'SELL', 'LIMIT', 1, 2000);
SELECT side, quantity, price, status FROM exchange.place_order(:'dave', 'ETH-USDT', 'SELL', 'LIMIT', 1, 2000);
SELECT order_id AS c_ask_2010, side, quantity, price, status FROM exchange.place_order(:'carol', 'ETH-USDT', 'SELL', 'LIMIT', 2, 2010) \gset
SELECT side, quantity, price, status FROM exchange.place_order(:'erin', 'ETH-USDT', 'SELL', 'LIMIT', 1, 2020);
SELECT side, quantity, price, status FROM exchange.place_order(:'erin', 'ETH-USDT', 'SELL', 'LIMIT', 0.5, 2030);
SELECT side, quantity, price, status FROM exchange.place_order(:'erin', 'ETH-USDT', 'SELL', 'LIMIT', 1, 2040);
SELECT side, quantity, price, status FROM exchange.place_order(:'dave', 'ETH-USDT', 'SELL', 'LIMIT', 1, 2060);
SELECT side, quantity, price, status FROM exchange.place_order(:'erin', 'ETH-USDT', 'SELL', 'LIMIT', 1, 2100);
SELECT side, quantity, price, status FROM exchange.place_order(:'dave', 'ETH-USDT', 'BUY', 'LIMIT', 1, 1990);
SELECT side, quantity, price, status FROM exchange.place_order(:'carol', 'ETH-USDT', 'BUY', 'LIMIT', 1, 1980);
SELECT * FROM exchange.order_book_depth('ETH-USDT');

\echo
\echo '== a crossing order: alice BUY 2.5 limit 2010 sweeps the 2000 level (carol, then dave: time priority)'
\echo '   and half of carol''s 2010 ask, each at the maker''s price; 5025 locked, 5005 spent, 20 returned'
SELECT order_id AS a_buy, side, status, quantity, filled_quantity, average_price, locked_amount
  FROM exchange.place_order(:'alice', 'ETH-USDT', 'BUY', 'LIMIT', 2.5, 2010) \gset
SELECT side, status, quantity, filled_quantity, average_price, locked_amount FROM exchange.orders WHERE order_id = :'a_buy';
SELECT t.seq, a.user_id, t.side, t.quantity, t.price, t.fee, t.fee_currency, t.liquidity
  FROM exchange.trades t JOIN exchange.accounts a USING (account_id)
 WHERE t.symbol = 'ETH-USDT' ORDER BY t.seq, t.side;

\echo
\echo '== self-trade prevented: carol BUY 1 limit 2020 meets her own 2010 ask first;'
\echo '   EXPIRE_MAKER expires that ask (1.5 left) and carol buys erin''s 2020 ask instead'
SELECT side, status, quantity, filled_quantity, average_price, locked_amount
  FROM exchange.place_order(:'carol', 'ETH-USDT', 'BUY', 'LIMIT', 1, 2020);
SELECT side, status, quantity, filled_quantity, price, locked_amount FROM exchange.orders WHERE order_id = :'c_ask_2010';
SELECT from_status, to_status, filled_delta, reason FROM exchange.order_events WHERE order_id = :'c_ask_2010' ORDER BY seq;
SELECT t.seq, a.user_id, t.side, t.quantity, t.price, t.liquidity
  FROM exchange.trades t JOIN exchange.accounts a USING (account_id)
 WHERE t.symbol = 'ETH-USDT' AND t.seq = 4 ORDER BY t.side;

\echo
\echo '== a stop cascade: last price 2020; dave BUY stop 2030 (limit 2040), alice BUY stop 2040 (limit 2060)'
SELECT order_id AS d_stop, side, order_type, stop_price, price, status
  FROM exchange.place_order(:'dave', 'ETH-USDT', 'BUY', 'STOP', 1, 2040, stop_price => 2030) \gset
SELECT order_id AS a_stop, side, order_type, stop_price, price, status
  FROM exchange.place_order(:'alice', 'ETH-USDT', 'BUY', 'STOP', 1, 2060, stop_price => 2040) \gset
SELECT side, order_type, stop_price, price, status FROM exchange.orders WHERE order_id IN (:'d_stop', :'a_stop') ORDER BY stop_price;
\echo '   bob BUY 0.5 limit 2030 takes erin''s 2030 ask: last 2030 triggers dave''s stop (round 1), which'
\echo '   takes erin''s 2040 ask: last 2040 triggers alice''s stop (round 2), which takes dave''s 2060 ask'
SELECT side, status, quantity, filled_quantity, average_price
  FROM exchange.place_order(:'bob', 'ETH-USDT', 'BUY', 'LIMIT', 0.5, 2030);
SELECT side, order_type, stop_price, status, filled_quantity, average_price, locked_amount
  FROM exchange.orders WHERE order_id IN (:'d_stop', :'a_stop') ORDER BY stop_price;
SELECT e.order_id = :'d_stop' AS dave_s, e.from_status, e.to_status, e.filled_delta, e.reason
  FROM exchange.order_events e WHERE e.order_id IN (:'d_stop', :'a_stop') ORDER BY e.seq;

\echo
\echo '== every execution on ETH-USDT (seq 1..7, both legs; the taker pays 0.2 % in ETH, the maker 0.1 % in USDT)'
SELECT t.seq, a.user_id, t.side, t.quantity, t.price, t.fee, t.fee_currency, t.liquidity
  FROM exchange.trades t JOIN exchange.accounts a USING (account_id)
 WHERE t.symbol = 'ETH-USDT' ORDER BY t.seq, t.side;
SELECT symbol, matching, last_price, trade_seq FROM exchange.markets WHERE symbol = 'ETH-USDT';

\echo
\echo '== market data: depth, ticker (both markets), one-hour candles of ETH-USDT'
SELECT * FROM exchange.order_book_depth('ETH-USDT');
SELECT symbol, last_price, best_bid, best_ask, open_24h, high_24h, low_24h, volume_24h,
       quote_volume_24h, trades_24h
  FROM exchange.ticker();
SELECT open, high, low, close, volume, quote_volume, trades
  FROM exchange.candles('ETH-USDT', '1 hour', now() - interval '1 hour');

\echo
\echo '== balances on ETH-USDT of carol, dave and erin'
SELECT user_id, asset, available_balance, locked_balance, total_balance
  FROM exchange.account_balances WHERE user_id IN ('carol', 'dave', 'erin') ORDER BY user_id, asset;

-- The ledger's invariants after both markets (no row: sound).
SELECT * FROM exchange.check_invariants();

-- Each call above wrote one outbox row naming the Redis keys it made stale; the worker deletes
-- those keys after commit and publishes them on exchange:invalidations (shown after this script).
