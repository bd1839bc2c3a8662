-- pgTAP: README "Data model" as installed: tables, the contract's columns and their
-- types, keys, foreign keys, unique constraints, indexes for what users query, views, the
-- lifecycle trigger, the DROP guard, dump registration and comments.
-- Runs in one transaction that is rolled back (scripts/test.sh runs each file in database
-- `pgtap`, which has the pgtap extension).
BEGIN;
CREATE EXTENSION exchange_adapter;

-- The contract's columns (README "Data model"; extra columns are allowed, none of these may be
-- renamed).
CREATE TEMP TABLE contract_columns (tbl name, col name, typ text, n serial);
INSERT INTO contract_columns (tbl, col, typ) VALUES
	('accounts', 'account_id', 'uuid'), ('accounts', 'user_id', 'character varying(255)'),
	('accounts', 'account_type', NULL), ('accounts', 'status', NULL), ('accounts', 'kyc_status', NULL),
	('accounts', 'created_at', 'timestamp with time zone'), ('accounts', 'updated_at', 'timestamp with time zone'),
	('accounts', 'metadata', 'jsonb'),
	('markets', 'symbol', NULL), ('markets', 'base_asset', NULL), ('markets', 'quote_asset', NULL),
	('markets', 'tick_size', 'numeric(24,8)'), ('markets', 'lot_size', 'numeric(24,8)'),
	('markets', 'min_quantity', 'numeric(24,8)'), ('markets', 'min_notional', 'numeric(24,8)'),
	('markets', 'maker_fee_rate', 'numeric(24,8)'), ('markets', 'taker_fee_rate', 'numeric(24,8)'),
	('markets', 'status', NULL), ('markets', 'created_at', 'timestamp with time zone'), ('markets', 'metadata', 'jsonb'),
	('markets', 'matching', NULL), ('markets', 'self_trade', NULL), ('markets', 'last_price', 'numeric(24,8)'),
	('markets', 'last_trade_at', 'timestamp with time zone'), ('markets', 'trade_seq', 'bigint'),
	('orders', 'book_seq', 'bigint'), ('trades', 'seq', 'bigint'),
	('orders', 'order_id', 'uuid'), ('orders', 'account_id', 'uuid'), ('orders', 'symbol', NULL),
	('orders', 'order_type', NULL), ('orders', 'side', NULL), ('orders', 'quantity', 'numeric(24,8)'),
	('orders', 'price', 'numeric(24,8)'), ('orders', 'filled_quantity', 'numeric(24,8)'),
	('orders', 'average_price', 'numeric(24,8)'), ('orders', 'status', NULL), ('orders', 'time_in_force', NULL),
	('orders', 'created_at', 'timestamp with time zone'), ('orders', 'updated_at', 'timestamp with time zone'),
	('orders', 'filled_at', 'timestamp with time zone'), ('orders', 'cancelled_at', 'timestamp with time zone'),
	('orders', 'metadata', 'jsonb'), ('orders', 'stop_price', 'numeric(24,8)'), ('orders', 'client_order_id', NULL),
	('orders', 'lock_asset', NULL), ('orders', 'locked_amount', 'numeric(24,8)'), ('orders', 'reject_reason', NULL),
	('trades', 'trade_id', 'uuid'), ('trades', 'order_id', 'uuid'), ('trades', 'account_id', 'uuid'),
	('trades', 'symbol', NULL), ('trades', 'side', NULL), ('trades', 'quantity', 'numeric(24,8)'),
	('trades', 'price', 'numeric(24,8)'), ('trades', 'fee', 'numeric(24,8)'), ('trades', 'fee_currency', NULL),
	('trades', 'executed_at', 'timestamp with time zone'), ('trades', 'metadata', 'jsonb'),
	('trades', 'trade_ref', NULL), ('trades', 'liquidity', NULL), ('trades', 'match_id', 'uuid'),
	('balances', 'balance_id', 'uuid'), ('balances', 'account_id', 'uuid'), ('balances', 'symbol', NULL),
	('balances', 'available_balance', 'numeric(24,8)'), ('balances', 'locked_balance', 'numeric(24,8)'),
	('balances', 'total_balance', 'numeric(24,8)'), ('balances', 'last_updated', 'timestamp with time zone'),
	('balances', 'metadata', 'jsonb'),
	('holds', 'hold_id', 'uuid'), ('holds', 'account_id', 'uuid'), ('holds', 'asset', NULL),
	('holds', 'amount', 'numeric(24,8)'), ('holds', 'remaining', 'numeric(24,8)'), ('holds', 'reason', NULL),
	('holds', 'created_at', 'timestamp with time zone'), ('holds', 'released_at', 'timestamp with time zone'),
	('balance_journal', 'seq', 'bigint'), ('balance_journal', 'account_id', 'uuid'), ('balance_journal', 'asset', NULL),
	('balance_journal', 'delta_available', 'numeric(24,8)'), ('balance_journal', 'delta_locked', 'numeric(24,8)'),
	('balance_journal', 'kind', NULL), ('balance_journal', 'order_id', 'uuid'), ('balance_journal', 'trade_id', 'uuid'),
	('balance_journal', 'hold_id', 'uuid'), ('balance_journal', 'reference', NULL), ('balance_journal', 'actor', NULL),
	('balance_journal', 'created_at', 'timestamp with time zone'),
	('order_events', 'seq', 'bigint'), ('order_events', 'order_id', 'uuid'), ('order_events', 'from_status', NULL),
	('order_events', 'to_status', NULL), ('order_events', 'filled_delta', 'numeric(24,8)'),
	('order_events', 'reason', NULL), ('order_events', 'actor', NULL),
	('order_events', 'created_at', 'timestamp with time zone'),
	('fee_ledger', 'seq', 'bigint'), ('fee_ledger', 'trade_id', 'uuid'), ('fee_ledger', 'market', NULL),
	('fee_ledger', 'asset', NULL), ('fee_ledger', 'amount', 'numeric(24,8)'),
	('fee_ledger', 'created_at', 'timestamp with time zone'),
	('outbox', 'id', 'bigint'), ('outbox', 'xid', 'xid8'), ('outbox', 'created_at', 'timestamp with time zone'),
	('outbox', 'kind', NULL), ('outbox', 'keys', 'text[]'), ('outbox', 'service_id', NULL),
	('outbox', 'claimed_at', 'timestamp with time zone'), ('outbox', 'attempts', NULL),
	('outbox', 'trade_ids', 'uuid[]'),
	('services', 'service_id', NULL), ('services', 'service_name', NULL), ('services', 'address', NULL),
	('services', 'port', 'integer'), ('services', 'version', NULL), ('services', 'metadata', 'jsonb'),
	('services', 'registered_at', 'timestamp with time zone'),
	('services', 'last_heartbeat', 'timestamp with time zone');

-- Enumerations: varchar + CHECK (README "Data model").
CREATE TEMP TABLE enum_columns (tbl name, col name, n serial);
INSERT INTO enum_columns (tbl, col) VALUES
	('accounts', 'account_type'), ('accounts', 'status'), ('accounts', 'kyc_status'),
	('markets', 'status'), ('markets', 'matching'), ('markets', 'self_trade'), ('orders', 'order_type'), ('orders', 'side'), ('orders', 'status'),
	('orders', 'time_in_force'), ('trades', 'side'), ('trades', 'liquidity'), ('balance_journal', 'kind'),
	('order_events', 'from_status'), ('order_events', 'to_status'), ('outbox', 'kind');

CREATE TEMP TABLE fks (n serial, tbl name, cols name[], reftbl name, refcols name[]);
INSERT INTO fks (tbl, cols, reftbl, refcols) VALUES
	('orders', '{account_id}', 'accounts', '{account_id}'),
	('orders', '{symbol}', 'markets', '{symbol}'),
	('trades', '{order_id,account_id,symbol,side}', 'orders', '{order_id,account_id,symbol,side}'),
	('trades', '{symbol}', 'markets', '{symbol}'),
	('balances', '{account_id}', 'accounts', '{account_id}'),
	('holds', '{account_id}', 'accounts', '{account_id}'),
	('balance_journal', '{account_id}', 'accounts', '{account_id}'),
	('order_events', '{order_id}', 'orders', '{order_id}'),
	('fee_ledger', '{trade_id}', 'trades', '{trade_id}');

CREATE TEMP TABLE uniques (n serial, tbl name, cols name[]);
INSERT INTO uniques (tbl, cols) VALUES
	('accounts', '{user_id,account_type}'), ('orders', '{order_id,account_id,symbol,side}'),
	('trades', '{order_id,trade_ref}'),
	('balances', '{account_id,symbol}');

CREATE TEMP TABLE pks (tbl name, col name);
INSERT INTO pks VALUES
	('accounts', 'account_id'), ('markets', 'symbol'), ('orders', 'order_id'), ('trades', 'trade_id'),
	('balances', 'balance_id'), ('holds', 'hold_id'), ('balance_journal', 'seq'), ('order_events', 'seq'),
	('fee_ledger', 'seq'), ('outbox', 'id'), ('services', 'service_id');

-- Indexes for what users query (README "Data model": by account and time, by symbol and status,
-- open orders by symbol/side/price), as leading columns of some index.
CREATE TEMP TABLE queried (n serial, tbl name, cols name[], why text);
INSERT INTO queried (tbl, cols, why) VALUES
	('orders', '{account_id,created_at}', 'a user''s orders by time'),
	('orders', '{symbol,side,price}', 'the book: open orders by symbol, side and price'),
	('orders', '{symbol,side,price,book_seq}', 'the matcher: resting orders in price-time priority'),
	('trades', '{account_id,executed_at}', 'a user''s trades by time'),
	('trades', '{symbol,executed_at}', 'a market''s trades by time'),
	('balance_journal', '{account_id,asset}', 'an account''s journal by asset'),
	('holds', '{account_id,asset}', 'an account''s live holds'),
	('order_events', '{order_id}', 'an order''s events'),
	('fee_ledger', '{asset}', 'revenue by asset');

SELECT plan(
	2 + 1 + 1
	+ (SELECT count(*)::int FROM contract_columns)
	+ (SELECT count(*)::int FROM contract_columns WHERE typ IS NOT NULL)
	+ (SELECT count(*)::int FROM enum_columns)
	+ (SELECT count(*)::int FROM pks)
	+ (SELECT count(*)::int FROM fks)
	+ (SELECT count(*)::int FROM uniques)
	+ (SELECT count(*)::int FROM queried)
	+ 6 * 2      -- metadata columns: NOT NULL and DEFAULT '{}'
	+ 4 + 4 + 5 + 2
	+ 5 + 1      -- the hot tables' row checks
	+ 2          -- the two uniques of orders that are not UNIQUE constraints
);

-- Extension and schema
SELECT has_schema('exchange', 'schema exchange exists');
SELECT is((SELECT format('relocatable=%s superuser=%s trusted=%s schema=%s', relocatable, superuser, trusted, schema)
			 FROM pg_available_extension_versions WHERE name = 'exchange_adapter' AND installed),
		  'relocatable=f superuser=t trusted=f schema=exchange',
		  'control file: not relocatable, superuser-only, not trusted, schema exchange');
SELECT tables_are('exchange',
	ARRAY['accounts', 'markets', 'orders', 'trades', 'balances', 'holds', 'balance_journal',
		  'order_events', 'fee_ledger', 'outbox', 'services'],
	'schema exchange has exactly the tables of README "Data model"');
SELECT views_are('exchange', ARRAY['open_orders', 'order_book', 'account_balances'],
	'schema exchange has the read views open_orders, order_book, account_balances');

-- Columns
SELECT has_column('exchange', tbl, col, format('%s.%s exists', tbl, col))
  FROM contract_columns ORDER BY n;
SELECT col_type_is('exchange', tbl, col, typ, format('%s.%s is %s', tbl, col, typ))
  FROM contract_columns WHERE typ IS NOT NULL ORDER BY n;
SELECT ok(EXISTS (SELECT FROM pg_constraint k
				   WHERE k.conrelid = format('exchange.%I', e.tbl)::regclass AND k.contype = 'c'
					 AND pg_get_constraintdef(k.oid) LIKE '%' || e.col || '%')
		  AND (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
				WHERE a.attrelid = format('exchange.%I', e.tbl)::regclass AND a.attname = e.col)
			  LIKE 'character varying%',
		  format('%s.%s is varchar with a CHECK', e.tbl, e.col))
  FROM enum_columns e ORDER BY n;
SELECT col_not_null('exchange', t, 'metadata', format('%s.metadata is NOT NULL', t))
  FROM unnest('{accounts,markets,orders,trades,balances,services}'::name[]) t;
SELECT is((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
			JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
		   WHERE d.adrelid = format('exchange.%I', t)::regclass AND a.attname = 'metadata'),
		  '''{}''::jsonb', format('%s.metadata defaults to {}', t))
  FROM unnest('{accounts,markets,orders,trades,balances,services}'::name[]) t;

-- Keys
SELECT col_is_pk('exchange', tbl, col, format('%s primary key is %s', tbl, col)) FROM pks ORDER BY tbl;
SELECT fk_ok('exchange', tbl, cols, 'exchange', reftbl, refcols,
			 format('%s(%s) references %s(%s)', tbl, array_to_string(cols, ', '), reftbl, array_to_string(refcols, ', ')))
  FROM fks ORDER BY n;
SELECT col_is_unique('exchange', tbl, cols, format('%s is unique on (%s)', tbl, array_to_string(cols, ', ')))
  FROM uniques ORDER BY n;
-- orders (account_id, client_order_id): a unique index over the orders that have a
-- client_order_id (NULLs never conflict); orders without one add no entry to it, so that a batch
-- close's non-HOT UPDATE inserts into one index fewer (bench/README.md).
SELECT is((SELECT format('unique=%s valid=%s %s', i.indisunique, i.indisvalid, pg_get_indexdef(i.indexrelid))
			 FROM pg_index i
			WHERE i.indexrelid = 'exchange.orders_account_id_client_order_id_key'::regclass),
		  'unique=t valid=t CREATE UNIQUE INDEX orders_account_id_client_order_id_key ON exchange.orders USING btree (account_id, client_order_id) WHERE (client_order_id IS NOT NULL)',
		  'orders is unique on (account_id, client_order_id) where client_order_id is set');
-- orders (order_id, account_id): unique through the primary key on order_id, with no index of
-- its own (no foreign key or query needs one).
SELECT is((SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY pg_get_indexdef(i.indexrelid))
			 FROM pg_index i
			WHERE i.indrelid = 'exchange.orders'::regclass AND i.indisunique AND i.indkey[0] = 1),
		  ARRAY['CREATE UNIQUE INDEX orders_pkey ON exchange.orders USING btree (order_id)',
				'CREATE UNIQUE INDEX orders_trade_target_key ON exchange.orders USING btree (order_id, account_id, symbol, side)'],
		  'orders is unique on (order_id, account_id) through its primary key, with no index of its own');

-- Indexes for what users query
SELECT ok(EXISTS (SELECT FROM pg_index i
				   WHERE i.indrelid = format('exchange.%I', q.tbl)::regclass
					 AND (SELECT array_agg(a.attname ORDER BY k.ord)
							FROM unnest(i.indkey) WITH ORDINALITY k (attnum, ord)
							JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
						   WHERE k.ord <= cardinality(q.cols)) = q.cols),
		  format('an index on %s leads with (%s): %s', q.tbl, array_to_string(q.cols, ', '), q.why))
  FROM queried q ORDER BY n;

-- Generated and identity columns
SELECT is((SELECT attgenerated FROM pg_attribute
			WHERE attrelid = 'exchange.balances'::regclass AND attname = 'total_balance'),
		  's'::"char", 'balances.total_balance is GENERATED ALWAYS ... STORED');
SELECT is((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
			JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
		   WHERE d.adrelid = 'exchange.balances'::regclass AND a.attname = 'total_balance'),
		  '(available_balance + locked_balance)', 'balances.total_balance = available_balance + locked_balance');
SELECT is(
	(SELECT array_agg(attrelid::regclass::text || '.' || attname::text ORDER BY attrelid::regclass::text COLLATE "C") FROM pg_attribute
	  WHERE attrelid IN ('exchange.balance_journal'::regclass, 'exchange.order_events'::regclass,
						 'exchange.fee_ledger'::regclass, 'exchange.outbox'::regclass)
		AND attidentity = 'a'),
	ARRAY['exchange.balance_journal.seq', 'exchange.fee_ledger.seq', 'exchange.order_events.seq', 'exchange.outbox.id'],
	'journals and the outbox have GENERATED ALWAYS identity keys');
SELECT is_empty(
	$$ SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE c.relnamespace = 'exchange'::regnamespace AND c.relkind = 'r' AND a.attnum > 0
		  AND NOT a.attisdropped AND a.atttypid = 'numeric'::regtype
		  AND format_type(a.atttypid, a.atttypmod) <> 'numeric(24,8)'
		  -- not an amount: the exact sum of quantity x price behind average_price (16 decimals)
		  AND (c.relname, a.attname) <> ('orders', 'filled_value') $$,
	'every amount column of the ledger is numeric(24,8)');

-- Dump registration: ledger tables and identity sequences, never outbox or services
SELECT is(
	(SELECT array_agg(c::regclass::text ORDER BY c::regclass::text COLLATE "C") FROM pg_extension e, unnest(e.extconfig) c
	  WHERE e.extname = 'exchange_adapter'),
	ARRAY['exchange.accounts', 'exchange.balance_journal', 'exchange.balance_journal_seq_seq',
		  'exchange.balances', 'exchange.fee_ledger', 'exchange.fee_ledger_seq_seq', 'exchange.holds',
		  'exchange.markets', 'exchange.order_book_seq', 'exchange.order_events',
		  'exchange.order_events_seq_seq', 'exchange.orders', 'exchange.trades'],
	'pg_extension_config_dump: every ledger table and its identity sequence, not outbox or services');
SELECT is_empty(
	$$ SELECT t.tgname FROM pg_trigger t JOIN pg_extension e ON t.tgrelid = ANY (e.extconfig)
		WHERE e.extname = 'exchange_adapter' AND NOT t.tgisinternal AND t.tgtype & 4 <> 0 $$,
	'no trigger on a dumped table acts on INSERT');
SELECT is((SELECT (SELECT count(*) FROM exchange.accounts) + (SELECT count(*) FROM exchange.markets)
				 + (SELECT count(*) FROM exchange.orders) + (SELECT count(*) FROM exchange.trades)
				 + (SELECT count(*) FROM exchange.balances) + (SELECT count(*) FROM exchange.holds)
				 + (SELECT count(*) FROM exchange.balance_journal) + (SELECT count(*) FROM exchange.order_events)
				 + (SELECT count(*) FROM exchange.fee_ledger))::int, 0,
		  'the install script inserts no rows into dumped tables');
SELECT is((SELECT count(*)::int FROM pg_extension e, unnest(e.extcondition) x
			WHERE e.extname = 'exchange_adapter' AND x <> ''), 0,
		  'whole tables are dumped (no filter condition)');

-- The lifecycle trigger
SELECT has_trigger('exchange', 'orders', 'orders_lifecycle_guard', 'orders has trigger orders_lifecycle_guard');
SELECT trigger_is('exchange', 'orders', 'orders_lifecycle_guard', 'exchange', 'orders_lifecycle_guard',
				  'orders_lifecycle_guard calls exchange.orders_lifecycle_guard()');
SELECT is((SELECT format('enabled=%s before=%s row=%s update=%s insert/delete/truncate=%s', tgenabled,
						  tgtype & 2 <> 0, tgtype & 1 <> 0, tgtype & 16 <> 0, tgtype & (4 | 8 | 32) <> 0)
			 FROM pg_trigger WHERE tgrelid = 'exchange.orders'::regclass AND tgname = 'orders_lifecycle_guard'),
		  'enabled=A before=t row=t update=t insert/delete/truncate=f',
		  'orders_lifecycle_guard: ENABLE ALWAYS, BEFORE, FOR EACH ROW, UPDATE only');
SELECT is_empty(
	$$ SELECT tgrelid::regclass, tgname FROM pg_trigger
		WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'exchange'::regnamespace)
		  AND NOT tgisinternal AND tgname <> 'orders_lifecycle_guard' $$,
	'no other trigger on the ledger');
SELECT is((SELECT format('%s enabled=%s %s drop_extension=%s drop_schema=%s', evtevent, evtenabled,
						  evtfoid::regproc, 'DROP EXTENSION' = ANY (evttags), 'DROP SCHEMA' = ANY (evttags))
			 FROM pg_event_trigger WHERE evtname = 'exchange_adapter_drop_guard'),
		  'ddl_command_start enabled=A exchange.exa_drop_guard drop_extension=t drop_schema=t',
		  'the DROP guard is an event trigger at ddl_command_start on DROP EXTENSION and DROP SCHEMA');

-- The hot tables' rules: one CHECK each, calling its C validator (src/row_checks.c), which
-- only the owner may execute (the API functions write as the owner; superusers bypass).
SELECT is(ARRAY(SELECT k.conname::text FROM pg_constraint k
				 WHERE k.conrelid = format('exchange.%I', t)::regclass AND k.contype = 'c'
				   AND pg_get_constraintdef(k.oid) LIKE '%exchange.' || t || '\_row\_check(%'),
		  ARRAY[t || '_row_check'],
		  format('%s has one row CHECK, %s_row_check, calling exchange.%s_row_check()', t, t, t))
  FROM unnest('{orders,trades,balances,balance_journal,order_events}'::text[]) t;
SELECT is_empty(
	$$ SELECT p.oid::regprocedure FROM pg_proc p, LATERAL aclexplode(p.proacl) a
		WHERE p.pronamespace = 'exchange'::regnamespace AND p.proname LIKE '%\_row\_check'
		  AND a.grantee <> p.proowner
	   UNION ALL
	   SELECT p.oid::regprocedure FROM pg_proc p
		WHERE p.pronamespace = 'exchange'::regnamespace AND p.proname LIKE '%\_row\_check'
		  AND (p.proacl IS NULL OR p.provolatile <> 'i' OR p.proparallel <> 's') $$,
	'the row validators are IMMUTABLE, PARALLEL SAFE and executable by their owner only');

-- Comments on everything public
SELECT is_empty(
	$$ SELECT c.relname FROM pg_class c
		WHERE c.relnamespace = 'exchange'::regnamespace AND c.relkind IN ('r', 'v')
		  AND obj_description(c.oid, 'pg_class') IS NULL $$,
	'every table and view has a comment');
SELECT is_empty(
	$$ SELECT p.oid::regprocedure FROM pg_proc p
		WHERE p.pronamespace = 'exchange'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL $$,
	'every function has a comment');

SELECT * FROM finish();
ROLLBACK;
