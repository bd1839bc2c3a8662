# README "postgresql.conf": without shared_preload_libraries, CREATE EXTENSION and a fresh
# backend's first API call work, and the server log has no FATAL or ERROR.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;

my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE EXTENSION exchange_adapter');
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'library not preloaded');

# Each safe_psql is a new backend: the library is loaded by the first call in it.
is( $node->safe_psql(
		'postgres',
		q{SELECT account_type FROM exchange.create_account('fresh-backend')}),
	'SPOT',
	'a fresh backend\'s first API call works');
is( $node->safe_psql(
		'postgres',
		q{SELECT available_balance FROM exchange.deposit((SELECT account_id FROM exchange.accounts), 'USDT', 10)}),
	'10.00000000',
	'a second fresh backend deposits');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM exchange.check_invariants(); SHOW exchange_adapter.poll_interval}),
	"0\n1s", 'settings exist once a call has loaded the library');
is($node->safe_psql('postgres', 'SELECT count(*) FROM exchange.check_invariants()'),
	'0', 'invariants hold');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'exchange_adapter%'}),
	'0',
	'no background worker without preload');

$node->stop;
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/\b(FATAL|ERROR|PANIC):/, 'server log has no FATAL or ERROR');
done_testing();
