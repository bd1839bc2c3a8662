#!/usr/bin/perl
# bench/redis_bench.pl — the cost and speed of Redis delivery.
#
#   bench/redis_bench.sh [latency] [cost] [drain] [feed]   (as root or postgres; default: the first three)
#
# Starts its own redis-server and PostgreSQL 15 cluster (library preloaded) on private ports,
# runs the phases asked for, prints figures and stops everything. No assertions: the targets of
# bench/README.md (p99 <= 5 ms, cost <= 10 %, >= 100,000 rows/s, flat memory) are printed beside
# them.
#
#   latency  pgbench at a fixed rate (BENCH_RATE, default 1000 tx/s) of one-deposit transactions,
#            each in an asset of its own (C<client>N<n>) so that its keys name it; Redis MONITOR
#            stamps the worker's UNLINK of those keys; commit->deletion latency = that stamp -
#            the transaction's completion time in pgbench's log. p50, p99, max.
#   cost     pgbench throughput (no rate limit) with the worker delivering vs with redis_url = ''
#            (rows only accumulate), alternated twice.
#   drain    BENCH_ROWS (1,000,000) outbox rows over BENCH_KEYS (10,000) accounts, 2 keys a row,
#            one xid a row (as after an outage of 1M single-call transactions), inserted while
#            Redis is unset; then Redis is set and the time to an empty outbox is measured:
#            rows/s, UNLINK/DEL and PUBLISH commands (INFO commandstats), worker RSS before/after.
#   feed     (only when asked) BENCH_FEED_ROWS (200,000) outbox rows naming one execution each
#            (of 1,000 real apply_trade fills), one xid a row, inserted while Redis is unset;
#            then the drain as above: rows/s, each row an invalidation and a trade PUBLISH.
#
# Environment: BENCH_PG_PORT (55451), BENCH_REDIS_PORT (56451), BENCH_DIR (a new temp dir),
# PG_BINDIR (/usr/lib/postgresql/15/bin), REDIS_SERVER, REDIS_CLI, BENCH_RATE, BENCH_SECONDS (10),
# BENCH_ROWS, BENCH_KEYS, BENCH_BATCH (outbox_batch_size for the drain, default 1000), BENCH_FEED_ROWS,
# BENCH_FILLFACTOR (an experiment: ALTER TABLE exchange.outbox SET (fillfactor = N) first).
use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX qw(floor);
use Time::HiRes qw(time usleep);

my $bindir  = $ENV{PG_BINDIR}        // '/usr/lib/postgresql/15/bin';
my $pgport  = $ENV{BENCH_PG_PORT}    // 55451;
my $rport   = $ENV{BENCH_REDIS_PORT} // 56451;
my $dir     = $ENV{BENCH_DIR}        // tempdir('exa-bench-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $rate    = $ENV{BENCH_RATE}       // 1000;
my $secs    = $ENV{BENCH_SECONDS}    // 10;
my $rows    = $ENV{BENCH_ROWS}       // 1_000_000;
my $nkeys   = $ENV{BENCH_KEYS}       // 10_000;
my $batch   = $ENV{BENCH_BATCH}      // 1000;
my $feedrows = $ENV{BENCH_FEED_ROWS} // 200_000;
my $rserver = $ENV{REDIS_SERVER}     // 'redis-server';
my $rcli    = $ENV{REDIS_CLI}        // 'redis-cli';
my %phase   = map { $_ => 1 } (@ARGV ? @ARGV : qw(latency cost drain));

my $pgdata = "$dir/pgdata";
my @psql = ("$bindir/psql", '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', $dir, '-p', $pgport, '-U', 'postgres');

sub say { print @_, "\n" }
sub run { system(@_) == 0 or die "failed: @_\n" }
sub sql
{
	my ($db, $q) = @_;
	open(my $fh, '-|', @psql, '-d', $db, '-c', $q) or die "psql: $!";
	local $/;
	my $out = <$fh> // '';
	close($fh) or die "psql failed on: $q\n";
	$out =~ s/^\s+|\s+$//g;
	return $out;
}
sub sqlf
{
	my ($db, $q) = @_;
	open(my $fh, '>', "$dir/q.sql") or die;
	print $fh $q;
	close $fh;
	my $out = `@psql -d $db -f $dir/q.sql`;
	die "psql: $out" if $?;
	chomp $out;
	return $out;
}
sub rcli { my $out = `$rcli -p $rport @_`; chomp $out; $out }

sub conf_set
{
	my ($line) = @_;
	open(my $fh, '>>', "$pgdata/postgresql.conf") or die;
	print $fh "$line\n";
	close $fh;
	run("$bindir/pg_ctl", '-D', $pgdata, 'reload', '-s');
	usleep(300_000);
}

sub worker_pid { sql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'exchange_adapter worker'}) }

# VmRSS counts the shared buffers a process has touched; RssAnon is its private memory.
sub rss_kb
{
	my ($pid) = @_;
	my %m;
	open(my $fh, '<', "/proc/$pid/status") or return "?";
	while (<$fh>) { $m{$1} = $2 if /^(VmRSS|RssAnon):\s+(\d+)/ }
	return "$m{VmRSS} kB (private $m{RssAnon} kB)";
}

# CPU seconds (user + system) a process has used.
sub cpu_secs
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my @f = split ' ', (<$fh> =~ s/^.*\) //r);
	return ($f[11] + $f[12]) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

sub commandstats
{
	my %c;
	for (split /\r?\n/, rcli('INFO', 'commandstats'))
	{
		$c{$1} = $2 if /^cmdstat_(\w+):calls=(\d+)/;
	}
	return \%c;
}

sub wait_outbox_empty
{
	my ($timeout, $every) = @_;
	my $t0 = time();
	while (time() - $t0 < $timeout)
	{
		# min(id) walks the primary key from its low end: cheap even over a drained region
		return time() if sql('bench', 'SELECT min(id) IS NULL FROM exchange.outbox') eq 't';
		usleep(1_000_000 * ($every // 0.1));
	}
	die "outbox not empty after $timeout s\n";
}

# ---- servers --------------------------------------------------------------------------------
my @cleanup;
END
{
	my $rc = $?;
	$_->() for reverse @cleanup;
	$? = $rc;
}
$SIG{INT} = $SIG{TERM} = sub { exit 1 };

run($rserver, '--port', $rport, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
	'--daemonize', 'yes', '--pidfile', "$dir/redis.pid", '--logfile', "$dir/redis.log", '--dir', $dir);
push @cleanup, sub { system("$rcli -p $rport shutdown nosave >/dev/null 2>&1") };
usleep(300_000);

run("$bindir/initdb -D $pgdata -A trust -U postgres -N > $dir/initdb.log 2>&1");
open(my $conf, '>>', "$pgdata/postgresql.conf") or die;
print $conf <<"EOF";
port = $pgport
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 50
shared_buffers = '256MB'
shared_preload_libraries = 'exchange_adapter'
exchange_adapter.database = 'bench'
exchange_adapter.redis_url = 'redis://127.0.0.1:$rport'
exchange_adapter.outbox_flush_after = -1
EOF
close $conf;
run("$bindir/pg_ctl", '-D', $pgdata, '-l', "$dir/pg.log", '-w', '-s', 'start');
push @cleanup, sub { system("$bindir/pg_ctl", '-D', $pgdata, '-m', 'fast', '-s', 'stop') };

sql('postgres', 'CREATE DATABASE bench');
sql('bench', 'CREATE EXTENSION exchange_adapter');
sqlf('bench', <<'EOF');
CREATE TABLE public.bench_accounts (i int PRIMARY KEY, account_id uuid NOT NULL);
INSERT INTO public.bench_accounts
SELECT i, (exchange.create_account('bench-' || i)).account_id FROM generate_series(1, 1000) i;
EOF
my $t = time();
while (!worker_pid() && time() - $t < 30) { usleep(100_000) }
say "== exchange_adapter Redis delivery benchmark (PostgreSQL ", sql('postgres', 'SHOW server_version'),
  ', redis ', (rcli('INFO', 'server') =~ /redis_version:(\S+)/)[0], ', ', `nproc` =~ s/\n//r, ' cores)';

# ---- latency ----------------------------------------------------------------------------------
if ($phase{latency})
{
	# MONITOR: Redis stamps every command it executes; the worker's UNLINK of a transaction's
	# keys is its deletion time, whatever the load on the observing process.
	my $monout = "$dir/monitor.out";
	my $pid = fork();
	if ($pid == 0)
	{
		@cleanup = ();
		$SIG{INT} = $SIG{TERM} = 'DEFAULT';
		open(STDOUT, '>', $monout) or die;
		exec($rcli, '-p', $rport, 'MONITOR') or POSIX::_exit(1);
	}
	push @cleanup, sub { kill 'TERM', $pid; waitpid($pid, 0) };
	usleep(300_000);

	open(my $fh, '>', "$dir/latency.pgb") or die;
	print $fh <<'EOF';
\set n :n + 1
\set a random(1, 1000)
SELECT exchange.deposit((SELECT account_id FROM public.bench_accounts WHERE i = :a), 'C' || :client_id || 'N' || :n, 1);
EOF
	close $fh;
	my $clients = 4;
	run("cd $dir && $bindir/pgbench -n -h $dir -p $pgport -U postgres -c $clients -j 1 -R $rate -T $secs "
		  . "-D n=0 -f latency.pgb --log --log-prefix=lat bench > $dir/lat.txt 2>&1");
	wait_outbox_empty(120);
	usleep(500_000);
	kill 'TERM', $pid;
	waitpid($pid, 0);

	my %done;    # "client:n" -> completion time
	for my $f (glob("$dir/lat.*"))
	{
		next if $f =~ /\.txt$/;
		open(my $l, '<', $f) or die;
		while (<$l>)
		{
			my ($client, $txno, $lat, $script, $epoch, $us) = split;
			# transaction_no counts from 1, like :n in the script
			$done{"$client:$txno"} = $epoch + $us / 1e6;
		}
	}
	my @lat;
	open(my $m, '<', $monout) or die;
	while (<$m>)
	{
		next unless /^(\d+\.\d+) \[[^\]]*\] "(?:UNLINK|DEL)"/;
		my $when = $1;
		while (/:C(\d+)N(\d+)"/g)
		{
			my $k = "$1:$2";
			push @lat, ($when - $done{$k}) * 1000 if exists $done{$k};
			delete $done{$k};
		}
	}
	@lat = sort { $a <=> $b } @lat;
	my $pct = sub { my $p = shift; @lat ? $lat[ floor($p * $#lat) ] : -1 };
	my ($tps) = (`cat $dir/lat.txt` =~ /tps = ([\d.]+)/);
	say "\n-- latency: commit -> deletion, $clients clients at $rate tx/s for $secs s (pgbench tps $tps)";
	printf "   transactions matched: %d\n", scalar @lat;
	printf "   p50 %.2f ms   p99 %.2f ms   max %.2f ms   (target p99 <= 5 ms)\n",
	  $pct->(0.50), $pct->(0.99), $lat[-1] // -1;
}

# ---- cost -----------------------------------------------------------------------------------
if ($phase{cost})
{
	open(my $fh, '>', "$dir/cost.pgb") or die;
	print $fh <<'EOF';
\set a random(1, 1000)
SELECT exchange.deposit((SELECT account_id FROM public.bench_accounts WHERE i = :a), 'USD', 1);
EOF
	close $fh;
	my %tps = (on => [], off => []);
	for my $mode (qw(on off on off))
	{
		conf_set($mode eq 'on'
			? "exchange_adapter.redis_url = 'redis://127.0.0.1:$rport'"
			: "exchange_adapter.redis_url = ''");
		wait_outbox_empty(300) if $mode eq 'on';
		sql('bench', 'CHECKPOINT');
		my ($wpid, $rpid) = (worker_pid(), `cat $dir/redis.pid` =~ s/\s//gr);
		my ($w0, $r0) = (cpu_secs($wpid), cpu_secs($rpid));
		my $out = `$bindir/pgbench -n -h $dir -p $pgport -U postgres -c 4 -j 2 -T $secs -f $dir/cost.pgb bench 2>&1`;
		my ($tps) = $out =~ /tps = ([\d.]+)/;
		push @{ $tps{$mode} }, $tps;
		if ($mode eq 'on')
		{
			push @{ $tps{worker_cpu} }, (cpu_secs($wpid) - $w0) / $secs;
			push @{ $tps{redis_cpu} },  (cpu_secs($rpid) - $r0) / $secs;
			push @{ $tps{per_ktx} }, 1e6 * (cpu_secs($wpid) - $w0) / ($tps * $secs);
		}
	}
	conf_set("exchange_adapter.redis_url = 'redis://127.0.0.1:$rport'");
	wait_outbox_empty(300);
	my $avg = sub { my $l = shift; my $s = 0; $s += $_ for @$l; $s / @$l };
	my ($on, $off) = ($avg->($tps{on}), $avg->($tps{off}));
	say "\n-- cost: deposit throughput, 4 clients, $secs s runs alternated";
	printf "   worker delivering: %.0f tps (%s)   worker off: %.0f tps (%s)\n", $on,
	  join('/', map { int } @{ $tps{on} }), $off, join('/', map { int } @{ $tps{off} });
	printf "   cost of delivery: %.1f %%   (target <= 10 %%; 2 shared cores: noisy)\n",
	  100 * ($off - $on) / $off;
	printf "   while delivering: worker %.0f %% of a core (%.0f ms CPU per 1,000 transactions), redis-server %.0f %% of a core\n",
	  100 * $avg->($tps{worker_cpu}), $avg->($tps{per_ktx}), 100 * $avg->($tps{redis_cpu});
}

# ---- drain ----------------------------------------------------------------------------------
if ($phase{drain})
{
	conf_set("exchange_adapter.redis_url = ''");
	conf_set("exchange_adapter.outbox_batch_size = $batch");
	my $wpid = worker_pid();
	my $rss0 = rss_kb($wpid);
	my $t0 = time();
	# BENCH_FILLFACTOR: an experiment (room for HOT claims), not the shipped table.
	sql('bench', "ALTER TABLE exchange.outbox SET (fillfactor = $ENV{BENCH_FILLFACTOR})")
	  if $ENV{BENCH_FILLFACTOR};
	sqlf('bench', <<"EOF");
INSERT INTO exchange.outbox (xid, kind, keys)
SELECT (1000000000 + i)::text::xid8, 'cache',
       ARRAY['cache:balance:acct' || (i % $nkeys) || ':USD', 'cache:balances:acct' || (i % $nkeys)]
  FROM generate_series(1, $rows) i;
VACUUM ANALYZE exchange.outbox;
EOF
	my $tload = time() - $t0;
	# The keys exist in Redis, as caches repopulated during the outage would.
	open(my $p, '|-', "$rcli -p $rport --pipe >/dev/null") or die;
	for my $i (0 .. $nkeys - 1)
	{
		print $p "SET exchange:cache:balance:acct$i:USD x\r\nSET exchange:cache:balances:acct$i x\r\n";
	}
	close $p;
	my $c0 = commandstats();
	my $pending = sql('bench', 'SELECT count(*) FROM exchange.outbox');
	my $distinct = sql('bench', 'SELECT count(DISTINCT k) FROM exchange.outbox, unnest(keys) k');
	$t0 = time();
	conf_set("exchange_adapter.redis_url = 'redis://127.0.0.1:$rport'");
	my $t1 = wait_outbox_empty(3600, 0.5);
	my $elapsed = $t1 - $t0;
	my $c1 = commandstats();
	my $rss1 = rss_kb($wpid);
	my $d = sub { my $k = shift; ($c1->{$k} // 0) - ($c0->{$k} // 0) };
	say "\n-- drain: $pending outbox rows over $distinct distinct keys (2 keys a row, one xid a row), batch $batch";
	printf "   rows inserted in %.1f s; drained in %.1f s: %.0f rows/s   (target >= 100,000 rows/s)\n",
	  $tload, $elapsed, $pending / $elapsed;
	printf "   commands sent: UNLINK %d, DEL %d, PUBLISH %d, keys left %s\n",
	  $d->('unlink'), $d->('del'), $d->('publish'), rcli('DBSIZE');
	printf "   worker RSS: %s before, %s after (pid %s%s)\n", $rss0, $rss1, $wpid,
	  worker_pid() eq $wpid ? '' : ', RESTARTED';
}

# ---- feed -----------------------------------------------------------------------------------
# A backlog of rows that each name one execution (README "Trade feed"): the claim renders the
# messages from exchange.trades, then one invalidation and one trade PUBLISH per row.
if ($phase{feed})
{
	conf_set("exchange_adapter.redis_url = ''");
	conf_set("exchange_adapter.outbox_batch_size = $batch");
	my $t0 = time();
	sqlf('bench', <<"EOF");
SELECT exchange.create_market('FEED-USD', 'FEED', 'USD');
SELECT exchange.set_kyc_status(account_id, 'APPROVED') FROM public.bench_accounts WHERE i = 1;
SELECT exchange.deposit(account_id, 'USD', 1000000000) FROM public.bench_accounts WHERE i = 1;
SELECT exchange.place_order(account_id, 'FEED-USD', 'BUY', 'LIMIT', 1000000, 100)
  FROM public.bench_accounts WHERE i = 1;
DO \$\$
DECLARE
	o uuid := (SELECT order_id FROM exchange.orders WHERE symbol = 'FEED-USD');
BEGIN
	FOR i IN 1..1000 LOOP
		PERFORM exchange.apply_trade(o, 1, 100 - i % 7, liquidity => 'TAKER');
	END LOOP;
END
\$\$;
DELETE FROM exchange.outbox;
INSERT INTO exchange.outbox (xid, kind, keys, trade_ids)
SELECT (2000000000 + i)::text::xid8, 'cache', ARRAY['cache:trades:acct' || (i % $nkeys)], ARRAY[t.trade_id]
  FROM generate_series(1, $feedrows) i
  JOIN (SELECT trade_id, row_number() OVER () - 1 AS n FROM exchange.trades
         WHERE symbol = 'FEED-USD') t ON t.n = i % 1000;
VACUUM ANALYZE exchange.outbox;
EOF
	my $tload = time() - $t0;
	my $c0 = commandstats();
	my $pending = sql('bench', 'SELECT count(*) FROM exchange.outbox');
	$t0 = time();
	conf_set("exchange_adapter.redis_url = 'redis://127.0.0.1:$rport'");
	my $t1 = wait_outbox_empty(3600, 0.5);
	my $elapsed = $t1 - $t0;
	my $c1 = commandstats();
	my $d = sub { my $k = shift; ($c1->{$k} // 0) - ($c0->{$k} // 0) };
	say "\n-- feed: $pending outbox rows naming one execution each (one xid a row), batch $batch";
	printf "   rows made in %.1f s; drained in %.1f s: %.0f rows/s (each an invalidation and a trade message)\n",
	  $tload, $elapsed, $pending / $elapsed;
	printf "   commands sent: UNLINK %d, DEL %d, PUBLISH %d\n", $d->('unlink'), $d->('del'), $d->('publish');
}
say '';
