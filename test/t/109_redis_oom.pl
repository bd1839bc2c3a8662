# A Redis that refuses writes (out of memory under maxmemory-policy noeviction, the shipped
# setting) still gets its cache keys deleted (README "Redis delivery", delivery order): deletions
# and PUBLISH go first, registry work after, and a refused registration or heartbeat neither forces
# a reconnect nor runs before the deletions. The refusal is logged once and shown by
# adapter_status(); registrations come back once Redis accepts writes again.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $node = $r->node(
	'oom', conf => <<'EOF');
exchange_adapter.heartbeat_interval = '2s'
exchange_adapter.poll_interval = '200ms'
exchange_adapter.retry_backoff_max = '500ms'
exchange_adapter.service_id = 'pg-ledger-oom'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected', 30);

sub q1 { $node->safe_psql('app', shift) }
sub worker_client_id
{
	my ($line) = grep { /\buser=exchange_adapter\b/ } split /\n/, $r->admin('CLIENT', 'LIST');
	return defined $line && $line =~ /\bid=(\d+)/ ? $1 : '';
}

# A live registration, and our own (service_id), both in Redis before memory runs out.
q1(q{SELECT exchange.register_service('svc-live', 'orders', '10.0.0.1', 8080)});
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-live', 'exchange:service:pg-ledger-oom') eq '2' },
	'registrations written', 30);

my $acct = q1(q{SELECT account_id FROM exchange.create_account('oom')});
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'outbox drained', 30);
my @keys = map { "exchange:cache:balance:$acct:A$_" } 1 .. 10;
$r->admin('SET', $_, 'stale') for @keys;

# Fill Redis: maxmemory at what it uses now, noeviction, then keys until a SET is refused.
$r->admin('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
my ($used) = $r->admin('INFO', 'memory') =~ /used_memory:(\d+)/;
$r->admin('CONFIG', 'SET', 'maxmemory', $used);
my $filled = 0;
for my $i (1 .. 200)
{
	my $out = $r->admin('SET', "filler:$i", 'x' x 20_000);
	if ($out =~ /OOM/) { $filled = 1; last; }
}
ok($filled, 'Redis is full: SET refused with OOM');
like($r->as_worker('SET', 'exchange:probe', '1'), qr/OOM/, 'the worker user is refused SET too');
ok(!$r->admin('EXISTS', 'exchange:probe'), '... and nothing was written');

# A reconnect, as after any network hiccup: the heartbeat must not come first and block.
$r->admin('CLIENT', 'KILL', 'USER', 'exchange_adapter');
# A new registration, refused, queued with the cache rows of the deposits that follow.
q1(q{SELECT exchange.register_service('svc-new', 'orders', '10.0.0.2', 8081)});
for my $i (1 .. 10)
{
	q1(qq{SELECT exchange.deposit('$acct', 'A$i', 1)});
}
poll_until(sub { $r->admin('EXISTS', @keys) eq '0' },
	'cache keys deleted while Redis refuses every SET', 30);
poll_until(sub { q1(q{SELECT count(*) FROM exchange.outbox WHERE kind = 'cache'}) eq '0' },
	'cache rows delivered and gone', 30);
is(q1(q{SELECT count(*) FROM exchange.outbox WHERE kind = 'registry'}), '1',
	'the refused registration stays in the outbox');
is($r->admin('EXISTS', 'exchange:service:svc-new'), '0', 'svc-new not written (refused)');

# No reconnect loop: the worker keeps one connection over several heartbeat intervals.
poll_until(sub { worker_client_id() ne '' }, 'worker connected again', 30);
my $id = worker_client_id();
sleep(5);
is(worker_client_id(), $id, 'the refusal does not make the worker reconnect');

# And deletions keep flowing while refusals go on.
$r->admin('SET', $keys[0], 'stale-again') ;    # DEL and SET of an existing key under OOM
q1(qq{SELECT exchange.deposit('$acct', 'A1', 1)});
poll_until(sub { $r->admin('EXISTS', $keys[0]) eq '0' }, 'later deletions still delivered', 30);

my $st = ExchangeRedis::status($node);
diag('adapter_status.last_error = ' . ($st->{last_error} // 'NULL'));
like($st->{last_error} // '', qr/regist.*OOM/is, 'adapter_status reports the registry refusal (OOM)');
ok($st->{redis_connected}, 'and is connected');
my $log = slurp_file($node->logfile);
my $n = () = $log =~ /WARNING:  Redis refused a registration/g;
is($n, 1, 'the registry refusal is logged once');

# Memory back: registrations come back, the queued one is written, the status clears.
$r->admin('CONFIG', 'SET', 'maxmemory', '0');
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-new') eq '1' }, 'queued registration written', 30);
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'outbox empty', 30);
poll_until(sub { !defined ExchangeRedis::status($node)->{last_error} }, 'refusal no longer reported', 30);
is($r->admin('EXISTS', 'exchange:service:svc-live', 'exchange:service:pg-ledger-oom'), '2',
	'live and own registrations in place');
is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0', 'invariants hold');

$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();
