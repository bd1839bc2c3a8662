/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The exchange_adapter launcher background worker.
 *
 * This file owns the launcher: its registration (from _PG_init, only while
 * shared_preload_libraries is processed) and its main loop, which starts
 * and watches the per-database worker (worker.c) for
 * exchange_adapter.database (README "Redis delivery").
 *
 * The launcher is attached to no database (like the logical replication
 * launcher, it initialises a connection to none, which puts it in
 * pg_stat_activity and lets it read the shared catalog pg_database).  Before
 * each start of the worker it looks the database up in pg_database; a
 * missing, invalid or non-connectable database is logged once, then at most
 * every 10 minutes, and no worker is started until it appears.  This is
 * what keeps the worker from crash-looping: BackgroundWorkerInitialize-
 * Connection to a missing database FATALs, and a postmaster-restarted worker
 * would do so every restart interval.  So the worker is a dynamic worker
 * with BGW_NEVER_RESTART and bgw_notify_pid = the launcher: the postmaster
 * sets our latch when it starts or stops, and the launcher restarts it
 * EXA_WORKER_RESTART_MS after it exits (pg_terminate_backend, DROP DATABASE
 * ... WITH (FORCE), a FATAL), doubling the delay while it keeps exiting
 * within EXA_WORKER_SHORT_LIFE_MS of its start, up to retry_backoff_max.
 * When exchange_adapter.database changes (SIGHUP) it stops the worker and
 * starts the one for the new database.
 *
 * Standby and promotion: the launcher is registered with
 * BgWorkerStart_RecoveryFinished (and so is the worker), so the postmaster
 * starts it only once recovery is over.  On a hot standby no launcher and
 * no worker run: nothing connects to Redis, nothing is logged, and the
 * outbox rows replayed from the primary wait in the table (the worker could
 * not claim them anyway: a claim is a write).  At promotion the postmaster
 * enters normal running and starts the launcher itself; nothing here polls
 * RecoveryInProgress().  The worker it starts releases every claim left in
 * the table (those of the old primary's worker included) and delivers the
 * rows the old primary committed but had not delivered.  adapter_status()
 * on a standby says so (registry.c).
 *
 * It must not: open a database, touch the ledger or talk to Redis (that is
 * the per-database worker's job); wait on anything but its latch; install a
 * SIGTERM handler of its own (the stock die() makes CHECK_FOR_INTERRUPTS
 * exit at once, so a fast shutdown never waits for it); raise an ERROR in
 * its loop (in a background worker that is fatal and restarts it).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "exchange_adapter.h"
#include "worker.h"
#include "worker_status.h"

/* Seconds the postmaster waits before restarting a launcher that exited 1. */
#define EXA_LAUNCHER_RESTART_SECONDS	5

#define EXA_LAUNCHER_NAME	"exchange_adapter launcher"

/* Delay before the worker is started again after it exited. */
#define EXA_WORKER_RESTART_MS		1000
/* A worker that exits sooner than this after its start backs off. */
#define EXA_WORKER_SHORT_LIFE_MS	10000
/* Interval between two reports of the same lasting problem. */
#define EXA_REPORT_INTERVAL_MS		(10 * 60 * 1000)
/* How often a missing database is looked up again. */
#define EXA_DATABASE_RECHECK_MS		1000

typedef struct LauncherState
{
	BackgroundWorkerHandle *handle; /* NULL: no worker registered */
	char		served[NAMEDATALEN];	/* database of the registered worker */
	TimestampTz started_at;
	TimestampTz stopped_at;		/* 0: never stopped */
	int			restart_ms;		/* current restart delay */
	int			problem;		/* last reported LauncherProblem */
	char		problem_db[NAMEDATALEN];	/* ... for this database */
	TimestampTz reported_at;
} LauncherState;

/* Why no worker runs; each is reported once, then at most every 10 min. */
typedef enum LauncherProblem
{
	LAUNCHER_OK = 0,
	LAUNCHER_DB_MISSING,		/* no such database */
	LAUNCHER_DB_INVALID,		/* an interrupted DROP DATABASE */
	LAUNCHER_DB_NO_CONNECTIONS, /* datallowconn is false */
	LAUNCHER_NO_SLOT			/* no background worker slot */
} LauncherProblem;

/*
 * Register the launcher.  Called from _PG_init while
 * shared_preload_libraries is processed; at any other time a registration
 * would be refused, so callers must check process_shared_preload_libraries_
 * in_progress first.
 */
void
exa_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));

	/*
	 * BGWORKER_BACKEND_DATABASE_CONNECTION only so that the launcher can
	 * initialise a connection to no database (InitPostgres without a
	 * database): that is what gives it a pg_stat_activity entry and, later,
	 * read access to pg_database.  It never connects to a database.
	 */
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	/*
	 * The worker claims and deletes outbox rows, writes a hot standby
	 * refuses: start only once recovery is over, that is at startup of a
	 * primary or at promotion of a standby (see the file header).
	 */
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = EXA_LAUNCHER_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "%s", EXA_EXTENSION_NAME);
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "exa_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", EXA_LAUNCHER_NAME);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", EXA_LAUNCHER_NAME);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;

	RegisterBackgroundWorker(&worker);
}

/*
 * Look the database up in pg_database (a shared catalog, readable without
 * a database connection).  Returns its OID, or InvalidOid with *problem
 * saying why it cannot be served.
 */
static Oid
launcher_find_database(const char *name, LauncherProblem *problem)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid			dboid = InvalidOid;

	*problem = LAUNCHER_DB_MISSING;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "looking up the served database");
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) != 0)
			continue;
		if (database_is_invalid_form(db))
			*problem = LAUNCHER_DB_INVALID;
		else if (!db->datallowconn)
			*problem = LAUNCHER_DB_NO_CONNECTIONS;
		else
		{
			*problem = LAUNCHER_OK;
			dboid = db->oid;
		}
		break;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return dboid;
}

/*
 * Is a lasting problem due for the log: not reported yet for this database,
 * or last reported EXA_REPORT_INTERVAL_MS ago?  If so, remember it.
 */
static bool
launcher_report_due(LauncherState *ls, LauncherProblem problem,
					const char *database)
{
	if (ls->problem == (int) problem &&
		strcmp(ls->problem_db, database) == 0 && ls->reported_at != 0 &&
		!TimestampDifferenceExceeds(ls->reported_at, GetCurrentTimestamp(),
									EXA_REPORT_INTERVAL_MS))
		return false;
	ls->problem = (int) problem;
	strlcpy(ls->problem_db, database, sizeof(ls->problem_db));
	ls->reported_at = GetCurrentTimestamp();
	return true;
}

/* The served database cannot be connected to (two lines in the log). */
static void
launcher_report_database(LauncherState *ls, LauncherProblem problem,
						 const char *database)
{
	if (!launcher_report_due(ls, problem, database))
		return;
	if (problem == LAUNCHER_DB_INVALID)
		ereport(LOG,
				(errmsg("database \"%s\" named by \"%s\" is invalid (an interrupted DROP DATABASE)",
						database, "exchange_adapter.database"),
				 errhint("No exchange_adapter worker runs until it can connect: create the database, or set \"%s\" to the one that has the extension and reload.",
						 "exchange_adapter.database")));
	else if (problem == LAUNCHER_DB_NO_CONNECTIONS)
		ereport(LOG,
				(errmsg("database \"%s\" named by \"%s\" does not allow connections",
						database, "exchange_adapter.database"),
				 errhint("No exchange_adapter worker runs until it can connect: create the database, or set \"%s\" to the one that has the extension and reload.",
						 "exchange_adapter.database")));
	else
		ereport(LOG,
				(errmsg("database \"%s\" named by \"%s\" does not exist",
						database, "exchange_adapter.database"),
				 errhint("No exchange_adapter worker runs until it can connect: create the database, or set \"%s\" to the one that has the extension and reload.",
						 "exchange_adapter.database")));
}

/*
 * One step of the launcher: watch the registered worker, start one when
 * due.  Returns how long to sleep at most.
 */
static long
launcher_step(LauncherState *ls)
{
	const char *database = exa_database ? exa_database : "";
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz due;
	BackgroundWorker worker;
	LauncherProblem problem;
	Oid			dboid;

	if (ls->handle != NULL)
	{
		pid_t		pid;
		BgwHandleStatus st = GetBackgroundWorkerPid(ls->handle, &pid);

		if (st != BGWH_STOPPED)
		{
			/* Database changed: stop it; we hear when it is gone. */
			if (strcmp(ls->served, database) != 0)
				TerminateBackgroundWorker(ls->handle);
			return exa_poll_interval;
		}

		pfree(ls->handle);
		ls->handle = NULL;
		ls->stopped_at = now;
		if (strcmp(ls->served, database) == 0 &&
			!TimestampDifferenceExceeds(ls->started_at, now,
										EXA_WORKER_SHORT_LIFE_MS))
			ls->restart_ms = Min(Max(ls->restart_ms * 2, EXA_WORKER_RESTART_MS),
								 Max(exa_retry_backoff_max, EXA_WORKER_RESTART_MS));
		else
			ls->restart_ms = EXA_WORKER_RESTART_MS;
		if (strcmp(ls->served, database) != 0)
			ls->stopped_at = 0; /* start the new one at once */
	}

	if (database[0] == '\0')
		return exa_poll_interval;

	due = ls->stopped_at == 0 ? 0 :
		TimestampTzPlusMilliseconds(ls->stopped_at, ls->restart_ms);
	if (now < due)
		return Max(1, TimestampDifferenceMilliseconds(now, due));

	/*
	 * A worker started by a previous launcher (which exited, e.g. on
	 * SIGTERM) outlives it: adopt it rather than start a second one.  It
	 * exits by itself if it serves another database.
	 */
	if (exa_worker_pid() != 0)
		return exa_poll_interval;

	dboid = launcher_find_database(database, &problem);
	if (!OidIsValid(dboid))
	{
		launcher_report_database(ls, problem, database);
		return EXA_DATABASE_RECHECK_MS;
	}

	exa_worker_prepare(&worker, dboid);
	if (!RegisterDynamicBackgroundWorker(&worker, &ls->handle))
	{
		ls->handle = NULL;
		if (launcher_report_due(ls, LAUNCHER_NO_SLOT, database))
			ereport(LOG,
					(errmsg("could not start the exchange_adapter worker"),
					 errdetail("No background worker slot is free."),
					 errhint("Raise \"%s\".", "max_worker_processes")));
		ls->stopped_at = now;
		return EXA_DATABASE_RECHECK_MS;
	}
	strlcpy(ls->served, database, sizeof(ls->served));
	ls->started_at = now;
	ls->problem = LAUNCHER_OK;
	ls->reported_at = 0;
	return exa_poll_interval;
}

/*
 * Main entry point of the launcher.  Exits only through the stock SIGTERM
 * handler (FATAL, exit code 1: restarted after bgw_restart_time unless the
 * postmaster is shutting down) or postmaster death.  A worker it started
 * is not stopped with it: the postmaster stops every worker at shutdown,
 * and a restarted launcher starts a new one once the old one is gone.
 */
void
exa_launcher_main(Datum main_arg)
{
	LauncherState ls;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* No database: see exa_launcher_register. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	pgstat_report_appname(EXA_LAUNCHER_NAME);
	pgstat_report_activity(STATE_IDLE, NULL);

	memset(&ls, 0, sizeof(ls));
	ls.restart_ms = EXA_WORKER_RESTART_MS;

	ereport(LOG,
			(errmsg("exchange_adapter launcher started"),
			 errdetail("Serving database \"%s\".", exa_database)));

	for (;;)
	{
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		timeout = launcher_step(&ls);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout, 1),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	/* not reached */
	proc_exit(1);
}
