/*-------------------------------------------------------------------------
 *
 * trades.h
 *	  One fill of one order: the settlement path that apply_trade,
 *	  apply_match and the matching engine (matching.c) share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_TRADES_H
#define EXA_TRADES_H

#include "orders.h"

/*
 * A fill moves at most three balances: the lock it pays from, the asset it
 * receives, the fee.
 */
#define FILL_MAX_MOVES 3

/* One fill of one order, as computed before anything is written. */
typedef struct Fill
{
	ExaOrder   *o;
	Numeric		quantity;
	Numeric		price;
	Numeric		fee;			/* effective */
	char	   *fee_currency;	/* effective */
	const char *liquidity;		/* NULL when none */
	TimestampTz executed_at;
	char	   *trade_ref;
	pg_uuid_t  *match_id;
	Numeric		notional;
	pg_uuid_t	trade_id;
	int64		seq;			/* trades.seq; 0: none (EXTERNAL) */
} Fill;

/*
 * Effective fee and currency of a fill (README "Order lifecycle and
 * arithmetic", fee); sets notional too.
 */
extern void exa_fill_fee(Fill *f, Numeric fee_arg, char *fee_currency_arg);

/*
 * Write one fill: the trade row (to rsinfo, or as *result), the order row,
 * its event, the stale keys; append its balance moves (at most
 * FILL_MAX_MOVES) to moves[], which has room for maxmoves; and bring *f->o up to date (filled, value, lock, status).
 */
extern void exa_fill_apply(ExaCall *call, Fill *f, LedgerMove *moves, int *nmoves,
					   int maxmoves, ReturnSetInfo *rsinfo, Datum *result);

/* After the moves: the fee_ledger row of a non-zero fee. */
extern void exa_fill_fee_ledger(ExaCall *call, Fill *f);

/* apply_trade's arguments, as exa_trade_parse() checked them. */
typedef struct ExaTradeArgs
{
	pg_uuid_t  *order_id;
	Numeric		quantity;
	Numeric		price;
	Numeric		fee;			/* NULL: the market's rate */
	char	   *fee_currency;	/* NULL when none */
	TimestampTz executed_at;
	char	   *trade_ref;		/* NULL when none */
	const char *liquidity;		/* NULL when none */
	bool		prelocked;		/* a batch's lock pass holds the order row
								 * and its account's, and found its market
								 * EXTERNAL */
} ExaTradeArgs;

/* apply_trade's body, in the caller's ExaCall (batch.c runs it per item). */
extern void exa_trade_parse(FunctionCallInfo fcinfo, ExaTradeArgs *a);
extern Datum exa_apply_trade_call(ExaCall *call, ExaTradeArgs *a);

/* apply_match's arguments, as exa_match_parse() checked them. */
typedef struct ExaMatchArgs
{
	pg_uuid_t  *buy_id;
	pg_uuid_t  *sell_id;
	Numeric		quantity;
	Numeric		price;
	Numeric		buy_fee;		/* NULL: the market's rate */
	Numeric		sell_fee;
	char	   *trade_ref;		/* NULL when none */
	const char *maker;			/* NULL: the older order */
	bool		prelocked;		/* as ExaTradeArgs.prelocked, both orders */
} ExaMatchArgs;

extern void exa_match_parse(FunctionCallInfo fcinfo, ExaMatchArgs *a);
extern void exa_apply_match_call(ExaCall *call, ExaMatchArgs *a, ReturnSetInfo *rsinfo);

/*
 * A fill batch (apply_trades, apply_matches: README "Batches") keeps its
 * trade rows, at most max_rows, from here on, and writes them with one
 * INSERT ... RETURNING when exa_trades_results() is called or a retry must
 * read them; their fee_ledger rows follow.  The calls' result rows (new
 * trades and retries' stored ones) are kept in order too: the calls return
 * nothing themselves, and exa_trades_results() writes what is kept and
 * gives the rows (as composite Datums) in order.
 */
extern void exa_trades_defer(ExaCall *call, int max_rows);
extern int	exa_trades_results(ExaCall *call, Datum **rows);

#endif							/* EXA_TRADES_H */
