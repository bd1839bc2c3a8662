/*-------------------------------------------------------------------------
 *
 * trades.c
 *	  Fills: apply_trade (one order against an outside counterparty) and
 *	  apply_match (a BUY and a SELL order against each other, atomically).
 *
 * Locks, in the global order (ledger.h): (1) the account row of every order
 * FOR SHARE, ascending account_id; (2) the order rows FOR UPDATE, ascending
 * order_id, so crossing matches never deadlock; (4) balance rows through
 * one exa_ledger_move() of all the call's moves.  Settlement is allowed
 * whatever the account or market status: the execution already happened.
 *
 * Arithmetic (README "Order lifecycle and arithmetic"), every amount a
 * multiple of 1e-8:
 *	 a fill's price is a multiple of the market's tick_size and its quantity
 *	 of its lot_size;
 *	 notional = trunc8(q x p), never 0: the buyer pays and the seller
 *	 receives it;
 *	 a BUY order locks ceil8(remaining x limit): a fill releases
 *	 old_locked - new_locked, spends notional and refunds the rest;
 *	 a SELL order locks its remaining base quantity;
 *	 average_price = round_half_even8(sum(q x p) / sum(q)), kept exact in
 *	 orders.filled_value;
 *	 fee: explicit, or ceil8(proceeds x maker/taker rate) when NULL with a
 *	 liquidity; taken from the proceeds when in the received asset, else
 *	 from the available balance of its asset (LX001 on a shortage).
 *
 * Journal: per fill, one TRADE row per asset the fill moves and one FEE row
 * for a non-zero fee (also written to fee_ledger).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"

#include "args.h"
#include "catalog_version.h"
#include "exchange_adapter.h"
#include "ledger.h"
#include "orders.h"
#include "matching.h"
#include "stmt.h"
#include "trades.h"

PG_FUNCTION_INFO_V1(exa_apply_trade);
PG_FUNCTION_INFO_V1(exa_apply_match);


#define TRADE_REF_MAXLEN 128

static ExaStmt stmt_insert_trade = {
	"INSERT INTO exchange.trades"
	" (trade_id, order_id, account_id, symbol, side, quantity, price, fee,"
	"  fee_currency, executed_at, trade_ref, liquidity, match_id)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
	" RETURNING *",
	13, {UUIDOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID,
		NUMERICOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, UUIDOID},
	NULL
};

/* The same with the market's trade_seq: INTERNAL executions (1.1 catalog). */
static ExaStmt stmt_insert_trade_seq = {
	"INSERT INTO exchange.trades"
	" (trade_id, order_id, account_id, symbol, side, quantity, price, fee,"
	"  fee_currency, executed_at, trade_ref, liquidity, match_id, seq)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
	" RETURNING *",
	14, {UUIDOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID,
		NUMERICOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, UUIDOID, INT8OID},
	NULL
};

static ExaStmt stmt_fill_order = {
	"UPDATE exchange.orders"
	"   SET filled_quantity = $2, filled_value = $3, average_price = $4,"
	"       status = $5, locked_amount = $6, updated_at = pg_catalog.now(),"
	"       filled_at = CASE WHEN $5 OPERATOR(pg_catalog.=) 'FILLED'"
	"                        THEN pg_catalog.now() ELSE filled_at END"
	" WHERE order_id OPERATOR(pg_catalog.=) $1",
	6, {UUIDOID, NUMERICOID, NUMERICOID, NUMERICOID, TEXTOID, NUMERICOID},
	NULL
};

static ExaStmt stmt_insert_fee = {
	"INSERT INTO exchange.fee_ledger (trade_id, market, asset, amount)"
	" VALUES ($1, $2, $3, $4)",
	4, {UUIDOID, TEXTOID, TEXTOID, NUMERICOID},
	NULL
};

static ExaStmt stmt_trade_by_ref = {
	"SELECT * FROM exchange.trades"
	" WHERE order_id OPERATOR(pg_catalog.=) $1"
	"   AND trade_ref OPERATOR(pg_catalog.=) $2",
	2, {UUIDOID, TEXTOID},
	NULL
};

static ExaStmt stmt_order_accounts = {
	"SELECT order_id, account_id FROM exchange.orders"
	" WHERE order_id OPERATOR(pg_catalog.=) ANY (ARRAY[$1, $2])"
	" ORDER BY order_id",		/* a stable answer for exa_exec_recheck() */
	2, {UUIDOID, UUIDOID},
	NULL
};

/* ------------------------------------------------------------------------
 * A fill batch's trade rows (exa_trades_defer)
 * ------------------------------------------------------------------------
 */

#define TRADE_NCOLS 13			/* stmt_insert_trade's columns */

typedef struct TradeBuf
{
	int			n;				/* trade rows not yet written */
	Datum	   *col[TRADE_NCOLS];
	bool	   *null[TRADE_NCOLS];
	int		   *slot;			/* each row's place among the results */
	int			nfee;			/* fee_ledger rows, after their trades */
	Datum	   *fee[4];
	int			nres;			/* the result rows, in order */
	Datum	   *res;
	HTAB	   *refs;			/* (order_id, trade_ref) of the rows */
	int			max;
	List	   *markets;		/* ExaOrder: the market columns read once */
} TradeBuf;

typedef struct TradeRefKey
{
	pg_uuid_t	order_id;
	char		trade_ref[TRADE_REF_MAXLEN + 1];
} TradeRefKey;

static const Oid trade_col_types[TRADE_NCOLS] = {
	UUIDOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID,
	NUMERICOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, UUIDOID
};

/* stmt_insert_trade, one row per element of the arrays, in order. */
static ExaStmt stmt_insert_trade_rows = {
	"INSERT INTO exchange.trades"
	" (trade_id, order_id, account_id, symbol, side, quantity, price, fee,"
	"  fee_currency, executed_at, trade_ref, liquidity, match_id)"
	" SELECT u.c1, u.c2, u.c3, u.c4, u.c5, u.c6, u.c7, u.c8, u.c9,"
	"        u.c10, u.c11, u.c12, u.c13"
	"   FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]),"
	"                   pg_catalog.unnest($2::pg_catalog.uuid[]),"
	"                   pg_catalog.unnest($3::pg_catalog.uuid[]),"
	"                   pg_catalog.unnest($4::pg_catalog.text[]),"
	"                   pg_catalog.unnest($5::pg_catalog.text[]),"
	"                   pg_catalog.unnest($6::pg_catalog.numeric[]),"
	"                   pg_catalog.unnest($7::pg_catalog.numeric[]),"
	"                   pg_catalog.unnest($8::pg_catalog.numeric[]),"
	"                   pg_catalog.unnest($9::pg_catalog.text[]),"
	"                   pg_catalog.unnest($10::pg_catalog.timestamptz[]),"
	"                   pg_catalog.unnest($11::pg_catalog.text[]),"
	"                   pg_catalog.unnest($12::pg_catalog.text[]),"
	"                   pg_catalog.unnest($13::pg_catalog.uuid[]))"
	"        WITH ORDINALITY AS u (c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11,"
	"                              c12, c13, n)"
	"  ORDER BY u.n"
	" RETURNING *",
	13, {UUIDARRAYOID, UUIDARRAYOID, UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		NUMERICARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID, TEXTARRAYOID,
	TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID, UUIDARRAYOID},
	NULL
};

static ExaStmt stmt_insert_fee_rows = {
	"INSERT INTO exchange.fee_ledger (trade_id, market, asset, amount)"
	" SELECT u.t, u.m, u.a, u.x"
	"   FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]),"
	"                   pg_catalog.unnest($2::pg_catalog.text[]),"
	"                   pg_catalog.unnest($3::pg_catalog.text[]),"
	"                   pg_catalog.unnest($4::pg_catalog.numeric[]))"
	"        WITH ORDINALITY AS u (t, m, a, x, n)"
	"  ORDER BY u.n",
	4, {UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID},
	NULL
};

static HTAB *
trade_refs_create(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(TradeRefKey);
	ctl.entrysize = sizeof(TradeRefKey);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("fill batch trade_refs", 64, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
trade_ref_key(TradeRefKey *key, const pg_uuid_t *order_id, const char *trade_ref)
{
	memset(key, 0, sizeof(TradeRefKey));
	memcpy(&key->order_id, order_id, sizeof(pg_uuid_t));
	strlcpy(key->trade_ref, trade_ref, sizeof(key->trade_ref));
}

void
exa_trades_defer(ExaCall *call, int max_rows)
{
	TradeBuf   *tb = palloc0(sizeof(TradeBuf));

	tb->max = max_rows;
	for (int c = 0; c < TRADE_NCOLS; c++)
	{
		tb->col[c] = palloc(sizeof(Datum) * max_rows);
		tb->null[c] = palloc(sizeof(bool) * max_rows);
	}
	tb->slot = palloc(sizeof(int) * max_rows);
	for (int c = 0; c < 4; c++)
		tb->fee[c] = palloc(sizeof(Datum) * max_rows);
	tb->res = palloc0(sizeof(Datum) * max_rows);
	tb->refs = trade_refs_create();
	call->trades = tb;
}

/* Keep a result row (a retry's stored trade), in order. */
static void
trades_result(TradeBuf *tb, Datum row)
{
	if (tb->nres >= tb->max)
		elog(ERROR, "fill batch has more than %d result rows", tb->max);
	tb->res[tb->nres++] = row;
}

/* Keep the trade row of values (stmt_insert_trade's) and its result slot. */
static void
trades_add(TradeBuf *tb, Datum *values, const char *nulls, const char *trade_ref)
{
	int			k;

	if (tb->nres >= tb->max)	/* each kept row has a result slot */
		elog(ERROR, "fill batch has more than %d result rows", tb->max);
	k = tb->n++;

	for (int c = 0; c < TRADE_NCOLS; c++)
	{
		tb->null[c][k] = nulls[c] == 'n';
		tb->col[c][k] = values[c];
		/* the ids point into the item's Fill and ExaOrder: copied */
		if (trade_col_types[c] == UUIDOID && nulls[c] != 'n')
		{
			pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

			memcpy(id, DatumGetUUIDP(values[c]), sizeof(pg_uuid_t));
			tb->col[c][k] = UUIDPGetDatum(id);
		}
	}
	tb->slot[k] = tb->nres;
	trades_result(tb, (Datum) 0);
	if (trade_ref != NULL)
	{
		TradeRefKey key;

		trade_ref_key(&key, DatumGetUUIDP(values[1]), trade_ref);
		(void) hash_search(tb->refs, &key, HASH_ENTER, NULL);
	}
}

/* Write the kept trade rows, then their fee rows. */
static void
trades_flush(TradeBuf *tb)
{
	Datum		values[TRADE_NCOLS];

	if (tb->n > 0)
	{
		for (int c = 0; c < TRADE_NCOLS; c++)
			values[c] = exa_datum_array(tb->col[c], tb->null[c], tb->n, trade_col_types[c]);
		if (exa_exec_vouched(&stmt_insert_trade_rows, values, NULL, 0) != (uint64) tb->n)
			elog(ERROR, "a trade row of the batch was not inserted");
		for (int k = 0; k < tb->n; k++)
			tb->res[tb->slot[k]] = exa_return_row(k);
		tb->n = 0;
		hash_destroy(tb->refs);
		tb->refs = trade_refs_create();
	}
	if (tb->nfee > 0)
	{
		values[0] = exa_datum_array(tb->fee[0], NULL, tb->nfee, UUIDOID);
		values[1] = exa_datum_array(tb->fee[1], NULL, tb->nfee, TEXTOID);
		values[2] = exa_datum_array(tb->fee[2], NULL, tb->nfee, TEXTOID);
		values[3] = exa_datum_array(tb->fee[3], NULL, tb->nfee, NUMERICOID);
		exa_exec_vouched(&stmt_insert_fee_rows, values, NULL, 0);
		tb->nfee = 0;
	}
}

/* Before a retry reads (order_id, trade_ref): the kept rows, if it is one. */
static void
trades_flush_ref(ExaCall *call, const pg_uuid_t *order_id, const char *trade_ref)
{
	TradeRefKey key;

	if (call->trades == NULL)
		return;
	trade_ref_key(&key, order_id, trade_ref);
	if (hash_search(call->trades->refs, &key, HASH_FIND, NULL) != NULL)
		trades_flush(call->trades);
}

int
exa_trades_results(ExaCall *call, Datum **rows)
{
	TradeBuf   *tb = call->trades;
	int			n = tb->nres;

	trades_flush(tb);
	*rows = tb->res;
	tb->nres = 0;
	return n;
}

/*
 * apply_trade's account lock (1.1 catalog): the order's account row FOR
 * SHARE, found only when the order exists and its market is not INTERNAL.
 * It answers exa_matching_refuse_internal_order()'s question in the
 * statement that locks, and locks nothing when the answer is LX012.
 */
static ExaStmt stmt_trade_lock_account = {
	"SELECT a.account_id, a.status::pg_catalog.text, a.kyc_status::pg_catalog.text"
	"  FROM exchange.accounts a"
	" WHERE a.account_id OPERATOR(pg_catalog.=)"
	"       (SELECT o.account_id FROM exchange.orders o"
	"          JOIN exchange.markets m ON m.symbol OPERATOR(pg_catalog.=) o.symbol"
	"         WHERE o.order_id OPERATOR(pg_catalog.=) $1"
	"           AND m.matching OPERATOR(pg_catalog.<>) 'INTERNAL')"
	"   FOR SHARE OF a",
	1, {UUIDOID},
	NULL
};

/*
 * Refuse an order of an INTERNAL market (LX012) before any lock, then lock
 * its account (lock order 1): one statement on the 1.1 catalog when the
 * order exists and its market is EXTERNAL, the call's usual case.
 * Otherwise the two steps run apart, as before the merge, and give the
 * refusal (LX012, nothing locked), the missing order (LX003, or 40001 under
 * a transaction snapshot), or, should the market have switched back to
 * EXTERNAL in between, the lock.
 */
static void
trade_lock_account(pg_uuid_t *order_id, const char *what, ExaAccount *acct)
{
	Datum		key[1] = {UUIDPGetDatum(order_id)};

	if (exa_catalog_is_1_1() &&
		exa_exec(&stmt_trade_lock_account, key, NULL, 1) == 1)
	{
		memcpy(&acct->account_id, DatumGetUUIDP(exa_col_notnull(0, 1)),
			   sizeof(pg_uuid_t));
		acct->status = exa_account_status_from_text(exa_col_cstring(0, 2));
		acct->kyc_status = exa_kyc_status_from_text(exa_col_cstring(0, 3));
		return;
	}
	exa_matching_refuse_internal_order(order_id, what);
	exa_order_lock_account(order_id, acct);
}

/*
 * The market of apply_trade's order or apply_match's two, read after the
 * order locks (1.1 catalog): its mode for the LX012 re-check and the
 * columns a fill needs, which the order locks then need not join.  FOR KEY
 * SHARE: the lock the trade's trades_symbol_fkey check would take, which
 * its INSERT then skips (check_cache.c).
 */
static ExaStmt stmt_trade_market = {
	"SELECT matching::pg_catalog.text, base_asset::pg_catalog.text,"
	"       quote_asset::pg_catalog.text, maker_fee_rate, taker_fee_rate,"
	"       tick_size, lot_size"
	"  FROM exchange.markets WHERE symbol OPERATOR(pg_catalog.=) $1"
	"   FOR KEY SHARE",
	1, {TEXTOID},
	NULL
};

/*
 * After the order locks (1.1 catalog), with a fresh snapshot as before:
 * refuse a market that became INTERNAL meanwhile (LX012), else read into
 * each of the n orders (of that one market) its columns for the fill:
 * assets, fee rates, tick and lot sizes, which no call changes once the
 * market exists.  The order locks (exa_order_lock_row) then need not join
 * the market.
 */
static void
trade_market(ExaOrder **orders, int n, const char *what)
{
	const char *symbol = orders[0]->symbol;
	Datum		key[1] = {CStringGetTextDatum(symbol)};

	if (exa_exec(&stmt_trade_market, key, NULL, 1) != 1)
		elog(ERROR, "market \"%s\" of order %s does not exist", symbol,
			 exa_uuid_str(&orders[0]->order_id));
	if (exa_matching_from_text(exa_col_cstring(0, 1)) == EXA_MATCHING_INTERNAL)
		exa_matching_raise_internal(symbol, what);
	exa_order_read_market(orders[0], 2);
	for (int i = 1; i < n; i++)
		exa_order_copy_market(orders[i], orders[0]);
	SPI_freetuptable(SPI_tuptable);	/* as exa_order_lock(): batch calls */
}

/*
 * trade_market() for the items of a fill batch whose orders the lock pass
 * locked: each market is checked and read once, after every order of the
 * batch is locked, which is when a single call would check it.
 */
static void
trade_market_once(ExaCall *call, ExaOrder **orders, int n, const char *what)
{
	ListCell   *lc;
	ExaOrder   *m = NULL;

	foreach(lc, call->trades->markets)
	{
		if (strcmp(((ExaOrder *) lfirst(lc))->symbol, orders[0]->symbol) == 0)
		{
			m = (ExaOrder *) lfirst(lc);
			break;
		}
	}
	if (m == NULL)
	{
		trade_market(orders, 1, what);
		m = palloc(sizeof(ExaOrder));
		memcpy(m, orders[0], sizeof(ExaOrder));
		m->symbol = pstrdup(orders[0]->symbol);
		call->trades->markets = lappend(call->trades->markets, m);
	}
	for (int i = 0; i < n; i++)
		exa_order_copy_market(orders[i], m);
}

/*
 * Lock order 2: the order row FOR UPDATE; then the LX012 re-check, which
 * also reads the market's columns of the fill (trade_market; once per
 * market in a fill batch, for the orders its lock pass locked).  A 1.0
 * catalog has no INTERNAL market and no matching column: the order is read
 * with its market by exa_order_lock().
 */
static void
trade_lock_order(ExaCall *call, pg_uuid_t *order_id, bool prelocked,
				 const char *what, ExaOrder *o)
{
	if (!exa_catalog_is_1_1())
	{
		exa_order_lock(order_id, o);
		return;
	}
	exa_order_lock_row(order_id, o);
	if (prelocked && call->trades != NULL)
		trade_market_once(call, &o, 1, what);
	else
		trade_market(&o, 1, what);
}

/* The asset a fill pays in and the one it receives. */
static const char *
fill_received_asset(const ExaOrder *o)
{
	return exa_order_is_buy(o) ? o->base_asset : o->quote_asset;
}

/*
 * Effective fee and currency of a fill (README "Order lifecycle and arithmetic", fee).  A computed fee is
 * ceil8(amount x rate) of the fill's amount in the fee's currency: the
 * quantity when it is the base asset, the notional when it is the quote
 * asset; in any other asset it cannot be computed and must be given.
 */
void
exa_fill_fee(Fill *f, Numeric fee_arg, char *fee_currency_arg)
{
	ExaOrder   *o = f->o;
	const char *received = fill_received_asset(o);
	Numeric		proceeds;

	f->notional = exa_trunc8(exa_mul(f->quantity, f->price));
	proceeds = exa_order_is_buy(o) ? f->quantity : f->notional;
	f->fee_currency = fee_currency_arg ? fee_currency_arg : (char *) received;
	if (fee_arg != NULL)
	{
		f->fee = fee_arg;
		if (strcmp(f->fee_currency, received) == 0 && exa_cmp(f->fee, proceeds) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("fee %s %s exceeds the fill's proceeds", exa_num_str(f->fee),
							f->fee_currency),
					 errdetail("The fill of order %s receives %s %s.",
							   exa_uuid_str(&o->order_id), exa_num_str(proceeds), received),
					 errhint("A fee in the received asset is taken from the proceeds.")));
	}
	else if (f->liquidity != NULL)
	{
		Numeric		rate =
			exa_liquidity_from_text(f->liquidity) == EXA_LIQUIDITY_MAKER ?
			o->maker_fee_rate : o->taker_fee_rate;
		Numeric		base;

		if (strcmp(f->fee_currency, o->base_asset) == 0)
			base = f->quantity;
		else if (strcmp(f->fee_currency, o->quote_asset) == 0)
			base = f->notional;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a fee in %s cannot be computed for market %s",
							f->fee_currency, o->symbol),
					 errdetail("A computed fee is the %s rate of the fill's quantity in %s or of its notional in %s.",
							   f->liquidity, o->base_asset, o->quote_asset),
					 errhint("Pass the fee explicitly to charge it in another asset.")));
		f->fee = exa_ceil8(exa_mul(base, rate));
	}
	else
		f->fee = exa_zero();
}

/*
 * Refusals of a fill against a locked order: LX002, LX007, LX008, LX006;
 * then 22023 for a price off the market's tick, a quantity off its lot, or
 * a notional that truncates to 0 (the buyer would receive the quantity for
 * nothing).  Called for every leg before anything is written.
 */
static void
fill_check(const Fill *f)
{
	ExaOrder   *o = f->o;
	char	   *id = exa_uuid_str(&o->order_id);
	Numeric		remaining = exa_sub(o->quantity, o->filled_quantity);

	if (!exa_order_status_fillable(o->status))
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("order %s cannot be filled in status %s", id,
						exa_order_status_name(o->status)),
				 o->status == EXA_ORDER_PENDING ?
				 errhint("A STOP order fills once exchange.trigger_stop_orders() has opened it.") :
				 errdetail("Only OPEN and PARTIAL orders take fills.")));
	if (exa_cmp(f->quantity, remaining) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_OVERFILL),
				 errmsg("fill of %s overfills order %s", exa_num_str(f->quantity), id),
				 errdetail("The order has %s of %s left.", exa_num_str(remaining),
						   exa_num_str(o->quantity))));
	if (o->time_in_force == EXA_TIF_FOK && exa_cmp(f->quantity, remaining) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_FILL_OR_KILL_REFUSED),
				 errmsg("fill-or-kill order %s must be filled completely", id),
				 errdetail("The fill is %s; the order has %s left.",
						   exa_num_str(f->quantity), exa_num_str(remaining)),
				 errhint("Expire the order with exchange.expire_order() if it cannot be filled.")));
	if (o->price != NULL)
	{
		int			c = exa_cmp(f->price, o->price);

		if ((exa_order_is_buy(o) && c > 0) || (!exa_order_is_buy(o) && c < 0))
			ereport(ERROR,
					(errcode(ERRCODE_EXA_PRICE_OUTSIDE_LIMIT),
					 errmsg("fill price %s is outside the limit of order %s",
							exa_num_str(f->price), id),
					 exa_order_is_buy(o) ?
					 errdetail("A BUY order with limit %s fills at or below that.",
							   exa_num_str(o->price)) :
					 errdetail("A SELL order with limit %s fills at or above that.",
							   exa_num_str(o->price))));
	}

	/* the arithmetic of place_order's TICK_SIZE and LOT_SIZE refusals */
	if (!exa_is_multiple(f->price, o->tick_size))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fill price %s is not a multiple of the tick size of market %s",
						exa_num_str(f->price), o->symbol),
				 errdetail("The tick size is %s.", exa_num_str(o->tick_size))));
	if (!exa_is_multiple(f->quantity, o->lot_size))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fill quantity %s is not a multiple of the lot size of market %s",
						exa_num_str(f->quantity), o->symbol),
				 errdetail("The lot size is %s.", exa_num_str(o->lot_size))));
	if (exa_is_zero(f->notional))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fill of %s at %s has no value", exa_num_str(f->quantity),
						exa_num_str(f->price)),
				 exa_order_is_buy(o) ?
				 errdetail("Its notional trunc8(quantity x price) is 0: BUY order %s would receive the quantity for nothing.", id) :
				 errdetail("Its notional trunc8(quantity x price) is 0: SELL order %s would give the quantity away for nothing.", id),
				 errhint("Fill a larger quantity.")));
}

/*
 * The next of the maxmoves entries of moves[], zeroed and filled with what
 * every move of a fill shares; refuses to write past the end of moves[].
 */
static LedgerMove *
fill_next_move(Fill *f, const char *kind, const char *asset,
			   LedgerMove *moves, int *nmoves, int maxmoves)
{
	LedgerMove *m;

	if (*nmoves >= maxmoves)
		elog(ERROR, "a call of at most %d balance moves needs more", maxmoves);
	m = &moves[(*nmoves)++];
	memset(m, 0, sizeof(LedgerMove));
	m->account_id = &f->o->account_id;
	m->asset = asset;
	m->kind = kind;
	m->order_id = &f->o->order_id;
	m->trade_id = &f->trade_id;
	return m;
}

/*
 * Write one fill: the trade row (to rsinfo, or as *result), the order row,
 * its event, the stale keys; append its balance moves (at most
 * FILL_MAX_MOVES) to moves[], which has room for maxmoves.
 */
void
exa_fill_apply(ExaCall *call, Fill *f, LedgerMove *moves, int *nmoves,
		   int maxmoves, ReturnSetInfo *rsinfo, Datum *result)
{
	ExaOrder   *o = f->o;
	bool		buy = exa_order_is_buy(o);
	Numeric		filled = exa_add(o->filled_quantity, f->quantity);
	Numeric		value = exa_add(o->filled_value, exa_mul(f->quantity, f->price));
	bool		complete = exa_cmp(filled, o->quantity) == 0;
	const char *status = exa_order_status_name(complete ? EXA_ORDER_FILLED :
											   EXA_ORDER_PARTIAL);
	Numeric		new_locked;
	Numeric		release;
	char	   *acct = exa_uuid_str(&o->account_id);
	Datum		values[14];
	char		nulls[14];
	LedgerMove *m;

	if (complete)
		new_locked = exa_zero();
	else if (buy)
		new_locked = exa_ceil8(exa_mul(exa_sub(o->quantity, filled), o->price));
	else
		new_locked = exa_sub(o->locked_amount, f->quantity);
	release = exa_sub(o->locked_amount, new_locked);

	memcpy(&f->trade_id, exa_new_uuid(), sizeof(pg_uuid_t));
	memset(nulls, ' ', sizeof(nulls));
	values[0] = UUIDPGetDatum(&f->trade_id);
	values[1] = UUIDPGetDatum(&o->order_id);
	values[2] = UUIDPGetDatum(&o->account_id);
	values[3] = CStringGetTextDatum(o->symbol);
	values[4] = CStringGetTextDatum(exa_order_side_name(o->side));
	values[5] = NumericGetDatum(f->quantity);
	values[6] = NumericGetDatum(f->price);
	values[7] = NumericGetDatum(f->fee);
	values[8] = CStringGetTextDatum(f->fee_currency);
	values[9] = TimestampTzGetDatum(f->executed_at);
	values[10] = f->trade_ref ? CStringGetTextDatum(f->trade_ref) : (Datum) 0;
	nulls[10] = f->trade_ref ? ' ' : 'n';
	values[11] = f->liquidity ? CStringGetTextDatum(f->liquidity) : (Datum) 0;
	nulls[11] = f->liquidity ? ' ' : 'n';
	values[12] = f->match_id ? UUIDPGetDatum(f->match_id) : (Datum) 0;
	nulls[12] = f->match_id ? ' ' : 'n';
	values[13] = Int64GetDatum(f->seq);
	if (call->trades != NULL && f->seq == 0)
		trades_add(call->trades, values, nulls, f->trade_ref);
	else
		exa_exec_vouched(f->seq > 0 ? &stmt_insert_trade_seq : &stmt_insert_trade, values, nulls, 1);

	/*
	 * The trade feed (README "Trade feed"): an execution is one trade
	 * without a match, or one match, named once by its TAKER leg (a match
	 * always has one; both legs carry the same price, quantity and time).
	 */
	if (f->match_id == NULL ||
		(f->liquidity != NULL &&
		 exa_liquidity_from_text(f->liquidity) == EXA_LIQUIDITY_TAKER))
		exa_call_execution(call, &f->trade_id);
	if (call->trades != NULL && f->seq == 0)
		;						/* written, and returned, by the batch */
	else if (rsinfo != NULL)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[0]);
	else
		*result = exa_return_row(0);

	values[0] = UUIDPGetDatum(&o->order_id);
	values[1] = NumericGetDatum(filled);
	values[2] = NumericGetDatum(value);
	values[3] = NumericGetDatum(exa_div_half_even8(value, filled));
	values[4] = CStringGetTextDatum(status);
	values[5] = NumericGetDatum(new_locked);
	exa_exec(&stmt_fill_order, values, NULL, 0);

	exa_order_event(call, &o->order_id, exa_order_status_name(o->status), status,
					f->quantity, f->trade_ref);

	/* What the order pays (out of its lock), then what it receives. */
	m = fill_next_move(f, "TRADE", o->lock_asset, moves, nmoves, maxmoves);
	m->delta_locked = exa_neg(release);
	m->delta_available = buy ? exa_sub(release, f->notional) : NULL;

	m = fill_next_move(f, "TRADE", fill_received_asset(o), moves, nmoves, maxmoves);
	m->delta_available = buy ? f->quantity : f->notional;

	/*
	 * The fee after the proceeds: in the received asset it is taken from
	 * them, and exa_ledger_move() applies both with one UPDATE of the row.
	 */
	if (!exa_is_zero(f->fee))
	{
		m = fill_next_move(f, "FEE", f->fee_currency, moves, nmoves, maxmoves);
		m->delta_available = exa_neg(f->fee);
	}

	exa_call_key(call, "cache:order:%s", exa_uuid_str(&o->order_id));
	exa_call_key(call, "cache:orders:%s", acct);
	exa_call_key(call, "cache:trades:%s", acct);
	exa_call_key(call, "cache:balances:%s", acct);
	exa_call_book_keys(call, o->symbol);

	/* the order as it now is, for a caller that fills it again */
	o->filled_quantity = filled;
	o->filled_value = value;
	o->locked_amount = new_locked;
	o->status = complete ? EXA_ORDER_FILLED : EXA_ORDER_PARTIAL;
}

/* After the moves: the exchange's revenue. */
void
exa_fill_fee_ledger(ExaCall *call, Fill *f)
{
	Datum		values[4];

	if (exa_is_zero(f->fee))
		return;
	if (call->trades != NULL && f->seq == 0)
	{
		TradeBuf   *tb = call->trades;
		pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

		memcpy(id, &f->trade_id, sizeof(pg_uuid_t));
		tb->fee[0][tb->nfee] = UUIDPGetDatum(id);
		tb->fee[1][tb->nfee] = CStringGetTextDatum(f->o->symbol);
		tb->fee[2][tb->nfee] = CStringGetTextDatum(f->fee_currency);
		tb->fee[3][tb->nfee] = NumericGetDatum(f->fee);
		tb->nfee++;
		return;
	}
	values[0] = UUIDPGetDatum(&f->trade_id);
	values[1] = CStringGetTextDatum(f->o->symbol);
	values[2] = CStringGetTextDatum(f->fee_currency);
	values[3] = NumericGetDatum(f->fee);
	exa_exec_vouched(&stmt_insert_fee, values, NULL, 0);
}

/*
 * A stored trade found by (order_id, trade_ref) is the same fill when its
 * quantity, price, fee, fee_currency and liquidity equal the call's
 * effective values.  Returns a description of the differences, or NULL.
 */
static char *
fill_retry_diff(uint64 row, const Fill *f)
{
	bool		isnull;
	Numeric		s_qty = DatumGetNumeric(exa_col_named(row, "quantity", &isnull));
	Numeric		s_price = DatumGetNumeric(exa_col_named(row, "price", &isnull));
	Numeric		s_fee = DatumGetNumeric(exa_col_named(row, "fee", &isnull));
	char	   *s_liq = exa_col_named_text(row, "liquidity");
	char	   *s_ccy = exa_col_named_text(row, "fee_currency");
	StringInfoData diff;

	initStringInfo(&diff);
	exa_diff_num(&diff, "quantity", s_qty, f->quantity);
	exa_diff_num(&diff, "price", s_price, f->price);
	exa_diff_num(&diff, "fee", s_fee, f->fee);
	exa_diff_text(&diff, "fee_currency", s_ccy, f->fee_currency);
	exa_diff_text(&diff, "liquidity", s_liq, f->liquidity);
	if (diff.len == 0)
		return NULL;
	return diff.data;
}

/* Why a trade_ref retry is not the stored fill (LX009). */
typedef enum TradeRefConflict
{
	TRADE_REF_VALUES,			/* diff lists the columns that differ */
	TRADE_REF_NO_MATCH_ID,		/* the stored trade came from apply_trade */
	TRADE_REF_NO_SELL_LEG,		/* the BUY leg exists, the SELL leg does not */
	TRADE_REF_OTHER_MATCH,		/* the two legs belong to other matches */
} TradeRefConflict;

static void
trade_ref_conflict(const char *trade_ref, pg_uuid_t *order_id,
				   TradeRefConflict why, const char *diff)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXA_IDEMPOTENCY_CONFLICT),
			 errmsg("trade_ref \"%s\" was already used for another fill of order %s",
					trade_ref, exa_uuid_str(order_id)),
			 why == TRADE_REF_VALUES ?
			 errdetail("The stored trade has other values (stored -> given): %s.", diff) :
			 why == TRADE_REF_NO_MATCH_ID ?
			 errdetail("The stored trade has no match_id: it was applied by apply_trade.") :
			 why == TRADE_REF_NO_SELL_LEG ?
			 errdetail("The stored trade has no SELL leg: the order was not matched with this SELL order under this trade_ref.") :
			 errdetail("The stored trade has another match_id: the two orders were not matched together under this trade_ref."),
			 errhint("Use a new trade_ref for a new fill.")));
}

static TimestampTz
arg_executed_at(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return GetCurrentTransactionStartTimestamp();
	return PG_GETARG_TIMESTAMPTZ(argno);
}

/*
 * apply_trade's arguments, checked: raises on a malformed call before
 * anything is locked.  fcinfo holds them in apply_trade's order; the batch
 * call (batch.c) builds one per item.
 */
void
exa_trade_parse(FunctionCallInfo fcinfo, ExaTradeArgs *a)
{
	a->prelocked = false;
	a->order_id = exa_arg_uuid(fcinfo, 0, "order_id");
	a->quantity = exa_arg_amount(fcinfo, 1, "quantity", EXA_AMOUNT_POSITIVE);
	a->price = exa_arg_amount(fcinfo, 2, "price", EXA_AMOUNT_POSITIVE);
	a->fee = exa_arg_amount(fcinfo, 3, "fee", EXA_AMOUNT_NULL_OK);
	a->fee_currency = PG_ARGISNULL(4) ? NULL : exa_arg_asset(fcinfo, 4, "fee_currency");
	a->executed_at = arg_executed_at(fcinfo, 5);
	a->trade_ref = exa_arg_text(fcinfo, 6, "trade_ref", true, TRADE_REF_MAXLEN);
	a->liquidity = exa_arg_enum(fcinfo, 7, "liquidity", exa_liquidity_names, true);
}

/*
 * apply_trade(order_id uuid, quantity numeric, price numeric,
 *			   fee numeric, fee_currency text, executed_at timestamptz,
 *			   trade_ref text, liquidity text) -> trades
 */
Datum
exa_apply_trade(PG_FUNCTION_ARGS)
{
	ExaTradeArgs a;
	ExaCall		call;
	Datum		result;

	exa_trade_parse(fcinfo, &a);
	exa_call_begin(&call);
	result = exa_apply_trade_call(&call, &a);
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}

/* One apply_trade inside the caller's ExaCall: returns the trade row. */
Datum
exa_apply_trade_call(ExaCall *call, ExaTradeArgs *a)
{
	pg_uuid_t  *order_id = a->order_id;
	char	   *trade_ref = a->trade_ref;
	ExaAccount	acct;
	ExaOrder	o;
	Fill		f = {0};
	LedgerMove	moves[FILL_MAX_MOVES];
	int			nmoves = 0;
	Datum		result = (Datum) 0;

	if (!a->prelocked)			/* else a batch holds the account row */
		trade_lock_account(order_id, "apply_trade", &acct);
	trade_lock_order(call, order_id, a->prelocked, "apply_trade", &o);

	f.o = &o;
	f.quantity = a->quantity;
	f.price = a->price;
	f.liquidity = a->liquidity;
	f.executed_at = a->executed_at;
	f.trade_ref = trade_ref;
	exa_fill_fee(&f, a->fee, a->fee_currency);

	if (trade_ref != NULL)
	{
		Datum		key[2] = {UUIDPGetDatum(order_id), CStringGetTextDatum(trade_ref)};

		/*
		 * The order lock serialises retries: a committed first fill is seen
		 * (under REPEATABLE READ the lock raised 40001 instead, since every
		 * fill updates its order row).
		 */
		trades_flush_ref(call, order_id, trade_ref);
		if (exa_exec(&stmt_trade_by_ref, key, NULL, 1) == 1)
		{
			char	   *diff = fill_retry_diff(0, &f);

			if (diff != NULL)
				trade_ref_conflict(trade_ref, order_id, TRADE_REF_VALUES, diff);
			if (call->trades == NULL)
				return exa_return_row(0);
			trades_result(call->trades, exa_return_row(0));
			return (Datum) 0;
		}
	}

	fill_check(&f);
	exa_fill_apply(call, &f, moves, &nmoves, lengthof(moves), NULL, &result);
	exa_ledger_move(call, moves, nmoves);
	exa_fill_fee_ledger(call, &f);
	return result;
}

/*
 * apply_match, step 1a: lock both accounts (ascending account_id; the
 * owners are read first without a lock).
 */
static void
match_lock_accounts(pg_uuid_t *buy_id, pg_uuid_t *sell_id)
{
	Datum		ids[2] = {UUIDPGetDatum(buy_id), UUIDPGetDatum(sell_id)};
	pg_uuid_t	acct_of[2];
	ExaAccount	acct;
	int			c;

	if (exa_exec_recheck(&stmt_order_accounts, ids, NULL, 0, "order %s or %s",
						 exa_uuid_str(buy_id), exa_uuid_str(sell_id)) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("order %s or %s does not exist",
						exa_uuid_str(buy_id), exa_uuid_str(sell_id))));
	for (int i = 0; i < 2; i++)
	{
		int			k = exa_uuid_cmp(DatumGetUUIDP(exa_col_notnull(i, 1)), buy_id) == 0 ? 0 : 1;

		memcpy(&acct_of[k], DatumGetUUIDP(exa_col_notnull(i, 2)), sizeof(pg_uuid_t));
	}
	c = exa_uuid_cmp(&acct_of[0], &acct_of[1]);
	exa_ledger_lock_account(c <= 0 ? &acct_of[0] : &acct_of[1], false, &acct);
	if (c != 0)
		exa_ledger_lock_account(c < 0 ? &acct_of[1] : &acct_of[0], false, &acct);
}

/*
 * apply_match, step 1: lock both accounts (unless a batch holds them) and
 * both orders (ascending order_id), then check that they are a BUY and a
 * SELL of one market.
 */
static void
match_lock(pg_uuid_t *buy_id, pg_uuid_t *sell_id, ExaOrder *buy, ExaOrder *sell,
		   bool prelocked)
{
	/* the market's columns come with the LX012 re-check (trade_market) */
	void		(*lock) (pg_uuid_t *, ExaOrder *) =
		exa_catalog_is_1_1() ? exa_order_lock_row : exa_order_lock;

	if (!prelocked)				/* else a batch holds the accounts' rows */
		match_lock_accounts(buy_id, sell_id);

	if (exa_uuid_cmp(buy_id, sell_id) < 0)
	{
		lock(buy_id, buy);
		lock(sell_id, sell);
	}
	else
	{
		lock(sell_id, sell);
		lock(buy_id, buy);
	}

	if (buy->side != EXA_SIDE_BUY || sell->side != EXA_SIDE_SELL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("apply_match needs a BUY order and a SELL order"),
				 errdetail("buy_order_id names a %s order and sell_order_id a %s order.",
						   exa_order_side_name(buy->side),
						   exa_order_side_name(sell->side))));
	if (strcmp(buy->symbol, sell->symbol) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("orders of different markets cannot match"),
				 errdetail("The BUY order is on %s and the SELL order on %s.",
						   buy->symbol, sell->symbol)));
}

/*
 * apply_match, the idempotent retry: when both legs were stored under
 * trade_ref by one earlier match with the same values, put them into the
 * result and return true; a partial or different earlier match is LX009.
 * false: nothing was stored under trade_ref, apply the match.
 */
static bool
match_retry(ExaCall *call, const char *trade_ref, pg_uuid_t *buy_id,
			pg_uuid_t *sell_id, Fill *fb, Fill *fs, ReturnSetInfo *rsinfo)
{
	Datum		kb[2] = {UUIDPGetDatum(buy_id), CStringGetTextDatum(trade_ref)};
	Datum		ks[2] = {UUIDPGetDatum(sell_id), CStringGetTextDatum(trade_ref)};
	bool		have_buy,
				have_sell;
	char	   *diff;
	HeapTuple	tb = NULL;
	bool		isnull;
	Datum		mb = (Datum) 0;
	Datum		ms;
	Datum		rb = (Datum) 0;

	trades_flush_ref(call, buy_id, trade_ref);
	trades_flush_ref(call, sell_id, trade_ref);
	have_buy = exa_exec(&stmt_trade_by_ref, kb, NULL, 1) == 1;
	if (have_buy)
	{
		if ((diff = fill_retry_diff(0, fb)) != NULL)
			trade_ref_conflict(trade_ref, buy_id, TRADE_REF_VALUES, diff);
		tb = SPI_copytuple(SPI_tuptable->vals[0]);
		if (call->trades != NULL)
			rb = exa_return_row(0);
		mb = exa_col_named(0, "match_id", &isnull);
		if (isnull)
			trade_ref_conflict(trade_ref, buy_id, TRADE_REF_NO_MATCH_ID, NULL);
	}
	have_sell = exa_exec(&stmt_trade_by_ref, ks, NULL, 1) == 1;
	if (!have_sell)
	{
		if (have_buy)
			trade_ref_conflict(trade_ref, buy_id, TRADE_REF_NO_SELL_LEG, NULL);
		return false;
	}
	if ((diff = fill_retry_diff(0, fs)) != NULL)
		trade_ref_conflict(trade_ref, sell_id, TRADE_REF_VALUES, diff);
	ms = exa_col_named(0, "match_id", &isnull);
	if (!have_buy || isnull ||
		exa_uuid_cmp(DatumGetUUIDP(mb), DatumGetUUIDP(ms)) != 0)
		trade_ref_conflict(trade_ref, sell_id, TRADE_REF_OTHER_MATCH, NULL);
	if (call->trades != NULL)
	{
		trades_result(call->trades, rb);
		trades_result(call->trades, exa_return_row(0));
		return true;
	}
	tuplestore_puttuple(rsinfo->setResult, tb);
	tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[0]);
	return true;
}

/*
 * apply_match(buy_order_id uuid, sell_order_id uuid, quantity numeric,
 *			   price numeric, buy_fee numeric, sell_fee numeric,
 *			   trade_ref text, maker text) -> setof trades
 *
 * Both legs or neither, sharing one match_id; the BUY trade is returned
 * first.  maker NULL: the older order (created_at, then order_id) is the
 * maker.
 */
Datum
exa_apply_match(PG_FUNCTION_ARGS)
{
	ExaMatchArgs a;
	ExaCall		call;

	exa_match_parse(fcinfo, &a);
	InitMaterializedSRF(fcinfo, 0);
	exa_call_begin(&call);
	exa_apply_match_call(&call, &a, (ReturnSetInfo *) fcinfo->resultinfo);
	exa_call_end(&call);
	return (Datum) 0;
}

/*
 * apply_match's arguments, checked: raises on a malformed call before
 * anything is locked.  fcinfo holds them in apply_match's order; the batch
 * call (batch.c) builds one per item.
 */
void
exa_match_parse(FunctionCallInfo fcinfo, ExaMatchArgs *a)
{
	a->prelocked = false;
	a->buy_id = exa_arg_uuid(fcinfo, 0, "buy_order_id");
	a->sell_id = exa_arg_uuid(fcinfo, 1, "sell_order_id");
	a->quantity = exa_arg_amount(fcinfo, 2, "quantity", EXA_AMOUNT_POSITIVE);
	a->price = exa_arg_amount(fcinfo, 3, "price", EXA_AMOUNT_POSITIVE);
	a->buy_fee = exa_arg_amount(fcinfo, 4, "buy_fee", EXA_AMOUNT_NULL_OK);
	a->sell_fee = exa_arg_amount(fcinfo, 5, "sell_fee", EXA_AMOUNT_NULL_OK);
	a->trade_ref = exa_arg_text(fcinfo, 6, "trade_ref", true, TRADE_REF_MAXLEN);
	a->maker = exa_arg_enum(fcinfo, 7, "maker", exa_order_side_names, true);
	if (exa_uuid_cmp(a->buy_id, a->sell_id) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameters \"%s\" and \"%s\" must differ",
						"buy_order_id", "sell_order_id")));
}

/*
 * One apply_match inside the caller's ExaCall: puts the BUY then the SELL
 * trade into rsinfo's tuplestore.
 */
void
exa_apply_match_call(ExaCall *call, ExaMatchArgs *a, ReturnSetInfo *rsinfo)
{
	pg_uuid_t  *buy_id = a->buy_id;
	pg_uuid_t  *sell_id = a->sell_id;
	char	   *trade_ref = a->trade_ref;
	ExaOrder	buy,
				sell;
	Fill		fb = {0},
				fs = {0};
	pg_uuid_t  *match_id;
	LedgerMove	moves[2 * FILL_MAX_MOVES];
	int			nmoves = 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	bool		buy_is_maker;

	if (!a->prelocked)
	{
		exa_matching_refuse_internal_order(buy_id, "apply_match");
		exa_matching_refuse_internal_order(sell_id, "apply_match");
	}
	match_lock(buy_id, sell_id, &buy, &sell, a->prelocked);
	if (exa_catalog_is_1_1())
	{
		ExaOrder   *both[2] = {&buy, &sell};

		if (a->prelocked && call->trades != NULL)
			trade_market_once(call, both, 2, "apply_match");
		else
			trade_market(both, 2, "apply_match");
	}

	if (a->maker != NULL)
		buy_is_maker = exa_order_side_from_text(a->maker) == EXA_SIDE_BUY;
	else if (buy.created_at != sell.created_at)
		buy_is_maker = buy.created_at < sell.created_at;
	else
		buy_is_maker = exa_uuid_cmp(buy_id, sell_id) < 0;

	fb.o = &buy;
	fs.o = &sell;
	fb.quantity = fs.quantity = a->quantity;
	fb.price = fs.price = a->price;
	fb.liquidity = exa_liquidity_name(buy_is_maker ? EXA_LIQUIDITY_MAKER :
									  EXA_LIQUIDITY_TAKER);
	fs.liquidity = exa_liquidity_name(buy_is_maker ? EXA_LIQUIDITY_TAKER :
									  EXA_LIQUIDITY_MAKER);
	fb.executed_at = fs.executed_at = now;
	fb.trade_ref = fs.trade_ref = trade_ref;
	exa_fill_fee(&fb, a->buy_fee, NULL);
	exa_fill_fee(&fs, a->sell_fee, NULL);

	if (trade_ref != NULL &&
		match_retry(call, trade_ref, buy_id, sell_id, &fb, &fs, rsinfo))
		return;

	fill_check(&fb);
	fill_check(&fs);

	match_id = exa_new_uuid();
	fb.match_id = fs.match_id = match_id;
	exa_fill_apply(call, &fb, moves, &nmoves, lengthof(moves), rsinfo, NULL);
	exa_fill_apply(call, &fs, moves, &nmoves, lengthof(moves), rsinfo, NULL);
	exa_ledger_move(call, moves, nmoves);
	exa_fill_fee_ledger(call, &fb);
	exa_fill_fee_ledger(call, &fs);
}
