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
 * such a statement the hook sets session_replication_role to replica, so
 * that those checks -- each an SPI query that would find the row and lock
 * it FOR KEY SHARE -- are not queued; stmt.c restores the role when the
 * statement ends.  The variable is set directly, not through the GUC:
 * its assign hook would reset the whole plan cache, twice per call, for
 * the sake of rules, and a table with rules is never vouched for.
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
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "optimizer/optimizer.h"
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
	const char *conname;
	const char *refname;		/* the referenced table, schema exchange */
}			vouched_fkeys[] = {
	/* the order: written, or locked FOR UPDATE, by the call */
	{"order_events_order_id_fkey", "orders"},
	/* the account: locked FOR SHARE or more by the call */
	{"balance_journal_account_id_fkey", "accounts"},
	/* the trade: written by the same call */
	{"fee_ledger_trade_id_fkey", "trades"},
	/* the account: locked FOR SHARE or more by the call */
	{"orders_account_id_fkey", "accounts"},

	/*
	 * the market: place_order and place_orders read it FOR KEY SHARE; an
	 * INTERNAL one the call holds FOR NO KEY UPDATE already
	 */
	{"orders_symbol_fkey", "markets"},
	/* the order (with its symbol and side): FOR UPDATE or written */
	{"trades_order_fkey", "orders"},

	/*
	 * the market: the trade's order references it and is locked by the
	 * call, so the market cannot go while the call runs (its delete would
	 * find that order); an order written by this transaction took the
	 * market's lock itself
	 */
	{"trades_symbol_fkey", "markets"},
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

/*
 * May an INSERT into rel skip its foreign-key checks?  Only when every
 * trigger an INSERT would fire is the check of a key in vouched_fkeys, and
 * the table has no rules: under session_replication_role = replica those
 * checks are not queued, and neither would any other trigger that fires on
 * origin be, while one that fires on replica would start to.  A trigger
 * disabled, or firing only on UPDATE or DELETE, does not matter.
 */
static bool
check_entry_vouchable(Relation rel)
{
	TriggerDesc *trigdesc = rel->trigdesc;

	if (rel->rd_rel->relhasrules)
		return false;
	for (int i = 0; trigdesc != NULL && i < trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &trigdesc->triggers[i];
		HeapTuple	tup;
		Form_pg_constraint con;
		bool		known = false;

		if (trig->tgenabled == TRIGGER_DISABLED ||
			!TRIGGER_FOR_INSERT(trig->tgtype))
			continue;
		if (trig->tgenabled != TRIGGER_FIRES_ON_ORIGIN ||
			RI_FKey_trigger_type(trig->tgfoid) != RI_TRIGGER_FK ||
			!OidIsValid(trig->tgconstraint))
			return false;
		tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(trig->tgconstraint));
		if (!HeapTupleIsValid(tup))
			return false;
		con = (Form_pg_constraint) GETSTRUCT(tup);
		for (size_t k = 0; k < lengthof(vouched_fkeys); k++)
		{
			char	   *refname = get_rel_name(con->confrelid);

			known |= (con->contype == CONSTRAINT_FOREIGN &&
					  strcmp(NameStr(con->conname), vouched_fkeys[k].conname) == 0 &&
					  get_rel_namespace(con->confrelid) == RelationGetNamespace(rel) &&
					  refname != NULL &&
					  strcmp(refname, vouched_fkeys[k].refname) == 0);
		}
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
 * live ones only when complete, so an error meanwhile leaves the entry as
 * it was (and the new context is freed at transaction end).
 */
static void
check_entry_prepare(CheckEntry *entry, Relation rel)
{
	TupleConstr *constr = rel->rd_att->constr;
	int			ncheck = constr != NULL ? constr->num_check : 0;
	MemoryContext cxt = NULL;
	MemoryContext old;
	Expr	  **exprs = NULL;
	bool		ours;

	entry->valid = true;
	ours = (RelationGetNamespace(rel) == exa_schema_oid(true));
	if (ours)
	{
		cxt = AllocSetContextCreate(check_retired_cxt, "exchange_adapter check",
									ALLOCSET_SMALL_SIZES);
		MemoryContextCopyAndSetIdentifier(cxt, RelationGetRelationName(rel));
		old = MemoryContextSwitchTo(cxt);
		exprs = palloc(sizeof(Expr *) * ncheck);
		for (int i = 0; i < ncheck; i++)
			exprs[i] = expression_planner(stringToNode(constr->check[i].ccbin));
		MemoryContextSwitchTo(old);
		MemoryContextSetParent(cxt, check_cache_cxt);
	}
	if (entry->cxt != NULL)
		MemoryContextSetParent(entry->cxt, check_retired_cxt);
	entry->cxt = cxt;
	entry->exprs = exprs;
	entry->ncheck = ours ? ncheck : 0;
	entry->ours = ours;
	entry->vouchable = ours && check_entry_vouchable(rel);
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

/* Does every table the statement writes qualify (check_entry_vouchable)? */
static bool
check_cache_vouchable(EState *estate)
{
	ListCell   *lc;

	if (estate->es_opened_result_relations == NIL)
		return false;
	foreach(lc, estate->es_opened_result_relations)
	{
		ResultRelInfo *rri = lfirst(lc);

		if (!check_entry_get(rri->ri_RelationDesc)->vouchable)
			return false;
	}
	return true;
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
	 * this statement only, not for those its triggers or checks run.
	 * stmt.c restores the role when the statement ends, error or not.
	 */
	if (exa_fk_vouch)
	{
		exa_fk_vouch = false;
		if (queryDesc->operation == CMD_INSERT &&
			!queryDesc->plannedstmt->hasModifyingCTE &&
			!(eflags & EXEC_FLAG_EXPLAIN_ONLY) &&
			check_cache_vouchable(queryDesc->estate))
			SessionReplicationRole = SESSION_REPLICATION_ROLE_REPLICA;
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
