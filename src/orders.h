/*-------------------------------------------------------------------------
 *
 * orders.h
 *	  Order rows as the order and trade functions lock and change them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_ORDERS_H
#define EXA_ORDERS_H

#include "funcapi.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "ledger.h"

/* An order row locked FOR UPDATE, with what its market says. */
typedef struct ExaOrder
{
	pg_uuid_t	order_id;
	pg_uuid_t	account_id;
	char	   *symbol;
	ExaOrderSide side;
	ExaOrderType order_type;
	ExaOrderStatus status;
	ExaTimeInForce time_in_force;
	char	   *lock_asset;
	char	   *base_asset;
	char	   *quote_asset;
	Numeric		quantity;
	Numeric		price;			/* NULL when none */
	Numeric		filled_quantity;
	Numeric		filled_value;	/* exact sum of quantity x price of fills */
	Numeric		locked_amount;
	Numeric		maker_fee_rate;
	Numeric		taker_fee_rate;
	TimestampTz created_at;
	Numeric		tick_size;		/* the market's: a fill's price is a multiple */
	Numeric		lot_size;		/* the market's: a fill's quantity is a multiple */
} ExaOrder;

/*
 * Lock order 1 for a call that names an order: the order's account row FOR
 * SHARE.  Raises LX003 when the order does not exist.
 */
extern void exa_order_lock_account(pg_uuid_t *order_id, ExaAccount *acct);

/* Lock order 2: the order row FOR UPDATE, read with its market. */
extern void exa_order_lock(pg_uuid_t *order_id, ExaOrder *out);

/*
 * The same without the market: base_asset, quote_asset, the fee rates,
 * tick_size and lot_size are left NULL for the caller to fill.
 */
extern void exa_order_lock_row(pg_uuid_t *order_id, ExaOrder *out);

/*
 * An order's market columns (base_asset, quote_asset, maker_fee_rate,
 * taker_fee_rate, tick_size, lot_size, in that order) from row 0 of the
 * current SPI result, starting at column col; numbers copied, so that the
 * result can be freed.  exa_order_copy_market: the same columns as another
 * order of that market has them.
 */
extern void exa_order_read_market(ExaOrder *o, int col);
extern void exa_order_copy_market(ExaOrder *dst, const ExaOrder *src);

extern bool exa_order_is_live(ExaOrderStatus status);
extern bool exa_order_is_buy(const ExaOrder *o);

/* Append one row to exchange.order_events. */
extern void exa_order_event(ExaCall *call, pg_uuid_t *order_id, const char *from,
							const char *to, Numeric filled_delta, const char *reason);

/*
 * Cancel or expire a locked live order: set the status, write the event and
 * the stale keys, and fill *release with the move that releases its lock
 * (journal kind ORDER_RELEASE; delta NULL when nothing is locked).  The
 * caller applies the moves of all the orders it closes in one
 * exa_ledger_move(), after it has locked every order: balance rows come after
 * order rows in the lock order.  The updated row goes to rsinfo's
 * tuplestore when rsinfo is given; otherwise it is returned as a Datum.
 */
extern Datum exa_order_close(ExaCall *call, ExaOrder *o, ExaOrderStatus to_status,
							 const char *reason, ReturnSetInfo *rsinfo,
							 LedgerMove *release);

/* place_order's arguments, as exa_place_parse() checked them. */
typedef struct ExaPlaceArgs
{
	pg_uuid_t  *account_id;
	char	   *symbol;
	const char *side;
	const char *type;
	Numeric		quantity;
	Numeric		price;			/* NULL when none */
	const char *tif;			/* the type's default when NULL was given */
	Numeric		stop_price;		/* NULL when none */
	char	   *client_order_id;	/* NULL when none */
	Datum		metadata;
} ExaPlaceArgs;

/*
 * The single calls' bodies, taking plain arguments and the caller's ExaCall
 * (the batch calls of batch.c run them once per item).  Each returns the
 * row the single call returns.
 */
extern void exa_place_parse(FunctionCallInfo fcinfo, ExaPlaceArgs *a);
extern Datum exa_place_order_call(ExaCall *call, ExaPlaceArgs *a);
extern char *exa_arg_reason(FunctionCallInfo fcinfo, int argno);

/*
 * place_orders on a 1.1 catalog, statements merged (README "Batches"): each
 * item decided as exa_place_order_call() decides it, on the account rows
 * and balance rows the batch holds locked (accts[i] is item i's account as
 * locked; the call holds their balance rows: exa_call_hold_balances), its
 * order row written with the others by one INSERT.  locked lists the
 * INTERNAL markets whose rows the batch holds (symbols, lock order 0): on
 * those an item that would rest untouched (a GTC LIMIT order that does not
 * reach the best opposite price, no stop due) is decided the same way;
 * any other accepted item is placed by exa_place_order_call(), the matching
 * engine, after the rows decided before it are written.  results[i] gets
 * item i's row; *item is the item running (1-based), for the errdetail.
 * The call must defer its journal and events.
 */
extern void exa_place_merged(ExaCall *call, ExaPlaceArgs *args, ExaAccount **accts,
							 int n, List *locked, Datum *results, int *item);

/*
 * A batch call's order events, from here on, are kept until
 * exa_order_events_flush() writes them with one INSERT.
 */
extern void exa_order_defer_events(ExaCall *call);
extern void exa_order_events_flush(ExaCall *call);
extern Datum exa_close_order_call(ExaCall *call, pg_uuid_t *order_id,
								  ExaOrderStatus to_status, const char *reason);

#endif							/* EXA_ORDERS_H */
