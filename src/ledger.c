/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  The call context, account locks and the one balance-move primitive.
 *
 * This file is the only writer of exchange.balances and of
 * exchange.balance_journal.  It takes account rows (lock order 1) and
 * balance rows (lock order 4, ascending (account_id, asset)); see ledger.h
 * for the whole order.  It must not lock orders or holds, and it must not
 * talk to Redis: it only names stale keys, which exa_call_end() writes to
 * the outbox in the caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "args.h"
#include "catalog_version.h"
#include "exchange_adapter.h"
#include "ledger.h"
#include "outbox.h"
#include "stmt.h"

/* ------------------------------------------------------------------------
 * Call context
 * ------------------------------------------------------------------------
 */

static void journal_flush(ExaCall *call, struct JournalBuf *jb);
static void set_flush(ExaBalanceSet *set);
static bool set_move(ExaCall *call, LedgerMove *m, bool soft);

void
exa_call_begin(ExaCall *call)
{
	call->actor = NULL;
	call->keys = NIL;
	call->key_set = NULL;
	call->executions = NULL;
	call->nexecutions = 0;
	call->maxexecutions = 0;
	call->journal = NULL;
	call->events = NULL;
	call->trades = NULL;
	call->balances = NULL;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	initStringInfo(&call->buf);
}

/*
 * The set of a call's keys, for the duplicate check once the list is long:
 * a batch call (cancel_orders, expire_orders) names a key per order, and a
 * scan of the list per key would make it quadratic.  The entries point at
 * the strings of call->keys, which keeps their order (insertion order) for
 * the outbox row.  A short list is scanned: the single-order calls name a
 * handful of keys, and building a table would cost them more than it saves.
 */
#define KEY_SCAN_MAX 16

static uint32
key_hash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
key_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

static void
key_set_create(ExaCall *call)
{
	HASHCTL		ctl;
	ListCell   *lc;

	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(char *);
	ctl.hash = key_hash;
	ctl.match = key_match;
	ctl.hcxt = GetMemoryChunkContext(call->keys);
	call->key_set = hash_create("exchange_adapter call keys", 256, &ctl,
								HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	foreach(lc, call->keys)
	{
		char	   *key = (char *) lfirst(lc);

		(void) hash_search(call->key_set, &key, HASH_ENTER, NULL);
	}
}

static bool
key_named(ExaCall *call, const char *key)
{
	ListCell   *lc;

	if (call->key_set != NULL)
		return hash_search(call->key_set, &key, HASH_FIND, NULL) != NULL;
	foreach(lc, call->keys)
	{
		if (strcmp((char *) lfirst(lc), key) == 0)
			return true;
	}
	return false;
}

void
exa_call_key(ExaCall *call, const char *fmt,...)
{
	StringInfo	buf = &call->buf;
	char	   *key;

	resetStringInfo(buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(buf, needed);
	}

	if (key_named(call, buf->data))
		return;

	/* a copy of its own size: a batch call keeps a key per order */
	key = pnstrdup(buf->data, buf->len);
	call->keys = lappend(call->keys, key);
	if (call->key_set != NULL)
		(void) hash_search(call->key_set, &key, HASH_ENTER, NULL);
	else if (list_length(call->keys) > KEY_SCAN_MAX)
		key_set_create(call);
}

void
exa_call_book_keys(ExaCall *call, const char *symbol)
{
	exa_call_key(call, "cache:book:%s", symbol);
	exa_call_key(call, "cache:ticker:%s", symbol);
}

void
exa_call_execution(ExaCall *call, const pg_uuid_t *trade_id)
{
	if (call->nexecutions >= call->maxexecutions)
	{
		call->maxexecutions = Max(8, 2 * call->maxexecutions);
		call->executions = call->executions == NULL ?
			palloc(sizeof(pg_uuid_t) * call->maxexecutions) :
			repalloc(call->executions, sizeof(pg_uuid_t) * call->maxexecutions);
	}
	memcpy(&call->executions[call->nexecutions++], trade_id, sizeof(pg_uuid_t));
}

/*
 * The executions go into the same row as the keys their fills made stale,
 * so the deliverer publishes them after that row's deletions and
 * invalidation message.  On a 1.0 catalog (no outbox.trade_ids: README
 * "Upgrading") the row is written as 1.0 wrote it and the call has no feed.
 */
void
exa_call_end(ExaCall *call)
{
	if (call->balances != NULL)
		set_flush(call->balances);
	if (call->journal != NULL)
		journal_flush(call, call->journal);
	if (call->nexecutions > 0 && exa_catalog_is_1_1())
		exa_outbox_enqueue_cache_feed(call->keys, call->executions,
								  call->nexecutions);
	else if (call->keys != NIL)
		exa_outbox_enqueue_cache(call->keys);
	SPI_finish();
}

text *
exa_call_actor(ExaCall *call)
{
	if (call->actor == NULL)
		call->actor = exa_actor();
	return call->actor;
}

char *
exa_uuid_str(pg_uuid_t *id)
{
	char	   *buf = palloc(2 * UUID_LEN + 5);

	exa_uuid_format(id, buf);
	return buf;
}

/*
 * The text of uuid_out (lower-case hex, hyphens after bytes 4, 6, 8 and 10)
 * in a caller's buffer: a batch call names keys for a million orders, and
 * uuid_out allocates a StringInfo (1 kB) per call.
 */
void
exa_uuid_format(const pg_uuid_t *id, char *buf)
{
	static const char hex_chars[] = "0123456789abcdef";
	char	   *p = buf;

	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex_chars[id->data[i] >> 4];
		*p++ = hex_chars[id->data[i] & 0x0F];
	}
	*p = '\0';
}

int
exa_uuid_cmp(const pg_uuid_t *a, const pg_uuid_t *b)
{
	return memcmp(a->data, b->data, UUID_LEN);
}

/* ------------------------------------------------------------------------
 * Accounts (lock order 1)
 * ------------------------------------------------------------------------
 */

static ExaStmt stmt_lock_account_share = {
	"SELECT status::pg_catalog.text, kyc_status::pg_catalog.text"
	"  FROM exchange.accounts WHERE account_id OPERATOR(pg_catalog.=) $1"
	"  FOR SHARE",
	1, {UUIDOID},
	NULL
};

static ExaStmt stmt_lock_account_update = {
	"SELECT status::pg_catalog.text, kyc_status::pg_catalog.text"
	"  FROM exchange.accounts WHERE account_id OPERATOR(pg_catalog.=) $1"
	"  FOR NO KEY UPDATE",
	1, {UUIDOID},
	NULL
};

static ExaStmt stmt_account_exists = {
	"SELECT FROM exchange.accounts WHERE account_id OPERATOR(pg_catalog.=) $1",
	1, {UUIDOID},
	NULL
};

void
exa_ledger_lock_account(pg_uuid_t *account_id, bool for_update, ExaAccount *out)
{
	Datum		values[1] = {UUIDPGetDatum(account_id)};

	if (exa_exec(for_update ? &stmt_lock_account_update : &stmt_lock_account_share,
				 values, NULL, 1) != 1)
	{
		/* created after a REPEATABLE READ snapshot: 40001, not "not found" */
		exa_recheck_missing(&stmt_account_exists, values, NULL,
							"account %s", exa_uuid_str(account_id));
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("account %s does not exist", exa_uuid_str(account_id))));
	}

	memcpy(&out->account_id, account_id, sizeof(pg_uuid_t));
	out->status = exa_account_status_from_text(exa_col_cstring(0, 1));
	out->kyc_status = exa_kyc_status_from_text(exa_col_cstring(0, 2));
}

void
exa_ledger_require_status(const ExaAccount *acct, ExaAccountUse use)
{
	const char *status = exa_account_status_name(acct->status);

	if (acct->status == EXA_ACCOUNT_ACTIVE)
		return;
	if (acct->status == EXA_ACCOUNT_SUSPENDED &&
		use != EXA_USE_WITHDRAWAL && use != EXA_USE_LOCK)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_EXA_ACCOUNT_NOT_ACTIVE),
			 errmsg("account %s is not active", exa_uuid_str((pg_uuid_t *) &acct->account_id)),
			 use == EXA_USE_WITHDRAWAL ?
			 errdetail("The account is %s; a withdrawal needs an ACTIVE account.", status) :
			 use == EXA_USE_LOCK ?
			 errdetail("The account is %s; locking funds needs an ACTIVE account.", status) :
			 use == EXA_USE_DEPOSIT ?
			 errdetail("The account is %s; a deposit needs an ACTIVE or SUSPENDED account.", status) :
			 use == EXA_USE_CAPTURE ?
			 errdetail("The account is %s; a capture needs an ACTIVE or SUSPENDED account.", status) :
			 errdetail("The account is %s; a KYC status change needs an ACTIVE or SUSPENDED account.", status),
			 acct->status == EXA_ACCOUNT_CLOSED ?
			 errhint("A closed account cannot be reopened.") :
			 errhint("Reactivate it with exchange.set_account_status(account_id, 'ACTIVE').")));
}

/* ------------------------------------------------------------------------
 * Balance moves (lock order 4)
 * ------------------------------------------------------------------------
 */

/*
 * The move refuses (updates no row) when a balance would go below zero or
 * beyond numeric(24,8), so that ledger_move_one() can say which, instead of
 * the UPDATE failing on the column's type (total_balance is generated as
 * available + locked: it overflows first).
 */
#define BALANCE_LIMIT "10000000000000000"

#define MOVE_SQL \
	"UPDATE exchange.balances" \
	"   SET available_balance = available_balance OPERATOR(pg_catalog.+) $3," \
	"       locked_balance = locked_balance OPERATOR(pg_catalog.+) $4," \
	"       last_updated = pg_catalog.now()" \
	" WHERE account_id OPERATOR(pg_catalog.=) $1" \
	"   AND symbol OPERATOR(pg_catalog.=) $2" \
	"   AND available_balance OPERATOR(pg_catalog.+) $3 OPERATOR(pg_catalog.>=) 0" \
	"   AND locked_balance OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.>=) 0" \
	"   AND available_balance OPERATOR(pg_catalog.+) $3 OPERATOR(pg_catalog.<) " BALANCE_LIMIT \
	"   AND locked_balance OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.<) " BALANCE_LIMIT \
	"   AND total_balance OPERATOR(pg_catalog.+) $3 OPERATOR(pg_catalog.+) $4" \
	"       OPERATOR(pg_catalog.<) " BALANCE_LIMIT

/* The move, returning the row for callers that want it (deposit, withdraw). */
static ExaStmt stmt_move_row = {
	MOVE_SQL " RETURNING *",
	4, {UUIDOID, TEXTOID, NUMERICOID, NUMERICOID},
	NULL
};

/* The move as fills and placements make it: no row copied back. */
static ExaStmt stmt_move = {
	MOVE_SQL,
	4, {UUIDOID, TEXTOID, NUMERICOID, NUMERICOID},
	NULL
};

/*
 * A credit run (credit_run_length) on one row, applied at once: available
 * up by $3, the run's sum, where $4, the highest point the moves one by one
 * would reach above the row's available (and total), stays below the
 * limit.  Nothing else can fail: locked does not change, and no move of the
 * run takes available below what it was (the row's CHECK keeps available and
 * locked >= 0, so checking the total checks available too).
 */
static ExaStmt stmt_move_credit_run = {
	"UPDATE exchange.balances"
	"   SET available_balance = available_balance OPERATOR(pg_catalog.+) $3,"
	"       locked_balance = locked_balance,"
	"       last_updated = pg_catalog.now()"
	" WHERE account_id OPERATOR(pg_catalog.=) $1"
	"   AND symbol OPERATOR(pg_catalog.=) $2"
	"   AND total_balance OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.<) " BALANCE_LIMIT,
	4, {UUIDOID, TEXTOID, NUMERICOID, NUMERICOID},
	NULL
};

static ExaStmt stmt_probe_balance = {
	"SELECT available_balance, locked_balance FROM exchange.balances"
	" WHERE account_id OPERATOR(pg_catalog.=) $1"
	"   AND symbol OPERATOR(pg_catalog.=) $2"
	" FOR UPDATE",
	2, {UUIDOID, TEXTOID},
	NULL
};

static ExaStmt stmt_create_balance = {
	"INSERT INTO exchange.balances (account_id, symbol) VALUES ($1, $2)"
	" ON CONFLICT (account_id, symbol) DO NOTHING",
	2, {UUIDOID, TEXTOID},
	NULL
};

static ExaStmt stmt_journal = {
	"INSERT INTO exchange.balance_journal"
	" (account_id, asset, delta_available, delta_locked, kind,"
	"  order_id, trade_id, hold_id, reference, actor)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	10, {UUIDOID, TEXTOID, NUMERICOID, NUMERICOID, TEXTOID,
	UUIDOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID},
	NULL
};

static ExaStmt stmt_balance_exists = {
	"SELECT FROM exchange.balances"
	" WHERE account_id OPERATOR(pg_catalog.=) $1"
	"   AND symbol OPERATOR(pg_catalog.=) $2",
	2, {UUIDOID, TEXTOID},
	NULL
};

static ExaStmt stmt_balance_row = {
	"SELECT * FROM exchange.balances"
	" WHERE account_id OPERATOR(pg_catalog.=) $1"
	"   AND symbol OPERATOR(pg_catalog.=) $2",
	2, {UUIDOID, TEXTOID},
	NULL
};

/*
 * The journal rows of one exa_ledger_move() call, written by one INSERT when
 * the call's balance rows are all updated: each INSERT statement costs an
 * executor start-up and the rebuild of the table's CHECK constraints, so a
 * trade's four to six journal rows in one statement cost one of each.  Rows
 * keep the order in which the moves were applied (seq ascending).
 */
typedef struct JournalBuf
{
	MemoryContext cxt;			/* where the rows live until written */
	bool		keep;			/* a call's buffer (exa_call_defer_journal):
								 * it outlives the moves, so their values are
								 * copied */
	int			n;
	int			cap;
	Datum	   *acct;
	Datum	   *asset;
	Datum	   *da;
	Datum	   *dl;
	Datum	   *kind;
	Datum	   *order_id;
	Datum	   *trade_id;
	Datum	   *hold_id;
	Datum	   *reference;
	bool	   *nulls[4];		/* order_id, trade_id, hold_id, reference */
} JournalBuf;

/*
 * The unnests are in the target list, not in FROM: run in lockstep by a
 * ProjectSet node, they stream the rows, where a function scan would first
 * store them in a tuplestore -- whose allocation and release at every call,
 * at the top of the heap, made glibc shrink and regrow the heap around
 * each apply_trade (brk and munmap: ~9 % of its time, bench/README.md).
 */
static ExaStmt stmt_journal_rows = {
	"INSERT INTO exchange.balance_journal"
	" (account_id, asset, delta_available, delta_locked, kind,"
	"  order_id, trade_id, hold_id, reference, actor)"
	" SELECT pg_catalog.unnest($2::pg_catalog.uuid[]),"
	"        pg_catalog.unnest($3::pg_catalog.text[]),"
	"        pg_catalog.unnest($4::pg_catalog.numeric[]),"
	"        pg_catalog.unnest($5::pg_catalog.numeric[]),"
	"        pg_catalog.unnest($6::pg_catalog.text[]),"
	"        pg_catalog.unnest($7::pg_catalog.uuid[]),"
	"        pg_catalog.unnest($8::pg_catalog.uuid[]),"
	"        pg_catalog.unnest($9::pg_catalog.uuid[]),"
	"        pg_catalog.unnest($10::pg_catalog.text[]), $1",
	10, {TEXTOID, UUIDARRAYOID, TEXTARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID,
	TEXTARRAYOID, UUIDARRAYOID, UUIDARRAYOID, UUIDARRAYOID, TEXTARRAYOID},
	NULL
};

/* id as a Datum, copied into the current context when keep; NULL: 0. */
static Datum
uuid_datum(pg_uuid_t *id, bool keep)
{
	pg_uuid_t  *c;

	if (id == NULL || !keep)
		return UUIDPGetDatum(id);
	c = palloc(sizeof(pg_uuid_t));
	memcpy(c, id, sizeof(pg_uuid_t));
	return UUIDPGetDatum(c);
}

/*
 * Add a journal row to jb.  A call's buffer (jb->keep) outlives the moves
 * whose rows it holds -- a batch's items -- so their values are copied into
 * its context; exa_ledger_move's own buffer is written before it returns.
 */
static void
journal_add(JournalBuf *jb, pg_uuid_t *acct, const char *asset, Numeric da,
			Numeric dl, const char *kind, pg_uuid_t *order_id,
			pg_uuid_t *trade_id, pg_uuid_t *hold_id, const char *reference)
{
	MemoryContext oldcxt;

	if (jb->cxt == NULL)
		jb->cxt = CurrentMemoryContext;
	oldcxt = MemoryContextSwitchTo(jb->cxt);
	if (jb->n == jb->cap)
	{
		int			cap = jb->cap ? jb->cap * 2 : 8;
		Datum	  **cols[] = {&jb->acct, &jb->asset, &jb->da, &jb->dl, &jb->kind,
		&jb->order_id, &jb->trade_id, &jb->hold_id, &jb->reference};

		for (int i = 0; i < (int) lengthof(cols); i++)
			*cols[i] = exa_grow_column(*cols[i], sizeof(Datum), cap);
		for (int i = 0; i < (int) lengthof(jb->nulls); i++)
			jb->nulls[i] = exa_grow_column(jb->nulls[i], sizeof(bool), cap);
		jb->cap = cap;
	}
	jb->acct[jb->n] = uuid_datum(acct, jb->keep);
	jb->asset[jb->n] = CStringGetTextDatum(asset);
	jb->da[jb->n] = jb->keep ? datumCopy(NumericGetDatum(da), false, -1) : NumericGetDatum(da);
	jb->dl[jb->n] = jb->keep ? datumCopy(NumericGetDatum(dl), false, -1) : NumericGetDatum(dl);
	jb->kind[jb->n] = CStringGetTextDatum(kind);
	jb->order_id[jb->n] = uuid_datum(order_id, jb->keep);
	jb->trade_id[jb->n] = uuid_datum(trade_id, jb->keep);
	jb->hold_id[jb->n] = uuid_datum(hold_id, jb->keep);
	jb->reference[jb->n] = reference ? CStringGetTextDatum(reference) : (Datum) 0;
	jb->nulls[0][jb->n] = order_id == NULL;
	jb->nulls[1][jb->n] = trade_id == NULL;
	jb->nulls[2][jb->n] = hold_id == NULL;
	jb->nulls[3][jb->n] = reference == NULL;
	jb->n++;
	MemoryContextSwitchTo(oldcxt);
}

/* Write the buffered journal rows: one statement, whatever their number. */
static void
journal_flush(ExaCall *call, JournalBuf *jb)
{
	Datum		values[10];

	if (jb->n == 0)
		return;
	if (jb->n == 1)
	{
		/* one row: the plain INSERT, cheaper than unnesting arrays */
		char		nulls[10];

		values[0] = jb->acct[0];
		values[1] = jb->asset[0];
		values[2] = jb->da[0];
		values[3] = jb->dl[0];
		values[4] = jb->kind[0];
		values[5] = jb->order_id[0];
		values[6] = jb->trade_id[0];
		values[7] = jb->hold_id[0];
		values[8] = jb->reference[0];
		values[9] = PointerGetDatum(exa_call_actor(call));
		memset(nulls, ' ', sizeof(nulls));
		for (int i = 0; i < 4; i++)
			nulls[5 + i] = jb->nulls[i][0] ? 'n' : ' ';
		exa_exec_vouched(&stmt_journal, values, nulls, 0);
		jb->n = 0;
		return;
	}
	values[0] = PointerGetDatum(exa_call_actor(call));
	values[1] = exa_datum_array(jb->acct, NULL, jb->n, UUIDOID);
	values[2] = exa_datum_array(jb->asset, NULL, jb->n, TEXTOID);
	values[3] = exa_datum_array(jb->da, NULL, jb->n, NUMERICOID);
	values[4] = exa_datum_array(jb->dl, NULL, jb->n, NUMERICOID);
	values[5] = exa_datum_array(jb->kind, NULL, jb->n, TEXTOID);
	values[6] = exa_datum_array(jb->order_id, jb->nulls[0], jb->n, UUIDOID);
	values[7] = exa_datum_array(jb->trade_id, jb->nulls[1], jb->n, UUIDOID);
	values[8] = exa_datum_array(jb->hold_id, jb->nulls[2], jb->n, UUIDOID);
	values[9] = exa_datum_array(jb->reference, jb->nulls[3], jb->n, TEXTOID);
	exa_exec_vouched(&stmt_journal_rows, values, NULL, 0);
	jb->n = 0;
}

void
exa_call_defer_journal(ExaCall *call)
{
	call->journal = palloc0(sizeof(struct JournalBuf));
	call->journal->keep = true;
}

static int
ledger_move_cmp(const void *a, const void *b)
{
	const LedgerMove *ma = (const LedgerMove *) a;
	const LedgerMove *mb = (const LedgerMove *) b;
	int			c = exa_uuid_cmp(ma->account_id, mb->account_id);

	if (c != 0)
		return c;
	/* asset codes are [A-Z0-9]: byte order is the collation-free order */
	c = strcmp(ma->asset, mb->asset);
	if (c != 0)
		return c;
	return ma->ord - mb->ord;
}

/* Would available, locked or their total reach numeric(24,8)'s limit? */
static bool
balance_beyond_limit(Numeric avail, Numeric locked, Numeric da, Numeric dl)
{
	Numeric		limit = exa_amount_limit();

	return exa_cmp(exa_add(avail, da), limit) >= 0 ||
		exa_cmp(exa_add(locked, dl), limit) >= 0 ||
		exa_cmp(exa_add(exa_add(avail, da), exa_add(locked, dl)), limit) >= 0;
}

static void balance_out_of_range(LedgerMove *m, Numeric avail, Numeric locked,
								 Numeric da, Numeric dl) pg_attribute_noreturn();

static void
balance_out_of_range(LedgerMove *m, Numeric avail, Numeric locked,
					 Numeric da, Numeric dl)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("balance of account %s in asset %s would be out of range",
					exa_uuid_str(m->account_id), m->asset),
			 errdetail("Available balance is %s and locked balance %s; the change is %s available and %s locked. Balances are numeric(24,8), below 1e16.",
					   exa_num_str(avail), exa_num_str(locked),
					   exa_num_str(da), exa_num_str(dl))));
}

static void balance_shortage(LedgerMove *m, Numeric avail, Numeric locked,
							 Numeric da, Numeric dl) pg_attribute_noreturn();

/* LX001: avail + da or locked + dl is below zero. */
static void
balance_shortage(LedgerMove *m, Numeric avail, Numeric locked, Numeric da,
				 Numeric dl)
{
	char	   *acct = exa_uuid_str(m->account_id);

	if (exa_cmp(exa_add(avail, da), exa_zero()) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_INSUFFICIENT_FUNDS),
				 errmsg("insufficient funds in account %s for asset %s",
						acct, m->asset),
				 errdetail("Available balance is %s; %s is needed.",
						   exa_num_str(avail), exa_num_str(exa_neg(da)))));
	ereport(ERROR,
			(errcode(ERRCODE_EXA_INSUFFICIENT_FUNDS),
			 errmsg("insufficient locked funds in account %s for asset %s",
					acct, m->asset),
			 errdetail("Locked balance is %s; %s is to be released.",
					   exa_num_str(locked), exa_num_str(exa_neg(dl))),
			 errhint("Run exchange.check_invariants() to find the inconsistency.")));
}

/*
 * Change m's balance row by da and dl (the UPDATE, creating the row when
 * it is missing and the change is a credit); on a shortage return false
 * when soft, else raise LX001; beyond numeric(24,8) raise 22003.
 */
static bool
ledger_apply(LedgerMove *m, Numeric da, Numeric dl, bool soft)
{
	Datum		key[2] = {UUIDPGetDatum(m->account_id), CStringGetTextDatum(m->asset)};
	bool		created = false;

	for (;;)
	{
		Datum		mv[4] = {key[0], key[1], NumericGetDatum(da), NumericGetDatum(dl)};
		Numeric		avail;
		Numeric		locked;

		if (exa_exec(m->want_row ? &stmt_move_row : &stmt_move, mv, NULL, 1) == 1)
		{
			if (m->want_row)
				m->result = exa_return_row(0);
			break;
		}

		/* No row updated: the row is missing or would go below zero. */
		if (exa_exec(&stmt_probe_balance, key, NULL, 1) == 0)
		{
			if (!created && exa_cmp(da, exa_zero()) >= 0 && exa_cmp(dl, exa_zero()) >= 0)
			{
				exa_exec(&stmt_create_balance, key, NULL, 0);
				created = true;
				continue;
			}

			/*
			 * A shortage on a missing row: under REPEATABLE READ the row may
			 * have been created after the snapshot (40001, not LX001).
			 */
			exa_recheck_missing(&stmt_balance_exists, key, NULL,
								"the %s balance of account %s", m->asset,
								exa_uuid_str(m->account_id));
			avail = locked = exa_zero();
		}
		else
		{
			avail = DatumGetNumeric(exa_col_notnull(0, 1));
			locked = DatumGetNumeric(exa_col_notnull(0, 2));
			if (exa_cmp(exa_add(avail, da), exa_zero()) >= 0 &&
				exa_cmp(exa_add(locked, dl), exa_zero()) >= 0)
			{
				if (balance_beyond_limit(avail, locked, da, dl))
					balance_out_of_range(m, avail, locked, da, dl);
				/* It changed since the UPDATE looked: now locked, try again. */
				continue;
			}
		}

		if (soft)
			return false;
		balance_shortage(m, avail, locked, da, dl);
	}
	return true;
}

/* The keys a move on (account_id, asset) makes stale. */
static void
move_keys(ExaCall *call, pg_uuid_t *account_id, const char *asset)
{
	char		acct[EXA_UUID_STR_LEN];

	exa_uuid_format(account_id, acct);
	exa_call_key(call, "cache:balance:%s:%s", acct, asset);
	exa_call_key(call, "cache:balances:%s", acct);
}

/*
 * One move: the UPDATE, then its journal row, buffered in jb when given
 * (written by journal_flush), else inserted now.
 */
static bool
ledger_move_one(ExaCall *call, LedgerMove *m, bool soft, JournalBuf *jb)
{
	Numeric		da = m->delta_available ? m->delta_available : exa_zero();
	Numeric		dl = m->delta_locked ? m->delta_locked : exa_zero();
	Datum		values[10];
	char		nulls[10];

	if (!ledger_apply(m, da, dl, soft))
		return false;

	if (jb)
	{
		journal_add(jb, m->account_id, m->asset, da, dl, m->kind, m->order_id,
					m->trade_id, m->hold_id, m->reference);
		move_keys(call, m->account_id, m->asset);
		return true;
	}

	values[0] = UUIDPGetDatum(m->account_id);
	values[1] = CStringGetTextDatum(m->asset);
	values[2] = NumericGetDatum(da);
	values[3] = NumericGetDatum(dl);
	values[4] = CStringGetTextDatum(m->kind);
	values[5] = m->order_id ? UUIDPGetDatum(m->order_id) : (Datum) 0;
	values[6] = m->trade_id ? UUIDPGetDatum(m->trade_id) : (Datum) 0;
	values[7] = m->hold_id ? UUIDPGetDatum(m->hold_id) : (Datum) 0;
	values[8] = m->reference ? CStringGetTextDatum(m->reference) : (Datum) 0;
	values[9] = PointerGetDatum(exa_call_actor(call));
	memset(nulls, ' ', sizeof(nulls));
	nulls[5] = m->order_id ? ' ' : 'n';
	nulls[6] = m->trade_id ? ' ' : 'n';
	nulls[7] = m->hold_id ? ' ' : 'n';
	nulls[8] = m->reference ? ' ' : 'n';
	exa_exec_vouched(&stmt_journal, values, nulls, 0);
	move_keys(call, m->account_id, m->asset);
	return true;
}

static bool
ledger_move_is_noop(LedgerMove *m)
{
	return (m->delta_available == NULL || exa_is_zero(m->delta_available)) &&
		(m->delta_locked == NULL || exa_is_zero(m->delta_locked));
}

/* Do a and b move the same balance row? */
static bool
move_same_row(const LedgerMove *a, const LedgerMove *b)
{
	return exa_uuid_cmp(a->account_id, b->account_id) == 0 &&
		strcmp(a->asset, b->asset) == 0;
}

/*
 * The sign of a move of available only (no row wanted, locked unchanged):
 * 1 for a credit, -1 for a debit; 0 for any other move.
 */
static int
move_available_only_sign(const LedgerMove *m)
{
	if (m->want_row || m->delta_available == NULL ||
		(m->delta_locked != NULL && !exa_is_zero(m->delta_locked)))
		return 0;
	return exa_cmp(m->delta_available, exa_zero());
}

/*
 * Can m join a run of moves on one balance row applied as one UPDATE?  Only
 * releases (available up, locked down, total not up) with nothing but an
 * order as cause: then every intermediate balance lies between the first
 * and the last, so checking the last one checks them all, and the journal
 * rows are the same whether the UPDATE is one or many.
 */
static bool
ledger_move_mergeable(const LedgerMove *m, const LedgerMove *first)
{
	Numeric		da = m->delta_available ? m->delta_available : exa_zero();
	Numeric		dl = m->delta_locked ? m->delta_locked : exa_zero();

	return !m->want_row && m->trade_id == NULL && m->hold_id == NULL &&
		m->reference == NULL && strcmp(m->kind, first->kind) == 0 &&
		move_same_row(m, first) &&
		exa_cmp(da, exa_zero()) >= 0 && exa_cmp(dl, exa_zero()) <= 0 &&
		exa_cmp(exa_add(da, dl), exa_zero()) <= 0;
}

/*
 * A run of n >= 2 mergeable moves (ledger_move_mergeable) on one balance
 * row: one UPDATE by their sums, their journal rows in the order given
 * (buffered in jb, written with the call's others).  A batch call (cancel_orders, expire_orders) releases
 * thousands of orders of one account: one UPDATE per order would cost a
 * statement each and leave a version of the row per order to step over.
 */
static void
ledger_move_run(ExaCall *call, LedgerMove *run, int n, JournalBuf *jb)
{
	Numeric		sum_a = exa_zero();
	Numeric		sum_l = exa_zero();

	for (int i = 0; i < n; i++)
	{
		if (run[i].delta_available)
			sum_a = exa_add(sum_a, run[i].delta_available);
		if (run[i].delta_locked)
			sum_l = exa_add(sum_l, run[i].delta_locked);
	}
	(void) ledger_apply(&run[0], sum_a, sum_l, false);

	for (int i = 0; i < n; i++)
		journal_add(jb, run[0].account_id, run[0].asset,
					run[i].delta_available ? run[i].delta_available : exa_zero(),
					run[i].delta_locked ? run[i].delta_locked : exa_zero(),
					run[0].kind, run[i].order_id, NULL, NULL, NULL);
	move_keys(call, run[0].account_id, run[0].asset);
}

/*
 * Is m a credit of available only (a fill's proceeds: trades.c)?
 */
static bool
move_is_credit(const LedgerMove *m)
{
	return move_available_only_sign(m) > 0;
}

/*
 * The length of the credit run starting at m[0], among the n moves from
 * m[0]: moves on m[0]'s balance row, each a credit of available only
 * (move_is_credit) followed by at most one debit of available only no
 * larger than it -- a fill's proceeds and the fee taken from them (README
 * "Order lifecycle and arithmetic", fee), for one fill or for the fills of
 * a sweep.  One by one, such moves never take available below where it
 * started, so the only check that can fail is the limit, at the highest
 * point they reach: *sum is their total and *peak that highest point, both
 * relative to the row's balance.  0 when m[0] does not start a run.
 */
static int
credit_run_length(LedgerMove *m, int n, Numeric *sum, Numeric *peak)
{
	Numeric		s = exa_zero();
	Numeric		top = exa_zero();
	int			len = 0;

	while (len < n && move_is_credit(&m[len]) && move_same_row(&m[len], &m[0]))
	{
		LedgerMove *credit = &m[len++];
		LedgerMove *debit = len < n ? &m[len] : NULL;

		s = exa_add(s, credit->delta_available);
		if (exa_cmp(s, top) > 0)
			top = s;
		if (debit != NULL && move_available_only_sign(debit) < 0 &&
			move_same_row(debit, &m[0]) &&
			exa_cmp(exa_add(credit->delta_available, debit->delta_available),
					exa_zero()) >= 0)
		{
			s = exa_add(s, debit->delta_available);
			len++;
		}
	}
	*sum = s;
	*peak = top;
	return len;
}

/*
 * A credit run of n >= 2 moves (credit_run_length) on one balance row: one
 * UPDATE by their sum instead of one per move -- a fill's fee in the
 * received asset would otherwise update the row its proceeds just updated,
 * a statement and a foreign-key check more.  The journal rows are the
 * moves' own, in the order given, as one by one.  When the UPDATE finds no
 * row to change (the row is missing, or a move would pass the limit), the
 * moves run one by one, which creates the row or raises what the first
 * failing move raises.
 */
static void
ledger_move_credit_run(ExaCall *call, LedgerMove *run, int n, Numeric sum,
					   Numeric peak, JournalBuf *jb)
{
	Datum		mv[4];

	mv[0] = UUIDPGetDatum(run[0].account_id);
	mv[1] = CStringGetTextDatum(run[0].asset);
	mv[2] = NumericGetDatum(sum);
	mv[3] = NumericGetDatum(peak);
	if (exa_exec(&stmt_move_credit_run, mv, NULL, 1) != 1)
	{
		for (int i = 0; i < n; i++)
			ledger_move_one(call, &run[i], false, jb);
		return;
	}
	for (int i = 0; i < n; i++)
		journal_add(jb, run[i].account_id, run[i].asset,
					run[i].delta_available,
					run[i].delta_locked ? run[i].delta_locked : exa_zero(),
					run[i].kind, run[i].order_id, run[i].trade_id,
					run[i].hold_id, run[i].reference);
	move_keys(call, run[0].account_id, run[0].asset);
}

void
exa_ledger_move(ExaCall *call, LedgerMove *moves, int nmoves)
{
	LedgerMove *run = NULL;
	int			nrun = 0;
	JournalBuf	own = {0};
	JournalBuf *jb = call->journal ? call->journal : &own;

	for (int i = 0; i < nmoves; i++)
		moves[i].ord = i;
	if (nmoves > 1)
		qsort(moves, nmoves, sizeof(LedgerMove), ledger_move_cmp);
	if (call->balances != NULL)
	{
		/* a batch's rows, in memory: the journal rows in the same order */
		for (int i = 0; i < nmoves; i++)
			if (!ledger_move_is_noop(&moves[i]))
				(void) set_move(call, &moves[i], false);
		return;
	}
	for (int i = 0; i < nmoves; i++)
	{
		LedgerMove *m = &moves[i];

		/*
		 * Consecutive mergeable moves on one row (sorted together) form a
		 * run, applied when it ends: moves[] from run on.
		 */
		if (nrun > 0 && !ledger_move_is_noop(m) && ledger_move_mergeable(m, &run[0]))
		{
			nrun++;
			continue;
		}
		if (nrun == 1)
			ledger_move_one(call, &run[0], false, jb);
		else if (nrun > 1)
			ledger_move_run(call, run, nrun, jb);
		nrun = 0;

		/* A move that changes nothing writes nothing. */
		if (ledger_move_is_noop(m))
		{
			if (m->want_row)
				m->result = exa_ledger_balance_row(m->account_id, m->asset);
			continue;
		}
		if (ledger_move_mergeable(m, m))
		{
			run = &moves[i];
			nrun = 1;
			continue;
		}
		if (move_is_credit(m) && i + 1 < nmoves)
		{
			Numeric		sum;
			Numeric		peak;
			int			n = credit_run_length(m, nmoves - i, &sum, &peak);

			if (n >= 2)
			{
				ledger_move_credit_run(call, m, n, sum, peak, jb);
				i += n - 1;
				continue;
			}
		}
		ledger_move_one(call, m, false, jb);
	}
	if (nrun == 1)
		ledger_move_one(call, &run[0], false, jb);
	else if (nrun > 1)
		ledger_move_run(call, run, nrun, jb);
	if (jb == &own)
		journal_flush(call, jb);
}

bool
exa_ledger_try_move(ExaCall *call, LedgerMove *move)
{
	if (ledger_move_is_noop(move))
		return true;
	if (call->balances != NULL)
		return set_move(call, move, true);
	return ledger_move_one(call, move, true, call->journal);
}

/* ------------------------------------------------------------------------
 * A batch call's balance rows, held in memory (README "Batches")
 * ------------------------------------------------------------------------
 */

typedef struct SetRow
{
	pg_uuid_t	account_id;
	char	   *asset;
	Numeric		available;		/* now, in memory */
	Numeric		locked;
	Numeric		da;				/* not yet written */
	Numeric		dl;
	bool		dirty;
} SetRow;

struct ExaBalanceSet
{
	MemoryContext cxt;			/* where the rows' values live */
	int			n;
	SetRow	   *rows;			/* ascending (account_id, asset) */
};

/*
 * Lock order 4: FOR UPDATE, ascending (account_id, asset), the rows of the
 * pairs that exist already (a row created by a first move is new to every
 * other transaction).
 */
static ExaStmt stmt_lock_balances = {
	"SELECT b.account_id, b.symbol::pg_catalog.text, b.available_balance,"
	"       b.locked_balance"
	"  FROM exchange.balances b"
	" WHERE (b.account_id, b.symbol::pg_catalog.text) IN"
	"       (SELECT u.a, u.s FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]),"
	"                                        pg_catalog.unnest($2::pg_catalog.text[])) AS u (a, s))"
	" ORDER BY b.account_id, b.symbol COLLATE \"C\""
	"   FOR UPDATE OF b",
	2, {UUIDARRAYOID, TEXTARRAYOID},
	NULL
};

/* The changed rows, each by the sum of its moves since the last write. */
static ExaStmt stmt_set_flush = {
	"UPDATE exchange.balances b"
	"   SET available_balance = b.available_balance OPERATOR(pg_catalog.+) u.da,"
	"       locked_balance = b.locked_balance OPERATOR(pg_catalog.+) u.dl,"
	"       last_updated = pg_catalog.now()"
	"  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]),"
	"                  pg_catalog.unnest($2::pg_catalog.text[]),"
	"                  pg_catalog.unnest($3::pg_catalog.numeric[]),"
	"                  pg_catalog.unnest($4::pg_catalog.numeric[])) AS u (a, s, da, dl)"
	" WHERE b.account_id OPERATOR(pg_catalog.=) u.a"
	"   AND b.symbol OPERATOR(pg_catalog.=) u.s",
	4, {UUIDARRAYOID, TEXTARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID},
	NULL
};

static ExaStmt stmt_lock_account_balances = {
	"SELECT b.account_id, b.symbol::pg_catalog.text, b.available_balance,"
	"       b.locked_balance"
	"  FROM exchange.balances b"
	" WHERE b.account_id OPERATOR(pg_catalog.=) ANY ($1)"
	" ORDER BY b.account_id, b.symbol COLLATE \"C\""
	"   FOR UPDATE OF b",
	1, {UUIDARRAYOID},
	NULL
};

/* The set of the rows stmt locked. */
static ExaBalanceSet *
set_load(ExaStmt *stmt, Datum *values)
{
	ExaBalanceSet *set = palloc0(sizeof(ExaBalanceSet));
	uint64		n = values ? exa_exec(stmt, values, NULL, 0) : 0;

	set->cxt = CurrentMemoryContext;
	set->n = (int) n;
	set->rows = palloc0(sizeof(SetRow) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		SetRow	   *r = &set->rows[i];

		memcpy(&r->account_id, DatumGetUUIDP(exa_col_notnull(i, 1)), sizeof(pg_uuid_t));
		r->asset = exa_col_cstring(i, 2);
		r->available = DatumGetNumericCopy(exa_col_notnull(i, 3));
		r->locked = DatumGetNumericCopy(exa_col_notnull(i, 4));
		r->da = r->dl = exa_zero();
	}
	return set;
}

ExaBalanceSet *
exa_ledger_lock_balances(List *accounts, List *assets)
{
	Datum		values[2];

	if (accounts == NIL)
		return set_load(NULL, NULL);
	values[0] = exa_uuid_array(accounts);
	values[1] = exa_text_array(assets);
	return set_load(&stmt_lock_balances, values);
}

/*
 * Every balance row of the accounts $1 and the rows (account, asset) $2, $3
 * that fills will credit, in one pass in lock order 4: a missing row is
 * created (as the credit would create it) where its place in the order
 * comes, an existing one locked (ON CONFLICT DO UPDATE ... WHERE false
 * locks the row and changes nothing).  Creating a row takes its place in
 * the order as locking it does: a concurrent single call creating the same
 * row waits for this one, or this one for it.
 */
static ExaStmt stmt_create_lock_balances = {
	"INSERT INTO exchange.balances AS b (account_id, symbol)"
	" SELECT p.a, p.s FROM"
	"   (SELECT x.account_id AS a, x.symbol::pg_catalog.text AS s"
	"      FROM exchange.balances x"
	"     WHERE x.account_id OPERATOR(pg_catalog.=) ANY ($1)"
	"    UNION"
	"    SELECT u.a, u.s FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.uuid[]),"
	"                                   pg_catalog.unnest($3::pg_catalog.text[])) AS u (a, s)) p"
	"  ORDER BY p.a, p.s COLLATE \"C\""
	" ON CONFLICT (account_id, symbol) DO UPDATE SET last_updated = b.last_updated"
	"   WHERE false",
	3, {UUIDARRAYOID, UUIDARRAYOID, TEXTARRAYOID},
	NULL
};

ExaBalanceSet *
exa_ledger_lock_account_balances(List *accounts, List *credit_accounts,
								 List *credit_assets)
{
	Datum		values[3];

	if (accounts == NIL)
		return set_load(NULL, NULL);
	values[0] = exa_uuid_array(accounts);
	values[1] = exa_uuid_array(credit_accounts);
	values[2] = exa_text_array(credit_assets);
	exa_exec(&stmt_create_lock_balances, values, NULL, 0);
	return set_load(&stmt_lock_account_balances, values);
}

void
exa_call_hold_balances(ExaCall *call, ExaBalanceSet *set)
{
	Assert(call->journal != NULL);
	call->balances = set;
}

static SetRow *
set_find(ExaBalanceSet *set, pg_uuid_t *account_id, const char *asset)
{
	int			lo = 0,
				hi = set->n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		SetRow	   *r = &set->rows[mid];
		int			c = exa_uuid_cmp(&r->account_id, account_id);

		/* asset codes are [A-Z0-9]: byte order is the "C" order */
		if (c == 0)
			c = strcmp(r->asset, asset);
		if (c == 0)
			return r;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/*
 * m on a row of the set, in memory: exa_ledger_try_move (soft) or one move
 * of exa_ledger_move; on a pair without a row, what they do.
 */
static bool
set_move(ExaCall *call, LedgerMove *m, bool soft)
{
	Numeric		da = m->delta_available ? m->delta_available : exa_zero();
	Numeric		dl = m->delta_locked ? m->delta_locked : exa_zero();
	ExaBalanceSet *set = call->balances;
	SetRow	   *r = set_find(set, m->account_id, m->asset);
	MemoryContext oldcxt;

	Assert(!m->want_row);
	if (r == NULL)
		return ledger_move_one(call, m, soft, call->journal);
	if (exa_cmp(exa_add(r->available, da), exa_zero()) < 0 ||
		exa_cmp(exa_add(r->locked, dl), exa_zero()) < 0)
	{
		if (soft)
			return false;
		balance_shortage(m, r->available, r->locked, da, dl);
	}
	if (balance_beyond_limit(r->available, r->locked, da, dl))
		balance_out_of_range(m, r->available, r->locked, da, dl);
	oldcxt = MemoryContextSwitchTo(set->cxt);
	r->available = exa_add(r->available, da);
	r->locked = exa_add(r->locked, dl);
	r->da = exa_add(r->da, da);
	r->dl = exa_add(r->dl, dl);
	r->dirty = true;
	MemoryContextSwitchTo(oldcxt);
	journal_add(call->journal, m->account_id, m->asset, da, dl, m->kind,
				m->order_id, m->trade_id, m->hold_id, m->reference);
	move_keys(call, m->account_id, m->asset);
	return true;
}

/* Write the changed rows of the set: one UPDATE. */
static void
set_flush(ExaBalanceSet *set)
{
	List	   *accounts = NIL;
	List	   *assets = NIL;
	Datum	   *da = palloc(sizeof(Datum) * Max(set->n, 1));
	Datum	   *dl = palloc(sizeof(Datum) * Max(set->n, 1));
	int			n = 0;
	Datum		values[4];

	for (int i = 0; i < set->n; i++)
	{
		SetRow	   *r = &set->rows[i];

		if (!r->dirty)
			continue;
		accounts = lappend(accounts, &r->account_id);
		assets = lappend(assets, r->asset);
		da[n] = NumericGetDatum(r->da);
		dl[n] = NumericGetDatum(r->dl);
		n++;
		r->da = r->dl = exa_zero();
		r->dirty = false;
	}
	if (n == 0)
		return;
	values[0] = exa_uuid_array(accounts);
	values[1] = exa_text_array(assets);
	values[2] = exa_datum_array(da, NULL, n, NUMERICOID);
	values[3] = exa_datum_array(dl, NULL, n, NUMERICOID);
	if (exa_exec(&stmt_set_flush, values, NULL, 0) != (uint64) n)
		elog(ERROR, "a locked balance row was not updated");
}

Datum
exa_ledger_balance_row(pg_uuid_t *account_id, const char *asset)
{
	Datum		key[2] = {UUIDPGetDatum(account_id), CStringGetTextDatum(asset)};

	if (exa_exec_recheck(&stmt_balance_row, key, NULL, 1,
						 "the %s balance of account %s",
						 asset, exa_uuid_str(account_id)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("account %s has no balance in asset %s",
						exa_uuid_str(account_id), asset)));
	return exa_return_row(0);
}

/* ------------------------------------------------------------------------
 * Idempotent references
 * ------------------------------------------------------------------------
 */

static ExaStmt stmt_find_reference = {
	"SELECT asset::pg_catalog.text, delta_available, delta_locked, hold_id"
	"  FROM exchange.balance_journal"
	" WHERE account_id OPERATOR(pg_catalog.=) $1"
	"   AND kind OPERATOR(pg_catalog.=) $2"
	"   AND reference OPERATOR(pg_catalog.=) $3"
	"   AND kind IN ('DEPOSIT', 'WITHDRAWAL', 'CAPTURE')",
	3, {UUIDOID, TEXTOID, TEXTOID},
	NULL
};

/*
 * The key is a 32-bit hash of (kind, reference, account) in the two-key
 * advisory lock space under EXA_ADVISORY_LOCK_CLASS: two keys that share a
 * hash only wait for each other.
 */
void
exa_ledger_lock_reference(pg_uuid_t *account_id, const char *kind,
						  const char *reference)
{
	uint64		h;

	h = hash_bytes_extended(account_id->data, UUID_LEN,
							hash_bytes_extended((const unsigned char *) reference,
												strlen(reference),
												hash_bytes_extended((const unsigned char *) kind,
																	strlen(kind), 0)));
	DirectFunctionCall2(pg_advisory_xact_lock_int4,
						Int32GetDatum(EXA_ADVISORY_LOCK_CLASS),
						Int32GetDatum((int32) (uint32) (h ^ (h >> 32))));
}

bool
exa_ledger_find_reference(pg_uuid_t *account_id, const char *kind,
						  const char *reference, LedgerPrior *prior)
{
	Datum		values[3];
	bool		isnull;
	Datum		hold;

	exa_ledger_lock_reference(account_id, kind, reference);

	/*
	 * The advisory lock may have waited for a first call that committed after
	 * a REPEATABLE READ snapshot: re-check (40001 rather than a second move,
	 * or 23505, under the same reference).
	 */
	values[0] = UUIDPGetDatum(account_id);
	values[1] = CStringGetTextDatum(kind);
	values[2] = CStringGetTextDatum(reference);
	if (exa_exec_recheck(&stmt_find_reference, values, NULL, 1,
						 "the %s with reference \"%s\" of account %s",
						 kind, reference, exa_uuid_str(account_id)) == 0)
		return false;

	prior->asset = exa_col_cstring(0, 1);
	prior->delta_available = DatumGetNumeric(exa_col_notnull(0, 2));
	prior->delta_locked = DatumGetNumeric(exa_col_notnull(0, 3));
	hold = exa_col(0, 4, &isnull);
	prior->has_hold = !isnull;
	if (!isnull)
		memcpy(&prior->hold_id, DatumGetUUIDP(hold), sizeof(pg_uuid_t));
	return true;
}
