# README "Trade feed": every execution is published after commit on <prefix>trades:<symbol>.
#
# One subscriber (PSUBSCRIBE exchange:*) sees the invalidation messages and the trade messages
# in the order Redis received them. Checked on EXTERNAL markets: the payload of apply_trade and
# apply_match executions field by field (one message per match, not per leg; taker_side from
# the TAKER leg or the trade's liquidity; match_id null for apply_trade; seq null), every
# message of a transaction after that transaction's invalidation message, executions in call
# order, nothing for a rolled-back transaction or savepoint nor for an idempotent retry; with
# Redis down during the commits, then up: every message arrives once, in order, each after its
# transaction's invalidation message; an outbox backlog older than outbox_flush_after,
# replaced by the whole-space invalidation, still publishes its trade messages; a NOPERM refusal
# of the trade channel is reported once and holds back nothing else; flush_outbox
# publishes them as the worker does. On INTERNAL markets (README "Matching engine": place_order
# matches): sweeps, a stop cascade, a self-trade, two sessions committing out of xid order, a
# rollback and a rolled-back savepoint; one message per match, seq 1..trade_seq per market with
# no gap, payloads equal to the TAKER legs, each after its transaction's invalidation message,
# nothing and no seq for what rolled back. The 1.1 library on a 1.0 catalog (README "Upgrading")
# delivers keys as 1.0 did and publishes nothing more, until ALTER EXTENSION UPDATE.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time usleep);
use IPC::Run;
use ExchangeTest;
use ExchangeRedis;

my $r = ExchangeRedis->start;
my $node = $r->node('feed', conf => <<'EOF');
exchange_adapter.poll_interval = '60s'
exchange_adapter.retry_backoff_max = '300ms'
EOF
poll_until(sub { ExchangeRedis::status($node)->{redis_connected} }, 'worker connected to Redis', 30);

sub q1 { $node->safe_psql('app', shift) }

# PSUBSCRIBE exchange:* as the admin: [channel, raw payload] in the order received.
sub psubscribe
{
	my $c = $r->_client('PSUBSCRIBE', 'exchange:*');
	my $deadline = time() + 10;
	while (time() < $deadline)
	{
		$c->pump;
		last if $c->{out} =~ /^1$/m;
		usleep(20_000);
	}
	return $c;
}

sub received
{
	my ($c) = @_;
	$c->pump;
	my @lines = split /\n/, $c->{out};
	my @msgs;
	for (my $i = 0; $i + 3 < @lines; $i++)
	{
		next unless $lines[$i] eq 'pmessage';
		push @msgs, [ $lines[ $i + 2 ], $lines[ $i + 3 ] ];
		$i += 3;
	}
	return \@msgs;
}

my $sub = psubscribe();

my $a = q1(q{SELECT account_id FROM exchange.create_account('alice')});
my $b = q1(q{SELECT account_id FROM exchange.create_account('bob')});
q1(qq{SELECT exchange.set_kyc_status('$_', 'APPROVED')}) for ($a, $b);
q1(q{SELECT exchange.create_market('BTC-USD', 'BTC', 'USD')});
q1(q{SELECT exchange.create_market('ETH-USD', 'ETH', 'USD')});
q1(qq{SELECT exchange.deposit('$a', 'USD', 10000000)});
q1(qq{SELECT exchange.deposit('$b', 'BTC', 100)});
q1(qq{SELECT exchange.deposit('$b', 'ETH', 100)});
sub order
{
	my ($acct, $sym, $side, $qty, $price) = @_;
	return q1(qq{SELECT order_id FROM exchange.place_order('$acct', '$sym', '$side', 'LIMIT', $qty, $price)});
}
my $buy_btc  = order($a, 'BTC-USD', 'BUY',  50, 40000);
my $sell_btc = order($b, 'BTC-USD', 'SELL', 50, 10000);
my $buy_eth  = order($a, 'ETH-USD', 'BUY',  50, 4000);
my $sell_eth = order($b, 'ETH-USD', 'SELL', 50, 1000);
poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'setup delivered', 10);
usleep(200_000);
is(scalar(grep { $_->[0] =~ /^exchange:trades:/ } @{ received($sub) }), 0,
	'no trade message before any execution');

# Runs SQL ending with SELECT pg_current_xact_id() (one transaction), waits for an empty outbox;
# returns its xid and the messages received meanwhile.
sub run_tx
{
	my ($sql, $what) = @_;
	my $before = scalar @{ received($sub) };
	my $xid = q1($sql);
	$xid = (split /\n/, $xid)[-1];
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "$what: outbox empty", 10);
	usleep(300_000);
	my $all = received($sub);
	return ($xid, [ @$all[ $before .. $#$all ] ]);
}

sub trades_of { [ grep { $_->[0] =~ /^exchange:trades:/ } @{ $_[0] } ] }

# What a subscriber re-reads from exchange.trades, in the payload's terms.
sub trade_row
{
	my ($where) = @_;
	my ($mid, $at) = split /\|/, q1(qq{
		SELECT coalesce(match_id::text, ''),
		       to_char(executed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
		  FROM exchange.trades WHERE $where LIMIT 1});
	return ($mid eq '' ? undef : $mid, $at);
}

# ---- one apply_trade: the payload, byte for byte ---------------------------------------------
{
	my ($xid, $msgs) = run_tx(qq{
BEGIN;
SELECT 1 FROM exchange.apply_trade('$buy_btc', 0.25, 29000, executed_at => '2026-01-02 03:04:05.123456+00',
                                   trade_ref => 't1', liquidity => 'TAKER');
SELECT pg_current_xact_id();
COMMIT;}, 'apply_trade');
	is(scalar @$msgs, 2, 'apply_trade: one invalidation message, one trade message');
	is($msgs->[0][0], 'exchange:invalidations', 'apply_trade: the invalidation comes first');
	like($msgs->[0][1], qr/"xid":"$xid"/, 'apply_trade: ... and is its transaction\'s');
	is($msgs->[1][0], 'exchange:trades:BTC-USD', 'apply_trade: channel <prefix>trades:<symbol>');
	is($msgs->[1][1],
		'{"v":1,"symbol":"BTC-USD","seq":null,"match_id":null,"price":"29000.00000000",'
		  . '"quantity":"0.25000000","taker_side":"BUY","executed_at":"2026-01-02T03:04:05.123456Z"}',
		'apply_trade: payload exact (amounts as decimal strings, TAKER side, no match, no seq)');
}

# ---- several executions in one transaction, one of them in a rolled-back savepoint ----------
{
	my ($xid, $msgs) = run_tx(qq{
BEGIN;
SELECT 1 FROM exchange.apply_trade('$sell_btc', 0.5, 21000, liquidity => 'MAKER');
SELECT 1 FROM exchange.apply_match('$buy_btc', '$sell_btc', 1, 25000, maker => 'SELL');
SAVEPOINT s;
SELECT 1 FROM exchange.apply_match('$buy_eth', '$sell_eth', 3, 3333);
ROLLBACK TO SAVEPOINT s;
SELECT 1 FROM exchange.apply_trade('$buy_eth', 2, 2900);
SELECT 1 FROM exchange.apply_match('$buy_eth', '$sell_eth', 0.5, 2600, maker => 'BUY');
SELECT pg_current_xact_id();
COMMIT;}, 'four executions');
	my $t = trades_of($msgs);
	is($msgs->[0][0], 'exchange:invalidations', 'four executions: the invalidation comes first');
	like($msgs->[0][1], qr/"xid":"$xid"/, 'four executions: ... and is its transaction\'s');
	is(scalar(grep { $_->[0] eq 'exchange:invalidations' } @$msgs), 1, 'four executions: one invalidation message');
	is_deeply([ map { $_->[0] } @$t ],
		[ 'exchange:trades:BTC-USD', 'exchange:trades:BTC-USD', 'exchange:trades:ETH-USD', 'exchange:trades:ETH-USD' ],
		'four executions: one message each (a match counted once), in call order; none for the savepoint');
	my @p = map { JSON::PP::decode_json($_->[1]) } @$t;
	my ($mid_btc, $at) = trade_row(q{price = 25000});
	my ($mid_eth) = trade_row(q{price = 2600});
	my $exp = sub {
		my ($sym, $mid, $price, $qty, $taker) = @_;
		return { v => 1, symbol => $sym, seq => undef, match_id => $mid, price => $price,
			quantity => $qty, taker_side => $taker, executed_at => $at };
	};
	is_deeply($p[0], $exp->('BTC-USD', undef, '21000.00000000', '0.50000000', undef),
		'apply_trade as MAKER: taker_side null, match_id null');
	ok(defined $mid_btc, 'apply_match stored a match_id');
	is_deeply($p[1], $exp->('BTC-USD', $mid_btc, '25000.00000000', '1.00000000', 'BUY'),
		'apply_match, SELL maker: match_id, taker_side BUY');
	is_deeply($p[2], $exp->('ETH-USD', undef, '2900.00000000', '2.00000000', undef),
		'apply_trade without liquidity: taker_side null');
	is_deeply($p[3], $exp->('ETH-USD', $mid_eth, '2600.00000000', '0.50000000', 'SELL'),
		'apply_match, BUY maker: taker_side SELL');
	like($at, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'executed_at is RFC 3339 UTC with microseconds');
	is(q1(q{SELECT count(*) FROM exchange.trades WHERE price = 3333}), '0', 'the savepoint\'s match is gone');
}

# ---- nothing for a rolled-back transaction, nor for an idempotent retry ----------------------
{
	my $before = scalar @{ received($sub) };
	q1(qq{BEGIN;
SELECT 1 FROM exchange.apply_match('$buy_btc', '$sell_btc', 2, 22222);
SELECT 1 FROM exchange.apply_trade('$buy_eth', 1, 2222);
ROLLBACK;});
	q1(qq{SELECT 1 FROM exchange.apply_trade('$buy_btc', 0.25, 29000, executed_at => '2026-01-02 03:04:05.123456+00',
	                                  trade_ref => 't1', liquidity => 'TAKER')});
	my ($xid, $msgs) = run_tx(qq{BEGIN; SELECT exchange.deposit('$a', 'MRK', 1);
SELECT pg_current_xact_id(); COMMIT;}, 'marker');
	my $all = received($sub);
	my @since = @$all[ $before .. $#$all ];
	is(scalar @{ trades_of(\@since) }, 0, 'ROLLBACK and an idempotent retry publish no trade message');
	is(scalar(@since), 1, 'only the marker\'s invalidation was published');
}

# ---- INTERNAL markets: the engine's executions (README "Matching engine") ---------------------
# Two INTERNAL markets sharing the accounts; with fees 0, by hand:
#   XRP-USD asks (bob) 1@100, 1@101, 1@102. T1: alice BUY 2.5@102 sweeps 1@100 (seq 1), 1@101
#   (2), 0.5@102 (3); in the same transaction LTC-USD asks bob 1@50, carol 1@51: alice BUY 1.5@51
#   sweeps 1@50 (seq 1), 0.5@51 (2).
#   T2 (self-trade, EXPIRE_MAKER): LTC asks carol 0.5@51, alice 1@52, bob 1@53: alice BUY 2@53
#   takes 0.5@51 (3), expires her own ask (no execution), takes 1@53 (4), rests 0.5@53.
#   T3 and T4 from two sessions open at once, T4 committed first: T3 (stop cascade) with XRP asks
#   bob 0.5@102, 1@103, 1@104, 2@110 and carol's BUY STOPs s1 1 (stop 103, limit 104), s2 0.5
#   (stop 104, limit 105): carol BUY 1@103 takes 0.5@102 (4), 0.5@103 (5); at 103 s1 triggers,
#   takes 0.5@103 (6), 0.5@104 (7); at 104 s2 triggers, takes 0.5@104 (8). T4: dave SELL LTC
#   0.5@53 takes alice's bid (5).
#   A ROLLBACK'd alice BUY XRP 1@110 and a rolled-back savepoint (alice BUY XRP 0.5@110) execute
#   nothing; after the savepoint alice BUY XRP 0.3@110 is seq 9.
# So XRP-USD trade_seq 9 and LTC-USD 5, one message per match each, in seq order.
{
	my $c = q1(q{SELECT account_id FROM exchange.create_account('carol')});
	my $d = q1(q{SELECT account_id FROM exchange.create_account('dave')});
	q1(qq{SELECT exchange.set_kyc_status('$_', 'APPROVED')}) for ($c, $d);
	q1(qq{SELECT exchange.create_market('$_', '} . (split /-/)[0] . q{', 'USD', matching => 'INTERNAL')})
	  for ('XRP-USD', 'LTC-USD');
	q1(qq{SELECT count(*) FROM (
		SELECT exchange.deposit('$b', 'XRP', 100) UNION ALL SELECT exchange.deposit('$b', 'LTC', 100)
		UNION ALL SELECT exchange.deposit('$c', 'USD', 1000000) UNION ALL SELECT exchange.deposit('$c', 'LTC', 100)
		UNION ALL SELECT exchange.deposit('$d', 'LTC', 100)) x});
	my $po = sub {
		my ($acct, $sym, $side, $qty, $price, %o) = @_;
		my $type = $o{stop} ? 'STOP' : 'LIMIT';
		my $stop = $o{stop} ? ", stop_price => $o{stop}" : '';
		return qq{SELECT order_id FROM exchange.place_order('$acct', '$sym', '$side', '$type', $qty, $price$stop);};
	};
	# The end of each transaction: its xid and the (symbol/seq) of the executions it made.
	my $tail = q{SELECT pg_current_xact_id()::text || ' ' || coalesce(string_agg(symbol || '/' || seq, ','), '')
	  FROM exchange.trades WHERE executed_at = pg_catalog.now() AND liquidity = 'TAKER' AND seq IS NOT NULL;};
	my %xid_of;    # "symbol/seq" -> xid of the transaction that made it
	my $note_tx = sub {
		my ($line) = @_;
		my ($xid, $list) = split / /, (split /\n/, $line)[-1];
		$xid_of{$_} = $xid for split /,/, ($list // '');
		return $xid;
	};
	my $before = scalar @{ received($sub) };

	q1($po->($b, 'XRP-USD', 'SELL', 1, $_)) for (100, 101, 102);
	q1($po->($b, 'LTC-USD', 'SELL', 1, 50));
	q1($po->($c, 'LTC-USD', 'SELL', 1, 51));
	$note_tx->(q1(join "\n", 'BEGIN;', $po->($a, 'XRP-USD', 'BUY', 2.5, 102),
		$po->($a, 'LTC-USD', 'BUY', 1.5, 51), $tail, 'COMMIT;'));

	my $own = q1($po->($a, 'LTC-USD', 'SELL', 1, 52));
	q1($po->($b, 'LTC-USD', 'SELL', 1, 53));
	$note_tx->(q1(join "\n", 'BEGIN;', $po->($a, 'LTC-USD', 'BUY', 2, 53), $tail, 'COMMIT;'));
	is(q1(qq{SELECT status || ' ' || filled_quantity FROM exchange.orders WHERE order_id = '$own'}),
		'EXPIRED 0.00000000', 'INTERNAL: the own maker expired (EXPIRE_MAKER)');

	q1($po->($b, 'XRP-USD', 'SELL', 1, $_)) for (103, 104);
	q1($po->($b, 'XRP-USD', 'SELL', 2, 110));
	my $s1 = q1($po->($c, 'XRP-USD', 'BUY', 1,   104, stop => 103));
	my $s2 = q1($po->($c, 'XRP-USD', 'BUY', 0.5, 105, stop => 104));

	# T3 and T4 in two sessions open at once; T4 commits first.
	my @sess;
	for my $i (0, 1)
	{
		my %s = (in => '', out => '', err => '');
		$s{h} = IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('app') ],
			'<', \$s{in}, '>', \$s{out}, '2>', \$s{err});
		push @sess, \%s;
	}
	my $step = sub {
		my ($s, $sql, $tag) = @_;
		$s->{in} .= "$sql\nSELECT 'step:$tag';\n";
		poll_until(sub { $s->{h}->pump_nb; $s->{out} =~ /^step:$tag$/m or $s->{err} ne '' },
			"INTERNAL: session step $tag", 20);
		is($s->{err}, '', "INTERNAL: session step $tag without error");
	};
	$step->($sess[0], join("\n", 'BEGIN;', $po->($c, 'XRP-USD', 'BUY', 1, 103), $tail), 't3');
	$step->($sess[1], join("\n", 'BEGIN;', $po->($d, 'LTC-USD', 'SELL', 0.5, 53), $tail), 't4');
	$step->($sess[1], 'COMMIT;', 't4c');
	$step->($sess[0], 'COMMIT;', 't3c');
	for my $s (@sess)
	{
		$s->{out} =~ /^(\d+ \S*)$/m or die "no xid line in $s->{out}";
		$note_tx->($1);
		$s->{in} .= "\\q\n";
		$s->{h}->finish;
	}
	is(q1(qq{SELECT string_agg(status, ' ' ORDER BY stop_price) FROM exchange.orders WHERE order_id IN ('$s1', '$s2')}),
		'FILLED FILLED', 'INTERNAL: the stop cascade filled both stops in one call');

	q1(join "\n", 'BEGIN;', $po->($a, 'XRP-USD', 'BUY', 1, 110), 'ROLLBACK;');
	$note_tx->(q1(join "\n", 'BEGIN;', 'SAVEPOINT s;', $po->($a, 'XRP-USD', 'BUY', 0.5, 110),
		'ROLLBACK TO SAVEPOINT s;', $po->($a, 'XRP-USD', 'BUY', 0.3, 110), $tail, 'COMMIT;'));

	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'INTERNAL: outbox empty', 10);
	# The subscriber's pipe is read a chunk at a time: read until the 14 expected trade
	# messages are in (or 5 s), then a little longer for any extra one.
	my $deadline = time() + 5;
	while (time() < $deadline)
	{
		my $all = received($sub);
		last if @{ trades_of([ @$all[ $before .. $#$all ] ]) } >= 14;
		usleep(50_000);
	}
	usleep(300_000);
	my $all = received($sub);
	my @msgs = @$all[ $before .. $#$all ];

	my %got;
	for my $m (@{ trades_of(\@msgs) })
	{
		my $p = JSON::PP::decode_json($m->[1]);
		is($m->[0], "exchange:trades:$p->{symbol}", "INTERNAL: $p->{symbol} seq $p->{seq} on its market's channel");
		push @{ $got{ $p->{symbol} } }, $p;
	}
	is_deeply([ sort keys %got ], [ 'LTC-USD', 'XRP-USD' ], 'INTERNAL: trade messages on both markets only');
	for my $sym ('XRP-USD', 'LTC-USD')
	{
		my $n = q1(qq{SELECT trade_seq FROM exchange.markets WHERE symbol = '$sym'});
		is($n, { 'XRP-USD' => 9, 'LTC-USD' => 5 }->{$sym},
			"INTERNAL $sym: trade_seq as computed by hand (no seq taken by a rolled-back match)");
		is_deeply([ map { $_->{seq} } @{ $got{$sym} } ], [ 1 .. $n ],
			"INTERNAL $sym: one message per execution, seq 1..trade_seq, increasing, no gap");
		my @rows;
		for (split /\n/, q1(qq{
			SELECT seq, match_id, price, quantity, side,
			       to_char(executed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
			  FROM exchange.trades WHERE symbol = '$sym' AND liquidity = 'TAKER' ORDER BY seq}))
		{
			my @f = split /\|/;
			push @rows, { v => 1, symbol => $sym, seq => $f[0], match_id => $f[1], price => $f[2],
				quantity => $f[3], taker_side => $f[4], executed_at => $f[5] };
		}
		is(scalar @rows, $n, "INTERNAL $sym: one TAKER leg per execution");
		is(q1(qq{SELECT count(DISTINCT match_id) FROM exchange.trades WHERE symbol = '$sym'}), $n,
			"INTERNAL $sym: one match_id per execution");
		is_deeply($got{$sym}, \@rows, "INTERNAL $sym: every payload equals the TAKER leg in exchange.trades");
	}
	is_deeply([ map { $_->{price} . ' ' . $_->{quantity} } @{ $got{'XRP-USD'} } ],
		[ '100.00000000 1.00000000', '101.00000000 1.00000000', '102.00000000 0.50000000',
		  '102.00000000 0.50000000', '103.00000000 0.50000000', '103.00000000 0.50000000',
		  '104.00000000 0.50000000', '104.00000000 0.50000000', '110.00000000 0.30000000' ],
		'INTERNAL XRP-USD: the sweep, the cascade and the committed order after the savepoint, as by hand');

	my %inv_at;
	for my $i (0 .. $#msgs)
	{
		next unless $msgs[$i][0] eq 'exchange:invalidations';
		my ($xid) = $msgs[$i][1] =~ /"xid":"(\d+)"/;
		$inv_at{$xid} //= $i if defined $xid;
	}
	my @bad;
	for my $i (0 .. $#msgs)
	{
		next unless $msgs[$i][0] =~ /^exchange:trades:/;
		my $p = JSON::PP::decode_json($msgs[$i][1]);
		my $xid = $xid_of{"$p->{symbol}/$p->{seq}"};
		push @bad, "$p->{symbol}/$p->{seq}" unless defined $xid && defined $inv_at{$xid} && $inv_at{$xid} < $i;
	}
	is_deeply(\@bad, [], 'INTERNAL: each trade message after its transaction\'s invalidation message');
	is(scalar keys %xid_of, 14, 'INTERNAL: every execution traced to its transaction');
	is(q1(q{SELECT count(*) FROM exchange.check_invariants()}), '0', 'INTERNAL: check_invariants() is empty');
}

# ---- Redis down during the commits, then up -------------------------------------------------
# Prices identify the executions: 30001.. on BTC-USD, 3001.. on ETH-USD.
my @expected;    # [channel, price] in commit order
my %xid_of;      # price -> xid of its transaction
{
	$r->stop;
	my $n = 0;
	for my $i (1 .. 6)
	{
		my @calls;
		my @prices;
		for my $k (1 .. ($i % 2 ? 1 : 3))
		{
			$n++;
			if ($n % 3 == 0)
			{
				my $p = 3000 + $n;
				push @calls, qq{SELECT 1 FROM exchange.apply_match('$buy_eth', '$sell_eth', 0.1, $p);};
				push @prices, [ 'exchange:trades:ETH-USD', "$p.00000000" ];
			}
			else
			{
				my $p = 30000 + $n;
				push @calls, qq{SELECT 1 FROM exchange.apply_trade('$buy_btc', 0.1, $p, liquidity => 'TAKER');};
				push @prices, [ 'exchange:trades:BTC-USD', "$p.00000000" ];
			}
		}
		my $xid = (split /\n/, q1("BEGIN;\n" . join("\n", @calls) . "\nSELECT pg_current_xact_id();\nCOMMIT;"))[-1];
		$xid_of{ $_->[1] } = $xid for @prices;
		push @expected, @prices;
		# A rolled-back transaction between them.
		q1(qq{BEGIN; SELECT 1 FROM exchange.apply_trade('$buy_btc', 0.1, 39999); ROLLBACK;});
	}
	cmp_ok(ExchangeRedis::outbox_count($node), '>=', 6, 'Redis down: the outbox keeps the committed rows');
	poll_until(sub { !ExchangeRedis::status($node)->{redis_connected} }, 'Redis down: the worker noticed', 10);

	# Back up, with the worker's user switched off until our subscriber is attached, so that
	# nothing is delivered before it listens.
	my $acl = "$PostgreSQL::Test::Utils::tmp_check/redis_acl_" . $r->port . '/users.acl';
	my $text = slurp_file($acl);
	(my $off = $text) =~ s/^user exchange_adapter on /user exchange_adapter off /m or die 'no worker user in ACL';
	open(my $fh, '>', $acl) or die $!;
	print $fh $off;
	close $fh;
	$sub->stop;
	$r->restart;
	$sub = psubscribe();
	$r->admin('ACL', 'SETUSER', 'exchange_adapter', 'on');
	open($fh, '>', $acl) or die $!;
	print $fh $text;
	close $fh;
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'Redis up: the outbox drains', 30);
	usleep(300_000);

	my $msgs = received($sub);
	my $t = trades_of($msgs);
	is_deeply([ map { [ $_->[0], JSON::PP::decode_json($_->[1])->{price} ] } @$t ], \@expected,
		'Redis down then up: every execution published once, in commit order, none of the rolled-back ones');
	my %inv_at;
	for my $i (0 .. $#$msgs)
	{
		next unless $msgs->[$i][0] eq 'exchange:invalidations';
		my ($xid) = $msgs->[$i][1] =~ /"xid":"(\d+)"/;
		$inv_at{$xid} //= $i;
	}
	my $bad = 0;
	for my $i (0 .. $#$msgs)
	{
		next unless $msgs->[$i][0] =~ /^exchange:trades:/;
		my $xid = $xid_of{ JSON::PP::decode_json($msgs->[$i][1])->{price} };
		$bad++ unless defined $inv_at{$xid} && $inv_at{$xid} < $i;
	}
	is($bad, 0, 'Redis down then up: each trade message after its transaction\'s invalidation message');
}

# ---- a backlog older than outbox_flush_after: the trade messages are not dropped ------------
{
	$node->append_conf('postgresql.conf', "exchange_adapter.outbox_flush_after = 1\n");
	$node->reload;
	$r->admin('ACL', 'SETUSER', 'exchange_adapter', 'off');
	$r->admin('CLIENT', 'KILL', 'USER', 'exchange_adapter');
	q1(qq{SELECT 1 FROM exchange.apply_trade('$buy_btc', 0.1, 31111, liquidity => 'TAKER')});
	q1(qq{SELECT exchange.deposit('$a', 'OLD', 1)});
	poll_until(sub { !ExchangeRedis::status($node)->{redis_connected} }, 'worker locked out', 10);
	sleep 2;    # the backlog is now older than outbox_flush_after
	my $before = scalar @{ received($sub) };
	$r->admin('ACL', 'SETUSER', 'exchange_adapter', 'on');
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'old backlog: the outbox drains', 30);
	usleep(300_000);
	my $all = received($sub);
	my @since = @$all[ $before .. $#$all ];
	my $t = trades_of(\@since);
	is_deeply([ map { JSON::PP::decode_json($_->[1])->{price} } @$t ], ['31111.00000000'],
		'old backlog replaced by the whole-space invalidation: its trade message is still published once');
	ok(!grep({ $_->[1] =~ /:OLD"/ } @since), 'old backlog: the key-only row was dropped, not replayed');
	ok(slurp_file($node->logfile) =~ /invalidated the whole cache space/, 'old backlog: the whole space was invalidated');
}

# ---- a trade PUBLISH refused (NOPERM): reported once, keys and invalidations go on ----------
{
	$r->admin('ACL', 'SETUSER', 'exchange_adapter', 'resetchannels', '&exchange:invalidations');
	my $before = scalar @{ received($sub) };
	for my $p (32001, 32002)
	{
		q1(qq{SELECT 1 FROM exchange.apply_trade('$buy_btc', 0.1, $p, liquidity => 'TAKER')});
		poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, "trade PUBLISH refused: fill at $p delivered", 10);
	}
	usleep(300_000);
	my $all = received($sub);
	my @since = @$all[ $before .. $#$all ];
	is(scalar(grep { $_->[0] eq 'exchange:invalidations' } @since), 2, 'trade PUBLISH refused: the invalidations go on');
	is(scalar @{ trades_of(\@since) }, 0, 'trade PUBLISH refused: no trade message');
	my $n = () = slurp_file($node->logfile) =~ /WARNING:  Redis refused PUBLISH of a trade message: NOPERM/g;
	is($n, 1, 'trade PUBLISH refused: reported once in the log');
	like(ExchangeRedis::status($node)->{last_error}, qr/PUBLISH on exchange:trades:\* refused/,
		'trade PUBLISH refused: adapter_status says so');

	# Allowed again: tried again after the next connect.
	$r->admin('ACL', 'SETUSER', 'exchange_adapter', 'resetchannels', '&exchange:*');
	$r->admin('CLIENT', 'KILL', 'USER', 'exchange_adapter');
	$before = scalar @{ received($sub) };
	q1(qq{SELECT 1 FROM exchange.apply_trade('$buy_btc', 0.1, 32003, liquidity => 'TAKER')});
	poll_until(sub { ExchangeRedis::outbox_count($node) == 0 }, 'channel allowed again: delivered', 10);
	usleep(300_000);
	$all = received($sub);
	@since = @$all[ $before .. $#$all ];
	is_deeply([ map { JSON::PP::decode_json($_->[1])->{price} } @{ trades_of(\@since) } ], ['32003.00000000'],
		'channel allowed again: trade messages resume after the reconnect');
}

# ---- flush_outbox publishes the trade messages too ------------------------------------------
# The worker is sent to another database, so only flush_outbox delivers here.
{
	my $worker_in_app = sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'exchange_adapter worker' AND datname = 'app'});
	};
	$node->append_conf('postgresql.conf', "exchange_adapter.database = 'postgres'\n");
	$node->reload;
	poll_until(sub { $worker_in_app->() eq '0' }, 'flush_outbox: no worker serves app', 30);
	my $before = scalar @{ received($sub) };
	my $xid = (split /\n/, q1(qq{BEGIN;
SELECT 1 FROM exchange.apply_match('$buy_eth', '$sell_eth', 0.3, 3456, maker => 'SELL');
SELECT pg_current_xact_id(); COMMIT;}))[-1];
	is(q1(q{SELECT exchange.flush_outbox()}), '1', 'flush_outbox: delivers the row');
	usleep(300_000);
	my $all = received($sub);
	my @since = @$all[ $before .. $#$all ];
	my ($mid) = trade_row(q{price = 3456});
	is(scalar @since, 2, 'flush_outbox: one invalidation message, one trade message');
	like($since[0][1], qr/"xid":"$xid"/, 'flush_outbox: the invalidation first');
	is($since[1][0], 'exchange:trades:ETH-USD', 'flush_outbox: the trade message on its channel');
	is_deeply([ @{ JSON::PP::decode_json($since[1][1]) }{qw(match_id price quantity taker_side)} ],
		[ $mid, '3456.00000000', '0.30000000', 'BUY' ], 'flush_outbox: the match\'s payload');
	$node->append_conf('postgresql.conf', "exchange_adapter.database = 'app'\n");
	$node->reload;
	poll_until(sub { $worker_in_app->() eq '1' }, 'the worker serves app again', 30);
}

is(q1(q{SELECT count(*) FROM exchange.check_invariants()}), '0', 'check_invariants() is empty');

# ---- README "Upgrading": the 1.1 library on a 1.0 catalog, then ALTER EXTENSION UPDATE -------
# On 1.0 (no outbox.trade_ids) rows are written and delivered as 1.0 did, with no trade message
# and no failure, by the worker and by flush_outbox; after the update, without a restart, the
# same worker publishes the next execution.
{
	my $old = $r->node('feed10', extension => 0, conf => "exchange_adapter.poll_interval = '60s'\n");
	$old->safe_psql('postgres', 'CREATE DATABASE app');
	$old->safe_psql('app', q{CREATE EXTENSION exchange_adapter VERSION '1.0'});
	ok(ExchangeRedis::wait_worker($old), '1.0 catalog: the worker runs');
	sub q0 { $old->safe_psql('app', shift) }
	my $u = q0(q{SELECT account_id FROM exchange.create_account('old_user')});
	q0(qq{SELECT exchange.set_kyc_status('$u', 'APPROVED')});
	q0(q{SELECT exchange.create_market('SOL-USD', 'SOL', 'USD')});
	q0(qq{SELECT exchange.deposit('$u', 'USD', 100000)});
	my $o = q0(qq{SELECT order_id FROM exchange.place_order('$u', 'SOL-USD', 'BUY', 'LIMIT', 10, 200)});
	poll_until(sub { ExchangeRedis::outbox_count($old) == 0 }, '1.0 catalog: setup delivered', 10);

	my $before = scalar @{ received($sub) };
	q0(qq{SELECT 1 FROM exchange.apply_trade('$o', 1, 150, liquidity => 'TAKER')});
	poll_until(sub { ExchangeRedis::outbox_count($old) == 0 }, '1.0 catalog: apply_trade delivered by the worker', 10);
	q0(qq{SELECT 1 FROM exchange.apply_trade('$o', 1, 151, liquidity => 'TAKER')});
	q0(q{SELECT exchange.flush_outbox()});
	poll_until(sub { ExchangeRedis::outbox_count($old) == 0 }, '1.0 catalog: flush_outbox works', 10);
	usleep(300_000);
	my $all = received($sub);
	my @since = @$all[ $before .. $#$all ];
	is(scalar(grep { $_->[0] eq 'exchange:invalidations' && $_->[1] =~ /cache:order:$o/ } @since), 2,
		'1.0 catalog: both fills invalidated as in 1.0');
	is(scalar @{ trades_of(\@since) }, 0, '1.0 catalog: no trade message');

	q0(q{ALTER EXTENSION exchange_adapter UPDATE});
	$before = scalar @{ received($sub) };
	q0(qq{SELECT 1 FROM exchange.apply_trade('$o', 1, 152, liquidity => 'TAKER')});
	poll_until(sub { ExchangeRedis::outbox_count($old) == 0 }, 'updated to 1.1: apply_trade delivered', 10);
	usleep(300_000);
	$all = received($sub);
	@since = @$all[ $before .. $#$all ];
	is_deeply([ map { [ $_->[0], JSON::PP::decode_json($_->[1])->{price} ] } @{ trades_of(\@since) } ],
		[ [ 'exchange:trades:SOL-USD', '152.00000000' ] ],
		'updated to 1.1: the running worker publishes the next execution');
	is(q0(q{SELECT count(*) FROM exchange.check_invariants()}), '0', 'upgraded ledger: check_invariants() is empty');
	$old->stop;
}

$sub->stop;
$node->stop;
ExchangeRedis::password_not_logged($node);
done_testing();
