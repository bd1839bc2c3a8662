/*-------------------------------------------------------------------------
 *
 * accounts.c
 *	  Accounts and markets: create_account, set_account_status,
 *	  set_kyc_status, create_market, set_market_status.
 *
 * Locks: the status functions take their account row FOR NO KEY UPDATE
 * (lock order 1), so that the KEY SHARE of foreign-key checks never waits
 * on them while every other call's FOR SHARE does.  EXTERNAL markets are
 * only read FOR KEY SHARE, by the calls that write orders or trades, for
 * their foreign keys (check_cache.c), which an UPDATE of other columns does
 * not wait for
 * (INTERNAL ones are locked first by every call that changes their book:
 * matching.c);
 * set_market_status updates its row and so a HALT applies to calls that
 * start after it commits (and waits for an INTERNAL market's matching).  This
 * file moves no funds.  The close's check of balances, orders and holds
 * (rows the account lock does not cover) goes through exa_exec_recheck()
 * (stmt.h): under REPEATABLE READ or SERIALIZABLE it answers as at READ
 * COMMITTED or raises 40001.
 *
 * Transitions (README "Order lifecycle and arithmetic"): account ACTIVE <-> SUSPENDED, ACTIVE or
 * SUSPENDED -> CLOSED (final) only with zero balances and no live order or
 * hold; KYC PENDING -> APPROVED | REJECTED, APPROVED -> REJECTED,
 * REJECTED -> PENDING, refused (LX004) on a CLOSED account (the tables are
 * in states.c).  Setting the current value again changes nothing and writes
 * no outbox row.
 *
 * Stale keys (README "Redis delivery"): cache:account:<acct>; a status
 * change also cache:balances:<acct>, as the view account_balances carries
 * the status.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "args.h"
#include "catalog_version.h"
#include "exchange_adapter.h"
#include "ledger.h"
#include "stmt.h"

PG_FUNCTION_INFO_V1(exa_create_account);
PG_FUNCTION_INFO_V1(exa_set_account_status);
PG_FUNCTION_INFO_V1(exa_set_kyc_status);
PG_FUNCTION_INFO_V1(exa_create_market);
PG_FUNCTION_INFO_V1(exa_set_market_status);

static const char *const account_types[] = {"SPOT", "MARGIN", "FUTURES", NULL};

static ExaStmt stmt_insert_account = {
	"INSERT INTO exchange.accounts (user_id, account_type, metadata)"
	" VALUES ($1, $2, $3)"
	" ON CONFLICT (user_id, account_type) DO NOTHING"
	" RETURNING *",
	3, {TEXTOID, TEXTOID, JSONBOID},
	NULL
};

static ExaStmt stmt_existing_account = {
	"SELECT account_id::pg_catalog.text FROM exchange.accounts"
	" WHERE user_id OPERATOR(pg_catalog.=) $1"
	"   AND account_type OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, TEXTOID},
	NULL
};

static ExaStmt stmt_account_row = {
	"SELECT * FROM exchange.accounts WHERE account_id OPERATOR(pg_catalog.=) $1",
	1, {UUIDOID},
	NULL
};

static ExaStmt stmt_set_account_status = {
	"UPDATE exchange.accounts SET status = $2, updated_at = pg_catalog.now()"
	" WHERE account_id OPERATOR(pg_catalog.=) $1 RETURNING *",
	2, {UUIDOID, TEXTOID},
	NULL
};

static ExaStmt stmt_set_kyc_status = {
	"UPDATE exchange.accounts SET kyc_status = $2, updated_at = pg_catalog.now()"
	" WHERE account_id OPERATOR(pg_catalog.=) $1 RETURNING *",
	2, {UUIDOID, TEXTOID},
	NULL
};

static ExaStmt stmt_account_holdings = {
	"SELECT"
	" (SELECT pg_catalog.string_agg(b.symbol OPERATOR(pg_catalog.||) ' '"
	"          OPERATOR(pg_catalog.||) b.total_balance::pg_catalog.text, ', ' ORDER BY b.symbol)"
	"    FROM exchange.balances b"
	"   WHERE b.account_id OPERATOR(pg_catalog.=) $1"
	"     AND b.total_balance OPERATOR(pg_catalog.<>) 0),"
	" (SELECT pg_catalog.count(*) FROM exchange.orders o"
	"   WHERE o.account_id OPERATOR(pg_catalog.=) $1"
	"     AND o.status IN ('PENDING', 'OPEN', 'PARTIAL')),"
	" (SELECT pg_catalog.count(*) FROM exchange.holds h"
	"   WHERE h.account_id OPERATOR(pg_catalog.=) $1"
	"     AND h.released_at IS NULL)",
	1, {UUIDOID},
	NULL
};

static ExaStmt stmt_insert_market = {
	"INSERT INTO exchange.markets (symbol, base_asset, quote_asset, tick_size,"
	"  lot_size, min_quantity, min_notional, maker_fee_rate, taker_fee_rate, metadata)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
	" ON CONFLICT (symbol) DO NOTHING"
	" RETURNING *",
	10, {TEXTOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, NUMERICOID,
	NUMERICOID, NUMERICOID, NUMERICOID, JSONBOID},
	NULL
};

/* The same on a 1.1 catalog, with the matching mode and self-trade mode. */
static ExaStmt stmt_insert_market_matching = {
	"INSERT INTO exchange.markets (symbol, base_asset, quote_asset, tick_size,"
	"  lot_size, min_quantity, min_notional, maker_fee_rate, taker_fee_rate, metadata,"
	"  matching, self_trade)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
	" ON CONFLICT (symbol) DO NOTHING"
	" RETURNING *",
	12, {TEXTOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, NUMERICOID,
	NUMERICOID, NUMERICOID, NUMERICOID, JSONBOID, TEXTOID, TEXTOID},
	NULL
};

static ExaStmt stmt_set_market_status = {
	"UPDATE exchange.markets SET status = $2"
	" WHERE symbol OPERATOR(pg_catalog.=) $1"
	"   AND status OPERATOR(pg_catalog.<>) $2"
	" RETURNING *",
	2, {TEXTOID, TEXTOID},
	NULL
};

static ExaStmt stmt_market_row = {
	"SELECT * FROM exchange.markets WHERE symbol OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID},
	NULL
};

/*
 * create_account(user_id text, account_type text DEFAULT 'SPOT',
 *				  metadata jsonb DEFAULT '{}') -> accounts
 */
Datum
exa_create_account(PG_FUNCTION_ARGS)
{
	char	   *user_id = exa_arg_text(fcinfo, 0, "user_id", false, 255);
	const char *type = exa_arg_enum(fcinfo, 1, "account_type", account_types, false);
	Datum		metadata = exa_arg_metadata(fcinfo, 2);
	Datum		values[3];
	ExaCall		call;
	Datum		result;

	exa_call_begin(&call);
	values[0] = CStringGetTextDatum(user_id);
	values[1] = CStringGetTextDatum(type);
	values[2] = metadata;
	if (exa_exec(&stmt_insert_account, values, NULL, 1) != 1)
	{
		char	   *existing = NULL;

		if (exa_exec(&stmt_existing_account, values, NULL, 1) == 1)
			existing = exa_col_cstring(0, 1);
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ALREADY_EXISTS),
				 errmsg("account already exists for user \"%s\" and type %s",
						user_id, type),
				 errdetail("The existing account_id is %s.",
						   existing ? existing : "(unknown)")));
	}
	result = exa_return_row(0);
	exa_call_key(&call, "cache:account:%s",
				 exa_uuid_str(DatumGetUUIDP(exa_col_notnull(0, 1))));
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}

static Datum
account_row_unchanged(ExaCall *call, pg_uuid_t *account_id)
{
	Datum		key[1] = {UUIDPGetDatum(account_id)};
	Datum		result;

	exa_exec(&stmt_account_row, key, NULL, 1);
	result = exa_return_row(0);
	exa_call_end(call);
	return result;
}

/*
 * An illegal account status or KYC status move (LX002).  Two literal
 * messages, not one with the kind spliced in, so that each translates whole.
 */
static void
illegal_account_transition(bool kyc, pg_uuid_t *account_id,
						   const char *from, const char *to)
{
	if (kyc)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("illegal KYC status transition from %s to %s", from, to),
				 errdetail("Account %s is %s.", exa_uuid_str(account_id), from),
				 errhint("KYC moves PENDING -> APPROVED | REJECTED, APPROVED -> REJECTED, REJECTED -> PENDING.")));
	ereport(ERROR,
			(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
			 errmsg("illegal account status transition from %s to %s", from, to),
			 errdetail("Account %s is %s.", exa_uuid_str(account_id), from),
			 errhint("A closed account is final.")));
}

/*
 * Write an account's new status or KYC status with stmt ($1 account_id, $2
 * value), name its stale key and end the call; returns the updated row.
 */
static Datum
account_update(ExaCall *call, ExaStmt *stmt, pg_uuid_t *account_id,
			   const char *value)
{
	Datum		values[2] = {UUIDPGetDatum(account_id), CStringGetTextDatum(value)};
	Datum		result;
	char	   *acct = exa_uuid_str(account_id);

	exa_exec(stmt, values, NULL, 1);
	result = exa_return_row(0);
	exa_call_key(call, "cache:account:%s", acct);
	/* the view account_balances shows the account's status */
	if (stmt == &stmt_set_account_status)
		exa_call_key(call, "cache:balances:%s", acct);
	exa_call_end(call);
	return result;
}

/* set_account_status(account_id uuid, status text) -> accounts */
Datum
exa_set_account_status(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *account_id = exa_arg_uuid(fcinfo, 0, "account_id");
	ExaAccountStatus status =
		exa_account_status_from_text(exa_arg_enum(fcinfo, 1, "status",
												  exa_account_status_names,
												  false));
	ExaAccount	acct;
	ExaCall		call;

	exa_call_begin(&call);
	exa_ledger_lock_account(account_id, true, &acct);

	if (acct.status == status)
		PG_RETURN_DATUM(account_row_unchanged(&call, account_id));
	if (!exa_account_transition_ok(acct.status, status))
		illegal_account_transition(false, account_id,
								   exa_account_status_name(acct.status),
								   exa_account_status_name(status));

	if (status == EXA_ACCOUNT_CLOSED)
	{
		Datum		key[1] = {UUIDPGetDatum(account_id)};
		char	   *funds;
		int64		orders;
		int64		holds;

		/*
		 * Balances, orders and holds are not covered by the account lock:
		 * under REPEATABLE READ a deposit that committed after the snapshot
		 * (while we waited for the lock, say) is re-checked, so the account
		 * is never closed over it (40001).
		 */
		exa_exec_recheck(&stmt_account_holdings, key, NULL, 1,
						 "the funds, orders or holds of account %s",
						 exa_uuid_str(account_id));
		funds = exa_col_cstring(0, 1);
		orders = DatumGetInt64(exa_col_notnull(0, 2));
		holds = DatumGetInt64(exa_col_notnull(0, 3));
		if (funds != NULL || orders > 0 || holds > 0)
			ereport(ERROR,
					(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
					 errmsg("cannot close account %s", exa_uuid_str(account_id)),
					 errdetail("It holds funds (%s), live orders (%lld) and live holds (%lld).",
							   funds ? funds : "none", (long long) orders,
							   (long long) holds),
					 errhint("Cancel its orders, release its holds and withdraw its funds first.")));
	}

	PG_RETURN_DATUM(account_update(&call, &stmt_set_account_status, account_id,
								   exa_account_status_name(status)));
}

/* set_kyc_status(account_id uuid, kyc_status text) -> accounts */
Datum
exa_set_kyc_status(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *account_id = exa_arg_uuid(fcinfo, 0, "account_id");
	ExaKycStatus kyc =
		exa_kyc_status_from_text(exa_arg_enum(fcinfo, 1, "kyc_status",
											  exa_kyc_status_names, false));
	ExaAccount	acct;
	ExaCall		call;

	exa_call_begin(&call);
	exa_ledger_lock_account(account_id, true, &acct);
	/* a closed account is final: its KYC status too */
	exa_ledger_require_status(&acct, EXA_USE_KYC_CHANGE);

	if (acct.kyc_status == kyc)
		PG_RETURN_DATUM(account_row_unchanged(&call, account_id));

	if (!exa_kyc_transition_ok(acct.kyc_status, kyc))
		illegal_account_transition(true, account_id,
								   exa_kyc_status_name(acct.kyc_status),
								   exa_kyc_status_name(kyc));

	PG_RETURN_DATUM(account_update(&call, &stmt_set_kyc_status, account_id,
								   exa_kyc_status_name(kyc)));
}

static Numeric
fee_rate_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	Numeric		rate = exa_arg_amount(fcinfo, argno, name, 0);
	Numeric		max = DatumGetNumeric(DirectFunctionCall3(numeric_in,
														  CStringGetDatum("0.1"),
														  ObjectIdGetDatum(InvalidOid),
														  Int32GetDatum(-1)));

	if (exa_cmp(rate, max) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must lie between 0 and 0.1", name),
				 errdetail("The value given was %s.", exa_num_str(rate))));
	return rate;
}

/*
 * create_market(symbol, base_asset, quote_asset, tick_size, lot_size,
 *				 min_quantity, min_notional, maker_fee_rate, taker_fee_rate,
 *				 metadata, matching, self_trade) -> markets
 *
 * The 1.0 catalog declares it without the last two arguments (README
 * "Upgrading"): called so, it creates the market as 1.0 did.
 */
Datum
exa_create_market(PG_FUNCTION_ARGS)
{
	char	   *symbol = exa_arg_text(fcinfo, 0, "symbol", false, 21);
	char	   *base = exa_arg_asset(fcinfo, 1, "base_asset");
	char	   *quote = exa_arg_asset(fcinfo, 2, "quote_asset");
	Numeric		tick = exa_arg_amount(fcinfo, 3, "tick_size", EXA_AMOUNT_POSITIVE);
	Numeric		lot = exa_arg_amount(fcinfo, 4, "lot_size", EXA_AMOUNT_POSITIVE);
	Numeric		minq = exa_arg_amount(fcinfo, 5, "min_quantity", 0);
	Numeric		minn = exa_arg_amount(fcinfo, 6, "min_notional", 0);
	Numeric		maker = fee_rate_arg(fcinfo, 7, "maker_fee_rate");
	Numeric		taker = fee_rate_arg(fcinfo, 8, "taker_fee_rate");
	Datum		metadata = exa_arg_metadata(fcinfo, 9);
	bool		with_matching = PG_NARGS() >= 12;
	const char *matching = with_matching ?
		exa_arg_enum(fcinfo, 10, "matching", exa_matching_names, false) : NULL;
	const char *self_trade = with_matching ?
		exa_arg_enum(fcinfo, 11, "self_trade", exa_self_trade_names, false) : NULL;
	char	   *expected = psprintf("%s-%s", base, quote);
	Datum		values[12];
	ExaCall		call;
	Datum		result;

	if (strcmp(base, quote) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameters \"%s\" and \"%s\" must differ",
						"base_asset", "quote_asset"),
				 errdetail("Both are %s.", base)));
	if (strcmp(symbol, expected) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"%s\": \"%s\"", "symbol", symbol),
				 errdetail("A market's symbol is <BASE>-<QUOTE>."),
				 errhint("Use \"%s\" for base %s and quote %s.", expected, base, quote)));

	exa_call_begin(&call);
	values[0] = CStringGetTextDatum(symbol);
	values[1] = CStringGetTextDatum(base);
	values[2] = CStringGetTextDatum(quote);
	values[3] = NumericGetDatum(tick);
	values[4] = NumericGetDatum(lot);
	values[5] = NumericGetDatum(minq);
	values[6] = NumericGetDatum(minn);
	values[7] = NumericGetDatum(maker);
	values[8] = NumericGetDatum(taker);
	values[9] = metadata;
	if (with_matching)
	{
		exa_require_catalog("create_market with a matching mode");
		values[10] = CStringGetTextDatum(matching);
		values[11] = CStringGetTextDatum(self_trade);
	}
	if (exa_exec(with_matching ? &stmt_insert_market_matching : &stmt_insert_market,
				 values, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ALREADY_EXISTS),
				 errmsg("market \"%s\" already exists", symbol),
				 errhint("Use exchange.set_market_status() to halt or resume it.")));
	result = exa_return_row(0);
	exa_call_key(&call, "cache:market:%s", symbol);
	exa_call_book_keys(&call, symbol);
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}

/* set_market_status(symbol text, status text) -> markets */
Datum
exa_set_market_status(PG_FUNCTION_ARGS)
{
	char	   *symbol = exa_arg_text(fcinfo, 0, "symbol", false, 0);
	const char *status = exa_arg_enum(fcinfo, 1, "status",
									  exa_market_status_names, false);
	Datum		values[2];
	ExaCall		call;
	Datum		result;

	exa_call_begin(&call);
	values[0] = CStringGetTextDatum(symbol);
	values[1] = CStringGetTextDatum(status);
	if (exa_exec(&stmt_set_market_status, values, NULL, 1) == 1)
	{
		result = exa_return_row(0);
		exa_call_key(&call, "cache:market:%s", symbol);
		exa_call_book_keys(&call, symbol);
	}
	else
	{
		/* unchanged, or missing, in the snapshot: as at READ COMMITTED? */
		if (exa_exec_recheck(&stmt_market_row, values, NULL, 1,
							 "market \"%s\"", symbol) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_EXA_NOT_FOUND),
					 errmsg("market \"%s\" does not exist", symbol)));
		result = exa_return_row(0);
	}
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}
