/*-------------------------------------------------------------------------
 *
 * worker_status.c
 *	  The delivery worker's shared memory: its pid, latch and status.
 *
 * This file owns the shared-memory struct of the extension (README
 * "Monitoring": what adapter_status() shows), its hooks, the writers the
 * worker uses to report on itself (worker.c, delivery.c) and
 * exa_worker_wake(), which the commit callback of outbox.c calls.  It must
 * not depend on any other file of the extension.
 *
 * Locking: shared memory exists only when the library is preloaded; the
 * spinlock ExaShared.mutex protects every field of ExaShared, and is held
 * only to copy a few bytes (no call that may raise or allocate).
 * exa_worker_wake() may run in a commit callback: it takes the spinlock,
 * reads a pointer and sets a latch, nothing else.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "worker_status.h"

/* Shared state; see the file header for the locking rule. */
typedef struct ExaShared
{
	slock_t		mutex;
	int			worker_pid;
	Oid			worker_dboid;
	Latch	   *worker_latch;
	ExaStatus	status;
} ExaShared;

static ExaShared *exa_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* True in the worker process only: the status is ours to write. */
static bool am_worker = false;

static void
exa_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ExaShared)));
}

static void
exa_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	exa_shared = ShmemInitStruct("exchange_adapter", sizeof(ExaShared), &found);
	if (!found)
	{
		memset(exa_shared, 0, sizeof(ExaShared));
		SpinLockInit(&exa_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
exa_shmem_register(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = exa_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = exa_shmem_startup;
}

bool
exa_status_read(ExaStatus *out)
{
	if (exa_shared == NULL)
		return false;
	SpinLockAcquire(&exa_shared->mutex);
	memcpy(out, &exa_shared->status, sizeof(ExaStatus));
	SpinLockRelease(&exa_shared->mutex);
	return true;
}

/* May this process write the status? */
static inline bool
status_writable(void)
{
	return exa_shared != NULL && am_worker;
}

void
exa_status_set_error(const char *msg)
{
	if (!status_writable())
		return;
	SpinLockAcquire(&exa_shared->mutex);
	strlcpy(exa_shared->status.last_error, msg, EXA_STATUS_ERROR_LEN);
	SpinLockRelease(&exa_shared->mutex);
}

void
exa_status_set_connected(bool connected, const char *error)
{
	if (!status_writable())
		return;
	SpinLockAcquire(&exa_shared->mutex);
	exa_shared->status.redis_connected = connected;
	if (error != NULL)
		strlcpy(exa_shared->status.last_error, error, EXA_STATUS_ERROR_LEN);
	SpinLockRelease(&exa_shared->mutex);
}

/* Delivery works again: last_error describes only a current problem. */
void
exa_status_clear_error(void)
{
	if (!status_writable())
		return;
	SpinLockAcquire(&exa_shared->mutex);
	exa_shared->status.last_error[0] = '\0';
	SpinLockRelease(&exa_shared->mutex);
}

void
exa_status_pushed(int64 nkeys, const char *refusals)
{
	if (!status_writable())
		return;
	SpinLockAcquire(&exa_shared->mutex);
	exa_shared->status.redis_connected = true;
	exa_shared->status.last_push_at = GetCurrentTimestamp();
	exa_shared->status.pushed_keys += nkeys;
	strlcpy(exa_shared->status.refusals, refusals, EXA_STATUS_ERROR_LEN);
	SpinLockRelease(&exa_shared->mutex);
}

/* The refusals in force (exa_delivery_refusals()) into the shared status. */
void
exa_status_set_refusals(const char *refusals)
{
	if (!status_writable())
		return;
	SpinLockAcquire(&exa_shared->mutex);
	strlcpy(exa_shared->status.refusals, refusals, EXA_STATUS_ERROR_LEN);
	SpinLockRelease(&exa_shared->mutex);
}

void
exa_status_failed(const char *error, bool connected)
{
	if (!status_writable())
		return;
	SpinLockAcquire(&exa_shared->mutex);
	exa_shared->status.failed_pushes++;
	exa_shared->status.redis_connected = connected;
	strlcpy(exa_shared->status.last_error, error, EXA_STATUS_ERROR_LEN);
	SpinLockRelease(&exa_shared->mutex);
}

void
exa_worker_wake(void)
{
	Latch	   *latch = NULL;

	if (exa_shared == NULL)
		return;
	SpinLockAcquire(&exa_shared->mutex);
	if (exa_shared->worker_dboid == MyDatabaseId)
		latch = exa_shared->worker_latch;
	SpinLockRelease(&exa_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

int
exa_worker_pid(void)
{
	int			pid;

	if (exa_shared == NULL)
		return 0;
	SpinLockAcquire(&exa_shared->mutex);
	pid = exa_shared->worker_pid;
	SpinLockRelease(&exa_shared->mutex);
	return pid;
}

/* on_shmem_exit: the worker is gone. */
static void
worker_detach(int code, Datum arg)
{
	if (exa_shared == NULL)
		return;
	SpinLockAcquire(&exa_shared->mutex);
	if (exa_shared->worker_pid == MyProcPid)
	{
		exa_shared->worker_pid = 0;
		exa_shared->worker_dboid = InvalidOid;
		exa_shared->worker_latch = NULL;
		exa_shared->status.worker_pid = 0;
		exa_shared->status.redis_connected = false;
	}
	SpinLockRelease(&exa_shared->mutex);
}

void
exa_worker_attach(const char *dbname)
{
	int			other;

	am_worker = true;
	if (exa_shared == NULL)
		return;
	/* First, so that no exit path leaves our pid behind. */
	on_shmem_exit(worker_detach, (Datum) 0);
	SpinLockAcquire(&exa_shared->mutex);
	other = exa_shared->worker_pid;
	if (other != 0)
	{
		/* Cleared at exit (on_shmem_exit), so the other one is alive. */
		SpinLockRelease(&exa_shared->mutex);
		ereport(LOG,
				(errmsg("exchange_adapter worker exits: the worker with PID %d is running",
						other)));
		proc_exit(0);
	}
	exa_shared->worker_pid = MyProcPid;
	exa_shared->worker_dboid = MyDatabaseId;
	exa_shared->worker_latch = MyLatch;
	exa_shared->status.worker_pid = MyProcPid;
	strlcpy(exa_shared->status.database, dbname, NAMEDATALEN);
	exa_shared->status.redis_connected = false;
	exa_shared->status.refusals[0] = '\0';
	SpinLockRelease(&exa_shared->mutex);
}
