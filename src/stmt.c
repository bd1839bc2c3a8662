/*-------------------------------------------------------------------------
 *
 * stmt.c
 *	  Prepared statements kept per backend, and SPI result helpers.
 *
 * Owns the per-backend plan cache of the API's SQL (see stmt.h).  It must
 * not build SQL from text at call time, and it never catches errors: an SPI
 * failure is an internal error and aborts the caller's (sub)transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "stmt.h"

static SPIPlanPtr
exa_plan(ExaStmt *stmt)
{
	if (stmt->plan == NULL)
	{
		SPIPlanPtr	plan;

		plan = SPI_prepare(stmt->sql, stmt->nargs, stmt->argtypes);
		if (plan == NULL)
			elog(ERROR, "could not prepare statement \"%s\": %s",
				 stmt->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep plan of \"%s\"", stmt->sql);
		stmt->plan = plan;
	}
	return stmt->plan;
}

uint64
exa_exec(ExaStmt *stmt, Datum *values, const char *nulls, long count)
{
	int			rc;

	rc = SPI_execute_plan(exa_plan(stmt), values, nulls, false, count);
	if (rc < 0)
		elog(ERROR, "statement failed (%s): %s",
			 SPI_result_code_string(rc), stmt->sql);
	return SPI_processed;
}

Datum
exa_col(uint64 row, int col, bool *isnull)
{
	Assert(SPI_tuptable != NULL && row < SPI_processed);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
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
	Assert(SPI_tuptable != NULL && row < SPI_processed);
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						exa_fnumber(name));
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

	Assert(SPI_tuptable != NULL && row < SPI_processed);
	result = SPI_returntuple(SPI_tuptable->vals[row], SPI_tuptable->tupdesc);
	if (result == NULL)
		elog(ERROR, "could not return row: %s",
			 SPI_result_code_string(SPI_result));
	return PointerGetDatum(result);
}

Datum
exa_text_array(List *strings)
{
	int			n = list_length(strings);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, strings)
		elems[i++] = CStringGetTextDatum((const char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}
