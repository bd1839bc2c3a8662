/*-------------------------------------------------------------------------
 *
 * funds.c
 *	  Funds and holds: deposit, withdraw, lock_balance, unlock_balance,
 *	  capture_hold.
 *
 * Locks, in the global order (ledger.h): the account row FOR SHARE; for
 * calls with a reference, a transaction-scoped advisory lock on (account,
 * kind, reference); the hold row FOR UPDATE (unlock, capture); the balance
 * row through exa_ledger_move().  Every balance change goes through
 * exa_ledger_move(), which journals it and names the stale keys.  Reads that no
 * lock covers (a hold's account, a reference's first call, an idempotent
 * retry's answer) use exa_exec_recheck() (stmt.h), so that REPEATABLE READ
 * and SERIALIZABLE answer as READ COMMITTED does or raise 40001.
 *
 * Status rules (README "Order lifecycle and arithmetic"): deposits are refused on CLOSED accounts;
 * withdraw and lock_balance need ACTIVE; unlock is always allowed; capture
 * is allowed unless CLOSED.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "args.h"
#include "exchange_adapter.h"
#include "ledger.h"
#include "stmt.h"

PG_FUNCTION_INFO_V1(exa_deposit);
PG_FUNCTION_INFO_V1(exa_withdraw);
PG_FUNCTION_INFO_V1(exa_lock_balance);
PG_FUNCTION_INFO_V1(exa_unlock_balance);
PG_FUNCTION_INFO_V1(exa_capture_hold);

#define REFERENCE_MAXLEN 128
#define REASON_MAXLEN 256

static ExaStmt stmt_insert_hold = {
	"INSERT INTO exchange.holds (account_id, asset, amount, remaining, reason)"
	" VALUES ($1, $2, $3, $3, $4) RETURNING *",
	4, {UUIDOID, TEXTOID, NUMERICOID, TEXTOID},
	NULL
};

static ExaStmt stmt_hold_account = {
	"SELECT account_id FROM exchange.holds WHERE hold_id OPERATOR(pg_catalog.=) $1",
	1, {UUIDOID},
	NULL
};

static ExaStmt stmt_lock_hold = {
	"SELECT asset::pg_catalog.text, remaining FROM exchange.holds"
	" WHERE hold_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	1, {UUIDOID},
	NULL
};

/*
 * A hold as a capture with a reference ($2, $3: account, reference) left
 * it: the current row with the later journal rows of the hold undone (the
 * hold row is locked by every change, so a later change has a later seq).
 */
static ExaStmt stmt_hold_after_capture = {
	"SELECT (pg_catalog.jsonb_populate_record(h, pg_catalog.jsonb_build_object("
	"         'remaining', h.remaining OPERATOR(pg_catalog.-) l.locked,"
	"         'captured', h.captured OPERATOR(pg_catalog.+) l.captured,"
	"         'released_at', CASE WHEN h.remaining OPERATOR(pg_catalog.-) l.locked"
	"                                  OPERATOR(pg_catalog.=) 0 THEN h.released_at END))).*"
	"  FROM exchange.holds h,"
	"       (SELECT seq FROM exchange.balance_journal"
	"         WHERE account_id OPERATOR(pg_catalog.=) $2"
	"           AND kind OPERATOR(pg_catalog.=) 'CAPTURE'"
	"           AND reference OPERATOR(pg_catalog.=) $3) c,"
	"       LATERAL (SELECT COALESCE(pg_catalog.sum(j.delta_locked), 0) AS locked,"
	"                       COALESCE(pg_catalog.sum(j.delta_locked)"
	"                                FILTER (WHERE j.kind OPERATOR(pg_catalog.=) 'CAPTURE'), 0)"
	"                         AS captured"
	"                  FROM exchange.balance_journal j"
	"                 WHERE j.hold_id OPERATOR(pg_catalog.=) h.hold_id"
	"                   AND j.seq OPERATOR(pg_catalog.>) c.seq) l"
	" WHERE h.hold_id OPERATOR(pg_catalog.=) $1",
	3, {UUIDOID, UUIDOID, TEXTOID},
	NULL
};

/* $2: the amount leaving the hold; $3: the part of it that is captured. */
static ExaStmt stmt_reduce_hold = {
	"UPDATE exchange.holds"
	"   SET remaining = remaining OPERATOR(pg_catalog.-) $2,"
	"       captured = captured OPERATOR(pg_catalog.+) $3,"
	"       released_at = CASE WHEN remaining OPERATOR(pg_catalog.=) $2"
	"                          THEN pg_catalog.now() END"
	" WHERE hold_id OPERATOR(pg_catalog.=) $1 RETURNING *",
	3, {UUIDOID, NUMERICOID, NUMERICOID},
	NULL
};

/*
 * A reference reused with other values (LX009).  prior is the journal row
 * the reference first wrote; use is a deposit, a withdrawal or a capture.  One
 * literal message per kind, so that each translates whole.
 */
static void
idempotency_conflict(ExaAccountUse use, const char *reference,
					 const LedgerPrior *prior)
{
	if (use == EXA_USE_DEPOSIT)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_IDEMPOTENCY_CONFLICT),
				 errmsg("deposit with reference \"%s\" was already made with other values",
						reference),
				 errdetail("The first deposit moved %s %s.",
						   exa_num_str(prior->delta_available), prior->asset),
				 errhint("Use a new reference for a new deposit.")));
	if (use == EXA_USE_WITHDRAWAL)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_IDEMPOTENCY_CONFLICT),
				 errmsg("withdrawal with reference \"%s\" was already made with other values",
						reference),
				 errdetail("The first withdrawal moved %s %s.",
						   exa_num_str(prior->delta_available), prior->asset),
				 errhint("Use a new reference for a new withdrawal.")));
	ereport(ERROR,
			(errcode(ERRCODE_EXA_IDEMPOTENCY_CONFLICT),
			 errmsg("capture with reference \"%s\" was already made with other values",
					reference),
			 errdetail("The first capture took %s %s from hold %s.",
					   exa_num_str(exa_neg(prior->delta_locked)), prior->asset,
					   prior->has_hold ? exa_uuid_str((pg_uuid_t *) &prior->hold_id) : "(none)"),
			 errhint("Use a new reference for a new capture.")));
}

/* deposit and withdraw share everything but the sign, the kind and the status rule. */
static Datum
move_funds(FunctionCallInfo fcinfo, bool is_deposit)
{
	pg_uuid_t  *account_id = exa_arg_uuid(fcinfo, 0, "account_id");
	char	   *asset = exa_arg_asset(fcinfo, 1, "asset");
	Numeric		amount = exa_arg_amount(fcinfo, 2, "amount", EXA_AMOUNT_POSITIVE);
	char	   *reference = exa_arg_text(fcinfo, 3, "reference", true, REFERENCE_MAXLEN);
	const char *kind = is_deposit ? "DEPOSIT" : "WITHDRAWAL";
	Numeric		delta = is_deposit ? amount : exa_neg(amount);
	ExaAccount	acct;
	ExaCall		call;
	LedgerMove	move = {0};
	Datum		result;

	exa_call_begin(&call);
	exa_ledger_lock_account(account_id, false, &acct);

	if (reference != NULL)
	{
		LedgerPrior prior;

		if (exa_ledger_find_reference(account_id, kind, reference, &prior))
		{
			if (strcmp(prior.asset, asset) != 0 ||
				exa_cmp(prior.delta_available, delta) != 0)
				idempotency_conflict(is_deposit ? EXA_USE_DEPOSIT : EXA_USE_WITHDRAWAL,
									 reference, &prior);
			result = exa_ledger_balance_row(account_id, asset);
			exa_call_end(&call);
			PG_RETURN_DATUM(result);
		}
	}

	exa_ledger_require_status(&acct, is_deposit ? EXA_USE_DEPOSIT : EXA_USE_WITHDRAWAL);

	move.account_id = account_id;
	move.asset = asset;
	move.delta_available = delta;
	move.kind = kind;
	move.reference = reference;
	move.want_row = true;
	exa_ledger_move(&call, &move, 1);
	result = move.result;
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}

/* deposit(account_id uuid, asset text, amount numeric, reference text) -> balances */
Datum
exa_deposit(PG_FUNCTION_ARGS)
{
	return move_funds(fcinfo, true);
}

/* withdraw(account_id uuid, asset text, amount numeric, reference text) -> balances */
Datum
exa_withdraw(PG_FUNCTION_ARGS)
{
	return move_funds(fcinfo, false);
}

/* lock_balance(account_id uuid, asset text, amount numeric, reason text) -> holds */
Datum
exa_lock_balance(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *account_id = exa_arg_uuid(fcinfo, 0, "account_id");
	char	   *asset = exa_arg_asset(fcinfo, 1, "asset");
	Numeric		amount = exa_arg_amount(fcinfo, 2, "amount", EXA_AMOUNT_POSITIVE);
	char	   *reason = exa_arg_text(fcinfo, 3, "reason", true, REASON_MAXLEN);
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', reason ? ' ' : 'n'};
	ExaAccount	acct;
	ExaCall		call;
	LedgerMove	move = {0};
	pg_uuid_t	hold_id;
	Datum		result;

	exa_call_begin(&call);
	exa_ledger_lock_account(account_id, false, &acct);
	exa_ledger_require_status(&acct, EXA_USE_LOCK);

	values[0] = UUIDPGetDatum(account_id);
	values[1] = CStringGetTextDatum(asset);
	values[2] = NumericGetDatum(amount);
	values[3] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	exa_exec(&stmt_insert_hold, values, nulls, 1);
	result = exa_return_row(0);
	memcpy(&hold_id, DatumGetUUIDP(exa_col_notnull(0, 1)), sizeof(pg_uuid_t));

	move.account_id = account_id;
	move.asset = asset;
	move.delta_available = exa_neg(amount);
	move.delta_locked = amount;
	move.kind = "LOCK";
	move.hold_id = &hold_id;
	exa_ledger_move(&call, &move, 1);
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}

/*
 * Take what a hold call needs, in lock order: the hold's account (read
 * without a lock, then locked FOR SHARE), then the hold row FOR UPDATE.
 */
static void
hold_account(pg_uuid_t *hold_id, pg_uuid_t *account_id, ExaAccount *acct)
{
	Datum		key[1] = {UUIDPGetDatum(hold_id)};

	if (exa_exec_recheck(&stmt_hold_account, key, NULL, 1,
						 "hold %s", exa_uuid_str(hold_id)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("hold %s does not exist", exa_uuid_str(hold_id))));
	memcpy(account_id, DatumGetUUIDP(exa_col_notnull(0, 1)), sizeof(pg_uuid_t));
	exa_ledger_lock_account(account_id, false, acct);
}

/* Lock the hold; return its asset and decide the amount leaving it. */
static char *
hold_take(pg_uuid_t *hold_id, Numeric *amount, bool capture)
{
	Datum		key[1] = {UUIDPGetDatum(hold_id)};
	char	   *asset;
	Numeric		remaining;

	exa_exec(&stmt_lock_hold, key, NULL, 1);
	asset = exa_col_cstring(0, 1);
	remaining = DatumGetNumeric(exa_col_notnull(0, 2));

	if (exa_is_zero(remaining))
		ereport(ERROR,
				(errcode(ERRCODE_EXA_ILLEGAL_TRANSITION),
				 errmsg("hold %s is already finished", exa_uuid_str(hold_id)),
				 capture ?
				 errdetail("Nothing remains of it to capture.") :
				 errdetail("Nothing remains of it to release.")));
	if (*amount == NULL)
		*amount = remaining;
	else if (exa_cmp(*amount, remaining) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" exceeds what remains of hold %s",
						"amount", exa_uuid_str(hold_id)),
				 capture ?
				 errdetail("%s remains; %s was asked to capture.",
						   exa_num_str(remaining), exa_num_str(*amount)) :
				 errdetail("%s remains; %s was asked to release.",
						   exa_num_str(remaining), exa_num_str(*amount)),
				 capture ?
				 errhint("Pass NULL to capture all that remains.") :
				 errhint("Pass NULL to release all that remains.")));
	return asset;
}

/*
 * Take amount out of a locked hold: released back to available (UNLOCK) or
 * captured out of the account (CAPTURE).  Returns the updated hold row.
 */
static Datum
hold_reduce(ExaCall *call, pg_uuid_t *hold_id, pg_uuid_t *account_id,
			const char *asset, Numeric amount, bool capture,
			const char *reference)
{
	Datum		values[3];
	LedgerMove	move = {0};
	Datum		result;

	values[0] = UUIDPGetDatum(hold_id);
	values[1] = NumericGetDatum(amount);
	values[2] = NumericGetDatum(capture ? amount : exa_zero());
	exa_exec(&stmt_reduce_hold, values, NULL, 1);
	result = exa_return_row(0);

	move.account_id = account_id;
	move.asset = asset;
	move.delta_available = capture ? NULL : amount;
	move.delta_locked = exa_neg(amount);
	move.kind = capture ? "CAPTURE" : "UNLOCK";
	move.hold_id = hold_id;
	move.reference = reference;
	exa_ledger_move(call, &move, 1);
	return result;
}

/* unlock_balance(hold_id uuid, amount numeric DEFAULT NULL) -> holds */
Datum
exa_unlock_balance(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *hold_id = exa_arg_uuid(fcinfo, 0, "hold_id");
	Numeric		amount = exa_arg_amount(fcinfo, 1, "amount",
										EXA_AMOUNT_POSITIVE | EXA_AMOUNT_NULL_OK);
	pg_uuid_t	account_id;
	ExaAccount	acct;
	ExaCall		call;
	char	   *asset;
	Datum		result;

	exa_call_begin(&call);
	hold_account(hold_id, &account_id, &acct);
	asset = hold_take(hold_id, &amount, false);
	result = hold_reduce(&call, hold_id, &account_id, asset, amount, false, NULL);
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}

/*
 * capture_hold(hold_id uuid, amount numeric DEFAULT NULL,
 *				reference text DEFAULT NULL) -> holds
 *
 * The captured funds leave the account as a withdrawal from locked.  A
 * retry (same hold and reference; amount NULL or the amount the first call
 * captured) changes nothing and returns what the first call returned: the
 * hold as that capture left it, whatever happened to the hold since.
 */
Datum
exa_capture_hold(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *hold_id = exa_arg_uuid(fcinfo, 0, "hold_id");
	Numeric		amount = exa_arg_amount(fcinfo, 1, "amount",
										EXA_AMOUNT_POSITIVE | EXA_AMOUNT_NULL_OK);
	char	   *reference = exa_arg_text(fcinfo, 2, "reference", true, REFERENCE_MAXLEN);
	pg_uuid_t	account_id;
	ExaAccount	acct;
	ExaCall		call;
	Datum		values[3];
	char	   *asset;
	Datum		result;

	exa_call_begin(&call);
	hold_account(hold_id, &account_id, &acct);

	if (reference != NULL)
	{
		LedgerPrior prior;

		if (exa_ledger_find_reference(&account_id, "CAPTURE", reference, &prior))
		{
			if (!prior.has_hold || exa_uuid_cmp(&prior.hold_id, hold_id) != 0 ||
				(amount != NULL && exa_cmp(exa_neg(prior.delta_locked), amount) != 0))
				idempotency_conflict(EXA_USE_CAPTURE, reference, &prior);
			values[0] = UUIDPGetDatum(hold_id);
			values[1] = UUIDPGetDatum(&account_id);
			values[2] = CStringGetTextDatum(reference);
			if (exa_exec_recheck(&stmt_hold_after_capture, values, NULL, 1,
								 "hold %s", exa_uuid_str(hold_id)) != 1)
				elog(ERROR, "capture \"%s\" of hold %s not found", reference,
					 exa_uuid_str(hold_id));
			result = exa_return_row(0);
			exa_call_end(&call);
			PG_RETURN_DATUM(result);
		}
	}

	exa_ledger_require_status(&acct, EXA_USE_CAPTURE);
	asset = hold_take(hold_id, &amount, true);
	result = hold_reduce(&call, hold_id, &account_id, asset, amount, true, reference);
	exa_call_end(&call);
	PG_RETURN_DATUM(result);
}
