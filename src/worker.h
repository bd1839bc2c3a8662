/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The per-database delivery worker, its shared status and its wake-up.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_WORKER_H
#define EXA_WORKER_H

#include "datatype/timestamp.h"
#include "postmaster/bgworker.h"

#define EXA_WORKER_NAME			"exchange_adapter worker"
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

/* Record an error in the worker's status (no-op in other processes). */
extern void exa_status_set_error(const char *msg);

/*
 * Set the latch of the worker serving this database, if any.  Never raises
 * and never allocates: safe in a commit callback.
 */
extern void exa_worker_wake(void);

/* Pid of the running worker, 0 if none (or not preloaded). */
extern int	exa_worker_pid(void);

/* Fill in a dynamic worker for database dboid (used by the launcher). */
extern void exa_worker_prepare(BackgroundWorker *worker, Oid dboid);

extern PGDLLEXPORT void exa_worker_main(Datum main_arg);

#endif							/* EXA_WORKER_H */
