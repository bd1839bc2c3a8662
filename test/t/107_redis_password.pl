# README "Settings", "Security model": the Redis password never appears in pg_settings (for a
# superuser, for a pg_monitor member, and in a backend of a cluster that does not preload the
# library), in `ps`, or anywhere in the server logs; a redis_url holding a password is refused
# without echoing it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ExchangeTest;
use ExchangeRedis;

my $pw = $ExchangeRedis::PASSWORD;
my $r = ExchangeRedis->start;

# Every place a setting's value can be read from SQL.
my $settings_sql = q{
SELECT string_agg(x, E'\n') FROM (
	SELECT name || '=' || coalesce(setting, '') || coalesce(reset_val, '') || coalesce(boot_val, '') AS x FROM pg_settings
	UNION ALL SELECT name || '=' || coalesce(setting, '') FROM pg_file_settings
	UNION ALL SELECT name || '=' || coalesce(setting, '') FROM pg_show_all_settings()
) s};
# pg_file_settings is superuser-only.
my $monitor_sql = q{
SELECT string_agg(name || '=' || coalesce(setting, '') || coalesce(reset_val, '') || coalesce(boot_val, ''), E'\n')
  FROM pg_settings};

sub no_password_in
{
	my ($what, $text) = @_;
	unlike($text, qr/\Q$pw\E/, "password not in $what");
}

sub ps_all
{
	my $out = `ps -eww -o args 2>/dev/null`;
	return $out;
}

# ---- preloaded cluster --------------------------------------------------------------------
my $node = $r->node('password');
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker authenticated with the password file', 30);
$node->safe_psql('app', q{CREATE ROLE monitor LOGIN IN ROLE pg_monitor; CREATE ROLE plain LOGIN});

my $as_super = $node->safe_psql('app', $settings_sql);
like($as_super, qr/exchange_adapter\.redis_password_file=\S+redis_password/, 'superuser sees the password file path');
no_password_in('pg_settings / pg_file_settings as superuser', $as_super);
no_password_in('pg_settings as a pg_monitor member',
	$node->safe_psql('app', "SET ROLE monitor; $monitor_sql"));
no_password_in('pg_settings as a plain role', $node->safe_psql('app', "SET ROLE plain; SELECT string_agg(name || '=' || setting, E'\\n') FROM pg_settings"));
is($node->safe_psql('app', q{SET ROLE plain; SELECT count(*) FROM pg_settings WHERE name = 'exchange_adapter.redis_password_file'}),
	'0', 'the password file path is hidden from a plain role (superuser-only setting)');

# While the worker is connected and a backend talks to Redis.
$node->safe_psql('app', q{SELECT exchange.register_service('svc-p', 'p', 'h', 1)});
poll_until(sub { $r->admin('EXISTS', 'exchange:service:svc-p') eq '1' }, 'delivered', 30);
is($node->safe_psql('app', 'SELECT count(*) FROM exchange.discover_services()'), '1', 'backend authenticated too');
no_password_in('ps (all processes)', ps_all());
no_password_in('pg_stat_activity', $node->safe_psql('app', q{SELECT string_agg(coalesce(query, '') || application_name, ' ') FROM pg_stat_activity}));

# A URL with a password is refused, without repeating it. (PostgreSQL's own statement logging
# would log the statement text; it is switched off for this session, as the test is about our
# messages.)
{
	my $dummy = 'Dummy' . int(rand(1e9));
	my ($rc, $out, $err) = $node->psql('app',
		qq{SET log_statement = 'none'; SET log_min_error_statement = 'panic'; ALTER SYSTEM SET exchange_adapter.redis_url = 'redis://u:$dummy\@127.0.0.1:6379'});
	isnt($rc, 0, 'ALTER SYSTEM refuses a redis_url with a password');
	like($err, qr/must not contain a password/, '... saying why');
	unlike($err, qr/$dummy/, '... without echoing it');
	$node->append_conf('postgresql.conf', "exchange_adapter.redis_url = 'redis://u:$dummy\@127.0.0.1:6379'\n");
	$node->reload;
	usleep(500_000);
	is($node->safe_psql('app', 'SHOW exchange_adapter.redis_url'), $r->url, 'a reload keeps the previous URL');
	my $log = slurp_file($node->logfile);
	like($log, qr/must not contain a password/, 'the reload refusal is logged');
	unlike($log, qr/$dummy/, 'the refused secret is not in the log');
	# Put the configuration file right again (the bad line stays in the file, overridden).
	$node->append_conf('postgresql.conf', "exchange_adapter.redis_url = '" . $r->url . "'\n");
	$node->reload;
}

# ---- a cluster that does not preload the library -------------------------------------------
my $nopre = PostgreSQL::Test::Cluster->new('nopreload');
$nopre->init;
$nopre->append_conf('postgresql.conf', $r->conf);
$nopre->start;
$nopre->safe_psql('postgres', q{CREATE EXTENSION exchange_adapter; CREATE ROLE monitor LOGIN IN ROLE pg_monitor});
# In one backend: the library is loaded by the call, then the settings are read.
my $out = $nopre->safe_psql('postgres',
	"SELECT count(*) FROM exchange.discover_services(); $settings_sql");
like($out, qr/^1\n/, 'non-preloaded backend talks to Redis with the password file');
no_password_in('pg_settings of a non-preloaded backend (superuser)', $out);
no_password_in('pg_settings of a non-preloaded backend (pg_monitor, library loaded)',
	$nopre->safe_psql('postgres', "SELECT count(*) FROM exchange.discover_services(); SET ROLE monitor; $monitor_sql"));
no_password_in('pg_settings of a non-preloaded backend (pg_monitor, library not loaded)',
	$nopre->safe_psql('postgres', "SET ROLE monitor; $monitor_sql"));
is($nopre->safe_psql('postgres', 'SELECT worker_pid IS NULL AND database IS NOT NULL FROM exchange.adapter_status()'),
	't', 'adapter_status without preload: no worker, the rest from SQL');
no_password_in('ps (all processes, both clusters)', ps_all());
$nopre->stop;
no_password_in('the non-preloaded server log', slurp_file($nopre->logfile));

# ---- every log -------------------------------------------------------------------------------
$node->stop;
no_password_in('the server log', slurp_file($node->logfile));
no_password_in('the Redis log', slurp_file($r->redis->logfile));
done_testing();
