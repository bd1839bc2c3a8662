# README "Redis delivery": post-commit delivery through the outbox.
#
# After a committed call the exact keys of README "Redis delivery" are deleted and published,
# unrelated keys survive; one PUBLISH per transaction even when it made several calls (one
# inside a PL/pgSQL EXCEPTION block, one in a rolled-back savepoint); nothing is pushed for
# ROLLBACK or ROLLBACK TO SAVEPOINT. poll_interval is 60 s, so every delivery here is the commit
# wake-up.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $node = $r->node('delivery', conf => "exchange_adapter.poll_interval = '60s'\n");
ok(ExchangeRedis::wait_worker($node), 'worker running');
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected to Redis', 30);

my $sub = $r->subscribe;
my $mon = $r->monitor;

sub q1 { $node->safe_psql('app', shift) }

my $a = q1(q{SELECT account_id FROM exchange.create_account('alice')});
my $b = q1(q{SELECT account_id FROM exchange.create_account('bob')});
q1(qq{SELECT exchange.set_kyc_status('$a', 'APPROVED')});
q1(q{SELECT exchange.create_market('BTC-USD', 'BTC', 'USD')});
q1(qq{SELECT exchange.deposit('$a', 'USD', 100000)});
q1(qq{SELECT exchange.deposit('$b', 'USD', 100)});

# Everything so far is delivered by wake-ups alone.
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'setup calls delivered without a poll', 10);

# Unrelated keys that must survive every push below.
my @unrelated = (
	"exchange:cache:balance:$b:USD", "exchange:cache:balances:$b",
	"exchange:cache:account:$b",     "exchange:service:some-service",
	"exchange:heartbeat:some-service", "exchange:cache:book:ETH-USD",
	'other:cache:balance:x');
$r->admin('SET', $_, 'keep') for @unrelated;

# Runs SQL (one transaction), waits until the outbox is empty, returns the PUBLISH payloads and
# the keys deleted (UNLINK/DEL) since the previous call.
sub run_and_collect
{
	my ($sql, $what) = @_;
	$sub->messages;    # drain
	my $before_msgs = scalar @{ $sub->messages };
	my $before_cmds = scalar @{ $mon->commands };
	my $t0 = time();
	q1($sql);
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "$what: outbox empty", 10);
	my $latency = time() - $t0;
	usleep(200_000);    # let the monitor and subscriber catch up
	my @msgs = @{ $sub->messages }[ $before_msgs .. $#{ $sub->messages } ];
	my @cmds = @{ $mon->commands }[ $before_cmds .. $#{ $mon->commands } ];
	my %deleted;
	for my $c (@cmds)
	{
		next unless $c->[0] eq 'UNLINK' || $c->[0] eq 'DEL';
		$deleted{$_} = 1 for @$c[ 1 .. $#$c ];
	}
	return (\@msgs, \%deleted, $latency);
}

# Checks one autocommitted call: one PUBLISH whose keys are exactly @keys, the same keys deleted.
sub check_call
{
	my ($what, $sql, @keys) = @_;
	$r->admin('SET', "exchange:$_", 'stale') for @keys;
	my ($msgs, $deleted, $latency) = run_and_collect($sql, $what);
	my @expected = sort map { "exchange:$_" } @keys;
	is(scalar @$msgs, 1, "$what: one PUBLISH");
	is_deeply([ sort @{ $msgs->[0]{keys} // [] } ], \@expected, "$what: published keys are the key table's");
	is_deeply([ sort keys %$deleted ], \@expected, "$what: exactly those keys deleted");
	is($r->admin('EXISTS', @expected), '0', "$what: keys gone from Redis");
	cmp_ok($latency, '<', 5, "$what: delivered at commit, not at the 60 s poll");
}

# ---- the key table of README "Redis delivery", call by call ---------------------------------
check_call('deposit', qq{SELECT exchange.deposit('$a', 'BTC', 2)},
	"cache:balance:$a:BTC", "cache:balances:$a");
check_call('withdraw', qq{SELECT exchange.withdraw('$a', 'BTC', 1)},
	"cache:balance:$a:BTC", "cache:balances:$a");
my $hold;
{
	$r->admin('SET', "exchange:cache:balance:$a:BTC", 'stale');
	my ($msgs) = run_and_collect(qq{SELECT exchange.lock_balance('$a', 'BTC', 0.5)}, 'lock_balance');
	is_deeply([ sort @{ $msgs->[0]{keys} } ],
		[ sort("exchange:cache:balance:$a:BTC", "exchange:cache:balances:$a") ],
		'lock_balance: balance keys published');
	$hold = q1(qq{SELECT hold_id FROM exchange.holds WHERE account_id = '$a'});
}
check_call('unlock_balance', qq{SELECT exchange.unlock_balance('$hold', 0.25)},
	"cache:balance:$a:BTC", "cache:balances:$a");
check_call('capture_hold', qq{SELECT exchange.capture_hold('$hold')},
	"cache:balance:$a:BTC", "cache:balances:$a");
# account_balances shows the account's status: a status change makes the balances stale too.
check_call('set_account_status', qq{SELECT exchange.set_account_status('$a', 'SUSPENDED')},
	"cache:account:$a", "cache:balances:$a");
q1(qq{SELECT exchange.set_account_status('$a', 'ACTIVE')});
check_call('set_kyc_status', qq{SELECT exchange.set_kyc_status('$b', 'APPROVED')},
	"cache:account:$b");
$r->admin('SET', "exchange:cache:account:$b", 'keep');
check_call('create_market', q{SELECT exchange.create_market('ETH-BTC', 'ETH', 'BTC')},
	'cache:market:ETH-BTC', 'cache:book:ETH-BTC', 'cache:ticker:ETH-BTC');
check_call('set_market_status', q{SELECT exchange.set_market_status('ETH-BTC', 'HALTED')},
	'cache:market:ETH-BTC', 'cache:book:ETH-BTC', 'cache:ticker:ETH-BTC');

{
	my ($msgs) = run_and_collect(
		qq{SELECT exchange.place_order('$a', 'BTC-USD', 'BUY', 'LIMIT', 1, 100)}, 'place_order');
	my $order = q1(q{SELECT order_id FROM exchange.orders ORDER BY created_at DESC LIMIT 1});
	is_deeply(
		[ sort @{ $msgs->[0]{keys} } ],
		[ sort map { "exchange:$_" } "cache:order:$order", "cache:orders:$a",
			"cache:balance:$a:USD", "cache:balances:$a", 'cache:book:BTC-USD',
			'cache:ticker:BTC-USD' ],
		'place_order (OPEN): order, orders, lock balance, balances, book and ticker keys');
	check_call('cancel_order', qq{SELECT exchange.cancel_order('$order')},
		"cache:order:$order", "cache:orders:$a", "cache:balance:$a:USD",
		"cache:balances:$a", 'cache:book:BTC-USD', 'cache:ticker:BTC-USD');
}

# ---- one transaction, several calls, savepoints and exception blocks ------------------------
{
	my $sql = qq{
BEGIN;
SELECT exchange.deposit('$a', 'AAA', 1);
DO \$\$ BEGIN
	PERFORM exchange.deposit('$a', 'BBB', 1);          -- kept: the block ends normally
EXCEPTION WHEN others THEN NULL; END \$\$;
DO \$\$ BEGIN
	PERFORM exchange.deposit('$a', 'LOST1', 1);        -- rolled back with the block
	RAISE EXCEPTION 'undo';
EXCEPTION WHEN others THEN NULL; END \$\$;
SAVEPOINT s1;
SELECT exchange.deposit('$a', 'LOST2', 1);             -- rolled back to the savepoint
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
SELECT exchange.deposit('$a', 'CCC', 1);               -- kept: savepoint released
RELEASE SAVEPOINT s2;
COMMIT;
};
	my ($msgs, $deleted) = run_and_collect($sql, 'multi-call transaction');
	is(scalar @$msgs, 1, 'multi-call transaction: exactly one PUBLISH');
	my @expected = sort map { "exchange:$_" }
	  "cache:balance:$a:AAA", "cache:balance:$a:BBB", "cache:balance:$a:CCC", "cache:balances:$a";
	is_deeply([ sort @{ $msgs->[0]{keys} } ], \@expected,
		'multi-call transaction: keys of the three kept calls, de-duplicated');
	like($msgs->[0]{xid}, qr/^\d+$/, 'payload carries the xid8');
	is($msgs->[0]{v}, 1, 'payload version 1');
	ok(!grep({ /LOST/ } keys %$deleted), 'nothing deleted for the rolled-back block and savepoint');
}

# ---- ROLLBACK pushes nothing ------------------------------------------------------------------
{
	my $before = scalar @{ $sub->messages };
	my $cmds = scalar @{ $mon->commands };
	q1(qq{BEGIN; SELECT exchange.deposit('$a', 'RBK', 1); ROLLBACK;});
	q1(qq{SELECT exchange.deposit('$b', 'ZZZ', 1)});    # a marker that is delivered
	poll_until(sub { grep { grep { /:ZZZ$/ } @{ $_->{keys} } } @{ $sub->messages } },
		'marker delivered after the rolled-back transaction', 10);
	my @msgs = @{ $sub->messages }[ $before .. $#{ $sub->messages } ];
	ok(!grep({ grep { /RBK/ } @{ $_->{keys} } } @msgs), 'ROLLBACK: nothing published');
	ok(!grep({ grep { /RBK/ } @$_ } @{ $mon->commands }[ $cmds .. $#{ $mon->commands } ]),
		'ROLLBACK: nothing deleted');
	# The marker's own keys are bob's: put back the one the unrelated list watches.
	$r->admin('SET', "exchange:cache:balances:$b", 'keep');
}

# ---- a call that changes nothing writes no outbox row ----------------------------------------
{
	q1(qq{SELECT exchange.deposit('$a', 'IDM', 1, 'ref-1')});
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'idempotent call delivered', 10);
	q1(qq{SELECT exchange.deposit('$a', 'IDM', 1, 'ref-1')});
	is(ExchangeRedis::outbox_count($node), 0, 'an idempotent retry writes no outbox row');
}

# ---- unrelated keys survived everything ------------------------------------------------------
is($r->admin('EXISTS', @unrelated), scalar(@unrelated), 'unrelated keys (other account, services, other prefix) survive');

my $st = ExchangeRedis::status($node);
ok($st->{redis_connected}, 'adapter_status: connected');
cmp_ok($st->{pushed_keys}, '>', 20, 'adapter_status: pushed_keys counted');
is($st->{failed_pushes}, 0, 'adapter_status: no failed push');
is($st->{database}, 'app', 'adapter_status: served database');

$sub->stop;
$mon->stop;
$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();
