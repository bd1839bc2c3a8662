# Version 1.1 and its upgrade path (README "Upgrading").
#
# (a) a fresh CREATE EXTENSION (1.1, from exchange_adapter--1.1.sql) and (b) a 1.0 installation
# holding a ledger made through every 1.0 function, then ALTER EXTENSION exchange_adapter UPDATE,
# give one catalog: the binary-upgrade schema dump of each database (it includes the extension's
# members, with their ACLs, comments, constraints, triggers and the event trigger), with OIDs and
# transaction ids left out, and the same dump registrations. Both databases were prepared the way
# an orchestrator prepares them (a role with CREATE and default privileges on a pre-existing
# schema; the 1.0 script cannot take role names that need quoting, so it is a plain one). After (b): every row is intact, check_invariants() is empty, the 1.0 data works with
# the 1.1 functions, the DROP guard holds under session_replication_role = replica, and the
# privilege state of README "Security model" holds.
#
# Before the update, the 1.1 library serves the 1.0 catalog (the window between a package upgrade
# and ALTER EXTENSION ... UPDATE): the 1.0 functions, bound by their unprefixed symbols, work
# and the worker keeps delivering. After it, every C function is bound by its exa_ symbol.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $node = $r->node('upgrade', database => 'app', extension => 0,
	conf => "exchange_adapter.poll_interval = '200ms'\n");

# The orchestrator's preparation, in both databases.
$node->safe_psql('postgres', q{CREATE ROLE app_role LOGIN});
my $prepare = <<'SQL';
CREATE SCHEMA exchange;
GRANT USAGE, CREATE ON SCHEMA exchange TO app_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON TABLES TO app_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON SEQUENCES TO app_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON FUNCTIONS TO app_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA exchange GRANT ALL ON TYPES TO app_role;
SQL
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', $prepare);
$node->safe_psql('fresh', 'CREATE EXTENSION exchange_adapter');
is($node->safe_psql('fresh',
		q{SELECT extversion FROM pg_extension WHERE extname = 'exchange_adapter'}),
	'1.1', 'a fresh install is at 1.1');

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', $prepare);
$node->safe_psql('app', q{CREATE EXTENSION exchange_adapter VERSION '1.0'});
is($node->safe_psql('app',
		q{SELECT extversion FROM pg_extension WHERE extname = 'exchange_adapter'}),
	'1.0', 'the served database is at 1.0');
ok(ExchangeRedis::wait_worker($node), 'the 1.1 library\'s worker serves the 1.0 catalog');

sub q1 { $node->safe_psql('app', shift) }

# A ledger made through every 1.0 function, as the 1.1 library runs them on the 1.0 catalog.
q1(<<'SQL');
SELECT exchange.create_market('BTC-USDT', 'BTC', 'USDT', 0.01, 0.0001, 0, 0, 0.001, 0.002);
SELECT exchange.create_market('ETH-USDT', 'ETH', 'USDT');
SELECT exchange.set_market_status('ETH-USDT', 'HALTED');
SELECT exchange.create_account('alice');
SELECT exchange.create_account('bob');
SELECT exchange.create_account('carol', 'MARGIN', '{"tier": "gold"}');
SELECT exchange.set_kyc_status(account_id, 'APPROVED') FROM exchange.accounts;
SELECT exchange.set_account_status(account_id, 'SUSPENDED') FROM exchange.accounts WHERE user_id = 'carol';
SELECT exchange.deposit(account_id, 'USDT', 100000, 'wire-1') FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.deposit(account_id, 'BTC', 5) FROM exchange.accounts WHERE user_id = 'bob';
SELECT exchange.withdraw(account_id, 'USDT', 10, 'payout-1') FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.lock_balance(account_id, 'USDT', 100, 'margin') FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.lock_balance(account_id, 'USDT', 50, 'fee hold') FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.unlock_balance(hold_id, 10) FROM exchange.holds WHERE reason = 'margin';
SELECT exchange.capture_hold(hold_id, 20, 'capture-1') FROM exchange.holds WHERE reason = 'fee hold';
SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'LIMIT', 1, 30000, client_order_id => 'c1')
  FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.place_order(account_id, 'BTC-USDT', 'SELL', 'LIMIT', 2, 29000)
  FROM exchange.accounts WHERE user_id = 'bob';
SELECT exchange.apply_match(b.order_id, s.order_id, 0.5, 29500, trade_ref => 'm1')
  FROM exchange.orders b, exchange.orders s WHERE b.side = 'BUY' AND s.side = 'SELL';
SELECT exchange.apply_trade(order_id, 0.25, 29000, trade_ref => 't1', liquidity => 'MAKER')
  FROM exchange.orders WHERE side = 'SELL';
SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'LIMIT', 0.1, 20000, client_order_id => 'cancel-me')
  FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.cancel_order(order_id, 'changed mind') FROM exchange.orders WHERE client_order_id = 'cancel-me';
SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'LIMIT', 0.1, 21000, client_order_id => 'expire-me')
  FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.expire_order(order_id, 'IOC') FROM exchange.orders WHERE client_order_id = 'expire-me';
SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'STOP', 0.1, 35000, stop_price => 31000,
                            client_order_id => 'stop-1')
  FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.trigger_stop_orders('BTC-USDT', 31500);
SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'LIMIT', 0.1, 22000, client_order_id => 'bulk-1')
  FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.cancel_orders(account_id, 'BTC-USDT') FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'LIMIT', 0.1, 23000, client_order_id => 'eod-1')
  FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.expire_orders('BTC-USDT', pg_catalog.now() + interval '1 second');
SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'LIMIT', 0.2, 24000, client_order_id => 'rests')
  FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.register_service('svc-1', 'matching', '10.0.0.1', 7000, '1.0.0', '{"zone": "a"}');
SELECT exchange.register_service('svc-2', 'matching', '10.0.0.2', 7000);
SELECT exchange.heartbeat_service('svc-1');
SELECT exchange.deregister_service('svc-2');
SELECT exchange.grant_adapter('app_role'::regrole, 'trader'::text);
SQL
is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0',
	'the 1.0 ledger is sound');
ok(defined ExchangeRedis::status($node)->{worker_pid}, 'adapter_status() answers on the 1.0 catalog');

# The worker keeps delivering in the window: a deposit's keys are deleted.
my $alice = q1(q{SELECT account_id FROM exchange.accounts WHERE user_id = 'alice'});
$r->admin('SET', "exchange:cache:balances:$alice", 'stale');
q1(qq{SELECT exchange.deposit('$alice', 'USDT', 1)});
poll_until(sub { $r->admin('EXISTS', "exchange:cache:balances:$alice") eq '0' },
	'the worker delivers on the 1.0 catalog', 30);
poll_until(sub { ExchangeRedis::outbox_count($node, 'app') == 0 },
	'the 1.0 outbox drains', 30);

# The C functions of the 1.0 catalog are bound by their 1.0, unprefixed symbols: every call
# above went through the library's 1.0 compatibility wrappers (src/compat_1_0.c).
my $c_functions = q{SELECT coalesce(string_agg(proname || ' ' || prosrc, ', ' ORDER BY proname), '')
                      FROM pg_proc WHERE probin = '$libdir/exchange_adapter' AND prosrc !~ '^exa_'};
is(q1(q{SELECT count(*) FROM pg_proc
         WHERE probin = '$libdir/exchange_adapter' AND prosrc !~ '^exa_'}),
	'28', 'the 1.0 catalog binds the 28 unprefixed symbols of 1.0');

# A session that stays open across the update: the catalog version it read at its first call
# (src/catalog_version.c keeps it per backend) must not outlive the update another session
# commits.  Its first order is a 1.0 order; its next one, after the update, is checked below.
my $bg = $node->background_psql('app');
$bg->query_safe(q{SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'LIMIT', 0.001, 100)
                    FROM exchange.accounts WHERE user_id = 'alice'});

# Every row, before the update, in its 1.0 columns (the columns 1.1 adds are left out, and
# checked below: defaults on markets, NULL on orders and trades).
my @tables = qw(accounts markets orders trades balances holds balance_journal order_events
  fee_ledger services);
my %added_columns = (
	markets => [qw(matching self_trade last_price last_trade_at trade_seq)],
	orders  => [qw(book_seq)],
	trades  => [qw(seq)]);
sub row_text
{
	my ($table) = @_;
	return 't::text' unless $added_columns{$table};
	return "(to_jsonb(t) - '{" . join(',', @{ $added_columns{$table} }) . "}'::text[])::text";
}
my $rows_sql = join(' UNION ALL ',
	map { "SELECT '$_', count(*), md5(coalesce(string_agg(" . row_text($_) . ", '|' ORDER BY "
		  . row_text($_) . "), '')) FROM exchange.$_ t" }
	  @tables);
my $before = q1($rows_sql);
for my $line (split /\n/, $before)
{
	my ($t, $n) = split /\|/, $line;
	cmp_ok($n, '>', 0, "1.0 ledger has rows in $t") unless $t eq 'services';
}

# The update.
q1('ALTER EXTENSION exchange_adapter UPDATE');
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'exchange_adapter'}),
	'1.1', 'ALTER EXTENSION ... UPDATE reaches 1.1');
is(q1($rows_sql), $before, 'every row is intact after the update');
is(q1(q{SELECT count(*) FILTER (WHERE matching = 'EXTERNAL' AND self_trade = 'EXPIRE_MAKER'
                                   AND last_price IS NULL AND last_trade_at IS NULL AND trade_seq = 0)
                 = count(*)
          FROM exchange.markets}) . q1(q{SELECT count(*) FROM exchange.orders WHERE book_seq IS NOT NULL})
	. q1(q{SELECT count(*) FROM exchange.trades WHERE seq IS NOT NULL}),
	't00', 'the columns 1.1 adds hold their defaults on 1.0 rows');
is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0',
	'check_invariants() is empty after the update');
# A 1.1 order has a book_seq; the 1.0 statement, which a stale version would choose, leaves it NULL.
is($bg->query_safe(q{SELECT book_seq IS NOT NULL
                       FROM exchange.place_order((SELECT account_id FROM exchange.accounts
                                                   WHERE user_id = 'alice'),
                                                 'BTC-USDT', 'BUY', 'LIMIT', 0.001, 100)}),
	't', 'a session open across the update places its next order as 1.1 does');
$bg->quit;

# The update rebinds every C function to its exa_ symbol: no member of either catalog is bound
# by an unprefixed name (the 1.0 wrappers are unreachable from a 1.1 catalog).
for my $db (qw(fresh app))
{
	is($node->safe_psql($db, $c_functions), '', "$db: every C function is bound by an exa_ symbol");
	cmp_ok($node->safe_psql($db,
			q{SELECT count(*) FROM pg_proc WHERE probin = '$libdir/exchange_adapter'}),
		'>=', 29, "$db: ... of all its C functions");
}

# The privilege state: no role but the owner creates in the schema; app_role has only what
# grant_adapter gave it (the upgraded database) or nothing (the fresh one); default privileges
# reached no member in either.
for my $db (qw(fresh app))
{
	is($node->safe_psql($db,
			q{SELECT has_schema_privilege('app_role', 'exchange', 'CREATE')}),
		'f', "$db: app_role cannot create in the schema");
	is($node->safe_psql($db, <<'SQL'), '', "$db: default privileges reached no member");
SELECT pg_describe_object(d.classid, d.objid, 0) || ' ' || a.privilege_type
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid
  LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
  LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
  LEFT JOIN pg_type t ON d.classid = 'pg_type'::regclass AND t.oid = d.objid,
       aclexplode(coalesce(c.relacl, p.proacl, t.typacl)) a
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND e.extname = 'exchange_adapter'
   AND a.grantee = 'app_role'::regrole
   AND NOT (a.privilege_type = 'SELECT' AND c.relkind IN ('r', 'v'))
   AND NOT (a.privilege_type = 'EXECUTE' AND p.oid IS NOT NULL)
SQL
}
is($node->safe_psql('fresh', q{SELECT has_table_privilege('app_role', 'exchange.orders', 'SELECT')}),
	'f', 'fresh: app_role was granted nothing');
is(q1(q{SELECT has_table_privilege('app_role', 'exchange.orders', 'SELECT')
              AND NOT has_table_privilege('app_role', 'exchange.orders', 'INSERT')
              AND has_function_privilege('app_role', 'exchange.cancel_order(uuid, text)', 'EXECUTE')
              AND NOT has_function_privilege('app_role', 'exchange.deposit(uuid, text, numeric, text)', 'EXECUTE')}),
	't', 'app: app_role keeps exactly its trader profile across the update');

# The 1.0 data works with the 1.1 functions.
q1(<<'SQL');
SELECT exchange.apply_trade(order_id, 0.1, 24000, trade_ref => 'after-1') FROM exchange.orders
 WHERE client_order_id = 'rests';
SELECT exchange.cancel_order(order_id) FROM exchange.orders WHERE client_order_id = 'rests';
SELECT exchange.unlock_balance(hold_id) FROM exchange.holds WHERE reason = 'margin';
SELECT exchange.capture_hold(hold_id, NULL, 'capture-2') FROM exchange.holds WHERE reason = 'fee hold';
SELECT exchange.set_account_status(account_id, 'ACTIVE') FROM exchange.accounts WHERE user_id = 'carol';
SELECT exchange.set_market_status('ETH-USDT', 'ACTIVE');
SELECT exchange.withdraw(account_id, 'BTC', 1, 'payout-2') FROM exchange.accounts WHERE user_id = 'bob';
SELECT exchange.heartbeat_service('svc-1');
SELECT exchange.revoke_adapter('app_role'::regrole);
SQL
is(q1(q{SELECT status FROM exchange.orders WHERE client_order_id = 'rests'}), 'CANCELLED',
	'an order placed under 1.0 fills and cancels under 1.1');
is(q1(q{SELECT exchange.place_order(a.account_id, 'BTC-USDT', 'BUY', 'LIMIT', 1, 30000, client_order_id => 'c1')
          = o FROM exchange.accounts a, exchange.orders o
         WHERE a.user_id = 'alice' AND o.client_order_id = 'c1'}),
	't', 'a 1.0 client_order_id retried under 1.1 returns the stored order');
is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0',
	'check_invariants() is empty after 1.1 calls on 1.0 data');

# One catalog: the binary-upgrade schema dumps agree once OIDs and xids are left out (compared
# now that revoke_adapter took back the grant made under 1.0, which is data, not catalog).
sub catalog_dump
{
	my ($db) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pg_dump', '--schema-only', '--binary-upgrade', '-d', $node->connstr($db) ],
		'>', \$out, '2>', \$err)
	  or die "pg_dump $db failed: $err";
	my @keep = grep {
		!/binary_upgrade_/ && !/relfrozenxid/ && !/^WHERE oid = /
		  && !/^\\(un)?restrict / && !/^-- Dumped (from|by)/ && !/pg_catalog\.setval/
	} split /\n/, $out;
	return join("\n", @keep) . "\n";
}
# revoke_adapter also took back the USAGE the orchestrator had granted on the schema (not a
# member): the same call in the fresh database leaves the two schemas' ACLs alike.
$node->safe_psql('fresh', q{SELECT exchange.revoke_adapter('app_role'::regrole)});
my ($fresh_dump, $app_dump) = (catalog_dump('fresh'), catalog_dump('app'));
like($fresh_dump, qr/CREATE FUNCTION exchange\.place_order/, 'the dump shows extension members');
like($fresh_dump, qr/'\$libdir\/exchange_adapter', 'exa_place_order'/,
	'the dump shows the exa_ symbols');
like($fresh_dump, qr/ALTER EVENT TRIGGER exchange_adapter_drop_guard ENABLE ALWAYS/,
	'the dump shows the event trigger ENABLE ALWAYS');
if ($fresh_dump eq $app_dump)
{
	pass('fresh 1.1 and upgraded 1.0 give the same schema dump (ACLs, comments, constraints, event trigger)');
}
else
{
	my $dir = $node->basedir;
	open(my $f, '>', "$dir/fresh.sql") or die $!; print $f $fresh_dump; close $f;
	open($f, '>', "$dir/app.sql") or die $!; print $f $app_dump; close $f;
	my ($diff, $e) = ('', '');
	IPC::Run::run([ 'diff', '-u', "$dir/fresh.sql", "$dir/app.sql" ], '>', \$diff, '2>', \$e);
	fail('fresh 1.1 and upgraded 1.0 give the same schema dump');
	diag(substr($diff, 0, 4000));
}
my $registrations = q{SELECT array_to_string(extconfig::regclass[]::text[], ','),
                             array_to_string(extcondition, ',')
                        FROM pg_extension WHERE extname = 'exchange_adapter'};
is(q1($registrations), $node->safe_psql('fresh', $registrations),
	'the same tables and sequences are registered for pg_dump');

# The DROP guard is ALWAYS in the upgraded database too.
my ($rc, $out, $err) = $node->psql('app',
	"SET session_replication_role = replica; DROP EXTENSION exchange_adapter CASCADE");
isnt($rc, 0, 'DROP EXTENSION under session_replication_role = replica is refused');
like($err, qr/while the ledger holds rows/, '... by the ledger guard');

# And the worker still delivers after the update.
$r->admin('SET', "exchange:cache:balances:$alice", 'stale');
q1(qq{SELECT exchange.deposit('$alice', 'USDT', 1)});
poll_until(sub { $r->admin('EXISTS', "exchange:cache:balances:$alice") eq '0' },
	'the worker delivers after the update', 30);

$node->stop;
done_testing();
