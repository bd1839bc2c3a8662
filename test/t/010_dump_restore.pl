# README "Backup and restore": a ledger holding rows in every table survives pg_dump -Fc /
# pg_restore --exit-on-error into a new database: row counts match, identity sequences continue
# (new journal, event and fee rows insert without collisions), check_invariants() is empty, and
# the outbox and the service registry are not carried over.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use ExchangeTest;

my $node = exchange_node('dump', database => 'unserved');
$node->safe_psql('postgres', 'CREATE DATABASE ledger');
$node->safe_psql('ledger', 'CREATE EXTENSION exchange_adapter');

# Rows in every ledger table, made through the API.
$node->safe_psql('ledger', <<'SQL');
SELECT exchange.create_market('BTC-USDT', 'BTC', 'USDT', 0.01, 0.0001, 0, 0, 0.001, 0.002);
SELECT exchange.create_account('alice');
SELECT exchange.create_account('bob');
SELECT exchange.set_kyc_status(account_id, 'APPROVED') FROM exchange.accounts;
SELECT exchange.deposit(account_id, 'USDT', 100000, 'wire-1') FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.deposit(account_id, 'BTC', 5) FROM exchange.accounts WHERE user_id = 'bob';
SELECT exchange.lock_balance(account_id, 'USDT', 100, 'margin') FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.place_order(account_id, 'BTC-USDT', 'BUY', 'LIMIT', 1, 30000, client_order_id => 'c1')
  FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.place_order(account_id, 'BTC-USDT', 'SELL', 'LIMIT', 2, 29000)
  FROM exchange.accounts WHERE user_id = 'bob';
SELECT exchange.apply_match(b.order_id, s.order_id, 0.5, 29500, trade_ref => 'm1')
  FROM exchange.orders b, exchange.orders s WHERE b.side = 'BUY' AND s.side = 'SELL';
SQL

my @tables = qw(accounts markets orders trades balances holds balance_journal order_events fee_ledger);
my $count_sql = join(' UNION ALL ',
	map { "SELECT '$_', count(*) FROM exchange.$_" } @tables);
my %before = map { split /\|/ } split /\n/, $node->safe_psql('ledger', $count_sql);
for my $t (@tables)
{
	cmp_ok($before{$t}, '>', 0, "source ledger has rows in $t");
}
cmp_ok($node->safe_psql('ledger', 'SELECT count(*) FROM exchange.outbox'), '>', 0,
	'source has outbox rows');

my $dump = $node->basedir . '/ledger.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('ledger'), '-f', $dump ],
	'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore --exit-on-error into a new database');

my %after = map { split /\|/ } split /\n/, $node->safe_psql('restored', $count_sql);
for my $t (@tables)
{
	is($after{$t}, $before{$t}, "row count of $t matches after restore");
}
is($node->safe_psql('restored', 'SELECT count(*) FROM exchange.outbox'),
	'0', 'the outbox is not carried over');
is($node->safe_psql('restored', 'SELECT count(*) FROM exchange.check_invariants()'),
	'0', 'check_invariants() is empty after restore');

# Identity columns continue past the restored rows: new journal, event and fee rows insert.
my $seqs_before = $node->safe_psql('restored',
	'SELECT (SELECT max(seq) FROM exchange.balance_journal), (SELECT max(seq) FROM exchange.order_events), (SELECT max(seq) FROM exchange.fee_ledger)'
);
$node->safe_psql('restored', <<'SQL');
SELECT exchange.deposit(account_id, 'USDT', 1) FROM exchange.accounts WHERE user_id = 'alice';
SELECT exchange.apply_trade(order_id, 0.1, 29000, liquidity => 'TAKER')
  FROM exchange.orders WHERE side = 'BUY';
SQL
my ($j, $e, $f) = split /\|/, $seqs_before;
my ($j2, $e2, $f2) = split /\|/, $node->safe_psql('restored',
	'SELECT (SELECT max(seq) FROM exchange.balance_journal), (SELECT max(seq) FROM exchange.order_events), (SELECT max(seq) FROM exchange.fee_ledger)'
);
cmp_ok($j2, '>', $j, 'balance_journal takes new rows after restore');
cmp_ok($e2, '>', $e, 'order_events takes new rows after restore');
cmp_ok($f2, '>', $f, 'fee_ledger takes new rows after restore');
is($node->safe_psql('restored', 'SELECT count(*) FROM exchange.check_invariants()'),
	'0', 'check_invariants() is empty after new calls on the restored ledger');

$node->stop;
done_testing();
