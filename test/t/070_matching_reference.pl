# The matching engine against an independent reference model: test/reference/check.py generates
# seeded random operations (LIMIT / MARKET / STOP orders with every time in force, crossing and
# resting, self-trades under each of the four modes, refusals, idempotent retries, cancels and
# expires, cancel_orders and expire_orders, deposits, withdraws, account suspensions, KYC changes,
# market halts) on four INTERNAL markets sharing assets, runs them through one psql session and
# through test/reference/matcher.py (a model written from README "Order lifecycle and arithmetic"
# and the README's matching-engine rules, not from the C code), and compares trades (per market
# in seq order: orders on both sides, price, quantity, fees, maker side), final order states
# (status, filled, locked, average price, reason), balances, last_price and trade_seq, the
# SQLSTATE of every call that raised, and check_invariants() — exactly.
#
# Seeds are fixed (EA_REF_SEEDS="1 2 3" and EA_REF_OPS to change them); each run prints its seed and
# tag; a mismatch prints the first differing operation with both states.  Then a run on deep
# books (EA_REF_DEEP_SEEDS, EA_REF_DEEP_OPS) and a concurrent run (EA_REF_CONCURRENT_SEEDS,
# EA_REF_CONCURRENT_OPS): see below.  Standalone:
#   python3 test/reference/check.py --dsn 'host=... port=... dbname=...' --seed 1 --ops 10000
#   python3 test/reference/check.py --dsn ... --seed 1 --ops 4000 --deep
#   python3 test/reference/check.py --dsn ... --seed 11 --ops 4000 --clients 4
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use ExchangeTest;

my $root = abs_path(dirname(__FILE__) . '/../..');
my @seeds = split ' ', ($ENV{EA_REF_SEEDS} // '1 2 3');
my $ops = $ENV{EA_REF_OPS} // 5000;

my $node = exchange_node(
	'reference',
	database => 'no_worker_here',
	conf => "log_min_messages = warning\nfsync = off\nsynchronous_commit = off\n");
$node->safe_psql('postgres', 'CREATE DATABASE reference');
$node->safe_psql('reference', 'CREATE EXTENSION exchange_adapter');

my $dsn = sprintf('host=%s port=%d dbname=reference', $node->host, $node->port);
my @cmd = ('python3', "$root/test/reference/check.py", '--dsn', $dsn, '--ops', $ops,
	'--keep', PostgreSQL::Test::Utils::tempdir(), map { ('--seed', $_) } @seeds);
note("running: @cmd");
my ($out, $err) = ('', '');
my $t0 = time();
IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(900));
my $rc = $? >> 8;
diag("check.py (seeds @seeds, $ops operations each) took " . (time() - $t0) . "s:\n$out"
	  . ($err ne '' ? "stderr:\n$err" : ''));
is($rc, 0, 'trades, orders, balances and raised calls equal the reference model\'s');
ok($out =~ /^seed $_: OK/m, "seed $_ matches the model") for @seeds;
ok(@seeds * $ops >= 10_000, 'at least 10,000 operations in all');

# Deep books (--deep): most orders rest, many per price level, some takers sweep a hundred
# orders or more, so the walk crosses many levels and FOK counts a long stretch of the book.
my @dseeds = split ' ', ($ENV{EA_REF_DEEP_SEEDS} // '1');
my $dops = $ENV{EA_REF_DEEP_OPS} // 4000;
@cmd = ('python3', "$root/test/reference/check.py", '--dsn', $dsn, '--ops', $dops, '--deep',
	'--keep', PostgreSQL::Test::Utils::tempdir(), map { ('--seed', $_) } @dseeds);
note("running: @cmd");
($out, $err) = ('', '');
$t0 = time();
IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(900));
$rc = $? >> 8;
diag("check.py --deep (seeds @dseeds, $dops operations each) took " . (time() - $t0)
	  . "s:\n$out" . ($err ne '' ? "stderr:\n$err" : ''));
is($rc, 0, 'deep books: trades, orders, balances and raised calls equal the model\'s');
ok($out =~ /^seed $_: OK/m, "deep seed $_ matches the model") for @dseeds;

# The same comparison with concurrent sessions: 4 psql clients place and cancel at once on the
# four markets (funds ample, no suspension or halt, so a market's outcome depends only on the
# order of its calls); every call logs itself after the call, in its transaction, while the
# market row is still locked; the model replays the calls in that order.
my @cseeds = split ' ', ($ENV{EA_REF_CONCURRENT_SEEDS} // '11');
my $cops = $ENV{EA_REF_CONCURRENT_OPS} // 4000;
@cmd = ('python3', "$root/test/reference/check.py", '--dsn', $dsn, '--ops', $cops, '--clients', 4,
	'--keep', PostgreSQL::Test::Utils::tempdir(), map { ('--seed', $_) } @cseeds);
note("running: @cmd");
($out, $err) = ('', '');
$t0 = time();
IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(900));
$rc = $? >> 8;
diag("check.py --clients 4 (seeds @cseeds, $cops operations each) took " . (time() - $t0)
	  . "s:\n$out" . ($err ne '' ? "stderr:\n$err" : ''));
is($rc, 0, '4 concurrent sessions: the calls replayed in their market order equal the model');
ok($out =~ /^seed $_: OK/m, "concurrent seed $_ matches the model") for @cseeds;

is($node->safe_psql('reference',
		q{SELECT string_agg(invariant || ': ' || detail, E'\n') FROM exchange.check_invariants()}),
	'', 'check_invariants() is empty');

$node->stop;
done_testing();
