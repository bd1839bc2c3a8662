# README "Redis delivery": PostgreSQL stopped with -m immediate while deliveries are pending
# (some of them claimed, mid-push), and a worker killed mid-batch (SIGKILL, which makes the
# postmaster reset every backend, and SIGTERM): nothing is lost, everything is delivered after
# the restart.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $node = $r->node(
	'crash', conf => <<'EOF');
exchange_adapter.redis_command_timeout = '60s'
exchange_adapter.retry_backoff_max = '1s'
exchange_adapter.poll_interval = '200ms'
exchange_adapter.outbox_batch_size = 50
restart_after_crash = on
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected', 30);

my $acct = $node->safe_psql('app', q{SELECT account_id FROM exchange.create_account('crash')});
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'setup delivered', 30);

my $round = 0;

# Commits COUNT deposits in distinct assets with their stale keys set in Redis first, while
# Redis is paused, so that the worker claims a batch and hangs mid-push. Returns the keys.
sub pending_mid_push
{
	my ($count) = @_;
	$round++;
	my @keys = map { "exchange:cache:balance:$acct:R${round}X$_" } 1 .. $count;
	$r->admin('SET', $_, 'stale') for @keys;
	$r->admin('CLIENT', 'PAUSE', '600000', 'WRITE');
	$node->safe_psql('app',
		"BEGIN;\n"
		  . join('', map { "SELECT exchange.deposit('$acct', 'R${round}X$_', 1);\n" } 1 .. $count)
		  . "COMMIT;\n");
	# The worker has claimed a batch and is waiting for Redis's replies.
	poll_until(
		sub {
			$node->safe_psql('app',
				q{SELECT count(*) > 0 FROM exchange.outbox WHERE claimed_at IS NOT NULL}) eq 't'
			  && $node->safe_psql('postgres',
				q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'exchange_adapter worker' AND query LIKE 'pushing%' AND state = 'active'}) eq '1';
		},
		"round $round: worker mid-push with claimed rows",
		30);
	return @keys;
}

sub all_delivered
{
	my ($what, @keys) = @_;
	$r->admin('CLIENT', 'UNPAUSE');
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "$what: outbox empty", 60);
	is($r->admin('EXISTS', @keys), '0', "$what: all " . scalar(@keys) . ' keys deleted');
}

# ---- pg_ctl stop -m immediate with a batch claimed and more pending ---------------------------
{
	my @keys = pending_mid_push(120);
	$node->stop('immediate');
	$r->admin('CLIENT', 'UNPAUSE');
	$node->start;
	all_delivered('stop -m immediate, restart', @keys);
}

# ---- worker killed with SIGKILL mid-batch (postmaster resets all backends) ---------------------
{
	my @keys = pending_mid_push(120);
	my $pid = ExchangeRedis::worker_pid($node);
	kill 'KILL', $pid;
	$r->admin('CLIENT', 'UNPAUSE');
	poll_until(sub { my $p = ExchangeRedis::worker_pid($node); $p && $p != $pid },
		'a new worker after the crash restart', 60);
	all_delivered('worker SIGKILLed mid-batch', @keys);
}

# ---- worker terminated (SIGTERM) mid-batch: the launcher restarts it --------------------------
{
	my @keys = pending_mid_push(120);
	my $pid = ExchangeRedis::worker_pid($node);
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	poll_until(sub { my $p = ExchangeRedis::worker_pid($node); $p && $p != $pid },
		'a new worker after pg_terminate_backend', 30);
	all_delivered('worker terminated mid-batch', @keys);
}

is($node->safe_psql('app', 'SELECT count(*) FROM exchange.check_invariants()'), '0', 'ledger sound');
$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();
