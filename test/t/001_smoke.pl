# Smoke test of the TAP layer: a node with the library preloaded takes CREATE EXTENSION, and the
# private-redis helper of ExchangeTest.pm starts, answers and stops.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use ExchangeTest;

my $node = exchange_node('smoke', create_extension => 1);

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'exchange_adapter', 'library preloaded');
is( $node->safe_psql(
		'postgres',
		q{SELECT extname FROM pg_extension WHERE extname = 'exchange_adapter'}),
	'exchange_adapter',
	'CREATE EXTENSION exchange_adapter on a node with the library preloaded');

my $redis = ExchangeTest::Redis->start;
is($redis->cli('PING'), 'PONG', 'private redis-server answers');
$redis->stop;
ok(!$redis->is_running, 'private redis-server stopped');

$node->stop;
done_testing();
