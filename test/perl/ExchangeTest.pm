# test/perl/ExchangeTest.pm — helpers for exchange_adapter's Perl TAP tests (test/t/*.pl).
#
#   use PostgreSQL::Test::Utils;
#   use Test::More;
#   use ExchangeTest;
#
#   my $redis = ExchangeTest::Redis->start;                 # private redis-server, free port
#   my $node  = exchange_node('primary', redis => $redis, create_extension => 1);
#   is($redis->cli('PING'), 'PONG');
#   $redis->stop;  $redis->start;                           # outage and recovery, same port
#   poll_until(sub { $redis->cli('EXISTS', 'exchange:x') eq '1' }, 'key pushed');
#
# scripts/test.sh runs each file with PERL5LIB naming PostgreSQL 15's test modules and this
# directory, TESTDIR set to the tree (data and logs go to tmp_check/), PATH starting with the
# PostgreSQL 15 binaries, and REDIS_SERVER / REDIS_CLI naming the redis binaries; REDIS_PORT names
# the run's shared redis (tests that need their own start one with ExchangeTest::Redis).
#
# On SIGINT/SIGTERM a test exits through its END blocks, so its nodes and redis servers stop
# (scripts/test.sh also stops, by pid file, anything left under tmp_check/).

package ExchangeTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(exchange_node poll_until);

# Default END-block teardown does not run when a signal kills perl; exiting does run it.
$SIG{INT} = $SIG{TERM} = sub {
	my $sig = shift;
	diag("caught SIG$sig: stopping this test's servers");
	exit(1);
};

=pod

=head2 exchange_node(NAME, %options)

A PostgreSQL::Test::Cluster node with shared_preload_libraries = 'exchange_adapter', initialised
and (unless C<start =E<gt> 0>) started. Options:

  database          exchange_adapter.database (default 'postgres')
  redis             an ExchangeTest::Redis: sets exchange_adapter.redis_url to it
  redis_url         or the URL itself (default: '' = no Redis)
  conf              extra postgresql.conf text
  init              hashref of options for Cluster->init (e.g. { allows_streaming => 1 })
  start             0: do not start (default 1)
  create_extension  1: CREATE EXTENSION exchange_adapter in `database` after start

=cut

sub exchange_node
{
	my ($name, %opt) = @_;
	my $database = $opt{database} // 'postgres';
	my $url =
	    defined $opt{redis} ? $opt{redis}->url
	  : defined $opt{redis_url} ? $opt{redis_url}
	  : '';

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opt{init} // {} });
	$node->append_conf(
		'postgresql.conf', <<"EOF" . ($opt{conf} // ''));
shared_preload_libraries = 'exchange_adapter'
exchange_adapter.database = '$database'
exchange_adapter.redis_url = '$url'
EOF
	return $node if defined $opt{start} && !$opt{start};

	$node->start;
	$node->safe_psql($database, 'CREATE EXTENSION exchange_adapter')
	  if $opt{create_extension};
	return $node;
}

=pod

=head2 poll_until(CODE, DESCRIPTION [, SECONDS])

Calls CODE every 100 ms until it returns true or SECONDS (default: the PostgreSQL test timeout,
180 s) pass; passes or fails one test named DESCRIPTION. Returns CODE's last result.

=cut

sub poll_until
{
	my ($code, $desc, $secs) = @_;
	$secs //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $secs;
	my $r;
	while (1)
	{
		$r = $code->();
		last if $r || time() >= $deadline;
		usleep(100_000);
	}
	ok($r, $desc);
	return $r;
}

package ExchangeTest::Redis;

use strict;
use warnings;

use File::Path qw(mkpath);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use Time::HiRes qw(usleep);

my @started;

=pod

=head2 ExchangeTest::Redis->start(%options)

Starts a private redis-server on 127.0.0.1 (protected mode, no persistence, daemonized, pid and
log in tmp_check/redis_<port>/). Options:

  port     reuse this port (to restart after stop); default: a free one, reserved through
           PostgreSQL::Test::Cluster::get_free_port so concurrent tests never share it
  conf     extra redis.conf text (e.g. "requirepass x\n", an "aclfile ..." line, "user ...")

Methods: port, url, pid, dir, logfile, cli(ARGS) (output, trimmed), stop, kill9 (crash),
start (again, same port and conf), is_running.

=cut

sub start
{
	my ($class_or_self, %opt) = @_;
	my $self =
	  ref $class_or_self ? $class_or_self : bless({ conf => '' }, $class_or_self);
	$self->{conf} = $opt{conf} if defined $opt{conf};
	$self->{port} = $opt{port} // $self->{port}
	  // PostgreSQL::Test::Cluster::get_free_port();
	$self->{dir} //= "$PostgreSQL::Test::Utils::tmp_check/redis_$self->{port}";
	mkpath($self->{dir});
	my $dir = $self->{dir};
	unlink("$dir/redis.pid");

	open(my $fh, '>', "$dir/redis.conf") or die "could not write $dir/redis.conf: $!";
	print $fh <<"EOF" . $self->{conf};
port $self->{port}
bind 127.0.0.1
protected-mode yes
save ""
appendonly no
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
EOF
	close $fh;

	my $server = $ENV{REDIS_SERVER} // 'redis-server';
	my ($out, $err) = ('', '');
	IPC::Run::run([ $server, "$dir/redis.conf" ], '>', \$out, '2>', \$err)
	  or die "could not start $server: $err$out";

	# Ready when our own pid is alive and our own log says so.
	my $deadline = time() + 30;
	while (1)
	{
		my $pid = _read_pid("$dir/redis.pid");
		if ($pid && kill(0, $pid) && _log_has("$dir/redis.log", 'Ready to accept connections'))
		{
			$self->{pid} = $pid;
			last;
		}
		die "redis-server on port $self->{port} did not start; see $dir/redis.log"
		  if time() >= $deadline
		  || _log_has("$dir/redis.log", 'Could not create server TCP listening socket');
		usleep(50_000);
	}
	push @started, $self unless grep { $_ == $self } @started;
	return $self;
}

sub port    { $_[0]{port} }
sub pid     { $_[0]{pid} }
sub dir     { $_[0]{dir} }
sub logfile { "$_[0]{dir}/redis.log" }
sub url     { my ($self, $user) = @_; 'redis://' . (defined $user ? "$user\@" : '') . "127.0.0.1:$self->{port}" }

sub is_running
{
	my $self = shift;
	return $self->{pid} && kill(0, $self->{pid}) ? 1 : 0;
}

# redis-cli against this server; returns stdout without the trailing newline. Options may be
# passed first as a hashref: { user => ..., password => ... } (password goes through REDISCLI_AUTH,
# never the command line).
sub cli
{
	my $self = shift;
	my $o = ref $_[0] eq 'HASH' ? shift : {};
	my @cmd = ($ENV{REDIS_CLI} // 'redis-cli', '-h', '127.0.0.1', '-p', $self->{port});
	push @cmd, '--user', $o->{user} if defined $o->{user};
	local $ENV{REDISCLI_AUTH} = $o->{password} if defined $o->{password};
	my ($out, $err) = ('', '');
	IPC::Run::run([ @cmd, @_ ], '<', \undef, '>', \$out, '2>', \$err);
	$out =~ s/\n\z//;
	return $out;
}

# Stops the server (SIGTERM, then SIGKILL after 10 s). The port stays ours for start().
sub stop
{
	my $self = shift;
	return unless $self->{pid};
	_signal_wait($self->{pid}, 'TERM', 10);
	delete $self->{pid};
}

# Simulates a crash: SIGKILL, nothing saved.
sub kill9
{
	my $self = shift;
	return unless $self->{pid};
	_signal_wait($self->{pid}, 'KILL', 10);
	delete $self->{pid};
}

sub _signal_wait
{
	my ($pid, $sig, $secs) = @_;
	kill($sig, $pid) or return;
	my $deadline = time() + $secs;
	while (kill(0, $pid))
	{
		if (time() >= $deadline)
		{
			kill('KILL', $pid);
			last;
		}
		usleep(50_000);
	}
}

sub _read_pid
{
	my $f = shift;
	open(my $fh, '<', $f) or return undef;
	my $pid = <$fh>;
	close $fh;
	return undef unless defined $pid && $pid =~ /^(\d+)/;
	return $1;
}

sub _log_has
{
	my ($f, $what) = @_;
	open(my $fh, '<', $f) or return 0;
	local $/;
	my $text = <$fh>;
	close $fh;
	return index($text // '', $what) >= 0;
}

END
{
	my $rc = $?;
	$_->stop for grep { $_->{pid} } @started;
	$? = $rc;
}

1;
