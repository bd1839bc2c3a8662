/*-------------------------------------------------------------------------
 *
 * states.c
 *	  The state vocabulary: status names and the tables of legal
 *	  transitions (README "Order lifecycle and arithmetic").
 *
 * This file owns every status name and every transition rule; see
 * states.h.  It is the only place that compares a status name (or a side,
 * type, time in force or liquidity) as a string (status_index()).  It runs
 * no SQL and takes no lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "states.h"

/* ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------
 */

const char *const exa_order_status_names[] = {
	[EXA_ORDER_PENDING] = "PENDING",
	[EXA_ORDER_OPEN] = "OPEN",
	[EXA_ORDER_PARTIAL] = "PARTIAL",
	[EXA_ORDER_FILLED] = "FILLED",
	[EXA_ORDER_CANCELLED] = "CANCELLED",
	[EXA_ORDER_REJECTED] = "REJECTED",
	[EXA_ORDER_EXPIRED] = "EXPIRED",
	NULL
};

const char *const exa_account_status_names[] = {
	[EXA_ACCOUNT_ACTIVE] = "ACTIVE",
	[EXA_ACCOUNT_SUSPENDED] = "SUSPENDED",
	[EXA_ACCOUNT_CLOSED] = "CLOSED",
	NULL
};

const char *const exa_kyc_status_names[] = {
	[EXA_KYC_PENDING] = "PENDING",
	[EXA_KYC_APPROVED] = "APPROVED",
	[EXA_KYC_REJECTED] = "REJECTED",
	NULL
};

const char *const exa_market_status_names[] = {
	[EXA_MARKET_ACTIVE] = "ACTIVE",
	[EXA_MARKET_HALTED] = "HALTED",
	NULL
};

const char *const exa_matching_names[] = {
	[EXA_MATCHING_EXTERNAL] = "EXTERNAL",
	[EXA_MATCHING_INTERNAL] = "INTERNAL",
	NULL
};

const char *const exa_self_trade_names[] = {
	[EXA_STP_EXPIRE_MAKER] = "EXPIRE_MAKER",
	[EXA_STP_EXPIRE_TAKER] = "EXPIRE_TAKER",
	[EXA_STP_EXPIRE_BOTH] = "EXPIRE_BOTH",
	[EXA_STP_ALLOW] = "ALLOW",
	NULL
};

const char *const exa_order_side_names[] = {
	[EXA_SIDE_BUY] = "BUY",
	[EXA_SIDE_SELL] = "SELL",
	NULL
};

const char *const exa_order_type_names[] = {
	[EXA_TYPE_MARKET] = "MARKET",
	[EXA_TYPE_LIMIT] = "LIMIT",
	[EXA_TYPE_STOP] = "STOP",
	NULL
};

const char *const exa_time_in_force_names[] = {
	[EXA_TIF_GTC] = "GTC",
	[EXA_TIF_IOC] = "IOC",
	[EXA_TIF_FOK] = "FOK",
	NULL
};

const char *const exa_liquidity_names[] = {
	[EXA_LIQUIDITY_MAKER] = "MAKER",
	[EXA_LIQUIDITY_TAKER] = "TAKER",
	NULL
};

/* Position of s in a NULL-terminated name list, or -1. */
static int
status_index(const char *const *names, const char *s)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/*
 * A value read from a row of schema exchange.  The columns are varchar with
 * a CHECK naming exactly these values, so one outside the list is an
 * internal error, not a user error: user input is checked by exa_arg_enum()
 * (args.c) with these lists before it gets here.
 */
static int
status_from_text(const char *const *names, const char *what, const char *s)
{
	int			i = status_index(names, s);

	if (i < 0)
		elog(ERROR, "unrecognized %s \"%s\"", what, s);
	return i;
}

const char *
exa_order_status_name(ExaOrderStatus s)
{
	Assert(s >= 0 && s < EXA_ORDER_NSTATUS);
	return exa_order_status_names[s];
}

ExaOrderStatus
exa_order_status_from_text(const char *s)
{
	return (ExaOrderStatus) status_from_text(exa_order_status_names,
											 "order status", s);
}

bool
exa_order_status_parse(const char *s, ExaOrderStatus *out)
{
	int			i = status_index(exa_order_status_names, s);

	if (i < 0)
		return false;
	*out = (ExaOrderStatus) i;
	return true;
}

const char *
exa_account_status_name(ExaAccountStatus s)
{
	return exa_account_status_names[s];
}

ExaAccountStatus
exa_account_status_from_text(const char *s)
{
	return (ExaAccountStatus) status_from_text(exa_account_status_names,
											   "account status", s);
}

const char *
exa_kyc_status_name(ExaKycStatus s)
{
	return exa_kyc_status_names[s];
}

ExaKycStatus
exa_kyc_status_from_text(const char *s)
{
	return (ExaKycStatus) status_from_text(exa_kyc_status_names,
										   "KYC status", s);
}

ExaMarketStatus
exa_market_status_from_text(const char *s)
{
	return (ExaMarketStatus) status_from_text(exa_market_status_names,
											  "market status", s);
}

ExaMatching
exa_matching_from_text(const char *s)
{
	return (ExaMatching) status_from_text(exa_matching_names,
										  "matching mode", s);
}

ExaSelfTrade
exa_self_trade_from_text(const char *s)
{
	return (ExaSelfTrade) status_from_text(exa_self_trade_names,
										   "self-trade mode", s);
}

const char *
exa_order_side_name(ExaOrderSide s)
{
	return exa_order_side_names[s];
}

ExaOrderSide
exa_order_side_from_text(const char *s)
{
	return (ExaOrderSide) status_from_text(exa_order_side_names,
										   "order side", s);
}

ExaOrderType
exa_order_type_from_text(const char *s)
{
	return (ExaOrderType) status_from_text(exa_order_type_names,
										   "order type", s);
}

const char *
exa_time_in_force_name(ExaTimeInForce t)
{
	return exa_time_in_force_names[t];
}

ExaTimeInForce
exa_time_in_force_from_text(const char *s)
{
	return (ExaTimeInForce) status_from_text(exa_time_in_force_names,
											 "time in force", s);
}

const char *
exa_liquidity_name(ExaLiquidity l)
{
	return exa_liquidity_names[l];
}

ExaLiquidity
exa_liquidity_from_text(const char *s)
{
	return (ExaLiquidity) status_from_text(exa_liquidity_names,
										   "liquidity", s);
}

/* ------------------------------------------------------------------------
 * Order lifecycle
 * ------------------------------------------------------------------------
 */

/*
 * Every legal change of an order's status.  Besides these, a live order
 * may keep its status in an update that does not fill it (metadata,
 * locked_amount, timestamps); PARTIAL -> PARTIAL is listed because a fill
 * that leaves a remainder is an event.
 */
const ExaOrderTransition exa_order_transitions[] = {
	{EXA_ORDER_PENDING, EXA_ORDER_OPEN, EXA_FILL_NONE, true},
	{EXA_ORDER_PENDING, EXA_ORDER_CANCELLED, EXA_FILL_NONE, false},
	{EXA_ORDER_PENDING, EXA_ORDER_EXPIRED, EXA_FILL_NONE, false},
	{EXA_ORDER_OPEN, EXA_ORDER_PARTIAL, EXA_FILL_REMAINDER, false},
	{EXA_ORDER_OPEN, EXA_ORDER_FILLED, EXA_FILL_COMPLETE, false},
	{EXA_ORDER_OPEN, EXA_ORDER_CANCELLED, EXA_FILL_NONE, false},
	{EXA_ORDER_OPEN, EXA_ORDER_EXPIRED, EXA_FILL_NONE, false},
	{EXA_ORDER_PARTIAL, EXA_ORDER_PARTIAL, EXA_FILL_REMAINDER, false},
	{EXA_ORDER_PARTIAL, EXA_ORDER_FILLED, EXA_FILL_COMPLETE, false},
	{EXA_ORDER_PARTIAL, EXA_ORDER_CANCELLED, EXA_FILL_NONE, false},
	{EXA_ORDER_PARTIAL, EXA_ORDER_EXPIRED, EXA_FILL_NONE, false}
};

const int	exa_order_ntransitions = lengthof(exa_order_transitions);

/* The statuses an order is created with: LIMIT/MARKET, STOP, refused. */
bool
exa_order_status_initial(ExaOrderStatus s)
{
	return s == EXA_ORDER_OPEN || s == EXA_ORDER_PENDING ||
		s == EXA_ORDER_REJECTED;
}

bool
exa_order_status_live(ExaOrderStatus s)
{
	for (int i = 0; i < exa_order_ntransitions; i++)
		if (exa_order_transitions[i].from == s)
			return true;
	return false;
}

bool
exa_order_status_fillable(ExaOrderStatus s)
{
	for (int i = 0; i < exa_order_ntransitions; i++)
		if (exa_order_transitions[i].from == s &&
			exa_order_transitions[i].fill != EXA_FILL_NONE)
			return true;
	return false;
}

const ExaOrderTransition *
exa_order_transition(ExaOrderStatus from, ExaOrderStatus to)
{
	for (int i = 0; i < exa_order_ntransitions; i++)
		if (exa_order_transitions[i].from == from &&
			exa_order_transitions[i].to == to)
			return &exa_order_transitions[i];
	return NULL;
}

bool
exa_order_transition_ok(ExaOrderStatus from, ExaOrderStatus to)
{
	return exa_order_transition(from, to) != NULL;
}

/* ------------------------------------------------------------------------
 * Accounts and KYC
 * ------------------------------------------------------------------------
 */

typedef struct StatusPair
{
	int			from;
	int			to;
} StatusPair;

/* A CLOSED account is final; it closes only when it holds nothing. */
static const StatusPair account_transitions[] = {
	{EXA_ACCOUNT_ACTIVE, EXA_ACCOUNT_SUSPENDED},
	{EXA_ACCOUNT_SUSPENDED, EXA_ACCOUNT_ACTIVE},
	{EXA_ACCOUNT_ACTIVE, EXA_ACCOUNT_CLOSED},
	{EXA_ACCOUNT_SUSPENDED, EXA_ACCOUNT_CLOSED}
};

static const StatusPair kyc_transitions[] = {
	{EXA_KYC_PENDING, EXA_KYC_APPROVED},
	{EXA_KYC_PENDING, EXA_KYC_REJECTED},
	{EXA_KYC_APPROVED, EXA_KYC_REJECTED},
	{EXA_KYC_REJECTED, EXA_KYC_PENDING}
};

static bool
pair_listed(const StatusPair *pairs, int npairs, int from, int to)
{
	for (int i = 0; i < npairs; i++)
		if (pairs[i].from == from && pairs[i].to == to)
			return true;
	return false;
}

bool
exa_account_transition_ok(ExaAccountStatus from, ExaAccountStatus to)
{
	return pair_listed(account_transitions, lengthof(account_transitions),
					   from, to);
}

bool
exa_kyc_transition_ok(ExaKycStatus from, ExaKycStatus to)
{
	return pair_listed(kyc_transitions, lengthof(kyc_transitions), from, to);
}
