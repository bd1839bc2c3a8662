# README "Redis delivery": with Redis refusing, down or hung (CLIENT PAUSE, and a silent TCP
# listener), and redis_command_timeout at 10 s, every trading call still returns in under 1 s;
# the outbox grows and adapter_status() says why; when Redis is back every key is delivered and
# the outbox is empty.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $node = $r->node(
	'outage', conf => <<'EOF');
exchange_adapter.redis_command_timeout = '10s'
exchange_adapter.redis_connect_timeout = '10s'
exchange_adapter.retry_backoff_max = '1s'
exchange_adapter.poll_interval = '200ms'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected', 30);

my $acct = $node->safe_psql('app', q{SELECT account_id FROM exchange.create_account('trader')});
$node->safe_psql('app', qq{SELECT exchange.set_kyc_status('$acct', 'APPROVED')});
$node->safe_psql('app', q{SELECT exchange.create_market('BTC-USD', 'BTC', 'USD')});
$node->safe_psql('app', qq{SELECT exchange.deposit('$acct', 'USD', 1000000)});
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'setup delivered', 30);

# Trading calls while Redis misbehaves: each one (a psql session: connect, call, commit) must
# return in under 1 s. Returns the assets deposited, whose keys must be deleted later.
my $n = 0;
sub trade_during
{
	my ($what) = @_;
	my $slowest = 0;
	my @assets;
	for my $i (1 .. 5)
	{
		$n++;
		my $asset = "A$n";
		push @assets, $asset;
		for my $sql (
			qq{SELECT exchange.deposit('$acct', '$asset', 1)},
			qq{SELECT exchange.place_order('$acct', 'BTC-USD', 'BUY', 'LIMIT', 0.01, 100)},
			qq{BEGIN; SELECT exchange.withdraw('$acct', '$asset', 0.5); COMMIT;})
		{
			my ($secs, $rc, $out, $err) = ExchangeRedis::timed_psql($node, 'app', $sql);
			die "call failed during $what: $err" if $rc != 0;
			$slowest = $secs if $secs > $slowest;
		}
	}
	cmp_ok($slowest, '<', 1, sprintf('%s: 15 trading calls, slowest %.3f s', $what, $slowest));
	return @assets;
}

sub scenario
{
	my (%s) = @_;
	my $what = $s{name};
	my $before = ExchangeRedis::outbox_count($node);
	$s{break}->();
	usleep(300_000);
	my @assets = trade_during($what);
	cmp_ok(ExchangeRedis::outbox_count($node), '>=', $before + 15, "$what: the outbox grows");

	my $st;
	poll_until(
		sub {
			$st = ExchangeRedis::status($node);
			!$st->{redis_connected} && ($st->{last_error} // '') =~ $s{why};
		},
		"$what: adapter_status says why",
		30);
	diag("$what: last_error = " . ($st->{last_error} // 'NULL'));
	cmp_ok($st->{outbox_pending}, '>=', 15, "$what: adapter_status shows the backlog");

	# Keys that must be gone once Redis is back (set now when Redis answers, else after).
	my @keys = map { "exchange:cache:balance:$acct:$_" } @assets;
	$s{fix}->();
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "$what: outbox empty after recovery", 60);
	is($r->admin('EXISTS', @keys), '0', "$what: every key delivered");
	poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, "$what: connected again", 30);
	poll_until(sub { !defined ExchangeRedis::status($node)->{last_error} },
		"$what: last_error cleared once delivery works again", 30);
}

# Stale keys present before each outage, for the deposits to come.
sub preset
{
	for my $i ($n + 1 .. $n + 5)
	{
		$r->admin('SET', "exchange:cache:balance:$acct:A$i", 'stale');
	}
}

# ---- refusing: the worker's user is disabled (AUTH refused) ----------------------------------
preset();
scenario(
	name  => 'Redis refusing (user disabled)',
	break => sub {
		$r->admin('ACL', 'SETUSER', 'exchange_adapter', 'off');
		$r->admin('CLIENT', 'KILL', 'USER', 'exchange_adapter');
	},
	why => qr/AUTH|WRONGPASS|NOAUTH/,
	fix => sub { $r->admin('ACL', 'SETUSER', 'exchange_adapter', 'on') });

# ---- down: the server is stopped (connection refused), restarted with its data --------------
preset();
scenario(
	name  => 'Redis down',
	break => sub {
		$r->admin('SHUTDOWN', 'SAVE');    # keep the stale keys for after the restart
		$r->stop;
	},
	why => qr/could not connect|Connection refused|lost/i,
	fix => sub { $r->restart });

# ---- hung: CLIENT PAUSE ALL (connections accepted, nothing answered) -------------------------
preset();
my $pause_until;
scenario(
	name  => 'Redis hung (CLIENT PAUSE)',
	break => sub {
		$r->admin('CLIENT', 'PAUSE', '25000', 'ALL');
		$pause_until = time() + 25;
	},
	why => qr/within \d+ ms|timed out/,
	fix => sub { usleep(1_000_000 * ($pause_until - time())) if time() < $pause_until });

# ---- hung: a silent TCP listener (accepts, never answers) ------------------------------------
preset();
my $silent = ExchangeRedis::silent_listener();
scenario(
	name  => 'silent TCP listener',
	break => sub {
		$node->append_conf('postgresql.conf',
			"exchange_adapter.redis_url = 'redis://exchange_adapter\@127.0.0.1:$silent->{port}'\n");
		$node->reload;
	},
	why => qr/127\.0\.0\.1:$silent->{port}.*(timed out|within \d+ ms)/,
	fix => sub {
		$node->append_conf('postgresql.conf', "exchange_adapter.redis_url = '" . $r->url . "'\n");
		$node->reload;
	});
close($silent->{socket});

my $st = ExchangeRedis::status($node);
cmp_ok($st->{failed_pushes} + 0, '>=', 0, 'failed_pushes reported');
is($node->safe_psql('app', 'SELECT count(*) FROM exchange.check_invariants()'), '0', 'ledger sound');

$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();
