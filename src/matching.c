/*-------------------------------------------------------------------------
 *
 * matching.c
 *	  The matching engine of INTERNAL markets: place_order's matching,
 *	  self-trade prevention and stop cascades, set_market_matching, the
 *	  market lock that every call changing an INTERNAL book takes first, and
 *	  the top of the book against which place_orders decides the items that
 *	  rest untouched (exa_matching_book_top).
 *
 * Rules (README "Matching engine"): an accepted LIMIT or MARKET order (a
 * STOP once triggered) takes resting orders of the other side, best price
 * first, then lowest book_seq (orders placed under 1.0 have none and come
 * first, by created_at), while they cross its limit; each execution is at
 * the maker's price for the smaller remainder and settles through
 * exa_fill_apply() (trades.c) exactly as apply_match does with fees NULL.  GTC
 * remainders rest, IOC and MARKET remainders expire (reason IOC), a FOK
 * that cannot complete expires untouched (reason FOK).  After the order,
 * stops trigger in rounds at the market's last_price.
 *
 * Lock order (README "Concurrency"), which extends ledger.h's:
 *	 0. the markets row FOR NO KEY UPDATE (matching_lock_market), before
 *		anything else, by every call that can change an INTERNAL book:
 *		place_order, cancel_order(s), expire_order(s), set_market_matching;
 *		several markets by ascending symbol;
 *	 then place_order's own account row and client_order_id lock, as in
 *	 1.0, and the plan: the book is read under the market lock (READ
 *	 COMMITTED: every statement has a fresh snapshot) and every execution,
 *	 self-trade outcome and stop cascade is worked out in memory, nothing
 *	 locked or written;
 *	 1. every account row the plan touches FOR SHARE, ascending account_id;
 *	 2. every order row it touches FOR UPDATE, ascending order_id (checked
 *		unchanged: under the market lock nothing else changes the book);
 *	 4. every balance row of those accounts in the market's two assets FOR
 *		UPDATE, ascending (account_id, asset) — the taker's own included, so
 *		its funds lock (ledger_try_move) and every later move find their
 *		row locked already and no balance row is ever locked after a greater
 *		one.  A row that does not exist yet is created by ledger_move.
 *
 * Isolation: the plan relies on statement snapshots, so calls that change
 * an INTERNAL book raise 0A000 under REPEATABLE READ and SERIALIZABLE.
 *
 * Decisions where the design is silent are listed in README "Matching
 * engine"; in code: a maker whose fill would have no value (trunc8(q x p) =
 * 0) ends the taker's sweep; resting orders without a price are not in the
 * book; a FOK stop is judged when its turn to match comes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "args.h"
#include "catalog_version.h"
#include "exchange_adapter.h"
#include "ledger.h"
#include "matching.h"
#include "orders.h"
#include "stmt.h"
#include "trades.h"

PG_FUNCTION_INFO_V1(exa_set_market_matching);

/* An order as the plan sees it. */
typedef struct MOrder
{
	pg_uuid_t	order_id;
	pg_uuid_t	account_id;
	ExaOrderSide side;
	ExaOrderType type;
	ExaTimeInForce tif;
	ExaOrderStatus db_status;	/* as read */
	ExaOrderStatus status;		/* as the plan leaves it */
	Numeric		quantity;
	Numeric		price;			/* NULL when none */
	Numeric		stop_price;
	Numeric		db_filled;
	Numeric		filled;
	int64		book_seq;		/* 0: NULL (placed under 1.0) */
	TimestampTz created_at;
	bool		is_new;			/* the order being placed */
	bool		touched;		/* locked and written */
	bool		in_book;
	ExaOrder	row;			/* as locked (or built, for the new order) */
} MOrder;

typedef struct BookSide
{
	ExaOrderSide side;			/* of the resting orders */
	MOrder	  **v;
	int			n;
	int			cap;
	bool		all;			/* every resting order loaded */
	Numeric		bound;			/* loaded up to this price; NULL: none */
	int			loads;			/* chunks loaded: a walk restarts on each */
} BookSide;

typedef enum MActKind
{
	MACT_FILL,
	MACT_EXPIRE,
	MACT_TRIGGER
} MActKind;

typedef struct MAct
{
	MActKind	kind;
	MOrder	   *a;				/* FILL: taker; else the order */
	MOrder	   *b;				/* FILL: maker */
	Numeric		qty;
	Numeric		price;			/* FILL: price; TRIGGER: last_price */
	int64		seq;			/* FILL: trade_seq; TRIGGER: book_seq */
	const char *reason;			/* EXPIRE */
} MAct;

struct MatchPlan
{
	MatchMarket *m;
	MOrder	   *taker;
	BookSide	book[2];		/* by ExaOrderSide */
	List	   *orders;			/* every MOrder read or made */
	MAct	   *acts;
	int			nacts;
	int			cap;
	Numeric		last_price;
	int64		trade_seq;
	List	   *triggered;		/* pg_uuid_t * of stops triggered */
};

/* ------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------
 */

static ExaStmt stmt_market_mode = {
	"SELECT matching::pg_catalog.text FROM exchange.markets"
	" WHERE symbol OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID},
	NULL
};

static ExaStmt stmt_lock_market = {
	"SELECT matching::pg_catalog.text, self_trade::pg_catalog.text, last_price,"
	"       trade_seq, maker_fee_rate, taker_fee_rate"
	"  FROM exchange.markets WHERE symbol OPERATOR(pg_catalog.=) $1"
	"   FOR NO KEY UPDATE",
	1, {TEXTOID},
	NULL
};

#define MORDER_COLS \
	"SELECT order_id, account_id, side::pg_catalog.text, order_type::pg_catalog.text," \
	"       time_in_force::pg_catalog.text, status::pg_catalog.text, quantity, price," \
	"       filled_quantity, book_seq, created_at, stop_price" \
	"  FROM exchange.orders"

/*
 * The resting orders of one side, loaded a chunk at a time in price order:
 * the price of the BOOK_CHUNK-th order beyond what is loaded (the cut), then
 * every order up to that price.  $2 is the loaded bound (-1 for asks, or
 * 1e16 for bids, when nothing is loaded), $3 the taker's limit (1e16 or 0
 * when none): plain ranges, so both are index conditions of
 * orders_book_idx.  They run as generic plans (exa_exec_generic): for every
 * bound their custom plan looks the cheaper, so the plan cache would plan
 * them anew on each call, which cost a resting place_order about as much as
 * the rest of the call (bench/README.md, bench/matching_bench.sh).
 */
#define BOOK_CHUNK 64
#define BOOK_RESTING \
	"   AND status IN ('OPEN', 'PARTIAL') AND price IS NOT NULL"

static ExaStmt stmt_ask_cut = {
	"SELECT price FROM exchange.orders"
	" WHERE symbol OPERATOR(pg_catalog.=) $1 AND side OPERATOR(pg_catalog.=) 'SELL'" BOOK_RESTING
	"   AND price OPERATOR(pg_catalog.>) $2 AND price OPERATOR(pg_catalog.<=) $3"
	" ORDER BY price OFFSET $4 LIMIT 1",
	4, {TEXTOID, NUMERICOID, NUMERICOID, INT8OID},
	NULL
};

static ExaStmt stmt_bid_cut = {
	"SELECT price FROM exchange.orders"
	" WHERE symbol OPERATOR(pg_catalog.=) $1 AND side OPERATOR(pg_catalog.=) 'BUY'" BOOK_RESTING
	"   AND price OPERATOR(pg_catalog.<) $2 AND price OPERATOR(pg_catalog.>=) $3"
	" ORDER BY price DESC OFFSET $4 LIMIT 1",
	4, {TEXTOID, NUMERICOID, NUMERICOID, INT8OID},
	NULL
};

static ExaStmt stmt_asks = {
	MORDER_COLS
	" WHERE symbol OPERATOR(pg_catalog.=) $1 AND side OPERATOR(pg_catalog.=) 'SELL'" BOOK_RESTING
	"   AND price OPERATOR(pg_catalog.>) $2 AND price OPERATOR(pg_catalog.<=) $3"
	" ORDER BY price",			/* walks orders_book_idx, as a generic plan too */
	3, {TEXTOID, NUMERICOID, NUMERICOID},
	NULL
};

static ExaStmt stmt_bids = {
	MORDER_COLS
	" WHERE symbol OPERATOR(pg_catalog.=) $1 AND side OPERATOR(pg_catalog.=) 'BUY'" BOOK_RESTING
	"   AND price OPERATOR(pg_catalog.<) $2 AND price OPERATOR(pg_catalog.>=) $3"
	" ORDER BY price DESC",
	3, {TEXTOID, NUMERICOID, NUMERICOID},
	NULL
};

/* PENDING stops whose condition holds at $2, but those in $3. */
static ExaStmt stmt_stops = {
	MORDER_COLS
	" WHERE symbol OPERATOR(pg_catalog.=) $1"
	"   AND status OPERATOR(pg_catalog.=) 'PENDING'"
	"   AND ((side OPERATOR(pg_catalog.=) 'BUY' AND stop_price OPERATOR(pg_catalog.<=) $2)"
	"     OR (side OPERATOR(pg_catalog.=) 'SELL' AND stop_price OPERATOR(pg_catalog.>=) $2))"
	"   AND order_id OPERATOR(pg_catalog.<>) ALL ($3)",
	3, {TEXTOID, NUMERICOID, UUIDARRAYOID},
	NULL
};

/*
 * The top of the book for exa_matching_book_top(): the best resting bid and
 * ask (the conditions of stmt_bids and stmt_asks: the first maker
 * plan_take() would reach), and whether a PENDING stop's condition holds at
 * the market's last_price (what plan_stops() would trigger first).  Each
 * part is one index probe: orders_book_idx, orders_stop_idx.
 */
static ExaStmt stmt_book_top = {
	"SELECT (SELECT o.price FROM exchange.orders o"
	"         WHERE o.symbol OPERATOR(pg_catalog.=) $1 AND o.side OPERATOR(pg_catalog.=) 'BUY'"
	"           AND o.status IN ('OPEN', 'PARTIAL') AND o.price IS NOT NULL"
	"         ORDER BY o.price DESC LIMIT 1),"
	"       (SELECT o.price FROM exchange.orders o"
	"         WHERE o.symbol OPERATOR(pg_catalog.=) $1 AND o.side OPERATOR(pg_catalog.=) 'SELL'"
	"           AND o.status IN ('OPEN', 'PARTIAL') AND o.price IS NOT NULL"
	"         ORDER BY o.price LIMIT 1),"
	"       m.last_price IS NOT NULL AND"
	"       (EXISTS (SELECT FROM exchange.orders o"
	"                 WHERE o.symbol OPERATOR(pg_catalog.=) $1"
	"                   AND o.status OPERATOR(pg_catalog.=) 'PENDING'"
	"                   AND o.side OPERATOR(pg_catalog.=) 'BUY'"
	"                   AND o.stop_price OPERATOR(pg_catalog.<=) m.last_price)"
	"        OR EXISTS (SELECT FROM exchange.orders o"
	"                    WHERE o.symbol OPERATOR(pg_catalog.=) $1"
	"                      AND o.status OPERATOR(pg_catalog.=) 'PENDING'"
	"                      AND o.side OPERATOR(pg_catalog.=) 'SELL'"
	"                      AND o.stop_price OPERATOR(pg_catalog.>=) m.last_price))"
	"  FROM exchange.markets m WHERE m.symbol OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID},
	NULL
};

static ExaStmt stmt_next_book_seq = {
	"SELECT pg_catalog.nextval('exchange.order_book_seq'::pg_catalog.regclass)",
	0, {0},
	NULL
};

/* Lock order 4: the balance rows of the plan, in (account_id, asset) order. */
static ExaStmt stmt_lock_balances = {
	"SELECT FROM exchange.balances b"
	"  JOIN ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[])) AS a (account_id)"
	"    ON b.account_id OPERATOR(pg_catalog.=) a.account_id"
	" WHERE b.symbol OPERATOR(pg_catalog.=) ANY ($2)"
	" ORDER BY b.account_id, b.symbol COLLATE \"C\""
	"   FOR UPDATE OF b",
	2, {UUIDARRAYOID, TEXTARRAYOID},
	NULL
};

static ExaStmt stmt_trigger = {
	"UPDATE exchange.orders SET status = 'OPEN', book_seq = $2,"
	"       updated_at = pg_catalog.now()"
	" WHERE order_id OPERATOR(pg_catalog.=) $1",
	2, {UUIDOID, INT8OID},
	NULL
};

static ExaStmt stmt_market_traded = {
	"UPDATE exchange.markets SET last_price = $2, last_trade_at = $3, trade_seq = $4"
	" WHERE symbol OPERATOR(pg_catalog.=) $1",
	4, {TEXTOID, NUMERICOID, TIMESTAMPTZOID, INT8OID},
	NULL
};

static ExaStmt stmt_order_row = {
	"SELECT * FROM exchange.orders WHERE order_id OPERATOR(pg_catalog.=) $1",
	1, {UUIDOID},
	NULL
};

static Datum uuid_list_array(List *ids);

/* ------------------------------------------------------------------------
 * Lock order 0
 * ------------------------------------------------------------------------
 */

static void
refuse_snapshot_isolation(const char *symbol)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("market \"%s\" is matched internally and cannot change its book under %s",
						symbol, IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ"),
				 errhint("Use READ COMMITTED for calls that change the book of an INTERNAL market.")));
}

static bool
market_is_internal(const char *symbol)
{
	Datum		key[1] = {CStringGetTextDatum(symbol)};

	if (exa_exec(&stmt_market_mode, key, NULL, 1) != 1)
		return false;
	return exa_matching_from_text(exa_col_cstring(0, 1)) == EXA_MATCHING_INTERNAL;
}

MatchMarket *
exa_matching_lock_market(const char *symbol)
{
	Datum		key[1] = {CStringGetTextDatum(symbol)};
	MatchMarket *m;
	bool		isnull;
	Datum		d;

	if (!exa_catalog_is_1_1() || !market_is_internal(symbol))
		return NULL;
	refuse_snapshot_isolation(symbol);
	if (exa_exec(&stmt_lock_market, key, NULL, 1) != 1 ||
		exa_matching_from_text(exa_col_cstring(0, 1)) != EXA_MATCHING_INTERNAL)
		return NULL;			/* switched while we waited: lock kept */

	m = palloc0(sizeof(MatchMarket));
	m->symbol = pstrdup(symbol);
	m->self_trade = exa_self_trade_from_text(exa_col_cstring(0, 2));
	d = exa_col(0, 3, &isnull);
	m->last_price = isnull ? NULL : DatumGetNumericCopy(d);
	m->trade_seq = DatumGetInt64(exa_col_notnull(0, 4));
	m->maker_fee_rate = DatumGetNumericCopy(exa_col_notnull(0, 5));
	m->taker_fee_rate = DatumGetNumericCopy(exa_col_notnull(0, 6));
	return m;
}

void
exa_matching_refuse_unlocked(const char *symbol)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("market \"%s\" became matched internally during the call", symbol),
			 errhint("Retry the transaction.")));
}

static void
lock_symbol(const char *symbol)
{
	Datum		key[1] = {CStringGetTextDatum(symbol)};

	refuse_snapshot_isolation(symbol);
	(void) exa_exec(&stmt_lock_market, key, NULL, 1);
}

void
exa_matching_lock_symbol(const char *symbol)
{
	if (exa_catalog_is_1_1() && market_is_internal(symbol))
		lock_symbol(symbol);
}

static ExaStmt stmt_order_market = {
	"SELECT m.symbol::pg_catalog.text FROM exchange.orders o"
	"  JOIN exchange.markets m ON m.symbol OPERATOR(pg_catalog.=) o.symbol"
	" WHERE o.order_id OPERATOR(pg_catalog.=) $1"
	"   AND m.matching OPERATOR(pg_catalog.=) 'INTERNAL'",
	1, {UUIDOID},
	NULL
};

void
exa_matching_lock_order_market(pg_uuid_t *order_id)
{
	Datum		key[1] = {UUIDPGetDatum(order_id)};

	if (!exa_catalog_is_1_1())
		return;
	if (exa_exec(&stmt_order_market, key, NULL, 1) == 1)
		lock_symbol(exa_col_cstring(0, 1));
}

static ExaStmt stmt_account_markets = {
	"SELECT m.symbol::pg_catalog.text FROM exchange.markets m"
	" WHERE m.matching OPERATOR(pg_catalog.=) 'INTERNAL'"
	"   AND m.symbol IN (SELECT o.symbol FROM exchange.orders o"
	"                     WHERE o.account_id OPERATOR(pg_catalog.=) $1"
	"                       AND ($2::pg_catalog.text IS NULL OR o.symbol OPERATOR(pg_catalog.=) $2)"
	"                       AND o.status IN ('PENDING', 'OPEN', 'PARTIAL'))"
	" ORDER BY m.symbol COLLATE \"C\"",
	2, {UUIDOID, TEXTOID},
	NULL
};

List *
exa_matching_lock_account_markets(pg_uuid_t *account_id, const char *symbol)
{
	Datum		values[2];
	char		nulls[2] = {' ', symbol ? ' ' : 'n'};
	List	   *symbols = NIL;
	ListCell   *lc;
	uint64		n;

	if (!exa_catalog_is_1_1())
		return NIL;
	values[0] = UUIDPGetDatum(account_id);
	values[1] = symbol ? CStringGetTextDatum(symbol) : (Datum) 0;
	if (symbol != NULL)
	{
		/* the one market, whether the account has orders there yet or not */
		if (market_is_internal(symbol))
		{
			lock_symbol(symbol);
			symbols = list_make1(pstrdup(symbol));
		}
		return symbols;
	}
	n = exa_exec(&stmt_account_markets, values, nulls, 0);
	for (uint64 i = 0; i < n; i++)
		symbols = lappend(symbols, exa_col_cstring(i, 1));
	foreach(lc, symbols)
		lock_symbol((char *) lfirst(lc));
	return symbols;
}

static ExaStmt stmt_unlocked_internal = {
	"SELECT o.order_id FROM exchange.orders o"
	"  JOIN exchange.markets m ON m.symbol OPERATOR(pg_catalog.=) o.symbol"
	" WHERE o.order_id OPERATOR(pg_catalog.=) ANY ($1)"
	"   AND m.matching OPERATOR(pg_catalog.=) 'INTERNAL'"
	"   AND o.symbol::pg_catalog.text OPERATOR(pg_catalog.<>) ALL ($2)",
	2, {UUIDARRAYOID, TEXTARRAYOID},
	NULL
};

List *
exa_matching_skip_unlocked(List *ids, List *locked)
{
	Datum		values[2];
	List	   *kept = NIL;
	ListCell   *lc;
	uint64		n;

	if (ids == NIL || !exa_catalog_is_1_1())
		return ids;
	values[0] = uuid_list_array(ids);
	values[1] = exa_text_array(locked);
	n = exa_exec(&stmt_unlocked_internal, values, NULL, 0);
	if (n == 0)
		return ids;
	foreach(lc, ids)
	{
		pg_uuid_t  *id = (pg_uuid_t *) lfirst(lc);
		bool		skip = false;

		for (uint64 i = 0; i < n && !skip; i++)
			skip = exa_uuid_cmp(id, DatumGetUUIDP(exa_col_notnull(i, 1))) == 0;
		if (!skip)
			kept = lappend(kept, id);
	}
	return kept;
}

void
exa_matching_refuse_internal_order(pg_uuid_t *order_id, const char *what)
{
	Datum		key[1] = {UUIDPGetDatum(order_id)};

	if (exa_catalog_is_1_1() &&
		exa_exec(&stmt_order_market, key, NULL, 1) == 1)
		exa_matching_refuse_internal(exa_col_cstring(0, 1), what);
}

void
exa_matching_refuse_internal(const char *symbol, const char *what)
{
	if (exa_catalog_is_1_1() && market_is_internal(symbol))
		exa_matching_raise_internal(symbol, what);
}

void
exa_matching_raise_internal(const char *symbol, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXA_MATCHED_INTERNALLY),
			 errmsg("market \"%s\" is matched internally", symbol),
			 errdetail("%s acts on the book from outside the database; an INTERNAL market's orders are matched, and its stops triggered, by place_order.",
					   what),
			 errhint("Switch the market to EXTERNAL with exchange.set_market_matching() while it is HALTED.")));
}

void
exa_matching_book_top(const char *symbol, Numeric *best_bid, Numeric *best_ask,
					   bool *stops_due)
{
	Datum		key[1] = {CStringGetTextDatum(symbol)};
	bool		isnull;
	Datum		d;

	if (exa_exec(&stmt_book_top, key, NULL, 1) != 1)
		elog(ERROR, "market \"%s\" vanished under its lock", symbol);
	d = exa_col(0, 1, &isnull);
	*best_bid = isnull ? NULL : DatumGetNumericCopy(d);
	d = exa_col(0, 2, &isnull);
	*best_ask = isnull ? NULL : DatumGetNumericCopy(d);
	*stops_due = DatumGetBool(exa_col_notnull(0, 3));
	SPI_freetuptable(SPI_tuptable);
}

/* ------------------------------------------------------------------------
 * The book in memory
 * ------------------------------------------------------------------------
 */

static int
morder_cmp_seq(const MOrder *a, const MOrder *b)
{
	if ((a->book_seq == 0) != (b->book_seq == 0))
		return a->book_seq == 0 ? -1 : 1;
	if (a->book_seq != b->book_seq)
		return a->book_seq < b->book_seq ? -1 : 1;
	if (a->created_at != b->created_at)
		return a->created_at < b->created_at ? -1 : 1;
	return exa_uuid_cmp(&a->order_id, &b->order_id);
}

/* Priority within one side: best price first, then time. */
static int
book_cmp(const void *pa, const void *pb)
{
	const MOrder *a = *(MOrder *const *) pa;
	const MOrder *b = *(MOrder *const *) pb;
	int			c = exa_cmp(a->price, b->price);

	if (c != 0)
		return a->side == EXA_SIDE_BUY ? -c : c;
	return morder_cmp_seq(a, b);
}

static MOrder *
morder_from_row(MatchPlan *plan, uint64 i)
{
	MOrder	   *o = palloc0(sizeof(MOrder));
	bool		isnull;
	Datum		d;

	memcpy(&o->order_id, DatumGetUUIDP(exa_col_notnull(i, 1)), sizeof(pg_uuid_t));
	memcpy(&o->account_id, DatumGetUUIDP(exa_col_notnull(i, 2)), sizeof(pg_uuid_t));
	o->side = exa_order_side_from_text(exa_col_cstring(i, 3));
	o->type = exa_order_type_from_text(exa_col_cstring(i, 4));
	o->tif = exa_time_in_force_from_text(exa_col_cstring(i, 5));
	o->db_status = o->status = exa_order_status_from_text(exa_col_cstring(i, 6));
	o->quantity = DatumGetNumericCopy(exa_col_notnull(i, 7));
	d = exa_col(i, 8, &isnull);
	o->price = isnull ? NULL : DatumGetNumericCopy(d);
	o->db_filled = o->filled = DatumGetNumericCopy(exa_col_notnull(i, 9));
	d = exa_col(i, 10, &isnull);
	o->book_seq = isnull ? 0 : DatumGetInt64(d);
	o->created_at = DatumGetTimestampTz(exa_col_notnull(i, 11));
	d = exa_col(i, 12, &isnull);
	o->stop_price = isnull ? NULL : DatumGetNumericCopy(d);
	plan->orders = lappend(plan->orders, o);
	return o;
}

static void
book_add(BookSide *bs, MOrder *o)
{
	if (bs->n == bs->cap)
	{
		bs->cap = Max(16, bs->cap * 2);
		bs->v = bs->v ? repalloc(bs->v, sizeof(MOrder *) * bs->cap) :
			palloc(sizeof(MOrder *) * bs->cap);
	}
	bs->v[bs->n++] = o;
}

/* A price beyond (worse than) bound on this side of the book. */
static bool
beyond(const BookSide *bs, Numeric price, Numeric bound)
{
	int			c = exa_cmp(price, bound);

	return bs->side == EXA_SIDE_SELL ? c > 0 : c < 0;
}

/* Has the side been loaded as far as a taker with this limit can reach? */
static bool
book_loaded(const BookSide *bs, Numeric limit)
{
	if (bs->all)
		return true;
	if (limit == NULL || bs->bound == NULL)
		return false;
	return !beyond(bs, limit, bs->bound);
}

/*
 * Load the next chunk of the side's resting orders, up to the limit (NULL:
 * none); returns false when there was nothing left to load.
 */
static bool
book_load(MatchPlan *plan, BookSide *bs, Numeric limit)
{
	bool		asks = bs->side == EXA_SIDE_SELL;
	Numeric		none_loaded = exa_num(asks ? "-1" : "10000000000000000");
	Numeric		no_limit = exa_num(asks ? "10000000000000000" : "0");
	Datum		values[4];
	Numeric		upto;
	uint64		n;

	if (book_loaded(bs, limit))
		return false;
	values[0] = CStringGetTextDatum(plan->m->symbol);
	values[1] = NumericGetDatum(bs->bound ? bs->bound : none_loaded);
	values[2] = NumericGetDatum(limit ? limit : no_limit);
	values[3] = Int64GetDatum(BOOK_CHUNK - 1);
	if (exa_exec_generic(asks ? &stmt_ask_cut : &stmt_bid_cut, values, NULL, 1) == 1)
		upto = DatumGetNumericCopy(exa_col_notnull(0, 1));
	else
		upto = limit;			/* fewer than a chunk left: up to the limit */

	values[2] = NumericGetDatum(upto ? upto : no_limit);
	n = exa_exec_generic(asks ? &stmt_asks : &stmt_bids, values, NULL, 0);
	for (uint64 i = 0; i < n; i++)
	{
		MOrder	   *o = morder_from_row(plan, i);

		o->in_book = true;
		book_add(bs, o);
	}
	SPI_freetuptable(SPI_tuptable);
	if (upto == NULL)
		bs->all = true;
	else
		bs->bound = upto;
	bs->loads++;
	if (bs->n > 1)
		qsort(bs->v, bs->n, sizeof(MOrder *), book_cmp);
	return true;
}

/*
 * The next resting order of the side, from position *pos on, within the
 * loaded range (loading more as needed, up to limit); NULL when the side
 * has nothing more a taker with this limit could reach.  An order of this
 * call that rests beyond the loaded range is only taken once the range
 * reaches it.  Loading re-sorts the side: the walk starts again from the
 * best order (those no longer in the book are skipped).
 */
static MOrder *
book_next(MatchPlan *plan, BookSide *bs, Numeric limit, int *pos)
{
	for (;;)
	{
		for (; *pos < bs->n; (*pos)++)
		{
			MOrder	   *o = bs->v[*pos];

			if (!o->in_book)
				continue;
			if (!bs->all && (bs->bound == NULL || beyond(bs, o->price, bs->bound)))
				break;			/* past what is loaded: load first */
			return o;
		}
		if (!book_load(plan, bs, limit))
		{
			/* loaded as far as the limit reaches: what remains is beyond it */
			for (; *pos < bs->n; (*pos)++)
				if (bs->v[*pos]->in_book)
					return bs->v[*pos];
			return NULL;
		}
		*pos = 0;
	}
}

/* ------------------------------------------------------------------------
 * The plan
 * ------------------------------------------------------------------------
 */

static MAct *
plan_act(MatchPlan *plan, MActKind kind, MOrder *a)
{
	MAct	   *act;

	if (plan->nacts == plan->cap)
	{
		plan->cap = Max(16, plan->cap * 2);
		plan->acts = plan->acts ? repalloc(plan->acts, sizeof(MAct) * plan->cap) :
			palloc(sizeof(MAct) * plan->cap);
	}
	act = &plan->acts[plan->nacts++];
	memset(act, 0, sizeof(MAct));
	act->kind = kind;
	act->a = a;
	if (!a->is_new)
		a->touched = true;
	return act;
}

static void
plan_expire(MatchPlan *plan, MOrder *o, const char *reason)
{
	MAct	   *act = plan_act(plan, MACT_EXPIRE, o);

	act->reason = reason;
	o->status = EXA_ORDER_EXPIRED;
	o->in_book = false;
}

static Numeric
remaining(const MOrder *o)
{
	return exa_sub(o->quantity, o->filled);
}

/* Does maker mk cross taker t's limit? */
static bool
crosses(const MOrder *t, const MOrder *mk)
{
	if (t->price == NULL)
		return true;			/* a SELL without a price takes any bid */
	if (t->side == EXA_SIDE_BUY)
		return exa_cmp(mk->price, t->price) <= 0;
	return exa_cmp(mk->price, t->price) >= 0;
}

static bool
same_account(const MOrder *a, const MOrder *b)
{
	return exa_uuid_cmp(&a->account_id, &b->account_id) == 0;
}

/*
 * FOK: would plan_take() fill the whole remainder?  The same walk, counting
 * instead of executing: the makers as this call's earlier executions left
 * them (plan->book holds every order the plan read, with its in-memory
 * fills; those filled or expired are out of the book), self-trade
 * prevention as plan_take() applies it, and a fill without value ending the
 * sweep.  book_next() restarts from the best order each time it loads a
 * chunk, so the count restarts with it: each maker is counted once, and the
 * judgement looks through as many chunks as the quantity needs.
 */
static bool
fok_possible(MatchPlan *plan, BookSide *bs, MOrder *t)
{
	Numeric		need = remaining(t);
	Numeric		have = exa_zero();
	int			pos = 0;
	int			loads = bs->loads;
	MOrder	   *mk;

	for (; (mk = book_next(plan, bs, t->price, &pos)) != NULL; pos++)
	{
		Numeric		q;

		if (bs->loads != loads)
		{
			/* a chunk was loaded and the walk restarted: count again */
			loads = bs->loads;
			have = exa_zero();
		}
		if (!crosses(t, mk))
			break;
		if (same_account(t, mk) && plan->m->self_trade != EXA_STP_ALLOW)
		{
			if (plan->m->self_trade == EXA_STP_EXPIRE_MAKER)
				continue;
			return false;		/* the taker would expire (SELF_TRADE) */
		}
		q = exa_sub(need, have);
		if (exa_cmp(remaining(mk), q) < 0)
			q = remaining(mk);
		if (exa_is_zero(exa_trunc8(exa_mul(q, mk->price))))
			return false;		/* the sweep would end here */
		have = exa_add(have, q);
		if (exa_cmp(have, need) >= 0)
			return true;
	}
	return false;
}

static void
fill_status(MOrder *o)
{
	o->status = exa_cmp(o->filled, o->quantity) == 0 ? EXA_ORDER_FILLED :
		EXA_ORDER_PARTIAL;
}

/* Match taker t against the book; its remainder rests or expires. */
static void
plan_take(MatchPlan *plan, MOrder *t)
{
	BookSide   *bs = &plan->book[t->side == EXA_SIDE_BUY ? EXA_SIDE_SELL : EXA_SIDE_BUY];
	BookSide   *own = &plan->book[t->side];
	int			pos = 0;
	MOrder	   *mk;

	if (t->tif == EXA_TIF_FOK && !fok_possible(plan, bs, t))
	{
		plan_expire(plan, t, "FOK");
		return;
	}

	while (exa_cmp(t->filled, t->quantity) < 0 &&
		   (mk = book_next(plan, bs, t->price, &pos)) != NULL)
	{
		Numeric		q;
		MAct	   *act;

		pos++;
		if (!crosses(t, mk))
			break;
		if (same_account(t, mk) && plan->m->self_trade != EXA_STP_ALLOW)
		{
			if (plan->m->self_trade != EXA_STP_EXPIRE_TAKER)
				plan_expire(plan, mk, "SELF_TRADE");
			if (plan->m->self_trade == EXA_STP_EXPIRE_MAKER)
				continue;
			plan_expire(plan, t, "SELF_TRADE");
			return;
		}
		q = remaining(t);
		if (exa_cmp(remaining(mk), q) < 0)
			q = remaining(mk);
		if (exa_is_zero(exa_trunc8(exa_mul(q, mk->price))))
			break;				/* a fill without value: the sweep ends */

		act = plan_act(plan, MACT_FILL, t);
		act->b = mk;
		if (!mk->is_new)
			mk->touched = true;
		act->qty = q;
		act->price = mk->price;
		act->seq = ++plan->trade_seq;
		plan->last_price = mk->price;
		t->filled = exa_add(t->filled, q);
		mk->filled = exa_add(mk->filled, q);
		fill_status(t);
		fill_status(mk);
		if (mk->status == EXA_ORDER_FILLED)
			mk->in_book = false;
	}

	if (exa_cmp(t->filled, t->quantity) == 0)
		return;
	if (t->tif == EXA_TIF_GTC && t->price != NULL && t->type != EXA_TYPE_MARKET)
	{
		t->in_book = true;
		book_add(own, t);
		if (own->n > 1)
			qsort(own->v, own->n, sizeof(MOrder *), book_cmp);
	}
	else
		plan_expire(plan, t, "IOC");
}

static int64
next_book_seq(void)
{
	exa_exec(&stmt_next_book_seq, NULL, NULL, 1);
	return DatumGetInt64(exa_col_notnull(0, 1));
}

static bool
stop_holds(const MOrder *o, Numeric last)
{
	int			c = exa_cmp(last, o->stop_price);

	return o->side == EXA_SIDE_BUY ? c >= 0 : c <= 0;
}

/* Round order: BUY stops by ascending stop_price, then SELL by descending. */
static int
stop_cmp(const void *pa, const void *pb)
{
	const MOrder *a = *(MOrder *const *) pa;
	const MOrder *b = *(MOrder *const *) pb;
	int			c;

	if (a->side != b->side)
		return a->side == EXA_SIDE_BUY ? -1 : 1;
	c = exa_cmp(a->stop_price, b->stop_price);
	if (c != 0)
		return a->side == EXA_SIDE_BUY ? c : -c;
	return morder_cmp_seq(a, b);
}

static Datum
uuid_list_array(List *ids)
{
	int			n = list_length(ids);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, ids)
		elems[i++] = UUIDPGetDatum((pg_uuid_t *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, UUIDOID, UUID_LEN, false,
										   TYPALIGN_CHAR));
}

/* Stop rounds until one triggers nothing (never while last_price is NULL). */
static void
plan_stops(MatchPlan *plan)
{
	while (plan->last_price != NULL)
	{
		Numeric		last = plan->last_price;
		Datum		values[3];
		MOrder	  **round;
		int			n = 0;
		uint64		rows;

		values[0] = CStringGetTextDatum(plan->m->symbol);
		values[1] = NumericGetDatum(last);
		values[2] = uuid_list_array(plan->triggered);
		rows = exa_exec(&stmt_stops, values, NULL, 0);
		round = palloc(sizeof(MOrder *) * (rows + 1));
		for (uint64 i = 0; i < rows; i++)
			round[n++] = morder_from_row(plan, i);
		SPI_freetuptable(SPI_tuptable);
		if (plan->taker->status == EXA_ORDER_PENDING &&
			stop_holds(plan->taker, last))
			round[n++] = plan->taker;
		if (n == 0)
			break;
		qsort(round, n, sizeof(MOrder *), stop_cmp);

		/* all trigger at once, ranking by trigger time */
		for (int i = 0; i < n; i++)
		{
			MAct	   *act = plan_act(plan, MACT_TRIGGER, round[i]);

			act->price = last;
			act->seq = round[i]->book_seq = next_book_seq();
			round[i]->status = EXA_ORDER_OPEN;
			plan->triggered = lappend(plan->triggered, &round[i]->order_id);
		}
		for (int i = 0; i < n; i++)
			plan_take(plan, round[i]);
	}
}

/* qsort comparators for the lock phase */
static int
morder_id_cmp(const void *pa, const void *pb)
{
	return exa_uuid_cmp(&(*(MOrder *const *) pa)->order_id,
						&(*(MOrder *const *) pb)->order_id);
}

static int
uuid_ptr_cmp(const void *pa, const void *pb)
{
	return exa_uuid_cmp(*(pg_uuid_t *const *) pa, *(pg_uuid_t *const *) pb);
}

/* Lock orders 1, 2 and 4 over everything the plan touches. */
static void
plan_lock(MatchPlan *plan, MatchTaker *taker)
{
	int			norders = list_length(plan->orders) + 1;
	MOrder	  **touched = palloc(sizeof(MOrder *) * norders);
	pg_uuid_t **accts = palloc(sizeof(pg_uuid_t *) * norders);
	Datum	   *acct_datums = palloc(sizeof(Datum) * norders);
	int			nt = 0,
				na = 0,
				nd = 0;
	ListCell   *lc;
	Datum		values[2];
	List	   *assets;

	foreach(lc, plan->orders)
	{
		MOrder	   *o = (MOrder *) lfirst(lc);

		if (o->touched)
			touched[nt++] = o;
	}
	accts[na++] = taker->account_id;
	for (int i = 0; i < nt; i++)
		accts[na++] = &touched[i]->account_id;
	qsort(accts, na, sizeof(pg_uuid_t *), uuid_ptr_cmp);

	/* 1: accounts, ascending (the taker's is held already) */
	for (int i = 0; i < na; i++)
	{
		ExaAccount	acct;

		if (i > 0 && exa_uuid_cmp(accts[i], accts[i - 1]) == 0)
			continue;
		acct_datums[nd++] = UUIDPGetDatum(accts[i]);
		if (exa_uuid_cmp(accts[i], taker->account_id) != 0)
			exa_ledger_lock_account(accts[i], false, &acct);
	}

	/* 2: orders, ascending; the market lock kept them as the plan read them */
	qsort(touched, nt, sizeof(MOrder *), morder_id_cmp);
	for (int i = 0; i < nt; i++)
	{
		MOrder	   *o = touched[i];

		exa_order_lock(&o->order_id, &o->row);
		if (o->row.status != o->db_status ||
			exa_cmp(o->row.filled_quantity, o->db_filled) != 0)
			elog(ERROR, "order %s changed under the lock of market \"%s\"",
				 exa_uuid_str(&o->order_id), plan->m->symbol);
	}

	/*
	 * 4: balances of those accounts in the market's assets, ascending.  A
	 * plan that touches no other order moves only the taker's own lock,
	 * which exa_ledger_try_move() takes itself.
	 */
	if (nt == 0)
		return;
	values[0] = PointerGetDatum(construct_array(acct_datums, nd, UUIDOID, UUID_LEN,
												false, TYPALIGN_CHAR));
	assets = list_make2(taker->base_asset, taker->quote_asset);
	values[1] = exa_text_array(assets);
	exa_exec(&stmt_lock_balances, values, NULL, 0);
	SPI_freetuptable(SPI_tuptable);
}

MatchPlan *
exa_matching_plan(MatchMarket *m, MatchTaker *taker, int64 *book_seq)
{
	MatchPlan  *plan = palloc0(sizeof(MatchPlan));
	MOrder	   *t = palloc0(sizeof(MOrder));

	plan->m = m;
	plan->last_price = m->last_price;
	plan->trade_seq = m->trade_seq;
	plan->book[EXA_SIDE_BUY].side = EXA_SIDE_BUY;
	plan->book[EXA_SIDE_SELL].side = EXA_SIDE_SELL;

	memcpy(&t->order_id, taker->order_id, sizeof(pg_uuid_t));
	memcpy(&t->account_id, taker->account_id, sizeof(pg_uuid_t));
	t->side = taker->side;
	t->type = taker->order_type;
	t->tif = taker->time_in_force;
	t->quantity = taker->quantity;
	t->price = taker->price;
	t->stop_price = taker->stop_price;
	t->filled = t->db_filled = exa_zero();
	t->is_new = true;
	t->book_seq = *book_seq = next_book_seq();
	t->created_at = GetCurrentTransactionStartTimestamp();
	t->status = t->db_status = t->type == EXA_TYPE_STOP ? EXA_ORDER_PENDING :
		EXA_ORDER_OPEN;
	plan->taker = t;
	plan->orders = lappend(plan->orders, t);

	/* the row place_order inserts, for exa_fill_apply and exa_order_close */
	memcpy(&t->row.order_id, taker->order_id, sizeof(pg_uuid_t));
	memcpy(&t->row.account_id, taker->account_id, sizeof(pg_uuid_t));
	t->row.symbol = m->symbol;
	t->row.side = t->side;
	t->row.order_type = t->type;
	t->row.status = t->status;
	t->row.time_in_force = t->tif;
	t->row.lock_asset = taker->lock_asset;
	t->row.base_asset = taker->base_asset;
	t->row.quote_asset = taker->quote_asset;
	t->row.quantity = t->quantity;
	t->row.price = t->price;
	t->row.filled_quantity = exa_zero();
	t->row.filled_value = exa_zero();
	t->row.locked_amount = taker->locked_amount;
	t->row.maker_fee_rate = m->maker_fee_rate;
	t->row.taker_fee_rate = m->taker_fee_rate;
	t->row.created_at = t->created_at;
	t->row.tick_size = taker->tick_size;
	t->row.lot_size = taker->lot_size;

	if (t->type != EXA_TYPE_STOP)
		plan_take(plan, t);
	plan_stops(plan);
	plan_lock(plan, taker);
	return plan;
}

/* ------------------------------------------------------------------------
 * Writing the plan
 * ------------------------------------------------------------------------
 */

static void
execute_trigger(ExaCall *call, MAct *act)
{
	ExaOrder   *o = &act->a->row;
	Datum		values[2] = {UUIDPGetDatum(&o->order_id), Int64GetDatum(act->seq)};
	char		acct[EXA_UUID_STR_LEN];
	char		id[EXA_UUID_STR_LEN];

	exa_exec(&stmt_trigger, values, NULL, 0);
	exa_order_event(call, &o->order_id, exa_order_status_name(EXA_ORDER_PENDING),
				exa_order_status_name(EXA_ORDER_OPEN), NULL,
				psprintf("stop triggered at %s", exa_num_str(act->price)));
	o->status = EXA_ORDER_OPEN;
	exa_uuid_format(&o->account_id, acct);
	exa_uuid_format(&o->order_id, id);
	exa_call_key(call, "cache:order:%s", id);
	exa_call_key(call, "cache:orders:%s", acct);
	exa_call_book_keys(call, o->symbol);
}

bool
exa_matching_plan_empty(MatchPlan *plan)
{
	return plan->nacts == 0;
}

Datum
exa_matching_execute(ExaCall *call, MatchPlan *plan)
{
	int			cap = plan->nacts * 6 + 1;
	LedgerMove *moves = palloc0(sizeof(LedgerMove) * cap);
	Fill	   *fills = palloc0(sizeof(Fill) * (plan->nacts * 2 + 1));
	int			nmoves = 0;
	int			nfills = 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		dummy;
	Datum		key[1];
	int64		last_seq = 0;

	for (int i = 0; i < plan->nacts; i++)
	{
		MAct	   *act = &plan->acts[i];

		switch (act->kind)
		{
			case MACT_TRIGGER:
				execute_trigger(call, act);
				break;
			case MACT_EXPIRE:
				(void) exa_order_close(call, &act->a->row, EXA_ORDER_EXPIRED,
								   act->reason, NULL, &moves[nmoves++]);
				act->a->row.status = EXA_ORDER_EXPIRED;
				act->a->row.locked_amount = exa_zero();
				break;
			case MACT_FILL:
				{
					bool		taker_buy = act->a->side == EXA_SIDE_BUY;
					MOrder	   *legs[2];
					pg_uuid_t  *match_id = exa_new_uuid();

					legs[0] = taker_buy ? act->a : act->b;
					legs[1] = taker_buy ? act->b : act->a;

					/* the BUY leg first, as apply_match returns them */
					for (int k = 0; k < 2; k++)
					{
						Fill	   *f = &fills[nfills++];

						f->o = &legs[k]->row;
						f->quantity = act->qty;
						f->price = act->price;
						f->liquidity = exa_liquidity_name(legs[k] == act->a ?
														  EXA_LIQUIDITY_TAKER :
														  EXA_LIQUIDITY_MAKER);
						f->executed_at = now;
						f->match_id = match_id;
						f->seq = act->seq;
						exa_fill_fee(f, NULL, NULL);
						exa_fill_apply(call, f, moves, &nmoves, cap, NULL, &dummy);
					}
					last_seq = act->seq;
				}
				break;
		}
	}
	Assert(nmoves <= cap);
	exa_ledger_move(call, moves, nmoves);
	for (int i = 0; i < nfills; i++)
		exa_fill_fee_ledger(call, &fills[i]);

	if (last_seq > 0)
	{
		Datum		values[4];

		values[0] = CStringGetTextDatum(plan->m->symbol);
		values[1] = NumericGetDatum(plan->last_price);
		values[2] = TimestampTzGetDatum(now);
		values[3] = Int64GetDatum(last_seq);

		exa_exec(&stmt_market_traded, values, NULL, 0);
		exa_call_key(call, "cache:market:%s", plan->m->symbol);
	}

	key[0] = UUIDPGetDatum(&plan->taker->order_id);
	if (exa_exec(&stmt_order_row, key, NULL, 1) != 1)
		elog(ERROR, "order %s vanished", exa_uuid_str(&plan->taker->order_id));
	return exa_return_row(0);
}

/* ------------------------------------------------------------------------
 * set_market_matching
 * ------------------------------------------------------------------------
 */

static ExaStmt stmt_lock_market_status = {
	"SELECT status::pg_catalog.text FROM exchange.markets"
	" WHERE symbol OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
	1, {TEXTOID},
	NULL
};

static ExaStmt stmt_best_prices = {
	"SELECT pg_catalog.max(price) FILTER (WHERE side OPERATOR(pg_catalog.=) 'BUY'),"
	"       pg_catalog.min(price) FILTER (WHERE side OPERATOR(pg_catalog.=) 'SELL')"
	"  FROM exchange.orders"
	" WHERE symbol OPERATOR(pg_catalog.=) $1 AND status IN ('OPEN', 'PARTIAL')"
	"   AND price IS NOT NULL",
	1, {TEXTOID},
	NULL
};

static ExaStmt stmt_set_matching = {
	"UPDATE exchange.markets"
	"   SET matching = $2, self_trade = COALESCE($3, self_trade)"
	" WHERE symbol OPERATOR(pg_catalog.=) $1"
	" RETURNING *",
	3, {TEXTOID, TEXTOID, TEXTOID},
	NULL
};

/*
 * set_market_matching(symbol text, matching text, self_trade text DEFAULT
 * NULL) -> markets
 *
 * Only while the market is HALTED; to INTERNAL only when its book is not
 * crossed (55000 otherwise).  Lock order 0: the market row first.
 */
Datum
exa_set_market_matching(PG_FUNCTION_ARGS)
{
	char	   *symbol = exa_arg_text(fcinfo, 0, "symbol", false, 21);
	const char *matching = exa_arg_enum(fcinfo, 1, "matching",
										exa_matching_names, false);
	const char *self_trade = exa_arg_enum(fcinfo, 2, "self_trade",
										  exa_self_trade_names, true);
	Datum		values[3];
	char		nulls[3] = {' ', ' ', self_trade ? ' ' : 'n'};
	ExaCall		call;
	Datum		result;

	exa_require_catalog("set_market_matching");
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set_market_matching cannot run under %s",
						IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ"),
				 errdetail("It reads the book of market \"%s\" with a fresh snapshot under the market's lock.",
						   symbol),
				 errhint("Use READ COMMITTED for calls that change the book of an INTERNAL market.")));
	exa_call_begin(&call);
	values[0] = CStringGetTextDatum(symbol);
	if (exa_exec(&stmt_lock_market_status, values, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("market \"%s\" does not exist", symbol)));
	if (exa_market_status_from_text(exa_col_cstring(0, 1)) != EXA_MARKET_HALTED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("market \"%s\" must be HALTED to change its matching", symbol),
				 errhint("Halt it with exchange.set_market_status('%s', 'HALTED') first.",
						 symbol)));
	if (exa_matching_from_text(matching) == EXA_MATCHING_INTERNAL)
	{
		bool		bid_null,
					ask_null;
		Datum		bid,
					ask;

		exa_exec(&stmt_best_prices, values, NULL, 1);
		bid = exa_col(0, 1, &bid_null);
		ask = exa_col(0, 2, &ask_null);
		if (!bid_null && !ask_null &&
			exa_cmp(DatumGetNumeric(bid), DatumGetNumeric(ask)) >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the book of market \"%s\" is crossed", symbol),
					 errdetail("Best bid %s, best ask %s.",
							   exa_num_str(DatumGetNumeric(bid)),
							   exa_num_str(DatumGetNumeric(ask))),
					 errhint("Cancel or fill the crossing orders before switching to INTERNAL.")));
	}
	values[1] = CStringGetTextDatum(matching);
	values[2] = self_trade ? CStringGetTextDatum(self_trade) : (Datum) 0;
	exa_exec(&stmt_set_matching, values, nulls, 1);
	result = exa_return_row(0);
	exa_call_key(&call, "cache:market:%s", symbol);
	exa_call_book_keys(&call, symbol);
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}
