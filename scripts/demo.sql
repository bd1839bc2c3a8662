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

-- The ledger's invariants (no row: sound).
SELECT * FROM exchange.check_invariants();

-- Each call above wrote one outbox row naming the Redis keys it made stale; the worker deletes
-- those keys after commit and publishes them on exchange:invalidations (shown after this script).
