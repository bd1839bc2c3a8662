-- pgTAP: README "SQL API" as installed.  For every API function that exists (the
-- orders, trades and registry functions arrive with later issues and are checked once they do):
-- argument names, types, order and defaults, and the result, exactly as the contract lists them;
-- written in C; SECURITY DEFINER with search_path pinned to pg_catalog, pg_temp; VOLATILE;
-- PARALLEL UNSAFE; documented with COMMENT ON.  The funds ledger's functions must all exist.
-- The market-data reads (README "Market data") are PL/pgSQL, STABLE, SECURITY DEFINER with
-- search_path pinned and jit off, and documented; they and their row type must exist.
BEGIN;
CREATE EXTENSION exchange_adapter;

-- The contract (README "SQL API").  Defaults are compared by value; "= NULL" is DEFAULT NULL.
CREATE TEMP TABLE api (n serial, fn name, args text, result text, funds_ledger boolean);
INSERT INTO api (fn, args, result, funds_ledger) VALUES
	('create_account', 'user_id text, account_type text = SPOT, metadata jsonb = {}', 'exchange.accounts', true),
	('set_account_status', 'account_id uuid, status text', 'exchange.accounts', true),
	('set_kyc_status', 'account_id uuid, kyc_status text', 'exchange.accounts', true),
	('create_market', 'symbol text, base_asset text, quote_asset text, tick_size numeric = 0.00000001, '
					  'lot_size numeric = 0.00000001, min_quantity numeric = 0, min_notional numeric = 0, '
					  'maker_fee_rate numeric = 0, taker_fee_rate numeric = 0, metadata jsonb = {}, '
					  'matching text = EXTERNAL, self_trade text = EXPIRE_MAKER',
	 'exchange.markets', true),
	('set_market_status', 'symbol text, status text', 'exchange.markets', true),
	('set_market_matching', 'symbol text, matching text, self_trade text = NULL', 'exchange.markets', true),
	('deposit', 'account_id uuid, asset text, amount numeric, reference text = NULL', 'exchange.balances', true),
	('withdraw', 'account_id uuid, asset text, amount numeric, reference text = NULL', 'exchange.balances', true),
	('lock_balance', 'account_id uuid, asset text, amount numeric, reason text = NULL', 'exchange.holds', true),
	('unlock_balance', 'hold_id uuid, amount numeric = NULL', 'exchange.holds', true),
	('capture_hold', 'hold_id uuid, amount numeric = NULL, reference text = NULL', 'exchange.holds', true),
	('check_invariants', '', 'SETOF (invariant text, detail text)', true),
	('grant_adapter', 'role regrole, profile text = all', 'void', true),
	('revoke_adapter', 'role regrole', 'void', true),
	('place_order', 'account_id uuid, symbol text, side text, order_type text, quantity numeric, '
					'price numeric = NULL, time_in_force text = NULL, stop_price numeric = NULL, '
					'client_order_id text = NULL, metadata jsonb = {}', 'exchange.orders', false),
	('cancel_order', 'order_id uuid, reason text = NULL', 'exchange.orders', false),
	('cancel_orders', 'account_id uuid, symbol text = NULL', 'SETOF exchange.orders', false),
	('place_orders', 'orders jsonb', 'SETOF exchange.orders', false),
	('cancel_order_ids', 'order_ids uuid[], reason text = NULL', 'SETOF exchange.orders', false),
	('apply_trades', 'trades jsonb', 'SETOF exchange.trades', false),
	('apply_matches', 'matches jsonb', 'SETOF exchange.trades', false),
	('expire_order', 'order_id uuid, reason text = NULL', 'exchange.orders', false),
	('expire_orders', 'symbol text, placed_before timestamp with time zone', 'SETOF exchange.orders', false),
	('trigger_stop_orders', 'symbol text, last_price numeric', 'SETOF exchange.orders', false),
	('apply_trade', 'order_id uuid, quantity numeric, price numeric, fee numeric = NULL, fee_currency text = NULL, '
					'executed_at timestamp with time zone = now(), trade_ref text = NULL, liquidity text = NULL',
	 'exchange.trades', false),
	('apply_match', 'buy_order_id uuid, sell_order_id uuid, quantity numeric, price numeric, buy_fee numeric = NULL, '
					'sell_fee numeric = NULL, trade_ref text = NULL, maker text = NULL', 'SETOF exchange.trades', false),
	('register_service', 'service_id text, service_name text, address text, port integer, version text = NULL, '
						 'metadata jsonb = {}, ttl interval = 00:01:30', 'exchange.services', false),
	('heartbeat_service', 'service_id text', 'exchange.services', false),
	('deregister_service', 'service_id text', 'boolean', false),
	('discover_services', 'service_name text = NULL',
	 'SETOF (service_id text, service_name text, address text, port integer, version text, metadata jsonb, '
	 'registered_at timestamp with time zone, last_heartbeat timestamp with time zone)', false),
	('adapter_status', '',
	 '(worker_pid integer, database text, redis_connected boolean, last_error text, '
	 'last_push_at timestamp with time zone, outbox_pending bigint, outbox_oldest timestamp with time zone, '
	 'pushed_keys bigint, failed_pushes bigint)', false),
	('flush_outbox', 'max_rows integer = 1000', 'integer', false);

-- A function's input arguments as "name type [= default value]".
CREATE FUNCTION pg_temp.sig_args(f oid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	p pg_proc;
	parts text[] := '{}';
	ndef int;
	nin int;
	i int;
	def text;
	val text;
BEGIN
	SELECT * INTO p FROM pg_proc WHERE oid = f;
	nin := p.pronargs;
	ndef := p.pronargdefaults;
	FOR i IN 1 .. nin LOOP
		def := pg_get_function_arg_default(f, (SELECT k FROM generate_series(1, coalesce(cardinality(p.proargmodes), nin)) k
												 WHERE coalesce(p.proargmodes[k], 'i') IN ('i', 'b', 'v')
												 OFFSET i - 1 LIMIT 1));
		IF def IS NULL THEN
			val := '';
		ELSIF def LIKE '%now()%' THEN
			val := ' = now()';
		ELSE
			EXECUTE format('SELECT (%s)::text', def) INTO val;
			val := ' = ' || coalesce(val, 'NULL');
		END IF;
		parts := parts || format('%s %s%s',
			(SELECT a FROM unnest(p.proargnames) WITH ORDINALITY u (a, k)
			  WHERE coalesce(p.proargmodes[k], 'i') IN ('i', 'b', 'v') OFFSET i - 1 LIMIT 1),
			format_type(p.proargtypes[i - 1], NULL), val);
	END LOOP;
	RETURN array_to_string(parts, ', ');
END
$$;

-- A function's result: a type (a table's row type by name), "SETOF type", or
-- "[SETOF ](name type, ...)" for OUT/TABLE columns and for a stand-alone composite type, whose
-- columns are what callers see.
CREATE FUNCTION pg_temp.sig_result(f oid) RETURNS text
LANGUAGE sql AS $$
	SELECT CASE WHEN p.proretset THEN 'SETOF ' ELSE '' END ||
		   CASE WHEN p.proallargtypes IS NOT NULL AND ('o' = ANY (p.proargmodes) OR 't' = ANY (p.proargmodes))
				THEN '(' || (SELECT string_agg(format('%s %s', a.name, format_type(a.typ, NULL)), ', ' ORDER BY a.k)
							   FROM unnest(p.proargnames, p.proallargtypes, p.proargmodes) WITH ORDINALITY a (name, typ, mode, k)
							  WHERE a.mode IN ('o', 't', 'b')) || ')'
				WHEN (SELECT c.relkind FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid WHERE t.oid = p.prorettype) = 'c'
				THEN '(' || (SELECT string_agg(format('%s %s', a.attname, format_type(a.atttypid, NULL)), ', ' ORDER BY a.attnum)
							   FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
							  WHERE t.oid = p.prorettype AND a.attnum > 0 AND NOT a.attisdropped) || ')'
				ELSE format_type(p.prorettype, NULL) END
	  FROM pg_proc p WHERE p.oid = f
$$;

-- The market-data reads (README "Market data").
CREATE TEMP TABLE reads (n serial, fn name, args text, result text);
INSERT INTO reads (fn, args, result) VALUES
	('order_book_depth', 'symbol text, levels integer = 20',
	 'SETOF (side text, price numeric, quantity numeric, orders integer)'),
	('ticker', 'symbol text = NULL',
	 'SETOF (symbol text, last_price numeric, best_bid numeric, best_ask numeric, open_24h numeric, '
	 'high_24h numeric, low_24h numeric, volume_24h numeric, quote_volume_24h numeric, trades_24h bigint, '
	 'updated_at timestamp with time zone)'),
	('candles', 'symbol text, width interval, since timestamp with time zone, until timestamp with time zone = now()',
	 'SETOF (bucket timestamp with time zone, open numeric, high numeric, low numeric, close numeric, '
	 'volume numeric, quote_volume numeric, trades bigint)');
CREATE TEMP VIEW reads_present AS
SELECT r.n, r.fn, r.args, r.result, p.oid
  FROM reads r JOIN pg_proc p ON p.proname = r.fn AND p.pronamespace = 'exchange'::regnamespace;

CREATE TEMP VIEW api_present AS
SELECT a.n, a.fn, a.args, a.result, p.oid
  FROM api a JOIN pg_proc p ON p.proname = a.fn AND p.pronamespace = 'exchange'::regnamespace;

SELECT plan(
	(SELECT count(*)::int FROM api WHERE funds_ledger)
	+ 1
	+ 8 * (SELECT count(*)::int FROM api_present)
	+ 5
	+ (SELECT count(*)::int FROM reads) + 1
	+ 7 * (SELECT count(*)::int FROM reads_present)
);

-- Every function of the funds ledger exists, and no API name is overloaded.
SELECT ok(EXISTS (SELECT FROM pg_proc WHERE pronamespace = 'exchange'::regnamespace AND proname = fn),
		  format('function exchange.%s exists', fn))
  FROM api WHERE funds_ledger ORDER BY n;
SELECT is_empty(
	$$ SELECT proname FROM pg_proc WHERE pronamespace = 'exchange'::regnamespace
		GROUP BY proname HAVING count(*) > 1 $$,
	'no function of schema exchange is overloaded');

-- Per API function that exists: signature and properties.
SELECT is(pg_temp.sig_args(oid), args, format('%s(%s): arguments, order and defaults as the contract says', fn, args))
  FROM api_present ORDER BY n;
SELECT is(pg_temp.sig_result(oid), result, format('%s returns %s', fn, result))
  FROM api_present ORDER BY n;
SELECT function_lang_is('exchange', fn, 'c', format('%s is written in C', fn))
  FROM api_present ORDER BY n;
SELECT is_definer('exchange', fn, format('%s is SECURITY DEFINER', fn))
  FROM api_present ORDER BY n;
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = a.oid), '{"search_path=pg_catalog, pg_temp"}'::text[],
		  format('%s runs with search_path = pg_catalog, pg_temp', fn))
  FROM api_present a ORDER BY n;
SELECT volatility_is('exchange', fn, 'volatile', format('%s is VOLATILE', fn))
  FROM api_present ORDER BY n;
SELECT is((SELECT proparallel FROM pg_proc WHERE oid = a.oid), 'u'::"char", format('%s is PARALLEL UNSAFE', fn))
  FROM api_present a ORDER BY n;
SELECT isnt(obj_description(oid, 'pg_proc'), NULL, format('%s is documented with COMMENT ON', fn))
  FROM api_present ORDER BY n;

-- Every function of the extension, API or not.
CREATE TEMP VIEW member_functions AS
SELECT p.* FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'exchange_adapter';
SELECT is_empty($$ SELECT oid::regprocedure FROM member_functions
					WHERE prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
					  AND proname NOT IN (SELECT fn FROM reads) $$,
				'every function of the extension but the market-data reads is written in C');
SELECT is_empty($$ SELECT oid::regprocedure FROM member_functions
					WHERE prosecdef AND proconfig IS DISTINCT FROM
						  CASE WHEN proname IN (SELECT fn FROM reads)
							   THEN '{"search_path=pg_catalog, pg_temp",jit=off}'
							   ELSE '{"search_path=pg_catalog, pg_temp"}' END::text[] $$,
				'every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp (the market-data reads also turn jit off)');
SELECT is_empty($$ SELECT oid::regprocedure FROM member_functions
					WHERE prorettype IN ('trigger'::regtype, 'event_trigger'::regtype) AND prosecdef $$,
				'trigger functions are not SECURITY DEFINER (they run as the statement''s user)');
SELECT is_empty($$ SELECT oid::regprocedure FROM member_functions
					WHERE prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
					  AND proname NOT IN (SELECT fn FROM api UNION ALL SELECT fn FROM reads)
					  AND proname NOT IN ('orders_row_check', 'trades_row_check', 'balances_row_check',
										  'balance_journal_row_check', 'order_events_row_check') $$,
				'every other function of the extension is an API function of the contract or the row validator of a hot table''s CHECK (test/pgtap/schema.sql)');
SELECT is_empty($$ SELECT oid::regprocedure FROM pg_proc
					WHERE pronamespace = 'exchange'::regnamespace
					  AND oid NOT IN (SELECT oid FROM member_functions) $$,
				'schema exchange holds no function that is not the extension''s');

-- The market-data reads: each exists, with its signature and properties; the ticker's row type
-- is documented.
SELECT ok(EXISTS (SELECT FROM pg_proc WHERE pronamespace = 'exchange'::regnamespace AND proname = fn),
		  format('function exchange.%s exists', fn))
  FROM reads ORDER BY n;
SELECT isnt(obj_description('exchange.market_ticker'::regtype, 'pg_type'), NULL,
			'type exchange.market_ticker is documented with COMMENT ON');
SELECT is(pg_temp.sig_args(oid), args, format('%s(%s): arguments, order and defaults as the contract says', fn, args))
  FROM reads_present ORDER BY n;
SELECT is(pg_temp.sig_result(oid), result, format('%s returns %s', fn, result))
  FROM reads_present ORDER BY n;
SELECT function_lang_is('exchange', fn, 'plpgsql', format('%s is written in PL/pgSQL', fn))
  FROM reads_present ORDER BY n;
SELECT is_definer('exchange', fn, format('%s is SECURITY DEFINER', fn))
  FROM reads_present ORDER BY n;
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = r.oid), '{"search_path=pg_catalog, pg_temp",jit=off}'::text[],
		  format('%s runs with search_path = pg_catalog, pg_temp and jit off', fn))
  FROM reads_present r ORDER BY n;
SELECT volatility_is('exchange', fn, 'stable', format('%s is STABLE', fn))
  FROM reads_present ORDER BY n;
SELECT isnt(obj_description(oid, 'pg_proc'), NULL, format('%s is documented with COMMENT ON', fn))
  FROM reads_present ORDER BY n;

SELECT * FROM finish();
ROLLBACK;
