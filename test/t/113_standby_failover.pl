# A streaming-replication standby of a served cluster, and a failover (README "Redis delivery",
# "Standby and failover"; src/launcher.c header): the standby runs no delivery, sends nothing to
# Redis and logs no error; adapter_status() there says it is a standby; writes through the API
# fail like any write on a standby (25006) and reads work. The primary commits while Redis is
# paused (its worker hangs mid-push with rows claimed), stops with -m immediate; the promoted
# standby's worker delivers every invalidation the old primary had committed but not delivered.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $poll_ms = 200;
my $r = ExchangeRedis->start;
my $primary = $r->node(
	'primary',
	init => { allows_streaming => 1 },
	conf => <<"EOF");
exchange_adapter.redis_command_timeout = '60s'
exchange_adapter.retry_backoff_max = '1s'
exchange_adapter.poll_interval = '${poll_ms}ms'
exchange_adapter.outbox_batch_size = 50
EOF
poll_until(sub { ExchangeRedis::status($primary)->{redis_connected} }, 'primary worker connected', 30);

my $acct = $primary->safe_psql('app', q{SELECT account_id FROM exchange.create_account('failover')});
$primary->safe_psql('app', qq{SELECT exchange.deposit('$acct', 'USD', 100)});
$primary->safe_psql('app', q{SELECT exchange.register_service('svc-standby', 'svc', 'h', 1)});
poll_until(sub { ExchangeRedis::outbox_count($primary) == 0 }, 'setup delivered', 30);

# Redis connections of the worker's user: the primary's worker has exactly one.
sub worker_connections
{
	return scalar grep { /\buser=exchange_adapter\b/ } split /\n/, $r->admin('CLIENT', 'LIST');
}
is(worker_connections(), 1, 'one worker connection to Redis (the primary)');

# ---- the standby -------------------------------------------------------------------------------
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('app', 'SELECT pg_is_in_recovery()'), 't', 'standby in recovery');

my $offset = -s $standby->logfile;
sleep(10 * $poll_ms / 1000 + 2);    # many poll intervals
my $log = slurp_file($standby->logfile, $offset);
unlike($log, qr/\b(ERROR|FATAL|PANIC):/, 'no error in the standby log over many poll intervals')
  or diag($log);
unlike(slurp_file($standby->logfile), qr/exchange_adapter (worker|launcher) started/,
	'no launcher or worker started on the standby');
is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'exchange_adapter%'}),
	'0', 'no exchange_adapter process on the standby');
is(worker_connections(), 1, 'the standby has no connection to Redis');

my $st = ExchangeRedis::status($standby);
ok(!defined $st->{worker_pid}, 'adapter_status on the standby: no worker pid');
like($st->{last_error} // '', qr/standby/, 'adapter_status on the standby says it is a standby')
  or diag(explain($st));
is($st->{outbox_pending}, 0, 'adapter_status on the standby reads the outbox');

# Writes fail like any write on a standby; reads work.
for my $call (
	qq{SELECT exchange.deposit('$acct', 'USD', 1)},
	q{SELECT exchange.create_account('on-standby')},
	q{SELECT exchange.register_service('svc-x', 'svc', 'h', 2)},
	q{SELECT exchange.flush_outbox()})
{
	my ($rc, $out, $err) = $standby->psql('app', "\\set VERBOSITY verbose\n$call");
	like($err, qr/ERROR:\s+25006: cannot execute [A-Z ]+ in a read-only transaction/,
		"on the standby, 25006: $call")
	  or diag($err);
}
is($standby->safe_psql('app', 'SELECT count(*) FROM exchange.check_invariants()'), '0',
	'check_invariants on the standby');
is($standby->safe_psql('app', qq{SELECT available_balance FROM exchange.balances WHERE account_id = '$acct' AND symbol = 'USD'}),
	'100.00000000', 'balances readable on the standby');
is($standby->safe_psql('app', q{SELECT string_agg(service_id, ',') FROM exchange.discover_services('svc')}),
	'svc-standby', 'discover_services on the standby');

# ---- the primary's last commits while Redis is paused ------------------------------------------
my @keys;
for my $i (1 .. 60)
{
	push @keys, "exchange:cache:balance:$acct:F$i";
}
push @keys, "exchange:cache:balances:$acct";
$r->admin('SET', $_, 'stale') for @keys;
$r->admin('CLIENT', 'PAUSE', '600000', 'WRITE');
# Two transactions: the first is claimed by the worker, which hangs mid-push; the second
# arrives while it hangs and stays unclaimed.
$primary->safe_psql('app',
	"BEGIN;\n" . join('', map { "SELECT exchange.deposit('$acct', 'F$_', 1);\n" } 1 .. 30) . "COMMIT;\n");
poll_until(
	sub {
		$primary->safe_psql('app',
			q{SELECT count(*) > 0 FROM exchange.outbox WHERE claimed_at IS NOT NULL}) eq 't';
	},
	'primary worker claimed rows and hangs mid-push', 30);
$primary->safe_psql('app',
	"BEGIN;\n" . join('', map { "SELECT exchange.deposit('$acct', 'F$_', 1);\n" } 31 .. 60) . "COMMIT;\n");
$primary->safe_psql('app', 'CHECKPOINT');    # flushes the worker's asynchronous claim too
$primary->wait_for_catchup($standby);
my $pending = $standby->safe_psql('app', 'SELECT count(*) FROM exchange.outbox') + 0;
cmp_ok($pending, '>=', 60, "standby replayed the undelivered outbox rows ($pending)");
is($standby->safe_psql('app', 'SELECT count(*) > 0 FROM exchange.outbox WHERE claimed_at IS NOT NULL'),
	't', 'some of them claimed by the old primary');

$primary->stop('immediate');
$r->admin('CLIENT', 'UNPAUSE');
is($r->admin('EXISTS', @keys), scalar(@keys), 'every key still in Redis after the primary died');

# ---- failover ----------------------------------------------------------------------------------
$offset = -s $standby->logfile;
$standby->promote;
is($standby->safe_psql('app', 'SELECT pg_is_in_recovery()'), 'f', 'standby promoted');
# The bound is well below the claim lease (30 s + connect + 3 x command timeout = 212 s here): the
# old primary's claims are released by the new worker at start, not retaken after the lease.
poll_until(sub { $r->admin('EXISTS', @keys) eq '0' }, 'every key deleted by the promoted node', 60);
poll_until(sub { ExchangeRedis::outbox_count($standby) == 0 }, 'outbox of the promoted node empty', 60);
$st = ExchangeRedis::status($standby);
ok($st->{worker_pid}, 'adapter_status on the promoted node: a worker');
ok($st->{redis_connected}, 'adapter_status on the promoted node: connected');
ok(!defined $st->{last_error}, 'adapter_status on the promoted node: no error') or diag(explain($st));

# The promoted node serves new commits as usual.
$r->admin('SET', "exchange:cache:balance:$acct:USD", 'stale');
$standby->safe_psql('app', qq{SELECT exchange.deposit('$acct', 'USD', 1)});
poll_until(sub { $r->admin('EXISTS', "exchange:cache:balance:$acct:USD") eq '0' },
	'a commit on the promoted node is delivered', 30);
$log = slurp_file($standby->logfile, $offset);
unlike($log, qr/\b(ERROR|FATAL|PANIC):/, 'no error in the promoted node log');

is($standby->safe_psql('app', 'SELECT count(*) FROM exchange.check_invariants()'), '0', 'ledger sound');
$standby->stop;
ExchangeRedis::password_not_logged($standby);
ExchangeRedis::password_not_logged($primary);
done_testing();
