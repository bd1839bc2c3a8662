/*-------------------------------------------------------------------------
 *
 * row_checks.c
 *	  The row validators behind the single CHECK constraint of each hot table
 *	  (orders, trades, balances, balance_journal, order_events):
 *	  exa_orders_row_check() and its peers.
 *
 * Each table's rules (README "Data model") used to be one CHECK constraint
 * per rule.  PostgreSQL rebuilds every CHECK expression from its stored text
 * at the start of each statement that writes the table, and for orders'
 * twenty-three rules that rebuild cost more than the rest of place_order.
 * One CHECK calling an immutable C function of the row's columns is cheap
 * to rebuild and states the same rules, tested here in the order PostgreSQL
 * tested the separate constraints (by name).  A row that breaks a rule
 * raises 23514 with the message PostgreSQL gave for the old constraint,
 * naming it (also as the error's constraint name field), and a detail that
 * states the rule.
 *
 * The functions follow CHECK semantics: a rule whose operands are NULL
 * holds (the old constraints' expressions were then NULL, which passes),
 * and NaN compares as numeric does (equal to itself, above every number).
 * They return true or raise; never false.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(exa_orders_row_check);
PG_FUNCTION_INFO_V1(exa_trades_row_check);
PG_FUNCTION_INFO_V1(exa_balances_row_check);
PG_FUNCTION_INFO_V1(exa_balance_journal_row_check);
PG_FUNCTION_INFO_V1(exa_order_events_row_check);

static const char *const order_types[] = {"MARKET", "LIMIT", "STOP", NULL};
static const char *const sides[] = {"BUY", "SELL", NULL};
static const char *const order_statuses[] = {"PENDING", "OPEN", "PARTIAL", "FILLED",
"CANCELLED", "REJECTED", "EXPIRED", NULL};
static const char *const terminal_statuses[] = {"FILLED", "CANCELLED", "REJECTED",
"EXPIRED", NULL};
static const char *const time_in_forces[] = {"GTC", "IOC", "FOK", NULL};
static const char *const reject_reasons[] = {"ACCOUNT_NOT_ACTIVE", "KYC_NOT_APPROVED",
	"MARKET_HALTED", "TICK_SIZE", "LOT_SIZE", "MIN_QUANTITY", "MIN_NOTIONAL",
"INSUFFICIENT_FUNDS", NULL};
static const char *const liquidities[] = {"MAKER", "TAKER", NULL};
static const char *const journal_kinds[] = {"DEPOSIT", "WITHDRAWAL", "LOCK", "UNLOCK",
	"CAPTURE", "ORDER_LOCK", "ORDER_RELEASE", "TRADE", "FEE", "MIGRATION",
NULL};

/* 23514 as PostgreSQL reports a failed CHECK constraint, with the rule. */
static void
row_check_failed(const char *table, const char *constraint, const char *rule)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("new row for relation \"%s\" violates check constraint \"%s\"",
					table, constraint),
			 errdetail("%s", rule),
			 err_generic_string(PG_DIAG_SCHEMA_NAME, "exchange"),
			 err_generic_string(PG_DIAG_TABLE_NAME, table),
			 err_generic_string(PG_DIAG_CONSTRAINT_NAME, constraint)));
}

/* Argument n, NULL when SQL NULL. */
static text *
arg_text(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : PG_GETARG_TEXT_PP(n);
}

static Numeric
arg_num(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : PG_GETARG_NUMERIC(n);
}

static bool
text_is(text *t, const char *s)
{
	size_t		len = strlen(s);

	return VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/* t = ANY (list); true when t is NULL (the CHECK passes). */
static bool
text_in(text *t, const char *const *list)
{
	if (t == NULL)
		return true;
	for (; *list; list++)
		if (text_is(t, *list))
			return true;
	return false;
}

/* t ~ '^[A-Z0-9]{1,10}$'; true when t is NULL. */
static bool
asset_ok(text *t)
{
	const char *p;
	int			len;

	if (t == NULL)
		return true;
	p = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	if (len < 1 || len > 10)
		return false;
	for (int i = 0; i < len; i++)
		if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9')))
			return false;
	return true;
}

/* jsonb_typeof(j) = 'object'; true when j is NULL. */
static bool
object_ok(FunctionCallInfo fcinfo, int n)
{
	Jsonb	   *j;

	if (PG_ARGISNULL(n))
		return true;
	j = PG_GETARG_JSONB_P(n);
	return JB_ROOT_IS_OBJECT(j);
}

/* numeric comparison as SQL does it (NaN equal to itself, above all) */
static int
num_cmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}

static Numeric
num_zero(void)
{
	static Numeric zero = NULL;

	if (zero == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		zero = int64_to_numeric(0);
		MemoryContextSwitchTo(old);
	}
	return zero;
}

/* x > 0, x >= 0 and x <> NaN; each true when x is NULL. */
static bool
positive(Numeric x)
{
	return x == NULL || num_cmp(x, num_zero()) > 0;
}

static bool
not_negative(Numeric x)
{
	return x == NULL || num_cmp(x, num_zero()) >= 0;
}

static bool
not_nan(Numeric x)
{
	return x == NULL || !numeric_is_nan(x);
}

/*
 * exa_orders_row_check(order_type, side, status, time_in_force, quantity,
 * price, stop_price, average_price, filled_quantity, locked_amount,
 * filled_value, lock_asset, client_order_id, reject_reason, metadata)
 */
Datum
exa_orders_row_check(PG_FUNCTION_ARGS)
{
	text	   *order_type = arg_text(fcinfo, 0);
	text	   *side = arg_text(fcinfo, 1);
	text	   *status = arg_text(fcinfo, 2);
	text	   *tif = arg_text(fcinfo, 3);
	Numeric		quantity = arg_num(fcinfo, 4);
	Numeric		price = arg_num(fcinfo, 5);
	Numeric		stop_price = arg_num(fcinfo, 6);
	Numeric		average_price = arg_num(fcinfo, 7);
	Numeric		filled_quantity = arg_num(fcinfo, 8);
	Numeric		locked_amount = arg_num(fcinfo, 9);
	Numeric		filled_value = arg_num(fcinfo, 10);
	text	   *lock_asset = arg_text(fcinfo, 11);
	text	   *client_order_id = arg_text(fcinfo, 12);
	text	   *reject_reason = arg_text(fcinfo, 13);

	if (!(not_nan(quantity) && not_nan(price) && not_nan(filled_quantity) &&
		  not_nan(average_price) && not_nan(stop_price) && not_nan(locked_amount) &&
		  not_nan(filled_value)))
		row_check_failed("orders", "orders_amounts_not_nan_check",
						 "No amount of an order is NaN.");
	if (!positive(average_price))
		row_check_failed("orders", "orders_average_price_check",
						 "average_price is positive.");
	if (client_order_id != NULL && VARSIZE_ANY_EXHDR(client_order_id) == 0)
		row_check_failed("orders", "orders_client_order_id_check",
						 "client_order_id is not empty.");
	/* (status = 'FILLED') = (filled_quantity = quantity) */
	if (status && filled_quantity && quantity &&
		text_is(status, "FILLED") != (num_cmp(filled_quantity, quantity) == 0))
		row_check_failed("orders", "orders_filled_check",
						 "An order is FILLED exactly when filled_quantity equals quantity.");
	/* filled_quantity >= 0 AND filled_quantity <= quantity */
	if (filled_quantity &&
		(num_cmp(filled_quantity, num_zero()) < 0 ||
		 (quantity && num_cmp(filled_quantity, quantity) > 0)))
		row_check_failed("orders", "orders_filled_quantity_check",
						 "filled_quantity is between 0 and quantity.");
	if (!not_negative(filled_value))
		row_check_failed("orders", "orders_filled_value_check",
						 "filled_value is not negative.");
	if (order_type && text_is(order_type, "LIMIT") && PG_ARGISNULL(5))
		row_check_failed("orders", "orders_limit_price_check",
						 "A LIMIT order has a price.");
	if (!asset_ok(lock_asset))
		row_check_failed("orders", "orders_lock_asset_check",
						 "lock_asset is 1 to 10 upper-case letters or digits.");
	if (!not_negative(locked_amount))
		row_check_failed("orders", "orders_locked_amount_check",
						 "locked_amount is not negative.");
	if (order_type && tif && text_is(order_type, "MARKET") && text_is(tif, "GTC"))
		row_check_failed("orders", "orders_market_tif_check",
						 "A MARKET order is IOC or FOK, never GTC.");
	if (!object_ok(fcinfo, 14))
		row_check_failed("orders", "orders_metadata_check",
						 "metadata is a JSON object.");
	if (!text_in(order_type, order_types))
		row_check_failed("orders", "orders_order_type_check",
						 "order_type is MARKET, LIMIT or STOP.");
	if (status && order_type && text_is(status, "PENDING") && !text_is(order_type, "STOP"))
		row_check_failed("orders", "orders_pending_check",
						 "Only a STOP order is PENDING.");
	if (!positive(price))
		row_check_failed("orders", "orders_price_check", "price is positive.");
	if (!positive(quantity))
		row_check_failed("orders", "orders_quantity_check", "quantity is positive.");
	if (status && text_is(status, "REJECTED") != (reject_reason != NULL))
		row_check_failed("orders", "orders_reject_reason_check",
						 "An order has a reject_reason exactly when it is REJECTED.");
	if (!text_in(reject_reason, reject_reasons))
		row_check_failed("orders", "orders_reject_reason_value_check",
						 "reject_reason is ACCOUNT_NOT_ACTIVE, KYC_NOT_APPROVED, MARKET_HALTED, TICK_SIZE, LOT_SIZE, MIN_QUANTITY, MIN_NOTIONAL or INSUFFICIENT_FUNDS.");
	if (!text_in(side, sides))
		row_check_failed("orders", "orders_side_check", "side is BUY or SELL.");
	if (!text_in(status, order_statuses))
		row_check_failed("orders", "orders_status_check",
						 "status is PENDING, OPEN, PARTIAL, FILLED, CANCELLED, REJECTED or EXPIRED.");
	if (order_type && text_is(order_type, "STOP") != (stop_price != NULL))
		row_check_failed("orders", "orders_stop_check",
						 "An order has a stop_price exactly when it is a STOP order.");
	if (!positive(stop_price))
		row_check_failed("orders", "orders_stop_price_check", "stop_price is positive.");
	if (status && locked_amount && text_in(status, terminal_statuses) &&
		num_cmp(locked_amount, num_zero()) != 0)
		row_check_failed("orders", "orders_terminal_unlocked_check",
						 "A FILLED, CANCELLED, REJECTED or EXPIRED order locks nothing.");
	if (!text_in(tif, time_in_forces))
		row_check_failed("orders", "orders_time_in_force_check",
						 "time_in_force is GTC, IOC or FOK.");
	PG_RETURN_BOOL(true);
}

/*
 * exa_trades_row_check(side, quantity, price, fee, fee_currency, liquidity,
 * trade_ref, metadata)
 */
Datum
exa_trades_row_check(PG_FUNCTION_ARGS)
{
	text	   *side = arg_text(fcinfo, 0);
	Numeric		quantity = arg_num(fcinfo, 1);
	Numeric		price = arg_num(fcinfo, 2);
	Numeric		fee = arg_num(fcinfo, 3);
	text	   *fee_currency = arg_text(fcinfo, 4);
	text	   *liquidity = arg_text(fcinfo, 5);
	text	   *trade_ref = arg_text(fcinfo, 6);

	if (!(not_nan(quantity) && not_nan(price) && not_nan(fee)))
		row_check_failed("trades", "trades_amounts_not_nan_check",
						 "No amount of a trade is NaN.");
	if (!not_negative(fee))
		row_check_failed("trades", "trades_fee_check", "fee is not negative.");
	if (!asset_ok(fee_currency))
		row_check_failed("trades", "trades_fee_currency_check",
						 "fee_currency is 1 to 10 upper-case letters or digits.");
	if (!text_in(liquidity, liquidities))
		row_check_failed("trades", "trades_liquidity_check",
						 "liquidity is MAKER or TAKER.");
	if (!object_ok(fcinfo, 7))
		row_check_failed("trades", "trades_metadata_check",
						 "metadata is a JSON object.");
	if (!positive(price))
		row_check_failed("trades", "trades_price_check", "price is positive.");
	if (!positive(quantity))
		row_check_failed("trades", "trades_quantity_check", "quantity is positive.");
	if (!text_in(side, sides))
		row_check_failed("trades", "trades_side_check", "side is BUY or SELL.");
	if (trade_ref != NULL && VARSIZE_ANY_EXHDR(trade_ref) == 0)
		row_check_failed("trades", "trades_trade_ref_check", "trade_ref is not empty.");
	PG_RETURN_BOOL(true);
}

/*
 * exa_balances_row_check(symbol, available_balance, locked_balance, metadata)
 */
Datum
exa_balances_row_check(PG_FUNCTION_ARGS)
{
	text	   *symbol = arg_text(fcinfo, 0);
	Numeric		available = arg_num(fcinfo, 1);
	Numeric		locked = arg_num(fcinfo, 2);

	if (!(not_nan(available) && not_nan(locked)))
		row_check_failed("balances", "balances_amounts_not_nan_check",
						 "No amount of a balance is NaN.");
	if (!not_negative(available))
		row_check_failed("balances", "balances_available_balance_check",
						 "available_balance is not negative.");
	if (!not_negative(locked))
		row_check_failed("balances", "balances_locked_balance_check",
						 "locked_balance is not negative.");
	if (!object_ok(fcinfo, 3))
		row_check_failed("balances", "balances_metadata_check",
						 "metadata is a JSON object.");
	if (!asset_ok(symbol))
		row_check_failed("balances", "balances_symbol_check",
						 "symbol is 1 to 10 upper-case letters or digits.");
	PG_RETURN_BOOL(true);
}

/*
 * exa_balance_journal_row_check(asset, delta_available, delta_locked, kind)
 */
Datum
exa_balance_journal_row_check(PG_FUNCTION_ARGS)
{
	text	   *asset = arg_text(fcinfo, 0);
	Numeric		da = arg_num(fcinfo, 1);
	Numeric		dl = arg_num(fcinfo, 2);
	text	   *kind = arg_text(fcinfo, 3);

	if (!(not_nan(da) && not_nan(dl)))
		row_check_failed("balance_journal", "balance_journal_amounts_not_nan_check",
						 "No amount of a journal row is NaN.");
	if (!asset_ok(asset))
		row_check_failed("balance_journal", "balance_journal_asset_check",
						 "asset is 1 to 10 upper-case letters or digits.");
	if (!text_in(kind, journal_kinds))
		row_check_failed("balance_journal", "balance_journal_kind_check",
						 "kind is DEPOSIT, WITHDRAWAL, LOCK, UNLOCK, CAPTURE, ORDER_LOCK, ORDER_RELEASE, TRADE, FEE or MIGRATION.");
	/* da <> 0 OR dl <> 0: false only when both are zero */
	if (da && dl && num_cmp(da, num_zero()) == 0 && num_cmp(dl, num_zero()) == 0)
		row_check_failed("balance_journal", "balance_journal_nonzero_check",
						 "A journal row changes the available or the locked balance.");
	PG_RETURN_BOOL(true);
}

/*
 * exa_order_events_row_check(from_status, to_status, filled_delta)
 */
Datum
exa_order_events_row_check(PG_FUNCTION_ARGS)
{
	text	   *from_status = arg_text(fcinfo, 0);
	text	   *to_status = arg_text(fcinfo, 1);
	Numeric		filled_delta = arg_num(fcinfo, 2);

	if (!not_nan(filled_delta))
		row_check_failed("order_events", "order_events_amounts_not_nan_check",
						 "filled_delta is not NaN.");
	if (!not_negative(filled_delta))
		row_check_failed("order_events", "order_events_filled_delta_check",
						 "filled_delta is not negative.");
	if (!text_in(from_status, order_statuses))
		row_check_failed("order_events", "order_events_from_status_check",
						 "from_status is NULL or an order status.");
	if (!text_in(to_status, order_statuses))
		row_check_failed("order_events", "order_events_to_status_check",
						 "to_status is an order status.");
	PG_RETURN_BOOL(true);
}
