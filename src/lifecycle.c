/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *	  The order lifecycle guard: a BEFORE UPDATE row trigger on
 *	  exchange.orders.
 *
 * This file owns the rules of the order lifecycle (README "Order lifecycle and
 * arithmetic") as the database enforces them on every UPDATE of an order,
 * whoever issues it (the trigger is ENABLE ALWAYS, so replication and
 * session_replication_role = replica are held to it too):
 *
 *	 - an order whose old status is terminal (FILLED, CANCELLED, REJECTED,
 *	   EXPIRED) cannot be updated at all;
 *	 - PENDING (STOP only) -> OPEN, CANCELLED, EXPIRED, without a fill;
 *	 - OPEN -> PARTIAL (fill leaving a remainder), FILLED, CANCELLED, EXPIRED;
 *	 - PARTIAL -> PARTIAL (fill leaving a remainder), FILLED, CANCELLED,
 *	   EXPIRED;
 *	 - PENDING, OPEN and PARTIAL may keep their status when filled_quantity
 *	   is unchanged (metadata, locked_amount, timestamps);
 *	 - FILLED means filled_quantity = quantity; PARTIAL means it is below;
 *	   filled_quantity never decreases;
 *	 - the columns fixed at creation (immutable_columns below) never change.
 *
 * Every refusal is SQLSTATE LX002.  The trigger must not modify the row,
 * write anything, or run SQL: the API functions (later files) do the
 * bookkeeping, this guard only refuses what no API call may do.  It must not
 * act on INSERT (pg_restore restores rows untouched).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"

#include "exchange_adapter.h"

PG_FUNCTION_INFO_V1(orders_lifecycle_guard);

typedef enum OrderStatus
{
	OS_PENDING,
	OS_OPEN,
	OS_PARTIAL,
	OS_FILLED,
	OS_CANCELLED,
	OS_REJECTED,
	OS_EXPIRED,
	OS_UNKNOWN
} OrderStatus;

static const char *const status_names[] = {
	"PENDING", "OPEN", "PARTIAL", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"
};

/*
 * Columns fixed when the order is placed.  Everything else (status, fills,
 * average_price, lock, timestamps, metadata, reject_reason) belongs to the
 * lifecycle and is checked below.
 */
static const char *const immutable_columns[] = {
	"order_id", "account_id", "symbol", "order_type", "side", "quantity",
	"price", "stop_price", "time_in_force", "client_order_id", "lock_asset",
	"created_at"
};

/*
 * The attribute numbers the guard reads, looked up by name once per
 * statement (kept in the trigger's fn_extra, which lives as long as the
 * statement's executor) rather than once per column per row: a batch call
 * updates a million orders in one statement.
 */
typedef struct GuardAttnums
{
	Oid			relid;
	int			natts;
	int			immutable[lengthof(immutable_columns)];
	int			order_id;
	int			status;
	int			filled_quantity;
	int			quantity;
	int			order_type;
} GuardAttnums;

static OrderStatus
parse_status(const char *s)
{
	int			i;

	for (i = 0; i < (int) lengthof(status_names); i++)
		if (strcmp(s, status_names[i]) == 0)
			return (OrderStatus) i;
	return OS_UNKNOWN;
}

static bool
status_is_terminal(OrderStatus s)
{
	return s == OS_FILLED || s == OS_CANCELLED || s == OS_REJECTED ||
		s == OS_EXPIRED;
}

/*
 * Attribute number of a column the guard needs; a table without it is not
 * exchange.orders as the extension created it.
 */
static int
order_attnum(Relation rel, const char *colname)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), colname);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						colname, RelationGetRelationName(rel)),
				 errdetail("Trigger function orders_lifecycle_guard expects the columns of exchange.orders.")));
	return attnum;
}

static GuardAttnums *
guard_attnums(FunctionCallInfo fcinfo, Relation rel)
{
	GuardAttnums *a = (GuardAttnums *) fcinfo->flinfo->fn_extra;

	if (a != NULL && a->relid == RelationGetRelid(rel) &&
		a->natts == RelationGetDescr(rel)->natts)
		return a;
	a = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(GuardAttnums));
	a->relid = RelationGetRelid(rel);
	a->natts = RelationGetDescr(rel)->natts;
	for (int i = 0; i < (int) lengthof(immutable_columns); i++)
		a->immutable[i] = order_attnum(rel, immutable_columns[i]);
	a->order_id = order_attnum(rel, "order_id");
	a->status = order_attnum(rel, "status");
	a->filled_quantity = order_attnum(rel, "filled_quantity");
	a->quantity = order_attnum(rel, "quantity");
	a->order_type = order_attnum(rel, "order_type");
	fcinfo->flinfo->fn_extra = a;
	return a;
}

/* Value of a column as a C string, or NULL when the column is NULL. */
static char *
order_text(HeapTuple tuple, Relation rel, int attnum)
{
	bool		isnull;
	Datum		d;

	d = heap_getattr(tuple, attnum, RelationGetDescr(rel), &isnull);
	if (isnull)
		return NULL;
	return TextDatumGetCString(d);
}

static Datum
order_datum(HeapTuple tuple, Relation rel, int attnum, bool *isnull)
{
	return heap_getattr(tuple, attnum, RelationGetDescr(rel), isnull);
}

/* The order's id as text, for a refusal's errdetail ("NULL" when null). */
static char *
order_id_text(HeapTuple tuple, Relation rel, const GuardAttnums *a)
{
	bool		isnull;
	Datum		id = order_datum(tuple, rel, a->order_id, &isnull);

	return isnull ? "NULL" : DatumGetCString(DirectFunctionCall1(uuid_out, id));
}

static int
numeric_compare(Datum a, Datum b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, a, b));
}

static char *
numeric_text(Datum d)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out, d));
}

/*
 * Refuse a change to any column fixed at creation.  numeric columns compare
 * by value (1.0 = 1.00), every other type by its binary image (an equal
 * image is an equal value for numeric too: compared first, as it is cheap).
 */
static void
check_immutable_columns(Relation rel, HeapTuple oldtup, HeapTuple newtup,
						const GuardAttnums *a)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < (int) lengthof(immutable_columns); i++)
	{
		int			attnum = a->immutable[i];
		Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);
		bool		oldnull;
		bool		newnull;
		Datum		oldval;
		Datum		newval;
		bool		same;

		oldval = heap_getattr(oldtup, attnum, tupdesc, &oldnull);
		newval = heap_getattr(newtup, attnum, tupdesc, &newnull);

		if (oldnull || newnull)
			same = (oldnull && newnull);
		else
			same = datum_image_eq(oldval, newval, att->attbyval, att->attlen) ||
				(att->atttypid == NUMERICOID &&
				 numeric_compare(oldval, newval) == 0);

		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
					 errmsg("column \"%s\" of an order cannot be changed",
							immutable_columns[i]),
					 errdetail("Order %s: %s is fixed when the order is placed.",
							   order_id_text(oldtup, rel, a), immutable_columns[i]),
					 errhint("Cancel the order and place a new one.")));
	}
}

/*
 * The lifecycle rule that a move from "from" to "to" breaks, as a
 * sentence for errdetail, or NULL when the move is legal.
 *
 * fill is the sign of new filled_quantity - old filled_quantity (never
 * negative here: a decrease is refused before); rest is the sign of new
 * filled_quantity - quantity.
 */
static const char *
transition_problem(OrderStatus from, OrderStatus to, bool is_stop,
				   int fill, int rest)
{
	if (to == OS_UNKNOWN)
		return "The new status is not an order status.";
	if (rest > 0)
		return "filled_quantity would exceed quantity.";

	switch (from)
	{
		case OS_PENDING:
			if (to != OS_PENDING && to != OS_OPEN && to != OS_CANCELLED &&
				to != OS_EXPIRED)
				return "A PENDING order can only become OPEN (when its stop triggers), CANCELLED or EXPIRED.";
			if (fill != 0)
				return "A PENDING order cannot be filled.";
			if (to == OS_OPEN && !is_stop)
				return "Only a STOP order moves from PENDING to OPEN.";
			return NULL;

		case OS_OPEN:
			switch (to)
			{
				case OS_OPEN:
					if (fill != 0)
						return "A fill moves an OPEN order to PARTIAL or FILLED.";
					return NULL;
				case OS_PARTIAL:
					if (fill == 0)
						return "PARTIAL needs a fill: filled_quantity must increase.";
					if (rest == 0)
						return "A fill that completes the order makes it FILLED, not PARTIAL.";
					return NULL;
				case OS_FILLED:
					if (rest != 0)
						return "FILLED needs filled_quantity equal to quantity.";
					return NULL;
				case OS_CANCELLED:
				case OS_EXPIRED:
					if (fill != 0)
						return "An order cannot be filled and ended in the same update.";
					return NULL;
				default:
					return "An OPEN order can only become PARTIAL, FILLED, CANCELLED or EXPIRED.";
			}

		case OS_PARTIAL:
			switch (to)
			{
				case OS_PARTIAL:
					if (fill != 0 && rest == 0)
						return "A fill that completes the order makes it FILLED, not PARTIAL.";
					return NULL;
				case OS_FILLED:
					if (rest != 0)
						return "FILLED needs filled_quantity equal to quantity.";
					return NULL;
				case OS_CANCELLED:
				case OS_EXPIRED:
					if (fill != 0)
						return "An order cannot be filled and ended in the same update.";
					return NULL;
				default:
					return "A PARTIAL order can only become FILLED, CANCELLED or EXPIRED.";
			}

		case OS_FILLED:
		case OS_CANCELLED:
		case OS_REJECTED:
		case OS_EXPIRED:
			return "A terminal order cannot be changed.";

		case OS_UNKNOWN:
			break;
	}
	return "The old status is not an order status.";
}

/*
 * orders_lifecycle_guard() RETURNS trigger
 *
 * BEFORE UPDATE ... FOR EACH ROW on exchange.orders.  Returns the new row
 * unchanged, or raises LX002.
 */
Datum
orders_lifecycle_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	GuardAttnums *a;
	char	   *old_status_s;
	char	   *new_status_s;
	char	   *order_type;
	OrderStatus old_status;
	OrderStatus new_status;
	Datum		old_filled;
	Datum		new_filled;
	Datum		quantity;
	bool		old_filled_null;
	bool		new_filled_null;
	bool		quantity_null;
	int			fill;
	int			rest;
	const char *problem;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("orders_lifecycle_guard: not called by trigger manager")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("orders_lifecycle_guard must be fired BEFORE UPDATE FOR EACH ROW")));

	rel = trigdata->tg_relation;
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;

	a = guard_attnums(fcinfo, rel);
	old_status_s = order_text(oldtup, rel, a->status);
	new_status_s = order_text(newtup, rel, a->status);
	if (old_status_s == NULL)
		old_status_s = "NULL";
	if (new_status_s == NULL)
		new_status_s = "NULL";
	old_status = parse_status(old_status_s);
	new_status = parse_status(new_status_s);

	/* A terminal order is final: no column of it may change. */
	if (status_is_terminal(old_status))
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						old_status_s, new_status_s),
				 errdetail("Order %s is %s, which is final; a terminal order cannot be changed.",
						   order_id_text(oldtup, rel, a), old_status_s)));

	check_immutable_columns(rel, oldtup, newtup, a);

	old_filled = order_datum(oldtup, rel, a->filled_quantity, &old_filled_null);
	new_filled = order_datum(newtup, rel, a->filled_quantity, &new_filled_null);
	quantity = order_datum(newtup, rel, a->quantity, &quantity_null);
	if (old_filled_null || new_filled_null || quantity_null)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						old_status_s, new_status_s),
				 errdetail("Order %s: quantity and filled_quantity must not be NULL.",
						   order_id_text(oldtup, rel, a))));

	fill = numeric_compare(new_filled, old_filled);
	if (fill < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						old_status_s, new_status_s),
				 errdetail("Order %s: filled_quantity would decrease from %s to %s; it never decreases.",
						   order_id_text(oldtup, rel, a), numeric_text(old_filled),
						   numeric_text(new_filled))));
	rest = numeric_compare(new_filled, quantity);

	order_type = order_text(oldtup, rel, a->order_type);
	problem = transition_problem(old_status, new_status,
								 order_type != NULL &&
								 strcmp(order_type, "STOP") == 0,
								 fill, rest);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						old_status_s, new_status_s),
				 errdetail("%s Order %s: filled_quantity %s -> %s, quantity %s.",
						   problem, order_id_text(oldtup, rel, a), numeric_text(old_filled),
						   numeric_text(new_filled), numeric_text(quantity))));

	return PointerGetDatum(newtup);
}
