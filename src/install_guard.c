/*-------------------------------------------------------------------------
 *
 * install_guard.c
 *	  Closes the window in which a role losing CREATE on schema exchange
 *	  could still plant a function or an operator during CREATE EXTENSION.
 *
 * The install script (sql/exchange_adapter--1.1.sql) first locks pg_proc
 * and pg_operator in SHARE mode, so that no other session of the database
 * can create a function or an operator until the install commits; then it
 * revokes CREATE on the schema from every role but its owner and moves the
 * functions and operators they planted to exchange_quarantine.  One case is
 * left: a CREATE FUNCTION or CREATE OPERATOR whose permission check on the
 * schema ran before the REVOKE was visible (other sessions see it only once
 * the install commits) and that is waiting on those locks.  When the locks
 * are released it would go on and create its object, after the quarantine.
 *
 * exa_install_guard(), called by the install script, arms a transaction
 * callback that, at XACT_EVENT_COMMIT, cancels (SIGINT, as
 * pg_cancel_backend does) every backend of this database then waiting for
 * a lock on pg_proc or pg_operator whose role was not a superuser when the
 * guard was armed.  At that point the commit is visible and our locks are
 * still held, so a waiter's permission check is necessarily stale; anything
 * that checks after this point sees the REVOKE once the invalidation
 * messages of the commit arrive, which happens before the locks are
 * released.  Superusers' statements are never cancelled (they may create
 * anything anyway).
 *
 * The callback must not raise (it runs after the commit record) and must
 * not touch the catalogs: the list of superusers is read when the guard is
 * armed.  It is registered once per backend and does nothing unless armed;
 * it disarms itself at the end of the transaction, whatever its outcome.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(exa_install_guard);

static bool guard_registered = false;
static bool guard_armed = false;
static Oid *guard_superusers = NULL;	/* in TopMemoryContext */
static int	guard_nsuperusers = 0;

static bool
guard_is_superuser(Oid roleid)
{
	for (int i = 0; i < guard_nsuperusers; i++)
		if (guard_superusers[i] == roleid)
			return true;
	return false;
}

/*
 * Cancel the non-superuser backends of this database waiting for a lock on
 * pg_proc or pg_operator.  Never raises: a failed kill() is ignored (the
 * process is gone).
 */
static void
guard_cancel_waiting_creators(void)
{
	LockData   *locks = GetLockStatusData();

	for (int i = 0; i < locks->nelements; i++)
	{
		LockInstanceData *inst = &locks->locks[i];
		LOCKTAG    *tag = &inst->locktag;
		PGPROC	   *proc;

		if (inst->waitLockMode == NoLock || inst->pid == MyProcPid)
			continue;
		if (tag->locktag_type != LOCKTAG_RELATION ||
			tag->locktag_field1 != MyDatabaseId ||
			(tag->locktag_field2 != ProcedureRelationId &&
			 tag->locktag_field2 != OperatorRelationId))
			continue;
		proc = BackendPidGetProc(inst->pid);
		if (proc == NULL || guard_is_superuser(proc->roleId))
			continue;
		(void) kill(inst->pid, SIGINT);
	}
}

static void
guard_xact_callback(XactEvent event, void *arg)
{
	if (!guard_armed)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			guard_cancel_waiting_creators();
			guard_armed = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			guard_armed = false;
			break;
		default:
			break;
	}
}

/*
 * exa_install_guard() RETURNS void — for the install script only.
 */
Datum
exa_install_guard(PG_FUNCTION_ARGS)
{
	MemoryContext oldcxt;
	int			ret;

	if (!creating_extension)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("exa_install_guard() can only be called by CREATE EXTENSION exchange_adapter")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT oid FROM pg_catalog.pg_authid WHERE rolsuper", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	if (guard_superusers != NULL)
		pfree(guard_superusers);
	guard_nsuperusers = (int) SPI_processed;
	guard_superusers = palloc(sizeof(Oid) * Max(guard_nsuperusers, 1));
	MemoryContextSwitchTo(oldcxt);
	for (int i = 0; i < guard_nsuperusers; i++)
	{
		bool		isnull;

		guard_superusers[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc,
															 1, &isnull));
	}
	SPI_finish();

	if (!guard_registered)
	{
		RegisterXactCallback(guard_xact_callback, NULL);
		guard_registered = true;
	}
	guard_armed = true;
	PG_RETURN_VOID();
}
