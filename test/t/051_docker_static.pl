# test/t/051_docker_static.pl — static checks of the deployment files (no Docker engine needed).
#
#   * docker-compose -f docker/compose.yml config validates it (Debian's docker-compose 1.29
#     parses without an engine; `docker compose` v2 too when present);
#   * every file compose.yml and the Dockerfile refer to exists (a secret file may instead have
#     its .example and be created by docker/secrets/generate.sh: real secrets are not in git);
#   * no secret is inline: environment, command, entrypoint and healthcheck carry no password,
#     the Redis ACL templates hold placeholders only, the example secrets are placeholders;
#   * every published port binds 127.0.0.1;
#   * the shape docker/README.md "What the stack is made of" describes: multi-stage image on postgres:15-bookworm whose runtime adds
#     libhiredis only, the library preloaded, noeviction, healthchecks, health-gated depends_on.

use strict;
use warnings;

use Cwd qw(abs_path);
use CPAN::Meta::YAML;
use File::Basename qw(dirname);
use IPC::Run;
use JSON::PP;
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $docker = "$root/docker";

sub slurp
{
	my ($path) = @_;
	open(my $fh, '<', $path) or die "could not read $path: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

sub which
{
	my ($tool) = @_;
	for my $d (split /:/, $ENV{PATH} // '')
	{
		return "$d/$tool" if -x "$d/$tool";
	}
	return undef;
}

# ---------------------------------------------------------------------------------------------
# docker-compose config

SKIP:
{
	my $dc = which('docker-compose');
	skip 'docker-compose is not installed (Debian package docker-compose): compose.yml not validated', 2
	  unless $dc;
	local %ENV = %ENV;
	delete @ENV{ grep { /^(COMPOSE_|DOCKER_)/ } keys %ENV };
	$ENV{HOME} //= '/tmp';
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $dc, '-f', "$docker/compose.yml", 'config' ], '<', \undef, '>', \$out, '2>', \$err);
	ok($ok, 'docker-compose -f docker/compose.yml config: valid') or diag($err);
	note("docker-compose config:\n$out");
	# The normalised file: short syntax when a host IP is given, long syntax otherwise. It folds
	# long strings, which CPAN::Meta::YAML cannot read: python3-yaml (a dependency of
	# docker-compose) converts it to JSON.
	my ($json, $jerr) = ('', '');
	IPC::Run::run([ 'python3', '-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))' ],
		'<', \$out, '>', \$json, '2>', \$jerr);
	my $cfg = eval { JSON::PP::decode_json($json) } // {};
	diag("could not read the output of docker-compose config: $jerr") unless %$cfg;
	my @ports = map { @{ $_->{ports} // [] } } values %{ $cfg->{services} // {} };
	my @bad = grep { ref $_ ? ($_->{host_ip} // '') ne '127.0.0.1' : !/^127\.0\.0\.1:/ } @ports;
	ok(@ports && !@bad, 'docker-compose config: every published port binds 127.0.0.1 (' . scalar(@ports) . ' ports)')
	  or diag(explain(\@bad));
}

SKIP:
{
	my $d = which('docker');
	my ($out, $err) = ('', '');
	skip 'Compose v2 (docker compose) is not installed', 1
	  unless $d && IPC::Run::run([ $d, 'compose', 'version' ], '<', \undef, '>', \$out, '2>', \$err);
	ok(IPC::Run::run([ $d, 'compose', '-f', "$docker/compose.yml", 'config', '-q' ], '<', \undef, '>', \$out, '2>', \$err),
		'docker compose (v2) config: valid') or diag($err);
}

# ---------------------------------------------------------------------------------------------
# compose.yml, read as YAML

my $compose_text = slurp("$docker/compose.yml");
my $compose = CPAN::Meta::YAML->read_string($compose_text)->[0];
ok(ref $compose eq 'HASH' && ref $compose->{services} eq 'HASH', 'compose.yml parses');
ok(!exists $compose->{version}, 'compose.yml has no version key (Compose Specification: 1.29 and v2)');
is_deeply([ sort keys %{ $compose->{services} } ], [qw(postgres redis)], 'services: postgres and redis');

my %secret_file = map { $_ => $compose->{secrets}{$_}{file} } keys %{ $compose->{secrets} // {} };
my $generate = slurp("$docker/secrets/generate.sh");

# Files referred to, relative to docker/.
for my $name (sort keys %secret_file)
{
	my $f = "$docker/$secret_file{$name}";
	ok(-f $f || (-f "$f.example" && $generate =~ /\b\Q$name\E\b/),
		"secret $name: $secret_file{$name} exists, or its .example and generate.sh creates it");
	like($secret_file{$name}, qr{^\./secrets/}, "secret $name lives in docker/secrets (gitignored)");
}

my $ignore = slurp("$docker/.gitignore");
like($ignore, qr{^/secrets/\*$}m, 'docker/.gitignore ignores docker/secrets/*');
like($ignore, qr{^!/secrets/\*\.example$}m, '... but the examples');
like($ignore, qr{^/\.env$}m, 'docker/.gitignore ignores docker/.env');
for my $ex (glob("$docker/secrets/*.example"))
{
	like(slurp($ex), qr/^change-me-[a-z-]+\n\z/, "example secret $ex is a placeholder");
}
SKIP:
{
	skip 'not a git checkout', 1 unless -d "$root/.git" && which('git');
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'git', '-C', $root, 'ls-files', 'docker/secrets' ], '<', \undef, '>', \$out, '2>', \$err);
	my @tracked = grep { !/\.example$|\/generate\.sh$/ } split /\n/, $out;
	is_deeply(\@tracked, [], 'no real secret file is tracked by git');
}

my %seen_secret_use;
for my $sname (sort keys %{ $compose->{services} })
{
	my $s = $compose->{services}{$sname};

	if (my $b = $s->{build})
	{
		my $ctx = "$docker/" . ($b->{context} // '.');
		ok(-d $ctx, "$sname: build context $b->{context} exists");
		ok(-f "$ctx/" . ($b->{dockerfile} // 'Dockerfile'), "$sname: dockerfile $b->{dockerfile} exists in the context");
	}
	for my $v (@{ $s->{volumes} // [] })
	{
		my ($src) = ref $v ? $v->{source} : split /:/, $v;
		if ($src =~ m{^[./]})
		{
			ok(-e "$docker/$src", "$sname: bind mount $src exists");
		}
		else
		{
			ok(exists $compose->{volumes}{$src}, "$sname: named volume $src is declared");
		}
	}
	for my $e (@{ $s->{env_file} // [] })
	{
		ok(-f "$docker/$e", "$sname: env_file $e exists");
	}
	for my $sec (@{ $s->{secrets} // [] })
	{
		my $n = ref $sec ? $sec->{source} : $sec;
		ok(exists $secret_file{$n}, "$sname: secret $n is declared with a file");
		$seen_secret_use{$sname}{$n} = 1;
	}

	# Ports: 127.0.0.1 only.
	ok(@{ $s->{ports} // [] }, "$sname: publishes a port") if $sname eq 'postgres';
	for my $p (@{ $s->{ports} // [] })
	{
		my $ip = ref $p ? $p->{host_ip} // '' : ($p =~ /^(\d+\.\d+\.\d+\.\d+):/)[0] // '';
		is($ip, '127.0.0.1', "$sname: port " . (ref $p ? $p->{published} : $p) . ' binds 127.0.0.1');
	}
	ok(!defined $s->{network_mode} || $s->{network_mode} ne 'host', "$sname: not on the host network");

	# No secret inline.
	my $env = $s->{environment} // {};
	$env = { map { /^([^=]+)=?(.*)$/ ? ($1 => $2) : () } @$env } if ref $env eq 'ARRAY';
	for my $k (sort keys %$env)
	{
		next unless $k =~ /PASS|SECRET|TOKEN|AUTH|KEY/i;
		ok(($k =~ /_FILE$/ && $env->{$k} =~ m{^/run/secrets/\w+$}) || ($k =~ /_DIR$/ && $env->{$k} eq '/run/secrets'),
			"$sname: environment $k is a secret file path, not a value ($env->{$k})");
		if ($env->{$k} =~ m{^/run/secrets/(\w+)$})
		{
			ok($seen_secret_use{$sname}{$1}, "$sname: $k names a secret mounted in the service");
		}
	}
	my @strings = (
		(map { ref $_ ? @$_ : $_ } grep { defined } $s->{command}, $s->{entrypoint}),
		(ref $s->{healthcheck}{test} ? @{ $s->{healthcheck}{test} } : $s->{healthcheck}{test} // ()),
		(map { "$_=$env->{$_}" } keys %$env));
	for my $str (@strings)
	{
		my $bad =
			$str =~ /password(?!_file)\w*\s*=\s*\S/i ? 'password=value'
		  : $str =~ m{redis://[^/@\s]*:[^/@\s]*@} ? 'password in a redis URL'
		  : $str =~ /(^|\s)(-a|--pass)\s/ ? 'redis-cli -a/--pass'
		  : $str =~ /REDISCLI_AUTH=(?!"\$\$\(cat \/run\/secrets\/\w+\)")/ ? 'REDISCLI_AUTH not read from a secret file'
		  : $str =~ /PGPASSWORD=/ ? 'PGPASSWORD'
		  : undef;
		ok(!$bad, "$sname: no inline secret in '$str'" . ($bad ? " ($bad)" : ''));
	}

	ok($s->{healthcheck} && $s->{healthcheck}{test}, "$sname: has a healthcheck");
}

# The shape of the two services.
my $pg = $compose->{services}{postgres};
my $cmd = join ' ', @{ $pg->{command} };
like($cmd, qr/shared_preload_libraries=exchange_adapter\b/, 'postgres: the library is preloaded');
like($cmd, qr{exchange_adapter\.redis_url=redis://exchange_adapter\@redis:6379}, 'postgres: the worker uses the ACL user');
like($cmd, qr{exchange_adapter\.redis_password_file=/run/secrets/redis_password\b}, 'postgres: Redis password from the secret file');
ok($seen_secret_use{postgres}{redis_password}, 'postgres: ... which is mounted');
is($pg->{environment}{POSTGRES_PASSWORD_FILE}, '/run/secrets/postgres_password', 'postgres: superuser password from a file');
is($pg->{environment}{EXCHANGE_ADAPTER_PASSWORD_FILE}, '/run/secrets/exchange_adapter_password',
	'postgres: application role password from a file');
is($pg->{depends_on}{redis}{condition}, 'service_healthy', 'postgres: waits for a healthy redis');
my ($pgvol) = map { (split /:/)[0] } grep { m{:/var/lib/postgresql/data} } @{ $pg->{volumes} };
ok(defined $pgvol && exists $compose->{volumes}{$pgvol}, 'postgres: data on a named volume') ;
like($pgvol // '', qr/pg15/, 'postgres: the volume is new and says PostgreSQL 15 (not the orchestrator\'s 17 volume)');

my $rd = $compose->{services}{redis};
like($rd->{image}, qr/^redis:7/, 'redis: Redis 7 image');
like(join(' ', @{ $rd->{command} }), qr{redis-server /usr/local/etc/redis/redis\.conf}, 'redis: runs redis.conf');
my $hc = join ' ', @{ $rd->{healthcheck}{test} };
like($hc, qr/--user healthcheck\b/, 'redis: healthcheck authenticates as the healthcheck user');
like($hc, qr{REDISCLI_AUTH="\$\$\(cat /run/secrets/redis_healthcheck_password\)"}, 'redis: ... with the password from its secret file');

# ---------------------------------------------------------------------------------------------
# Redis files

my $conf = slurp("$docker/redis/redis.conf");
like($conf, qr/^maxmemory-policy noeviction$/m, 'redis.conf: maxmemory-policy noeviction');
like($conf, qr{^aclfile /run/redis/users\.acl$}m, 'redis.conf: users from the rendered ACL file');
unlike($conf, qr/^\s*requirepass/m, 'redis.conf: no requirepass');
like($conf, qr/^protected-mode yes$/m, 'redis.conf: protected-mode yes');
my $entry = slurp("$docker/redis/entrypoint.sh");
like($entry, qr{REDIS_ACL_FILE:-/run/redis/users\.acl}, 'entrypoint.sh renders to the aclfile of redis.conf');

for my $acl (qw(users.acl users-strict.acl))
{
	my @lines = grep { !/^\s*(#|$)/ } split /\n/, slurp("$docker/redis/$acl");
	my %user = map { /^user (\S+) (.*)$/ ? ($1 => $2) : () } @lines;
	is(scalar(keys %user), scalar(@lines), "$acl: every line is a user line");
	like($user{default} // '', qr/^off\b/, "$acl: the default user is off");
	for my $u (sort keys %user)
	{
		my @pw = $user{$u} =~ /(?:^|\s)([#><!]\S*)/g;
		ok(!grep({ !/^#(%%[a-z_]+%%|[0-9a-f]{64})$/ } @pw), "$acl: $u: no cleartext password (@pw)");
		unlike($user{$u}, qr/\bnopass\b/, "$acl: $u: no nopass");
		for my $ph ($user{$u} =~ /%%([a-z_]+)%%/g)
		{
			ok($seen_secret_use{redis}{$ph}, "$acl: $u: placeholder %%$ph%% is a secret mounted in the redis service");
		}
	}
	like($user{healthcheck} // '', qr/-\@all \+ping$/, "$acl: healthcheck may only PING");
}
my $rule = (slurp("$docker/redis/users.acl") =~ /^user exchange_adapter (.*)$/m)[0];
for my $tok ('~exchange:*', '&exchange:*', qw(+@read +@write +@keyspace +ping +publish +multi +exec +select -@dangerous))
{
	ok((grep { $_ eq $tok } split ' ', $rule), "users.acl: exchange_adapter has $tok (README \"Redis delivery\", ACL)");
}
like($rule, qr/-\@dangerous$/, 'users.acl: -@dangerous comes last');
my $strict = (slurp("$docker/redis/users-strict.acl") =~ /^user exchange_adapter (.*)$/m)[0];
unlike($strict, qr/\+(ping|publish|multi|exec)\b|&/, 'users-strict.acl: no PING, PUBLISH, MULTI/EXEC or channel');

# ---------------------------------------------------------------------------------------------
# Dockerfile

my $df = slurp("$docker/Dockerfile");
$df =~ s/\\\n/ /g;
my @ins = grep { /\S/ && !/^\s*#/ } split /\n/, $df;
my @from = grep { /^FROM\s/i } @ins;
is(scalar @from, 2, 'Dockerfile: two stages');
like($from[0], qr/^FROM postgres:15-bookworm AS build$/i, 'Dockerfile: build stage on postgres:15-bookworm');
like($from[1], qr/^FROM postgres:15-bookworm$/i, 'Dockerfile: runtime stage on postgres:15-bookworm');

my $ctx = "$docker/" . $pg->{build}{context};
my ($stage, %stage_runs) = (0);
for my $i (@ins)
{
	$stage++ if $i =~ /^FROM\s/i;
	push @{ $stage_runs{$stage} }, $1 if $i =~ /^RUN\s+(.*)$/i;
	next unless $i =~ /^(?:COPY|ADD)\s+(.*)$/i;
	my @args = split ' ', $1;
	my @flags = grep { /^--/ } @args;
	my @paths = grep { !/^--/ } @args;
	pop @paths;    # destination
	next if grep { /^--from=/ } @flags;
	for my $p (@paths)
	{
		my @m = glob("$ctx/$p");
		ok(@m && -e $m[0], "Dockerfile: COPY source $p exists in the build context");
	}
}
like(join(' ', @{ $stage_runs{1} }), qr/make .*make install .*DESTDIR=\/out/, 'Dockerfile: build stage runs make && make install DESTDIR=/out');
my ($pkgs) = join(' ', @{ $stage_runs{2} }) =~ /apt-get install -y --no-install-recommends ([^;]*);/;
is($pkgs // '', 'libhiredis0.14', 'Dockerfile: the runtime stage adds libhiredis0.14 only');
like($df, qr{COPY --from=build /out/ /}, 'Dockerfile: runtime copies the built files');
like($df, qr{COPY docker/initdb/10-exchange-adapter\.sh /docker-entrypoint-initdb\.d/}, 'Dockerfile: init script in /docker-entrypoint-initdb.d');
like($df, qr{COPY docker/initdb/exchange_adapter_init\.sql \S+ /usr/local/share/exchange_adapter/},
	'Dockerfile: its SQL outside the init directory (which would run a .sql on its own)');
like(slurp("$docker/initdb/10-exchange-adapter.sh"), qr{/usr/local/share/exchange_adapter/exchange_adapter_init\.sql},
	'init script looks for its SQL where the image puts it');
ok(-x "$docker/initdb/10-exchange-adapter.sh", 'init script is executable (the entrypoint would source it otherwise)');

done_testing();
