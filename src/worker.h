/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The per-database delivery worker.
 *
 * Its shared memory, status and wake-up are in worker_status.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_WORKER_H
#define EXA_WORKER_H

#include "postmaster/bgworker.h"

#define EXA_WORKER_NAME			"exchange_adapter worker"

/* Fill in a dynamic worker for database dboid (used by the launcher). */
extern void exa_worker_prepare(BackgroundWorker *worker, Oid dboid);

/* The worker's entry point; never returns (exits with proc_exit). */
extern PGDLLEXPORT void exa_worker_main(Datum main_arg) pg_attribute_noreturn();

#endif							/* EXA_WORKER_H */
