# The benchmark's yardsticks still do what the C functions do (bench/README.md, "bench/run.sh"):
# bench/plpgsql.sql, the same-schema PL/pgSQL peer that `make bench` compares C against, must
# write exactly the rows, keys and refusals of exchange.place_order and exchange.apply_trade
# (bench/equivalence.sql raises on any difference), and bench/minimal.sql, the minimal-schema
# peer, must load on the fixture.  Without this test a change to what the C functions write
# (a new stale key, say) leaves `make bench` stopping at its equivalence step, unnoticed until
# someone measures.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Utils;
use Test::More;
use ExchangeTest;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $node = exchange_node('bench_peers');
$node->safe_psql('postgres', 'CREATE DATABASE bench');
$node->safe_psql('bench', 'CREATE EXTENSION exchange_adapter');

for my $file (qw(plpgsql setup minimal))
{
	my ($rc, $out, $err) = $node->psql('bench', undef,
		extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', "$root/bench/$file.sql" ]);
	is($rc, 0, "bench/$file.sql loads") or diag($err);
}

my ($rc, $out, $err) = $node->psql('bench', undef,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', "$root/bench/equivalence.sql" ]);
is($rc, 0, 'bench/equivalence.sql: the PL/pgSQL peer writes what the C functions write')
  or diag(substr($err, 0, 4000));
is($node->safe_psql('bench', 'SELECT count(*) FROM exchange.check_invariants()'),
	'0', 'check_invariants() empty after the equivalence scenario');

$node->stop;
done_testing();
