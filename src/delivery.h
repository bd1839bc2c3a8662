/*-------------------------------------------------------------------------
 *
 * delivery.h
 *	  Claiming, pushing and deleting outbox rows (README "Redis delivery").
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

/*
 * Class id (first key of the two-key advisory lock form) of the lock that a
 * deliverer holds on a service id from reading its exchange.services row
 * until its push of that state is done; the second key is a hash of the id.
 * Owned by this extension, used for nothing else.
 */
#define EXA_LOCK_CLASS_REGISTRY		0x45580001

/* How exa_delivery_load_services takes the registry locks. */
typedef enum DeliveryLockMode
{
	DELIVERY_LOCK_SESSION_NOWAIT,	/* the worker: session lock, never waits;
									 * a busy service is deferred */
	DELIVERY_LOCK_XACT_WAIT		/* flush_outbox: transaction lock, waits */
} DeliveryLockMode;

typedef enum DeliveryResult
{
	DELIVERY_OK,
	DELIVERY_REFUSED,			/* Redis refused a command; still connected */
	DELIVERY_FAILED				/* connection failed and was closed */
} DeliveryResult;

typedef struct DeliveryRow
{
	int64		id;
	char	   *xid;			/* text of the xid8 */
	bool		registry;		/* kind = 'registry' */
	int			nkeys;
	char	  **keys;			/* without prefix */
	char	   *service_id;		/* registry rows */
	int			ntrades;		/* trade feed messages (README "Trade
								 * feed"), rendered at claim time from
								 * exchange.trades */
	char	  **trade_channels; /* <prefix>trades:<symbol> */
	char	  **trade_payloads;
	bool		delivered;		/* out: pushed by exa_delivery_push */
} DeliveryRow;

/* The current state of one service, read from exchange.services. */
typedef struct DeliveryService
{
	char	   *service_id;
	bool		live;			/* row exists and last_heartbeat + ttl > now */
	char	   *json;			/* Go layout, when live */
	char	   *heartbeat;		/* Unix seconds, when live */
	int64		px;				/* remaining lifetime in ms, when live */
	bool		deferred;		/* its lock was busy: not read, not pushed */
	bool		locked;			/* we hold its registry lock */
	bool		session_lock;	/* ... at session level (release after push) */
	uint32		lockkey;		/* second key of the lock */
	bool		failed;			/* out: Redis refused its commands */
	bool		retry;			/* internal: UNLINK refused, send DEL */
} DeliveryService;

typedef struct DeliveryBatch
{
	int			nrows;
	DeliveryRow *rows;
	int			nservices;
	int			maxservices;	/* room in services[] */
	DeliveryService *services;
	int64		nkeys;			/* out: distinct keys deleted */
	DeliveryResult registry_result;	/* out: outcome of the registry part */
	char		registry_error[256];	/* out: why, when not DELIVERY_OK */
} DeliveryBatch;

/*
 * Claim lease: claims older than this are retaken (a claimer that died).
 * In ms; derived from the timeouts so that a live push never outlasts it.
 */
extern int	exa_delivery_lease_ms(void);

/*
 * SQL side.  Each runs with SPI connected inside a transaction; results are
 * allocated in mcxt.
 */
extern DeliveryBatch *exa_delivery_claim_worker(int limit, bool registry,
												MemoryContext mcxt);
extern DeliveryBatch *exa_delivery_claim_locked(int limit, bool registry,
												MemoryContext mcxt);
extern void exa_delivery_load_services(DeliveryBatch *batch, DeliveryLockMode mode,
									   MemoryContext mcxt);
extern DeliveryBatch *exa_delivery_live_services(MemoryContext mcxt);
extern void exa_delivery_unlock_services(DeliveryBatch *batch);
extern void exa_delivery_add_self(DeliveryBatch *batch, const char *database,
								  TimestampTz started_at, MemoryContext mcxt);
extern void exa_delivery_delete_delivered(DeliveryBatch *batch);
extern void exa_delivery_delete_ids(const int64 *ids, int nids);
extern void exa_delivery_release_undelivered(DeliveryBatch *batch);
extern int64 exa_delivery_release_all_claims(void);

/*
 * Redis side: no transaction needed.  On DELIVERY_REFUSED or
 * DELIVERY_FAILED, errbuf says why.
 *
 * exa_delivery_push works in this order, each part reported on its own: (1) the
 * cache keys are deleted and every reply read (a refused UNLINK is replaced
 * by DEL at once); (2) only then the PUBLISHes that announce them, then the
 * trade feed's PUBLISHes, and the registry commands of the services not
 * deferred.  It returns the outcome of the cache part (1 and the
 * PUBLISHes); the registry part's outcome is in
 * batch->registry_result and registry_error, and a refused registration is
 * reported (WARNING once, and exa_delivery_refusals()) without touching the
 * cache part.  Each row's "delivered" says whether it may be deleted.
 */
extern DeliveryResult exa_delivery_push(RedisClient *client, DeliveryBatch *batch,
										char *errbuf, size_t errlen);
extern DeliveryResult exa_delivery_ping(RedisClient *client,
										char *errbuf, size_t errlen);
extern DeliveryResult exa_delivery_unlink_cache_space(RedisClient *client,
													  int64 *nkeys,
													  char *errbuf, size_t errlen);

/*
 * Forget command refusals that may heal (PUBLISH, PING, MULTI): called after
 * each successful connect.  The DEL fallback for a refused UNLINK is kept
 * for the life of the process.
 */
extern void exa_delivery_connected(void);

/* Refusals currently in force, as a sentence for adapter_status ("" if none). */
extern const char *exa_delivery_refusals(void);

#endif							/* EXA_DELIVERY_H */
