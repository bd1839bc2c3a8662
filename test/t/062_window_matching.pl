# The 1.0-catalog window and the matching engine (README "Upgrading", "Matching engine").
#
# The 1.1 library on a 1.0 catalog (between the package upgrade and ALTER EXTENSION ... UPDATE):
# the 1.0 functions behave as in 1.0 (create_market with its 1.0 arguments, place_order,
# apply_trade, apply_match, trigger_stop_orders) and the 1.1-only C entry point of
# set_market_matching, bound by hand to a function, raises 55000 with the hint naming the update
# command.  After the update, a 1.0 ledger with resting orders (no book_seq) is halted, switched
# to INTERNAL while its book is not crossed, resumed, and matches a crossing order in price-time
# priority (1.0 orders first, by placement); a crossed book refuses INTERNAL (55000).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('window');
$node->init;
$node->start;
sub q1 { $node->safe_psql('postgres', shift) }

q1(q{CREATE EXTENSION exchange_adapter VERSION '1.0'});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'exchange_adapter'}), '1.0',
	'the catalog is at 1.0');

# The 1.0 ledger, through the 1.0 functions as the 1.1 library runs them.
q1(<<'SQL');
SELECT exchange.create_market('BTC-USDT', 'BTC', 'USDT', 0.01, 0.01, 0, 0, 0.001, 0.002);
SELECT exchange.create_market('ETH-USDT', 'ETH', 'USDT', 0.01, 0.01);
SELECT exchange.create_account(u) FROM unnest(ARRAY['alice', 'bob', 'erin', 'carol', 'dave']) u;
SELECT exchange.set_kyc_status(account_id, 'APPROVED') FROM exchange.accounts;
SELECT exchange.deposit(account_id, 'USDT', 10000) FROM exchange.accounts
 WHERE user_id IN ('alice', 'carol');
SELECT exchange.deposit(account_id, 'BTC', 10) FROM exchange.accounts WHERE user_id IN ('bob', 'erin', 'dave');
SELECT exchange.deposit(account_id, 'ETH', 10) FROM exchange.accounts WHERE user_id = 'bob';
SQL
sub place
{
	my ($user, $sym, $side, $type, $qty, $price, $coid, $extra) = @_;
	$extra //= '';
	return q1(qq{SELECT status FROM exchange.place_order(
	  (SELECT account_id FROM exchange.accounts WHERE user_id = '$user'), '$sym', '$side', '$type',
	  $qty, $price, client_order_id => '$coid' $extra)});
}
is(place('alice', 'BTC-USDT', 'BUY', 'LIMIT', 1, 100, 'bid'), 'OPEN', '1.0 place_order rests a bid');
is(place('bob', 'BTC-USDT', 'SELL', 'LIMIT', 1, 101, 'askA'), 'OPEN', '... an ask');
is(place('erin', 'BTC-USDT', 'SELL', 'LIMIT', 1, 101, 'askB'), 'OPEN', '... a later ask at the same price');
is(place('bob', 'BTC-USDT', 'SELL', 'LIMIT', 1, 102, 'askC'), 'OPEN', '... an ask at 102');
is(place('alice', 'BTC-USDT', 'BUY', 'LIMIT', 2, 90, 'fillme'), 'OPEN', '... a bid to fill from outside');
is(place('dave', 'BTC-USDT', 'SELL', 'LIMIT', 2, 80, 'matchme'), 'OPEN',
	'... a crossing ask: an EXTERNAL market does not match');
is(place('alice', 'BTC-USDT', 'BUY', 'STOP', 1, 120, 'stop', ', stop_price => 110'), 'PENDING',
	'... a stop');
q1(q{SELECT exchange.apply_trade((SELECT order_id FROM exchange.orders WHERE client_order_id = 'fillme'), 1, 90)});
is(q1(q{SELECT status FROM exchange.orders WHERE client_order_id = 'fillme'}), 'PARTIAL',
	'1.0 apply_trade works on the 1.0 catalog');
is(q1(q{SELECT count(*) FROM exchange.apply_match(
          (SELECT order_id FROM exchange.orders WHERE client_order_id = 'fillme'),
          (SELECT order_id FROM exchange.orders WHERE client_order_id = 'matchme'), 1, 85)}),
	'2', '1.0 apply_match works');
q1(q{SELECT exchange.cancel_order(order_id) FROM exchange.orders WHERE client_order_id = 'matchme'});
is(q1(q{SELECT count(*) FROM exchange.trigger_stop_orders('BTC-USDT', 111)}), '1',
	'1.0 trigger_stop_orders works');
q1(q{SELECT exchange.cancel_order(order_id) FROM exchange.orders WHERE client_order_id = 'stop'});
is(place('alice', 'ETH-USDT', 'BUY', 'LIMIT', 1, 2000, 'ethbid'), 'OPEN', 'an ETH bid');
is(place('bob', 'ETH-USDT', 'SELL', 'LIMIT', 1, 1990, 'ethask'), 'OPEN', 'a crossing ETH ask');
is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0', 'invariants hold on the 1.0 catalog');

# The 1.1-only entry point, bound by hand, refuses the 1.0 catalog.
q1(q{CREATE FUNCTION public.smm(text, text, text) RETURNS exchange.markets
       LANGUAGE c AS '$libdir/exchange_adapter', 'exa_set_market_matching'});
my ($rc, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
SELECT public.smm('BTC-USDT', 'INTERNAL', NULL)});
isnt($rc, 0, 'exa_set_market_matching fails on the 1.0 catalog');
like($err, qr/ERROR:  55000: set_market_matching needs version 1\.1/, '... with 55000');
like($err, qr/HINT:  Run ALTER EXTENSION exchange_adapter UPDATE\./, '... and the hint');
q1('DROP FUNCTION public.smm(text, text, text)');

# A role granted the operator profile under 1.0 keeps the market functions the update drops and
# creates again, and gets the new one.
q1(q{CREATE ROLE window_ops});
q1(q{SELECT exchange.grant_adapter('window_ops'::regrole, 'operator')});

# The update; the 1.0 orders have no book_seq.
q1('ALTER EXTENSION exchange_adapter UPDATE');
is(q1(q{SELECT has_function_privilege('window_ops', 'exchange.create_market(text, text, text, numeric, numeric, numeric, numeric, numeric, numeric, jsonb, text, text)', 'EXECUTE')
          AND has_function_privilege('window_ops', 'exchange.set_market_matching(text, text, text)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'exchange.set_market_matching(text, text, text)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'exchange.create_market(text, text, text, numeric, numeric, numeric, numeric, numeric, numeric, jsonb, text, text)', 'EXECUTE')}),
	't', 'the operator profile keeps create_market and gains set_market_matching; PUBLIC has neither');
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'exchange_adapter'}), '1.1',
	'updated to 1.1');
is(q1(q{SELECT count(*) FROM exchange.orders WHERE book_seq IS NOT NULL}), '0',
	'orders placed under 1.0 have no book_seq');
is(q1(q{SELECT string_agg(matching || '/' || self_trade || '/' || trade_seq, ',' ORDER BY symbol)
          FROM exchange.markets}), 'EXTERNAL/EXPIRE_MAKER/0,EXTERNAL/EXPIRE_MAKER/0',
	'markets start EXTERNAL');

# Switched while HALTED and uncrossed (best bid 100, best ask 101), resumed: nothing matches on
# resume; a 1.1 ask at 101 queues behind the two 1.0 asks; a crossing BUY takes them in order.
q1(q{SELECT exchange.set_market_status('BTC-USDT', 'HALTED')});
is(q1(q{SELECT matching FROM exchange.set_market_matching('BTC-USDT', 'INTERNAL')}), 'INTERNAL',
	'an uncrossed 1.0 book switches to INTERNAL');
q1(q{SELECT exchange.set_market_status('BTC-USDT', 'ACTIVE')});
is(q1(q{SELECT count(*) FROM exchange.trades WHERE seq IS NOT NULL}), '0', 'nothing matched on resume');
is(place('dave', 'BTC-USDT', 'SELL', 'LIMIT', 1, 101, 'askD'), 'OPEN', 'a 1.1 ask rests at 101');
is(place('carol', 'BTC-USDT', 'BUY', 'LIMIT', 3.5, 102, 'taker'), 'FILLED',
	'a crossing BUY fills against the 1.0 book');
is(q1(q{SELECT string_agg(t.seq || ':' || o.client_order_id || '@' || t.price || 'x' || t.quantity, ' '
                          ORDER BY t.seq)
          FROM exchange.trades t JOIN exchange.orders o USING (order_id)
         WHERE t.liquidity = 'MAKER' AND t.seq IS NOT NULL}),
	'1:askA@101.00000000x1.00000000 2:askB@101.00000000x1.00000000 3:askD@101.00000000x1.00000000 4:askC@102.00000000x0.50000000',
	'price then time priority: 1.0 orders by placement, then the 1.1 one, then the next level');
is(q1(q{SELECT last_price || ' ' || trade_seq FROM exchange.markets WHERE symbol = 'BTC-USDT'}),
	'102.00000000 4', 'last_price and trade_seq follow the executions');
is(q1(q{SELECT status || ' ' || filled_quantity FROM exchange.orders WHERE client_order_id = 'bid'}),
	'OPEN 0.00000000', 'the 1.0 bid is untouched');

# A crossed book refuses INTERNAL.
q1(q{SELECT exchange.set_market_status('ETH-USDT', 'HALTED')});
($rc, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
SELECT exchange.set_market_matching('ETH-USDT', 'INTERNAL')});
isnt($rc, 0, 'a crossed book cannot switch to INTERNAL');
like($err, qr/ERROR:  55000: the book of market "ETH-USDT" is crossed/, '... 55000');
like($err, qr/DETAIL:  Best bid 2000\.00000000, best ask 1990\.00000000\./, '... best bid and ask in the detail');
is(q1(q{SELECT matching FROM exchange.markets WHERE symbol = 'ETH-USDT'}), 'EXTERNAL', '... it stays EXTERNAL');

is(q1('SELECT count(*) FROM exchange.check_invariants()'), '0', 'invariants hold at the end');
$node->stop;
done_testing();
