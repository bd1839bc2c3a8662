/*-------------------------------------------------------------------------
 *
 * stmt.c
 *	  Prepared statements kept per backend, and SPI result helpers.
 *
 * Owns the per-backend plan cache of the API's SQL (see stmt.h), and the
 * re-check of reads against the latest snapshot under REPEATABLE READ and
 * SERIALIZABLE (as PostgreSQL's foreign-key checks in ri_triggers.c do).
 * It must not build SQL from text at call time, and it never swallows
 * errors: an SPI failure is an internal error and aborts the caller's
 * (sub)transaction.  While a statement runs, exa_checks_armed tells
 * check_cache.c to give it the CHECK constraints, read once, of the tables it
 * writes; it is restored on the way out, error or not.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "stmt.h"

static SPIPlanPtr
exa_plan_opts(ExaStmt *stmt, int cursor_options)
{
	if (stmt->plan == NULL)
	{
		SPIPlanPtr	plan;

		if (stmt->nargs < 0 || stmt->nargs > EXA_STMT_MAXARGS)
			elog(ERROR, "statement \"%s\" declares %d parameters, at most %d are allowed",
				 stmt->sql, stmt->nargs, EXA_STMT_MAXARGS);
		plan = SPI_prepare_cursor(stmt->sql, stmt->nargs, stmt->argtypes,
								  cursor_options);
		if (plan == NULL)
			elog(ERROR, "could not prepare statement \"%s\": %s",
				 stmt->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep plan of \"%s\"", stmt->sql);
		stmt->plan = plan;
	}
	return stmt->plan;
}

static SPIPlanPtr
exa_plan(ExaStmt *stmt)
{
	return exa_plan_opts(stmt, 0);
}

/*
 * Run stmt's plan with the checks of check_cache.c (and, when vouch_fks, its
 * vouched foreign keys); raises on any SPI failure, returns SPI_processed.
 */
static uint64
exa_execute_plan(ExaStmt *stmt, SPIPlanPtr plan, bool vouch_fks,
				 Datum *values, const char *nulls, long count)
{
	bool		armed = exa_checks_armed;
	int			rc;

	exa_checks_armed = true;
	exa_fk_vouch = vouch_fks;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, nulls, false, count);
	}
	PG_FINALLY();
	{
		exa_checks_armed = armed;
		exa_fk_vouch = false;
	}
	PG_END_TRY();
	if (rc < 0)
		elog(ERROR, "statement failed (%s): %s",
			 SPI_result_code_string(rc), stmt->sql);
	return SPI_processed;
}

uint64
exa_exec_generic(ExaStmt *stmt, Datum *values, const char *nulls, long count)
{
	return exa_execute_plan(stmt, exa_plan_opts(stmt, CURSOR_OPT_GENERIC_PLAN),
							false, values, nulls, count);
}

uint64
exa_exec(ExaStmt *stmt, Datum *values, const char *nulls, long count)
{
	return exa_execute_plan(stmt, exa_plan(stmt), false, values, nulls, count);
}

uint64
exa_exec_vouched(ExaStmt *stmt, Datum *values, const char *nulls, long count)
{
	return exa_execute_plan(stmt, exa_plan(stmt), true, values, nulls, count);
}

static void exa_serialization_failure(const char *what) pg_attribute_noreturn();

/* Run a kept statement with the latest snapshot instead of the active one. */
static uint64
exa_exec_latest(ExaStmt *stmt, Datum *values, const char *nulls, long count)
{
	int			rc;

	rc = SPI_execute_snapshot(exa_plan(stmt), values, nulls,
							  GetLatestSnapshot(), InvalidSnapshot,
							  false, true, count);
	if (rc < 0)
		elog(ERROR, "statement failed (%s): %s",
			 SPI_result_code_string(rc), stmt->sql);
	return SPI_processed;
}

/* Do two answers of one statement hold the same rows, column by column? */
static bool
exa_answers_equal(SPITupleTable *a, uint64 na, SPITupleTable *b, uint64 nb)
{
	TupleDesc	desc = a->tupdesc;

	if (na != nb || desc->natts != b->tupdesc->natts)
		return false;
	for (uint64 row = 0; row < na; row++)
	{
		for (int col = 1; col <= desc->natts; col++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, col - 1);
			bool		null_a;
			bool		null_b;
			Datum		da = SPI_getbinval(a->vals[row], desc, col, &null_a);
			Datum		db = SPI_getbinval(b->vals[row], b->tupdesc, col, &null_b);

			if (null_a != null_b)
				return false;
			if (!null_a && !datum_image_eq(da, db, att->attbyval, att->attlen))
				return false;
		}
	}
	return true;
}

static void
exa_serialization_failure(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access due to concurrent update"),
			 errdetail("A concurrent transaction changed %s after this transaction's snapshot was taken.",
					   what),
			 errhint("Retry the transaction.")));
}

/*
 * exa_exec() with sequential scans (and, with no_bitmap, bitmap scans) off
 * for this one statement, at a GUC nest level of its own as a function's
 * SET clause would set them, and undone right after.  For statements whose
 * plan must walk an index although the statistics say otherwise (a queue
 * that looks empty while its heap holds dead rows), or whose rows must come
 * in index order; the callers say why.  Set at every execution, not once at
 * prepare time: a kept plan is made again after any invalidation of its
 * tables' relcache entries (a vacuum or an analyze sends one).
 */
uint64
exa_exec_indexed(ExaStmt *stmt, Datum *values, bool no_bitmap)
{
	int			nest = NewGUCNestLevel();
	uint64		n;

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (no_bitmap)
		(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	n = exa_exec(stmt, values, NULL, 0);
	AtEOXact_GUC(true, nest);
	return n;
}

/*
 * Format what (printf-style, from the caller's va_list; the format is
 * translated whole) and raise 40001.
 */
static void exa_serialization_failure_va(const char *what, va_list args)
			pg_attribute_printf(1, 0) pg_attribute_noreturn();

static void
exa_serialization_failure_va(const char *what, va_list args)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		copy;
		int			needed;

		va_copy(copy, args);
		needed = appendStringInfoVA(&buf, _(what), copy);
		va_end(copy);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	exa_serialization_failure(buf.data);
}

uint64
exa_exec_recheck_xact(ExaStmt *stmt, Datum *values, const char *nulls,
					  long count, const char *what,...)
{
	uint64		n = exa_exec(stmt, values, nulls, count);
	SPITupleTable *snapshot_answer;
	uint64		latest_n;

	snapshot_answer = SPI_tuptable;
	latest_n = exa_exec_latest(stmt, values, nulls, count);
	if (!exa_answers_equal(snapshot_answer, n, SPI_tuptable, latest_n))
	{
		va_list		args;

		va_start(args, what);
		exa_serialization_failure_va(what, args);
		va_end(args);
	}
	SPI_freetuptable(snapshot_answer);
	return latest_n;
}

void
exa_recheck_missing_xact(ExaStmt *stmt, Datum *values, const char *nulls,
						 const char *what,...)
{
	if (exa_exec_latest(stmt, values, nulls, 1) > 0)
	{
		va_list		args;

		va_start(args, what);
		exa_serialization_failure_va(what, args);
		va_end(args);
	}
}

/*
 * Row row of the last SPI result, checked at run time: an index past the
 * rows the statement returned would read beyond SPI_tuptable->vals.
 */
static HeapTuple
exa_row(uint64 row)
{
	if (SPI_tuptable == NULL || row >= SPI_processed)
		elog(ERROR, "row " UINT64_FORMAT " is out of range: the statement returned " UINT64_FORMAT " rows",
			 row, SPI_tuptable == NULL ? 0 : SPI_processed);
	return SPI_tuptable->vals[row];
}

Datum
exa_col(uint64 row, int col, bool *isnull)
{
	HeapTuple	tuple = exa_row(row);

	return SPI_getbinval(tuple, SPI_tuptable->tupdesc, col, isnull);
}

Datum
exa_col_notnull(uint64 row, int col)
{
	bool		isnull;
	Datum		d = exa_col(row, col, &isnull);

	if (isnull)
		elog(ERROR, "unexpected null in column %d", col);
	return d;
}

char *
exa_col_cstring(uint64 row, int col)
{
	bool		isnull;
	Datum		d = exa_col(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static int
exa_fnumber(const char *name)
{
	int			col = SPI_fnumber(SPI_tuptable->tupdesc, name);

	if (col <= 0)
		elog(ERROR, "column \"%s\" not in result", name);
	return col;
}

char *
exa_col_named_text(uint64 row, const char *name)
{
	return SPI_getvalue(exa_row(row), SPI_tuptable->tupdesc, exa_fnumber(name));
}

Datum
exa_col_named(uint64 row, const char *name, bool *isnull)
{
	return exa_col(row, exa_fnumber(name), isnull);
}

Datum
exa_return_row(uint64 row)
{
	HeapTupleHeader result;

	result = SPI_returntuple(exa_row(row), SPI_tuptable->tupdesc);
	if (result == NULL)
		elog(ERROR, "could not return row: %s",
			 SPI_result_code_string(SPI_result));
	return PointerGetDatum(result);
}

/* A one-dimensional array of the elements of items, converted by text. */
static Datum
exa_list_array(List *items, bool text)
{
	int			n = list_length(items);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, items)
		elems[i++] = text ? CStringGetTextDatum((const char *) lfirst(lc)) :
			UUIDPGetDatum((pg_uuid_t *) lfirst(lc));
	return PointerGetDatum(text ?
						   construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT) :
						   construct_array(elems, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

Datum
exa_text_array(List *strings)
{
	return exa_list_array(strings, true);
}

Datum
exa_uuid_array(List *ids)
{
	return exa_list_array(ids, false);
}

Datum
exa_datum_array(Datum *elems, bool *nulls, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};

	if (type == UUIDOID)
		return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, UUIDOID,
												  UUID_LEN, false, TYPALIGN_CHAR));
	if (type == TIMESTAMPTZOID)
		return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TIMESTAMPTZOID,
												  sizeof(TimestampTz), FLOAT8PASSBYVAL,
												  TYPALIGN_DOUBLE));
	Assert(type == TEXTOID || type == NUMERICOID || type == JSONBOID);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type,
											  -1, false, TYPALIGN_INT));
}
