/*-------------------------------------------------------------------------
 *
 * check_cache.c
 *	  The CHECK constraints of the extension's tables, kept read across
 *	  the statements the API runs (README "Data model").
 *
 * PostgreSQL rebuilds a table's CHECK constraints from their stored text
 * (pg_constraint.conbin) at the start of every statement that writes it,
 * in ExecRelCheck: stringToNode and expression_planner, then ExecInitExpr,
 * per statement, per table.  For the one-row statements of place_order and
 * apply_trade, reading the stored text back into nodes costs more than
 * checking the rows.  This file keeps, per backend, the planned expression
 * trees of the checks of each table of schema exchange, and for every
 * statement the API runs through stmt.c (exa_checks_armed is set around its
 * SPI calls) an ExecutorStart hook fills ResultRelInfo.ri_ConstraintExprs
 * from them, which ExecRelCheck then uses instead of building its own.
 * The constraints checked, their order, and the errors they raise are
 * PostgreSQL's own; only the reading of their text is saved.  Statements
 * not run by the API (psql, a user's function) are left to PostgreSQL, and
 * so are the tables of other schemas that a statement under an API call (a
 * trigger's) writes.
 *
 * Only the trees are kept: the executable state (ExprState) is still built
 * per statement, in the statement's memory, as ExecRelCheck builds it.  An
 * ExprState may keep per-query state (a hashed "= ANY" keeps its hash table
 * in the query's memory), so it must not outlive its statement; a tree is
 * read-only to the executor, as a cached plan's are.
 *
 * Invalidation: a relcache invalidation of a table (any ALTER TABLE, a
 * constraint added or dropped, the table dropped) retires its entry, and
 * any change of pg_proc (a check's function replaced) or pg_type (a
 * domain's constraints) retires them all, as the plan cache does; the next
 * statement reads them again.  A retired entry's trees may still be in
 * use by a statement running at the time (an ExprState points into its
 * tree), so they are freed only at the end of the top-level transaction.
 *
 * Foreign keys the API vouches for (README "Data model"): the same entry
 * says whether an INSERT into the table fires no trigger but the checks of
 * the keys in vouched_fkeys, whose referenced row every API statement that
 * writes the table holds locked or wrote (exa_exec_vouched, stmt.h).  For
 * such a statement the hook turns off the AFTER ROW INSERT triggers in the
 * statement's own copy of the table's trigger list, so that those checks
 * -- each an SPI query that would find the row and lock it FOR KEY SHARE --
 * are not queued.  Nothing else changes: what the INSERT runs (a CHECK's or
 * a default's function) and any other statement fire every trigger.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

/* This mirrors ExecRelCheck (execMain.c) of PostgreSQL 15 to 17. */
#if PG_VERSION_NUM >= 180000
#error "check_cache.c: ExecRelCheck changed in PostgreSQL 18 (constraints not enforced, virtual generated columns)"
#endif

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "optimizer/optimizer.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "exchange_adapter.h"
#include "stmt.h"

/* Set by stmt.c while the API runs one of its statements. */
bool		exa_checks_armed = false;

typedef struct CheckEntry
{
	Oid			relid;			/* hash key */
	bool		valid;			/* no invalidation since read */
	bool		ours;			/* a table of schema exchange */
	int			ncheck;
	Expr	  **exprs;			/* ncheck planned checks, in constr->check
								 * order */
	MemoryContext cxt;			/* holds exprs; NULL when !ours */
	bool		vouchable;		/* an INSERT into it fires no trigger but
								 * foreign-key checks the API vouches for */
} CheckEntry;

/*
 * The foreign keys whose referenced row every API statement that writes the
 * referencing row holds locked or wrote itself (README "Data model",
 * "Foreign keys the API vouches for").  A key not named here -- one a DBA
 * adds -- keeps its check.
 */
static const struct
{
	const char *relname;		/* the referencing table, schema exchange */
	const char *conname;
	const char *columns;		/* its referencing columns, in key order */
	const char *refname;		/* the referenced table, schema exchange */
}			vouched_fkeys[] = {
	/* the order: written, or locked FOR UPDATE, by the call */
	{"order_events", "order_events_order_id_fkey", "order_id", "orders"},
	/* the account: locked FOR SHARE or more by the call */
	{"balance_journal", "balance_journal_account_id_fkey", "account_id", "accounts"},
	/* the trade: written by the same call */
	{"fee_ledger", "fee_ledger_trade_id_fkey", "trade_id", "trades"},
	/* the account: locked FOR SHARE or more by the call */
	{"orders", "orders_account_id_fkey", "account_id", "accounts"},

	/*
	 * the market: place_order and place_orders read it FOR KEY SHARE; an
	 * INTERNAL one the call holds FOR NO KEY UPDATE already
	 */
	{"orders", "orders_symbol_fkey", "symbol", "markets"},
	/* the order (with its symbol and side): FOR UPDATE or written */
	{"trades", "trades_order_fkey", "order_id,account_id,symbol,side", "orders"},
	/* the market: read FOR KEY SHARE by the fill's call, as for orders */
	{"trades", "trades_symbol_fkey", "symbol", "markets"},
};

/* Set by stmt.c for one statement whose foreign keys the API vouches for. */
bool		exa_fk_vouch = false;

static HTAB *check_cache = NULL;
static MemoryContext check_cache_cxt = NULL;	/* parent of live entries */
static MemoryContext check_retired_cxt = NULL;	/* retired ones, freed at
												 * transaction end */
static ExecutorStart_hook_type prev_ExecutorStart = NULL;

/* Invalidation callbacks: only flags, no allocation, no catalog access. */
static void
check_cache_relcache_cb(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	CheckEntry *entry;

	if (check_cache == NULL)
		return;
	if (OidIsValid(relid))
	{
		entry = hash_search(check_cache, &relid, HASH_FIND, NULL);
		if (entry != NULL)
			entry->valid = false;
		return;
	}
	hash_seq_init(&status, check_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}

static void
check_cache_catalog_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	check_cache_relcache_cb(arg, InvalidOid);
}

static void
check_cache_xact_cb(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		MemoryContextReset(check_retired_cxt);
}

/* The referencing columns of a foreign key, as "a,b,c". */
static char *
fkey_columns(Form_pg_constraint con, HeapTuple tup)
{
	StringInfoData buf;
	Datum		d;
	bool		isnull;
	Datum	   *attnums;
	int			n;

	d = SysCacheGetAttr(CONSTROID, tup, Anum_pg_constraint_conkey, &isnull);
	if (isnull)
		return pstrdup("");
	deconstruct_array(DatumGetArrayTypeP(d), INT2OID, sizeof(int16), true,
					  TYPALIGN_SHORT, &attnums, NULL, &n);
	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		char	   *att = get_attname(con->conrelid, DatumGetInt16(attnums[i]), true);

		appendStringInfo(&buf, "%s%s", i > 0 ? "," : "", att ? att : "?");
	}
	return buf.data;
}

/*
 * May an INSERT into rel skip its foreign-key checks?  Only when every
 * enabled trigger an INSERT would fire is the check of a key in
 * vouched_fkeys (the same name, on the same table and columns, to the same
 * table), firing on origin, and the table has no rules: the hook then turns
 * off the statement's AFTER ROW INSERT triggers, which are those checks and
 * nothing else.  A trigger disabled, or firing only on UPDATE or DELETE,
 * does not matter; any other makes the table fire everything as usual.
 */
static bool
check_entry_vouchable(Relation rel)
{
	TriggerDesc *trigdesc = rel->trigdesc;
	const char *relname = RelationGetRelationName(rel);

	if (rel->rd_rules != NULL)
		return false;
	for (int i = 0; trigdesc != NULL && i < trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &trigdesc->triggers[i];
		HeapTuple	tup;
		Form_pg_constraint con;
		char	   *refname;
		char	   *columns;
		bool		known = false;

		if (trig->tgenabled == TRIGGER_DISABLED ||
			!TRIGGER_FOR_INSERT(trig->tgtype))
			continue;
		if (trig->tgenabled != TRIGGER_FIRES_ON_ORIGIN ||
			!TRIGGER_FOR_ROW(trig->tgtype) || !TRIGGER_FOR_AFTER(trig->tgtype) ||
			RI_FKey_trigger_type(trig->tgfoid) != RI_TRIGGER_FK ||
			!OidIsValid(trig->tgconstraint))
			return false;
		tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(trig->tgconstraint));
		if (!HeapTupleIsValid(tup))
			return false;
		con = (Form_pg_constraint) GETSTRUCT(tup);
		refname = get_rel_name(con->confrelid);
		columns = fkey_columns(con, tup);
		for (size_t k = 0; k < lengthof(vouched_fkeys); k++)
			known |= (con->contype == CONSTRAINT_FOREIGN &&
					  con->conrelid == RelationGetRelid(rel) &&
					  strcmp(relname, vouched_fkeys[k].relname) == 0 &&
					  strcmp(NameStr(con->conname), vouched_fkeys[k].conname) == 0 &&
					  strcmp(columns, vouched_fkeys[k].columns) == 0 &&
					  get_rel_namespace(con->confrelid) == RelationGetNamespace(rel) &&
					  refname != NULL &&
					  strcmp(refname, vouched_fkeys[k].refname) == 0);
		ReleaseSysCache(tup);
		if (!known)
			return false;
	}
	return true;
}

/*
 * (Re)read the checks of rel into entry, retiring what it held.  Reading
 * them opens catalogs, which processes pending invalidations: the entry is
 * marked valid before, so that one arriving meanwhile leaves it invalid.
 * This statement still uses what was read; the next one reads again.  The
 * trees are read into a context under the retired ones and moved to the
 * live ones only when complete; an error meanwhile marks the entry invalid,
 * to be read again by the next statement (the new context is freed at
 * transaction end).
 */
static void
check_entry_prepare(CheckEntry *entry, Relation rel)
{
	TupleConstr *constr = rel->rd_att->constr;
	int			ncheck = constr != NULL ? constr->num_check : 0;
	MemoryContext volatile cxt = NULL;
	MemoryContext old;
	Expr	  **volatile exprs = NULL;
	bool		ours;
	volatile bool vouchable = false;

	entry->valid = true;
	ours = (RelationGetNamespace(rel) == exa_schema_oid(true));
	PG_TRY();
	{
		vouchable = ours && check_entry_vouchable(rel);
		if (ours)
		{
			cxt = AllocSetContextCreate(check_retired_cxt, "exchange_adapter check",
										ALLOCSET_SMALL_SIZES);
			MemoryContextCopyAndSetIdentifier(cxt, RelationGetRelationName(rel));
			old = MemoryContextSwitchTo(cxt);
			exprs = palloc(sizeof(Expr *) * ncheck);
			for (int i = 0; i < ncheck; i++)
				((Expr **) exprs)[i] = expression_planner(stringToNode(constr->check[i].ccbin));
			MemoryContextSwitchTo(old);
		}
	}
	PG_CATCH();
	{
		/* what the entry holds is out of date: read it again next time */
		entry->valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (cxt != NULL)
		MemoryContextSetParent(cxt, check_cache_cxt);
	if (entry->cxt != NULL)
		MemoryContextSetParent(entry->cxt, check_retired_cxt);
	entry->cxt = cxt;
	entry->exprs = exprs;
	entry->ncheck = ours ? ncheck : 0;
	entry->ours = ours;
	entry->vouchable = vouchable;
}

/* rel's entry, read again if an invalidation retired it. */
static CheckEntry *
check_entry_get(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	TupleConstr *constr = rel->rd_att->constr;
	CheckEntry *entry;
	bool		found;

	entry = hash_search(check_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		entry->cxt = NULL;
		entry->exprs = NULL;
		entry->ncheck = 0;
		entry->ours = false;
		entry->vouchable = false;
		entry->valid = false;
	}
	if (!entry->valid ||
		(entry->ours && entry->ncheck != (constr ? constr->num_check : 0)))
		check_entry_prepare(entry, rel);
	return entry;
}

/* Give each result relation of an API statement its checks, from the trees. */
static void
check_cache_fill(EState *estate)
{
	ListCell   *lc;

	foreach(lc, estate->es_opened_result_relations)
	{
		ResultRelInfo *rri = lfirst(lc);
		Relation	rel = rri->ri_RelationDesc;
		TupleConstr *constr = rel->rd_att->constr;
		CheckEntry *entry;

		if (constr == NULL || constr->num_check == 0 ||
			rri->ri_ConstraintExprs != NULL)
			continue;
		entry = check_entry_get(rel);
		if (entry->ours && entry->ncheck == constr->num_check)
		{
			/* as ExecRelCheck does, from the kept trees */
			MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);

			rri->ri_ConstraintExprs = palloc(sizeof(ExprState *) * entry->ncheck);
			for (int i = 0; i < entry->ncheck; i++)
				rri->ri_ConstraintExprs[i] = ExecInitExpr(entry->exprs[i], NULL);
			MemoryContextSwitchTo(old);
		}
	}
}

/*
 * When every table the statement writes qualifies (check_entry_vouchable),
 * turn off the AFTER ROW INSERT triggers of the statement's own copy of
 * each table's triggers (InitResultRelInfo copies rel->trigdesc into the
 * query's memory): they are the vouched keys' checks and nothing else.
 * Nothing outside this statement changes.
 */
static void
check_cache_vouch(EState *estate)
{
	ListCell   *lc;

	foreach(lc, estate->es_opened_result_relations)
	{
		ResultRelInfo *rri = lfirst(lc);

		if (!check_entry_get(rri->ri_RelationDesc)->vouchable)
			return;
	}
	foreach(lc, estate->es_opened_result_relations)
	{
		ResultRelInfo *rri = lfirst(lc);

		if (rri->ri_TrigDesc != NULL)
			rri->ri_TrigDesc->trig_insert_after_row = false;
	}
}

static void
exa_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	/* as ExecRelCheck, only for statements that may write rows */
	if (exa_checks_armed && !(eflags & EXEC_FLAG_EXPLAIN_ONLY) &&
		(queryDesc->operation == CMD_INSERT ||
		 queryDesc->operation == CMD_UPDATE ||
		 queryDesc->plannedstmt->hasModifyingCTE))
		check_cache_fill(queryDesc->estate);

	/*
	 * An INSERT whose foreign keys the API vouches for: the flag is for
	 * this statement only, not for those its checks or defaults run.
	 */
	if (exa_fk_vouch)
	{
		exa_fk_vouch = false;
		if (queryDesc->operation == CMD_INSERT &&
			!queryDesc->plannedstmt->hasModifyingCTE &&
			!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
			check_cache_vouch(queryDesc->estate);
	}
}

/* From _PG_init: the hook, the cache, and its invalidation callbacks. */
void
exa_check_cache_init(void)
{
	HASHCTL		ctl;

	check_cache_cxt = AllocSetContextCreate(TopMemoryContext,
											"exchange_adapter checks",
											ALLOCSET_SMALL_SIZES);
	check_retired_cxt = AllocSetContextCreate(TopMemoryContext,
											  "exchange_adapter retired checks",
											  ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CheckEntry);
	ctl.hcxt = check_cache_cxt;
	check_cache = hash_create("exchange_adapter checks", 16, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	CacheRegisterRelcacheCallback(check_cache_relcache_cb, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, check_cache_catalog_cb, (Datum) 0);
	/* a domain's constraints: a cast to one may be folded into the tree */
	CacheRegisterSyscacheCallback(TYPEOID, check_cache_catalog_cb, (Datum) 0);
	RegisterXactCallback(check_cache_xact_cb, NULL);

	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = exa_executor_start;
}
