-- Markets: an operator lists markets, halts and resumes them.  After each step: the market row
-- (stable columns) and the outbox rows the step wrote.  Markets move no funds: the journal stays
-- empty throughout.  The markets are deleted at the end (they are global; other files may list
-- their own).
\set ECHO none
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/include/helpers.psql
\set ECHO all

-- 1. A market with every default: tick and lot 0.00000001, no minimums, no fees, ACTIVE.
SELECT symbol, base_asset, quote_asset, tick_size, lot_size, min_quantity, min_notional,
	   maker_fee_rate, taker_fee_rate, status, metadata
  FROM exchange.create_market('MKBTC-MKUSD', 'MKBTC', 'MKUSD');
SELECT * FROM pg_temp.new_outbox();

-- 2. A market with its own rules, by name; the fee rates may reach 0.1.
SELECT symbol, base_asset, quote_asset, tick_size, lot_size, min_quantity, min_notional,
	   maker_fee_rate, taker_fee_rate, status, metadata
  FROM exchange.create_market(symbol => 'MKETH-MKBTC', base_asset => 'MKETH', quote_asset => 'MKBTC',
							  tick_size => 0.00001, lot_size => 0.001, min_quantity => 0.01,
							  min_notional => 0.0001, maker_fee_rate => 0.001,
							  taker_fee_rate => 0.1, metadata => '{"listed_by": "ops"}');
SELECT * FROM pg_temp.new_outbox();

-- 3. A duplicate symbol is LX010 and changes nothing.
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('MKBTC-MKUSD', 'MKBTC', 'MKUSD', tick_size => 0.01) $$);
SELECT symbol, tick_size FROM exchange.markets WHERE symbol = 'MKBTC-MKUSD';

-- 4. The symbol must be <BASE>-<QUOTE> of its two assets, which differ (22023).
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('MKBTCMKUSD', 'MKBTC', 'MKUSD') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('MKUSD-MKBTC', 'MKBTC', 'MKUSD') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('MKBTC-MKBTC', 'MKBTC', 'MKBTC') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('mkbtc-MKUSD', 'mkbtc', 'MKUSD') $$);
-- Tick and lot are positive, minimums not negative, fee rates in [0, 0.1].
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('MKSOL-MKUSD', 'MKSOL', 'MKUSD', tick_size => 0) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('MKSOL-MKUSD', 'MKSOL', 'MKUSD', lot_size => -0.1) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('MKSOL-MKUSD', 'MKSOL', 'MKUSD', min_notional => -1) $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.create_market('MKSOL-MKUSD', 'MKSOL', 'MKUSD', taker_fee_rate => 0.10000001) $$);
SELECT count(*) AS mksol_markets FROM exchange.markets WHERE symbol = 'MKSOL-MKUSD';
SELECT * FROM pg_temp.new_outbox();

-- 5. Halt: HALTED, and the market's keys are stale.
SELECT symbol, status FROM exchange.set_market_status('MKBTC-MKUSD', 'HALTED');
SELECT * FROM pg_temp.new_outbox();
-- Halting again changes nothing and writes no outbox row.
SELECT symbol, status FROM exchange.set_market_status('MKBTC-MKUSD', 'HALTED');
SELECT * FROM pg_temp.new_outbox();
-- Resume.
SELECT symbol, status FROM exchange.set_market_status('MKBTC-MKUSD', 'ACTIVE');
SELECT * FROM pg_temp.new_outbox();

-- 6. Status values are exact upper case; unknown markets are LX003.
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_market_status('MKBTC-MKUSD', 'halted') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_market_status('MKBTC-MKUSD', 'CLOSED') $$);
SELECT * FROM pg_temp.fails($$ SELECT exchange.set_market_status('MKDOGE-MKUSD', 'HALTED') $$);

-- 7. Where the markets stand; no funds moved.
SELECT symbol, base_asset, quote_asset, status FROM exchange.markets
 WHERE symbol LIKE 'MK%' ORDER BY symbol;
SELECT * FROM pg_temp.new_journal();
SELECT * FROM pg_temp.new_outbox();
SELECT * FROM exchange.check_invariants();

DELETE FROM exchange.markets WHERE symbol IN ('MKBTC-MKUSD', 'MKETH-MKBTC');
