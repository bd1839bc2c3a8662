/*-------------------------------------------------------------------------
 *
 * orders.c
 *	  Orders: place_order, cancel_order, cancel_orders, expire_order,
 *	  expire_orders, trigger_stop_orders, and the order-row helpers that
 *	  trades.c shares.
 *
 * Locks, in the global order (ledger.h): (1) the account row(s) FOR SHARE,
 * ascending account_id — calls that name an order read its account first
 * without a lock, and batch calls lock every account they will write before
 * any order; then, for a client_order_id, an advisory lock on (account,
 * client_order_id); (2) order rows FOR UPDATE, ascending order_id; (4) the
 * balance rows through exa_ledger_move().  EXTERNAL markets are read FOR KEY
 * SHARE, the lock the new order's foreign-key check would take, which the
 * API's INSERT then skips (check_cache.c, exa_exec_vouched); the calls that
 * change an INTERNAL market's book (place, cancel,
 * expire) first lock its row (lock order 0, matching.c), and place_order
 * then plans its matching before it locks anything else it touches.
 *
 * Isolation: what a call decides on rows it does not lock — the market row,
 * the retry lookup after the client_order_id lock, the orders a batch
 * collects — is read through exa_exec_recheck() (stmt.h), so that under
 * REPEATABLE READ or SERIALIZABLE the call does what it does at READ
 * COMMITTED or raises 40001; rows it locks PostgreSQL checks itself.
 *
 * Lifecycle (README "Order lifecycle and arithmetic"): LIMIT and MARKET
 * start OPEN, STOP starts PENDING, a business refusal is stored REJECTED with
 * its reason and locks nothing.
 * Cancel and expire are allowed whatever the account or market status.
 * The UPDATE trigger orders_lifecycle_guard (lifecycle.c) refuses anything
 * outside the table, whoever writes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"

#include "args.h"
#include "catalog_version.h"
#include "exchange_adapter.h"
#include "ledger.h"
#include "matching.h"
#include "orders.h"
#include "stmt.h"

PG_FUNCTION_INFO_V1(exa_place_order);
PG_FUNCTION_INFO_V1(exa_cancel_order);
PG_FUNCTION_INFO_V1(exa_cancel_orders);
PG_FUNCTION_INFO_V1(exa_expire_order);
PG_FUNCTION_INFO_V1(exa_expire_orders);
PG_FUNCTION_INFO_V1(exa_trigger_stop_orders);


#define CLIENT_ORDER_ID_MAXLEN 64
#define REASON_MAXLEN 256

/* ------------------------------------------------------------------------
 * Order rows
 * ------------------------------------------------------------------------
 */

static ExaStmt stmt_order_account = {
	"SELECT a.account_id, a.status::pg_catalog.text, a.kyc_status::pg_catalog.text"
	"  FROM exchange.accounts a"
	" WHERE a.account_id OPERATOR(pg_catalog.=)"
	"       (SELECT o.account_id FROM exchange.orders o"
	"         WHERE o.order_id OPERATOR(pg_catalog.=) $1)"
	"   FOR SHARE OF a",
	1, {UUIDOID},
	NULL
};

/* The order's columns (1-14), then its market's (15-20). */
#define LOCK_ORDER_COLUMNS \
	"SELECT o.order_id, o.account_id, o.symbol::pg_catalog.text, o.side::pg_catalog.text," \
	"       o.order_type::pg_catalog.text, o.status::pg_catalog.text," \
	"       o.time_in_force::pg_catalog.text, o.lock_asset::pg_catalog.text," \
	"       o.quantity, o.price, o.filled_quantity, o.filled_value, o.locked_amount," \
	"       o.created_at"

static ExaStmt stmt_lock_order = {
	LOCK_ORDER_COLUMNS ","
	"       m.base_asset::pg_catalog.text, m.quote_asset::pg_catalog.text,"
	"       m.maker_fee_rate, m.taker_fee_rate, m.tick_size, m.lot_size"
	"  FROM exchange.orders o"
	"  JOIN exchange.markets m ON m.symbol OPERATOR(pg_catalog.=) o.symbol"
	" WHERE o.order_id OPERATOR(pg_catalog.=) $1"
	"   FOR UPDATE OF o FOR KEY SHARE OF m",
	1, {UUIDOID},
	NULL
};

static ExaStmt stmt_lock_order_row = {
	LOCK_ORDER_COLUMNS
	"  FROM exchange.orders o"
	" WHERE o.order_id OPERATOR(pg_catalog.=) $1"
	"   FOR UPDATE OF o",
	1, {UUIDOID},
	NULL
};

static ExaStmt stmt_insert_event = {
	"INSERT INTO exchange.order_events"
	" (order_id, from_status, to_status, filled_delta, reason, actor)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {UUIDOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID},
	NULL
};

static ExaStmt stmt_close_order = {
	"UPDATE exchange.orders"
	"   SET status = $2, locked_amount = 0, updated_at = pg_catalog.now(),"
	"       cancelled_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'CANCELLED'"
	"                           THEN pg_catalog.now() ELSE cancelled_at END"
	" WHERE order_id OPERATOR(pg_catalog.=) $1"
	" RETURNING *",
	2, {UUIDOID, TEXTOID},
	NULL
};

static ExaStmt stmt_order_exists = {
	"SELECT FROM exchange.orders WHERE order_id OPERATOR(pg_catalog.=) $1",
	1, {UUIDOID},
	NULL
};

void
exa_order_lock_account(pg_uuid_t *order_id, ExaAccount *acct)
{
	Datum		key[1] = {UUIDPGetDatum(order_id)};

	if (exa_exec(&stmt_order_account, key, NULL, 1) != 1)
	{
		/* placed after a REPEATABLE READ snapshot: 40001, not "not found" */
		exa_recheck_missing(&stmt_order_exists, key, NULL,
							"order %s", exa_uuid_str(order_id));
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("order %s does not exist", exa_uuid_str(order_id))));
	}
	memcpy(&acct->account_id, DatumGetUUIDP(exa_col_notnull(0, 1)), sizeof(pg_uuid_t));
	acct->status = exa_account_status_from_text(exa_col_cstring(0, 2));
	acct->kyc_status = exa_kyc_status_from_text(exa_col_cstring(0, 3));
}

static Numeric
num_copy(Numeric n)
{
	return n == NULL ? NULL : DatumGetNumericCopy(NumericGetDatum(n));
}

/*
 * The order row FOR UPDATE into *o, with its market's columns when market;
 * numbers copied out of the SPI result, which is freed.
 */
static void
order_lock(pg_uuid_t *order_id, ExaOrder *o, bool market)
{
	Datum		key[1] = {UUIDPGetDatum(order_id)};
	bool		isnull;
	Datum		price;

	if (exa_exec(market ? &stmt_lock_order : &stmt_lock_order_row, key, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("order %s does not exist", exa_uuid_str(order_id))));
	memcpy(&o->order_id, DatumGetUUIDP(exa_col_notnull(0, 1)), sizeof(pg_uuid_t));
	memcpy(&o->account_id, DatumGetUUIDP(exa_col_notnull(0, 2)), sizeof(pg_uuid_t));
	o->symbol = exa_col_cstring(0, 3);
	o->side = exa_order_side_from_text(exa_col_cstring(0, 4));
	o->order_type = exa_order_type_from_text(exa_col_cstring(0, 5));
	o->status = exa_order_status_from_text(exa_col_cstring(0, 6));
	o->time_in_force = exa_time_in_force_from_text(exa_col_cstring(0, 7));
	o->lock_asset = exa_col_cstring(0, 8);
	o->quantity = DatumGetNumeric(exa_col_notnull(0, 9));
	price = exa_col(0, 10, &isnull);
	o->price = isnull ? NULL : DatumGetNumeric(price);
	o->filled_quantity = DatumGetNumeric(exa_col_notnull(0, 11));
	o->filled_value = DatumGetNumeric(exa_col_notnull(0, 12));
	o->locked_amount = DatumGetNumeric(exa_col_notnull(0, 13));
	o->created_at = DatumGetTimestampTz(exa_col_notnull(0, 14));
	if (market)
		exa_order_read_market(o, 15);
	else
	{
		o->base_asset = o->quote_asset = NULL;
		o->maker_fee_rate = o->taker_fee_rate = NULL;
		o->tick_size = o->lot_size = NULL;
	}

	/*
	 * Keep copies and free the result: a batch call locks up to millions of
	 * orders, and every SPI result lives until the call ends.
	 */
	o->quantity = num_copy(o->quantity);
	o->price = num_copy(o->price);
	o->filled_quantity = num_copy(o->filled_quantity);
	o->filled_value = num_copy(o->filled_value);
	o->locked_amount = num_copy(o->locked_amount);
	SPI_freetuptable(SPI_tuptable);
}

void
exa_order_read_market(ExaOrder *o, int col)
{
	o->base_asset = exa_col_cstring(0, col);
	o->quote_asset = exa_col_cstring(0, col + 1);
	o->maker_fee_rate = DatumGetNumericCopy(exa_col_notnull(0, col + 2));
	o->taker_fee_rate = DatumGetNumericCopy(exa_col_notnull(0, col + 3));
	o->tick_size = DatumGetNumericCopy(exa_col_notnull(0, col + 4));
	o->lot_size = DatumGetNumericCopy(exa_col_notnull(0, col + 5));
}

void
exa_order_copy_market(ExaOrder *dst, const ExaOrder *src)
{
	dst->base_asset = src->base_asset;
	dst->quote_asset = src->quote_asset;
	dst->maker_fee_rate = src->maker_fee_rate;
	dst->taker_fee_rate = src->taker_fee_rate;
	dst->tick_size = src->tick_size;
	dst->lot_size = src->lot_size;
}

void
exa_order_lock(pg_uuid_t *order_id, ExaOrder *o)
{
	order_lock(order_id, o, true);
}

void
exa_order_lock_row(pg_uuid_t *order_id, ExaOrder *o)
{
	order_lock(order_id, o, false);
}

bool
exa_order_is_live(ExaOrderStatus status)
{
	return exa_order_status_live(status);
}

bool
exa_order_is_buy(const ExaOrder *o)
{
	return o->side == EXA_SIDE_BUY;
}

/* In the book: the statuses that take fills (OPEN, PARTIAL). */
static bool
order_in_book(ExaOrderStatus status)
{
	return exa_order_status_fillable(status);
}

/*
 * A batch call's order events (exa_order_defer_events), written by one
 * INSERT, in the order made; the values are copied into cxt.
 */
typedef struct EventBuf
{
	MemoryContext cxt;
	int			n;
	int			cap;
	Datum	   *order_id;
	Datum	   *from;
	Datum	   *to;
	Datum	   *delta;
	Datum	   *reason;
	bool	   *from_null;
	bool	   *reason_null;
} EventBuf;

static ExaStmt stmt_insert_event_rows = {
	"INSERT INTO exchange.order_events"
	" (order_id, from_status, to_status, filled_delta, reason, actor)"
	" SELECT u.o, u.f, u.t, u.d, u.r, $1"
	"   FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.uuid[]),"
	"                   pg_catalog.unnest($3::pg_catalog.text[]),"
	"                   pg_catalog.unnest($4::pg_catalog.text[]),"
	"                   pg_catalog.unnest($5::pg_catalog.numeric[]),"
	"                   pg_catalog.unnest($6::pg_catalog.text[]))"
	"        WITH ORDINALITY AS u (o, f, t, d, r, n)"
	"  ORDER BY u.n",
	6, {TEXTOID, UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID,
	TEXTARRAYOID},
	NULL
};

void
exa_order_defer_events(ExaCall *call)
{
	EventBuf   *eb = palloc0(sizeof(EventBuf));

	eb->cxt = CurrentMemoryContext;
	call->events = eb;
}

static void
event_add(EventBuf *eb, pg_uuid_t *order_id, const char *from, const char *to,
		  Numeric filled_delta, const char *reason)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(eb->cxt);
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

	if (eb->n == eb->cap)
	{
		int			cap = eb->cap ? eb->cap * 2 : 16;
		Datum	  **cols[] = {&eb->order_id, &eb->from, &eb->to, &eb->delta,
		&eb->reason};

		for (int i = 0; i < (int) lengthof(cols); i++)
			*cols[i] = exa_grow_column(*cols[i], sizeof(Datum), cap);
		eb->from_null = exa_grow_column(eb->from_null, sizeof(bool), cap);
		eb->reason_null = exa_grow_column(eb->reason_null, sizeof(bool), cap);
		eb->cap = cap;
	}
	memcpy(id, order_id, sizeof(pg_uuid_t));
	eb->order_id[eb->n] = UUIDPGetDatum(id);
	eb->from[eb->n] = from ? CStringGetTextDatum(from) : (Datum) 0;
	eb->from_null[eb->n] = from == NULL;
	eb->to[eb->n] = CStringGetTextDatum(to);
	eb->delta[eb->n] = filled_delta ?
		NumericGetDatum(DatumGetNumericCopy(NumericGetDatum(filled_delta))) :
		NumericGetDatum(exa_zero());
	eb->reason[eb->n] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	eb->reason_null[eb->n] = reason == NULL;
	eb->n++;
	MemoryContextSwitchTo(oldcxt);
}

void
exa_order_events_flush(ExaCall *call)
{
	EventBuf   *eb = call->events;
	Datum		values[6];

	if (eb == NULL || eb->n == 0)
		return;
	values[0] = PointerGetDatum(exa_call_actor(call));
	values[1] = exa_datum_array(eb->order_id, NULL, eb->n, UUIDOID);
	values[2] = exa_datum_array(eb->from, eb->from_null, eb->n, TEXTOID);
	values[3] = exa_datum_array(eb->to, NULL, eb->n, TEXTOID);
	values[4] = exa_datum_array(eb->delta, NULL, eb->n, NUMERICOID);
	values[5] = exa_datum_array(eb->reason, eb->reason_null, eb->n, TEXTOID);
	exa_exec_vouched(&stmt_insert_event_rows, values, NULL, 0);
	eb->n = 0;
}

void
exa_order_event(ExaCall *call, pg_uuid_t *order_id, const char *from,
				const char *to, Numeric filled_delta, const char *reason)
{
	Datum		values[6];
	char		nulls[6] = {' ', from ? ' ' : 'n', ' ', ' ', reason ? ' ' : 'n', ' '};

	if (call->events != NULL)
	{
		event_add(call->events, order_id, from, to, filled_delta, reason);
		return;
	}

	values[0] = UUIDPGetDatum(order_id);
	values[1] = from ? CStringGetTextDatum(from) : (Datum) 0;
	values[2] = CStringGetTextDatum(to);
	values[3] = NumericGetDatum(filled_delta ? filled_delta : exa_zero());
	values[4] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	values[5] = PointerGetDatum(exa_call_actor(call));
	exa_exec_vouched(&stmt_insert_event, values, nulls, 0);
}

/* The result row of an order call: to the tuplestore, or as a Datum. */
static Datum
order_result(ReturnSetInfo *rsinfo)
{
	if (rsinfo != NULL)
	{
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[0]);
		SPI_freetuptable(SPI_tuptable);	/* see exa_order_lock() */
		return (Datum) 0;
	}
	return exa_return_row(0);
}

static void
order_keys(ExaCall *call, ExaOrder *o, bool book)
{
	char		acct[EXA_UUID_STR_LEN];
	char		id[EXA_UUID_STR_LEN];

	exa_uuid_format(&o->account_id, acct);
	exa_uuid_format(&o->order_id, id);
	exa_call_key(call, "cache:order:%s", id);
	exa_call_key(call, "cache:orders:%s", acct);
	exa_call_key(call, "cache:balance:%s:%s", acct, o->lock_asset);
	exa_call_key(call, "cache:balances:%s", acct);
	if (book)
		exa_call_book_keys(call, o->symbol);
}

/* The keys a placed order makes stale. */
static void
place_keys(ExaCall *call, ExaPlaceArgs *a, pg_uuid_t *order_id,
		   const char *lock_asset, ExaOrderStatus status)
{
	ExaOrder	o = {0};

	memcpy(&o.order_id, order_id, sizeof(pg_uuid_t));
	memcpy(&o.account_id, a->account_id, sizeof(pg_uuid_t));
	o.symbol = a->symbol;
	o.lock_asset = (char *) lock_asset;
	order_keys(call, &o, order_in_book(status));
}

/* The move that gives a closed order's whole lock back to available. */
static void
order_release_move(ExaOrder *o, LedgerMove *release)
{
	memset(release, 0, sizeof(LedgerMove));
	release->account_id = &o->account_id;
	release->asset = o->lock_asset;
	release->delta_available = o->locked_amount;
	release->delta_locked = exa_neg(o->locked_amount);
	release->kind = "ORDER_RELEASE";
	release->order_id = &o->order_id;
}

Datum
exa_order_close(ExaCall *call, ExaOrder *o, ExaOrderStatus to_status,
				const char *reason, ReturnSetInfo *rsinfo, LedgerMove *release)
{
	const char *to = exa_order_status_name(to_status);
	Datum		values[2] = {UUIDPGetDatum(&o->order_id), CStringGetTextDatum(to)};
	Datum		result;

	exa_exec(&stmt_close_order, values, NULL, 1);
	result = order_result(rsinfo);

	order_release_move(o, release);

	exa_order_event(call, &o->order_id, exa_order_status_name(o->status), to,
					NULL, reason);
	order_keys(call, o, order_in_book(o->status));
	return result;
}

/* ------------------------------------------------------------------------
 * place_order
 * ------------------------------------------------------------------------
 */

static ExaStmt stmt_market = {
	"SELECT base_asset::pg_catalog.text, quote_asset::pg_catalog.text,"
	"       tick_size, lot_size, min_quantity, min_notional, status::pg_catalog.text"
	"  FROM exchange.markets WHERE symbol OPERATOR(pg_catalog.=) $1"
	"   FOR KEY SHARE",
	1, {TEXTOID},
	NULL
};

/* The same on a 1.1 catalog, with the market's matching mode. */
static ExaStmt stmt_market_matching = {
	"SELECT base_asset::pg_catalog.text, quote_asset::pg_catalog.text,"
	"       tick_size, lot_size, min_quantity, min_notional, status::pg_catalog.text,"
	"       matching::pg_catalog.text"
	"  FROM exchange.markets WHERE symbol OPERATOR(pg_catalog.=) $1"
	"   FOR KEY SHARE",
	1, {TEXTOID},
	NULL
};

static ExaStmt stmt_order_by_client_id = {
	"SELECT * FROM exchange.orders"
	" WHERE account_id OPERATOR(pg_catalog.=) $1"
	"   AND client_order_id OPERATOR(pg_catalog.=) $2",
	2, {UUIDOID, TEXTOID},
	NULL
};

static ExaStmt stmt_insert_order = {
	"INSERT INTO exchange.orders"
	" (order_id, account_id, symbol, order_type, side, quantity, price, status,"
	"  time_in_force, metadata, stop_price, client_order_id, lock_asset,"
	"  locked_amount, reject_reason)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
	" RETURNING *",
	15, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID,
		TEXTOID, TEXTOID, JSONBOID, NUMERICOID, TEXTOID, TEXTOID, NUMERICOID,
	TEXTOID},
	NULL
};

/*
 * The same on a 1.1 catalog: an accepted order takes its book_seq ($16, or
 * the sequence's next value when NULL); a REJECTED one has none.
 */
static ExaStmt stmt_insert_order_seq = {
	"INSERT INTO exchange.orders"
	" (order_id, account_id, symbol, order_type, side, quantity, price, status,"
	"  time_in_force, metadata, stop_price, client_order_id, lock_asset,"
	"  locked_amount, reject_reason, book_seq)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
	"         CASE WHEN $15 IS NULL THEN COALESCE($16,"
	"              pg_catalog.nextval('exchange.order_book_seq'::pg_catalog.regclass)) END)"
	" RETURNING *",
	16, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID,
		TEXTOID, TEXTOID, JSONBOID, NUMERICOID, TEXTOID, TEXTOID, NUMERICOID,
	TEXTOID, INT8OID},
	NULL
};

/*
 * A retry with the same client_order_id: return the stored row when the
 * order is the same, raise LX009 otherwise.  Runs on the row that
 * stmt_order_by_client_id found.
 */
static void
check_order_retry(const char *client_order_id, const char *symbol,
				  const char *side, const char *type, Numeric quantity,
				  Numeric price, const char *tif, Numeric stop_price)
{
	bool		isnull;
	Datum		d;
	Numeric		s_qty,
				s_price,
				s_stop;
	StringInfoData diff;
	const char *s_symbol = exa_col_named_text(0, "symbol");
	const char *s_side = exa_col_named_text(0, "side");
	const char *s_type = exa_col_named_text(0, "order_type");
	const char *s_tif = exa_col_named_text(0, "time_in_force");

	s_qty = DatumGetNumeric(exa_col_named(0, "quantity", &isnull));
	d = exa_col_named(0, "price", &isnull);
	s_price = isnull ? NULL : DatumGetNumeric(d);
	d = exa_col_named(0, "stop_price", &isnull);
	s_stop = isnull ? NULL : DatumGetNumeric(d);

	initStringInfo(&diff);
	exa_diff_text(&diff, "symbol", s_symbol, symbol);
	exa_diff_text(&diff, "side", s_side, side);
	exa_diff_text(&diff, "order_type", s_type, type);
	exa_diff_num(&diff, "quantity", s_qty, quantity);
	exa_diff_num(&diff, "price", s_price, price);
	exa_diff_text(&diff, "time_in_force", s_tif, tif);
	exa_diff_num(&diff, "stop_price", s_stop, stop_price);

	if (diff.len > 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_IDEMPOTENCY_CONFLICT),
				 errmsg("client_order_id \"%s\" was already used for another order",
						client_order_id),
				 errdetail("The stored order has other values (stored -> given): %s.",
						   diff.data),
				 errhint("Use a new client_order_id for a new order.")));
}

/*
 * place_order, step 1: the argument combinations README "Order lifecycle and
 * arithmetic" refuses (raised before anything is locked or written).
 * Returns the time in force, NULL replaced by the order type's default.
 */
static const char *
place_check_args(const char *type, ExaOrderType otype, bool is_buy,
				 Numeric price, Numeric stop_price, const char *tif)
{
	bool		is_stop = otype == EXA_TYPE_STOP;
	bool		is_market = otype == EXA_TYPE_MARKET;

	if (stop_price != NULL && !is_stop)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" is only allowed on STOP orders", "stop_price"),
				 errhint("Pass NULL as stop_price, or use order_type STOP.")));
	if (stop_price == NULL && is_stop)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a STOP order needs parameter \"%s\"", "stop_price"),
				 errhint("A BUY stop triggers when the last price reaches stop_price or more, a SELL stop at stop_price or less.")));
	if (price == NULL && otype == EXA_TYPE_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a LIMIT order needs parameter \"%s\"", "price")));
	if (price == NULL && is_buy && (is_market || is_stop))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a %s BUY order needs a protection price", type),
				 errdetail("The price of a %s BUY order is the most it may pay per unit; it sizes the funds locked.", type),
				 errhint("Pass price, for example the best ask plus a margin.")));
	if (tif == NULL)
		return exa_time_in_force_name(is_market ? EXA_TIF_IOC : EXA_TIF_GTC);
	if (is_market && exa_time_in_force_from_text(tif) == EXA_TIF_GTC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a MARKET order cannot be GTC"),
				 errhint("Use IOC or FOK, or NULL for IOC.")));

	return tif;
}

/* The market columns place_order needs, read without a lock. */
typedef struct PlaceMarket
{
	char	   *base;
	char	   *quote;
	Numeric		tick;
	Numeric		lot;
	Numeric		min_qty;
	Numeric		min_notional;
	ExaMarketStatus status;
	bool		internal;		/* matching INTERNAL (a 1.1 catalog only) */
	char	   *symbol;			/* place_orders' cache of markets */
	/* place_orders on an INTERNAL market the batch holds locked: */
	bool		locked;
	bool		top_read;		/* the three below are current */
	Numeric		best_bid;		/* NULL: no resting BUY */
	Numeric		best_ask;		/* NULL: no resting SELL */
	bool		stops_due;		/* a PENDING stop holds at last_price */
} PlaceMarket;

/* place_order, step 3: the market, unlocked (a committed HALT applies). */
static void
place_read_market(const char *symbol, PlaceMarket *m)
{
	Datum		mkey[1] = {CStringGetTextDatum(symbol)};
	bool		matching = exa_catalog_is_1_1();

	if (exa_exec_recheck(matching ? &stmt_market_matching : &stmt_market,
						 mkey, NULL, 1, "market \"%s\"", symbol) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("market \"%s\" does not exist", symbol)));
	m->base = exa_col_cstring(0, 1);
	m->quote = exa_col_cstring(0, 2);
	m->tick = DatumGetNumeric(exa_col_notnull(0, 3));
	m->lot = DatumGetNumeric(exa_col_notnull(0, 4));
	m->min_qty = DatumGetNumeric(exa_col_notnull(0, 5));
	m->min_notional = DatumGetNumeric(exa_col_notnull(0, 6));
	m->status = exa_market_status_from_text(exa_col_cstring(0, 7));
	m->internal = matching &&
		exa_matching_from_text(exa_col_cstring(0, 8)) == EXA_MATCHING_INTERNAL;
}

/*
 * place_order, step 4: the business refusal that stores the order REJECTED,
 * in the documented order, or NULL (funds are checked when they are locked).
 */
static const char *
place_refusal(ExaAccount *acct, PlaceMarket *m, Numeric quantity,
			  Numeric price, Numeric stop_price)
{
	if (acct->status != EXA_ACCOUNT_ACTIVE)
		return "ACCOUNT_NOT_ACTIVE";
	if (acct->kyc_status != EXA_KYC_APPROVED)
		return "KYC_NOT_APPROVED";
	if (m->status != EXA_MARKET_ACTIVE)
		return "MARKET_HALTED";
	if ((price != NULL && !exa_is_multiple(price, m->tick)) ||
		(stop_price != NULL && !exa_is_multiple(stop_price, m->tick)))
		return "TICK_SIZE";
	if (!exa_is_multiple(quantity, m->lot))
		return "LOT_SIZE";
	if (exa_cmp(quantity, m->min_qty) < 0)
		return "MIN_QUANTITY";
	if (price != NULL && exa_cmp(exa_mul(quantity, price), m->min_notional) < 0)
		return "MIN_NOTIONAL";
	return NULL;
}

/* place_order, step 5: what the order locks, of which asset. */
static Numeric
place_lock_amount(ExaPlaceArgs *a, PlaceMarket *m, char **lock_asset)
{
	bool		is_buy = exa_order_side_from_text(a->side) == EXA_SIDE_BUY;

	*lock_asset = is_buy ? m->quote : m->base;
	return is_buy ? exa_ceil8(exa_mul(a->quantity, a->price)) : a->quantity;
}

/*
 * ... and the lock, unless the order is refused already (*reject): a
 * shortage refuses it INSUFFICIENT_FUNDS; a refused order locks nothing
 * (*lock_amount zero).  Returns the order's status.
 */
static ExaOrderStatus
place_lock_funds(ExaCall *call, ExaPlaceArgs *a, pg_uuid_t *order_id,
				 char *lock_asset, Numeric *lock_amount, const char **reject)
{
	if (*reject == NULL)
	{
		LedgerMove	move = {0};

		move.account_id = a->account_id;
		move.asset = lock_asset;
		move.delta_available = exa_neg(*lock_amount);
		move.delta_locked = *lock_amount;
		move.kind = "ORDER_LOCK";
		move.order_id = order_id;
		if (!exa_ledger_try_move(call, &move))
			*reject = "INSUFFICIENT_FUNDS";
	}
	if (*reject != NULL)
	{
		*lock_amount = exa_zero();
		return EXA_ORDER_REJECTED;
	}
	return exa_order_type_from_text(a->type) == EXA_TYPE_STOP ?
		EXA_ORDER_PENDING : EXA_ORDER_OPEN;
}

/*
 * place_order, step 6: insert the order row (left in SPI_tuptable), with
 * the book_seq of a plan or the sequence's next value on a 1.1 catalog.
 */
static void
place_insert(ExaPlaceArgs *a, pg_uuid_t *order_id, ExaOrderStatus status,
			 const char *lock_asset, Numeric lock_amount, const char *reject,
			 int64 book_seq)
{
	pg_uuid_t  *account_id = a->account_id;
	Numeric		price = a->price;
	Numeric		stop_price = a->stop_price;
	char	   *client_order_id = a->client_order_id;
	Datum		values[16];
	char		nulls[16];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = UUIDPGetDatum(order_id);
	values[1] = UUIDPGetDatum(account_id);
	values[2] = CStringGetTextDatum(a->symbol);
	values[3] = CStringGetTextDatum(a->type);
	values[4] = CStringGetTextDatum(a->side);
	values[5] = NumericGetDatum(a->quantity);
	values[6] = price ? NumericGetDatum(price) : (Datum) 0;
	nulls[6] = price ? ' ' : 'n';
	values[7] = CStringGetTextDatum(exa_order_status_name(status));
	values[8] = CStringGetTextDatum(a->tif);
	values[9] = a->metadata;
	values[10] = stop_price ? NumericGetDatum(stop_price) : (Datum) 0;
	nulls[10] = stop_price ? ' ' : 'n';
	values[11] = client_order_id ? CStringGetTextDatum(client_order_id) : (Datum) 0;
	nulls[11] = client_order_id ? ' ' : 'n';
	values[12] = CStringGetTextDatum(lock_asset);
	values[13] = NumericGetDatum(lock_amount);
	values[14] = reject ? CStringGetTextDatum(reject) : (Datum) 0;
	nulls[14] = reject ? ' ' : 'n';
	values[15] = Int64GetDatum(book_seq);
	nulls[15] = book_seq > 0 ? ' ' : 'n';
	if (exa_catalog_is_1_1())
		exa_exec_vouched(&stmt_insert_order_seq, values, nulls, 1);
	else
		exa_exec_vouched(&stmt_insert_order, values, nulls, 1);
}

/*
 * place_order's arguments, checked (README "Order lifecycle and
 * arithmetic"): raises on a malformed call before anything is locked or
 * written.  fcinfo holds the SQL arguments in place_order's order; the batch
 * call (batch.c) builds one per item.
 */
void
exa_place_parse(FunctionCallInfo fcinfo, ExaPlaceArgs *a)
{
	a->account_id = exa_arg_uuid(fcinfo, 0, "account_id");
	a->symbol = exa_arg_text(fcinfo, 1, "symbol", false, 21);
	a->side = exa_arg_enum(fcinfo, 2, "side", exa_order_side_names, false);
	a->type = exa_arg_enum(fcinfo, 3, "order_type", exa_order_type_names, false);
	a->quantity = exa_arg_amount(fcinfo, 4, "quantity", EXA_AMOUNT_POSITIVE);
	a->price = exa_arg_amount(fcinfo, 5, "price",
							  EXA_AMOUNT_POSITIVE | EXA_AMOUNT_NULL_OK);
	a->tif = exa_arg_enum(fcinfo, 6, "time_in_force",
						  exa_time_in_force_names, true);
	a->stop_price = exa_arg_amount(fcinfo, 7, "stop_price",
								   EXA_AMOUNT_POSITIVE | EXA_AMOUNT_NULL_OK);
	a->client_order_id = exa_arg_text(fcinfo, 8, "client_order_id", true,
									  CLIENT_ORDER_ID_MAXLEN);
	a->metadata = exa_arg_metadata(fcinfo, 9);
	/* Malformed calls raise and change nothing. */
	a->tif = place_check_args(a->type, exa_order_type_from_text(a->type),
							  exa_order_side_from_text(a->side) == EXA_SIDE_BUY,
							  a->price, a->stop_price, a->tif);
}

/*
 * place_order(account_id uuid, symbol text, side text, order_type text,
 *			   quantity numeric, price numeric, time_in_force text,
 *			   stop_price numeric, client_order_id text, metadata jsonb)
 *	 -> orders
 */
Datum
exa_place_order(PG_FUNCTION_ARGS)
{
	ExaPlaceArgs a;
	ExaCall		call;
	Datum		result;

	exa_place_parse(fcinfo, &a);
	exa_call_begin(&call);
	result = exa_place_order_call(&call, &a);
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}

/*
 * One place_order inside the caller's ExaCall, its arguments checked by
 * exa_place_parse(): returns the order row (a Datum in the caller's memory).
 */
Datum
exa_place_order_call(ExaCall *call, ExaPlaceArgs *a)
{
	pg_uuid_t  *account_id = a->account_id;
	char	   *symbol = a->symbol;
	const char *side = a->side;
	const char *type = a->type;
	Numeric		quantity = a->quantity;
	Numeric		price = a->price;
	const char *tif = a->tif;
	Numeric		stop_price = a->stop_price;
	char	   *client_order_id = a->client_order_id;
	ExaOrderType otype = exa_order_type_from_text(type);
	ExaAccount	acct;
	PlaceMarket m;
	const char *reject;
	ExaOrderStatus status;
	char	   *lock_asset;
	Numeric		lock_amount;
	pg_uuid_t  *order_id;
	Datum		result;
	MatchMarket *internal;
	MatchPlan  *plan = NULL;
	int64		book_seq = 0;

	/* an INTERNAL market's row first (README "Matching engine") */
	internal = exa_matching_lock_market(symbol);
	exa_ledger_lock_account(account_id, false, &acct);

	if (client_order_id != NULL)
	{
		Datum		ckey[2] = {UUIDPGetDatum(account_id), CStringGetTextDatum(client_order_id)};

		/*
		 * The advisory lock may have waited for a first call that committed
		 * after a REPEATABLE READ snapshot: re-checked, that is 40001 rather
		 * than a second order and 23505.
		 */
		exa_ledger_lock_reference(account_id, "ORDER", client_order_id);
		if (exa_exec_recheck(&stmt_order_by_client_id, ckey, NULL, 1,
							 "the order with client_order_id \"%s\" of account %s",
							 client_order_id, exa_uuid_str(account_id)) == 1)
		{
			check_order_retry(client_order_id, symbol, side, type, quantity,
							  price, tif, stop_price);
			return exa_return_row(0);
		}
	}

	/* Unlocked: a HALT committed before this call applies to it. */
	place_read_market(symbol, &m);

	/* Business refusals: stored REJECTED, nothing locked. */
	reject = place_refusal(&acct, &m, quantity, price, stop_price);

	lock_amount = place_lock_amount(a, &m, &lock_asset);
	order_id = exa_new_uuid();

	if (reject == NULL && internal == NULL && m.internal)
		exa_matching_refuse_unlocked(symbol);
	if (reject == NULL && internal != NULL)
	{
		/* plan, then lock everything it touches, the taker's funds too */
		MatchTaker	t;

		t.order_id = order_id;
		t.account_id = account_id;
		t.side = exa_order_side_from_text(side);
		t.order_type = otype;
		t.time_in_force = exa_time_in_force_from_text(tif);
		t.quantity = quantity;
		t.price = price;
		t.stop_price = stop_price;
		t.lock_asset = lock_asset;
		t.base_asset = m.base;
		t.quote_asset = m.quote;
		t.locked_amount = lock_amount;
		t.tick_size = m.tick;
		t.lot_size = m.lot;
		plan = exa_matching_plan(internal, &t, &book_seq);
	}

	status = place_lock_funds(call, a, order_id, lock_asset, &lock_amount, &reject);

	place_insert(a, order_id, status, lock_asset, lock_amount, reject, book_seq);
	result = exa_return_row(0);

	exa_order_event(call, order_id, NULL, exa_order_status_name(status), NULL, reject);
	place_keys(call, a, order_id, lock_asset, status);
	if (plan != NULL && reject == NULL && !exa_matching_plan_empty(plan))
		result = exa_matching_execute(call, plan);
	return result;
}

/* ------------------------------------------------------------------------
 * place_orders with its statements merged (README "Batches")
 * ------------------------------------------------------------------------
 */

/* The order rows of items decided but not yet written: one INSERT. */
#define PLACE_NCOLS 15

typedef struct PlacePending
{
	int			n;
	int		   *item;			/* the item (0-based) of each row */
	Datum	   *col[PLACE_NCOLS];
	bool	   *null[PLACE_NCOLS];
	HTAB	   *refs;			/* "account client_order_id" of the rows */
} PlacePending;

/* stmt_insert_order_seq, one row per element of the arrays, in order. */
static ExaStmt stmt_insert_order_rows = {
	"INSERT INTO exchange.orders"
	" (order_id, account_id, symbol, order_type, side, quantity, price, status,"
	"  time_in_force, metadata, stop_price, client_order_id, lock_asset,"
	"  locked_amount, reject_reason, book_seq)"
	" SELECT u.c1, u.c2, u.c3, u.c4, u.c5, u.c6, u.c7, u.c8, u.c9, u.c10, u.c11,"
	"        u.c12, u.c13, u.c14, u.c15,"
	"        CASE WHEN u.c15 IS NULL"
	"             THEN pg_catalog.nextval('exchange.order_book_seq'::pg_catalog.regclass) END"
	"   FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]),"
	"                   pg_catalog.unnest($2::pg_catalog.uuid[]),"
	"                   pg_catalog.unnest($3::pg_catalog.text[]),"
	"                   pg_catalog.unnest($4::pg_catalog.text[]),"
	"                   pg_catalog.unnest($5::pg_catalog.text[]),"
	"                   pg_catalog.unnest($6::pg_catalog.numeric[]),"
	"                   pg_catalog.unnest($7::pg_catalog.numeric[]),"
	"                   pg_catalog.unnest($8::pg_catalog.text[]),"
	"                   pg_catalog.unnest($9::pg_catalog.text[]),"
	"                   pg_catalog.unnest($10::pg_catalog.jsonb[]),"
	"                   pg_catalog.unnest($11::pg_catalog.numeric[]),"
	"                   pg_catalog.unnest($12::pg_catalog.text[]),"
	"                   pg_catalog.unnest($13::pg_catalog.text[]),"
	"                   pg_catalog.unnest($14::pg_catalog.numeric[]),"
	"                   pg_catalog.unnest($15::pg_catalog.text[]))"
	"        WITH ORDINALITY AS u (c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11,"
	"                              c12, c13, c14, c15, n)"
	"  ORDER BY u.n"
	" RETURNING *",
	15, {UUIDARRAYOID, UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		NUMERICARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		JSONBARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	NUMERICARRAYOID, TEXTARRAYOID},
	NULL
};

static const Oid place_col_types[PLACE_NCOLS] = {
	UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID,
	TEXTOID, TEXTOID, JSONBOID, NUMERICOID, TEXTOID, TEXTOID, NUMERICOID,
	TEXTOID
};

/* The key of an item's client_order_id in PlacePending.refs. */
#define PLACE_REF_LEN (EXA_UUID_STR_LEN + CLIENT_ORDER_ID_MAXLEN + 1)

static HTAB *place_refs_create(void);

static void
place_ref_key(ExaPlaceArgs *a, char *key)
{
	memset(key, 0, PLACE_REF_LEN);
	exa_uuid_format(a->account_id, key);
	key[EXA_UUID_STR_LEN - 1] = ' ';
	strlcpy(key + EXA_UUID_STR_LEN, a->client_order_id, CLIENT_ORDER_ID_MAXLEN + 1);
}

static void
place_pending_add(PlacePending *p, int item, ExaPlaceArgs *a, pg_uuid_t *order_id,
				  ExaOrderStatus status, const char *lock_asset,
				  Numeric lock_amount, const char *reject)
{
	int			k = p->n++;
	Datum	   *v[PLACE_NCOLS];
	bool	   *isnull[PLACE_NCOLS];

	for (int c = 0; c < PLACE_NCOLS; c++)
	{
		v[c] = &p->col[c][k];
		isnull[c] = &p->null[c][k];
		*isnull[c] = false;
	}
	p->item[k] = item;
	*v[0] = UUIDPGetDatum(order_id);
	*v[1] = UUIDPGetDatum(a->account_id);
	*v[2] = CStringGetTextDatum(a->symbol);
	*v[3] = CStringGetTextDatum(a->type);
	*v[4] = CStringGetTextDatum(a->side);
	*v[5] = NumericGetDatum(a->quantity);
	*v[6] = a->price ? NumericGetDatum(a->price) : (Datum) 0;
	*isnull[6] = a->price == NULL;
	*v[7] = CStringGetTextDatum(exa_order_status_name(status));
	*v[8] = CStringGetTextDatum(a->tif);
	*v[9] = a->metadata;
	*v[10] = a->stop_price ? NumericGetDatum(a->stop_price) : (Datum) 0;
	*isnull[10] = a->stop_price == NULL;
	*v[11] = a->client_order_id ? CStringGetTextDatum(a->client_order_id) : (Datum) 0;
	*isnull[11] = a->client_order_id == NULL;
	*v[12] = CStringGetTextDatum(lock_asset);
	*v[13] = NumericGetDatum(lock_amount);
	*v[14] = reject ? CStringGetTextDatum(reject) : (Datum) 0;
	*isnull[14] = reject == NULL;
	if (a->client_order_id != NULL)
	{
		char		key[PLACE_REF_LEN];

		place_ref_key(a, key);
		(void) hash_search(p->refs, key, HASH_ENTER, NULL);
	}
}

/* Write the pending rows: results[item] is each row as inserted. */
static void
place_pending_flush(PlacePending *p, Datum *results)
{
	Datum		values[PLACE_NCOLS];
	uint64		rows;

	if (p->n == 0)
		return;
	for (int c = 0; c < PLACE_NCOLS; c++)
		values[c] = exa_datum_array(p->col[c], p->null[c], p->n, place_col_types[c]);
	rows = exa_exec_vouched(&stmt_insert_order_rows, values, NULL, 0);
	if (rows != (uint64) p->n)
		elog(ERROR, "inserted " UINT64_FORMAT " order rows of %d", rows, p->n);
	for (int k = 0; k < p->n; k++)
		results[p->item[k]] = exa_return_row(k);
	p->n = 0;
	hash_destroy(p->refs);
	p->refs = place_refs_create();
}

static HTAB *
place_refs_create(void)
{
	HASHCTL		ctl;

	ctl.keysize = PLACE_REF_LEN;
	ctl.entrysize = PLACE_REF_LEN;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("place_orders client_order_ids", 64, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

static PlacePending *
place_pending_create(int n)
{
	PlacePending *p = palloc0(sizeof(PlacePending));

	p->item = palloc(sizeof(int) * n);
	for (int c = 0; c < PLACE_NCOLS; c++)
	{
		p->col[c] = palloc(sizeof(Datum) * n);
		p->null[c] = palloc(sizeof(bool) * n);
	}
	p->refs = place_refs_create();
	return p;
}

/*
 * The market of an item, read once per symbol for the whole batch; locked
 * lists the INTERNAL markets whose rows the batch holds (symbols).
 */
static PlaceMarket *
place_market_once(List **markets, const char *symbol, List *locked)
{
	ListCell   *lc;
	PlaceMarket *m;

	foreach(lc, *markets)
	{
		m = (PlaceMarket *) lfirst(lc);
		if (strcmp(m->symbol, symbol) == 0)
			return m;
	}
	m = palloc0(sizeof(PlaceMarket));
	place_read_market(symbol, m);
	m->symbol = pstrdup(symbol);
	foreach(lc, locked)
		if (strcmp((char *) lfirst(lc), symbol) == 0)
			m->locked = true;
	/* INTERNAL since the batch locked its markets: as place_order does */
	if (m->internal && !m->locked)
		exa_matching_refuse_unlocked(symbol);
	*markets = lappend(*markets, m);
	return m;
}

/*
 * Would place_order rest item a, accepted so far (no refusal) on the
 * INTERNAL market m, as it inserts it — no execution, no expiry, no stop
 * triggered?  True for a GTC LIMIT order whose price does not reach the
 * best opposite price of the book as the batch's earlier items left it, on
 * a market where no PENDING stop holds at last_price: exa_matching_plan()
 * then stops at the first maker, which does not cross (or finds none),
 * rests the order, and plan_stops() triggers nothing (README "Matching
 * engine").  The top of the book is read under the market's lock at the
 * market's first such item and after each item the engine places; the
 * items decided here raise their own side's best price.
 */
static bool
place_rests_untouched(PlaceMarket *m, ExaPlaceArgs *a)
{
	if (exa_order_type_from_text(a->type) != EXA_TYPE_LIMIT ||
		exa_time_in_force_from_text(a->tif) != EXA_TIF_GTC)
		return false;
	if (!m->top_read)
	{
		exa_matching_book_top(m->symbol, &m->best_bid, &m->best_ask,
							  &m->stops_due);
		m->top_read = true;
	}
	if (m->stops_due)
		return false;
	if (exa_order_side_from_text(a->side) == EXA_SIDE_BUY)
		return m->best_ask == NULL || exa_cmp(a->price, m->best_ask) < 0;
	return m->best_bid == NULL || exa_cmp(a->price, m->best_bid) > 0;
}

/* An order of an INTERNAL market rests, decided in memory: the new top. */
static void
place_rested(PlaceMarket *m, ExaPlaceArgs *a)
{
	if (exa_order_side_from_text(a->side) == EXA_SIDE_BUY)
	{
		if (m->best_bid == NULL || exa_cmp(a->price, m->best_bid) > 0)
			m->best_bid = a->price;
	}
	else if (m->best_ask == NULL || exa_cmp(a->price, m->best_ask) < 0)
		m->best_ask = a->price;
}

/*
 * A retry of a stored client_order_id: results[i] is the stored row (LX009
 * when the order differs).  An earlier item of the batch with the same one
 * is written first, so that it is the stored row.
 */
static bool
place_merged_retry(PlacePending *p, ExaPlaceArgs *a, Datum *results, int i)
{
	char		key[PLACE_REF_LEN];
	Datum		ckey[2];

	place_ref_key(a, key);
	if (hash_search(p->refs, key, HASH_FIND, NULL) != NULL)
		place_pending_flush(p, results);
	ckey[0] = UUIDPGetDatum(a->account_id);
	ckey[1] = CStringGetTextDatum(a->client_order_id);
	if (exa_exec_recheck(&stmt_order_by_client_id, ckey, NULL, 1,
						 "the order with client_order_id \"%s\" of account %s",
						 a->client_order_id, exa_uuid_str(a->account_id)) != 1)
		return false;
	check_order_retry(a->client_order_id, a->symbol, a->side, a->type,
					  a->quantity, a->price, a->tif, a->stop_price);
	results[i] = exa_return_row(0);
	return true;
}

void
exa_place_merged(ExaCall *call, ExaPlaceArgs *args, ExaAccount **accts, int n,
				 List *locked, Datum *results, int *item)
{
	PlacePending *p = place_pending_create(n);
	List	   *markets = NIL;

	for (int i = 0; i < n; i++)
	{
		ExaPlaceArgs *a = &args[i];
		PlaceMarket *m;
		const char *reject;
		char	   *lock_asset;
		Numeric		lock_amount;
		pg_uuid_t  *order_id;
		ExaOrderStatus status;

		*item = i + 1;
		if (a->client_order_id != NULL &&
			place_merged_retry(p, a, results, i))
			continue;
		m = place_market_once(&markets, a->symbol, locked);
		reject = place_refusal(accts[i], m, a->quantity, a->price, a->stop_price);
		if (m->locked && reject == NULL && !place_rests_untouched(m, a))
		{
			/*
			 * It may match, expire or trigger: the matching engine places
			 * it, on a book that holds the rows decided before it.
			 */
			place_pending_flush(p, results);
			results[i] = exa_place_order_call(call, a);
			m->top_read = false;
			continue;
		}
		lock_amount = place_lock_amount(a, m, &lock_asset);
		order_id = exa_new_uuid();

		/*
		 * (An INTERNAL item refused INSUFFICIENT_FUNDS here draws no
		 * book_seq, where place_order's plan draws one before the funds
		 * are checked: a gap in the sequence, the row REJECTED with none
		 * either way.)
		 */
		status = place_lock_funds(call, a, order_id, lock_asset, &lock_amount, &reject);
		if (m->locked && status == EXA_ORDER_OPEN)
			place_rested(m, a);
		place_pending_add(p, i, a, order_id, status, lock_asset, lock_amount, reject);
		exa_order_event(call, order_id, NULL, exa_order_status_name(status), NULL, reject);
		place_keys(call, a, order_id, lock_asset, status);
	}
	*item = 0;
	place_pending_flush(p, results);
}

/* ------------------------------------------------------------------------
 * cancel and expire
 * ------------------------------------------------------------------------
 */

static Datum
close_one(FunctionCallInfo fcinfo, ExaOrderStatus to_status)
{
	pg_uuid_t  *order_id = exa_arg_uuid(fcinfo, 0, "order_id");
	char	   *reason = exa_arg_reason(fcinfo, 1);
	ExaCall		call;
	Datum		result;

	exa_call_begin(&call);
	result = exa_close_order_call(&call, order_id, to_status, reason);
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}

/* cancel_order's and expire_order's reason argument, checked. */
char *
exa_arg_reason(FunctionCallInfo fcinfo, int argno)
{
	return exa_arg_text(fcinfo, argno, "reason", true, REASON_MAXLEN);
}

/*
 * One cancel_order or expire_order inside the caller's ExaCall: returns the
 * closed order row.
 */
Datum
exa_close_order_call(ExaCall *call, pg_uuid_t *order_id,
					 ExaOrderStatus to_status, const char *reason)
{
	ExaAccount	acct;
	ExaOrder	o;
	LedgerMove	release;
	Datum		result;

	exa_matching_lock_order_market(order_id);
	exa_order_lock_account(order_id, &acct);
	exa_order_lock(order_id, &o);
	if (!exa_order_transition_ok(o.status, to_status))
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						exa_order_status_name(o.status),
						exa_order_status_name(to_status)),
				 to_status == EXA_ORDER_CANCELLED ?
				 errdetail("Order %s is %s; only PENDING, OPEN and PARTIAL orders can be cancelled.",
						   exa_uuid_str(order_id), exa_order_status_name(o.status)) :
				 errdetail("Order %s is %s; only PENDING, OPEN and PARTIAL orders can be expired.",
						   exa_uuid_str(order_id), exa_order_status_name(o.status))));
	result = exa_order_close(call, &o, to_status, reason, NULL, &release);
	exa_ledger_move(call, &release, 1);
	return result;
}

/* cancel_order(order_id uuid, reason text DEFAULT NULL) -> orders */
Datum
exa_cancel_order(PG_FUNCTION_ARGS)
{
	return close_one(fcinfo, EXA_ORDER_CANCELLED);
}

/* expire_order(order_id uuid, reason text DEFAULT NULL) -> orders */
Datum
exa_expire_order(PG_FUNCTION_ARGS)
{
	return close_one(fcinfo, EXA_ORDER_EXPIRED);
}

/* Copy column col (uuid) of every SPI row into a List. */
static List *
uuid_column(uint64 n, int col)
{
	List	   *ids = NIL;

	for (uint64 i = 0; i < n; i++)
	{
		pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

		memcpy(id, DatumGetUUIDP(exa_col_notnull(i, col)), sizeof(pg_uuid_t));
		ids = lappend(ids, id);
	}
	return ids;
}

static ExaStmt stmt_lock_orders = {
	"SELECT o.order_id, o.account_id, o.status::pg_catalog.text,"
	"       o.lock_asset::pg_catalog.text, o.locked_amount, o.symbol::pg_catalog.text"
	"  FROM exchange.orders o"
	" WHERE o.order_id OPERATOR(pg_catalog.=) ANY ($1)"
	" ORDER BY o.order_id"
	"   FOR UPDATE OF o",
	1, {UUIDARRAYOID},
	NULL
};

/* Returns the rows in no order: close_orders() sorts them (order_id_cmp). */
static ExaStmt stmt_close_orders = {
	"UPDATE exchange.orders"
	"   SET status = $2, locked_amount = 0, updated_at = pg_catalog.now(),"
	"       cancelled_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'CANCELLED'"
	"                           THEN pg_catalog.now() ELSE cancelled_at END"
	" WHERE order_id OPERATOR(pg_catalog.=) ANY ($1)"
	" RETURNING *",
	2, {UUIDARRAYOID, TEXTOID},
	NULL
};

static ExaStmt stmt_insert_events = {
	"INSERT INTO exchange.order_events"
	" (order_id, from_status, to_status, filled_delta, reason, actor)"
	" SELECT u.order_id, u.from_status, $3, 0, $4, $5"
	"   FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]),"
	"                   pg_catalog.unnest($2::pg_catalog.text[]))"
	"        WITH ORDINALITY AS u (order_id, from_status, n)"
	"  ORDER BY u.n",
	5, {UUIDARRAYOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID},
	NULL
};

/*
 * exa_exec() of a statement that selects orders by order_id = ANY ($1), with
 * the plan walking orders_pkey (sequential and bitmap scans off, as a
 * function's SET clause would set them, for this statement only): the rows
 * then come in ascending order_id, so the lock needs no sort, and the
 * UPDATE inserts the new versions' entries of the order_id indexes in key
 * order rather than all over them.  A batch of a million orders measured
 * twice as fast on its UPDATE (bench/README.md).
 */
static uint64
exec_by_order_id(ExaStmt *stmt, Datum *values)
{
	return exa_exec_indexed(stmt, values, true);
}

/* qsort_arg comparator of orders rows (HeapTuple *) by order_id, column 1 */
static int
order_id_cmp(const void *a, const void *b, void *arg)
{
	TupleDesc	tupdesc = (TupleDesc) arg;
	bool		isnull;
	pg_uuid_t  *ia = DatumGetUUIDP(heap_getattr(*(HeapTuple const *) a, 1, tupdesc, &isnull));
	pg_uuid_t  *ib = DatumGetUUIDP(heap_getattr(*(HeapTuple const *) b, 1, tupdesc, &isnull));

	return exa_uuid_cmp(ia, ib);
}

/*
 * Close every order of ids that is still live once locked: all order rows
 * first (order 2, ids ascending), then every release in one exa_ledger_move()
 * (order 4).  Set-based, as a batch may hold a million orders: one
 * statement locks them, one writes their events, one closes the live ones;
 * rows, events, journal rows and keys are those of closing the orders one
 * by one in ascending order_id (exa_order_close()).
 *
 * The events go in before the UPDATE: the foreign key check of each event
 * (FOR KEY SHARE of its order) then finds the row version this call already
 * holds FOR UPDATE and takes nothing; after the UPDATE it would lock, and
 * WAL-log, every new version.  The closed rows are returned sorted by
 * order_id in memory (order_id_cmp), not by an ORDER BY that spills them.
 */
static void
close_orders(ExaCall *call, List *ids, const char *to_status,
			 const char *reason, ReturnSetInfo *rsinfo)
{
	int			n = list_length(ids);
	ExaOrder   *orders = palloc0(sizeof(ExaOrder) * Max(n, 1));
	LedgerMove *moves = palloc0(sizeof(LedgerMove) * Max(n, 1));
	Datum	   *live_ids = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *from = palloc(sizeof(Datum) * Max(n, 1));
	int			nlive = 0;
	uint64		nrows;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', reason ? ' ' : 'n', ' '};
	Datum		live_array;

	if (n == 0)
		return;
	values[0] = exa_uuid_array(ids);
	nrows = exec_by_order_id(&stmt_lock_orders, values);
	for (uint64 i = 0; i < nrows; i++)
	{
		ExaOrder   *o = &orders[nlive];
		char	   *status = exa_col_cstring(i, 3);

		/* it may have been filled or closed while we waited for it */
		if (!exa_order_is_live(exa_order_status_from_text(status)))
			continue;
		memcpy(&o->order_id, DatumGetUUIDP(exa_col_notnull(i, 1)), sizeof(pg_uuid_t));
		memcpy(&o->account_id, DatumGetUUIDP(exa_col_notnull(i, 2)), sizeof(pg_uuid_t));
		o->status = exa_order_status_from_text(status);
		o->lock_asset = exa_col_cstring(i, 4);
		o->locked_amount = DatumGetNumericCopy(exa_col_notnull(i, 5));
		o->symbol = exa_col_cstring(i, 6);
		live_ids[nlive] = UUIDPGetDatum(&o->order_id);
		from[nlive] = CStringGetTextDatum(status);
		nlive++;
	}
	SPI_freetuptable(SPI_tuptable);
	if (nlive == 0)
		return;

	live_array = PointerGetDatum(construct_array(live_ids, nlive, UUIDOID, UUID_LEN,
												 false, TYPALIGN_CHAR));
	values[0] = live_array;
	values[1] = PointerGetDatum(construct_array(from, nlive, TEXTOID, -1, false,
												TYPALIGN_INT));
	values[2] = CStringGetTextDatum(to_status);
	values[3] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	values[4] = PointerGetDatum(exa_call_actor(call));
	exa_exec_vouched(&stmt_insert_events, values, nulls, 0);

	values[0] = live_array;
	values[1] = CStringGetTextDatum(to_status);
	nrows = exec_by_order_id(&stmt_close_orders, values);
	qsort_arg(SPI_tuptable->vals, nrows, sizeof(HeapTuple), order_id_cmp,
			  SPI_tuptable->tupdesc);
	for (uint64 i = 0; i < nrows; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
	SPI_freetuptable(SPI_tuptable);

	for (int i = 0; i < nlive; i++)
	{
		ExaOrder   *o = &orders[i];

		order_release_move(o, &moves[i]);
		order_keys(call, o, order_in_book(o->status));
	}
	exa_ledger_move(call, moves, nlive);
}

/*
 * Lock (in order 1) every account in ids, which the query returned in
 * ascending order.
 */
static void
lock_accounts(List *ids)
{
	ListCell   *lc;

	foreach(lc, ids)
	{
		ExaAccount	acct;

		exa_ledger_lock_account((pg_uuid_t *) lfirst(lc), false, &acct);
	}
}

static ExaStmt stmt_market_status = {
	"SELECT status::pg_catalog.text FROM exchange.markets"
	" WHERE symbol OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID},
	NULL
};

/*
 * The market's status; LX003 when it does not exist.  Callers that only
 * need it to exist (cancel and expire work whatever the status) pass
 * need_status false: under REPEATABLE READ only a market created after the
 * snapshot then raises 40001, not a status change.
 */
static ExaMarketStatus
market_status(const char *symbol, bool need_status)
{
	Datum		key[1] = {CStringGetTextDatum(symbol)};
	uint64		n;

	if (need_status)
		n = exa_exec_recheck(&stmt_market_status, key, NULL, 1,
							 "market \"%s\"", symbol);
	else if ((n = exa_exec(&stmt_market_status, key, NULL, 1)) == 0)
		exa_recheck_missing(&stmt_market_status, key, NULL,
							"market \"%s\"", symbol);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("market \"%s\" does not exist", symbol)));
	return exa_market_status_from_text(exa_col_cstring(0, 1));
}

static ExaStmt stmt_account_live_orders = {
	"SELECT order_id FROM exchange.orders"
	" WHERE account_id OPERATOR(pg_catalog.=) $1"
	"   AND ($2 IS NULL OR symbol OPERATOR(pg_catalog.=) $2)"
	"   AND status IN ('PENDING', 'OPEN', 'PARTIAL')"
	" ORDER BY order_id",
	2, {UUIDOID, TEXTOID},
	NULL
};

/* cancel_orders(account_id uuid, symbol text DEFAULT NULL) -> setof orders */
Datum
exa_cancel_orders(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *account_id = exa_arg_uuid(fcinfo, 0, "account_id");
	char	   *symbol = exa_arg_text(fcinfo, 1, "symbol", true, 21);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[2];
	char		nulls[2] = {' ', symbol ? ' ' : 'n'};
	ExaAccount	acct;
	ExaCall		call;
	List	   *ids;
	List	   *locked_markets;

	InitMaterializedSRF(fcinfo, 0);
	exa_call_begin(&call);
	if (symbol != NULL)
		(void) market_status(symbol, false);	/* LX003 for an unknown market */
	locked_markets = exa_matching_lock_account_markets(account_id, symbol);
	exa_ledger_lock_account(account_id, false, &acct);

	values[0] = UUIDPGetDatum(account_id);
	values[1] = symbol ? CStringGetTextDatum(symbol) : (Datum) 0;
	ids = uuid_column(exa_exec_recheck(&stmt_account_live_orders, values, nulls, 0,
									   "the live orders of account %s",
									   exa_uuid_str(account_id)), 1);
	ids = exa_matching_skip_unlocked(ids, locked_markets);
	close_orders(&call, ids, "CANCELLED", "cancel_orders", rsinfo);
	exa_call_end(&call);
	return (Datum) 0;
}

static ExaStmt stmt_expirable_accounts = {
	"SELECT DISTINCT account_id FROM exchange.orders"
	" WHERE symbol OPERATOR(pg_catalog.=) $1"
	"   AND created_at OPERATOR(pg_catalog.<) $2"
	"   AND status IN ('PENDING', 'OPEN', 'PARTIAL')"
	" ORDER BY account_id",
	2, {TEXTOID, TIMESTAMPTZOID},
	NULL
};

static ExaStmt stmt_expirable_orders = {
	"SELECT order_id FROM exchange.orders"
	" WHERE symbol OPERATOR(pg_catalog.=) $1"
	"   AND created_at OPERATOR(pg_catalog.<) $2"
	"   AND status IN ('PENDING', 'OPEN', 'PARTIAL')"
	"   AND account_id OPERATOR(pg_catalog.=) ANY ($3)"
	" ORDER BY order_id",
	3, {TEXTOID, TIMESTAMPTZOID, UUIDARRAYOID},
	NULL
};

/*
 * The orders a market batch acts on, their accounts locked first (order 1):
 * accounts_stmt ($1 symbol, $2 the batch's bound) chooses the accounts,
 * orders_stmt (the same and $3 the accounts, set here in values[2]) their
 * orders.  what (with symbol) names them for a 40001 (exa_exec_recheck).
 */
static List *
market_batch_orders(ExaStmt *accounts_stmt, ExaStmt *orders_stmt,
					Datum *values, const char *what, const char *symbol)
{
	List	   *accounts;

	accounts = uuid_column(exa_exec_recheck(accounts_stmt, values, NULL, 0,
											what, symbol), 1);
	lock_accounts(accounts);
	values[2] = exa_uuid_array(accounts);
	return uuid_column(exa_exec_recheck(orders_stmt, values, NULL, 0,
										what, symbol), 1);
}

/*
 * expire_orders(symbol text, placed_before timestamptz) -> setof orders
 *
 * The operator's end-of-day batch.  Accounts are locked first (order 1),
 * then their orders (order 2); an order placed by another account after
 * the accounts were chosen is left for the next run.
 */
Datum
exa_expire_orders(PG_FUNCTION_ARGS)
{
	char	   *symbol = exa_arg_text(fcinfo, 0, "symbol", false, 21);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz placed_before;
	Datum		values[3];
	ExaCall		call;
	List	   *ids;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parameter \"%s\" must not be null", "placed_before")));
	placed_before = PG_GETARG_TIMESTAMPTZ(1);

	InitMaterializedSRF(fcinfo, 0);
	exa_call_begin(&call);
	(void) market_status(symbol, false);
	exa_matching_lock_symbol(symbol);

	values[0] = CStringGetTextDatum(symbol);
	values[1] = TimestampTzGetDatum(placed_before);
	ids = market_batch_orders(&stmt_expirable_accounts, &stmt_expirable_orders,
							  values, "the live orders of market \"%s\"", symbol);
	close_orders(&call, ids, "EXPIRED", "expire_orders", rsinfo);
	exa_call_end(&call);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * trigger_stop_orders
 * ------------------------------------------------------------------------
 */

#define STOP_CONDITION \
	"   AND status OPERATOR(pg_catalog.=) 'PENDING'" \
	"   AND ((side OPERATOR(pg_catalog.=) 'BUY' AND stop_price OPERATOR(pg_catalog.<=) $2)" \
	"     OR (side OPERATOR(pg_catalog.=) 'SELL' AND stop_price OPERATOR(pg_catalog.>=) $2))"

static ExaStmt stmt_stop_accounts = {
	"SELECT DISTINCT account_id FROM exchange.orders"
	" WHERE symbol OPERATOR(pg_catalog.=) $1" STOP_CONDITION
	" ORDER BY account_id",
	2, {TEXTOID, NUMERICOID},
	NULL
};

static ExaStmt stmt_stop_orders = {
	"SELECT order_id FROM exchange.orders"
	" WHERE symbol OPERATOR(pg_catalog.=) $1" STOP_CONDITION
	"   AND account_id OPERATOR(pg_catalog.=) ANY ($3)"
	" ORDER BY order_id",
	3, {TEXTOID, NUMERICOID, UUIDARRAYOID},
	NULL
};

static ExaStmt stmt_open_stop = {
	"UPDATE exchange.orders SET status = 'OPEN', updated_at = pg_catalog.now()"
	" WHERE order_id OPERATOR(pg_catalog.=) $1 RETURNING *",
	1, {UUIDOID},
	NULL
};

/* The same on a 1.1 catalog: a triggered stop ranks by trigger time. */
static ExaStmt stmt_open_stop_seq = {
	"UPDATE exchange.orders SET status = 'OPEN', updated_at = pg_catalog.now(),"
	"       book_seq = pg_catalog.nextval('exchange.order_book_seq'::pg_catalog.regclass)"
	" WHERE order_id OPERATOR(pg_catalog.=) $1 RETURNING *",
	1, {UUIDOID},
	NULL
};

/*
 * trigger_stop_orders(symbol text, last_price numeric) -> setof orders
 *
 * PENDING stops whose condition holds become OPEN: a BUY stop when
 * last_price >= stop_price, a SELL stop when last_price <= stop_price.
 * Their funds were locked at placement.  A HALTED market triggers nothing.
 */
Datum
exa_trigger_stop_orders(PG_FUNCTION_ARGS)
{
	char	   *symbol = exa_arg_text(fcinfo, 0, "symbol", false, 21);
	Numeric		last_price = exa_arg_amount(fcinfo, 1, "last_price", EXA_AMOUNT_POSITIVE);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	ExaCall		call;
	List	   *ids;
	ListCell   *lc;
	char	   *reason;
	bool		any = false;

	InitMaterializedSRF(fcinfo, 0);
	exa_call_begin(&call);
	exa_matching_refuse_internal(symbol, "trigger_stop_orders");
	if (market_status(symbol, true) != EXA_MARKET_ACTIVE)
	{
		exa_call_end(&call);
		return (Datum) 0;
	}

	values[0] = CStringGetTextDatum(symbol);
	values[1] = NumericGetDatum(last_price);
	ids = market_batch_orders(&stmt_stop_accounts, &stmt_stop_orders,
							  values, "the PENDING stops of market \"%s\"", symbol);
	reason = psprintf("stop triggered at %s", exa_num_str(last_price));
	foreach(lc, ids)
	{
		ExaOrder	o;
		Datum		key[1];

		exa_order_lock((pg_uuid_t *) lfirst(lc), &o);
		if (o.status != EXA_ORDER_PENDING)
			continue;			/* cancelled or expired meanwhile */
		key[0] = UUIDPGetDatum(&o.order_id);
		exa_exec(exa_catalog_is_1_1() ? &stmt_open_stop_seq : &stmt_open_stop,
				 key, NULL, 1);
		(void) order_result(rsinfo);
		exa_order_event(&call, &o.order_id, exa_order_status_name(EXA_ORDER_PENDING),
						exa_order_status_name(EXA_ORDER_OPEN), NULL, reason);
		exa_call_key(&call, "cache:order:%s", exa_uuid_str(&o.order_id));
		exa_call_key(&call, "cache:orders:%s", exa_uuid_str(&o.account_id));
		any = true;
	}
	if (any)
		exa_call_book_keys(&call, symbol);
	exa_call_end(&call);
	return (Datum) 0;
}
