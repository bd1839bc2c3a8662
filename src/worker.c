/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database delivery worker.
 *
 * This file owns the worker started by the launcher for
 * exchange_adapter.database (README "Redis delivery").  Its shared memory,
 * the status that adapter_status() reads and exa_worker_wake(), which the
 * commit callback of outbox.c calls, are in worker_status.c; the SQL and
 * Redis commands of a delivery in delivery.c.
 *
 * Worker loop: claim a batch in a short transaction (delivery.c), commit,
 * push with no transaction open and no row lock held (only the session-level
 * registry locks of the services in the batch, taken without waiting and
 * released after the push); the next claim's
 * transaction deletes what was delivered, and the worker claims again at
 * once after a non-empty batch, otherwise sleeps on the latch (set at commit
 * by any backend that enqueued) for at most poll_interval.  Its commits are
 * asynchronous (synchronous_commit = off): a claim or a delete lost in a
 * crash only means a row delivered again.  Its statements read the outbox by
 * id through outbox_pkey, never sequentially (planned with sequential scans
 * off, those statements only: delivery.c, exec_outbox_by_id), with plans
 * made once (force_generic_plan): a queue's statistics describe it nearly
 * empty while its heap holds the dead rows of thousands of deliveries.
 * Redis failures close the connection and the worker reconnects with
 * exponential back-off up to retry_backoff_max; claimed rows of a failed
 * push are released at once.
 * At each connect the worker checks the backlog (outbox_flush_after), and
 * every heartbeat_interval, after a delivery and never before it, it
 * re-applies every live registration and its own (service_id).  A refused
 * registry push (Redis out of memory, ...) keeps the connection and holds
 * only registry work back, with a back-off of its own: registry rows are not
 * claimed and the heartbeat waits until it ends, while cache deletions go
 * on.
 *
 * Rules:
 *	 - Signals: the stock die() for SIGTERM, so CHECK_FOR_INTERRUPTS exits at
 *	   once even while Redis hangs; SIGHUP reloads; the only waits are on
 *	   MyLatch (here and in redis_client.c).
 *	 - Never crash-loops: a missing extension is logged once, then at most
 *	   every 10 minutes, and the worker idles; the launcher checks that the
 *	   database exists before starting it and restarts it after it exits.
 *	 - A change of exchange_adapter.database makes the worker exit; the
 *	   launcher starts the one for the new database.
 *	 - Never runs during recovery (BgWorkerStart_RecoveryFinished, like the
 *	   launcher): its claims and deletes are writes.  After a promotion,
 *	   the claims replayed from the old primary are released at start like
 *	   those of any previous worker.
 *	 - The loop is worker_step(), one claim-push cycle returning how long
 *	   to sleep; the main loop around it only checks interrupts, reloads
 *	   the configuration and resets the cycle's memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "catalog_version.h"
#include "delivery.h"
#include "exchange_adapter.h"
#include "outbox.h"
#include "redis_client.h"
#include "stmt.h"
#include "worker.h"
#include "worker_status.h"

/* Interval between two reports of the same lasting problem. */
#define EXA_REPORT_INTERVAL_MS	(10 * 60 * 1000)

/*
 * Shortest claim-push cycle while busy with partial batches: commits gather
 * for the rest of it (see the main loop).  Bounds the added latency.
 */
#define EXA_MIN_CYCLE_US		2000

/* First retry after a failure; doubled up to retry_backoff_max. */
#define EXA_BACKOFF_MIN_MS		250

/* ------------------------------------------------------------------------
 * Registration (for the launcher)
 * ------------------------------------------------------------------------
 */

/*
 * A dynamic worker for one database.  It is never restarted by the
 * postmaster (BGW_NEVER_RESTART): the launcher restarts it after it exits,
 * once it has checked that the database still exists, so that a dropped
 * database can never make it crash-loop.  Never started during recovery
 * (see the file header).
 */
void
exa_worker_prepare(BackgroundWorker *worker, Oid dboid)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "%s", EXA_EXTENSION_NAME);
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "exa_worker_main");
	snprintf(worker->bgw_name, BGW_MAXLEN, "%s", EXA_WORKER_NAME);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", EXA_WORKER_NAME);
	worker->bgw_main_arg = ObjectIdGetDatum(dboid);
	worker->bgw_notify_pid = MyProcPid;
}

/* ------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------
 */

static ExaStmt stmt_backlog = {
	"SELECT COALESCE(pg_catalog.min(o.created_at)"
	"                < pg_catalog.now() - $1 * interval '1 second', false),"
	"       pg_catalog.pg_current_snapshot()::pg_catalog.text,"
	"       pg_catalog.count(*)"
	"  FROM exchange.outbox o WHERE o.kind = 'cache'",
	1, {INT4OID},
	NULL
};

#define DROP_CACHE_ROWS_SQL(also) \
	"DELETE FROM exchange.outbox o" \
	" WHERE o.id IN (SELECT i.id FROM exchange.outbox i" \
	"                 WHERE i.kind = 'cache'" \
	"                   AND pg_catalog.pg_visible_in_snapshot(i.xid," \
	"                                   $1::pg_catalog.pg_snapshot)" \
	also \
	"                 FOR UPDATE SKIP LOCKED)"

/* On a 1.0 catalog. */
static ExaStmt stmt_drop_cache_rows = {
	DROP_CACHE_ROWS_SQL(""),
	1, {TEXTOID},
	NULL
};

/*
 * A row naming executions stays: the whole-space deletion replaces its keys,
 * not its trade messages (README "Trade feed": never lost).  It is
 * delivered as usual afterwards, its keys deleted once more.
 */
static ExaStmt stmt_drop_cache_rows_feed = {
	DROP_CACHE_ROWS_SQL("                   AND i.trade_ids IS NULL"),
	1, {TEXTOID},
	NULL
};

typedef struct WorkerState
{
	char	   *dbname;
	TimestampTz started_at;
	RedisClient *client;
	MemoryContext batch_cxt;
	bool		ext_ready;
	TimestampTz ext_reported_at;	/* 0: not reported */
	bool		claims_released;
	TimestampTz next_attempt;	/* no Redis I/O before this */
	int			backoff_ms;
	bool		outage_reported;
	TimestampTz registry_retry_at;	/* registry rows wait until then; 0: no */
	int			registry_backoff_ms;
	TimestampTz next_heartbeat;
	bool		check_backlog;
	bool		no_url_reported;
	int64	   *done;			/* ids delivered, to delete with the next claim */
	int			ndone;
	int			maxdone;
} WorkerState;

static void
begin_txn(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_txn(MemoryContext next)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	MemoryContextSwitchTo(next);
}

/* Is the extension installed here?  In a transaction of its own. */
static bool
extension_installed(void)
{
	bool		ok;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	ok = OidIsValid(get_extension_oid(EXA_EXTENSION_NAME, true)) &&
		OidIsValid(exa_relation_oid("outbox")) &&
		OidIsValid(exa_relation_oid("services"));
	CommitTransactionCommand();
	return ok;
}

static bool
report_due(TimestampTz last)
{
	return last == 0 ||
		TimestampDifferenceExceeds(last, GetCurrentTimestamp(),
								   EXA_REPORT_INTERVAL_MS);
}

/* A failure of Redis: record it, schedule the next attempt. */
static void
redis_trouble(WorkerState *ws, const char *error, bool connected,
			  bool count_push)
{
	if (ws->backoff_ms == 0)
		ws->backoff_ms = Min(EXA_BACKOFF_MIN_MS, exa_retry_backoff_max);
	else
		ws->backoff_ms = Min(ws->backoff_ms * 2, exa_retry_backoff_max);
	ws->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   ws->backoff_ms);
	if (count_push)
		exa_status_failed(error, connected);
	else
		exa_status_set_connected(connected, error);

	if (!ws->outage_reported)
	{
		ws->outage_reported = true;
		ereport(WARNING,
				(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
				 errmsg("exchange_adapter cannot deliver to Redis"),
				 errdetail_internal("%s", error),
				 errhint("Outbox rows are kept and delivered when Redis is back, "
						 "retrying with back-off up to %d ms; exchange.adapter_status() "
						 "shows further failures of this outage.",
						 exa_retry_backoff_max)));
	}
}

static void
redis_recovered(WorkerState *ws)
{
	ws->backoff_ms = 0;
	ws->next_attempt = 0;
	exa_status_clear_error();
	if (ws->outage_reported)
	{
		ws->outage_reported = false;
		ereport(LOG,
				(errmsg("exchange_adapter delivers to Redis at %s again",
						ws->client->server)));
	}
}

/* Connect, check the connection, schedule the backlog check. */
static bool
worker_connect(WorkerState *ws)
{
	char		errbuf[EXA_STATUS_ERROR_LEN];
	RedisResult r;
	DeliveryResult d;

	pgstat_report_activity(STATE_RUNNING, "connecting to Redis");
	r = exa_redis_connect(ws->client);
	if (r != REDIS_RESULT_OK)
	{
		redis_trouble(ws, ws->client->errmsg, false, false);
		return false;
	}
	exa_delivery_connected();
	d = exa_delivery_ping(ws->client, errbuf, sizeof(errbuf));
	if (d != DELIVERY_OK)
	{
		exa_redis_disconnect(ws->client);
		redis_trouble(ws, errbuf, false, false);
		return false;
	}
	exa_status_set_connected(true, NULL);
	ws->check_backlog = true;
	ws->next_heartbeat = 0;
	return true;
}

/* After a failed push: status, back-off, and the connection if it broke. */
static void
push_failed(WorkerState *ws, DeliveryResult d, const char *errbuf)
{
	redis_trouble(ws, errbuf, d != DELIVERY_FAILED, true);
}

/*
 * The registry part of a push (a batch or the heartbeat) is done: Redis
 * refused it (out of memory under noeviction, ...): keep the connection,
 * which carries the cache deletions, and hold registry work back with its
 * own back-off (registry rows are not claimed, the heartbeat waits), so a
 * refusal can neither starve deletions nor loop.  delivery.c reported it.
 */
static void
registry_outcome(WorkerState *ws, DeliveryBatch *batch)
{
	if (batch->registry_result == DELIVERY_REFUSED)
	{
		if (ws->registry_backoff_ms == 0)
			ws->registry_backoff_ms = Min(EXA_BACKOFF_MIN_MS, exa_retry_backoff_max);
		else
			ws->registry_backoff_ms = Min(ws->registry_backoff_ms * 2,
										  exa_retry_backoff_max);
		ws->registry_retry_at =
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										ws->registry_backoff_ms);
		if (ws->next_heartbeat == 0 || ws->next_heartbeat > ws->registry_retry_at)
			ws->next_heartbeat = ws->registry_retry_at;
	}
	else if (batch->registry_result == DELIVERY_OK)
	{
		ws->registry_backoff_ms = 0;
		ws->registry_retry_at = 0;
	}
	exa_status_set_refusals(exa_delivery_refusals());
}

/*
 * Backlog older than outbox_flush_after at (re)connect: invalidate the whole
 * cache space, then drop the cache rows committed before the SCAN started
 * (those visible in a snapshot taken before it), and report it once.
 */
static void
worker_check_backlog(WorkerState *ws)
{
	bool		stale = false;
	char	   *snapshot = NULL;
	int64		nrows = 0;
	int64		nkeys = 0;
	uint64		dropped = 0;
	char		errbuf[EXA_STATUS_ERROR_LEN];
	DeliveryResult d;
	Datum		values[1];

	ws->check_backlog = false;
	if (exa_outbox_flush_after < 0)
		return;

	MemoryContextReset(ws->batch_cxt);
	begin_txn("checking the outbox backlog");
	values[0] = Int32GetDatum(exa_outbox_flush_after);
	if (exa_exec(&stmt_backlog, values, NULL, 1) == 1)
	{
		bool		isnull;

		stale = DatumGetBool(exa_col(0, 1, &isnull));
		snapshot = MemoryContextStrdup(ws->batch_cxt, exa_col_cstring(0, 2));
		nrows = DatumGetInt64(exa_col(0, 3, &isnull));
	}
	end_txn(ws->batch_cxt);
	if (!stale)
		return;

	pgstat_report_activity(STATE_RUNNING, "invalidating the whole cache space");
	d = exa_delivery_unlink_cache_space(ws->client, &nkeys, errbuf, sizeof(errbuf));
	if (d != DELIVERY_OK)
	{
		/* Not done: reconnect later, which checks the backlog again. */
		if (d == DELIVERY_REFUSED)
			exa_redis_disconnect(ws->client);
		push_failed(ws, d, errbuf);
		return;
	}

	begin_txn("dropping the replaced outbox rows");
	values[0] = CStringGetTextDatum(snapshot);
	dropped = exa_exec(exa_catalog_is_1_1() ? &stmt_drop_cache_rows_feed :
					   &stmt_drop_cache_rows, values, NULL, 0);
	end_txn(ws->batch_cxt);

	ereport(LOG,
			(errmsg("exchange_adapter invalidated the whole cache space instead of replaying an outbox backlog older than %d s",
					exa_outbox_flush_after),
			 errdetail("Deleted %lld keys matching \"%scache:*\" and dropped %llu of %lld pending cache rows.",
					   (long long) nkeys, exa_key_prefix,
					   (unsigned long long) dropped, (long long) nrows)));
	exa_status_pushed(nkeys, exa_delivery_refusals());
}

/*
 * Every heartbeat_interval: re-apply live registrations and our own.  Runs
 * after a delivery, never before (after a reconnect, deletions come first).
 */
static void
worker_heartbeat(WorkerState *ws)
{
	DeliveryBatch *batch;
	DeliveryResult d;
	char		errbuf[EXA_STATUS_ERROR_LEN];

	ws->next_heartbeat = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 exa_heartbeat_interval * 1000);
	MemoryContextReset(ws->batch_cxt);
	begin_txn("reading live service registrations");
	batch = exa_delivery_live_services(ws->batch_cxt);
	exa_delivery_add_self(batch, ws->dbname, ws->started_at, ws->batch_cxt);
	end_txn(ws->batch_cxt);

	if (batch->nservices == 0)
	{
		/* Nothing to write: keep the connection honest with a PING. */
		d = exa_delivery_ping(ws->client, errbuf, sizeof(errbuf));
	}
	else
	{
		pgstat_report_activity(STATE_RUNNING, "re-applying service registrations");
		(void) exa_delivery_push(ws->client, batch, errbuf, sizeof(errbuf));
		exa_delivery_unlock_services(batch);
		d = batch->registry_result;
		if (d == DELIVERY_REFUSED)
		{
			/* Not a connection problem: retried after the registry back-off. */
			registry_outcome(ws, batch);
			return;
		}
		strlcpy(errbuf, batch->registry_error, sizeof(errbuf));
		registry_outcome(ws, batch);
	}
	if (d != DELIVERY_OK)
	{
		if (d == DELIVERY_REFUSED)
			exa_redis_disconnect(ws->client);
		push_failed(ws, d, errbuf);
		/* Retry the re-application soon after the reconnect. */
		ws->next_heartbeat = 0;
	}
	else
		redis_recovered(ws);
}

/* Keep the ids of a delivered batch for the next claim transaction. */
static void
remember_delivered(WorkerState *ws, DeliveryBatch *batch)
{
	int			i;

	if (ws->ndone + batch->nrows > ws->maxdone)
	{
		int			newmax = Max(ws->ndone + batch->nrows, 2 * ws->maxdone);

		ws->done = ws->done == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(int64) * newmax) :
			repalloc(ws->done, sizeof(int64) * newmax);
		ws->maxdone = newmax;
	}
	for (i = 0; i < batch->nrows; i++)
	{
		if (batch->rows[i].delivered)
			ws->done[ws->ndone++] = batch->rows[i].id;
	}
}

/*
 * Claim (deleting what the previous batch delivered), push one batch.
 * Returns the number of rows delivered, 0 when there was nothing to do (or
 * only rows held back: registry back-off, a service another deliverer is
 * pushing), -1 when the cache part failed.
 */
static int
worker_deliver(WorkerState *ws)
{
	DeliveryBatch *batch;
	DeliveryResult d;
	char		errbuf[EXA_STATUS_ERROR_LEN];
	char		activity[64];
	bool		registry;
	int			ndelivered = 0;
	int			i;

	registry = ws->registry_retry_at == 0 ||
		GetCurrentTimestamp() >= ws->registry_retry_at;

	MemoryContextReset(ws->batch_cxt);
	begin_txn("claiming outbox rows");
	if (!OidIsValid(exa_relation_oid("outbox")))
	{
		/* DROP EXTENSION: back to idling. */
		end_txn(ws->batch_cxt);
		ws->ext_ready = false;
		ws->ndone = 0;
		return 0;
	}

	/*
	 * The rows the previous push delivered are deleted in this transaction:
	 * one transaction per batch instead of two.  The loop claims again at
	 * once after a delivery, so they never linger; if we die first, they
	 * are delivered again (idempotent).
	 */
	exa_delivery_delete_ids(ws->done, ws->ndone);
	ws->ndone = 0;
	batch = exa_delivery_claim_worker(exa_outbox_batch_size, registry, ws->batch_cxt);
	if (batch->nrows > 0)
		exa_delivery_load_services(batch, DELIVERY_LOCK_SESSION_NOWAIT, ws->batch_cxt);
	end_txn(ws->batch_cxt);

	if (batch->nrows == 0)
		return 0;

	snprintf(activity, sizeof(activity), "pushing %d outbox rows to Redis",
			 batch->nrows);
	pgstat_report_activity(STATE_RUNNING, activity);
	d = exa_delivery_push(ws->client, batch, errbuf, sizeof(errbuf));
	exa_delivery_unlock_services(batch);

	remember_delivered(ws, batch);
	for (i = 0; i < batch->nrows; i++)
		ndelivered += batch->rows[i].delivered ? 1 : 0;
	if (ndelivered < batch->nrows)
	{
		/* Give the others back now rather than after the lease. */
		begin_txn("releasing outbox rows");
		exa_delivery_release_undelivered(batch);
		end_txn(ws->batch_cxt);
	}

	if (batch->registry_result != DELIVERY_FAILED)
		registry_outcome(ws, batch);
	if (d != DELIVERY_OK)
	{
		push_failed(ws, d, errbuf);
		return -1;
	}
	if (batch->registry_result == DELIVERY_FAILED)
	{
		/* The connection broke after the cache part: reconnect. */
		push_failed(ws, DELIVERY_FAILED, batch->registry_error);
		return -1;
	}
	exa_status_pushed(batch->nkeys, exa_delivery_refusals());
	redis_recovered(ws);
	return ndelivered;
}

static void
worker_reload(WorkerState *ws)
{
	char	   *old_url = pstrdup(exa_redis_url ? exa_redis_url : "");
	char	   *old_pwfile = pstrdup(exa_redis_password_file ? exa_redis_password_file : "");

	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);

	if (exa_database == NULL || strcmp(exa_database, ws->dbname) != 0)
	{
		ereport(LOG,
				(errmsg("exchange_adapter worker for database \"%s\" exits: \"%s\" changed",
						ws->dbname, "exchange_adapter.database")));
		proc_exit(1);
	}
	if (strcmp(old_url, exa_redis_url ? exa_redis_url : "") != 0 ||
		strcmp(old_pwfile, exa_redis_password_file ? exa_redis_password_file : "") != 0)
	{
		exa_redis_disconnect(ws->client);
		exa_status_set_connected(false, NULL);
		ws->next_attempt = 0;
		ws->backoff_ms = 0;
		ws->no_url_reported = false;
	}
	pfree(old_url);
	pfree(old_pwfile);
}

/*
 * Process settings of the worker, fixed for its life (exchange_adapter's
 * own settings are read at each use and reloaded on SIGHUP).
 */
static void
worker_settings(void)
{
	/* Our SQL is qualified; pin the path anyway (ALTER DATABASE SET ...). */
	SetConfigOption("search_path", "pg_catalog, pg_temp",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	/* Registry state is read after its lock: each statement a new snapshot. */
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0",
					PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Our commits need no flush: a lost claim is retaken (claims are
	 * released at start), a lost delete is delivered again (idempotent).
	 * Not waiting for WAL flushes keeps commit-to-delivery latency low.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * One generic plan per statement, planned once and not at every cycle:
	 * right whatever the queue's length, because the statements that read
	 * the outbox by id are planned with the index only (delivery.c,
	 * exec_outbox_by_id), not because sequential scans are off here: they are
	 * not, for any other statement of this process.
	 */
	SetConfigOption("plan_cache_mode", "force_generic_plan",
					PGC_SUSET, PGC_S_OVERRIDE);
}

/* Connect to our database and set up the state of the loop. */
static void
worker_init(WorkerState *ws, Oid dboid)
{
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/*
	 * The launcher checked that the database exists and allows connections
	 * just before starting us; if it was dropped since, this FATALs once and
	 * the launcher, finding it missing, does not start us again.
	 */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	memset(ws, 0, sizeof(WorkerState));
	StartTransactionCommand();
	ws->dbname = MemoryContextStrdup(TopMemoryContext,
									 get_database_name(MyDatabaseId));
	CommitTransactionCommand();
	ws->started_at = GetCurrentTimestamp();
	ws->client = exa_redis_client_create(TopMemoryContext);
	ws->batch_cxt = AllocSetContextCreate(TopMemoryContext,
										  "exchange_adapter worker batch",
										  ALLOCSET_DEFAULT_SIZES);
	worker_settings();

	pgstat_report_appname(EXA_WORKER_NAME);
	exa_worker_attach(ws->dbname);
	ereport(LOG,
			(errmsg("exchange_adapter worker started for database \"%s\"",
					ws->dbname)));
}

/*
 * Is the extension installed?  Until it is, report it (once, then at most
 * every EXA_REPORT_INTERVAL_MS), hold no connection and no claim.
 */
static bool
worker_extension_ready(WorkerState *ws)
{
	if (ws->ext_ready)
		return true;
	ws->ext_ready = extension_installed();
	if (ws->ext_ready)
	{
		ws->ext_reported_at = 0;
		return true;
	}
	if (report_due(ws->ext_reported_at))
	{
		ws->ext_reported_at = GetCurrentTimestamp();
		ereport(LOG,
				(errmsg("extension \"%s\" is not installed in database \"%s\"",
						EXA_EXTENSION_NAME, ws->dbname),
				 errdetail("The exchange_adapter worker idles until it is."),
				 errhint("Run CREATE EXTENSION %s in database \"%s\", or point \"%s\" at the database that has it.",
						 EXA_EXTENSION_NAME, ws->dbname,
						 "exchange_adapter.database")));
	}
	exa_redis_disconnect(ws->client);
	exa_status_set_connected(false, NULL);
	ws->claims_released = false;
	return false;
}

/*
 * We are the only worker and the previous one is gone: claims left by it
 * are given back now, not after the lease.
 */
static void
worker_release_old_claims(WorkerState *ws)
{
	if (ws->claims_released)
		return;
	begin_txn("releasing claims of a previous worker");
	(void) exa_delivery_release_all_claims();
	end_txn(ws->batch_cxt);
	ws->claims_released = true;
}

/*
 * Is Redis ready for I/O: a URL set, no back-off in force, connected (or
 * connected now) and the backlog checked after a connect?  When not,
 * *timeout may be lowered to the end of the back-off.
 */
static bool
worker_redis_ready(WorkerState *ws, long *timeout)
{
	TimestampTz now;

	if (exa_redis_target == NULL)
	{
		if (!ws->no_url_reported)
		{
			ws->no_url_reported = true;
			exa_status_set_connected(false,
									 "exchange_adapter.redis_url is not set: outbox rows are kept, nothing is pushed");
		}
		return false;
	}

	now = GetCurrentTimestamp();
	if (ws->next_attempt != 0 && now < ws->next_attempt)
	{
		*timeout = Min(*timeout,
					   TimestampDifferenceMilliseconds(now, ws->next_attempt));
		return false;
	}

	if (!redis_is_connected(ws->client) && !worker_connect(ws))
		return false;

	if (ws->check_backlog)
	{
		worker_check_backlog(ws);
		if (!redis_is_connected(ws->client))
			return false;
	}
	return true;
}

/*
 * After a partial batch, let commits gather for what is left of
 * EXA_MIN_CYCLE_US since cycle_start: under a stream of small transactions
 * each cycle then carries several, which keeps the worker's share of the
 * CPU small, for at most that much latency.  The wait is on the clock only
 * (every commit sets the latch), and short.
 */
static void
worker_gather_commits(TimestampTz cycle_start)
{
	long		left = EXA_MIN_CYCLE_US -
		(long) (GetCurrentTimestamp() - cycle_start);

	if (left > 0)
		(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(1, left / 1000), PG_WAIT_EXTENSION);
}

/* How long to sleep on the latch: at most timeout, less if a timer is due. */
static long
worker_sleep_time(WorkerState *ws, long timeout)
{
	TimestampTz now = GetCurrentTimestamp();

	if (ws->next_heartbeat != 0 && redis_is_connected(ws->client))
		timeout = Min(timeout,
					  Max(1, TimestampDifferenceMilliseconds(now, ws->next_heartbeat)));
	if (ws->next_attempt != 0 && now < ws->next_attempt)
		timeout = Min(timeout,
					  Max(1, TimestampDifferenceMilliseconds(now, ws->next_attempt)));
	return Max(timeout, 1);
}

/*
 * One cycle of the worker: deliver one batch, then the heartbeat when due.
 * Returns 0 to run the next cycle at once (rows were delivered: more may be
 * waiting), otherwise the time in ms to sleep on the latch.
 */
static long
worker_step(WorkerState *ws)
{
	long		timeout = exa_poll_interval;
	TimestampTz cycle_start;
	int			delivered;

	if (!worker_extension_ready(ws))
		return worker_sleep_time(ws, timeout);
	worker_release_old_claims(ws);
	if (!worker_redis_ready(ws, &timeout))
		return worker_sleep_time(ws, timeout);

	/*
	 * Deliveries first, then the heartbeat when due: after a reconnect the
	 * first thing sent is the pending deletions, and registry work (which
	 * Redis may refuse, e.g. out of memory) never holds them back.
	 */
	cycle_start = GetCurrentTimestamp();
	delivered = worker_deliver(ws);
	if (delivered >= 0 && redis_is_connected(ws->client) &&
		(ws->next_heartbeat == 0 || GetCurrentTimestamp() >= ws->next_heartbeat))
		worker_heartbeat(ws);
	if (!redis_is_connected(ws->client) || delivered <= 0)
		return worker_sleep_time(ws, timeout);

	/* More may be waiting: claim again at once after a full batch. */
	if (delivered < exa_outbox_batch_size)
		worker_gather_commits(cycle_start);
	return 0;
}

/*
 * The worker's entry point.  Exits only through proc_exit: SIGTERM (die),
 * postmaster death (WL_EXIT_ON_PM_DEATH), a change of
 * exchange_adapter.database (worker_reload) or another worker running
 * (exa_worker_attach); any ERROR exits too, and the launcher starts a new
 * worker.
 */
void
exa_worker_main(Datum main_arg)
{
	WorkerState ws;

	worker_init(&ws, DatumGetObjectId(main_arg));

	for (;;)
	{
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
			worker_reload(&ws);

		/* Nothing allocated in one cycle outlives it. */
		MemoryContextSwitchTo(ws.batch_cxt);
		MemoryContextReset(ws.batch_cxt);

		timeout = worker_step(&ws);
		if (timeout == 0)
			continue;

		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	/* not reached */
	proc_exit(1);
}
