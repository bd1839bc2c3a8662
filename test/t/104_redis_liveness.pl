# README "Redis delivery", with Redis hung (a silent TCP listener: connects complete, nothing is
# ever answered): pg_ctl stop -m fast returns within 5 s; DROP DATABASE of an unrelated database
# returns within 2 s; after pg_terminate_backend(worker) a new worker appears within its restart
# time (1 s) + 1 s; a plain DROP DATABASE of the served database fails like any connected
# session (55006); DROP DATABASE ... WITH (FORCE) succeeds, the log then shows at most 2 lines
# about the missing database over 60 s, and after CREATE DATABASE + CREATE EXTENSION a committed
# deposit is delivered.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $silent = ExchangeRedis::silent_listener();
my $hung_url = "redis://exchange_adapter\@127.0.0.1:$silent->{port}";

my $node = $r->node(
	'liveness', conf => <<'EOF');
exchange_adapter.redis_command_timeout = '10s'
exchange_adapter.redis_connect_timeout = '10s'
exchange_adapter.retry_backoff_max = '1s'
exchange_adapter.poll_interval = '200ms'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected', 30);

sub point_redis_at
{
	my ($url) = @_;
	$node->append_conf('postgresql.conf', "exchange_adapter.redis_url = '$url'\n");
	$node->reload;
}

# Hang Redis: the worker sits in a wait for a reply that never comes.
sub hang
{
	point_redis_at($hung_url);
	my $acct = $node->safe_psql('app', q{SELECT account_id FROM exchange.create_account('hang-' || pg_catalog.gen_random_uuid())});
	$node->safe_psql('app', qq{SELECT exchange.deposit('$acct', 'USD', 1)});
	poll_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT state = 'active' AND query IN ('connecting to Redis') FROM pg_stat_activity WHERE backend_type = 'exchange_adapter worker'}) eq 't'
			  && ExchangeRedis::status($node)->{redis_connected} == 0;
		},
		'worker waiting on the hung Redis', 30);
	usleep(500_000);
}

hang();

# ---- DROP DATABASE of an unrelated database ----------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE unrelated');
{
	my ($secs, $rc, $out, $err) = ExchangeRedis::timed_psql($node, 'postgres', 'DROP DATABASE unrelated');
	is($rc, 0, 'DROP DATABASE unrelated succeeds') or diag($err);
	cmp_ok($secs, '<', 2, sprintf('DROP DATABASE unrelated returns in %.3f s (< 2 s)', $secs));
}

# ---- pg_terminate_backend(worker): a new one within restart time + 1 s -------------------------
{
	my $pid = ExchangeRedis::worker_pid($node);
	my $t0 = time();
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	my $new;
	while (time() - $t0 < 10)
	{
		$new = ExchangeRedis::worker_pid($node);
		last if $new && $new != $pid;
		usleep(20_000);
	}
	my $secs = time() - $t0;
	ok($new && $new != $pid, 'a new worker after pg_terminate_backend');
	cmp_ok($secs, '<', 2, sprintf('new worker after %.3f s (restart time 1 s + 1 s)', $secs));
}

# ---- plain DROP DATABASE of the served database: 55006 after 5 s -------------------------------
{
	my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app',
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	isnt($rc, 0, 'plain DROP DATABASE of the served database fails');
	like($err, qr/55006|being accessed by other users/, 'with 55006 (object in use)');
}

# ---- DROP DATABASE app WITH (FORCE), then 60 s of log ------------------------------------------
{
	my $offset = -s $node->logfile;
	my ($secs, $rc, $out, $err) =
	  ExchangeRedis::timed_psql($node, 'postgres', 'DROP DATABASE app WITH (FORCE)');
	is($rc, 0, 'DROP DATABASE app WITH (FORCE) succeeds') or diag($err);
	diag(sprintf('DROP DATABASE WITH (FORCE) took %.3f s', $secs));
	sleep(60);
	my $log = slurp_file($node->logfile, $offset);
	my @lines = grep { /"app"|exchange_adapter\.database/ && !/statement:/ } split /\n/, $log;
	diag("log lines about the missing database:\n" . join("\n", @lines));
	cmp_ok(scalar @lines, '<=', 2, 'at most 2 log lines about the missing database over 60 s');
	is(ExchangeRedis::worker_pid($node), undef, 'no worker while the database is missing');
	unlike($log, qr/database .*app.* does not exist.*\n.*\n.*database .*app.* does not exist/s,
		'no repeated FATAL');
}

# ---- recreate: a committed deposit is delivered -----------------------------------------------
point_redis_at($r->url);
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', 'CREATE EXTENSION exchange_adapter');
ok(ExchangeRedis::wait_worker($node, 10), 'worker started for the recreated database');
{
	my $acct = $node->safe_psql('app', q{SELECT account_id FROM exchange.create_account('again')});
	$r->admin('SET', "exchange:cache:balance:$acct:USD", 'stale');
	$node->safe_psql('app', qq{SELECT exchange.deposit('$acct', 'USD', 5)});
	poll_until(sub { $r->admin('EXISTS', "exchange:cache:balance:$acct:USD") eq '0' },
		'deposit in the recreated database delivered', 30);
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'outbox empty', 30);
}

# ---- pg_ctl stop -m fast with Redis hung --------------------------------------------------------
hang();
{
	my $t0 = time();
	$node->stop('fast');
	my $secs = time() - $t0;
	cmp_ok($secs, '<', 5, sprintf('pg_ctl stop -m fast returns in %.3f s (< 5 s)', $secs));
}
close($silent->{socket});
ExchangeRedis::password_not_logged($node);
done_testing();
