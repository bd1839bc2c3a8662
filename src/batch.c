/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  The batch calls: place_orders, cancel_order_ids, apply_trades and
 *	  apply_matches (README "Batches").
 *
 * A batch call runs its items in array order, each decided as its single
 * call decides it (exa_place_order_call, exa_close_order_call in orders.c,
 * exa_apply_trade_call, exa_apply_match_call in trades.c), inside one
 * ExaCall: one outbox row per batch, its keys de-duplicated.  Every item is
 * parsed and checked, with the single call's argument checks, before
 * anything is locked; an error of any item, parsing or running, raises for
 * the whole call with "Item i of n" in its errdetail, and the statement's
 * rollback undoes the items before it.
 *
 * Statements are merged (README "Batches"): the journal rows and order
 * events of all items are written at the end, one INSERT each; the balance
 * rows the lock pass read are held in memory (exa_call_hold_balances) and
 * written with one UPDATE; and place_orders decides its items in memory
 * and writes their order rows with one INSERT (exa_place_merged).  On an
 * INTERNAL market that holds only for an item that rests untouched — a GTC
 * LIMIT order that does not reach the best opposite price of the book, read
 * once under the market's lock and kept up to date with the batch's own
 * resting items, no stop due; any other accepted item there (one that may
 * cross, MARKET, IOC, FOK, STOP, or a stop due) first has the rows decided
 * before it written, then runs through the matching engine as place_order,
 * which reads the book and the balances itself; the top of that market's
 * book is then read again.
 *
 * Locks: before the first item runs, the union of what the items need, in
 * the global order (README "Concurrency", ledger.h), each set ascending:
 *	 0. the markets rows of the INTERNAL markets named, by symbol (C order);
 *	 1. the account rows FOR SHARE, by account_id;
 *		then the idempotency advisory locks, by (account_id, client_order_id);
 *	 2. (all but place_orders) the order rows FOR UPDATE, by order_id;
 *	 4. the balance rows the items lock or release, by (account_id, asset);
 *		apply_trades and apply_matches: every balance row of the orders'
 *		accounts, and the row of the asset each order's fills credit,
 *		created where missing in its place in that order (a fill's credit
 *		creates it: a batch that created it later, item by item, could
 *		deadlock with a single call doing the same).
 * Each item then takes its own locks again, which it already holds, so a
 * batch never waits on a lock after it holds one of a later level: it
 * deadlocks with neither the single calls nor other batches, whatever the
 * order of their items.  A batch of one item skips the pass: its single
 * call takes the same locks in the same order, and the pass would only
 * add statements.  The makers' rows an INTERNAL market's plan touches
 * are taken under that market's row lock, as in place_order.
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
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "args.h"
#include "catalog_version.h"
#include "exchange_adapter.h"
#include "ledger.h"
#include "matching.h"
#include "orders.h"
#include "stmt.h"
#include "trades.h"

PG_FUNCTION_INFO_V1(exa_place_orders);
PG_FUNCTION_INFO_V1(exa_cancel_order_ids);
PG_FUNCTION_INFO_V1(exa_apply_trades);
PG_FUNCTION_INFO_V1(exa_apply_matches);

/* One argument of a single call, as a batch item's key names it. */
typedef struct ExaBatchParam
{
	const char *name;
	Oid			type;			/* UUIDOID, TEXTOID, NUMERICOID, JSONBOID or
								 * TIMESTAMPTZOID */
	bool		required;		/* no SQL default */
	const char *dflt;			/* the SQL default when not NULL */
} ExaBatchParam;

static const ExaBatchParam place_params[] = {
	{"account_id", UUIDOID, true, NULL},
	{"symbol", TEXTOID, true, NULL},
	{"side", TEXTOID, true, NULL},
	{"order_type", TEXTOID, true, NULL},
	{"quantity", NUMERICOID, true, NULL},
	{"price", NUMERICOID, false, NULL},
	{"time_in_force", TEXTOID, false, NULL},
	{"stop_price", NUMERICOID, false, NULL},
	{"client_order_id", TEXTOID, false, NULL},
	{"metadata", JSONBOID, false, "{}"},
};

#define PLACE_NPARAMS lengthof(place_params)

static const ExaBatchParam trade_params[] = {
	{"order_id", UUIDOID, true, NULL},
	{"quantity", NUMERICOID, true, NULL},
	{"price", NUMERICOID, true, NULL},
	{"fee", NUMERICOID, false, NULL},
	{"fee_currency", TEXTOID, false, NULL},
	{"executed_at", TIMESTAMPTZOID, false, NULL},	/* NULL: now() */
	{"trade_ref", TEXTOID, false, NULL},
	{"liquidity", TEXTOID, false, NULL},
};

#define TRADE_NPARAMS lengthof(trade_params)

static const ExaBatchParam match_params[] = {
	{"buy_order_id", UUIDOID, true, NULL},
	{"sell_order_id", UUIDOID, true, NULL},
	{"quantity", NUMERICOID, true, NULL},
	{"price", NUMERICOID, true, NULL},
	{"buy_fee", NUMERICOID, false, NULL},
	{"sell_fee", NUMERICOID, false, NULL},
	{"trade_ref", TEXTOID, false, NULL},
	{"maker", TEXTOID, false, NULL},
};

#define MATCH_NPARAMS lengthof(match_params)

/* The item being parsed or run (1-based), 0 outside; for the errdetail. */
static int	exa_batch_item = 0;
static int	exa_batch_count = 0;

/* Raise 54000 beyond exchange_adapter.max_batch items. */
static void
batch_check_count(int n, const char *what)
{
	if (n > exa_max_batch)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has %d items, more than exchange_adapter.max_batch (%d)",
						what, n, exa_max_batch),
				 errhint("Split the batch, or raise exchange_adapter.max_batch.")));
}

/*
 * Run fn(arg) with the item index added to the errdetail of any error it
 * raises: "Item i of n: <detail>".
 */
static void
batch_run(void (*fn) (void *), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	exa_batch_item = 0;
	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			item = exa_batch_item;

		exa_batch_item = 0;
		if (item <= 0)
			PG_RE_THROW();
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (edata->detail)
			edata->detail = psprintf("Item %d of %d: %s", item,
									 exa_batch_count, edata->detail);
		else
			edata->detail = psprintf("Item %d of %d.", item, exa_batch_count);
		ReThrowError(edata);
	}
	PG_END_TRY();
	exa_batch_item = 0;
}

/* A jsonb value as the SQL value of type, the way a call's argument is. */
static Datum
batch_value(JsonbValue *v, const ExaBatchParam *p)
{
	char	   *s;

	if (p->type == JSONBOID)
		return JsonbPGetDatum(JsonbValueToJsonb(v));
	if (p->type == NUMERICOID && v->type == jbvNumeric)
		return NumericGetDatum(v->val.numeric);
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key \"%s\" must be a JSON string%s", p->name,
						p->type == NUMERICOID ? " or number" : "")));
	s = pnstrdup(v->val.string.val, v->val.string.len);
	switch (p->type)
	{
		case UUIDOID:
			return DirectFunctionCall1(uuid_in, CStringGetDatum(s));
		case NUMERICOID:
			return DirectFunctionCall3(numeric_in, CStringGetDatum(s),
									   ObjectIdGetDatum(InvalidOid),
									   Int32GetDatum(-1));
		case TIMESTAMPTZOID:
			return DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
									   ObjectIdGetDatum(InvalidOid),
									   Int32GetDatum(-1));
		default:
			return CStringGetTextDatum(s);
	}
}

/*
 * Fill fc's arguments from one item, a JSON object whose keys are the
 * single call's argument names: a missing key takes the SQL default, a JSON
 * null is NULL; an unknown or missing required key is 22023.
 */
static void
batch_item_args(JsonbValue *item, const ExaBatchParam *params, int nparams,
				FunctionCallInfo fc)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	bool		seen[16] = {0};

	if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a batch item must be a JSON object")));
	it = JsonbIteratorInit(item->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		int			i;
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		for (i = 0; i < nparams && strcmp(params[i].name, key) != 0; i++)
			;
		if (i == nparams)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%s\" in a batch item", key)));
		seen[i] = true;
		fc->args[i].isnull = v.type == jbvNull;
		fc->args[i].value = v.type == jbvNull ? (Datum) 0 : batch_value(&v, &params[i]);
	}
	for (int i = 0; i < nparams; i++)
	{
		if (seen[i])
			continue;
		if (params[i].required)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a batch item needs key \"%s\"", params[i].name)));
		fc->args[i].isnull = params[i].dflt == NULL;
		fc->args[i].value = params[i].dflt == NULL ? (Datum) 0 :
			DirectFunctionCall1(jsonb_in, CStringGetDatum(params[i].dflt));
	}
}

/* The elements of a jsonb array argument (22023 otherwise, 22004 NULL). */
static JsonbValue *
batch_items(FunctionCallInfo fcinfo, const char *name, int *n)
{
	Jsonb	   *j;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbValue *items;
	int			count = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parameter \"%s\" must not be null", name)));
	j = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_ARRAY(j) || JB_ROOT_IS_SCALAR(j))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must be a JSON array of objects", name)));
	*n = JB_ROOT_COUNT(j);
	batch_check_count(*n, name);
	items = palloc(sizeof(JsonbValue) * Max(*n, 1));
	it = JsonbIteratorInit(&j->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_ELEM)
			items[count++] = v;
	return items;
}

/*
 * A batch is one call: one ExaCall, one outbox row.  Its journal rows and
 * order events are written at its end, one INSERT each.
 */
static void
batch_call_begin(ExaCall *call)
{
	exa_call_begin(call);
	exa_call_defer_journal(call);
	exa_order_defer_events(call);
}

static void
batch_call_end(ExaCall *call)
{
	exa_order_events_flush(call);
	exa_call_end(call);
}

/* Put a composite Datum (a row of the result's type) into the result. */
static void
batch_put(ReturnSetInfo *rsinfo, Datum row)
{
	HeapTupleHeader td = DatumGetHeapTupleHeader(row);
	HeapTupleData tuple;

	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = td;
	tuplestore_puttuple(rsinfo->setResult, &tuple);
}

/* A fill batch's trades, written at its end (exa_trades_defer), in order. */
static void
batch_put_trades(ExaCall *call, ReturnSetInfo *rsinfo)
{
	Datum	   *rows;
	int			n;

	if (call->trades == NULL)
		return;
	n = exa_trades_results(call, &rows);
	for (int i = 0; i < n; i++)
		batch_put(rsinfo, rows[i]);
}

/* ------------------------------------------------------------------------
 * place_orders
 * ------------------------------------------------------------------------
 */

typedef struct PlaceBatch
{
	FunctionCallInfo fcinfo;
	int			n;
	JsonbValue *items;
	ExaPlaceArgs *args;
	ExaAccount **accts;			/* each item's account, as locked */
	List	   *internal;		/* the INTERNAL markets locked (symbols) */
} PlaceBatch;

static int
cstring_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
uuid_ptr_cmp(const void *a, const void *b)
{
	return exa_uuid_cmp(*(pg_uuid_t *const *) a, *(pg_uuid_t *const *) b);
}

/* Sort an array of pointers and drop duplicates; returns the new count. */
static int
sort_unique(void **v, int n, int (*cmp) (const void *, const void *))
{
	int			m = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(void *), cmp);
	for (int i = 1; i < n; i++)
		if (cmp(&v[i], &v[m]) != 0)
			v[++m] = v[i];
	return m + 1;
}

static ExaStmt stmt_market_assets = {
	"SELECT base_asset::pg_catalog.text, quote_asset::pg_catalog.text"
	"  FROM exchange.markets WHERE symbol OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID},
	NULL
};

/*
 * place_orders' locks of orders 0 and 1: the INTERNAL markets, the accounts
 * (an unknown one raises LX003 at the first item naming it), then the
 * client_order_id advisory locks.
 */
static void
place_lock_markets_accounts(PlaceBatch *b)
{
	char	  **symbols = palloc(sizeof(char *) * b->n);
	pg_uuid_t **accounts = palloc(sizeof(pg_uuid_t *) * b->n);
	char	  **refs = palloc(sizeof(char *) * b->n);
	int			nsym,
				nacc,
				nref = 0;

	for (int i = 0; i < b->n; i++)
	{
		symbols[i] = b->args[i].symbol;
		accounts[i] = b->args[i].account_id;
		if (b->args[i].client_order_id != NULL)
			refs[nref++] = psprintf("%s %s", exa_uuid_str(b->args[i].account_id),
									b->args[i].client_order_id);
	}
	nsym = sort_unique((void **) symbols, b->n, cstring_cmp);
	for (int i = 0; i < nsym; i++)
		if (exa_matching_lock_market(symbols[i]) != NULL)
			b->internal = lappend(b->internal, symbols[i]);
	nacc = sort_unique((void **) accounts, b->n, uuid_ptr_cmp);
	b->accts = palloc(sizeof(ExaAccount *) * b->n);
	for (int i = 0; i < nacc; i++)
	{
		ExaAccount *acct = palloc(sizeof(ExaAccount));

		for (exa_batch_item = 1; exa_batch_item <= b->n; exa_batch_item++)
			if (exa_uuid_cmp(b->args[exa_batch_item - 1].account_id, accounts[i]) == 0)
				break;
		exa_ledger_lock_account(accounts[i], false, acct);
		for (int k = exa_batch_item - 1; k < b->n; k++)
			if (exa_uuid_cmp(b->args[k].account_id, accounts[i]) == 0)
				b->accts[k] = acct;
	}
	exa_batch_item = 0;
	/* the uuid's text form sorts as the uuid does */
	nref = sort_unique((void **) refs, nref, cstring_cmp);
	for (int i = 0; i < nref; i++)
	{
		pg_uuid_t  *acct = DatumGetUUIDP(DirectFunctionCall1(uuid_in,
															 CStringGetDatum(pnstrdup(refs[i], 36))));

		exa_ledger_lock_reference(acct, "ORDER", refs[i] + 37);
	}
}

/*
 * place_orders' balance locks (order 4): each item's lock asset; the rows,
 * as locked.
 */
static ExaBalanceSet *
place_lock_balances(PlaceBatch *b)
{
	List	   *accounts = NIL;
	List	   *assets = NIL;
	const char *symbol = NULL;	/* the market read last, and its assets */
	char	   *base = NULL;
	char	   *quote = NULL;

	for (int i = 0; i < b->n; i++)
	{
		ExaPlaceArgs *a = &b->args[i];

		if (symbol == NULL || strcmp(symbol, a->symbol) != 0)
		{
			Datum		key[1] = {CStringGetTextDatum(a->symbol)};

			symbol = a->symbol;
			base = quote = NULL;
			if (exa_exec(&stmt_market_assets, key, NULL, 1) == 1)
			{
				base = exa_col_cstring(0, 1);
				quote = exa_col_cstring(0, 2);
			}
		}
		if (base == NULL)
			continue;			/* the item raises LX003 when it runs */
		accounts = lappend(accounts, a->account_id);
		assets = lappend(assets, exa_order_side_from_text(a->side) == EXA_SIDE_BUY ?
						 quote : base);
	}
	return exa_ledger_lock_balances(accounts, assets);
}

static void
place_orders_run(void *arg)
{
	PlaceBatch *b = (PlaceBatch *) arg;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) b->fcinfo->resultinfo;
	LOCAL_FCINFO(fc, PLACE_NPARAMS);
	ExaCall		call;
	ExaBalanceSet *set = NULL;

	/* every item checked before anything is locked */
	for (int i = 0; i < b->n; i++)
	{
		exa_batch_item = i + 1;
		batch_item_args(&b->items[i], place_params, PLACE_NPARAMS, fc);
		exa_place_parse(fc, &b->args[i]);
	}
	exa_batch_item = 0;

	batch_call_begin(&call);
	if (b->n > 1)
	{
		place_lock_markets_accounts(b);
		set = place_lock_balances(b);
	}
	/*
	 * The balance rows locked are held in memory either way: the matching
	 * engine only locks balance rows and moves them through the ledger.
	 */
	if (set != NULL)
		exa_call_hold_balances(&call, set);
	if (b->n > 1 && exa_catalog_is_1_1())
	{
		/* decided item by item, written together (INTERNAL: see above) */
		Datum	   *results = palloc(sizeof(Datum) * b->n);

		exa_place_merged(&call, b->args, b->accts, b->n, b->internal, results,
						 &exa_batch_item);
		for (int i = 0; i < b->n; i++)
			batch_put(rsinfo, results[i]);
	}
	else
	{
		for (int i = 0; i < b->n; i++)
		{
			exa_batch_item = i + 1;
			batch_put(rsinfo, exa_place_order_call(&call, &b->args[i]));
		}
	}
	exa_batch_item = 0;
	batch_call_end(&call);
}

/* place_orders(orders jsonb) -> setof orders */
Datum
exa_place_orders(PG_FUNCTION_ARGS)
{
	PlaceBatch	b = {0};

	b.fcinfo = fcinfo;
	b.items = batch_items(fcinfo, "orders", &b.n);
	InitMaterializedSRF(fcinfo, 0);
	if (b.n == 0)
		return (Datum) 0;
	b.args = palloc0(sizeof(ExaPlaceArgs) * b.n);
	exa_batch_count = b.n;
	batch_run(place_orders_run, &b);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * cancel_order_ids
 * ------------------------------------------------------------------------
 */

typedef struct CancelBatch
{
	FunctionCallInfo fcinfo;
	int			n;
	pg_uuid_t **ids;
	char	   *reason;
} CancelBatch;

static ExaStmt stmt_cancel_markets = {
	"SELECT DISTINCT m.symbol::pg_catalog.text COLLATE \"C\" AS s"
	"  FROM exchange.orders o"
	"  JOIN exchange.markets m ON m.symbol OPERATOR(pg_catalog.=) o.symbol"
	" WHERE o.order_id OPERATOR(pg_catalog.=) ANY ($1)"
	"   AND m.matching OPERATOR(pg_catalog.=) 'INTERNAL'"
	" ORDER BY 1",
	1, {UUIDARRAYOID},
	NULL
};

static ExaStmt stmt_cancel_accounts = {
	"SELECT DISTINCT o.account_id FROM exchange.orders o"
	" WHERE o.order_id OPERATOR(pg_catalog.=) ANY ($1)"
	" ORDER BY 1",
	1, {UUIDARRAYOID},
	NULL
};

static ExaStmt stmt_cancel_lock_orders = {
	"SELECT o.account_id, o.lock_asset::pg_catalog.text FROM exchange.orders o"
	" WHERE o.order_id OPERATOR(pg_catalog.=) ANY ($1)"
	" ORDER BY o.order_id"
	"   FOR UPDATE OF o",
	1, {UUIDARRAYOID},
	NULL
};

/* Copy column 1 of every SPI row: uuid (as pg_uuid_t *) or text. */
static List *
spi_column(uint64 n, bool uuid)
{
	List	   *out = NIL;

	for (uint64 i = 0; i < n; i++)
	{
		if (uuid)
		{
			pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

			memcpy(id, DatumGetUUIDP(exa_col_notnull(i, 1)), sizeof(pg_uuid_t));
			out = lappend(out, id);
		}
		else
			out = lappend(out, exa_col_cstring(i, 1));
	}
	return out;
}

/*
 * cancel_order_ids' locks, orders 0, 1, 2 and 4; unknown ids lock nothing.
 * Returns the balance rows, or NULL when an order is on an INTERNAL market
 * (whose book changes run through matching.c, which reads balances itself).
 */
static ExaBalanceSet *
cancel_lock_all(CancelBatch *b)
{
	List	   *ids = NIL;
	List	   *accounts = NIL;
	List	   *assets = NIL;
	List	   *internal = NIL;
	ListCell   *lc;
	Datum		values[1];
	uint64		n;
	ExaBalanceSet *set;

	for (int i = 0; i < b->n; i++)
		ids = lappend(ids, b->ids[i]);
	values[0] = exa_uuid_array(ids);
	if (exa_catalog_is_1_1())
	{
		internal = spi_column(exa_exec(&stmt_cancel_markets, values, NULL, 0), false);
		foreach(lc, internal)
			exa_matching_lock_symbol((char *) lfirst(lc));
	}
	foreach(lc, spi_column(exa_exec(&stmt_cancel_accounts, values, NULL, 0), true))
	{
		ExaAccount	acct;

		exa_ledger_lock_account((pg_uuid_t *) lfirst(lc), false, &acct);
	}
	n = exa_exec(&stmt_cancel_lock_orders, values, NULL, 0);
	for (uint64 i = 0; i < n; i++)
	{
		pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

		memcpy(id, DatumGetUUIDP(exa_col_notnull(i, 1)), sizeof(pg_uuid_t));
		accounts = lappend(accounts, id);
		assets = lappend(assets, exa_col_cstring(i, 2));
	}
	set = exa_ledger_lock_balances(accounts, assets);
	return internal == NIL ? set : NULL;
}

static void
cancel_order_ids_run(void *arg)
{
	CancelBatch *b = (CancelBatch *) arg;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) b->fcinfo->resultinfo;
	ExaCall		call;
	ExaBalanceSet *set;

	batch_call_begin(&call);
	if (b->n > 1 && (set = cancel_lock_all(b)) != NULL)
		exa_call_hold_balances(&call, set);
	for (int i = 0; i < b->n; i++)
	{
		exa_batch_item = i + 1;
		batch_put(rsinfo, exa_close_order_call(&call, b->ids[i],
											   EXA_ORDER_CANCELLED, b->reason));
	}
	exa_batch_item = 0;
	batch_call_end(&call);
}

/* The uuid[] argument's elements; a NULL one raises 22004 at its index. */
static pg_uuid_t **
batch_uuid_items(FunctionCallInfo fcinfo, const char *name, int *n)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	pg_uuid_t **ids;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parameter \"%s\" must not be null", name)));
	arr = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must be a one-dimensional array", name)));
	deconstruct_array(arr, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
					  &elems, &nulls, n);
	batch_check_count(*n, name);
	ids = palloc(sizeof(pg_uuid_t *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("parameter \"%s\" must not be null", "order_id"),
					 errdetail("Item %d of %d.", i + 1, *n)));
		ids[i] = DatumGetUUIDP(elems[i]);
	}
	return ids;
}

/* cancel_order_ids(order_ids uuid[], reason text DEFAULT NULL) -> setof orders */
Datum
exa_cancel_order_ids(PG_FUNCTION_ARGS)
{
	CancelBatch b;

	b.fcinfo = fcinfo;
	b.ids = batch_uuid_items(fcinfo, "order_ids", &b.n);
	b.reason = exa_arg_reason(fcinfo, 1);
	InitMaterializedSRF(fcinfo, 0);
	if (b.n == 0)
		return (Datum) 0;
	exa_batch_count = b.n;
	batch_run(cancel_order_ids_run, &b);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * apply_trades
 * ------------------------------------------------------------------------
 */

typedef struct TradeBatch
{
	FunctionCallInfo fcinfo;
	int			n;
	JsonbValue *items;
	ExaTradeArgs *args;
} TradeBatch;

/* The accounts of the orders of EXTERNAL markets (INTERNAL ones refuse). */
static ExaStmt stmt_trade_accounts = {
	"SELECT DISTINCT o.account_id FROM exchange.orders o"
	"  JOIN exchange.markets m ON m.symbol OPERATOR(pg_catalog.=) o.symbol"
	" WHERE o.order_id OPERATOR(pg_catalog.=) ANY ($1)"
	"   AND m.matching OPERATOR(pg_catalog.<>) 'INTERNAL'"
	" ORDER BY 1",
	1, {UUIDARRAYOID},
	NULL
};

static ExaStmt stmt_trade_lock_orders = {
	"SELECT o.order_id, o.account_id,"
	"       CASE WHEN o.side OPERATOR(pg_catalog.=) 'BUY' THEN m.base_asset"
	"            ELSE m.quote_asset END::pg_catalog.text"
	"  FROM exchange.orders o"
	"  JOIN exchange.markets m ON m.symbol OPERATOR(pg_catalog.=) o.symbol"
	" WHERE o.order_id OPERATOR(pg_catalog.=) ANY ($1)"
	"   AND m.matching OPERATOR(pg_catalog.<>) 'INTERNAL'"
	" ORDER BY o.order_id"
	"   FOR UPDATE OF o",
	1, {UUIDARRAYOID},
	NULL
};


/*
 * apply_trades' and apply_matches' locks, orders 1, 2 and 4, of the orders
 * ids; unknown orders and those of INTERNAL markets lock nothing.  Returns
 * the balance rows; *locked gets the ids of the orders locked, ascending.
 */
static ExaBalanceSet *
fill_lock_all(List *ids, pg_uuid_t **locked, int *nlocked)
{
	List	   *accounts;
	ListCell   *lc;
	Datum		values[1];
	List	   *credit_accounts = NIL;
	List	   *credit_assets = NIL;
	uint64		n;

	values[0] = exa_uuid_array(ids);
	accounts = spi_column(exa_exec(&stmt_trade_accounts, values, NULL, 0), true);
	foreach(lc, accounts)
	{
		ExaAccount	acct;

		exa_ledger_lock_account((pg_uuid_t *) lfirst(lc), false, &acct);
	}
	n = exa_exec(&stmt_trade_lock_orders, values, NULL, 0);
	*locked = palloc(sizeof(pg_uuid_t) * Max(n, 1));
	*nlocked = (int) n;
	for (uint64 i = 0; i < n; i++)
	{
		pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

		memcpy(&(*locked)[i], DatumGetUUIDP(exa_col_notnull(i, 1)), sizeof(pg_uuid_t));
		/* the asset the order's fills credit */
		memcpy(id, DatumGetUUIDP(exa_col_notnull(i, 2)), sizeof(pg_uuid_t));
		credit_accounts = lappend(credit_accounts, id);
		credit_assets = lappend(credit_assets, exa_col_cstring(i, 3));
	}
	return exa_ledger_lock_account_balances(accounts, credit_accounts, credit_assets);
}

/* Is id among the n ascending ids the lock pass locked? */
static bool
batch_locked(pg_uuid_t *locked, int n, pg_uuid_t *id)
{
	return bsearch(id, locked, n, sizeof(pg_uuid_t),
				   (int (*) (const void *, const void *)) exa_uuid_cmp) != NULL;
}

static void
apply_trades_run(void *arg)
{
	TradeBatch *b = (TradeBatch *) arg;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) b->fcinfo->resultinfo;
	LOCAL_FCINFO(fc, TRADE_NPARAMS);
	ExaCall		call;
	pg_uuid_t  *locked;
	int			nlocked;

	for (int i = 0; i < b->n; i++)
	{
		exa_batch_item = i + 1;
		batch_item_args(&b->items[i], trade_params, TRADE_NPARAMS, fc);
		exa_trade_parse(fc, &b->args[i]);
	}
	exa_batch_item = 0;

	batch_call_begin(&call);
	{
		List	   *ids = NIL;

		for (int i = 0; i < b->n; i++)
			ids = lappend(ids, b->args[i].order_id);
		if (b->n > 1)
		{
			exa_call_hold_balances(&call, fill_lock_all(ids, &locked, &nlocked));
			for (int i = 0; i < b->n; i++)
				b->args[i].prelocked = batch_locked(locked, nlocked, b->args[i].order_id);
			exa_trades_defer(&call, b->n);
		}
	}
	for (int i = 0; i < b->n; i++)
	{
		Datum		row;

		exa_batch_item = i + 1;
		row = exa_apply_trade_call(&call, &b->args[i]);
		if (call.trades == NULL)
			batch_put(rsinfo, row);
	}
	exa_batch_item = 0;
	batch_put_trades(&call, rsinfo);
	batch_call_end(&call);
}

/* apply_trades(trades jsonb) -> setof trades */
Datum
exa_apply_trades(PG_FUNCTION_ARGS)
{
	TradeBatch	b;

	b.fcinfo = fcinfo;
	b.items = batch_items(fcinfo, "trades", &b.n);
	InitMaterializedSRF(fcinfo, 0);
	if (b.n == 0)
		return (Datum) 0;
	b.args = palloc0(sizeof(ExaTradeArgs) * b.n);
	exa_batch_count = b.n;
	batch_run(apply_trades_run, &b);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * apply_matches
 * ------------------------------------------------------------------------
 */

typedef struct MatchBatch
{
	FunctionCallInfo fcinfo;
	int			n;
	JsonbValue *items;
	ExaMatchArgs *args;
} MatchBatch;

static void
apply_matches_run(void *arg)
{
	MatchBatch *b = (MatchBatch *) arg;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) b->fcinfo->resultinfo;
	LOCAL_FCINFO(fc, MATCH_NPARAMS);
	ExaCall		call;
	pg_uuid_t  *locked;
	int			nlocked;
	List	   *ids = NIL;

	for (int i = 0; i < b->n; i++)
	{
		exa_batch_item = i + 1;
		batch_item_args(&b->items[i], match_params, MATCH_NPARAMS, fc);
		exa_match_parse(fc, &b->args[i]);
		ids = lappend(lappend(ids, b->args[i].buy_id), b->args[i].sell_id);
	}
	exa_batch_item = 0;

	batch_call_begin(&call);
	if (b->n > 1)
	{
		exa_call_hold_balances(&call, fill_lock_all(ids, &locked, &nlocked));
		for (int i = 0; i < b->n; i++)
			b->args[i].prelocked =
				batch_locked(locked, nlocked, b->args[i].buy_id) &&
				batch_locked(locked, nlocked, b->args[i].sell_id);
		exa_trades_defer(&call, 2 * b->n);
	}
	for (int i = 0; i < b->n; i++)
	{
		exa_batch_item = i + 1;
		exa_apply_match_call(&call, &b->args[i], rsinfo);
	}
	exa_batch_item = 0;
	batch_put_trades(&call, rsinfo);
	batch_call_end(&call);
}

/* apply_matches(matches jsonb) -> setof trades: per item the BUY then the SELL trade */
Datum
exa_apply_matches(PG_FUNCTION_ARGS)
{
	MatchBatch	b;

	b.fcinfo = fcinfo;
	b.items = batch_items(fcinfo, "matches", &b.n);
	InitMaterializedSRF(fcinfo, 0);
	if (b.n == 0)
		return (Datum) 0;
	b.args = palloc0(sizeof(ExaMatchArgs) * b.n);
	exa_batch_count = b.n;
	batch_run(apply_matches_run, &b);
	return (Datum) 0;
}
