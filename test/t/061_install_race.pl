# The install race (README "Security model"): a role holding CREATE on a pre-existing schema
# exchange keeps creating functions in it, in a loop, from two sessions, while a superuser runs
# CREATE EXTENSION. Among them is exchange.grant_adapter(text, text), which would capture the
# untyped call grant_adapter('x', 'y') and run as whoever calls it.
#
# After every install: no function or operator in exchange is owned by a non-superuser (what was
# planted before the install is in exchange_quarantine; what tried during it was refused or
# cancelled), the role can no longer create in the schema, and the documented typed call
# grant_adapter('role'::regrole, 'profile'::text) runs the extension's function.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ExchangeTest;

my $node = exchange_node('race', database => 'unserved');
$node->safe_psql('postgres', <<'SQL');
CREATE ROLE planter LOGIN;
CREATE ROLE victim;
CREATE DATABASE ledger;
SQL

my $script = $node->basedir . '/planter.sql';
open(my $fh, '>', $script) or die "$script: $!";
print $fh <<'SQL';
\set r random(1, 2000000000)
CREATE FUNCTION exchange.planted_:r(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OR REPLACE FUNCTION exchange.grant_adapter(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
SQL
close $fh;

my $rounds = 4;
for my $round (1 .. $rounds)
{
	$node->safe_psql('ledger', <<'SQL');
SET exchange_adapter.allow_drop = on;
DROP EXTENSION IF EXISTS exchange_adapter;
DROP SCHEMA IF EXISTS exchange_quarantine CASCADE;
DROP SCHEMA IF EXISTS exchange CASCADE;
CREATE SCHEMA exchange;
GRANT USAGE, CREATE ON SCHEMA exchange TO planter;
SQL

	# Two planting sessions, each in a loop until refused (pgbench aborts a client on an error).
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '2', '-T', '20', '-f', $script,
			'-U', 'planter', $node->connstr('ledger')
		],
		'>', \$out, '2>', \$err);
	# Let them plant for a while, then install in the middle of it.
	my $planted = 0;
	for (1 .. 100)
	{
		usleep(50_000);
		$planted = $node->safe_psql('ledger',
			q{SELECT count(*) FROM pg_proc WHERE pronamespace = 'exchange'::regnamespace});
		last if $planted >= 20;
	}
	cmp_ok($planted, '>=', 20, "round $round: the planter is creating functions");

	my ($rc, $stdout, $stderr) = $node->psql('ledger', 'CREATE EXTENSION exchange_adapter');
	is($rc, 0, "round $round: CREATE EXTENSION succeeds while the planter runs");

	# The planter stops by itself: every later CREATE is refused.
	$h->finish;
	like($err, qr/permission denied for schema exchange|canceling statement due to user request/,
		"round $round: the planter was refused or cancelled");

	is($node->safe_psql('ledger', <<'SQL'), '', "round $round: nothing in exchange belongs to the planter");
SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
 WHERE p.pronamespace = 'exchange'::regnamespace AND NOT r.rolsuper
UNION ALL
SELECT o.oid::regoperator::text FROM pg_operator o JOIN pg_roles r ON r.oid = o.oprowner
 WHERE o.oprnamespace = 'exchange'::regnamespace AND NOT r.rolsuper
SQL
	is($node->safe_psql('ledger',
			q{SELECT has_schema_privilege('planter', 'exchange', 'CREATE')}),
		'f', "round $round: the planter cannot create in the schema");
	($rc, $stdout, $stderr) = $node->psql('ledger',
		q{CREATE FUNCTION exchange.late(text) RETURNS int LANGUAGE sql AS 'SELECT 1'},
		extra_params => [ '-U', 'planter' ]);
	like($stderr, qr/permission denied for schema exchange/,
		"round $round: a later CREATE by the planter is refused");
	is($node->safe_psql('ledger',
			q{SELECT pg_typeof(exchange.grant_adapter('victim'::regrole, 'trader'::text))}),
		'void', "round $round: the typed grant_adapter call runs the extension's function");
	is($node->safe_psql('ledger',
			q{SELECT has_function_privilege('victim', 'exchange.cancel_order(uuid, text)', 'EXECUTE')}),
		't', "round $round: ... and granted the profile");
	$node->safe_psql('ledger', q{SELECT exchange.revoke_adapter('victim'::regrole)});
}

is($node->safe_psql('ledger', 'SELECT count(*) FROM exchange.check_invariants()'), '0',
	'check_invariants() is empty');
$node->stop;
done_testing();
