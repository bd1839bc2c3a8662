# README "Redis delivery": under the original stricter ACL (docker/redis/users-strict.acl: no
# PUBLISH, PING or MULTI) keys are deleted, registrations written (two SETs instead of
# MULTI/EXEC) and discoverable, and each refusal is reported once (log and adapter_status),
# never retried in a loop.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start(strict => 1);
is($r->as_worker('PUBLISH', 'exchange:invalidations', 'x') =~ /NOPERM/ ? 1 : 0, 1,
	'strict ACL: the worker user may not PUBLISH');
like($r->as_worker('PING'), qr/NOPERM/, 'strict ACL: nor PING');
$r->admin('ACL', 'LOG', 'RESET');    # count the worker's attempts only

my $node = $r->node(
	'acl', conf => <<'EOF');
exchange_adapter.heartbeat_interval = '2s'
exchange_adapter.poll_interval = '200ms'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected under the strict ACL', 30);

my $acct = $node->safe_psql('app', q{SELECT account_id FROM exchange.create_account('strict')});
my @keys;
for my $i (1 .. 20)
{
	push @keys, "exchange:cache:balance:$acct:S$i";
	$r->admin('SET', $keys[-1], 'stale');
	$node->safe_psql('app', qq{SELECT exchange.deposit('$acct', 'S$i', 1)});
}
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'deliveries complete without PUBLISH', 30);
is($r->admin('EXISTS', @keys), '0', 'keys deleted under the strict ACL');

$node->safe_psql('app', q{SELECT exchange.register_service('svc-s', 'orders', '10.0.0.9', 7000, '1')});
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-s', 'exchange:heartbeat:svc-s') eq '2' },
	'registration written with two SETs', 30);
cmp_ok($r->admin('PTTL', 'exchange:service:svc-s'), '>', 0, 'with its expiry');
is($node->safe_psql('app', q{SELECT service_id || ':' || port FROM exchange.discover_services('orders')}),
	'svc-s:7000', 'discoverable under the strict ACL (SCAN + MGET)');
$r->admin('FLUSHALL');
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-s') eq '1' },
	're-applied after FLUSHALL without MULTI', 10);

# Several heartbeat intervals of work: refusals are not retried in a loop.
my %before = acl_denials();
sleep(5);
for my $i (21 .. 30)
{
	$node->safe_psql('app', qq{SELECT exchange.deposit('$acct', 'S$i', 1)});
}
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'more deliveries', 30);

my %after = acl_denials();
diag('ACL LOG denials: before ' . join(', ', map { "$_=$before{$_}" } sort keys %before)
	  . '; after ' . join(', ', map { "$_=$after{$_}" } sort keys %after));
for my $cmd (qw(publish ping multi))
{
	# One refused batch may carry several PUBLISHes (one per transaction) in its pipeline;
	# what must not happen is a retry: no more attempts once the refusal is known.
	cmp_ok($before{$cmd} // 0, '>=', 1, "$cmd was attempted and refused");
	is($after{$cmd}, $before{$cmd}, "$cmd not attempted again over several heartbeats and deliveries");
}

my $log = slurp_file($node->logfile);
for my $cmd (qw(PUBLISH PING MULTI))
{
	my $n = () = $log =~ /WARNING:  Redis refused $cmd: NOPERM/g;
	is($n, 1, "refusal of $cmd reported once in the log");
}
my $st = ExchangeRedis::status($node);
diag('adapter_status.last_error = ' . ($st->{last_error} // 'NULL'));
like($st->{last_error}, qr/PUBLISH refused/, 'adapter_status reports the PUBLISH refusal');
like($st->{last_error}, qr/PING refused/, '... the PING refusal');
like($st->{last_error}, qr/MULTI refused/, '... and the MULTI refusal');
ok($st->{redis_connected}, 'and is connected');
is($st->{failed_pushes}, 0, 'no push failed');

$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();

# Denied commands in Redis's ACL LOG: { command => count }.
sub acl_denials
{
	my %denied;
	my @lines = split /\n/, $r->admin('ACL', 'LOG');
	for my $i (0 .. $#lines - 1)
	{
		next unless $lines[$i] eq 'object';
		my $obj = $lines[ $i + 1 ];
		# the entry's count is the value after the "count" field of the same entry
		for my $k ($i - 20 .. $i)
		{
			next if $k < 0;
			if ($lines[$k] eq 'count') { $denied{$obj} = $lines[ $k + 1 ]; }
		}
	}
	return %denied;
}
