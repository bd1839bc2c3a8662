#!/usr/bin/env python3
"""
test/reference/check.py — randomized differential check of exchange_adapter's internal matching
against the reference model in matcher.py.

    python3 test/reference/check.py --dsn 'host=/tmp port=5432 dbname=postgres' --seed 1 --ops 10000
    python3 test/reference/check.py --dsn ... --seed 1 --seed 2 --ops 6000     # several runs

For each seed (fixed and printed): a fresh fixture under a tag of its own (so runs can share a
database) — 4 INTERNAL markets, one per self-trade mode (EXPIRE_MAKER, EXPIRE_TAKER, EXPIRE_BOTH,
ALLOW), sharing assets (three quote the same asset, one crosses two bases), with tick, lot,
minimum and fee rates chosen so that trunc8/ceil8 round; 6 accounts (one with KYC PENDING).  Then
--ops random operations: LIMIT / MARKET / STOP orders, BUY / SELL, GTC / IOC / FOK / default,
crossing and resting, self-trades on purpose, refusals (tick, lot, minimum quantity, funds,
minimum notional, suspended account, KYC, halted market), place_order retries with the same
client_order_id (the stored order returns) and with other values (LX009), cancels and expires
(also of finished orders, which must raise LX002), cancel_orders and expire_orders now and then,
deposits, withdraws (some refused), account suspensions, KYC changes and market halts.

The operations run through the reference model as they are generated, and the same operations go
into one SQL script run by one psql process (one statement per operation, errors do not stop it).
Then the database's trades (per market in `seq` order: buyer and seller order, price, quantity,
fees, maker side), final order states (status, filled, locked, average price, reason), balances
(available and locked per account and asset), markets (last_price, trade_seq), the SQLSTATE of
every operation that raised, and check_invariants() are compared with the model's, exactly.  On
a mismatch the first differing operation is printed with both states; the exit status is 1.

--deep: deep books — most orders rest a few steps behind the price, many on one level (more
than a page of the book), and some takers sweep a hundred orders or more.

--clients N (N > 1): N psql sessions run their own operations at once — places and cancels only,
funds ample, no suspension or halt, so that a market's outcome depends only on the order of its
calls.  Each call goes through a wrapper (schema ref_check, created in the database) that logs it
after the call in the same transaction, while the market row is still locked; the model replays
the calls in the log's order and everything is compared as above.
"""

import argparse
import os
import random
import re
import string
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matcher import Exchange, Market, RefError, LIVE  # noqa: E402

D = Decimal


def fmt(d):
    """A Decimal as a plain SQL numeric literal."""
    return format(d, 'f')


def sql_str(s):
    return 'NULL' if s is None else "'" + s.replace("'", "''") + "'"


def sql_num(d):
    return 'NULL' if d is None else fmt(d)


class MarketSpec:
    def __init__(self, key, base, quote, tick, lot, min_qty, min_notional, maker, taker,
                 self_trade, center, step, lots_max):
        self.key = key
        self.base = base
        self.quote = quote
        self.tick = D(tick)
        self.lot = D(lot)
        self.min_qty = D(min_qty)
        self.min_notional = D(min_notional)
        self.maker = D(maker)
        self.taker = D(taker)
        self.self_trade = self_trade
        self.center = D(center)
        self.step = D(step)
        self.lots_max = lots_max


# base, quote: asset suffixes after the run's tag
SPECS = [
    # price grid 20 +- k x 0.0037, quantities to 1e-5: q x p has 9 decimals (trunc8 / ceil8 bite)
    MarketSpec('A-USD', 'A', 'USD', '0.0001', '0.00001', '0.0001', '0.02',
               '0.00075', '0.0015', 'EXPIRE_MAKER', '20', '0.0037', 30000),
    MarketSpec('B-USD', 'B', 'USD', '0.5', '0.1', '0.1', '30',
               '0', '0.001', 'EXPIRE_TAKER', '250', '0.5', 30),
    MarketSpec('A-B', 'A', 'B', '0.001', '0.01', '0.01', '0',
               '0.002', '0.003', 'EXPIRE_BOTH', '0.08', '0.001', 500),
    MarketSpec('C-USD', 'C', 'USD', '0.01', '0.001', '0.001', '0',
               '0.01', '0.1', 'ALLOW', '3', '0.01', 20000),
]
ASSETS = ['USD', 'A', 'B', 'C']
FUNDS = {'USD': D(2000), 'A': D(20), 'B': D(100), 'C': D(200)}
NACCOUNTS = 6           # account 6 keeps KYC PENDING


class Run:
    def __init__(self, seed, nops, tag, deep=False):
        self.deep = deep
        self.no_fok = False
        self.seed = seed
        self.nops = nops
        self.tag = tag
        self.rng = random.Random(seed)
        self.ex = Exchange()
        self.sql = []           # the script's lines
        self.op_line = {}       # script line number -> op
        self.op_sql = {}        # op -> its SQL
        self.op_desc = {}       # op -> description
        self.expect_err = {}    # op -> SQLSTATE the model expects it to raise
        self.next_oid = 0
        self.specs = {}         # symbol -> MarketSpec
        self.placed = {}        # oid -> the op that placed it
        self.funds = {a: v * 20 for a, v in FUNDS.items()} if deep else FUNDS
        self.scheduled = []     # (op, 'account' | 'kyc' | 'market', name): a resume due
        self.drift = {spec.key: 0 for spec in SPECS}    # the price centre's offset, in steps

    # -- names ----------------------------------------------------------------------------

    def asset(self, a):
        return self.tag + a

    def acct(self, n):
        return 'u%d' % n

    def symbol(self, spec):
        return '%s-%s' % (self.asset(spec.base), self.asset(spec.quote))

    # -- the script ---------------------------------------------------------------------------

    def line(self, text):
        self.sql.append(text)
        return len(self.sql)

    def setup(self):
        ex = self.ex
        self.line('\\set ON_ERROR_STOP 1')
        self.line('\\set VERBOSITY verbose')
        self.line('SET client_min_messages = warning;')
        for spec in SPECS:
            sym = self.symbol(spec)
            self.specs[sym] = spec
            ex.add_market(Market(sym, self.asset(spec.base), self.asset(spec.quote), spec.tick,
                                 spec.lot, spec.min_qty, spec.min_notional, spec.maker,
                                 spec.taker, spec.self_trade))
            self.line("SELECT FROM exchange.create_market(%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                      "matching => 'INTERNAL', self_trade => %s);" % (
                          sql_str(sym), sql_str(self.asset(spec.base)),
                          sql_str(self.asset(spec.quote)), fmt(spec.tick), fmt(spec.lot),
                          fmt(spec.min_qty), fmt(spec.min_notional), fmt(spec.maker),
                          fmt(spec.taker), sql_str(spec.self_trade)))
        for n in range(1, NACCOUNTS + 1):
            name = self.acct(n)
            ex.add_account(name)
            self.line("SELECT account_id AS %s FROM exchange.create_account(%s) \\gset"
                      % (name, sql_str('%s-%s' % (self.tag, name))))
            if n < NACCOUNTS:
                self.line("SELECT FROM exchange.set_kyc_status(:'%s', 'APPROVED');" % name)
            else:
                ex.accounts[name].kyc = 'PENDING'
            for a in ASSETS:
                ex.deposit(name, self.asset(a), self.funds[a])
                self.line("SELECT FROM exchange.deposit(:'%s', %s, %s);"
                          % (name, sql_str(self.asset(a)), fmt(self.funds[a])))
        self.line('\\set ON_ERROR_STOP 0')

    def emit(self, op, desc, sql, fn):
        """Run fn on the model (a RefError means the call must raise) and emit sql."""
        self.ex.op = op
        try:
            fn()
        except RefError as e:
            self.expect_err[op] = e.sqlstate
        ln = self.line(sql)
        self.op_line[ln] = op
        self.op_sql[op] = sql
        self.op_desc[op] = desc

    # -- operations ---------------------------------------------------------------------------

    def rand_price(self, spec, side=None, spread=6):
        """Bids mostly below the centre, asks mostly above: a book that crosses now and then.
        The centre drifts, so resting levels build up on one side and are swept later."""
        lo, hi = -spread, spread
        if side == 'BUY':
            hi = spread // 2
        elif side == 'SELL':
            lo = -(spread // 2)
        return spec.center + spec.step * (self.drift[spec.key] + self.rng.randint(lo, hi))

    def gen_retry(self, op):
        """place_order again with an earlier client_order_id: the same values (a retry: the
        stored order comes back, nothing changes) or another quantity (LX009)."""
        r = self.rng
        ex = self.ex
        o = ex.orders[r.choice(list(ex.orders))]
        qty = o.qty
        if r.random() < 0.3:
            qty = o.qty + o.market.lot
        tif = o.tif
        if r.random() < 0.5 and tif == ('IOC' if o.otype == 'MARKET' else 'GTC'):
            tif = None
        sql = ("SELECT FROM exchange.place_order(:'%s', %s, '%s', '%s', %s, %s, %s, %s, '%s');"
               % (o.acct, sql_str(o.market.symbol), o.side, o.otype, fmt(qty), sql_num(o.price),
                  sql_str(tif), sql_num(o.stop_price), o.oid))
        desc = '%s retry %s %s %s %s qty %s price %s tif %s stop %s (%s)' % (
            o.oid, o.acct, o.market.symbol, o.side, o.otype, fmt(qty), sql_num(o.price), tif,
            sql_num(o.stop_price), o.status)
        self.emit(op, desc, sql,
                  lambda: ex.place(o.oid, o.acct, o.market.symbol, o.side, o.otype, qty, o.price,
                                   tif, o.stop_price))

    def gen_place(self, op):
        r = self.rng
        ex = self.ex
        if ex.orders and r.random() < 0.02:
            return self.gen_retry(op)
        sym = r.choice(list(self.specs))
        spec = self.specs[sym]
        m = ex.markets[sym]
        side = r.choice(('BUY', 'SELL'))
        x = r.random()
        otype = 'LIMIT' if x < 0.6 else 'MARKET' if x < 0.8 else 'STOP'
        # the account: at random, or (a self-trade on purpose) the best opposite maker's
        n = r.randint(1, NACCOUNTS - 1) if r.random() < 0.97 else NACCOUNTS
        if r.random() < 0.15:
            other = 'SELL' if side == 'BUY' else 'BUY'
            book = [o for o in ex.orders.values()
                    if o.market is m and o.side == other and o.status in ('OPEN', 'PARTIAL')]
            if book:
                best = min(book, key=lambda o: (o.price if other == 'SELL' else -o.price,
                                                o.book_seq))
                n = int(best.acct[1:])
        qty = spec.lot * r.randint(1, spec.lots_max)
        if r.random() < 0.3:
            qty = spec.lot * r.randint(1, max(6, spec.lots_max // 20))
        price = self.rand_price(spec, side)
        stop = None
        if otype == 'LIMIT':
            tif = r.choice((None, 'GTC', 'GTC', 'GTC', 'IOC', 'FOK'))
        elif otype == 'MARKET':
            tif = r.choice((None, 'IOC', 'FOK'))
            if side == 'BUY':
                price = self.rand_price(spec, None, 10)     # the protection price
            elif r.random() < 0.6:
                price = None
        else:
            lp = m.last_price if m.last_price is not None else \
                spec.center + spec.step * self.drift[spec.key]
            stop = lp + spec.step * r.randint(-3, 3)
            if stop <= 0:
                stop = spec.step
            if side == 'SELL' and r.random() < 0.4:
                price = None                          # a stop-market sell
                tif = r.choice((None, 'IOC'))
            else:
                price = stop + spec.step * r.randint(-3, 3)
                if price <= 0:
                    price = spec.step
                tif = r.choice((None, 'GTC', 'IOC', 'FOK'))
        if self.deep:
            otype, qty, price, tif, stop = self.deep_params(spec, side, otype, qty, price, tif,
                                                            stop)
        if self.no_fok and tif == 'FOK':
            tif = 'IOC'
        # refusals now and then
        y = r.random()
        if y < 0.01 and price is not None:
            price += spec.tick / 2
        elif y < 0.02:
            qty += spec.lot / 2
        elif y < 0.03 and spec.lot < spec.min_qty:
            qty = spec.lot
        elif y < 0.05:
            qty *= 40                                  # likely INSUFFICIENT_FUNDS
        self.next_oid += 1
        oid = 'r%d' % self.next_oid
        acct = self.acct(n)
        self.placed[oid] = op
        sql = ("SELECT FROM exchange.place_order(:'%s', %s, '%s', '%s', %s, %s, %s, %s, '%s');"
               % (acct, sql_str(sym), side, otype, fmt(qty), sql_num(price), sql_str(tif),
                  sql_num(stop), oid))
        desc = '%s place %s %s %s %s qty %s price %s tif %s stop %s' % (
            oid, acct, sym, side, otype, fmt(qty), sql_num(price), tif, sql_num(stop))
        self.emit(op, desc, sql,
                  lambda: ex.place(oid, acct, sym, side, otype, qty, price, tif, stop))

    def deep_params(self, spec, side, otype, qty, price, tif, stop):
        """--deep: most orders rest a few steps behind the centre, many on the same levels
        (more than a page of orders at one price), small; some sweep a hundred orders or more."""
        r = self.rng
        y = r.random()
        centre = spec.center + spec.step * self.drift[spec.key]
        away = 1 if r.random() < 0.3 else r.randint(1, 5)
        if y < 0.9:
            qty = spec.lot * r.randint(max(1, spec.lots_max // 300), max(3, spec.lots_max // 50))
            price = centre - spec.step * away if side == 'BUY' else centre + spec.step * away
            return 'LIMIT', qty, price, 'GTC', None
        if y < 0.95:
            qty = spec.lot * r.randint(spec.lots_max // 2, spec.lots_max * 4)
            price = centre + spec.step * r.randint(2, 7) * (1 if side == 'BUY' else -1)
            if r.random() < 0.5:
                return 'LIMIT', qty, price, r.choice(('GTC', 'IOC', 'FOK')), None
            if side == 'SELL' and r.random() < 0.5:
                price = None
            return 'MARKET', qty, price, r.choice(('IOC', 'FOK')), None
        return otype, qty, price, tif, stop

    def gen_close(self, op, expire):
        r = self.rng
        ex = self.ex
        if not ex.orders:
            return self.gen_deposit(op)
        live = [o for o in ex.orders.values() if o.status in LIVE]
        if live and r.random() < 0.85:
            o = r.choice(live)
        else:
            o = ex.orders[r.choice(list(ex.orders))]
        fn = 'expire_order' if expire else 'cancel_order'
        reason = 'ref-expire' if expire else 'ref-cancel'
        sql = ("SELECT FROM exchange.%s((SELECT order_id FROM exchange.orders WHERE account_id = "
               ":'%s' AND client_order_id = '%s'), '%s');" % (fn, o.acct, o.oid, reason))
        self.emit(op, '%s %s (%s)' % (fn, o.oid, o.status), sql,
                  lambda: ex.cancel(o.oid, expire, reason))

    def gen_batch_close(self, op):
        """cancel_orders of an account (on one market or all), or expire_orders of a market."""
        r = self.rng
        ex = self.ex
        if r.random() < 0.6:
            acct = self.acct(r.randint(1, NACCOUNTS - 1))
            sym = r.choice(list(self.specs)) if r.random() < 0.5 else None
            sql = "SELECT FROM exchange.cancel_orders(:'%s', %s);" % (acct, sql_str(sym))
            self.emit(op, 'cancel_orders %s %s' % (acct, sym), sql,
                      lambda: ex.cancel_orders(acct, sym))
        else:
            sym = r.choice(list(self.specs))
            sql = ("SELECT FROM exchange.expire_orders(%s, pg_catalog.now() + interval '1 day');"
                   % sql_str(sym))
            self.emit(op, 'expire_orders %s' % sym, sql, lambda: ex.expire_orders(sym))

    def gen_deposit(self, op, withdraw=False):
        r = self.rng
        ex = self.ex
        n = r.randint(1, NACCOUNTS)
        a = r.choice(ASSETS)
        amount = (FUNDS[a] * r.randint(1, 100) / 100).quantize(D('0.00000001'))
        if withdraw:
            amount = amount * 2   # some are refused (LX001)
        acct = self.acct(n)
        asset = self.asset(a)
        fn = 'withdraw' if withdraw else 'deposit'
        sql = "SELECT FROM exchange.%s(:'%s', %s, %s);" % (fn, acct, sql_str(asset), fmt(amount))
        call = ex.withdraw if withdraw else ex.deposit
        self.emit(op, '%s %s %s %s' % (fn, acct, asset, fmt(amount)), sql,
                  lambda: call(acct, asset, amount))

    def gen_account_status(self, op, acct=None):
        r = self.rng
        ex = self.ex
        if acct is None:
            acct = self.acct(r.randint(1, NACCOUNTS - 1))
        if ex.accounts[acct].status == 'ACTIVE':
            self.scheduled.append((op + r.randint(3, 30), 'account', acct))
        status = 'SUSPENDED' if ex.accounts[acct].status == 'ACTIVE' else 'ACTIVE'
        sql = "SELECT FROM exchange.set_account_status(:'%s', '%s');" % (acct, status)
        self.emit(op, 'set_account_status %s %s' % (acct, status), sql,
                  lambda: ex.set_account_status(acct, status))

    def gen_kyc(self, op, acct=None):
        """KYC APPROVED -> REJECTED, then (scheduled) -> PENDING -> APPROVED: the account's
        resting orders and stops stay, its new orders are refused KYC_NOT_APPROVED."""
        r = self.rng
        ex = self.ex
        if acct is None:
            acct = self.acct(r.randint(1, NACCOUNTS - 1))
        kyc = {'APPROVED': 'REJECTED', 'REJECTED': 'PENDING', 'PENDING': 'APPROVED'}[
            ex.accounts[acct].kyc]
        if kyc != 'APPROVED':
            self.scheduled.append((op + r.randint(3, 30), 'kyc', acct))
        sql = "SELECT FROM exchange.set_kyc_status(:'%s', '%s');" % (acct, kyc)
        self.emit(op, 'set_kyc_status %s %s' % (acct, kyc), sql,
                  lambda: ex.set_kyc_status(acct, kyc))

    def gen_market_status(self, op, sym=None):
        r = self.rng
        ex = self.ex
        if sym is None:
            sym = r.choice(list(self.specs))
        if ex.markets[sym].status == 'ACTIVE':
            self.scheduled.append((op + r.randint(3, 30), 'market', sym))
        status = 'HALTED' if ex.markets[sym].status == 'ACTIVE' else 'ACTIVE'
        sql = "SELECT FROM exchange.set_market_status(%s, '%s');" % (sql_str(sym), status)
        self.emit(op, 'set_market_status %s %s' % (sym, status), sql,
                  lambda: ex.set_market_status(sym, status))

    def self_check(self):
        """The model's own ledger rule: locked = the locks of the live orders."""
        ex = self.ex
        want = {}
        for o in ex.orders.values():
            if o.status in LIVE:
                k = (o.acct, o.lock_asset)
                want[k] = want.get(k, D(0)) + o.locked
            else:
                assert o.locked == 0, o.oid
        for k, (avail, locked) in ex.balances.items():
            assert locked == want.get(k, D(0)), (k, locked, want.get(k))

    def generate(self):
        self.setup()
        r = self.rng
        for op in range(1, self.nops + 1):
            # a suspended account or a halted market comes back a few operations later
            due = [x for x in self.scheduled if x[0] <= op]
            if due:
                self.scheduled.remove(due[0])
                if due[0][1] == 'account':
                    self.gen_account_status(op, due[0][2])
                elif due[0][1] == 'kyc':
                    self.gen_kyc(op, due[0][2])
                else:
                    self.gen_market_status(op, due[0][2])
                continue
            if r.random() < 0.03:
                k = r.choice(SPECS).key
                self.drift[k] = max(-12, min(12, self.drift[k] + r.randint(-4, 4)))
            x = r.random()
            if self.deep and 0.78 <= x < 0.862 and r.random() < 0.85:
                x = 0.0         # fewer cancels and closes: the book builds up
            if x < 0.78:
                self.gen_place(op)
            elif x < 0.85:
                self.gen_close(op, False)
            elif x < 0.86:
                self.gen_close(op, True)
            elif x < 0.862:
                self.gen_batch_close(op)
            elif x < 0.95:
                self.gen_deposit(op)
            elif x < 0.98:
                self.gen_deposit(op, withdraw=True)
            elif x < 0.987:
                self.gen_account_status(op)
            elif x < 0.99:
                self.gen_kyc(op)
            elif x < 0.993:
                self.gen_market_status(op)
            else:
                self.gen_place(op)
        self.self_check()

    # -- the database -------------------------------------------------------------------------

    def run_db(self, dsn, psql, workdir):
        path = os.path.join(workdir, 'ops-%d.sql' % self.seed)
        with open(path, 'w') as f:
            f.write('\n'.join(self.sql) + '\n')
        t0 = time.time()
        p = subprocess.run([psql, '-X', '-q', '-f', path, dsn], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        t_ops = time.time() - t0
        errs = {}
        fatal = []
        for ln in p.stderr.splitlines():
            mo = re.match(r'^psql:.*?:(\d+): (ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}): (.*)$', ln)
            if mo:
                line = int(mo.group(1))
                if line in self.op_line:
                    errs[self.op_line[line]] = (mo.group(3), mo.group(4))
                else:
                    fatal.append(ln)
            elif re.match(r'^psql:.*?:(\d+): (ERROR|FATAL|PANIC)', ln) or \
                    ln.startswith('psql: error'):
                fatal.append(ln)
        if p.returncode not in (0,) and not errs:
            fatal.append('psql exited %d' % p.returncode)
        return errs, fatal, t_ops, p.stderr

    def dump_db(self, dsn, psql):
        syms = ', '.join(sql_str(s) for s in self.specs)
        pat = sql_str(self.tag + '-u%')
        queries = [
            "SELECT 'T', t.symbol, t.seq, t.side, o.client_order_id, t.quantity, t.price, t.fee, "
            "t.fee_currency, t.liquidity, t.match_id, t.executed_at::text "
            "FROM exchange.trades t JOIN exchange.orders o "
            "USING (order_id) WHERE t.symbol IN (%s) ORDER BY t.symbol, t.seq, t.side" % syms,
            "SELECT 'C', o.client_order_id, o.created_at::text FROM exchange.orders o "
            "WHERE o.symbol IN (%s)" % syms,
            "SELECT 'E', o.client_order_id, e.to_status, e.created_at::text "
            "FROM exchange.order_events e JOIN exchange.orders o USING (order_id) "
            "WHERE o.symbol IN (%s) ORDER BY e.seq" % syms,
            "SELECT 'O', o.client_order_id, o.status, o.filled_quantity, o.locked_amount, "
            "o.average_price, o.reject_reason, (SELECT e.reason FROM exchange.order_events e "
            "WHERE e.order_id = o.order_id ORDER BY e.seq DESC LIMIT 1), o.book_seq IS NOT NULL "
            "FROM exchange.orders o WHERE o.symbol IN (%s)" % syms,
            "SELECT 'B', substr(a.user_id, length(%s)), b.symbol, b.available_balance, "
            "b.locked_balance FROM exchange.balances b JOIN exchange.accounts a USING (account_id) "
            "WHERE a.user_id LIKE %s" % (sql_str(self.tag + '-u'), pat),
            "SELECT 'M', symbol, last_price, trade_seq FROM exchange.markets WHERE symbol IN (%s)"
            % syms,
            "SELECT 'I', invariant, detail FROM exchange.check_invariants()",
        ]
        cmd = [psql, '-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1']
        for q in queries:
            cmd += ['-c', q]
        cmd.append(dsn)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise SystemExit('dump failed: %s' % p.stderr)
        rows = {'T': [], 'O': [], 'B': [], 'M': [], 'I': [], 'C': [], 'E': []}
        for ln in p.stdout.splitlines():
            if ln:
                f = ln.split('\t')
                rows[f[0]].append([None if v == '' else v for v in f[1:]])
        return rows

    # -- the comparison -----------------------------------------------------------------------

    def compare(self, errs, rows):
        """Returns a list of (op, text) mismatches."""
        ex = self.ex
        bad = []

        def num(v):
            return None if v is None else D(v)

        # operations that raised
        for op in sorted(set(errs) | set(self.expect_err)):
            want = self.expect_err.get(op)
            got = errs.get(op)
            if want != (got[0] if got else None):
                bad.append((op, 'the call %s, the model %s' % (
                    'raised %s: %s' % got if got else 'succeeded',
                    'expects %s' % want if want else 'expects success'), True))

        # Every place_order makes an order row with created_at = its transaction's start, and
        # every execution happens in a place_order: a timestamp names the operation.
        ts_op = {}
        for cid, created in rows['C']:
            if self.placed.get(cid):
                ts_op[created] = self.placed[cid]

        # trades, per market in seq order
        by_market = {}
        trade_op = {}
        for sym, seq, side, cid, qty, price, fee, ccy, liq, match, at in rows['T']:
            by_market.setdefault(sym, {}).setdefault(seq, {})[side] = (
                cid, num(qty), num(price), num(fee), ccy, liq, match)
            trade_op[(sym, seq)] = ts_op.get(at)
        for sym in self.specs:
            m = ex.markets[sym]
            want = [t for t in ex.trades if t.market == sym]
            got = []
            for seq in sorted(by_market.get(sym, {}), key=lambda s: int(s) if s else -1):
                legs = by_market[sym][seq]
                b = legs.get('BUY')
                s = legs.get('SELL')
                problem = None
                if b is None or s is None:
                    problem = 'seq %s has legs %s' % (seq, sorted(legs))
                elif b[1:3] != s[1:3] or b[6] != s[6] or b[6] is None:
                    problem = 'seq %s: legs differ (quantity, price or match_id): %s / %s' % (
                        seq, b, s)
                elif b[4] != m.base or s[4] != m.quote:
                    problem = 'seq %s: fee currencies %s / %s (received: %s / %s)' % (
                        seq, b[4], s[4], m.base, m.quote)
                elif sorted((b[5], s[5])) != ['MAKER', 'TAKER']:
                    problem = 'seq %s: liquidity %s / %s' % (seq, b[5], s[5])
                if problem:
                    got.append(('?', problem))
                    continue
                got.append((int(seq) if seq is not None else None, b[0], s[0], b[1], b[2],
                            b[3], s[3], 'BUY' if b[5] == 'MAKER' else 'SELL'))
            got_ops = [trade_op.get((sym, seq)) for seq in
                       sorted(by_market.get(sym, {}), key=lambda s: int(s) if s else -1)]
            for i in range(max(len(want), len(got))):
                w = want[i].key() if i < len(want) else None
                g = got[i] if i < len(got) else None
                if w != g:
                    # the earlier of the operations that made the two trades
                    ops = [want[i].op] if i < len(want) else []
                    if i < len(got_ops) and got_ops[i]:
                        ops.append(got_ops[i])
                    op = min(ops) if ops else (want[-1].op if want else 0)
                    bad.append((op, '%s trade #%d: model %s, database %s' % (
                        sym, i + 1, fmt_trade(w), fmt_trade(g)), True))
                    break
            mrow = [x for x in rows['M'] if x[0] == sym]
            if mrow:
                lp, tseq = num(mrow[0][1]), int(mrow[0][2])
                if lp != m.last_price or tseq != m.trade_seq:
                    op = want[-1].op if want else 0
                    bad.append((op, '%s: model last_price %s trade_seq %d, database %s %d' % (
                        sym, m.last_price, m.trade_seq, lp, tseq), False))

        # orders
        dbo = {}
        for cid, status, filled, locked, avg, rej, ev_reason, has_seq in rows['O']:
            dbo[cid] = (status, num(filled), num(locked), num(avg),
                        rej if status == 'REJECTED' else
                        ev_reason if status in ('CANCELLED', 'EXPIRED') else None)
        db_events = {}
        for cid, status, at in rows['E']:
            db_events.setdefault(cid, []).append((ts_op.get(at), status))
        for oid, o in ex.orders.items():
            w = (o.status, o.filled, o.locked, o.average_price, o.reason)
            g = dbo.pop(oid, None)
            if g != w:
                # the first event where the histories part (an event of an operation that
                # placed no order, a cancel, has no known operation on the database side)
                op, exact = o.last_op, False
                mine, theirs = o.events, db_events.get(oid, [])
                for k in range(max(len(mine), len(theirs))):
                    a = mine[k] if k < len(mine) else None
                    b = theirs[k] if k < len(theirs) else None
                    if a is None or b is None or a[1] != b[1] or (b[0] and a[0] != b[0]):
                        ops = [x[0] for x in (a, b) if x is not None and x[0]]
                        if ops:
                            op, exact = min(ops), True
                        break
                bad.append((op, 'order %s (%s): model %s, database %s' % (
                    oid, self.op_desc.get(self.placed.get(oid)), fmt_order(w), fmt_order(g)),
                    exact))
        for cid, g in dbo.items():
            bad.append((0, 'order %s only in the database: %s' % (cid, fmt_order(g)), False))

        # balances
        dbb = {}
        for acct, asset, avail, locked in rows['B']:
            dbb[(acct, asset)] = (num(avail), num(locked))
        for (acct, asset), (avail, locked) in sorted(ex.balances.items()):
            g = dbb.pop((acct, asset), (D(0), D(0)))
            if g != (avail, locked):
                bad.append((ex.bal_op.get((acct, asset), 0),
                            'balance %s %s: model available %s locked %s, database %s %s' % (
                                acct, asset, avail, locked, g[0], g[1]), False))
        for (acct, asset), g in dbb.items():
            if g != (D(0), D(0)):
                bad.append((0, 'balance %s %s only in the database: %s' % (acct, asset, g),
                            False))

        for inv, detail in rows['I']:
            bad.append((10 ** 9, 'check_invariants(): %s: %s' % (inv, detail), False))
        return bad

    def order_context(self, op):
        """The model's orders an operation touched, for a mismatch report."""
        ex = self.ex
        out = []
        for o in ex.orders.values():
            if o.last_op == op:
                out.append('  model: %s %s %s %s %s qty %s price %s tif %s stop %s -> %s' % (
                    o.oid, o.acct, o.market.symbol, o.side, o.otype, fmt(o.qty),
                    sql_num(o.price), o.tif, sql_num(o.stop_price),
                    fmt_order((o.status, o.filled, o.locked, o.average_price, o.reason))))
        for t in ex.trades:
            if t.op == op:
                out.append('  model trade: %s' % fmt_trade(t.key()))
        return out


# -- concurrent mode -----------------------------------------------------------------------------

WRAPPERS = r"""
CREATE SCHEMA IF NOT EXISTS ref_check;
CREATE TABLE IF NOT EXISTS ref_check.log (seq bigserial PRIMARY KEY, tag text NOT NULL,
    client int NOT NULL, n int NOT NULL, sqlstate text);
-- The log row is written after the call, in its transaction: an INTERNAL market's row stays
-- locked until the commit, so per market the log's seq order is the order the calls held it.
CREATE OR REPLACE FUNCTION ref_check.place(tag text, client int, n int, acct uuid, sym text,
    side text, typ text, qty numeric, price numeric, tif text, stop numeric, cid text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM exchange.place_order(acct, sym, side, typ, qty, price, tif, stop, cid);
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO ref_check.log (tag, client, n, sqlstate) VALUES (tag, client, n, SQLSTATE);
        RETURN;
    END;
    INSERT INTO ref_check.log (tag, client, n) VALUES (tag, client, n);
END $$;
CREATE OR REPLACE FUNCTION ref_check.close(tag text, client int, n int, acct uuid, cid text,
    expire boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    id uuid := (SELECT order_id FROM exchange.orders
                 WHERE account_id = acct AND client_order_id = cid);
BEGIN
    BEGIN
        IF expire THEN
            PERFORM exchange.expire_order(id, 'ref-expire');
        ELSE
            PERFORM exchange.cancel_order(id, 'ref-cancel');
        END IF;
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO ref_check.log (tag, client, n, sqlstate) VALUES (tag, client, n, SQLSTATE);
        RETURN;
    END;
    INSERT INTO ref_check.log (tag, client, n) VALUES (tag, client, n);
END $$;
"""


class ConcurrentRun(Run):
    """--clients N: N psql sessions run their own operations at once (places and cancels only,
    funds ample, no suspension or halt, so that what happens on a market depends only on the
    order of the calls on that market).  Each call is logged, after it, in its transaction; the
    model then replays the calls in the log's order and the states are compared as usual."""

    def __init__(self, seed, nops, tag, clients):
        super().__init__(seed, nops, tag)
        self.clients = clients
        self.funds = {a: v * 10000 for a, v in FUNDS.items()}
        self.spec_of = {}       # (client, n) -> (description, sql, model call)
        self.client_sql = {}    # client -> script lines
        self.oid_of = {}        # (client, n) -> the order it places

    def generate(self):
        self.setup()
        r = self.rng
        per = self.nops // self.clients
        for c in range(1, self.clients + 1):
            lines = ['\\set ON_ERROR_STOP 1']
            for k in range(1, NACCOUNTS + 1):
                lines.append("SELECT account_id AS %s FROM exchange.accounts WHERE user_id = %s "
                             "\\gset" % (self.acct(k), sql_str('%s-%s' % (self.tag, self.acct(k)))))
            mine = []
            for n in range(1, per + 1):
                if r.random() < 0.03:
                    k = r.choice(SPECS).key
                    self.drift[k] = max(-12, min(12, self.drift[k] + r.randint(-4, 4)))
                if mine and r.random() < 0.15:
                    acct, oid = r.choice(mine)
                    expire = r.random() < 0.15
                    sql = ("SELECT ref_check.close(%s, %d, %d, :'%s', '%s', %s);"
                           % (sql_str(self.tag), c, n, acct, oid, 'true' if expire else 'false'))
                    desc = 'client %d #%d: %s %s' % (c, n, 'expire_order' if expire else
                                                     'cancel_order', oid)
                    reason = 'ref-expire' if expire else 'ref-cancel'
                    call = (lambda oid, expire, reason:
                            lambda: self.ex.cancel(oid, expire, reason))(oid, expire, reason)
                else:
                    oid = 'c%d-%d' % (c, n)
                    acct, sym, side, otype, qty, price, tif, stop = self.place_params()
                    mine.append((acct, oid))
                    sql = ("SELECT ref_check.place(%s, %d, %d, :'%s', %s, '%s', '%s', %s, %s, %s, "
                           "%s, '%s');" % (sql_str(self.tag), c, n, acct, sql_str(sym), side,
                                           otype, fmt(qty), sql_num(price), sql_str(tif),
                                           sql_num(stop), oid))
                    desc = 'client %d #%d: %s place %s %s %s %s qty %s price %s tif %s stop %s' % (
                        c, n, oid, acct, sym, side, otype, fmt(qty), sql_num(price), tif,
                        sql_num(stop))
                    call = (lambda *a: lambda: self.ex.place(*a))(
                        oid, acct, sym, side, otype, qty, price, tif, stop)
                    self.oid_of[(c, n)] = oid
                self.spec_of[(c, n)] = (desc, sql, call)
                lines.append(sql)
            self.client_sql[c] = lines

    def place_params(self):
        """gen_place's choices, without looking at the book (it is not known yet)."""
        r = self.rng
        sym = r.choice(list(self.specs))
        spec = self.specs[sym]
        side = r.choice(('BUY', 'SELL'))
        x = r.random()
        otype = 'LIMIT' if x < 0.6 else 'MARKET' if x < 0.8 else 'STOP'
        n = r.randint(1, NACCOUNTS - 1) if r.random() < 0.97 else NACCOUNTS
        qty = spec.lot * r.randint(1, spec.lots_max)
        if r.random() < 0.3:
            qty = spec.lot * r.randint(1, max(6, spec.lots_max // 20))
        price = self.rand_price(spec, side)
        stop = None
        if otype == 'LIMIT':
            tif = r.choice((None, 'GTC', 'GTC', 'GTC', 'IOC', 'FOK'))
        elif otype == 'MARKET':
            tif = r.choice((None, 'IOC', 'FOK'))
            if side == 'BUY':
                price = self.rand_price(spec, None, 10)
            elif r.random() < 0.6:
                price = None
        else:
            stop = self.rand_price(spec, None, 3)
            if side == 'SELL' and r.random() < 0.4:
                price = None
                tif = r.choice((None, 'IOC'))
            else:
                price = stop + spec.step * r.randint(-3, 3)
                if price <= 0:
                    price = spec.step
                tif = r.choice((None, 'GTC', 'IOC', 'FOK'))
        y = r.random()
        if y < 0.01 and price is not None:
            price += spec.tick / 2
        elif y < 0.02:
            qty += spec.lot / 2
        if self.no_fok and tif == 'FOK':
            tif = 'IOC'
        return self.acct(n), sym, side, otype, qty, price, tif, stop

    def run_db(self, dsn, psql, workdir):
        fatal = []
        setup = os.path.join(workdir, 'setup-%d.sql' % self.seed)
        with open(setup, 'w') as f:
            f.write(WRAPPERS + '\n'.join(self.sql) + '\n')
        p = subprocess.run([psql, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', setup, dsn],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            return {}, [p.stderr], 0, p.stderr
        procs = []
        t0 = time.time()
        for c, lines in self.client_sql.items():
            path = os.path.join(workdir, 'client-%d-%d.sql' % (self.seed, c))
            with open(path, 'w') as f:
                f.write('\n'.join(lines) + '\n')
            procs.append(subprocess.Popen([psql, '-X', '-q', '-f', path, dsn],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True))
        for p in procs:
            _, err = p.communicate()
            if p.returncode != 0 or 'ERROR' in err:
                fatal.append(err[:2000])
        t_ops = time.time() - t0
        if fatal:
            return {}, fatal, t_ops, ''
        p = subprocess.run([psql, '-X', '-q', '-A', '-t', '-F', '\t', '-c',
                            'SELECT client, n, sqlstate FROM ref_check.log WHERE tag = %s '
                            'ORDER BY seq' % sql_str(self.tag), dsn],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            return {}, [p.stderr], t_ops, ''
        # the model replays the calls in the order they held their market
        errs = {}
        seen = set()
        for op, ln in enumerate(p.stdout.splitlines(), 1):
            c, n, state = ln.split('\t')
            key = (int(c), int(n))
            seen.add(key)
            desc, sql, call = self.spec_of[key]
            self.ex.op = op
            self.op_desc[op] = desc
            self.op_sql[op] = sql
            try:
                call()
            except RefError as e:
                self.expect_err[op] = e.sqlstate
            if key in self.oid_of:
                self.placed[self.oid_of[key]] = op
            if state:
                errs[op] = (state, '')
        missing = set(self.spec_of) - seen
        if missing:
            fatal.append('%d calls not in the log, e.g. %s' % (len(missing), sorted(missing)[:5]))
        self.self_check()
        return errs, fatal, t_ops, ''


def fmt_trade(k):
    if k is None:
        return 'none'
    if k[0] == '?':
        return k[1]
    seq, b, s, q, p, bf, sf, mk = k
    return 'seq %s buy %s sell %s qty %s price %s fees %s/%s maker %s' % (
        seq, b, s, fmt(q), fmt(p), fmt(bf), fmt(sf), mk)


def fmt_order(w):
    if w is None:
        return 'missing'
    status, filled, locked, avg, reason = w
    return '%s filled %s locked %s avg %s reason %s' % (
        status, fmt(filled), fmt(locked), fmt(avg) if avg is not None else None, reason)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--dsn', required=True, help='libpq connection string of the database')
    ap.add_argument('--seed', type=int, action='append',
                    help='random seed (repeat for several runs; default 1)')
    ap.add_argument('--ops', type=int, default=10000, help='operations per seed')
    ap.add_argument('--psql', default='psql')
    ap.add_argument('--keep', help='directory to keep the generated scripts in')
    ap.add_argument('--tag', help='asset/user prefix, up to 5 characters (default: random per '
                    'run; give it for one seed only: a second run would collide)')
    ap.add_argument('--deep', action='store_true',
                    help='deep books: most orders rest, many per level; some sweep 100+ orders')
    ap.add_argument('--no-fok', action='store_true',
                    help='IOC instead of FOK (to look past a known FOK difference)')
    ap.add_argument('--clients', type=int, default=1,
                    help='concurrent sessions (more than 1: places and cancels only, replayed '
                    'in the order they held their market)')
    args = ap.parse_args()
    seeds = args.seed or [1]
    workdir = args.keep or tempfile.mkdtemp(prefix='ea-ref-')
    os.makedirs(workdir, exist_ok=True)
    failed = 0
    total_ops = 0
    for seed in seeds:
        tag = args.tag or 'R' + ''.join(random.SystemRandom().choice(
            string.ascii_uppercase + string.digits) for _ in range(4))
        if args.clients > 1:
            run = ConcurrentRun(seed, args.ops, tag, args.clients)
        else:
            run = Run(seed, args.ops, tag, args.deep)
        run.no_fok = args.no_fok
        t0 = time.time()
        run.generate()
        t_gen = time.time() - t0
        errs, fatal, t_ops, stderr = run.run_db(args.dsn, args.psql, workdir)
        if fatal:
            print('seed %d: psql failed outside the operations:\n%s'
                  % (seed, '\n'.join(fatal[:20])))
            failed += 1
            continue
        rows = run.dump_db(args.dsn, args.psql)
        bad = run.compare(errs, rows)
        ex = run.ex
        stats = {}
        for o in ex.orders.values():
            stats[o.status] = stats.get(o.status, 0) + 1
        reasons = {}
        for o in ex.orders.values():
            if o.reason:
                reasons[o.reason] = reasons.get(o.reason, 0) + 1
        print('seed %d tag %s: %d operations (model %.1fs, database %.1fs): %d trades, '
              'orders %s, reasons %s, %d calls raised as expected' % (
                  seed, tag, args.ops, t_gen, t_ops, len(ex.trades),
                  ' '.join('%s=%d' % kv for kv in sorted(stats.items())),
                  ' '.join('%s=%d' % kv for kv in sorted(reasons.items())),
                  len(run.expect_err)))
        total_ops += args.ops
        if bad:
            failed += 1
            bad.sort(key=lambda b: b[0])
            # A trade or a raised call names the operation exactly; an order or a balance only
            # the last operation that changed it in the model (the database may have changed it
            # later): those come first only when nothing exact precedes them.
            exact = [b for b in bad if b[2]]
            if exact:
                bad = exact + [b for b in bad if not b[2]]
            op = bad[0][0]
            print('seed %d: MISMATCH, %d differences; the first at operation %d:' % (
                seed, len(bad), op))
            if op in run.op_sql:
                print('  operation %d: %s' % (op, run.op_desc[op]))
                print('  sql: %s' % run.op_sql[op])
            for line in run.order_context(op):
                print(line)
            for b in bad[:15]:
                print('  [op %s] %s' % (b[0], b[1]))
            if len(bad) > 15:
                print('  ... %d more' % (len(bad) - 15))
            print('  (script kept in %s; replay: --seed %d --ops %d)' % (
                workdir, seed, args.ops))
        else:
            print('seed %d: OK (trades, orders, balances, markets, raised calls equal the '
                  'model; check_invariants() empty)' % seed)
    print('%d seed(s), %d operations, %d failed' % (len(seeds), total_ops, failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
