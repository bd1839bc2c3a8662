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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

/* This mirrors ExecRelCheck (execMain.c) of PostgreSQL 15 to 17. */
#if PG_VERSION_NUM >= 180000
#error "check_cache.c: ExecRelCheck changed in PostgreSQL 18 (constraints not enforced, virtual generated columns)"
#endif

#include "access/xact.h"
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
} CheckEntry;

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
	int			ncheck = constr->num_check;
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
		Oid			relid = RelationGetRelid(rel);
		CheckEntry *entry;
		bool		found;

		if (constr == NULL || constr->num_check == 0 ||
			rri->ri_ConstraintExprs != NULL)
			continue;
		entry = hash_search(check_cache, &relid, HASH_ENTER, &found);
		if (!found)
		{
			entry->cxt = NULL;
			entry->exprs = NULL;
			entry->ncheck = 0;
			entry->ours = false;
			entry->valid = false;
		}
		if (!entry->valid ||
			(entry->ours && entry->ncheck != constr->num_check))
			check_entry_prepare(entry, rel);
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
