# The registry against what others write and against two deliverers (README "Redis delivery",
# service registry):
# - discover_services() skips malformed registrations (not JSON, not an object, nested too deep,
#   fields of the wrong type, timestamps that are not RFC 3339 such as "now" or "infinity"),
#   counts them in one NOTICE, and still lists the good ones;
# - the worker and flush_outbox delivering the same service never leave Redis announcing a
#   service the table no longer has: a deliverer whose push is slow (its connection to Redis
#   goes through a proxy that delays what it sends) while the other delivers the
#   deregistration, whether the slow push is a batch or the periodic re-application.
use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;

# ---- a proxy that delays what its first client sends by DELAY seconds -----------------------
my $delay = 0.6;
my $proxy_port = PostgreSQL::Test::Cluster::get_free_port();
my $listen = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => $proxy_port,
	Proto     => 'tcp',
	Listen    => 16,
	ReuseAddr => 1) or die "cannot listen on $proxy_port: $!";
my $proxy_pid = fork();
die "fork: $!" unless defined $proxy_pid;
if ($proxy_pid == 0)
{
	proxy_main();
	exit(0);
}
close($listen);
END { kill('KILL', $proxy_pid) if $proxy_pid; }

my $node = $r->node(
	'robust', conf => <<"EOF");
exchange_adapter.heartbeat_interval = '2s'
exchange_adapter.poll_interval = '200ms'
exchange_adapter.retry_backoff_max = '500ms'
exchange_adapter.redis_command_timeout = '10s'
exchange_adapter.redis_url = 'redis://exchange_adapter\@127.0.0.1:$proxy_port'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected through the proxy', 30);

sub q1 { $node->safe_psql('app', shift) }

# ---- malformed registrations ----------------------------------------------------------------
my $good = '{"ServiceName":"matching","ServiceID":"go-1","Address":"10.1.1.1","Port":9000,'
  . '"Version":"2.3.4","Metadata":{"region":"us"},'
  . '"RegisteredAt":"2024-05-01T10:00:00.5+02:00","LastHeartbeat":"2024-05-01T10:00:30Z"}';
$r->admin('SET', 'exchange:service:go-1', $good);
my %bad = (
	'not-json'     => '{not json',
	'string'       => '"orders"',
	'array'        => '[1,2]',
	'port-string'  => '{"ServiceName":"matching","ServiceID":"b1","Port":"9000"}',
	'name-number'  => '{"ServiceName":5,"ServiceID":"b2","Port":9000}',
	'meta-nested'  => '{"ServiceName":"matching","ServiceID":"b3","Metadata":{"a":{"b":"c"}}}',
	'meta-number'  => '{"ServiceName":"matching","ServiceID":"b4","Metadata":{"a":1}}',
	'hb-now'       => '{"ServiceName":"matching","ServiceID":"b5","LastHeartbeat":"now"}',
	'hb-infinity'  => '{"ServiceName":"matching","ServiceID":"b6","LastHeartbeat":"infinity"}',
	'reg-epoch'    => '{"ServiceName":"matching","ServiceID":"b7","RegisteredAt":"epoch"}',
	'hb-space'     => '{"ServiceName":"matching","ServiceID":"b8","LastHeartbeat":"2024-05-01 10:00:30"}',
	'hb-no-zone'   => '{"ServiceName":"matching","ServiceID":"b9","LastHeartbeat":"2024-05-01T10:00:30"}',
	'hb-month-13'  => '{"ServiceName":"matching","ServiceID":"b10","LastHeartbeat":"2024-13-01T10:00:30Z"}',
	'hb-number'    => '{"ServiceName":"matching","ServiceID":"b11","LastHeartbeat":1714557630}',
);
$r->admin('SET', "exchange:service:$_", $bad{$_}) for keys %bad;
# Deeply nested, inside an otherwise good object (built with APPEND: one argument is limited).
$r->admin('SET', 'exchange:service:deep', '{"ServiceName":"matching","ServiceID":"deep","Extra":');
$r->admin('APPEND', 'exchange:service:deep', '[' x 100_000);
$r->admin('APPEND', 'exchange:service:deep', ']' x 100_000);
$r->admin('APPEND', 'exchange:service:deep', '}');
my $nbad = scalar(keys %bad) + 1;

my ($rc, $out, $err) = $node->psql('app',
	q{SELECT service_id || '|' || port || '|' || metadata::text || '|' || (registered_at AT TIME ZONE 'UTC')
	  || '|' || (last_heartbeat AT TIME ZONE 'UTC') FROM exchange.discover_services('matching')});
is($rc, 0, 'discover_services succeeds with malformed and deeply nested values around');
is($out, 'go-1|9000|{"region": "us"}|2024-05-01 08:00:00.5|2024-05-01 10:00:30',
	'the good registration is listed (RFC 3339 with fraction and offset)');
like($err, qr/NOTICE:  discover_services skipped $nbad malformed service registrations/,
	"one NOTICE counts the $nbad malformed ones");
my $notices = () = $err =~ /NOTICE/g;
is($notices, 1, 'exactly one NOTICE');
is(($node->psql('app', q{SELECT count(*) FROM exchange.discover_services()}))[1] // '', '1',
	'unfiltered: only the good one');
$r->admin('DEL', 'exchange:service:go-1', 'exchange:service:deep', map { "exchange:service:$_" } keys %bad);

# ---- two deliverers -------------------------------------------------------------------------
# The worker's connection (the proxy's first client) is slow: it has read "live" and its SET is
# on the way when the deregistration commits and flush_outbox, in another session, delivers it.
my $stale = 0;
for my $i (1 .. 6)
{
	my $id = "svc-race-$i";
	q1(qq{SELECT exchange.register_service('$id', 'race', '10.0.0.1', 7000)});
	# Let the worker claim the registration and start its (slow) push.
	poll_until(sub { q1(q{SELECT count(*) FROM exchange.outbox WHERE claimed_at IS NOT NULL}) ne '0' },
		"worker claimed the registration of $id", 10);
	q1(qq{SELECT exchange.deregister_service('$id')});
	q1(q{SELECT exchange.flush_outbox()});
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "outbox empty after cycle $i", 30);
	sleep($delay * 2);
	my $exists = $r->admin('EXISTS', "exchange:service:$id", "exchange:heartbeat:$id");
	$stale++ if $exists ne '0';
	is($exists, '0', "$id: deregistered in the table, absent from Redis");
}

# The same race with the worker's periodic re-application (heartbeat_interval) in flight.
for my $i (1 .. 3)
{
	my $id = "svc-hb-$i";
	q1(qq{SELECT exchange.register_service('$id', 'race', '10.0.0.3', 7002)});
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "$id registered", 30);
	poll_until(
		sub {
			q1(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'exchange_adapter worker'
				   AND query = 're-applying service registrations'}) eq '1';
		},
		"worker re-applying registrations ($id)", 30);
	q1(qq{SELECT exchange.deregister_service('$id')});
	q1(q{SELECT exchange.flush_outbox()});
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "outbox empty ($id)", 30);
	sleep($delay * 2);
	is($r->admin('EXISTS', "exchange:service:$id", "exchange:heartbeat:$id"), '0',
		"$id: deregistered while the heartbeat was in flight, absent from Redis");
}

# Many cycles with both deliverers racing freely (no waits between the steps).
my $h = $node->background_psql('app');
for my $i (1 .. 40)
{
	my $id = 'svc-free-' . ($i % 5);
	$h->query_safe(qq{SELECT exchange.register_service('$id', 'race', '10.0.0.2', 7001)});
	$h->query_safe(q{SELECT exchange.flush_outbox()}) if $i % 3 == 0;
	$h->query_safe(qq{SELECT exchange.deregister_service('$id')}) if $i % 2 == 0;
	$h->query_safe(q{SELECT exchange.flush_outbox()}) if $i % 2 == 1;
}
$h->quit;
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'outbox empty after the free race', 30);
sleep($delay * 2);
my %live = map { $_ => 1 } split /\n/, q1(q{SELECT service_id FROM exchange.services WHERE service_id LIKE 'svc-free-%'});
for my $k (0 .. 4)
{
	my $id = "svc-free-$k";
	is($r->admin('EXISTS', "exchange:service:$id"), $live{$id} ? '1' : '0',
		"$id: Redis matches the table (" . ($live{$id} ? 'live' : 'absent') . ')');
}
is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0', 'invariants hold');

$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();

# The proxy: accepts clients, connects each to Redis; bytes from the first client wait $delay
# seconds before they are forwarded, everything else passes at once.
sub proxy_main
{
	my $sel = IO::Select->new($listen);
	my %peer;       # fileno -> peer socket
	my %slow;       # fileno of the first client's socket -> 1
	my @queue;      # [time due, socket to, data]
	my $first = 1;
	while (1)
	{
		my $now = time();
		while (@queue && $queue[0][0] <= $now)
		{
			my $q = shift @queue;
			syswrite($q->[1], $q->[2]) if $q->[1]->connected;
		}
		my $wait = @queue ? $queue[0][0] - $now : 0.2;
		$wait = 0.001 if $wait < 0.001;
		for my $s ($sel->can_read($wait))
		{
			if ($s == $listen)
			{
				my $c = $listen->accept or next;
				my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $r->port, Proto => 'tcp')
				  or do { close $c; next };
				$peer{ fileno($c) } = $u;
				$peer{ fileno($u) } = $c;
				$slow{ fileno($c) } = 1 if $first;
				$first = 0;
				$sel->add($c, $u);
				next;
			}
			my $to = $peer{ fileno($s) };
			my $buf;
			my $n = sysread($s, $buf, 65536);
			if (!$n)
			{
				$sel->remove($s, $to);
				delete $peer{ fileno($s) };
				delete $peer{ fileno($to) } if $to;
				delete $slow{ fileno($s) };
				close $s;
				close $to if $to;
				next;
			}
			if ($slow{ fileno($s) })
			{
				push @queue, [ time() + $delay, $to, $buf ];
			}
			else
			{
				syswrite($to, $buf);
			}
		}
	}
}
