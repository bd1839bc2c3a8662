# The matching engine under concurrency: 4 INTERNAL markets sharing 8 accounts and the quote
# asset (and a fifth, EXTERNAL, market on the same accounts, filled by apply_match); 8 pgbench
# clients place crossing orders (LIMIT / MARKET / STOP, every time in force, BUY and SELL,
# self-trades included), cancel and expire, deposit, withdraw, suspend or re-activate accounts
# and halt or resume markets, one API call per transaction; meanwhile a ninth client samples
# every INTERNAL market's best bid and best ask, each sample one statement (one snapshot: what
# some set of commits left).  README "Concurrency": calls never deadlock with each other,
# whatever markets, accounts and assets they share.
#
# Asserts: pgbench exits 0 with every transaction processed and none failed (a deadlock, 40P01,
# or a serialization failure, 40001, counts as failed: the wrappers re-raise them); no "deadlock
# detected" and no ERROR with an undocumented SQLSTATE in the server log; the checker saw the
# book uncrossed (max bid < min ask) in every sample, and it is uncrossed at the end;
# check_invariants() is empty; the run made matches on every market.
#
# The wrappers (schema stress, not part of the extension) catch the documented refusals (SQLSTATE
# classes LX and 22: a cancel racing a fill, a withdraw short of funds, a suspended account) and
# re-raise anything else, which aborts the pgbench client and fails the test.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use ExchangeTest;

my $clients = 8;
my $transactions = $ENV{EA_STRESS_TX} // 24_000;
my $seed = $ENV{EA_STRESS_SEED} // int(rand(1_000_000_000));

my %documented = map { $_ => 1 } (
	(map { sprintf('LX%03d', $_) } 1 .. 12), '22023', '22004', '22003');

my $node = exchange_node(
	'mstress',
	database => 'no_worker_here',
	conf => <<'EOF');
log_statement = none
log_error_verbosity = verbose
log_line_prefix = '%m [%p] %e %q%a '
log_lock_waits = on
deadlock_timeout = 200ms
max_connections = 40
EOF
$node->safe_psql('postgres', 'CREATE DATABASE mstress');
$node->safe_psql('mstress', 'CREATE EXTENSION exchange_adapter');

# ---------------------------------------------------------------------------------------------
# Fixture: 4 INTERNAL markets quoted in USDT (two self-trade modes each twice), 8 accounts funded
# in every asset.

$node->safe_psql('mstress', <<'EOF');
CREATE SCHEMA stress;
CREATE TABLE stress.acct (n int PRIMARY KEY, account_id uuid NOT NULL);
CREATE TABLE stress.mkt (n int PRIMARY KEY, symbol text NOT NULL, base text NOT NULL);
CREATE UNLOGGED TABLE stress.refusals (op text NOT NULL, sqlstate text NOT NULL, message text);
CREATE UNLOGGED TABLE stress.samples (at timestamptz NOT NULL DEFAULT clock_timestamp(),
                                      crossed text);

SELECT exchange.create_market('AAA-USDT', 'AAA', 'USDT', 0.01, 0.001, 0.001, 0, 0.001, 0.002,
                              matching => 'INTERNAL', self_trade => 'EXPIRE_MAKER');
SELECT exchange.create_market('BBB-USDT', 'BBB', 'USDT', 0.01, 0.001, 0.001, 0, 0.0005, 0.001,
                              matching => 'INTERNAL', self_trade => 'EXPIRE_TAKER');
SELECT exchange.create_market('CCC-USDT', 'CCC', 'USDT', 0.01, 0.001, 0.001, 0, 0, 0.001,
                              matching => 'INTERNAL', self_trade => 'EXPIRE_BOTH');
SELECT exchange.create_market('DDD-USDT', 'DDD', 'USDT', 0.01, 0.001, 0.001, 0, 0.002, 0.002,
                              matching => 'INTERNAL', self_trade => 'ALLOW');
-- and one EXTERNAL market on the same accounts and quote asset, filled by apply_match (1.0 calls)
SELECT exchange.create_market('EEE-USDT', 'EEE', 'USDT', 0.01, 0.001, 0.001, 0, 0.001, 0.002);
INSERT INTO stress.mkt VALUES (1, 'AAA-USDT', 'AAA'), (2, 'BBB-USDT', 'BBB'),
                              (3, 'CCC-USDT', 'CCC'), (4, 'DDD-USDT', 'DDD'), (5, 'EEE-USDT', 'EEE');

INSERT INTO stress.acct
SELECT n, (exchange.create_account('mstress-' || n)).account_id FROM generate_series(1, 8) n;
SELECT exchange.set_kyc_status(account_id, 'APPROVED') FROM stress.acct;
SELECT exchange.deposit(a.account_id, x.asset, x.amount)
  FROM stress.acct a,
       (VALUES ('USDT', 100000), ('AAA', 500), ('BBB', 500), ('CCC', 500), ('DDD', 500),
               ('EEE', 500)) x(asset, amount);

CREATE FUNCTION stress.passes(state text) RETURNS boolean LANGUAGE sql IMMUTABLE
	AS $$ SELECT state LIKE 'LX%' OR state LIKE '22%' $$;

CREATE FUNCTION stress.note(op text, state text, msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO stress.refusals VALUES (op, state, msg);
END $$;

CREATE FUNCTION stress.acct(a int) RETURNS uuid LANGUAGE sql STABLE
	AS $$ SELECT account_id FROM stress.acct WHERE n = a $$;

-- place_order.  typ 1-7 LIMIT, 8-9 MARKET, 10 STOP; tif 0 NULL, 1 GTC, 2 IOC, 3 FOK; price
-- 100 -/+ 0.25 + ticks x 0.01 (bids mostly below 100, asks mostly above, crossing often).
CREATE FUNCTION stress.place(a int, m int, side int, typ int, lots int, ticks int,
                             stop_ticks int, tif int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s text := CASE side WHEN 1 THEN 'BUY' ELSE 'SELL' END;
	t text := CASE WHEN typ <= 7 THEN 'LIMIT' WHEN typ <= 9 THEN 'MARKET' ELSE 'STOP' END;
	p numeric := 100 + (CASE side WHEN 1 THEN ticks - 25 ELSE 25 - ticks END) * 0.01;
	sp numeric;
	f text := (ARRAY[NULL, 'GTC', 'IOC', 'FOK'])[tif + 1];
BEGIN
	IF t = 'MARKET' AND f = 'GTC' THEN f := 'IOC'; END IF;
	IF t = 'MARKET' AND s = 'BUY' THEN p := p + 0.5; END IF;
	IF t = 'MARKET' AND s = 'SELL' AND ticks % 2 = 0 THEN p := NULL; END IF;
	IF t = 'STOP' THEN sp := 100 + (stop_ticks - 40) * 0.01; END IF;
	BEGIN
		PERFORM exchange.place_order(stress.acct(a), (SELECT symbol FROM stress.mkt WHERE n = m),
		                             s, t, lots * 0.001, p, f, sp);
	EXCEPTION WHEN OTHERS THEN
		IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
		PERFORM stress.note('place_order', SQLSTATE, SQLERRM);
	END;
END $$;

-- cancel_order / expire_order of a random live order (of any account: it may be filled
-- meanwhile, LX002).
CREATE FUNCTION stress.cancel(expire boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	id uuid;
BEGIN
	SELECT order_id INTO id FROM exchange.orders
	 WHERE status IN ('PENDING', 'OPEN', 'PARTIAL') ORDER BY random() LIMIT 1;
	IF id IS NULL THEN RETURN; END IF;
	BEGIN
		IF expire THEN
			PERFORM exchange.expire_order(id, 'stress');
		ELSE
			PERFORM exchange.cancel_order(id);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
		PERFORM stress.note(CASE WHEN expire THEN 'expire_order' ELSE 'cancel_order' END, SQLSTATE, SQLERRM);
	END;
END $$;

CREATE FUNCTION stress.funds(a int, k int, amount int, withdraw boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	asset text := (ARRAY['USDT', 'AAA', 'BBB', 'CCC', 'DDD'])[k];
	amt numeric := amount * CASE k WHEN 1 THEN 1 ELSE 0.01 END;
BEGIN
	IF withdraw THEN
		PERFORM exchange.withdraw(stress.acct(a), asset, amt);
	ELSE
		PERFORM exchange.deposit(stress.acct(a), asset, amt);
	END IF;
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note(CASE WHEN withdraw THEN 'withdraw' ELSE 'deposit' END, SQLSTATE, SQLERRM);
END $$;

-- apply_match on the EXTERNAL market: a random live BUY and a random live SELL that crosses it,
-- at the SELL's price (or the BUY's for a SELL without price).
CREATE FUNCTION stress.match(lots int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	b record;
	s record;
BEGIN
	SELECT order_id, price, quantity - filled_quantity AS remaining INTO b
	  FROM exchange.orders
	 WHERE symbol = 'EEE-USDT' AND side = 'BUY' AND status IN ('OPEN', 'PARTIAL')
	 ORDER BY random() LIMIT 1;
	IF NOT FOUND THEN RETURN; END IF;
	SELECT order_id, price, quantity - filled_quantity AS remaining INTO s
	  FROM exchange.orders
	 WHERE symbol = 'EEE-USDT' AND side = 'SELL' AND status IN ('OPEN', 'PARTIAL')
	   AND (price IS NULL OR price <= b.price)
	 ORDER BY random() LIMIT 1;
	IF NOT FOUND THEN RETURN; END IF;
	PERFORM exchange.apply_match(b.order_id, s.order_id, LEAST(b.remaining, s.remaining, lots * 0.001),
	                             coalesce(s.price, b.price));
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('apply_match', SQLSTATE, SQLERRM);
END $$;

-- set_market_status: a market halted now and then (it locks the market row, as matching does).
CREATE FUNCTION stress.set_market(m int, active boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM exchange.set_market_status((SELECT symbol FROM stress.mkt WHERE n = m),
	                                   CASE WHEN active THEN 'ACTIVE' ELSE 'HALTED' END);
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('set_market_status', SQLSTATE, SQLERRM);
END $$;

CREATE FUNCTION stress.set_status(a int, active boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM exchange.set_account_status(stress.acct(a),
	                                    CASE WHEN active THEN 'ACTIVE' ELSE 'SUSPENDED' END);
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('set_account_status', SQLSTATE, SQLERRM);
END $$;

-- The checker: one statement, one snapshot; records the markets whose book is crossed.
CREATE VIEW stress.crossed AS
SELECT m.symbol, b.bid, a.ask
  FROM exchange.markets m
  CROSS JOIN LATERAL (SELECT max(price) AS bid FROM exchange.orders
                       WHERE symbol = m.symbol AND side = 'BUY'
                         AND status IN ('OPEN', 'PARTIAL')) b
  CROSS JOIN LATERAL (SELECT min(price) AS ask FROM exchange.orders
                       WHERE symbol = m.symbol AND side = 'SELL'
                         AND status IN ('OPEN', 'PARTIAL')) a
 WHERE m.matching = 'INTERNAL' AND b.bid >= a.ask;
EOF

# ---------------------------------------------------------------------------------------------
# The pgbench scripts: one API call per transaction, weights out of 100.

my %scripts = (
	place => [ 66, <<'EOF' ],
\set a random(1, 8)
\set m random(1, 5)
\set side random(1, 2)
\set typ random(1, 10)
\set lots random(1, 3000)
\set ticks random(0, 30)
\set stop_ticks random(0, 80)
\set tif random(0, 3)
SELECT stress.place(:a, :m, :side, :typ, :lots, :ticks, :stop_ticks, :tif);
EOF
	cancel => [ 8, "SELECT stress.cancel(false);\n" ],
	expire => [ 2, "SELECT stress.cancel(true);\n" ],
	match => [ 4, <<'EOF' ],
\set lots random(1, 3000)
SELECT stress.match(:lots);
EOF
	halt => [ 2, <<'EOF' ],
\set m random(1, 4)
\set act random(0, 19)
SELECT stress.set_market(:m, :act > 0);
EOF
	deposit => [ 8, <<'EOF' ],
\set a random(1, 8)
\set k random(1, 5)
\set amount random(1, 5000)
SELECT stress.funds(:a, :k, :amount, false);
EOF
	withdraw => [ 5, <<'EOF' ],
\set a random(1, 8)
\set k random(1, 5)
\set amount random(1, 5000)
SELECT stress.funds(:a, :k, :amount, true);
EOF
	status => [ 5, <<'EOF' ],
\set a random(1, 8)
\set act random(0, 29)
SELECT stress.set_status(:a, :act > 0);
EOF
);

my $dir = PostgreSQL::Test::Utils::tempdir();
my @files;
for my $name (sort keys %scripts)
{
	my ($weight, $body) = @{ $scripts{$name} };
	my $file = "$dir/$name.sql";
	open(my $fh, '>', $file) or die "could not write $file: $!";
	print $fh $body;
	close $fh;
	push @files, '-f', "$file\@$weight";
}
my $check_file = "$dir/check.sql";
{
	open(my $fh, '>', $check_file) or die "could not write $check_file: $!";
	print $fh <<'EOF';
INSERT INTO stress.samples (crossed)
SELECT string_agg(format('%s bid %s >= ask %s', symbol, bid, ask), '; ') FROM stress.crossed;
\sleep 5 ms
EOF
	close $fh;
}

# ---------------------------------------------------------------------------------------------
# The run: the checker in the background, then the 8 clients.

local $ENV{PGOPTIONS} = '-c statement_timeout=60s';
my ($cout, $cerr) = ('', '');
my $checker;
{
	local $ENV{PGAPPNAME} = 'book_checker';
	$checker = IPC::Run::start(
		[ 'pgbench', '-n', '-c', 1, '-T', 900, '-h', $node->host, '-p', $node->port,
		  '-f', $check_file, 'mstress' ],
		'<', \undef, '>', \$cout, '2>', \$cerr);
}

my @cmd = (
	'pgbench', '-n', '-c', $clients, '-j', 2, '-t', $transactions / $clients,
	"--random-seed=$seed", '-h', $node->host, '-p', $node->port, @files, 'mstress');
note("random seed $seed (set EA_STRESS_SEED to replay)");
my ($out, $err) = ('', '');
my $t0 = time();
{
	local $ENV{PGAPPNAME} = 'mstress_client';
	IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(900));
}
my $rc = $? >> 8;
my $elapsed = time() - $t0;

# Stop the checker (the pgbench started above, by its harness) and count its samples.
$checker->signal('INT');
eval { $checker->finish; 1 } or $checker->kill_kill;

diag("pgbench ($clients clients, $transactions transactions, seed $seed) took ${elapsed}s:\n"
	  . join("\n", grep { /^(number of|latency average|tps)/ } split /\n/, $out));
is($rc, 0, 'pgbench exits 0: no client aborted') or diag("stdout:\n$out\nstderr:\n$err");
like($out, qr{number of transactions actually processed: $transactions/$transactions},
	"all $transactions transactions processed");
like($out, qr{number of failed transactions: 0 },
	'no failed transaction (no deadlock, no serialization failure)');

my ($samples, $crossed) = split /\|/, $node->safe_psql('mstress',
	q{SELECT count(*), count(crossed) FROM stress.samples});
diag("checker: $samples samples of the books during the run");
ok($samples >= 50, "the checker sampled the books throughout the run ($samples samples)");
is($crossed, 0, 'no sample saw a crossed book')
  or diag($node->safe_psql('mstress',
	q{SELECT string_agg(at || ' ' || crossed, E'\n') FROM (SELECT * FROM stress.samples WHERE crossed IS NOT NULL ORDER BY at LIMIT 10) s}));
is($node->safe_psql('mstress', q{SELECT count(*) FROM stress.crossed}), '0',
	'no book crossed at the end');

diag("refusals caught by the wrappers (op, SQLSTATE, count):\n"
	  . $node->safe_psql('mstress',
		q{SELECT string_agg(format('%-20s %s %s', op, sqlstate, n), E'\n' ORDER BY op, sqlstate)
		    FROM (SELECT op, sqlstate, count(*) AS n FROM stress.refusals GROUP BY 1, 2) r}));
my @undocumented = grep { !$documented{$_} }
  split /\n/, $node->safe_psql('mstress', 'SELECT DISTINCT sqlstate FROM stress.refusals ORDER BY 1');
is_deeply(\@undocumented, [], 'every refusal the wrappers caught has a documented SQLSTATE');

diag("orders by market and status:\n"
	  . $node->safe_psql('mstress',
		q{SELECT string_agg(format('%-9s %-10s %-18s %s', symbol, status, coalesce(reject_reason, ''), n), E'\n'
		                    ORDER BY symbol, status, reject_reason)
		    FROM (SELECT symbol, status, reject_reason, count(*) AS n FROM exchange.orders GROUP BY 1, 2, 3) o}));
diag("executions per market: "
	  . $node->safe_psql('mstress',
		q{SELECT string_agg(symbol || ' ' || n, ', ' ORDER BY symbol)
		    FROM (SELECT symbol, count(DISTINCT match_id) AS n FROM exchange.trades GROUP BY 1) t}));
my $markets_matched = $node->safe_psql('mstress',
	q{SELECT count(DISTINCT symbol) FROM exchange.trades WHERE match_id IS NOT NULL});
is($markets_matched, '5', 'every market matched orders (four inside, one through apply_match)');

# Per INTERNAL market: the executions are numbered 1..trade_seq without a gap, both legs of one
# execution share seq and match_id, and last_price is the price of the last one.
is($node->safe_psql('mstress', <<'EOF'),
SELECT string_agg(m.symbol || ': ' || e.problem, E'\n' ORDER BY m.symbol)
  FROM exchange.markets m
  CROSS JOIN LATERAL (
	SELECT CASE
	         WHEN count(DISTINCT t.match_id) <> m.trade_seq THEN
	           format('%s matches, trade_seq %s', count(DISTINCT t.match_id), m.trade_seq)
	         WHEN count(DISTINCT t.seq) <> m.trade_seq OR min(t.seq) <> 1
	              OR max(t.seq) <> m.trade_seq THEN
	           format('seq %s..%s (%s distinct), trade_seq %s', min(t.seq), max(t.seq),
	                  count(DISTINCT t.seq), m.trade_seq)
	         WHEN count(*) <> 2 * m.trade_seq THEN
	           format('%s legs for %s executions', count(*), m.trade_seq)
	         WHEN m.last_price IS DISTINCT FROM
	              (SELECT t2.price FROM exchange.trades t2 WHERE t2.symbol = m.symbol
	                ORDER BY t2.seq DESC LIMIT 1) THEN
	           format('last_price %s is not the last execution''s price', m.last_price)
	       END AS problem
	  FROM exchange.trades t WHERE t.symbol = m.symbol) e
 WHERE m.matching = 'INTERNAL' AND e.problem IS NOT NULL
EOF
	'', 'per INTERNAL market: executions numbered 1..trade_seq, two legs each, last_price the last one');

is($node->safe_psql('mstress',
		q{SELECT string_agg(invariant || ': ' || detail, E'\n') FROM exchange.check_invariants()}),
	'', 'check_invariants() is empty');

my $log = slurp_file($node->logfile);
my @deadlocks = grep { /deadlock detected|40P01/ } split /\n/, $log;
is(scalar(@deadlocks), 0, 'no deadlock (40P01) in the server log')
  or diag(join("\n", @deadlocks[0 .. ($#deadlocks < 19 ? $#deadlocks : 19)]));
my @undocumented_log;
for my $line (split /\n/, $log)
{
	push @undocumented_log, $line
	  if $line =~ /\b(ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):/ && !$documented{$2}
	  && !($1 eq 'FATAL' && $2 eq '57P01')    # the shutdown of the launcher
	  && $line !~ / book_checker /;            # the checker's end, interrupted
}
is(join("\n", @undocumented_log[0 .. ($#undocumented_log < 19 ? $#undocumented_log : 19)]), '',
	'no ERROR, FATAL or PANIC with an undocumented SQLSTATE in the server log');

$node->stop;
done_testing();
