/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *	  The order lifecycle guard: a BEFORE UPDATE row trigger on
 *	  exchange.orders.
 *
 * This file enforces the rules of the order lifecycle (README "Order
 * lifecycle and arithmetic"; the table of legal moves is in states.c) on
 * every UPDATE of an order, whoever issues it (the trigger is ENABLE ALWAYS,
 * so replication and session_replication_role = replica are held to it too):
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
#include "states.h"

PG_FUNCTION_INFO_V1(exa_orders_lifecycle_guard);

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
 * The move-specific errdetail when a live order's new status is not one the
 * lifecycle table (states.c) allows from its old one.
 */
static const char *const only_becomes[EXA_ORDER_NSTATUS] = {
	[EXA_ORDER_PENDING] = gettext_noop("A PENDING order can only become OPEN (when its stop triggers), CANCELLED or EXPIRED."),
	[EXA_ORDER_OPEN] = gettext_noop("An OPEN order can only become PARTIAL, FILLED, CANCELLED or EXPIRED."),
	[EXA_ORDER_PARTIAL] = gettext_noop("A PARTIAL order can only become FILLED, CANCELLED or EXPIRED.")
};

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

/* Value of a column as a C string, or NULL when the column is NULL. */
static char *
order_text(HeapTuple tuple, Relation rel, const char *colname)
{
	int			attnum = order_attnum(rel, colname);
	bool		isnull;
	Datum		d;

	d = heap_getattr(tuple, attnum, RelationGetDescr(rel), &isnull);
	if (isnull)
		return NULL;
	return TextDatumGetCString(d);
}

static Datum
order_datum(HeapTuple tuple, Relation rel, const char *colname, bool *isnull)
{
	return heap_getattr(tuple, order_attnum(rel, colname),
						RelationGetDescr(rel), isnull);
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
 * by value (1.0 = 1.00), every other type by its binary image.
 */
static void
check_immutable_columns(Relation rel, HeapTuple oldtup, HeapTuple newtup,
						const char *order_id)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < (int) lengthof(immutable_columns); i++)
	{
		int			attnum = order_attnum(rel, immutable_columns[i]);
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
		else if (att->atttypid == NUMERICOID)
			same = (numeric_compare(oldval, newval) == 0);
		else
			same = datum_image_eq(oldval, newval, att->attbyval, att->attlen);

		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
					 errmsg("column \"%s\" of an order cannot be changed",
							immutable_columns[i]),
					 errdetail("Order %s: %s is fixed when the order is placed.",
							   order_id, immutable_columns[i]),
					 errhint("Cancel the order and place a new one.")));
	}
}

/*
 * The lifecycle rule that a move from "from" to "to" breaks, as a
 * sentence for errdetail (marked for translation; the caller passes it
 * through _()), or NULL when the move is legal.  A NULL status
 * is one that is not an order status.  The legal moves are the table of
 * states.c; besides them a live order may keep its status without a fill.
 *
 * fill is the sign of new filled_quantity - old filled_quantity (never
 * negative here: a decrease is refused before); rest is the sign of new
 * filled_quantity - quantity.
 */
static const char *
transition_problem(const ExaOrderStatus *from, const ExaOrderStatus *to,
				   bool is_stop, int fill, int rest)
{
	const ExaOrderTransition *t;

	if (to == NULL)
		return gettext_noop("The new status is not an order status.");
	if (rest > 0)
		return gettext_noop("filled_quantity would exceed quantity.");
	if (from == NULL)
		return gettext_noop("The old status is not an order status.");
	if (!exa_order_status_live(*from))
		return gettext_noop("A terminal order cannot be changed.");

	if (*to != *from && !exa_order_transition_ok(*from, *to))
		return only_becomes[*from];
	if (fill != 0 && !exa_order_status_fillable(*from))
		return gettext_noop("A PENDING order cannot be filled.");
	if (*to == *from && fill == 0)
		return NULL;			/* keeps its status: metadata, lock, times */

	t = exa_order_transition(*from, *to);
	if (t == NULL)				/* a fill that keeps the status */
		return gettext_noop("A fill moves an OPEN order to PARTIAL or FILLED.");
	switch (t->fill)
	{
		case EXA_FILL_NONE:
			if (fill != 0)
				return gettext_noop("An order cannot be filled and ended in the same update.");
			if (t->stop_only && !is_stop)
				return gettext_noop("Only a STOP order moves from PENDING to OPEN.");
			return NULL;
		case EXA_FILL_REMAINDER:
			if (fill == 0)
				return gettext_noop("PARTIAL needs a fill: filled_quantity must increase.");
			if (rest == 0)
				return gettext_noop("A fill that completes the order makes it FILLED, not PARTIAL.");
			return NULL;
		case EXA_FILL_COMPLETE:
			if (rest != 0)
				return gettext_noop("FILLED needs filled_quantity equal to quantity.");
			return NULL;
	}
	return NULL;				/* keep compiler quiet */
}

/*
 * orders_lifecycle_guard() RETURNS trigger
 *
 * BEFORE UPDATE ... FOR EACH ROW on exchange.orders.  Returns the new row
 * unchanged, or raises LX002.
 */
Datum
exa_orders_lifecycle_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	Datum		id;
	char	   *order_id;
	char	   *old_status_s;
	char	   *new_status_s;
	char	   *order_type;
	ExaOrderStatus old_status;
	ExaOrderStatus new_status;
	bool		old_known;
	bool		new_known;
	Datum		old_filled;
	Datum		new_filled;
	Datum		quantity;
	bool		old_filled_null;
	bool		new_filled_null;
	bool		quantity_null;
	bool		isnull;
	int			fill;
	int			rest;
	const char *problem;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager",
						"orders_lifecycle_guard")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired BEFORE UPDATE FOR EACH ROW",
						"orders_lifecycle_guard")));

	rel = trigdata->tg_relation;
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;

	id = order_datum(oldtup, rel, "order_id", &isnull);
	order_id = isnull ? "NULL" :
		DatumGetCString(DirectFunctionCall1(uuid_out, id));
	old_status_s = order_text(oldtup, rel, "status");
	new_status_s = order_text(newtup, rel, "status");
	if (old_status_s == NULL)
		old_status_s = "NULL";
	if (new_status_s == NULL)
		new_status_s = "NULL";
	old_known = exa_order_status_parse(old_status_s, &old_status);
	new_known = exa_order_status_parse(new_status_s, &new_status);

	/* A terminal order is final: no column of it may change. */
	if (old_known && !exa_order_status_live(old_status))
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						old_status_s, new_status_s),
				 errdetail("Order %s is %s, which is final; a terminal order cannot be changed.",
						   order_id, old_status_s)));

	check_immutable_columns(rel, oldtup, newtup, order_id);

	old_filled = order_datum(oldtup, rel, "filled_quantity", &old_filled_null);
	new_filled = order_datum(newtup, rel, "filled_quantity", &new_filled_null);
	quantity = order_datum(newtup, rel, "quantity", &quantity_null);
	if (old_filled_null || new_filled_null || quantity_null)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						old_status_s, new_status_s),
				 errdetail("Order %s: quantity and filled_quantity must not be NULL.",
						   order_id)));

	fill = numeric_compare(new_filled, old_filled);
	if (fill < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						old_status_s, new_status_s),
				 errdetail("Order %s: filled_quantity would decrease from %s to %s; it never decreases.",
						   order_id, numeric_text(old_filled),
						   numeric_text(new_filled))));
	rest = numeric_compare(new_filled, quantity);

	order_type = order_text(oldtup, rel, "order_type");
	problem = transition_problem(old_known ? &old_status : NULL,
								 new_known ? &new_status : NULL,
								 order_type != NULL &&
								 exa_order_type_from_text(order_type) ==
								 EXA_TYPE_STOP,
								 fill, rest);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal order transition from %s to %s",
						old_status_s, new_status_s),
				 errdetail("%s Order %s: filled_quantity %s -> %s, quantity %s.",
						   _(problem), order_id, numeric_text(old_filled),
						   numeric_text(new_filled), numeric_text(quantity))));

	return PointerGetDatum(newtup);
}
