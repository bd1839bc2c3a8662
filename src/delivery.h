/*-------------------------------------------------------------------------
 *
 * delivery.h
 *	  Claiming, pushing and deleting outbox rows (DESIGN §5 "Claim and
 *	  delivery", "Service registry").
 *
 * Shared by the background worker (worker.c), which claims in a short
 * transaction, pushes with no transaction open and deletes what it
 * delivered in the next claim's transaction, and
 * by flush_outbox (registry.c), which does all three in the caller's
 * transaction holding row locks (never ledger locks) on what it delivers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_DELIVERY_H
#define EXA_DELIVERY_H

#include "datatype/timestamp.h"
#include "redis_client.h"

/* Most keys in one UNLINK/DEL command. */
#define DELIVERY_KEYS_PER_COMMAND	1000
/* Largest PUBLISH payload before it is split. */
#define DELIVERY_PUBLISH_MAX		65536

typedef struct DeliveryRow
{
	int64		id;
	char	   *xid;			/* text of the xid8 */
	bool		registry;		/* kind = 'registry' */
	int			nkeys;
	char	  **keys;			/* without prefix */
	char	   *service_id;		/* registry rows */
} DeliveryRow;

/* The current state of one service, read from exchange.services. */
typedef struct DeliveryService
{
	char	   *service_id;
	bool		live;			/* row exists and last_heartbeat + ttl > now */
	char	   *json;			/* Go layout, when live */
	char	   *heartbeat;		/* Unix seconds, when live */
	int64		px;				/* remaining lifetime in ms, when live */
} DeliveryService;

typedef struct DeliveryBatch
{
	int			nrows;
	DeliveryRow *rows;
	int			nservices;
	DeliveryService *services;
	int64		nkeys;			/* out: distinct keys deleted */
} DeliveryBatch;

typedef enum DeliveryResult
{
	DELIVERY_OK,
	DELIVERY_REFUSED,			/* Redis refused a command; still connected */
	DELIVERY_FAILED				/* connection failed and was closed */
} DeliveryResult;

/*
 * Claim lease: claims older than this are retaken (a claimer that died).
 * In ms; derived from the timeouts so that a live push never outlasts it.
 */
extern int	delivery_lease_ms(void);

/*
 * SQL side.  Each runs with SPI connected inside a transaction; results are
 * allocated in mcxt.
 */
extern DeliveryBatch *delivery_claim_worker(int limit, MemoryContext mcxt);
extern DeliveryBatch *delivery_claim_locked(int limit, MemoryContext mcxt);
extern void delivery_load_services(DeliveryBatch *batch, MemoryContext mcxt);
extern DeliveryBatch *delivery_live_services(MemoryContext mcxt);
extern void delivery_add_self(DeliveryBatch *batch, const char *database,
							  TimestampTz started_at, MemoryContext mcxt);
extern void delivery_delete(DeliveryBatch *batch);
extern void delivery_delete_ids(const int64 *ids, int nids);
extern void delivery_release(DeliveryBatch *batch);
extern int64 delivery_release_all_claims(void);

/*
 * Redis side: no transaction needed.  On DELIVERY_REFUSED or
 * DELIVERY_FAILED, errbuf says why.
 */
extern DeliveryResult delivery_push(RedisClient *client, DeliveryBatch *batch,
									char *errbuf, size_t errlen);
extern DeliveryResult delivery_ping(RedisClient *client,
									char *errbuf, size_t errlen);
extern DeliveryResult delivery_unlink_cache_space(RedisClient *client,
												  int64 *nkeys,
												  char *errbuf, size_t errlen);

/* Forget command refusals: called after each successful connect. */
extern void delivery_connected(void);

/* Refusals currently in force, as a sentence for adapter_status ("" if none). */
extern const char *delivery_refusals(void);

#endif							/* EXA_DELIVERY_H */
