# The worker under the shipped ACL (docker/redis/users.acl) with a redis_url naming database 1:
# SELECT is allowed, keys of db 1 are deleted and db 0 is left alone (README "Redis delivery", ACL).
# AUTH: a wrong password file is refused and reported, the right one accepted again. Right after
# connecting, the password is nowhere in the worker's memory (a core image made with gdb; skipped
# where ptrace is not permitted).
use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $pw = $ExchangeRedis::PASSWORD;
my $r = ExchangeRedis->start;
my $url1 = $r->url . '/1';
my $node = $r->node(
	'select', conf => <<"EOF");
exchange_adapter.redis_url = '$url1'
exchange_adapter.heartbeat_interval = '2s'
exchange_adapter.poll_interval = '200ms'
exchange_adapter.retry_backoff_max = '500ms'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} },
	'worker connected to db 1 under the shipped ACL', 30)
  or diag('adapter_status.last_error = ' . (ExchangeRedis::status($node)->{last_error} // 'NULL'));

sub q1 { $node->safe_psql('app', shift) }
my $acct = q1(q{SELECT account_id FROM exchange.create_account('db1')});
my $key = "exchange:cache:balance:$acct:USD";
$r->admin('-n', '1', 'SET', $key, 'stale-db1');
$r->admin('-n', '0', 'SET', $key, 'other-db0');
q1(qq{SELECT exchange.deposit('$acct', 'USD', 1)});
poll_until(sub { $r->admin('-n', '1', 'EXISTS', $key) eq '0' }, 'key of db 1 deleted', 30);
is($r->admin('-n', '0', 'GET', $key), 'other-db0', 'the same key in db 0 is untouched');
q1(q{SELECT exchange.register_service('svc-db1', 'orders', '10.0.0.1', 8080)});
poll_until(sub { $r->admin('-n', '1', 'EXISTS', 'exchange:service:svc-db1') eq '1' },
	'registration written in db 1', 30);
is(q1(q{SELECT string_agg(service_id, ',') FROM exchange.discover_services()}), 'svc-db1',
	'discover_services reads db 1');

# ---- the password is not left in the worker's memory ----------------------------------------
# gdb stops the worker right after its next connect (AUTH and SELECT done: exa_delivery_connected),
# writes a core image of its private memory, and lets it go on. The freed buffers that used to
# hold the password (stdio's, hiredis') would still be there at that point.
SKIP:
{
	my $pid = ExchangeRedis::worker_pid($node);
	my $dir = tempdir(CLEANUP => 1);
	my $gdb = `command -v gdb 2>/dev/null`;
	chomp $gdb;
	skip('gdb is not installed', 2) unless $gdb;
	# Private memory only (the heap of malloc and palloc), not shared buffers.
	if (open(my $cf, '>', "/proc/$pid/coredump_filter")) { print $cf "0x1\n"; close $cf; }
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ $gdb, '-nx', '-batch', '-p', $pid,
		  '-ex', 'set pagination off',
		  '-ex', 'break exa_delivery_connected',
		  '-ex', 'continue',
		  '-ex', "gcore $dir/core",
		  '-ex', 'detach' ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(90));
	my $deadline = time() + 30;
	while (time() < $deadline && $out !~ /Breakpoint 1 at/ && $h->pumpable)
	{
		$h->pump_nb;
		usleep(100_000);
	}
	if ($out !~ /Breakpoint 1 at/)
	{
		$h->kill_kill;
		skip('gdb could not attach to the worker (ptrace not permitted?): ' . substr("$out $err", -300), 2);
	}
	# Make it reconnect: the breakpoint fires right after AUTH.
	$r->admin('CLIENT', 'KILL', 'USER', 'exchange_adapter');
	eval { $h->finish; 1 } or $h->kill_kill;
	like($out, qr/Breakpoint 1, .*exa_delivery_connected/, 'the worker was stopped right after connecting');
	my ($core) = glob("$dir/core*");
	skip('gdb wrote no core: ' . substr("$out $err", -300), 1) unless $core && -s $core;
	my $image = slurp_file($core);
	my $found = index($image, $pw) >= 0;
	unlink $core;
	ok(!$found, 'the Redis password is not in the worker\'s memory after connect');
}
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected after the core image', 30);

# ---- wrong password refused, right one accepted ---------------------------------------------
my $dir = PostgreSQL::Test::Utils::tempdir();
open(my $fh, '>', "$dir/wrong") or die $!;
print $fh "not-the-password\n";
close $fh;
chmod 0600, "$dir/wrong";
q1(qq{ALTER SYSTEM SET exchange_adapter.redis_password_file = '$dir/wrong'});
q1('SELECT pg_reload_conf()');
poll_until(sub { (ExchangeRedis::status($node)->{last_error} // '') =~ /refused AUTH/ },
	'a wrong password is refused and reported', 30);
ok(!ExchangeRedis::status($node)->{redis_connected}, 'not connected with the wrong password');
q1(q{ALTER SYSTEM RESET exchange_adapter.redis_password_file});
q1('SELECT pg_reload_conf()');
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'the right password is accepted again', 30);
$r->admin('-n', '1', 'SET', $key, 'stale-again');
q1(qq{SELECT exchange.deposit('$acct', 'USD', 1)});
poll_until(sub { $r->admin('-n', '1', 'EXISTS', $key) eq '0' }, 'and keys are deleted again', 30);
is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0', 'invariants hold');

$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();
