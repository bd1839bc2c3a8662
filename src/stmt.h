/*-------------------------------------------------------------------------
 *
 * stmt.h
 *	  Prepared statements kept per backend, and SPI result helpers.
 *
 * Every SQL statement the API runs is a static ExaStmt: its text, fixed at
 * compile time, is prepared on first use and kept (SPI_keepplan) for the
 * life of the backend; the plan cache re-plans it after DDL.  No SQL text is
 * ever built per call.  Statements name every object schema-qualified and
 * cast parameters to exact types; the calling functions run with
 * search_path = pg_catalog, pg_temp.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_STMT_H
#define EXA_STMT_H

#include "access/xact.h"
#include "executor/spi.h"

#define EXA_STMT_MAXARGS 16

/*
 * check_cache.c: true while stmt.c runs one of the API's statements, whose
 * tables' CHECK constraints are then taken, read once, from a per-backend
 * cache instead of being rebuilt from their stored text.
 */
extern bool exa_checks_armed;
extern void exa_check_cache_init(void);

/*
 * check_cache.c: set by exa_exec_vouched for its INSERT, whose foreign-key
 * checks are then not queued when the table qualifies.
 */
extern bool exa_fk_vouch;

typedef struct ExaStmt
{
	const char *sql;
	int			nargs;
	Oid			argtypes[EXA_STMT_MAXARGS];
	SPIPlanPtr	plan;			/* NULL until first use */
} ExaStmt;

/*
 * Run a kept statement; the caller is connected to SPI.  nulls is NULL
 * (nothing null) or one char per argument, 'n' for NULL as SPI wants.
 * Returns SPI_processed; raises on any SPI failure.
 */
extern uint64 exa_exec(ExaStmt *stmt, Datum *values, const char *nulls,
					   long count);

/*
 * exa_exec for an INSERT whose every referenced row, for each foreign key
 * check_cache.c vouches for on its table, the caller holds locked (FOR
 * SHARE or stronger) or wrote in this transaction: those keys' checks,
 * which would find that row and lock it FOR KEY SHARE, are not queued
 * (README "Data model", "Foreign keys the API vouches for").  Any other
 * trigger on the table makes it a plain exa_exec.
 */
extern uint64 exa_exec_vouched(ExaStmt *stmt, Datum *values, const char *nulls,
							   long count);

/*
 * exa_exec for a statement whose custom plans always look cheaper than its
 * generic one (a range over an index with parameters as bounds), which the
 * plan cache would otherwise plan anew on every call: it is prepared with
 * CURSOR_OPT_GENERIC_PLAN on first use.  Run a statement through one of
 * exa_exec and exa_exec_generic only.
 */
extern uint64 exa_exec_generic(ExaStmt *stmt, Datum *values, const char *nulls,
							   long count);

/*
 * Isolation (README "Concurrency"): the API is defined at READ COMMITTED,
 * where every statement reads with a fresh snapshot.  Under REPEATABLE READ
 * or SERIALIZABLE statements read with the transaction snapshot, which can
 * predate what a concurrent call committed — while this call waited for a
 * lock, or before it started.  PostgreSQL raises 40001 itself when a row
 * this call locks or updates changed after the snapshot; a check that reads
 * rows no lock of the call covers must use one of these instead, so that it
 * answers as at READ COMMITTED or raises 40001.
 *
 * exa_exec_recheck: run a read-only statement; under a transaction
 * snapshot run it again with the latest snapshot and raise 40001 unless
 * both answers are equal.  Returns SPI_processed of the answer.  The
 * printf-style what describes what was read as one noun phrase ("the
 * funds, orders or holds of account %s"), the way PostgreSQL inserts an
 * object's description into a message; the format is translated as a whole
 * before it is filled in.  Both are macros: at READ COMMITTED
 * (the hot path) they cost one plain exa_exec(), and the what arguments
 * (exa_uuid_str() and the like) are not even evaluated.
 *
 * exa_recheck_missing: a row the caller looked for (with a locking
 * statement) was not found; under a transaction snapshot raise 40001 when
 * the read-only stmt finds it with the latest snapshot.
 */
#define exa_exec_recheck(stmt, values, nulls, count, ...) \
	(IsolationUsesXactSnapshot() ? \
	 exa_exec_recheck_xact((stmt), (values), (nulls), (count), __VA_ARGS__) : \
	 exa_exec((stmt), (values), (nulls), (count)))
#define exa_recheck_missing(stmt, values, nulls, ...) \
	do { \
		if (IsolationUsesXactSnapshot()) \
			exa_recheck_missing_xact((stmt), (values), (nulls), __VA_ARGS__); \
	} while (0)
extern uint64 exa_exec_indexed(ExaStmt *stmt, Datum *values, bool no_bitmap);
extern uint64 exa_exec_recheck_xact(ExaStmt *stmt, Datum *values, const char *nulls,
									long count, const char *what,...) pg_attribute_printf(5, 6);
extern void exa_recheck_missing_xact(ExaStmt *stmt, Datum *values, const char *nulls,
									 const char *what,...) pg_attribute_printf(4, 5);

/* Column access on SPI_tuptable's row "row", by 1-based column number. */
extern Datum exa_col(uint64 row, int col, bool *isnull);
extern Datum exa_col_notnull(uint64 row, int col);
extern char *exa_col_cstring(uint64 row, int col);	/* NULL when null */
/* The text form of a column found by name (NULL when null). */
extern char *exa_col_named_text(uint64 row, const char *name);
extern Datum exa_col_named(uint64 row, const char *name, bool *isnull);

/*
 * Copy SPI_tuptable's row "row" out of SPI memory as a composite Datum for
 * the function's result (call before SPI_finish).
 */
extern Datum exa_return_row(uint64 row);

/* Build a one-dimensional text[] from a List of C strings. */
extern Datum exa_text_array(List *strings);
/* Build a one-dimensional uuid[] from a List of pg_uuid_t pointers. */
extern Datum exa_uuid_array(List *ids);

/*
 * A one-dimensional array of n Datums of type (uuid, timestamptz, or a
 * varlena type: text, numeric, jsonb); nulls may be NULL.  For statements that take
 * one array per column and unnest them (multi-row INSERT, UPDATE).
 */
extern Datum exa_datum_array(Datum *elems, bool *nulls, int n, Oid type);

/*
 * One column of such a row buffer (NULL before its first row) grown to cap
 * elements of size elem, in the current memory context.
 */
static inline void *
exa_grow_column(void *column, Size elem, int cap)
{
	return column ? repalloc(column, elem * cap) : palloc(elem * cap);
}

#endif							/* EXA_STMT_H */
