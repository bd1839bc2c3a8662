/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  The outbox: one row per changing API call, naming what it made stale.
 *
 * Rows are inserted in the caller's transaction, so an aborted transaction
 * or a rolled-back savepoint leaves none and pushes nothing.
 * The row carries the top-level transaction id (never a subtransaction's),
 * which groups the PUBLISH of one transaction.  Keys are never buffered in
 * backend memory to be written at commit.  This file must not talk to
 * Redis.
 *
 * Commit wake-up: the first enqueue of a backend registers one transaction
 * callback for the rest of its life (never one per transaction).  At
 * XACT_EVENT_COMMIT of a transaction that enqueued, it sets the latch of the
 * worker serving this database (exa_worker_wake: a spinlock and SetLatch,
 * no allocation, never raises; the callback runs after the commit is
 * visible, so the worker's next claim sees the rows).  Parallel events are
 * ignored (parallel workers never enqueue); a PREPARE TRANSACTION wakes
 * nobody: COMMIT PREPARED runs elsewhere, and the worker's poll
 * (poll_interval) picks the rows up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/xid8.h"

#include "exchange_adapter.h"
#include "outbox.h"
#include "stmt.h"
#include "worker_status.h"

/* Registered once per backend, at its first enqueue. */
static bool xact_callback_registered = false;

/* The current top-level transaction enqueued at least one row. */
static bool xact_enqueued = false;

static ExaStmt stmt_enqueue_cache = {
	"INSERT INTO exchange.outbox (xid, kind, keys) VALUES ($1, 'cache', $2)",
	2, {XID8OID, TEXTARRAYOID},
	NULL
};

static ExaStmt stmt_enqueue_cache_feed = {
	"INSERT INTO exchange.outbox (xid, kind, keys, trade_ids) VALUES ($1, 'cache', $2, $3)",
	3, {XID8OID, TEXTARRAYOID, UUIDARRAYOID},
	NULL
};

static ExaStmt stmt_enqueue_registry = {
	"INSERT INTO exchange.outbox (xid, kind, service_id) VALUES ($1, 'registry', $2)",
	2, {XID8OID, TEXTOID},
	NULL
};

/*
 * Must not raise, allocate or do I/O: it runs at COMMIT, when an error
 * would be a PANIC-worthy surprise.
 */
static void
outbox_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (xact_enqueued)
			{
				xact_enqueued = false;
				exa_worker_wake();
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			xact_enqueued = false;
			break;
		default:
			/* PRE_* events and every PARALLEL_* event: nothing to do. */
			break;
	}
}

static void
outbox_note_enqueue(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(outbox_xact_callback, NULL);
		xact_callback_registered = true;
	}
	xact_enqueued = true;
}

void
exa_outbox_enqueue_cache(List *keys)
{
	Datum		values[2];

	values[0] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[1] = exa_text_array(keys);
	exa_exec(&stmt_enqueue_cache, values, NULL, 0);
	outbox_note_enqueue();
}

void
exa_outbox_enqueue_cache_feed(List *keys, const pg_uuid_t *trade_ids, int ntrades)
{
	Datum		values[3];
	Datum	   *elems = palloc(sizeof(Datum) * Max(ntrades, 1));

	for (int i = 0; i < ntrades; i++)
		elems[i] = UUIDPGetDatum(&trade_ids[i]);
	values[0] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[1] = exa_text_array(keys);
	values[2] = PointerGetDatum(construct_array(elems, ntrades, UUIDOID,
												UUID_LEN, false, TYPALIGN_CHAR));
	exa_exec(&stmt_enqueue_cache_feed, values, NULL, 0);
	pfree(elems);
	outbox_note_enqueue();
}

void
exa_outbox_enqueue_registry(const char *service_id)
{
	Datum		values[2];

	values[0] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[1] = CStringGetTextDatum(service_id);
	exa_exec(&stmt_enqueue_registry, values, NULL, 0);
	outbox_note_enqueue();
}
