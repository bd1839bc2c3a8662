/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The exchange_adapter launcher background worker.
 *
 * This file owns the launcher: its registration (from _PG_init, only while
 * shared_preload_libraries is processed) and its main loop.  The launcher is
 * attached to no database (like the logical replication launcher, it
 * initialises a connection to none, which puts it in pg_stat_activity and
 * will let it read the shared catalog pg_database); it is the process that
 * will start and watch the per-database worker for exchange_adapter.database
 * (DESIGN §5).
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

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#include "exchange_adapter.h"

/* Seconds the postmaster waits before restarting a launcher that exited 1. */
#define EXA_LAUNCHER_RESTART_SECONDS	5

#define EXA_LAUNCHER_NAME	"exchange_adapter launcher"

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
	/* The worker deletes outbox rows: nothing to do on a standby. */
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
 * Main entry point of the launcher.  Exits only through the stock SIGTERM
 * handler (FATAL, exit code 1: restarted after bgw_restart_time unless the
 * postmaster is shutting down) or postmaster death.
 */
void
exa_launcher_main(Datum main_arg)
{
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* No database: see exa_launcher_register. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	pgstat_report_appname(EXA_LAUNCHER_NAME);
	pgstat_report_activity(STATE_IDLE, NULL);

	ereport(LOG,
			(errmsg("exchange_adapter launcher started"),
			 errdetail("Serving database \"%s\".", exa_database)));

	for (;;)
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 exa_poll_interval,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/*
		 * -------- per-database worker: start and watch it here --------
		 *
		 * Later work: when exchange_adapter.database is set and names an
		 * existing database, register a dynamic worker for it
		 * (RegisterDynamicBackgroundWorker with bgw_notify_pid = MyProcPid,
		 * so the postmaster sets our latch when it starts or stops); restart
		 * it when the setting changes; when the database is missing, log
		 * that once and then at most every 10 minutes, and idle.  Until
		 * then the launcher only idles.
		 */
	}
}
