/*-------------------------------------------------------------------------
 *
 * worker_status.h
 *	  The delivery worker's shared memory: its pid, latch and status.
 *
 * What adapter_status() reads, what the worker writes about itself, and
 * exa_worker_wake() for the commit callback of outbox.c.  Depends on no
 * other file of the extension, so that the worker (worker.c), delivery
 * (delivery.c) and every reader include it without including each other.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_WORKER_STATUS_H
#define EXA_WORKER_STATUS_H

#include "datatype/timestamp.h"

#define EXA_STATUS_ERROR_LEN	256

/* What adapter_status() reads from shared memory. */
typedef struct ExaStatus
{
	int			worker_pid;		/* 0: no worker */
	char		database[NAMEDATALEN];
	bool		redis_connected;
	char		last_error[EXA_STATUS_ERROR_LEN];	/* "" if none */
	char		refusals[EXA_STATUS_ERROR_LEN]; /* refusals in force */
	TimestampTz last_push_at;	/* 0: never */
	uint64		pushed_keys;
	uint64		failed_pushes;
} ExaStatus;

/* Install the shared-memory hooks; only from shared_preload_libraries. */
extern void exa_shmem_register(void);

/* Copy the status; false when the library was not preloaded. */
extern bool exa_status_read(ExaStatus *out);

/*
 * Writers, effective in the worker process only (after exa_worker_attach);
 * no-ops elsewhere and when the library was not preloaded.  Strings are
 * truncated to EXA_STATUS_ERROR_LEN.
 */
extern void exa_status_set_error(const char *msg);
extern void exa_status_set_connected(bool connected, const char *error);
extern void exa_status_clear_error(void);
extern void exa_status_pushed(int64 nkeys, const char *refusals);
extern void exa_status_set_refusals(const char *refusals);
extern void exa_status_failed(const char *error, bool connected);

/*
 * The worker process registers itself for database dbname (MyDatabaseId):
 * exits with proc_exit(0) when another worker is running.  Cleared at exit.
 */
extern void exa_worker_attach(const char *dbname);

/*
 * Set the latch of the worker serving this database, if any.  Never raises
 * and never allocates: safe in a commit callback.
 */
extern void exa_worker_wake(void);

/* Pid of the running worker, 0 if none (or not preloaded). */
extern int	exa_worker_pid(void);

#endif							/* EXA_WORKER_STATUS_H */
