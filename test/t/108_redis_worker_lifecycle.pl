# The worker's life around its database and its backlog (README "Redis
# delivery"): a missing extension is logged once and the worker idles; changing
# exchange_adapter.database (reload) moves the worker; a backlog older than outbox_flush_after
# at reconnect is replaced by one SCAN + UNLINK of the whole <prefix>cache:* space, reported
# once, while registrations and other keys survive.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $node = $r->node(
	'lifecycle', extension => 0, conf => <<'EOF');
exchange_adapter.retry_backoff_max = '500ms'
exchange_adapter.poll_interval = '200ms'
EOF

# ---- database without the extension: one log entry, the worker idles --------------------------
my $offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE DATABASE app');
ok(ExchangeRedis::wait_worker($node, 10), 'worker started for the database');
sleep(5);
my $log = slurp_file($node->logfile, $offset);
my $n = () = $log =~ /extension "exchange_adapter" is not installed in database "app"/g;
is($n, 1, 'missing extension logged once over 5 s');
unlike($log, qr/\b(FATAL|ERROR|PANIC):/, 'no error while idling');
$node->safe_psql('app', 'CREATE EXTENSION exchange_adapter');
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker serves the database once the extension exists', 30);

# ---- exchange_adapter.database changes: the worker moves ----------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE app2');
$node->safe_psql('app2', 'CREATE EXTENSION exchange_adapter');
my $pid = ExchangeRedis::worker_pid($node);
$node->append_conf('postgresql.conf', "exchange_adapter.database = 'app2'\n");
$node->reload;
poll_until(
	sub {
		$node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'exchange_adapter worker' AND datname = 'app2'}) eq '1';
	},
	'worker moved to app2 after the reload', 10);
is(ExchangeRedis::status($node, 'app2')->{database}, 'app2', 'adapter_status names app2');
my $acct = $node->safe_psql('app2', q{SELECT account_id FROM exchange.create_account('moved')});
poll_until(sub { ExchangeRedis::outbox_count($node, 'app2') == 0 }, 'app2 delivered', 10);
$node->append_conf('postgresql.conf', "exchange_adapter.database = 'app'\n");
$node->reload;
poll_until(
	sub {
		$node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'exchange_adapter worker' AND datname = 'app'}) eq '1';
	},
	'and back to app', 10);

# ---- backlog older than outbox_flush_after -------------------------------------------------------
$node->append_conf('postgresql.conf', "exchange_adapter.outbox_flush_after = '2s'\n");
$node->reload;
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'connected', 30);
$acct = $node->safe_psql('app', q{SELECT account_id FROM exchange.create_account('backlog')});
$node->safe_psql('app', q{SELECT exchange.register_service('svc-keep', 'x', 'h', 1)});
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'setup delivered', 30);

# Cache keys of any kind (including ones no outbox row names) and non-cache keys, kept across
# the restart.
$r->admin('SET', "exchange:cache:anything:$_", 'x') for 1 .. 50;
$r->admin('SET', 'exchange:other:key', 'x');
$r->admin('SET', 'elsewhere:cache:key', 'x');
$r->admin('SHUTDOWN', 'SAVE');
$r->stop;
$node->safe_psql('app', qq{SELECT exchange.deposit('$acct', 'A$_', 1)}) for 1 .. 20;
$node->safe_psql('app', q{SELECT exchange.register_service('svc-new', 'x', 'h', 2)});
sleep(3);    # the backlog is now older than outbox_flush_after
$offset = -s $node->logfile;
$r->restart;
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'backlog dropped or delivered', 30);
poll_until(sub { $r->admin('DBSIZE') ne '' && $r->admin('EVAL', q{return #redis.call('KEYS', 'exchange:cache:*')}, 0) eq '0' },
	'the whole cache space is invalidated', 30);
is($r->admin('EXISTS', 'exchange:other:key', 'elsewhere:cache:key'), '2', 'keys outside <prefix>cache: survive');
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-keep', 'exchange:service:svc-new') eq '2' },
	'registrations are applied, not dropped', 10);
$log = slurp_file($node->logfile, $offset);
$n = () = $log =~ /invalidated the whole cache space instead of replaying an outbox backlog/g;
is($n, 1, 'reported once');
like($log, qr/dropped 20 of 20 pending cache rows/, 'the 20 cache rows were dropped, not replayed');

ExchangeRedis::password_not_logged($node);
$node->stop;
done_testing();
