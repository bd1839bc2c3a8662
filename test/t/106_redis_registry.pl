# README "Redis delivery": the service registry.
#
# JSON keys, PX and heartbeat as README "Redis delivery"; heartbeat rewrites LastHeartbeat;
# after FLUSHALL a live registration reappears within one heartbeat interval, a deregistered or
# expired one does not; register -> deregister -> register with Redis down, then Redis back (and
# again with the worker killed mid-batch) ends in the final table state; an expired heartbeat is
# not re-announced; discovery lists an instance written directly in the Go layout. Also
# self-registration, argument checks, discover_services and flush_outbox failures (LX011) and
# cancellation, and flush_outbox in a database the worker does not serve.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $node = $r->node(
	'registry', conf => <<'EOF');
exchange_adapter.heartbeat_interval = '2s'
exchange_adapter.retry_backoff_max = '500ms'
exchange_adapter.poll_interval = '200ms'
exchange_adapter.redis_command_timeout = '10s'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected', 30);

sub q1 { $node->safe_psql('app', shift) }
sub delivered { poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, shift, 30) }
sub get_json { my $v = $r->admin('GET', shift); return $v eq '' ? undef : decode_json($v) }

my $rfc3339 = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

# ---- layout ---------------------------------------------------------------------------------
q1(q{SELECT exchange.register_service('svc-a', 'orders', '10.0.0.1', 8080, '1.0', '{"zone": "eu"}')});
delivered('registration delivered');
my $j = get_json('exchange:service:svc-a');
ok($j, 'exchange:service:svc-a written');
is($j->{ServiceName}, 'orders', 'ServiceName');
is($j->{ServiceID}, 'svc-a', 'ServiceID');
is($j->{Address}, '10.0.0.1', 'Address');
is($j->{Port}, 8080, 'Port');
ok(!ref($j->{Port}) && $r->admin('GET', 'exchange:service:svc-a') =~ /"Port"\s*:\s*8080[,}\s]/, 'Port is a JSON number');
is($j->{Version}, '1.0', 'Version');
is_deeply($j->{Metadata}, { zone => 'eu' }, 'Metadata: flat object of strings');
like($j->{RegisteredAt}, $rfc3339, 'RegisteredAt is RFC 3339 UTC');
like($j->{LastHeartbeat}, $rfc3339, 'LastHeartbeat is RFC 3339 UTC');
my $hb = $r->admin('GET', 'exchange:heartbeat:svc-a');
is($hb, q1(q{SELECT floor(extract(epoch FROM last_heartbeat))::bigint FROM exchange.services WHERE service_id = 'svc-a'}),
	'heartbeat key holds the Unix seconds of last_heartbeat');
my $pttl = $r->admin('PTTL', 'exchange:service:svc-a');
cmp_ok($pttl, '>', 80_000, "service key PX ~ ttl 90 s ($pttl ms)");
cmp_ok($pttl, '<=', 90_000, 'service key PX at most the ttl');
cmp_ok($r->admin('PTTL', 'exchange:heartbeat:svc-a'), '>', 80_000, 'heartbeat key expires too');

# ---- heartbeat rewrites LastHeartbeat -------------------------------------------------------
usleep(1_100_000);
q1(q{SELECT exchange.heartbeat_service('svc-a')});
delivered('heartbeat delivered');
my $j2 = get_json('exchange:service:svc-a');
isnt($j2->{LastHeartbeat}, $j->{LastHeartbeat}, 'heartbeat rewrote LastHeartbeat');
is($j2->{RegisteredAt}, $j->{RegisteredAt}, 'RegisteredAt unchanged by a heartbeat');
cmp_ok($r->admin('GET', 'exchange:heartbeat:svc-a'), '>', $hb, 'heartbeat key advanced');

# ---- deregistered and expired registrations -------------------------------------------------
q1(q{SELECT exchange.register_service('svc-b', 'orders', '10.0.0.2', 8081)});
q1(q{SELECT exchange.register_service('svc-c', 'orders', '10.0.0.3', 8082, ttl => '3 seconds')});
delivered('svc-b and svc-c registered');
is($r->admin('EXISTS', 'exchange:service:svc-b', 'exchange:service:svc-c'), '2', 'svc-b and svc-c in Redis');
is(q1(q{SELECT exchange.deregister_service('svc-b')}), 't', 'deregister_service returns true');
delivered('deregistration delivered');
is($r->admin('EXISTS', 'exchange:service:svc-b', 'exchange:heartbeat:svc-b'), '0', 'deregistered: both keys deleted');
is(q1(q{SELECT exchange.deregister_service('svc-b')}), 'f', 'deregistering again returns false');
is(ExchangeRedis::outbox_count($node), 0, '... and writes no outbox row');

# svc-c expires in Redis by its PX, and is never re-announced.
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-c') eq '0' }, 'svc-c expires after its ttl', 10);
sleep(5);    # two heartbeat intervals and more
is($r->admin('EXISTS', 'exchange:service:svc-c', 'exchange:heartbeat:svc-c'), '0',
	'an expired registration is not re-announced by the heartbeat');

# ---- FLUSHALL: the live registration comes back within one heartbeat interval ---------------
$r->admin('FLUSHALL');
my $t0 = time();
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-a') eq '1' }, 'svc-a back after FLUSHALL', 10);
my $back = time() - $t0;
cmp_ok($back, '<=', 2.5, sprintf('within one heartbeat interval (2 s): %.2f s', $back));
is($r->admin('EXISTS', 'exchange:heartbeat:svc-a'), '1', 'its heartbeat key too');
cmp_ok($r->admin('PTTL', 'exchange:service:svc-a'), '>', 0, 'with its remaining lifetime as PX');
sleep(3);
is($r->admin('EXISTS', 'exchange:service:svc-b', 'exchange:service:svc-c'), '0',
	'the deregistered and the expired one stay away after FLUSHALL');

# ---- self-registration ----------------------------------------------------------------------
$node->append_conf('postgresql.conf', <<'EOF');
exchange_adapter.service_id = 'pg-ledger-1'
exchange_adapter.service_name = 'ledger'
exchange_adapter.service_address = '10.9.9.9'
exchange_adapter.service_port = 5432
EOF
$node->reload;
poll_until(sub { $r->admin('EXISTS', 'exchange:service:pg-ledger-1') eq '1' }, 'self-registration written', 10);
my $self = get_json('exchange:service:pg-ledger-1');
is_deeply([ @$self{qw(ServiceName ServiceID Address Port)} ], [ 'ledger', 'pg-ledger-1', '10.9.9.9', 5432 ],
	'self-registration in the Go layout');
is($self->{Metadata}{database}, 'app', 'self-registration names the database');

# ---- register -> deregister -> register with Redis down, then back --------------------------
$r->admin('SHUTDOWN', 'NOSAVE');
$r->stop;
q1(q{SELECT exchange.register_service('svc-d', 'orders', '10.0.0.4', 1111, 'v1')});
q1(q{SELECT exchange.deregister_service('svc-d')});
q1(q{SELECT exchange.register_service('svc-d', 'orders', '10.0.0.4', 2222, 'v2')});
q1(q{SELECT exchange.register_service('svc-e', 'orders', '10.0.0.5', 1111)});
q1(q{SELECT exchange.deregister_service('svc-e')});
cmp_ok(ExchangeRedis::outbox_count($node), '>=', 5, 'registry rows wait while Redis is down');
$r->restart;
delivered('registry rows delivered after Redis is back');
my $d = get_json('exchange:service:svc-d');
is_deeply([ $d->{Port}, $d->{Version} ], [ 2222, 'v2' ], 'svc-d ends in its final table state (v2)');
is($r->admin('EXISTS', 'exchange:service:svc-e'), '0', 'svc-e ends deregistered');
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-a') eq '1' }, 'svc-a re-applied on the empty Redis', 10);

# ---- the same with the worker killed mid-batch ----------------------------------------------
# A long heartbeat interval for this part, so that the blocked push is a batch, not a heartbeat.
$node->append_conf('postgresql.conf', "exchange_adapter.heartbeat_interval = '60s'\n");
$node->reload;
sleep(3);
$r->admin('CLIENT', 'PAUSE', '600000', 'WRITE');
q1(q{BEGIN; SELECT exchange.register_service('svc-f', 'orders', '10.0.0.6', 1, 'v1'); SELECT exchange.deregister_service('svc-d'); COMMIT;});
poll_until(
	sub {
		$node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'exchange_adapter worker' AND state = 'active' AND query LIKE 'pushing%'}) eq '1';
	},
	'worker mid-push', 30);
q1(q{SELECT exchange.deregister_service('svc-f')});
q1(q{SELECT exchange.register_service('svc-f', 'orders', '10.0.0.6', 3333, 'v3')});
q1(q{SELECT exchange.register_service('svc-d', 'orders', '10.0.0.4', 4444, 'v4')});
my $pid = ExchangeRedis::worker_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$r->admin('CLIENT', 'UNPAUSE');
poll_until(sub { my $p = ExchangeRedis::worker_pid($node); $p && $p != $pid }, 'new worker', 30);
delivered('everything delivered after the worker was killed mid-batch');
is_deeply([ @{ get_json('exchange:service:svc-f') // {} }{qw(Port Version)} ], [ 3333, 'v3' ], 'svc-f in its final state');
is_deeply([ @{ get_json('exchange:service:svc-d') // {} }{qw(Port Version)} ], [ 4444, 'v4' ], 'svc-d in its final state');
$node->append_conf('postgresql.conf', "exchange_adapter.heartbeat_interval = '2s'\n");
$node->reload;

# ---- discovery ------------------------------------------------------------------------------
my $go = '{"ServiceName":"matching","ServiceID":"go-1","Address":"10.1.1.1","Port":9000,'
  . '"Version":"2.3.4","Metadata":{"region":"us","tier":"gold"},'
  . '"RegisteredAt":"2024-05-01T10:00:00.123456789Z","LastHeartbeat":"2024-05-01T10:00:30Z"}';
$r->admin('SET', 'exchange:service:go-1', $go);
$r->admin('SET', 'exchange:heartbeat:go-1', '1714557640');
$r->admin('SET', 'exchange:service:broken', '{not json');
is( q1(q{SELECT service_id || '|' || service_name || '|' || address || '|' || port || '|' || version || '|'
		|| metadata::text || '|' || registered_at AT TIME ZONE 'UTC' || '|' || last_heartbeat AT TIME ZONE 'UTC'
		FROM exchange.discover_services('matching')}),
	'go-1|matching|10.1.1.1|9000|2.3.4|{"tier": "gold", "region": "us"}|2024-05-01 10:00:00.123457|2024-05-01 10:00:40',
	'discover_services lists an instance written in the Go layout (heartbeat key newer than LastHeartbeat)');
is(q1(q{SELECT string_agg(service_id, ',' ORDER BY service_id) FROM exchange.discover_services()}),
	'go-1,pg-ledger-1,svc-a,svc-d,svc-f', 'discover_services() lists every instance, skips a malformed one');
is(q1(q{SELECT count(*) FROM exchange.discover_services('orders')}), '3', 'filter by service_name');

# ---- argument checks ------------------------------------------------------------------------
sub sqlstate
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $node->psql('app', $sql, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return $err =~ /ERROR:\s+([0-9A-Z]{5})/ ? $1 : "rc=$rc";
}
is(sqlstate(q{SELECT exchange.register_service(NULL, 'x', 'h', 1)}), '22004', 'NULL service_id: 22004');
is(sqlstate(q{SELECT exchange.register_service('x', 'x', 'h', NULL)}), '22004', 'NULL port: 22004');
is(sqlstate(q{SELECT exchange.register_service('', 'x', 'h', 1)}), '22023', 'empty service_id: 22023');
is(sqlstate(q{SELECT exchange.register_service('x', 'x', 'h', 70000)}), '22023', 'port out of range: 22023');
is(sqlstate(q{SELECT exchange.register_service('x', 'x', 'h', 1, ttl => '1 second')}), '22023', 'ttl not above heartbeat_interval: 22023');
is(sqlstate(q{SELECT exchange.register_service('x', 'x', 'h', 1, metadata => '{"a": 1}')}), '22023', 'non-string metadata: 22023');
is(sqlstate(q{SELECT exchange.register_service('x', 'x', 'h', 1, metadata => '[]')}), '22023', 'non-object metadata: 22023');
is(sqlstate(q{SELECT exchange.heartbeat_service('nobody')}), 'LX003', 'heartbeat of an unknown id: LX003');

# ---- flush_outbox where no worker delivers, and failures ------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION exchange_adapter');
my $acct = $node->safe_psql('other', q{SELECT account_id FROM exchange.create_account('flusher')});
$r->admin('SET', "exchange:cache:balance:$acct:USD", 'stale');
$node->safe_psql('other', qq{SELECT exchange.deposit('$acct', 'USD', 1)});
is($node->safe_psql('other', 'SELECT outbox_pending FROM exchange.adapter_status()'), '2',
	'adapter_status shows the outbox of the calling database');
is($node->safe_psql('other', q{BEGIN; SELECT exchange.flush_outbox() FROM exchange.deposit('} . $acct . q{', 'EUR', 1); COMMIT;}),
	"2", 'flush_outbox delivers committed rows, not the caller\'s own');
is($r->admin('EXISTS', "exchange:cache:balance:$acct:USD"), '0', 'flush_outbox deleted the key');
is($node->safe_psql('other', 'SELECT exchange.flush_outbox(10)'), '1', 'flush_outbox delivers the rest after commit');
is($node->safe_psql('other', 'SELECT count(*) FROM exchange.outbox'), '0', 'other outbox empty');

$node->safe_psql('other', qq{SELECT exchange.deposit('$acct', 'USD', 1)});
$r->admin('CLIENT', 'PAUSE', '20000', 'ALL');
{
	my $t0 = time();
	my ($rc, $out, $err) = $node->psql('other', q{SET statement_timeout = '1s'; SELECT exchange.flush_outbox()});
	my $secs = time() - $t0;
	like($err, qr/canceling statement due to statement timeout/, 'flush_outbox on a hung Redis can be cancelled');
	cmp_ok($secs, '<', 3, sprintf('... in %.2f s (command timeout 10 s)', $secs));
	$t0 = time();
	($rc, $out, $err) = $node->psql('app', q{SET statement_timeout = '1s'; SELECT * FROM exchange.discover_services()});
	$secs = time() - $t0;
	like($err, qr/canceling statement due to statement timeout/, 'discover_services on a hung Redis can be cancelled');
	cmp_ok($secs, '<', 3, sprintf('... in %.2f s', $secs));
}
$r->admin('CLIENT', 'UNPAUSE');
$r->admin('SHUTDOWN', 'NOSAVE');
$r->stop;
is(sqlstate(q{SELECT exchange.flush_outbox()}) , 'rc=0', 'app: nothing to flush, no Redis needed');
{
	my ($rc, $out, $err) = $node->psql('other', 'SELECT exchange.flush_outbox()', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/LX011/, 'flush_outbox with Redis down: LX011');
	is($node->safe_psql('other', 'SELECT count(*) FROM exchange.outbox'), '1', '... and the row stays');
	($rc, $out, $err) = $node->psql('app', 'SELECT * FROM exchange.discover_services()', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/LX011/, 'discover_services with Redis down: LX011');
	unlike($err, qr/\Q$ExchangeRedis::PASSWORD\E/, 'no password in the error');
}
$r->restart;

$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();
