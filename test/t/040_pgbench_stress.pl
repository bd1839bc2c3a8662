# Acceptance item 4 of the orders-and-trades issue: a pgbench stress run on a handful of hot
# accounts, then the ledger is checked.
#
# 8 clients run 20,000 transactions, one API call each, drawn at random from: place_order
# (LIMIT / MARKET / STOP, BUY / SELL, with and without client_order_id, some with a price off the
# tick, a quantity off the lot or a notional below the minimum), cancel_order, apply_trade on a
# random live order, apply_match of a random live BUY and a crossing SELL, deposit, withdraw,
# lock_balance, unlock_balance, capture_hold, trigger_stop_orders, expire_order, cancel_orders,
# expire_orders, set_account_status ACTIVE <-> SUSPENDED, and the batches place_orders (items on
# several accounts, in varying orders), cancel_order_ids, apply_trades and apply_matches (random
# crossing pairs of one market, in random order), on 6 accounts and 2 markets.
#
# pgbench aborts a client on any error, so each call goes through a small PL/pgSQL wrapper created
# here (schema stress, not part of the extension) that catches the documented refusals (SQLSTATE
# class LX and class 22), records them in stress.refusals and with a LOG line, and re-raises
# anything else.  A business refusal is normal: the race between picking a live order and
# locking it, an overfill, a fill-or-kill, a price outside the limit, a reused client_order_id or
# trade_ref, a suspended account, a shortage.
#
# Afterwards: pgbench exited 0 with every transaction processed; check_invariants() is empty;
# every order's event journal replays, along the lifecycle table of README "Order lifecycle and
# arithmetic" (re-implemented here), to its status and filled quantity; every refusal seen has a
# documented SQLSTATE; and the server log (log_error_verbosity = verbose, %e in log_line_prefix)
# holds no "deadlock detected" and no ERROR, FATAL or PANIC whose SQLSTATE is not documented.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use ExchangeTest;

my $clients = 8;
my $transactions = 20_000;
my $seed = $ENV{EA_STRESS_SEED} // int(rand(1_000_000_000));

# The documented SQLSTATEs (README "Errors"): LX001..LX011 and the argument errors.
my %documented = map { $_ => 1 } (
	(map { sprintf('LX%03d', $_) } 1 .. 11), '22023', '22004', '22003');

# No worker: exchange_adapter.database names a database that does not exist.
my $node = exchange_node(
	'stress',
	database => 'no_worker_here',
	conf => <<'EOF');
log_statement = none
log_error_verbosity = verbose
log_line_prefix = '%m [%p] %e %q%a '
log_lock_waits = on
deadlock_timeout = 200ms
max_connections = 40
EOF
$node->safe_psql('postgres', 'CREATE DATABASE stress');
$node->safe_psql('stress', 'CREATE EXTENSION exchange_adapter');

# ---------------------------------------------------------------------------------------------
# Fixture: 6 accounts (KYC APPROVED, funded in BTC, ETH and USDT; the first 3 also in BNB for
# explicit fees), 2 markets with fees, tick 0.01, lot 0.001, minimum notional 1.

$node->safe_psql('stress', <<'EOF');
CREATE SCHEMA stress;
CREATE TABLE stress.acct (n int PRIMARY KEY, account_id uuid NOT NULL);
CREATE TABLE stress.mkt (n int PRIMARY KEY, symbol text NOT NULL, base text NOT NULL, quote text NOT NULL);
CREATE UNLOGGED TABLE stress.refusals (op text NOT NULL, sqlstate text NOT NULL, message text);
CREATE UNLOGGED TABLE stress.batches (op text NOT NULL, items int NOT NULL);

SELECT exchange.create_market('BTC-USDT', 'BTC', 'USDT', 0.01, 0.001, 0.001, 1, 0.001, 0.002);
SELECT exchange.create_market('ETH-USDT', 'ETH', 'USDT', 0.01, 0.001, 0.001, 1, 0.0005, 0.001);
INSERT INTO stress.mkt VALUES (1, 'BTC-USDT', 'BTC', 'USDT'), (2, 'ETH-USDT', 'ETH', 'USDT');

INSERT INTO stress.acct
SELECT n, (exchange.create_account('stress-' || n)).account_id FROM generate_series(1, 6) n;
SELECT exchange.set_kyc_status(account_id, 'APPROVED') FROM stress.acct;
SELECT exchange.deposit(account_id, 'USDT', 1000) FROM stress.acct;
SELECT exchange.deposit(account_id, 'BTC', 5) FROM stress.acct;
SELECT exchange.deposit(account_id, 'ETH', 5) FROM stress.acct;
SELECT exchange.deposit(account_id, 'BNB', 10) FROM stress.acct WHERE n <= 3;

-- Is this SQLSTATE a refusal the wrappers let pass?  Everything else is re-raised, aborts the
-- pgbench client and fails the test.
CREATE FUNCTION stress.passes(state text) RETURNS boolean LANGUAGE sql IMMUTABLE
	AS $$ SELECT state LIKE 'LX%' OR state LIKE '22%' $$;

CREATE FUNCTION stress.note(op text, state text, msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO stress.refusals VALUES (op, state, msg);
	RAISE LOG 'stress: % refused: %: %', op, state, msg;
END $$;

CREATE FUNCTION stress.acct(a int) RETURNS uuid LANGUAGE sql STABLE
	AS $$ SELECT account_id FROM stress.acct WHERE n = a $$;

-- place_order.  typ 1-6 LIMIT, 7-8 MARKET, 9-10 STOP; tif 0 NULL, 1 GTC, 2 IOC, 3 FOK;
-- quantity lots x 0.001 (odd = 1: half a lot, refused LOT_SIZE); price 80 + ticks x 0.01
-- (odd = 1: a thousandth more, refused TICK_SIZE); cid 0: no client_order_id.
CREATE FUNCTION stress.place(a int, m int, side int, typ int, lots int, ticks int,
                             stop_ticks int, tif int, cid int, odd int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s text := CASE side WHEN 1 THEN 'BUY' ELSE 'SELL' END;
	t text := CASE WHEN typ <= 6 THEN 'LIMIT' WHEN typ <= 8 THEN 'MARKET' ELSE 'STOP' END;
	q numeric := lots * 0.001 + CASE odd WHEN 1 THEN 0.0005 ELSE 0 END;
	p numeric := 80 + ticks * 0.01 + CASE odd WHEN 2 THEN 0.001 ELSE 0 END;
	sp numeric;
	f text := (ARRAY[NULL, 'GTC', 'IOC', 'FOK'])[tif + 1];
BEGIN
	IF t = 'MARKET' AND f = 'GTC' THEN f := 'IOC'; END IF;
	IF t = 'STOP' THEN sp := 80 + stop_ticks * 0.01; END IF;
	-- a SELL may go without a price when it is MARKET or STOP (half the time)
	IF s = 'SELL' AND t <> 'LIMIT' AND ticks % 2 = 0 THEN p := NULL; END IF;
	BEGIN
		PERFORM exchange.place_order(stress.acct(a), (SELECT symbol FROM stress.mkt WHERE n = m),
		                             s, t, q, p, f, sp,
		                             CASE WHEN cid > 0 THEN 'c' || cid END,
		                             pg_catalog.jsonb_build_object('stress', true));
	EXCEPTION WHEN OTHERS THEN
		IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
		PERFORM stress.note('place_order', SQLSTATE, SQLERRM);
	END;
END $$;

-- cancel_order / expire_order on a random live order.
CREATE FUNCTION stress.close(expire boolean) RETURNS void LANGUAGE plpgsql AS $$
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

-- apply_trade on a random OPEN or PARTIAL order: at most its remaining quantity (all of it when
-- full = 1), at its limit or better by up to `better` ticks (worse, refused LX006, when bad = 1),
-- fee from the market's rate (liq 1 MAKER, 2 TAKER), none (liq 0), or explicit (liq 3: 0.01 USDT,
-- 4: 0.001 BNB); trade_ref 'r<ref>' when ref > 0 (retries and conflicts).
CREATE FUNCTION stress.trade(lots int, full_fill int, better int, bad int, liq int, ref int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	o record;
	q numeric;
	p numeric;
BEGIN
	SELECT order_id, side, price, quantity - filled_quantity AS remaining INTO o
	  FROM exchange.orders WHERE status IN ('OPEN', 'PARTIAL') ORDER BY random() LIMIT 1;
	IF NOT FOUND THEN RETURN; END IF;
	q := CASE WHEN full_fill = 1 THEN o.remaining ELSE LEAST(o.remaining, lots * 0.001) END;
	IF o.side = 'BUY' THEN
		p := GREATEST(o.price - better * 0.01, 0.01) + CASE WHEN bad = 1 THEN 0.01 ELSE 0 END;
	ELSE
		p := COALESCE(o.price, 95) + better * 0.01 - CASE WHEN bad = 1 THEN 0.01 ELSE 0 END;
	END IF;
	BEGIN
		PERFORM exchange.apply_trade(o.order_id, q, p,
			CASE liq WHEN 3 THEN 0.01 WHEN 4 THEN 0.001 END,
			CASE liq WHEN 3 THEN 'USDT' WHEN 4 THEN 'BNB' END,
			pg_catalog.now(),
			CASE WHEN ref > 0 THEN 'r' || ref END,
			CASE liq WHEN 1 THEN 'MAKER' WHEN 2 THEN 'TAKER' END);
	EXCEPTION WHEN OTHERS THEN
		IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
		PERFORM stress.note('apply_trade', SQLSTATE, SQLERRM);
	END;
END $$;

-- apply_match of a random live BUY of market m and a random live SELL of the same market that
-- crosses it, at a price between the two limits; maker 0 NULL, 1 BUY, 2 SELL.
CREATE FUNCTION stress.match(m int, lots int, at int, maker int, ref int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	sym text := (SELECT symbol FROM stress.mkt WHERE n = m);
	b record;
	s record;
	q numeric;
	p numeric;
BEGIN
	SELECT order_id, price, quantity - filled_quantity AS remaining INTO b
	  FROM exchange.orders
	 WHERE symbol = sym AND side = 'BUY' AND status IN ('OPEN', 'PARTIAL')
	 ORDER BY random() LIMIT 1;
	IF NOT FOUND THEN RETURN; END IF;
	SELECT order_id, price, quantity - filled_quantity AS remaining INTO s
	  FROM exchange.orders
	 WHERE symbol = sym AND side = 'SELL' AND status IN ('OPEN', 'PARTIAL')
	   AND (price IS NULL OR price <= b.price)
	 ORDER BY random() LIMIT 1;
	IF NOT FOUND THEN RETURN; END IF;
	q := LEAST(b.remaining, s.remaining, lots * 0.001);
	p := CASE WHEN s.price IS NULL THEN b.price
	          ELSE round(s.price + (b.price - s.price) * at / 100.0, 2) END;
	BEGIN
		PERFORM exchange.apply_match(b.order_id, s.order_id, q, p, NULL, NULL,
		                             CASE WHEN ref > 0 THEN 'm' || ref END,
		                             (ARRAY[NULL, 'BUY', 'SELL'])[maker + 1]);
	EXCEPTION WHEN OTHERS THEN
		IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
		PERFORM stress.note('apply_match', SQLSTATE, SQLERRM);
	END;
END $$;

-- deposit / withdraw of asset k (1 USDT: cents x 0.01, 2 BTC and 3 ETH: cents x 0.0001);
-- reference 'd<ref>' / 'w<ref>' when ref > 0 (retries and conflicts).
CREATE FUNCTION stress.funds(a int, k int, cents int, ref int, withdraw boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	asset text := (ARRAY['USDT', 'BTC', 'ETH'])[k];
	amount numeric := cents * CASE k WHEN 1 THEN 0.01 ELSE 0.0001 END;
BEGIN
	BEGIN
		IF withdraw THEN
			PERFORM exchange.withdraw(stress.acct(a), asset, amount,
			                          CASE WHEN ref > 0 THEN 'w' || ref END);
		ELSE
			PERFORM exchange.deposit(stress.acct(a), asset, amount,
			                         CASE WHEN ref > 0 THEN 'd' || ref END);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
		PERFORM stress.note(CASE WHEN withdraw THEN 'withdraw' ELSE 'deposit' END, SQLSTATE, SQLERRM);
	END;
END $$;

CREATE FUNCTION stress.lock(a int, k int, cents int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM exchange.lock_balance(stress.acct(a), (ARRAY['USDT', 'BTC', 'ETH'])[k],
	                              cents * 0.01 * CASE k WHEN 1 THEN 10 ELSE 0.001 END, 'stress');
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('lock_balance', SQLSTATE, SQLERRM);
END $$;

-- unlock_balance / capture_hold of a random live hold: all that remains (part 0) or part/10 of
-- its amount (may exceed what remains: 22023); capture reference 'k<ref>' when ref > 0.
CREATE FUNCTION stress.release(capture boolean, part int, ref int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	h record;
BEGIN
	SELECT hold_id, amount INTO h FROM exchange.holds
	 WHERE released_at IS NULL ORDER BY random() LIMIT 1;
	IF NOT FOUND THEN RETURN; END IF;
	BEGIN
		IF capture THEN
			PERFORM exchange.capture_hold(h.hold_id,
				CASE WHEN part > 0 THEN trunc(h.amount * part / 10, 8) END,
				CASE WHEN ref > 0 THEN 'k' || ref END);
		ELSE
			PERFORM exchange.unlock_balance(h.hold_id,
				CASE WHEN part > 0 THEN trunc(h.amount * part / 10, 8) END);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
		PERFORM stress.note(CASE WHEN capture THEN 'capture_hold' ELSE 'unlock_balance' END, SQLSTATE, SQLERRM);
	END;
END $$;

CREATE FUNCTION stress.trigger(m int, ticks int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM exchange.trigger_stop_orders((SELECT symbol FROM stress.mkt WHERE n = m), 80 + ticks * 0.01);
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('trigger_stop_orders', SQLSTATE, SQLERRM);
END $$;

CREATE FUNCTION stress.set_status(a int, active boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM exchange.set_account_status(stress.acct(a),
	                                    CASE WHEN active THEN 'ACTIVE' ELSE 'SUSPENDED' END);
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('set_account_status', SQLSTATE, SQLERRM);
END $$;

-- The batch calls: cancel_orders of one account (and market), expire_orders of a market's
-- orders older than 3 s.  They lock several accounts and orders in one call.
CREATE FUNCTION stress.batch(a int, m int, expire boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	sym text := (SELECT symbol FROM stress.mkt WHERE n = m);
BEGIN
	IF expire THEN
		PERFORM exchange.expire_orders(sym, pg_catalog.now() - interval '3 seconds');
	ELSE
		PERFORM exchange.cancel_orders(stress.acct(a), CASE WHEN a % 2 = 0 THEN sym END);
	END IF;
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note(CASE WHEN expire THEN 'expire_orders' ELSE 'cancel_orders' END, SQLSTATE, SQLERRM);
END $$;

-- place_orders of n LIMIT items on accounts a, a+step, ... (mod 6: the order of the accounts
-- varies between calls).  README "Batches": a batch never deadlocks with single calls or other
-- batches.
CREATE FUNCTION stress.place_batch(a int, step int, m int, n int, lots int, ticks int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM exchange.place_orders((
		SELECT jsonb_agg(jsonb_build_object(
				'account_id', stress.acct((a + i * step) % 6 + 1),
				'symbol', (SELECT symbol FROM stress.mkt WHERE mkt.n = m),
				'side', CASE i % 2 WHEN 0 THEN 'BUY' ELSE 'SELL' END, 'order_type', 'LIMIT',
				'quantity', (lots + i) * 0.001, 'price', (80 + (ticks + 7 * i) * 0.01)::text)
				ORDER BY i)
		  FROM generate_series(0, n - 1) i));
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('place_orders', SQLSTATE, SQLERRM);
END $$;

-- apply_trades of up to k random OPEN or PARTIAL orders in random order, each filled lots x
-- 0.001 (at most its remainder) at its limit (95 for a SELL without one), with a fee in BNB
-- when bnb = 1 (refused LX001 on the accounts without BNB: the whole batch).
CREATE FUNCTION stress.trade_batch(k int, lots int, bnb int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	items jsonb;
BEGIN
	SELECT jsonb_agg(jsonb_build_object('order_id', order_id,
			'quantity', LEAST(quantity - filled_quantity, lots * 0.001),
			'price', COALESCE(price, 95),
			'fee', CASE WHEN bnb = 1 THEN 0.001 END, 'fee_currency', CASE WHEN bnb = 1 THEN 'BNB' END))
	  INTO items
	  FROM (SELECT * FROM exchange.orders WHERE status IN ('OPEN', 'PARTIAL')
			 ORDER BY random() LIMIT k) o;
	IF items IS NULL THEN RETURN; END IF;
	PERFORM exchange.apply_trades(items);
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('apply_trades', SQLSTATE, SQLERRM);
END $$;

-- apply_matches of up to k pairs of market m, in random order: each of up to k random live
-- BUYs with a random live SELL that crosses it, lots x 0.001 (at most both remainders) at a
-- price between the two limits; maker 0 NULL, 1 BUY, 2 SELL; trade_ref 'bm<ref>' when ref > 0.
-- A SELL may be drawn for two BUYs (an overfill, LX007, refuses the whole batch).
CREATE FUNCTION stress.match_batch(m int, k int, lots int, at int, maker int, ref int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	sym text := (SELECT symbol FROM stress.mkt WHERE n = m);
	items jsonb;
BEGIN
	SELECT jsonb_agg(jsonb_build_object('buy_order_id', b.order_id, 'sell_order_id', s.order_id,
			'quantity', LEAST(b.remaining, s.remaining, lots * 0.001),
			'price', CASE WHEN s.price IS NULL THEN b.price
						  ELSE round(s.price + (b.price - s.price) * at / 100.0, 2) END,
			'trade_ref', CASE WHEN ref > 0 THEN 'bm' || ref END,
			'maker', (ARRAY[NULL, 'BUY', 'SELL'])[maker + 1]) ORDER BY random())
	  INTO items
	  FROM (SELECT order_id, price, quantity - filled_quantity AS remaining FROM exchange.orders
			 WHERE symbol = sym AND side = 'BUY' AND status IN ('OPEN', 'PARTIAL')
			 ORDER BY random() LIMIT k) b
	 CROSS JOIN LATERAL (
			SELECT order_id, price, quantity - filled_quantity AS remaining FROM exchange.orders
			 WHERE symbol = sym AND side = 'SELL' AND status IN ('OPEN', 'PARTIAL')
			   AND (price IS NULL OR price <= b.price)
			 ORDER BY random() LIMIT 1) s;
	IF items IS NULL THEN RETURN; END IF;
	PERFORM exchange.apply_matches(items);
	INSERT INTO stress.batches VALUES ('apply_matches', jsonb_array_length(items));
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('apply_matches', SQLSTATE, SQLERRM);
END $$;

-- cancel_order_ids of up to k random live orders, in random order.
CREATE FUNCTION stress.cancel_batch(k int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	ids uuid[];
BEGIN
	SELECT array_agg(order_id) INTO ids FROM (
		SELECT order_id FROM exchange.orders
		 WHERE status IN ('PENDING', 'OPEN', 'PARTIAL') ORDER BY random() LIMIT k) o;
	IF ids IS NULL THEN RETURN; END IF;
	PERFORM exchange.cancel_order_ids(ids, 'stress');
EXCEPTION WHEN OTHERS THEN
	IF NOT stress.passes(SQLSTATE) THEN RAISE; END IF;
	PERFORM stress.note('cancel_order_ids', SQLSTATE, SQLERRM);
END $$;
EOF

# ---------------------------------------------------------------------------------------------
# The pgbench scripts: one API call per transaction, weights out of 100.

my %scripts = (
	place => [ 30, <<'EOF' ],
\set a random(1, 6)
\set m random(1, 2)
\set side random(1, 2)
\set typ random(1, 10)
\set lots random(1, 2000)
\set ticks random(0, 4000)
\set stop_ticks random(0, 4000)
\set tif random(0, 3)
\set cidr random(-2000, 1500)
\set odd random(0, 40)
SELECT stress.place(:a, :m, :side, :typ, :lots, :ticks, :stop_ticks, :tif, greatest(:cidr, 0), :odd);
EOF
	cancel => [ 7, "SELECT stress.close(false);\n" ],
	expire => [ 4, "SELECT stress.close(true);\n" ],
	trade => [ 12, <<'EOF' ],
\set lots random(1, 1500)
\set full_fill random(0, 3)
\set better random(0, 50)
\set bad random(0, 20)
\set liq random(0, 4)
\set refr random(-3000, 1000)
SELECT stress.trade(:lots, :full_fill, :better, :bad, :liq, greatest(:refr, 0));
EOF
	match => [ 12, <<'EOF' ],
\set m random(1, 2)
\set lots random(1, 1500)
\set at random(0, 100)
\set maker random(0, 2)
\set refr random(-3000, 500)
SELECT stress.match(:m, :lots, :at, :maker, greatest(:refr, 0));
EOF
	deposit => [ 5, <<'EOF' ],
\set a random(1, 6)
\set k random(1, 3)
\set cents random(1, 50000)
\set refr random(-500, 300)
SELECT stress.funds(:a, :k, :cents, greatest(:refr, 0), false);
EOF
	withdraw => [ 2, <<'EOF' ],
\set a random(1, 6)
\set k random(1, 3)
\set cents random(1, 50000)
\set refr random(-500, 300)
SELECT stress.funds(:a, :k, :cents, greatest(:refr, 0), true);
EOF
	lock => [ 4, <<'EOF' ],
\set a random(1, 6)
\set k random(1, 3)
\set cents random(1, 10000)
SELECT stress.lock(:a, :k, :cents);
EOF
	unlock => [ 3, <<'EOF' ],
\set part random(0, 6)
SELECT stress.release(false, :part, 0);
EOF
	capture => [ 2, <<'EOF' ],
\set part random(0, 6)
\set refr random(-300, 200)
SELECT stress.release(true, :part, greatest(:refr, 0));
EOF
	trigger => [ 4, <<'EOF' ],
\set m random(1, 2)
\set ticks random(0, 4000)
SELECT stress.trigger(:m, :ticks);
EOF
	status => [ 5, <<'EOF' ],
\set a random(1, 6)
\set act random(0, 3)
SELECT stress.set_status(:a, :act > 0);
EOF
	cancel_orders => [ 1, <<'EOF' ],
\set a random(1, 6)
\set m random(1, 2)
SELECT stress.batch(:a, :m, false);
EOF
	expire_orders => [ 1, <<'EOF' ],
\set m random(1, 2)
SELECT stress.batch(1, :m, true);
EOF
	place_orders => [ 3, <<'EOF' ],
\set a random(0, 5)
\set step random(1, 5)
\set m random(1, 2)
\set n random(1, 12)
\set lots random(1, 1000)
\set ticks random(0, 4000)
SELECT stress.place_batch(:a, :step, :m, :n, :lots, :ticks);
EOF
	cancel_order_ids => [ 1, <<'EOF' ],
\set k random(1, 6)
SELECT stress.cancel_batch(:k);
EOF
	apply_trades => [ 2, <<'EOF' ],
\set k random(1, 6)
\set lots random(1, 1500)
\set bnb random(0, 3)
SELECT stress.trade_batch(:k, :lots, :bnb);
EOF
	apply_matches => [ 2, <<'EOF' ],
\set m random(1, 2)
\set k random(1, 6)
\set lots random(1, 1500)
\set at random(0, 100)
\set maker random(0, 2)
\set refr random(-3000, 500)
SELECT stress.match_batch(:m, :k, :lots, :at, :maker, greatest(:refr, 0));
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

# ---------------------------------------------------------------------------------------------
# The run.

my @cmd = (
	'pgbench', '-n', '-c', $clients, '-j', 2, '-t', $transactions / $clients,
	"--random-seed=$seed", '-h', $node->host, '-p', $node->port, @files, 'stress');
note("random seed $seed (set EA_STRESS_SEED to replay)");
my ($out, $err) = ('', '');
my $t0 = time();
my $ok;
{
	# A hung lock would show as statement_timeout (57014), which the wrappers re-raise.
	local $ENV{PGOPTIONS} = '-c statement_timeout=60s';
	$ok = IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(600));
}
my $rc = $? >> 8;
my $elapsed = time() - $t0;
diag("pgbench ($clients clients, $transactions transactions, seed $seed) took ${elapsed}s:\n"
	  . join("\n", grep { /^(number of|latency average|tps|SQL script|\s+- (weight|\d+ trans))/ } split /\n/, $out));
is($rc, 0, 'pgbench exits 0: no client aborted') or diag("stdout:\n$out\nstderr:\n$err");
like($out, qr{number of transactions actually processed: $transactions/$transactions},
	"all $transactions transactions processed");
# pgbench 15 counts a deadlock (40P01) or serialization failure (40001) as a failed transaction
# and goes on (exit 0); any other error aborts the client.
like($out, qr{number of failed transactions: 0 }, 'no failed transaction (no deadlock, no serialization failure)');

# ---------------------------------------------------------------------------------------------
# What the run did, for the report.

my $refusals = $node->safe_psql('stress',
	q{SELECT string_agg(format('%-20s %s %s', op, sqlstate, n), E'\n' ORDER BY op, sqlstate)
	    FROM (SELECT op, sqlstate, count(*) AS n FROM stress.refusals GROUP BY 1, 2) r});
diag("refusals caught by the wrappers (op, SQLSTATE, count):\n$refusals");
my $by_state = $node->safe_psql('stress',
	q{SELECT string_agg(sqlstate || ' ' || n, ', ' ORDER BY sqlstate)
	    FROM (SELECT sqlstate, count(*) AS n FROM stress.refusals GROUP BY 1) r});
diag("refusals by SQLSTATE: $by_state");
my @undocumented = grep { !$documented{$_} }
  split /\n/, $node->safe_psql('stress', 'SELECT DISTINCT sqlstate FROM stress.refusals ORDER BY 1');
is_deeply(\@undocumented, [], 'every refusal the wrappers caught has a documented SQLSTATE');

diag("orders by type and status:\n"
	  . $node->safe_psql('stress',
		q{SELECT string_agg(format('%-7s %-10s %-18s %s', order_type, status, coalesce(reject_reason, ''), n), E'\n'
		                    ORDER BY order_type, status, reject_reason)
		    FROM (SELECT order_type, status, reject_reason, count(*) AS n FROM exchange.orders GROUP BY 1, 2, 3) o}));
diag("rows: "
	  . $node->safe_psql('stress',
		q{SELECT format('%s trades (%s matched), %s journal rows, %s order events, %s fees, %s holds, %s outbox rows',
		                (SELECT count(*) FROM exchange.trades),
		                (SELECT count(*) FROM exchange.trades WHERE match_id IS NOT NULL),
		                (SELECT count(*) FROM exchange.balance_journal),
		                (SELECT count(*) FROM exchange.order_events),
		                (SELECT count(*) FROM exchange.fee_ledger),
		                (SELECT count(*) FROM exchange.holds),
		                (SELECT count(*) FROM exchange.outbox))}));

# The run must have exercised what it claims to.
my %seen = split /[|\n]/, $node->safe_psql('stress', <<'EOF');
SELECT 'statuses', count(DISTINCT to_status) FROM exchange.order_events
UNION ALL SELECT 'triggered', count(*) FROM exchange.order_events WHERE from_status = 'PENDING' AND to_status = 'OPEN'
UNION ALL SELECT 'partial_fills', count(*) FROM exchange.order_events WHERE to_status = 'PARTIAL'
UNION ALL SELECT 'matches', count(DISTINCT match_id) FROM exchange.trades
UNION ALL SELECT 'captures', count(*) FROM exchange.balance_journal WHERE kind = 'CAPTURE'
UNION ALL SELECT 'suspended_rejects', count(*) FROM exchange.orders WHERE reject_reason = 'ACCOUNT_NOT_ACTIVE'
UNION ALL SELECT 'funds_rejects', count(*) FROM exchange.orders WHERE reject_reason = 'INSUFFICIENT_FUNDS'
UNION ALL SELECT 'match_batches', count(*) FROM stress.batches WHERE op = 'apply_matches' AND items > 1
EOF
diag("apply_matches batches applied: "
	  . $node->safe_psql('stress',
		q{SELECT format('%s (%s with several items, %s items in all)', count(*), count(*) FILTER (WHERE items > 1),
		                coalesce(sum(items), 0)) FROM stress.batches WHERE op = 'apply_matches'}));
ok($seen{statuses} == 7 && $seen{triggered} > 0 && $seen{partial_fills} > 0 && $seen{matches} > 0
	  && $seen{captures} > 0 && $seen{suspended_rejects} > 0 && $seen{funds_rejects} > 0
	  && $seen{match_batches} > 0,
	'the run reached every order status, stop triggers, partial fills, matches, apply_matches batches of several items, captures, suspended accounts and shortages')
  or diag(explain \%seen);

# ---------------------------------------------------------------------------------------------
# The ledger afterwards.

is($node->safe_psql('stress',
		q{SELECT string_agg(invariant || ': ' || detail, E'\n') FROM exchange.check_invariants()}),
	'', 'check_invariants() is empty');

# Every order's event journal replays along the lifecycle table to its status and filled
# quantity: an independent replay of the same rule check_invariants() applies in SQL.
{
	my %legal = map { $_ => 1 } qw(
	  PENDING>OPEN PENDING>CANCELLED PENDING>EXPIRED
	  OPEN>PARTIAL OPEN>FILLED OPEN>CANCELLED OPEN>EXPIRED
	  PARTIAL>PARTIAL PARTIAL>FILLED PARTIAL>CANCELLED PARTIAL>EXPIRED);
	my $rows = $node->safe_psql('stress', <<'EOF');
SELECT o.order_id, o.order_type, o.status, (o.quantity * 100000000)::bigint,
       (o.filled_quantity * 100000000)::bigint,
       string_agg(coalesce(e.from_status, '-') || '>' || e.to_status || '>'
                  || (e.filled_delta * 100000000)::bigint, ' ' ORDER BY e.seq)
  FROM exchange.orders o LEFT JOIN exchange.order_events e ON e.order_id = o.order_id
 GROUP BY o.order_id
EOF
	my (@bad, $n);
	for my $row (split /\n/, $rows)
	{
		$n++;
		my ($id, $type, $status, $qty, $filled, $events) = split /\|/, $row, -1;
		my @ev = split / /, $events;
		my ($state, $sum, $why) = (undef, 0, undef);
		for my $i (0 .. $#ev)
		{
			my ($from, $to, $delta) = split />/, $ev[$i];
			if ($i == 0)
			{
				my $initial = $type eq 'STOP' ? 'PENDING' : 'OPEN';
				$why = "created as $from>$to" if $from ne '-' || ($to ne $initial && $to ne 'REJECTED');
			}
			elsif ($from ne $state)
			{
				$why = "event $i moves from $from, but the order was $state";
			}
			elsif (!$legal{"$from>$to"})
			{
				$why = "event $i: $from > $to is not in the lifecycle table";
			}
			$sum += $delta;
			my $fill = $to eq 'PARTIAL' || $to eq 'FILLED';
			$why //= "event $i: $from > $to with filled_delta $delta"
			  if $i > 0 && ($fill ? $delta <= 0 : $delta != 0);
			$why //= "event $i: PARTIAL with nothing left" if $to eq 'PARTIAL' && $sum >= $qty;
			$why //= "event $i: FILLED with $sum of $qty" if $to eq 'FILLED' && $sum != $qty;
			$state = $to;
			last if defined $why;
		}
		$why //= 'no event' unless @ev;
		$why //= "replays to $state, but the order is $status" if $state ne $status;
		$why //= "events fill $sum, but filled_quantity is $filled" if $sum != $filled;
		push @bad, "order $id: $why" if defined $why;
	}
	ok($n > 1000, "the run placed orders ($n)");
	is(join("\n", @bad), '', "every order's event journal replays to its status and filled quantity");
}

# ---------------------------------------------------------------------------------------------
# The server log: no deadlock, no ERROR (or worse) with an undocumented SQLSTATE.  Read before
# the node stops (a shutdown logs its own FATALs for terminated background workers).

my $log = slurp_file($node->logfile);
my (%logged, @undocumented_log);
for my $line (split /\n/, $log)
{
	if ($line =~ /\b(ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):/)
	{
		$logged{$2}++;
		push @undocumented_log, $line unless $documented{$2};
	}
}
my $caught_logged = () = $log =~ /LOG:\s+00000: stress: \S+ refused: LX/g;
diag("ERROR/FATAL/PANIC lines in the server log by SQLSTATE: "
	  . (join(', ', map { "$_ $logged{$_}" } sort keys %logged) || 'none')
	  . "; LOG lines of caught LX refusals: $caught_logged");
my $waits = () = $log =~ /still waiting for/g;
diag("lock waits longer than deadlock_timeout (log_lock_waits): $waits");
my @deadlocks = grep { /deadlock detected/ } split /\n/, $log;
is(scalar(@deadlocks), 0, 'no deadlock detected in the server log')
  or diag(join("\n", (map { s/^.*?(Process \d+)/$1/r } grep { /Process \d+/ } split /\n/, $log)[0 .. 59]));
is(join("\n", @undocumented_log[0 .. ($#undocumented_log < 19 ? $#undocumented_log : 19)]), '',
	'no ERROR, FATAL or PANIC with an undocumented SQLSTATE in the server log');

$node->stop;
done_testing();
