/*-------------------------------------------------------------------------
 *
 * matching.h
 *	  The matching engine of INTERNAL markets (README "Matching engine").
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_MATCHING_H
#define EXA_MATCHING_H

#include "orders.h"

/* An INTERNAL market as place_order locked it. */
typedef struct MatchMarket
{
	char	   *symbol;
	ExaSelfTrade self_trade;
	Numeric		last_price;		/* NULL before the first execution */
	int64		trade_seq;
	Numeric		maker_fee_rate;
	Numeric		taker_fee_rate;
} MatchMarket;

/* The order place_order is about to insert, as the plan needs it. */
typedef struct MatchTaker
{
	pg_uuid_t  *order_id;
	pg_uuid_t  *account_id;
	ExaOrderSide side;
	ExaOrderType order_type;
	ExaTimeInForce time_in_force;
	Numeric		quantity;
	Numeric		price;			/* NULL when none */
	Numeric		stop_price;		/* NULL when none */
	char	   *lock_asset;
	char	   *base_asset;
	char	   *quote_asset;
	Numeric		locked_amount;
	Numeric		tick_size;
	Numeric		lot_size;
} MatchTaker;

typedef struct MatchPlan MatchPlan;

/*
 * Lock order 0: when symbol is an INTERNAL market (1.1 catalog), raise
 * 0A000 above READ COMMITTED, lock its row FOR NO KEY UPDATE and return it;
 * otherwise return NULL having locked nothing.
 */
extern MatchMarket *exa_matching_lock_market(const char *symbol);

/*
 * place_order found, reading the market without a lock, that a market it
 * did not lock turned INTERNAL meanwhile: 40001 (its book must not take an
 * unmatched order).
 */
extern void exa_matching_refuse_unlocked(const char *symbol) pg_attribute_noreturn();

/*
 * Plan every execution, self-trade outcome and stop cascade of placing
 * taker, then lock every account, order and balance row the plan touches
 * in the global order.  Returns the plan and the taker's book_seq.
 */
extern MatchPlan *exa_matching_plan(MatchMarket *m, MatchTaker *taker,
								int64 *book_seq);

/*
 * Write the plan once the taker's row is inserted (OPEN, or PENDING for a
 * stop): trades, order rows and events, balance moves, the market's
 * last_price and trade_seq.  Returns the taker's final row.
 */
extern Datum exa_matching_execute(ExaCall *call, MatchPlan *plan);

/* Nothing to write: the order rests (or waits, a stop) as inserted. */
extern bool exa_matching_plan_empty(MatchPlan *plan);

/*
 * The top of an INTERNAL market's book, read under its row lock (which the
 * caller holds): the best resting bid and ask (NULL when a side is empty)
 * and whether a PENDING stop's condition holds at the market's last_price.
 * An accepted GTC LIMIT order that does not reach the best opposite price,
 * on a market where no stop is due, rests as placed: exa_matching_plan()
 * would plan nothing for it (place_orders decides such items in memory,
 * exa_place_merged).
 */
extern void exa_matching_book_top(const char *symbol, Numeric *best_bid,
								  Numeric *best_ask, bool *stops_due);

/* LX012 when symbol is an INTERNAL market (fills from outside refused). */
extern void exa_matching_refuse_internal(const char *symbol, const char *what);

/* That LX012, raised: for a caller that read the market's mode itself. */
extern void exa_matching_raise_internal(const char *symbol, const char *what)
			pg_attribute_noreturn();

/*
 * The same, asked before any lock of an order's call (apply_trade,
 * apply_match), so that a refused call never waits on the book's rows.
 */
extern void exa_matching_refuse_internal_order(pg_uuid_t *order_id, const char *what);

/*
 * Lock order 0 for cancel and expire: the INTERNAL market of an order, of
 * an account's live orders (symbol NULL: every market), or a market.
 */
extern void exa_matching_lock_order_market(pg_uuid_t *order_id);

/*
 * cancel_orders: lock the INTERNAL market named (symbol), or every INTERNAL
 * market the account has live orders on (symbol NULL), ascending; returns
 * the symbols locked.  exa_matching_skip_unlocked() then leaves out of ids the
 * orders of INTERNAL markets not locked (placed on another market after the
 * markets were chosen: left for the next call, as expire_orders leaves
 * late orders).
 */
extern List *exa_matching_lock_account_markets(pg_uuid_t *account_id,
										   const char *symbol);
extern List *exa_matching_skip_unlocked(List *ids, List *locked);
extern void exa_matching_lock_symbol(const char *symbol);

#endif							/* EXA_MATCHING_H */
