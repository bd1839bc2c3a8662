# test/perl/ExchangeRedis.pm — Redis-side helpers for the delivery tests (test/t/1xx_redis_*.pl),
# on top of ExchangeTest.pm (nodes, private redis-server, poll_until).
#
#   my $r    = ExchangeRedis->start;                 # redis-server with docker/redis/users.acl rendered
#   my $r    = ExchangeRedis->start(strict => 1);    # ... with users-strict.acl (no PUBLISH/PING/MULTI)
#   my $node = $r->node('n1', database => 'app');    # preloaded node pointed at it, app + extension
#   $r->admin('SET', 'exchange:cache:x', 1);         # redis-cli as the test's admin user
#   my $sub  = $r->subscribe;  ... $sub->messages    # decoded PUBLISH payloads on exchange:invalidations
#   my $mon  = $r->monitor;    ... $mon->commands    # [ [cmd, args...], ... ] sent by the worker's user
#   my $l    = ExchangeRedis::silent_listener();     # a TCP port that accepts and never answers
#
# The worker connects as the ACL user `exchange_adapter` with the password from a file
# (exchange_adapter.redis_password_file); the password is rendered into the ACL by
# docker/redis/entrypoint.sh (the production renderer), as a SHA-256 only. The test's own admin
# user is appended to the rendered file.

package ExchangeRedis;

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use File::Path qw(mkpath);
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use ExchangeTest;

our $PASSWORD = 'w0rker-S3cret-' . int(rand(1_000_000_000));
our $ADMIN_PASSWORD = 'adm1n-' . int(rand(1_000_000_000));

my $srcdir = $ENV{TESTDIR} // '.';

sub _render_acl
{
	my ($dir, $template) = @_;
	my $secrets = "$dir/secrets";
	mkpath($secrets);
	for my $name (qw(redis_password redis_healthcheck_password))
	{
		open(my $fh, '>', "$secrets/$name") or die "$secrets/$name: $!";
		print $fh ($name eq 'redis_password' ? $PASSWORD : 'health-' . int(rand(1e9))), "\n";
		close $fh;
	}
	local $ENV{REDIS_ACL_TEMPLATE} = $template;
	local $ENV{REDIS_ACL_FILE}     = "$dir/users.acl";
	local $ENV{REDIS_SECRETS_DIR}  = $secrets;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'sh', "$srcdir/docker/redis/entrypoint.sh" ], '>', \$out, '2>', \$err)
	  or die "rendering $template failed: $err$out";
	open(my $fh, '>>', "$dir/users.acl") or die $!;
	print $fh 'user admin on #' . sha256_hex($ADMIN_PASSWORD) . " ~* &* +\@all\n";
	close $fh;
	# The worker's password file, as an operator would write it (one line, newline).
	open($fh, '>', "$dir/redis_password") or die $!;
	print $fh "$PASSWORD\n";
	close $fh;
	chmod 0600, "$dir/redis_password";
	return "$dir/users.acl";
}

=pod

=head2 ExchangeRedis->start(strict => 0|1, port => N)

A private redis-server whose users come from docker/redis/users.acl (or users-strict.acl),
rendered by docker/redis/entrypoint.sh. Returns an object wrapping the ExchangeTest::Redis.

=cut

sub start
{
	my ($class, %opt) = @_;
	my $self = bless { strict => $opt{strict} // 0 }, $class;
	my $port = $opt{port} // PostgreSQL::Test::Cluster::get_free_port();
	my $dir  = "$PostgreSQL::Test::Utils::tmp_check/redis_acl_$port";
	mkpath($dir);
	my $template = "$srcdir/docker/redis/"
	  . ($self->{strict} ? 'users-strict.acl' : 'users.acl');
	die "missing $template" unless -f $template;
	my $acl = _render_acl($dir, $template);
	$self->{password_file} = "$dir/redis_password";
	$self->{redis} = ExchangeTest::Redis->start(port => $port, conf => "aclfile $acl\n");
	return $self;
}

sub redis         { $_[0]{redis} }
sub port          { $_[0]{redis}->port }
sub password_file { $_[0]{password_file} }
sub url           { 'redis://exchange_adapter@127.0.0.1:' . $_[0]->port }
sub stop          { $_[0]{redis}->stop }
sub restart       { my $s = shift; $s->{redis}->start; return $s }
sub is_running    { $_[0]{redis}->is_running }

# redis-cli as the admin user.
sub admin
{
	my $self = shift;
	return $self->{redis}->cli({ user => 'admin', password => $ADMIN_PASSWORD }, @_);
}

# redis-cli as the worker's user.
sub as_worker
{
	my $self = shift;
	return $self->{redis}->cli({ user => 'exchange_adapter', password => $PASSWORD }, @_);
}

# The postgresql.conf lines that point a node at this server.
sub conf
{
	my $self = shift;
	return "exchange_adapter.redis_url = '" . $self->url . "'\n"
	  . "exchange_adapter.redis_password_file = '$self->{password_file}'\n";
}

=pod

=head2 $r->node(NAME, database => 'app', conf => '...', start => 1, extension => 1, init => {})

A node with the library preloaded, exchange_adapter.database = DATABASE, pointed at this Redis;
creates DATABASE and the extension in it (unless extension => 0), and waits for the worker.
INIT is passed to Cluster->init (e.g. { allows_streaming => 1 } for a primary).

=cut

sub node
{
	my ($self, $name, %opt) = @_;
	my $db = $opt{database} // 'app';
	my $node = exchange_node(
		$name,
		database  => $db,
		redis_url => $self->url,
		init      => $opt{init},
		start     => 0,
		conf      => "exchange_adapter.redis_password_file = '$self->{password_file}'\n"
		  . ($opt{conf} // ''));
	return $node if defined $opt{start} && !$opt{start};
	$node->start;
	setup_database($node, $db) unless defined $opt{extension} && !$opt{extension};
	return $node;
}

sub setup_database
{
	my ($node, $db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION exchange_adapter');
	wait_worker($node);
}

# Pid of the worker once it is connected to Redis (or after SECONDS, undef).
sub wait_worker
{
	my ($node, $secs) = @_;
	$secs //= 30;
	my $deadline = time() + $secs;
	while (time() < $deadline)
	{
		my $pid = worker_pid($node);
		return $pid if $pid;
		usleep(50_000);
	}
	return undef;
}

# Pid of the worker, undef when there is none or the server does not answer (yet).
sub worker_pid
{
	my ($node) = @_;
	my ($rc, $pid) = $node->psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'exchange_adapter worker'});
	return $rc == 0 && defined $pid && $pid ne '' ? $pid : undef;
}

# adapter_status() as a hashref.
sub status
{
	my ($node, $db) = @_;
	my $row = $node->safe_psql($db // 'app',
		q{SELECT row_to_json(s) FROM exchange.adapter_status() s});
	return decode_json($row);
}

# README "Security model", at the end of every test: the worker's password is in no server log.
sub password_not_logged
{
	my ($node) = @_;
	unlike(slurp_file($node->logfile), qr/\Q$PASSWORD\E/,
		'the Redis password is nowhere in the server log');
}

sub outbox_count
{
	my ($node, $db) = @_;
	return $node->safe_psql($db // 'app', 'SELECT count(*) FROM exchange.outbox') + 0;
}

# Runs SQL and returns its wall-clock duration in seconds and its result.
sub timed_psql
{
	my ($node, $db, $sql) = @_;
	my $t0 = time();
	my ($rc, $out, $err) = $node->psql($db, $sql);
	return (time() - $t0, $rc, $out, $err);
}

=pod

=head2 $r->subscribe(CHANNEL) / ->messages / ->stop

A redis-cli SUBSCRIBE running in the background (as admin); messages returns the decoded JSON
payloads received so far.

=cut

sub _client
{
	my ($self, @cmd) = @_;
	my $c = bless { out => '', lines => [] }, 'ExchangeRedis::Client';
	local $ENV{REDISCLI_AUTH} = $ADMIN_PASSWORD;
	$c->{h} = IPC::Run::start(
		[ $ENV{REDIS_CLI} // 'redis-cli', '-h', '127.0.0.1', '-p', $self->port, '--user', 'admin', @cmd ],
		'<', \undef, '>', \$c->{out}, '2>', \my $err);
	return $c;
}

sub subscribe
{
	my ($self, $channel) = @_;
	my $c = $self->_client('SUBSCRIBE', $channel // 'exchange:invalidations');
	# Wait for the subscription to be active.
	my $deadline = time() + 10;
	while (time() < $deadline)
	{
		$c->pump;
		last if $c->{out} =~ /^1$/m;
		usleep(20_000);
	}
	return $c;
}

sub monitor
{
	my ($self) = @_;
	my $c = $self->_client('MONITOR');
	my $deadline = time() + 10;
	while (time() < $deadline)
	{
		$c->pump;
		last if $c->{out} =~ /^OK$/m;
		usleep(20_000);
	}
	return $c;
}

=pod

=head2 silent_listener()

A TCP socket on 127.0.0.1 that listens and never accepts: connects complete (the kernel's
backlog) and nothing is ever answered. Returns [port, socket].

=cut

sub silent_listener
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $sock = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $port,
		Proto     => 'tcp',
		Listen    => 128,
		ReuseAddr => 1) or die "cannot listen on $port: $!";
	return { port => $port, socket => $sock };
}

package ExchangeRedis::Client;

use strict;
use warnings;
use JSON::PP;

sub pump
{
	my $self = shift;
	$self->{h}->pump_nb if $self->{h}->pumpable;
	return $self;
}

# SUBSCRIBE output (raw, one element a line): message / channel / payload.
sub messages
{
	my $self = shift;
	$self->pump;
	my @lines = split /\n/, $self->{out};
	my @msgs;
	for (my $i = 0; $i + 2 < @lines; $i++)
	{
		if ($lines[$i] eq 'message')
		{
			push @msgs, decode_json($lines[ $i + 2 ]);
			$i += 2;
		}
	}
	return \@msgs;
}

# MONITOR output: commands of connections other than ours, as [CMD, args...].
sub commands
{
	my $self = shift;
	$self->pump;
	my @cmds;
	for my $line (split /\n/, $self->{out})
	{
		next unless $line =~ /^\d+\.\d+ \[\d+ [^\]]+\] (.*)$/;
		my $rest = $1;
		my @args;
		while ($rest =~ /"((?:[^"\\]|\\.)*)"/g)
		{
			my $a = $1;
			$a =~ s/\\"/"/g;
			$a =~ s/\\\\/\\/g;
			push @args, $a;
		}
		$args[0] = uc $args[0] if @args;
		push @cmds, \@args;
	}
	return \@cmds;
}

sub clear
{
	my $self = shift;
	$self->pump;
	$self->{out} = '';
}

sub stop
{
	my $self = shift;
	$self->{h}->kill_kill if $self->{h};
	delete $self->{h};
}

1;
