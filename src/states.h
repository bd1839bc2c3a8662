/*-------------------------------------------------------------------------
 *
 * states.h
 *	  The state vocabulary: order, account, KYC and market statuses as C
 *	  enums, and the one table of legal transitions per state machine;
 *	  also the fixed attributes of an order (side, type, time in force) and
 *	  a fill's liquidity.
 *
 * The rules are those of README "Order lifecycle and arithmetic".  They are
 * written here once: the API functions, the UPDATE trigger
 * orders_lifecycle_guard (lifecycle.c) and check_invariants()
 * (invariants.c, which builds its SQL list of legal moves from the table)
 * all ask this file.  Strings exist only at the SQL boundary: a status
 * column or argument is turned into an enum once, when it is read
 * (exa_*_from_text), and back into its name (exa_*_name) when it is
 * written or shown.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_STATES_H
#define EXA_STATES_H

/*
 * Order status.  LIMIT and MARKET orders start OPEN, STOP orders PENDING, a
 * business refusal is stored REJECTED; FILLED, CANCELLED, REJECTED and
 * EXPIRED are terminal.
 */
typedef enum ExaOrderStatus
{
	EXA_ORDER_PENDING,
	EXA_ORDER_OPEN,
	EXA_ORDER_PARTIAL,
	EXA_ORDER_FILLED,
	EXA_ORDER_CANCELLED,
	EXA_ORDER_REJECTED,
	EXA_ORDER_EXPIRED
} ExaOrderStatus;

#define EXA_ORDER_NSTATUS	(EXA_ORDER_EXPIRED + 1)

/* What a move of the order lifecycle does to filled_quantity. */
typedef enum ExaOrderFill
{
	EXA_FILL_NONE,				/* no fill: filled_quantity unchanged */
	EXA_FILL_REMAINDER,			/* a fill that leaves a remainder */
	EXA_FILL_COMPLETE			/* filled_quantity reaches quantity */
} ExaOrderFill;

/* One legal change of an order's status (an order_events row). */
typedef struct ExaOrderTransition
{
	ExaOrderStatus from;
	ExaOrderStatus to;
	ExaOrderFill fill;
	bool		stop_only;		/* only a STOP order moves so */
} ExaOrderTransition;

/* The order lifecycle table, exa_order_ntransitions entries. */
extern const ExaOrderTransition exa_order_transitions[];
extern const int exa_order_ntransitions;

/* Names: "PENDING", ...; a NULL-terminated list in enum order. */
extern const char *const exa_order_status_names[];
extern const char *exa_order_status_name(ExaOrderStatus s);

/* A status read from the catalog; elog(ERROR) when it is not one. */
extern ExaOrderStatus exa_order_status_from_text(const char *s);

/* Any text: false when it is not an order status (the trigger's case). */
extern bool exa_order_status_parse(const char *s, ExaOrderStatus *out);

/* A status an order can be created with (its first event's to_status). */
extern bool exa_order_status_initial(ExaOrderStatus s);

/* Live: not terminal (the table has a move out of it). */
extern bool exa_order_status_live(ExaOrderStatus s);

/* In the book: the table has a fill out of it (OPEN, PARTIAL). */
extern bool exa_order_status_fillable(ExaOrderStatus s);

/* The table's entry for from -> to, or NULL when the move is not legal. */
extern const ExaOrderTransition *exa_order_transition(ExaOrderStatus from,
													  ExaOrderStatus to);
extern bool exa_order_transition_ok(ExaOrderStatus from, ExaOrderStatus to);

/* Account status: ACTIVE <-> SUSPENDED, ACTIVE or SUSPENDED -> CLOSED. */
typedef enum ExaAccountStatus
{
	EXA_ACCOUNT_ACTIVE,
	EXA_ACCOUNT_SUSPENDED,
	EXA_ACCOUNT_CLOSED
} ExaAccountStatus;

extern const char *const exa_account_status_names[];
extern const char *exa_account_status_name(ExaAccountStatus s);
extern ExaAccountStatus exa_account_status_from_text(const char *s);
extern bool exa_account_transition_ok(ExaAccountStatus from,
									  ExaAccountStatus to);

/*
 * KYC status: PENDING -> APPROVED | REJECTED, APPROVED -> REJECTED,
 * REJECTED -> PENDING.
 */
typedef enum ExaKycStatus
{
	EXA_KYC_PENDING,
	EXA_KYC_APPROVED,
	EXA_KYC_REJECTED
} ExaKycStatus;

extern const char *const exa_kyc_status_names[];
extern const char *exa_kyc_status_name(ExaKycStatus s);
extern ExaKycStatus exa_kyc_status_from_text(const char *s);
extern bool exa_kyc_transition_ok(ExaKycStatus from, ExaKycStatus to);

/* Market status: ACTIVE or HALTED, either way. */
typedef enum ExaMarketStatus
{
	EXA_MARKET_ACTIVE,
	EXA_MARKET_HALTED
} ExaMarketStatus;

extern const char *const exa_market_status_names[];
extern ExaMarketStatus exa_market_status_from_text(const char *s);

/*
 * A market's matching mode and self-trade prevention (README "Matching
 * engine"): EXTERNAL markets take fills from outside, INTERNAL ones match in
 * place_order.
 */
typedef enum ExaMatching
{
	EXA_MATCHING_EXTERNAL,
	EXA_MATCHING_INTERNAL
} ExaMatching;

typedef enum ExaSelfTrade
{
	EXA_STP_EXPIRE_MAKER,
	EXA_STP_EXPIRE_TAKER,
	EXA_STP_EXPIRE_BOTH,
	EXA_STP_ALLOW
} ExaSelfTrade;

extern const char *const exa_matching_names[];
extern ExaMatching exa_matching_from_text(const char *s);
extern const char *const exa_self_trade_names[];
extern ExaSelfTrade exa_self_trade_from_text(const char *s);

/*
 * An order's side, type and time in force, and a fill's liquidity: fixed
 * vocabularies without transitions.  The name lists are in enum order and
 * are the lists exa_arg_enum() (args.c) checks arguments against.
 */
typedef enum ExaOrderSide
{
	EXA_SIDE_BUY,
	EXA_SIDE_SELL
} ExaOrderSide;

typedef enum ExaOrderType
{
	EXA_TYPE_MARKET,
	EXA_TYPE_LIMIT,
	EXA_TYPE_STOP
} ExaOrderType;

typedef enum ExaTimeInForce
{
	EXA_TIF_GTC,
	EXA_TIF_IOC,
	EXA_TIF_FOK
} ExaTimeInForce;

typedef enum ExaLiquidity
{
	EXA_LIQUIDITY_MAKER,
	EXA_LIQUIDITY_TAKER
} ExaLiquidity;

extern const char *const exa_order_side_names[];
extern const char *exa_order_side_name(ExaOrderSide s);
extern ExaOrderSide exa_order_side_from_text(const char *s);

extern const char *const exa_order_type_names[];
extern ExaOrderType exa_order_type_from_text(const char *s);

extern const char *const exa_time_in_force_names[];
extern const char *exa_time_in_force_name(ExaTimeInForce t);
extern ExaTimeInForce exa_time_in_force_from_text(const char *s);

extern const char *const exa_liquidity_names[];
extern const char *exa_liquidity_name(ExaLiquidity l);
extern ExaLiquidity exa_liquidity_from_text(const char *s);

#endif							/* EXA_STATES_H */
