# When the Redis user may not UNLINK, the worker deletes with DEL, and the deletion of a key
# always reaches Redis before the PUBLISH that announces it (README "Redis delivery", delivery
# order), from the first batch on, and after reconnects: the DEL fallback is learned once per
# process.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
# The shipped rule minus UNLINK.
$r->admin('ACL', 'SETUSER', 'exchange_adapter', '-unlink');
like($r->as_worker('UNLINK', 'exchange:x'), qr/NOPERM/, 'the worker user may not UNLINK');
$r->admin('ACL', 'LOG', 'RESET');

my $mon = $r->monitor;
my $sub = $r->subscribe;
my $node = $r->node(
	'delorder', conf => <<'EOF');
exchange_adapter.heartbeat_interval = '2s'
exchange_adapter.poll_interval = '200ms'
exchange_adapter.retry_backoff_max = '500ms'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected', 30);

sub q1 { $node->safe_psql('app', shift) }
my $acct = q1(q{SELECT account_id FROM exchange.create_account('order')});
my $n = 0;

sub deposits
{
	my ($count) = @_;
	for (1 .. $count)
	{
		$n++;
		$r->admin('SET', "exchange:cache:balance:$acct:D$n", 'stale');
		q1(qq{SELECT exchange.deposit('$acct', 'D$n', 1)});
	}
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "$count deposits delivered", 30);
}

# Every PUBLISH seen by MONITOR must come after a DEL (or UNLINK) naming each of its keys.
sub check_order
{
	my ($what) = @_;
	my %deleted;
	my ($pubs, $bad) = (0, 0);
	for my $c (@{ $mon->commands })
	{
		my ($cmd, @args) = @$c;
		if ($cmd eq 'DEL' || $cmd eq 'UNLINK')
		{
			$deleted{$_} = 1 for @args;
		}
		elsif ($cmd eq 'PUBLISH')
		{
			$pubs++;
			my $msg = eval { decode_json($args[1]) } or next;
			for my $k (@{ $msg->{keys} })
			{
				next if $deleted{$k};
				$bad++;
				diag("$what: PUBLISH of $k before its deletion");
			}
		}
	}
	cmp_ok($pubs, '>', 0, "$what: invalidation messages were published");
	is($bad, 0, "$what: every key was deleted before the PUBLISH announcing it");
}

deposits(5);
poll_until(sub { scalar(@{ $sub->messages }) >= 5 }, 'subscriber got the messages', 10);
check_order('first batches');
is($r->admin('EXISTS', map { "exchange:cache:balance:$acct:D$_" } 1 .. $n), '0', 'keys deleted with DEL');

# Reconnects do not forget the fallback: UNLINK is refused once in the life of the worker.
for my $round (1 .. 3)
{
	$mon->clear;
	$r->admin('CLIENT', 'KILL', 'USER', 'exchange_adapter');
	deposits(3);
	check_order("after reconnect $round");
}
my $unlinks = 0;
my @acl = split /\n/, $r->admin('ACL', 'LOG');
for my $i (0 .. $#acl - 1)
{
	next unless $acl[$i] eq 'object' && $acl[ $i + 1 ] eq 'unlink';
	for my $k (reverse(($i > 20 ? $i - 20 : 0) .. $i))
	{
		if ($acl[$k] eq 'count') { $unlinks += $acl[ $k + 1 ]; last; }
	}
}
is($unlinks, 1, 'UNLINK refused once, not again after each reconnect');
my $log = slurp_file($node->logfile);
my $w = () = $log =~ /WARNING:  Redis refused UNLINK/g;
is($w, 1, 'the UNLINK refusal is logged once');
like(ExchangeRedis::status($node)->{last_error} // '', qr/UNLINK refused, using DEL/,
	'adapter_status shows the fallback in force');
is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0', 'invariants hold');

$mon->stop;
$sub->stop;
$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();
