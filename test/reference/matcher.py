"""
test/reference/matcher.py — an independent reference model of exchange_adapter's internal
matching (README "Order lifecycle and arithmetic" for the 1.0 arithmetic and place_order's
refusals; the matching-engine rules for INTERNAL markets: price-time priority at the maker's
price, maker/taker fees, GTC rest, IOC/MARKET remainder EXPIRED, FOK all-or-nothing, the four
self-trade modes, stop triggers in rounds).

Written from the documented rules, not from the C code: check.py runs the same random operations
through the extension and through this model and compares trades, order states and balances.

Python 3 standard library only; every amount is a Decimal, exact (numeric(24,8) in the database).

The model's decisions where the written rules leave room (each also in the report of check.py's
author; a mismatch on one of them is a question, not necessarily a bug):
  - A stop triggered in a round is not in the book until its turn as a taker comes: earlier
    takers of the same round do not match it.  Its fresh book_seq is taken in processing order.
  - Orders of a SUSPENDED account stay in the book and execute as makers; its PENDING stops
    trigger and execute as takers (settlement is allowed whatever the account status).
  - A STOP SELL without price (a market sell) whose remainder expires, expires with reason IOC.
  - The stop rounds run at the end of every accepted place_order on an ACTIVE market (a
    REJECTED placement leaves last_price unchanged, so its rounds would trigger nothing).
"""

from decimal import Decimal, ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, getcontext

getcontext().prec = 60

E8 = Decimal('0.00000001')
ZERO = Decimal(0)

LIVE = ('PENDING', 'OPEN', 'PARTIAL')
RESTING = ('OPEN', 'PARTIAL')


def trunc8(x):
    return x.quantize(E8, rounding=ROUND_DOWN)


def ceil8(x):
    return x.quantize(E8, rounding=ROUND_CEILING)


def half_even8(x):
    return x.quantize(E8, rounding=ROUND_HALF_EVEN)


def is_multiple(x, step):
    return step == 0 or (x % step) == 0


class RefError(Exception):
    """A call the extension refuses by raising (the call changes nothing)."""

    def __init__(self, sqlstate, msg):
        super().__init__('%s: %s' % (sqlstate, msg))
        self.sqlstate = sqlstate


class Market:
    def __init__(self, symbol, base, quote, tick, lot, min_qty, min_notional,
                 maker_rate, taker_rate, self_trade):
        self.symbol = symbol
        self.base = base
        self.quote = quote
        self.tick = Decimal(tick)
        self.lot = Decimal(lot)
        self.min_qty = Decimal(min_qty)
        self.min_notional = Decimal(min_notional)
        self.maker_rate = Decimal(maker_rate)
        self.taker_rate = Decimal(taker_rate)
        self.self_trade = self_trade
        self.status = 'ACTIVE'
        self.last_price = None
        self.trade_seq = 0


class Account:
    def __init__(self, name):
        self.name = name
        self.status = 'ACTIVE'
        self.kyc = 'APPROVED'


class Order:
    def __init__(self, oid, acct, market, side, otype, qty, price, tif, stop_price):
        self.oid = oid              # the generator's id: the row's client_order_id
        self.acct = acct
        self.market = market
        self.side = side
        self.otype = otype
        self.qty = qty
        self.price = price          # limit, protection price, or None (a SELL without price)
        self.tif = tif
        self.stop_price = stop_price
        self.status = None
        self.filled = ZERO
        self.filled_value = ZERO    # sum of q x p, exact
        self.locked = ZERO
        self.lock_asset = market.quote if side == 'BUY' else market.base
        self.reason = None          # reject_reason, or the reason of the closing event
        self.book_seq = None
        self.last_op = None         # the operation that last changed the order
        self.events = []            # (operation, to_status): one per event, as order_events

    @property
    def remaining(self):
        return self.qty - self.filled

    @property
    def average_price(self):
        if self.filled == 0:
            return None
        return half_even8(self.filled_value / self.filled)

    def is_buy(self):
        return self.side == 'BUY'

    def market_sell(self):
        """A SELL without a limit (MARKET or STOP without price) crosses any bid."""
        return self.side == 'SELL' and self.price is None

    def expires_remainder(self):
        """IOC, MARKET and a stop-market SELL: a remainder does not rest."""
        return self.tif in ('IOC', 'FOK') or self.otype == 'MARKET' or \
            (self.otype == 'STOP' and self.price is None)


class Trade:
    """One execution: the two legs of one match."""

    def __init__(self, op, market, seq, buy, sell, qty, price, buy_fee, sell_fee, maker_side):
        self.op = op
        self.market = market
        self.seq = seq
        self.buy = buy
        self.sell = sell
        self.qty = qty
        self.price = price
        self.buy_fee = buy_fee
        self.sell_fee = sell_fee
        self.maker_side = maker_side

    def key(self):
        return (self.seq, self.buy, self.sell, self.qty, self.price, self.buy_fee,
                self.sell_fee, self.maker_side)


class Exchange:
    def __init__(self):
        self.markets = {}
        self.accounts = {}
        self.balances = {}          # (account, asset) -> [available, locked]
        self.bal_op = {}            # (account, asset) -> last op that changed it
        self.orders = {}            # oid -> Order
        self.book_seq = 0
        self.trades = []            # in execution order
        self.op = 0                 # the current operation's number

    # -- fixture ------------------------------------------------------------------------------

    def add_market(self, m):
        self.markets[m.symbol] = m

    def add_account(self, name):
        self.accounts[name] = Account(name)

    # -- balances -----------------------------------------------------------------------------

    def bal(self, acct, asset):
        return self.balances.setdefault((acct, asset), [ZERO, ZERO])

    def move(self, acct, asset, d_avail=ZERO, d_locked=ZERO):
        b = self.bal(acct, asset)
        b[0] += d_avail
        b[1] += d_locked
        assert b[0] >= 0 and b[1] >= 0, (acct, asset, b)
        self.bal_op[(acct, asset)] = self.op

    def deposit(self, acct, asset, amount):
        if self.accounts[acct].status == 'CLOSED':
            raise RefError('LX004', 'account closed')
        self.move(acct, asset, d_avail=amount)

    def withdraw(self, acct, asset, amount):
        if self.accounts[acct].status != 'ACTIVE':
            raise RefError('LX004', 'account not active')
        if self.bal(acct, asset)[0] < amount:
            raise RefError('LX001', 'insufficient funds')
        self.move(acct, asset, d_avail=-amount)

    def set_account_status(self, acct, status):
        self.accounts[acct].status = status

    def set_kyc_status(self, acct, kyc):
        legal = {('PENDING', 'APPROVED'), ('PENDING', 'REJECTED'), ('APPROVED', 'REJECTED'),
                 ('REJECTED', 'PENDING')}
        a = self.accounts[acct]
        if a.kyc != kyc and (a.kyc, kyc) not in legal:
            raise RefError('LX002', 'illegal KYC transition')
        a.kyc = kyc

    def set_market_status(self, symbol, status):
        self.markets[symbol].status = status

    # -- orders -------------------------------------------------------------------------------

    def next_book_seq(self):
        self.book_seq += 1
        return self.book_seq

    def set_status(self, o, status, reason=None):
        o.events.append((self.op, status))
        o.status = status
        if reason is not None or status in ('CANCELLED', 'EXPIRED'):
            o.reason = reason
        o.last_op = self.op

    def close(self, o, status, reason):
        """Live -> CANCELLED or EXPIRED: whatever lock remains returns to available."""
        if o.locked:
            self.move(o.acct, o.lock_asset, d_avail=o.locked, d_locked=-o.locked)
            o.locked = ZERO
        self.set_status(o, status, reason)

    def cancel(self, oid, expire=False, reason=None):
        o = self.orders[oid]
        if o.status not in LIVE:
            raise RefError('LX002', 'illegal order transition')
        self.close(o, 'EXPIRED' if expire else 'CANCELLED', reason)

    def cancel_orders(self, acct, symbol=None):
        """cancel_orders: every live order of the account (on the market) -> CANCELLED."""
        for o in self.orders.values():
            if o.acct == acct and o.status in LIVE and \
                    (symbol is None or o.market.symbol == symbol):
                self.close(o, 'CANCELLED', 'cancel_orders')

    def expire_orders(self, symbol):
        """expire_orders with a time after every placement: every live order of the market."""
        for o in self.orders.values():
            if o.market.symbol == symbol and o.status in LIVE:
                self.close(o, 'EXPIRED', 'expire_orders')

    def refusal(self, acct, m, qty, price, stop_price):
        a = self.accounts[acct]
        if a.status != 'ACTIVE':
            return 'ACCOUNT_NOT_ACTIVE'
        if a.kyc != 'APPROVED':
            return 'KYC_NOT_APPROVED'
        if m.status != 'ACTIVE':
            return 'MARKET_HALTED'
        if (price is not None and not is_multiple(price, m.tick)) or \
                (stop_price is not None and not is_multiple(stop_price, m.tick)):
            return 'TICK_SIZE'
        if not is_multiple(qty, m.lot):
            return 'LOT_SIZE'
        if qty < m.min_qty:
            return 'MIN_QUANTITY'
        if price is not None and qty * price < m.min_notional:
            return 'MIN_NOTIONAL'
        return None

    def place(self, oid, acct, symbol, side, otype, qty, price=None, tif=None, stop_price=None):
        """place_order on an INTERNAL market; returns the order (its final state)."""
        m = self.markets[symbol]
        # malformed calls (the generator never makes them, but the model says what they are)
        if stop_price is not None and otype != 'STOP':
            raise RefError('22023', 'stop_price on a non-STOP order')
        if stop_price is None and otype == 'STOP':
            raise RefError('22023', 'STOP without stop_price')
        if price is None and otype == 'LIMIT':
            raise RefError('22023', 'LIMIT without price')
        if price is None and side == 'BUY' and otype in ('MARKET', 'STOP'):
            raise RefError('22023', 'BUY without protection price')
        if tif is None:
            tif = 'IOC' if otype == 'MARKET' else 'GTC'
        elif otype == 'MARKET' and tif == 'GTC':
            raise RefError('22023', 'MARKET GTC')

        # idempotency: a retry with the same (account, client_order_id) and the same values
        # returns the stored order whatever its status, and changes nothing
        if oid in self.orders:
            o = self.orders[oid]
            assert o.acct == acct
            if (o.market.symbol, o.side, o.otype, o.qty, o.price, o.tif, o.stop_price) != \
                    (symbol, side, otype, qty, price, tif, stop_price):
                raise RefError('LX009', 'idempotency conflict')
            return o
        o = Order(oid, acct, m, side, otype, qty, price, tif, stop_price)
        self.orders[oid] = o
        o.last_op = self.op
        reject = self.refusal(acct, m, qty, price, stop_price)
        lock = ceil8(qty * price) if side == 'BUY' else qty
        if reject is None and self.bal(acct, o.lock_asset)[0] < lock:
            reject = 'INSUFFICIENT_FUNDS'
        if reject is not None:
            o.status = 'REJECTED'
            o.events.append((self.op, 'REJECTED'))
            o.reason = reject
            return o
        self.move(acct, o.lock_asset, d_avail=-lock, d_locked=lock)
        o.locked = lock
        o.book_seq = self.next_book_seq()
        o.status = 'PENDING' if otype == 'STOP' else 'OPEN'
        o.events.append((self.op, o.status))
        if otype != 'STOP':
            self.take(o)
        self.stop_rounds(m)
        return o

    # -- matching -----------------------------------------------------------------------------

    def crosses(self, taker, maker):
        if taker.is_buy():
            return maker.price <= taker.price
        if taker.price is None:
            return True
        return maker.price >= taker.price

    def makers(self, taker):
        """The resting orders of the other side, in priority order, that cross the taker."""
        m = taker.market
        other = 'SELL' if taker.is_buy() else 'BUY'
        book = [o for o in self.orders.values()
                if o.market is m and o.side == other and o.status in RESTING]
        if taker.is_buy():
            book.sort(key=lambda o: (o.price, o.book_seq))
        else:
            book.sort(key=lambda o: (-o.price, o.book_seq))
        return [o for o in book if self.crosses(taker, o)]

    def fok_possible(self, taker, makers):
        mode = taker.market.self_trade
        need = taker.remaining
        got = ZERO
        for mk in makers:
            if got >= need:
                break
            if mk.acct == taker.acct:
                if mode == 'EXPIRE_MAKER':
                    continue
                if mode in ('EXPIRE_TAKER', 'EXPIRE_BOTH'):
                    return False
            got += mk.remaining
        return got >= need

    def take(self, t):
        """Taker t (OPEN, locked) against the book."""
        m = t.market
        makers = self.makers(t)
        if t.tif == 'FOK' and not self.fok_possible(t, makers):
            self.close(t, 'EXPIRED', 'FOK')
            return
        for mk in makers:
            if t.remaining == 0:
                break
            if mk.acct == t.acct and m.self_trade != 'ALLOW':
                if m.self_trade == 'EXPIRE_MAKER':
                    self.close(mk, 'EXPIRED', 'SELF_TRADE')
                    continue
                if m.self_trade == 'EXPIRE_BOTH':
                    self.close(mk, 'EXPIRED', 'SELF_TRADE')
                self.close(t, 'EXPIRED', 'SELF_TRADE')
                return
            self.execute(m, t, mk)
        if t.remaining > 0:
            if t.expires_remainder():
                self.close(t, 'EXPIRED', 'FOK' if t.tif == 'FOK' else 'IOC')
            # else: GTC rests as it is (OPEN or PARTIAL)

    def fill(self, o, q, p, liquidity):
        """Settle one leg as apply_match does; returns the fee."""
        m = o.market
        notional = trunc8(q * p)
        rate = m.maker_rate if liquidity == 'MAKER' else m.taker_rate
        filled = o.filled + q
        complete = filled == o.qty
        if complete:
            new_locked = ZERO
        elif o.is_buy():
            new_locked = ceil8((o.qty - filled) * o.price)
        else:
            new_locked = o.locked - q
        release = o.locked - new_locked
        if o.is_buy():
            fee = ceil8(q * rate)
            self.move(o.acct, m.quote, d_avail=release - notional, d_locked=-release)
            self.move(o.acct, m.base, d_avail=q - fee)
        else:
            fee = ceil8(notional * rate)
            assert release == q, (o.oid, release, q)
            self.move(o.acct, m.base, d_locked=-release)
            self.move(o.acct, m.quote, d_avail=notional - fee)
        o.locked = new_locked
        o.filled = filled
        o.filled_value += q * p
        self.set_status(o, 'FILLED' if complete else 'PARTIAL')
        return fee

    def execute(self, m, t, mk):
        q = min(t.remaining, mk.remaining)
        p = mk.price
        buy, sell = (t, mk) if t.is_buy() else (mk, t)
        bfee = self.fill(buy, q, p, 'TAKER' if buy is t else 'MAKER')
        sfee = self.fill(sell, q, p, 'TAKER' if sell is t else 'MAKER')
        m.trade_seq += 1
        m.last_price = p
        self.trades.append(Trade(self.op, m.symbol, m.trade_seq, buy.oid, sell.oid, q, p,
                                 bfee, sfee, mk.side))

    def stop_rounds(self, m):
        if m.status != 'ACTIVE':
            return
        while m.last_price is not None:
            lp = m.last_price
            pending = [o for o in self.orders.values()
                       if o.market is m and o.status == 'PENDING' and
                       ((o.is_buy() and lp >= o.stop_price) or
                        (not o.is_buy() and lp <= o.stop_price))]
            if not pending:
                return
            buys = sorted([o for o in pending if o.is_buy()],
                          key=lambda o: (o.stop_price, o.book_seq))
            sells = sorted([o for o in pending if not o.is_buy()],
                           key=lambda o: (-o.stop_price, o.book_seq))
            order = buys + sells
            for o in order:
                o.book_seq = self.next_book_seq()
                o.status = 'TRIGGERED'      # neither PENDING nor in the book until its turn
            for o in order:
                self.set_status(o, 'OPEN')
                self.take(o)
