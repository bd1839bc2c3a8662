/*-------------------------------------------------------------------------
 *
 * ledger.h
 *	  The call context, account locks and the one balance-move primitive.
 *
 * Every API call that writes runs inside an ExaCall: it connects to SPI,
 * collects the Redis keys its changes make stale, and ends by writing one
 * outbox row with them (README "Redis delivery").  Every change to exchange.balances goes
 * through exa_ledger_move(), which also writes the journal and adds the keys;
 * nothing else writes balances.
 *
 * Global lock order (README "Concurrency"), which every caller follows
 * (level 0, the markets row of an INTERNAL market, comes before them all:
 * matching.c):
 *	 1. account rows, ascending account_id: FOR SHARE (FOR NO KEY UPDATE in
 *		the account status functions) — exa_ledger_lock_account(s);
 *	 2. order rows, ascending order_id, FOR UPDATE;
 *	 3. hold rows, ascending hold_id, FOR UPDATE;
 *	 4. balance rows, ascending (account_id, asset) — exa_ledger_move()
 *		sorts its moves and takes them in that order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_LEDGER_H
#define EXA_LEDGER_H

#include "lib/stringinfo.h"
#include "utils/numeric.h"
#include "utils/uuid.h"

#include "states.h"

typedef struct ExaCall
{
	text	   *actor;			/* session_user[/outer role], computed once */
	List	   *keys;			/* distinct stale keys, without prefix, in
								 * the order first named */
	struct HTAB *key_set;		/* the same keys, hashed, once keys is long */
	StringInfoData buf;			/* where exa_call_key formats a key */
	pg_uuid_t  *executions;		/* trade id per execution, in order
								 * (README "Trade feed") */
	int			nexecutions;
	int			maxexecutions;
	struct JournalBuf *journal; /* a batch call's journal rows, written by
								 * exa_call_end (NULL: each move writes its
								 * own; exa_call_defer_journal) */
	struct EventBuf *events;	/* the same for order_events (orders.c) */
	struct TradeBuf *trades;	/* a fill batch's trade rows and results
								 * (trades.c, exa_trades_defer) */
	struct ExaBalanceSet *balances; /* a batch call's balance rows, held in
									 * memory (exa_call_hold_balances) */
} ExaCall;

/* Connect to SPI and start collecting keys. */
extern void exa_call_begin(ExaCall *call);

/* Add a stale key (printf-style), once. */
extern void exa_call_key(ExaCall *call, const char *fmt,...) pg_attribute_printf(2, 3);

/*
 * The keys of a market's book: cache:book:<sym>, and cache:ticker:<sym>, whose
 * best bid and ask come from the book and whose last price and 24-hour
 * figures from its executions (README "Redis delivery", keys made stale).
 */
extern void exa_call_book_keys(ExaCall *call, const char *symbol);

/*
 * Record one execution of the call for the trade feed: the trade of an
 * apply_trade, the TAKER leg of a match (one per match, whatever makes it).
 * exa_call_end names them in the call's outbox row.
 */
extern void exa_call_execution(ExaCall *call, const pg_uuid_t *trade_id);

/* The call's actor (session_user[/outer role]), computed once per call. */
extern text *exa_call_actor(ExaCall *call);

/*
 * A batch call's journal rows, from here on, are kept and written by
 * exa_call_end with one INSERT: nothing a batch runs reads the journal.
 */
extern void exa_call_defer_journal(ExaCall *call);

/*
 * Write the call's deferred journal rows, its outbox row (if it made
 * anything stale) and finish SPI.
 */
extern void exa_call_end(ExaCall *call);

/* Text form of a uuid (palloc'd). */
extern char *exa_uuid_str(pg_uuid_t *id);

/* uuid_out's text of id into buf (37 bytes with the NUL), without palloc */
#define EXA_UUID_STR_LEN 37
extern void exa_uuid_format(const pg_uuid_t *id, char *buf);
extern int	exa_uuid_cmp(const pg_uuid_t *a, const pg_uuid_t *b);

/* An account row as locked by exa_ledger_lock_account. */
typedef struct ExaAccount
{
	pg_uuid_t	account_id;
	ExaAccountStatus status;
	ExaKycStatus kyc_status;
} ExaAccount;

/*
 * Lock an account row (FOR SHARE, or FOR NO KEY UPDATE with for_update) and
 * read its status.  Raises LX003 when it does not exist.
 */
extern void exa_ledger_lock_account(pg_uuid_t *account_id, bool for_update,
									ExaAccount *out);

/* Raise LX004 unless the account's status is one of the allowed ones. */
/*
 * What an account is used for, when exa_ledger_require_status checks its
 * status: withdrawals and locks need an ACTIVE account, the others an
 * ACTIVE or SUSPENDED one.
 */
typedef enum ExaAccountUse
{
	EXA_USE_DEPOSIT,
	EXA_USE_WITHDRAWAL,
	EXA_USE_LOCK,
	EXA_USE_CAPTURE,
	EXA_USE_KYC_CHANGE,
} ExaAccountUse;

extern void exa_ledger_require_status(const ExaAccount *acct, ExaAccountUse use);

/* One change to one balance row, with its journal row. */
typedef struct LedgerMove
{
	pg_uuid_t  *account_id;
	const char *asset;
	Numeric		delta_available;	/* NULL: 0 */
	Numeric		delta_locked;	/* NULL: 0 */
	const char *kind;			/* balance_journal.kind */
	pg_uuid_t  *order_id;		/* cause, any may be NULL */
	pg_uuid_t  *trade_id;
	pg_uuid_t  *hold_id;
	const char *reference;
	Datum		result;			/* out: the balance row after the move, if
								 * want_row */
	bool		want_row;
	int			ord;			/* internal: position given, for a stable sort */
} LedgerMove;

/*
 * Apply moves (sorted here into lock order 4; moves on one balance row keep
 * the order given, so put credits before debits), refusing with LX001 when a
 * balance would go below zero and with 22003 when available, locked or
 * their total would go beyond numeric(24,8); writes one journal row per
 * move and adds the keys cache:balance:<acct>:<asset> and
 * cache:balances:<acct>.  Consecutive releases of one row caused by orders
 * only (a batch cancel or expire) are applied as one UPDATE and one journal
 * INSERT, with the same rows as one by one; so are consecutive credits of
 * one row's available, each followed by at most one debit of available no
 * larger than it (a fill's proceeds and the fee taken from them), with the
 * same checks, errors and journal rows as one by one.  The caller holds the
 * account locks already.
 */
extern void exa_ledger_move(ExaCall *call, LedgerMove *moves, int nmoves);

/*
 * One move that reports a shortage instead of raising: returns false, with
 * nothing written, when the balance would go below zero.
 */
extern bool exa_ledger_try_move(ExaCall *call, LedgerMove *move);

/*
 * The balance rows of a batch call (README "Batches"), locked FOR UPDATE in
 * lock order 4 and read: those of the (account, asset) pairs given that
 * exist (place_orders, cancel_order_ids: their moves never create a row),
 * or every row of the accounts given and the rows of the credit pairs,
 * created where missing (apply_trades, apply_matches: a fill credits the
 * asset it receives, creating its row; created in the batch's lock pass,
 * the row takes its place in the lock order).
 *
 * Once the call holds them (exa_call_hold_balances; its journal must be
 * deferred), exa_ledger_move() and exa_ledger_try_move() apply each move on
 * one of those rows in memory, with the same checks, errors, journal row
 * and keys, and exa_call_end() writes every changed row with one UPDATE; a
 * move on another row runs as without.  Nothing may read or write the
 * held rows by other means until the call ends.
 */
typedef struct ExaBalanceSet ExaBalanceSet;

extern ExaBalanceSet *exa_ledger_lock_balances(List *accounts, List *assets);
extern ExaBalanceSet *exa_ledger_lock_account_balances(List *accounts,
														List *credit_accounts,
														List *credit_assets);
extern void exa_call_hold_balances(ExaCall *call, ExaBalanceSet *set);

/*
 * Idempotency of calls carrying a reference (deposit, withdraw,
 * capture_hold): serialises calls with the same (account, kind, reference)
 * with a transaction-scoped advisory lock, then looks for the journal row
 * that a previous call wrote.  Returns false when there is none; otherwise
 * fills asset, the journal deltas and hold_id (NULL when none).
 */
typedef struct LedgerPrior
{
	char	   *asset;
	Numeric		delta_available;
	Numeric		delta_locked;
	bool		has_hold;
	pg_uuid_t	hold_id;
} LedgerPrior;

/*
 * The class id of the idempotency advisory locks: the first key of
 * PostgreSQL's two-int4 form, pg_advisory_xact_lock(class, key), so that its
 * locks never meet an application's single-bigint keys (README
 * "Concurrency" tells applications to leave this class alone).  0x45584131
 * is "EXA1".  The registry's delivery locks use a class of their own,
 * EXA_LOCK_CLASS_REGISTRY in delivery.h; the README lists both.
 */
#define EXA_ADVISORY_LOCK_CLASS 1163411761

/*
 * Serialise, until commit, the calls of one account that carry the same
 * idempotency key (a transaction-scoped advisory lock under
 * EXA_ADVISORY_LOCK_CLASS, taken after the account lock and before any
 * order, hold or balance lock).
 */
extern void exa_ledger_lock_reference(pg_uuid_t *account_id, const char *kind,
									  const char *reference);

extern bool exa_ledger_find_reference(pg_uuid_t *account_id, const char *kind,
									  const char *reference, LedgerPrior *prior);

/* Read a balance row (no lock) as the function's result; "none" if absent. */
extern Datum exa_ledger_balance_row(pg_uuid_t *account_id, const char *asset);

#endif							/* EXA_LEDGER_H */
