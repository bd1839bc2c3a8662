/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  The outbox: one row per changing API call, naming what it made stale.
 *
 * Rows are inserted in the caller's transaction, so an aborted transaction
 * or a rolled-back savepoint leaves none and pushes nothing (DESIGN §5).
 * The row carries the top-level transaction id (never a subtransaction's),
 * which groups the PUBLISH of one transaction.  Keys are never buffered in
 * backend memory to be written at commit.  This file must not talk to
 * Redis.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/xid8.h"

#include "outbox.h"
#include "stmt.h"

static ExaStmt stmt_enqueue_cache = {
	"INSERT INTO exchange.outbox (xid, kind, keys) VALUES ($1, 'cache', $2)",
	2, {XID8OID, TEXTARRAYOID},
	NULL
};

static ExaStmt stmt_enqueue_registry = {
	"INSERT INTO exchange.outbox (xid, kind, service_id) VALUES ($1, 'registry', $2)",
	2, {XID8OID, TEXTOID},
	NULL
};

void
outbox_enqueue_cache(List *keys)
{
	Datum		values[2];

	values[0] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[1] = exa_text_array(keys);
	exa_exec(&stmt_enqueue_cache, values, NULL, 0);
}

void
outbox_enqueue_registry(const char *service_id)
{
	Datum		values[2];

	values[0] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[1] = CStringGetTextDatum(service_id);
	exa_exec(&stmt_enqueue_registry, values, NULL, 0);
}
