/*-------------------------------------------------------------------------
 *
 * outbox.h
 *	  The outbox: what each committed call made stale in Redis
 *	  (README "Redis delivery").
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_OUTBOX_H
#define EXA_OUTBOX_H

#include "nodes/pg_list.h"
#include "utils/uuid.h"

/*
 * Insert one cache outbox row naming keys (C strings, without prefix) in
 * the caller's transaction, stamped with the top-level transaction id.
 * The caller is connected to SPI.
 */
extern void exa_outbox_enqueue_cache(List *keys);

/*
 * The same, also naming the executions of the call (README "Trade feed"):
 * one trade id per execution, in execution order, stored in the row's
 * trade_ids.  Only when exa_catalog_is_1_1() (a 1.1 catalog).
 */
extern void exa_outbox_enqueue_cache_feed(List *keys, const pg_uuid_t *trade_ids,
									  int ntrades);

/* Insert one registry outbox row naming a service id. */
extern void exa_outbox_enqueue_registry(const char *service_id);

#endif							/* EXA_OUTBOX_H */
