/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  Claiming, pushing and deleting outbox rows (README "Redis delivery").
 *
 * This file owns the SQL of delivery (claim, service state, delete) and the
 * Redis commands that carry it out.  Both halves are used by the worker
 * (claim, and delete of the previous batch, in one short transaction; push
 * with no transaction open) and by flush_outbox (everything in the caller's
 * transaction; rows taken with FOR UPDATE SKIP LOCKED).
 *
 * Locks: the claim takes outbox rows FOR UPDATE SKIP LOCKED, so deliverers
 * never wait for each other nor for a transaction that inserts rows; the
 * worker holds them only for its claim transaction and marks claimed_at (a
 * lease, retaken when older than exa_delivery_lease_ms()).  Then, per service
 * of the batch, in hash order, the registry advisory lock
 * (EXA_LOCK_CLASS_REGISTRY, hash of the id), and only after it the read of
 * its exchange.services row (no row lock); it is held until the push of
 * that state is done: by the worker at session level, taken without
 * waiting (a busy service is deferred) and released after the push; by
 * flush_outbox at transaction level, waited for.  No ledger table is read
 * or locked here, except exchange.trades, read without a lock by trade id
 * to render the trade feed's messages (below).
 *
 * Order of one push: cache deletions first, every reply read; then the
 * PUBLISHes that announce them, the trade feed's PUBLISHes and the
 * registry commands, in one pipeline.  A refusal of
 * the registry part (OOM under noeviction, ...) never undoes or holds back
 * the cache part; each is reported on its own.
 *
 * Delivery is at-least-once and every push idempotent: UNLINK of a missing
 * key, a repeated PUBLISH (subscribers tolerate duplicates) and the
 * state-based registry application (the table's current state, not the
 * event, is written) all converge when replayed or reordered.
 *
 * Trade feed (README "Trade feed"): a cache row names the executions of
 * its call in trade_ids (outbox.c).  The claim renders their messages from
 * exchange.trades, in the claim's transaction, rather than the trading call
 * storing finished JSON: the call stays as cheap as it was (16 bytes per
 * execution instead of a rendered payload), the message carries exactly
 * what a subscriber re-reads from exchange.trades to fill a gap, and
 * columns a later catalog adds (trades.seq, maintained for INTERNAL
 * markets) are carried as soon as they exist, with no change to the code
 * that writes trades: seq is selected when the column exists (looked up
 * once per transaction, catalog_version.c), else it is null.  On a 1.0
 * catalog (no outbox.trade_ids) the claims read the 1.0 columns only and
 * delivery is exactly 1.0's.  The feed's PUBLISHes follow every
 * invalidation PUBLISH of the batch, in row (id) order and, within a row,
 * in execution order, so each comes after its transaction's deletions and
 * invalidation message; a NOPERM refusal of them is reported once and they
 * are dropped until the next connect (as for invalidation messages), any
 * other refusal fails the cache part, whose rows are then pushed again.
 * The backlog flush (worker.c) never drops a row that names executions.
 *
 * The SQL runs with search_path = pg_catalog, pg_temp (SECURITY DEFINER
 * functions, and the worker sets it at start); objects are qualified.
 *
 * Refusals that will not heal (NOPERM for PUBLISH, PING or MULTI; UNLINK
 * unknown or refused) are reported once per process with a WARNING and in
 * the worker's status, then the fallback is used: no PUBLISH, EXISTS
 * instead of PING, two SETs instead of MULTI/EXEC, DEL instead of UNLINK.
 * PUBLISH, PING and MULTI are tried again only after a reconnect, never in
 * a loop; DEL stays for the life of the process.  A refused registry write
 * is reported once per episode (until a registration is written again).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog_version.h"
#include "delivery.h"
#include "exchange_adapter.h"
#include "outbox.h"
#include "stmt.h"
#include "worker_status.h"

/* Per process: refusals in force and whether each was reported. */
static struct
{
	bool		use_del;
	bool		publish_refused;
	bool		multi_refused;
	bool		ping_refused;
	bool		trades_refused; /* PUBLISH on <prefix>trades:* refused */
	bool		reported_unlink;
	bool		reported_publish;
	bool		reported_trades;
	bool		reported_multi;
	bool		reported_ping;
	bool		registry_refused;	/* the last registry push was refused */
	bool		reported_registry;	/* ... and that was reported */
	char		registry_error[160];
} refusal;

static char refusal_text[256];

#define SERVICE_COLUMNS \
	"s.service_id, " \
	"pg_catalog.json_build_object(" \
	"  'ServiceName', s.service_name," \
	"  'ServiceID', s.service_id," \
	"  'Address', s.address," \
	"  'Port', s.port," \
	"  'Version', COALESCE(s.version, '')," \
	"  'Metadata', (SELECT COALESCE(pg_catalog.json_object_agg(m.key, m.value ORDER BY m.key)," \
	"                               '{}'::pg_catalog.json)" \
	"                 FROM pg_catalog.jsonb_each_text(s.metadata) m)," \
	"  'RegisteredAt', pg_catalog.to_char(s.registered_at AT TIME ZONE 'UTC'," \
	"                                     'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')," \
	"  'LastHeartbeat', pg_catalog.to_char(s.last_heartbeat AT TIME ZONE 'UTC'," \
	"                                      'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')" \
	")::pg_catalog.text, " \
	"pg_catalog.floor(EXTRACT(epoch FROM s.last_heartbeat))::pg_catalog.int8::pg_catalog.text, " \
	"pg_catalog.ceil(EXTRACT(epoch FROM s.last_heartbeat + s.ttl" \
	"                        - pg_catalog.clock_timestamp()) * 1000)::pg_catalog.int8"

/*
 * The worker's statements take their ids as an array (ARRAY(subquery) or a
 * parameter), not as IN (subquery): no join to plan, so no planner probe of
 * outbox_pkey's ends (mergejoinscansel), which walks every dead entry a
 * drain leaves behind; the plan is an index scan by id.
 */
#define CLAIM_COLUMNS \
	"o.id, o.xid::pg_catalog.text, o.kind::pg_catalog.text, o.keys, o.service_id"

#define CLAIM_WORKER_SQL(columns) \
	"UPDATE exchange.outbox o" \
	"   SET claimed_at = pg_catalog.clock_timestamp(), attempts = o.attempts + 1" \
	" WHERE o.id = ANY (ARRAY(SELECT i.id FROM exchange.outbox i" \
	"                          WHERE (i.claimed_at IS NULL" \
	"                             OR i.claimed_at < pg_catalog.now() - $1 * interval '1 millisecond')" \
	"                            AND ($3 OR i.kind = 'cache')" \
	"                          ORDER BY i.id LIMIT $2 FOR UPDATE SKIP LOCKED))" \
	" RETURNING " columns

/* flush_outbox: never the caller's own, not yet committed, rows. */
#define CLAIM_LOCKED_SQL(columns) \
	"SELECT " columns \
	"  FROM exchange.outbox o" \
	" WHERE (o.claimed_at IS NULL" \
	"        OR o.claimed_at < pg_catalog.now() - $1 * interval '1 millisecond')" \
	"   AND o.xid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned()" \
	"   AND ($3 OR o.kind = 'cache')" \
	" ORDER BY o.id LIMIT $2 FOR UPDATE SKIP LOCKED"

/* On a 1.0 catalog: the 1.0 columns. */
static ExaStmt stmt_claim_worker = {
	CLAIM_WORKER_SQL(CLAIM_COLUMNS),
	3, {INT4OID, INT8OID, BOOLOID},
	NULL
};

static ExaStmt stmt_claim_locked = {
	CLAIM_LOCKED_SQL(CLAIM_COLUMNS),
	3, {INT4OID, INT8OID, BOOLOID},
	NULL
};

/* With outbox.trade_ids (the trade feed, 1.1). */
static ExaStmt stmt_claim_worker_feed = {
	CLAIM_WORKER_SQL(CLAIM_COLUMNS ", o.trade_ids"),
	3, {INT4OID, INT8OID, BOOLOID},
	NULL
};

static ExaStmt stmt_claim_locked_feed = {
	CLAIM_LOCKED_SQL(CLAIM_COLUMNS ", o.trade_ids"),
	3, {INT4OID, INT8OID, BOOLOID},
	NULL
};

/*
 * The trade feed's message fields of the trades named in $1, in the order
 * named (ordinality); a trade id not found has no message.  seq is
 * selected when exchange.trades has it.  The time is RFC 3339 UTC with
 * microseconds, as in the registry's JSON.
 */
#define TRADES_SQL(seq) \
	"SELECT u.ord, t.symbol::pg_catalog.text, " seq "," \
	"       t.match_id::pg_catalog.text, t.price::pg_catalog.text," \
	"       t.quantity::pg_catalog.text," \
	"       CASE WHEN t.liquidity = 'TAKER' THEN t.side::pg_catalog.text END," \
	"       pg_catalog.to_char(t.executed_at AT TIME ZONE 'UTC'," \
	"                          'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')" \
	"  FROM pg_catalog.unnest($1) WITH ORDINALITY u(trade_id, ord)" \
	"  JOIN exchange.trades t ON t.trade_id = u.trade_id" \
	" ORDER BY u.ord"

static ExaStmt stmt_trades = {
	TRADES_SQL("NULL::pg_catalog.text"),
	1, {UUIDARRAYOID},
	NULL
};

static ExaStmt stmt_trades_seq = {
	TRADES_SQL("t.seq::pg_catalog.text"),
	1, {UUIDARRAYOID},
	NULL
};

static ExaStmt stmt_services = {
	"SELECT " SERVICE_COLUMNS
	"  FROM exchange.services s WHERE s.service_id = ANY ($1)",
	1, {TEXTARRAYOID},
	NULL
};

static ExaStmt stmt_live_ids = {
	"SELECT s.service_id"
	"  FROM exchange.services s"
	" WHERE s.last_heartbeat + s.ttl > pg_catalog.clock_timestamp()"
	" ORDER BY s.service_id",
	0, {InvalidOid},
	NULL
};

static ExaStmt stmt_self = {
	"SELECT pg_catalog.json_build_object("
	"  'ServiceName', $1::pg_catalog.text,"
	"  'ServiceID', $2::pg_catalog.text,"
	"  'Address', $3::pg_catalog.text,"
	"  'Port', $4::pg_catalog.int4,"
	"  'Version', COALESCE((SELECT e.extversion FROM pg_catalog.pg_extension e"
	"                        WHERE e.extname = 'exchange_adapter'), ''),"
	"  'Metadata', pg_catalog.json_build_object('database', $5::pg_catalog.text),"
	"  'RegisteredAt', pg_catalog.to_char($6::pg_catalog.timestamptz AT TIME ZONE 'UTC',"
	"                                     'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
	"  'LastHeartbeat', pg_catalog.to_char(pg_catalog.clock_timestamp() AT TIME ZONE 'UTC',"
	"                                      'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
	")::pg_catalog.text,"
	" pg_catalog.floor(EXTRACT(epoch FROM pg_catalog.clock_timestamp()))::pg_catalog.int8::pg_catalog.text",
	6, {TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TIMESTAMPTZOID},
	NULL
};

static ExaStmt stmt_delete = {
	"DELETE FROM exchange.outbox o"
	" WHERE o.id = ANY (ARRAY(SELECT i.id FROM exchange.outbox i"
	"                          WHERE i.id = ANY ($1) FOR UPDATE SKIP LOCKED))",
	1, {INT8ARRAYOID},
	NULL
};

static ExaStmt stmt_release = {
	"UPDATE exchange.outbox o SET claimed_at = NULL"
	" WHERE o.id = ANY (ARRAY(SELECT i.id FROM exchange.outbox i"
	"                          WHERE i.id = ANY ($1) FOR UPDATE SKIP LOCKED))",
	1, {INT8ARRAYOID},
	NULL
};

static ExaStmt stmt_release_all = {
	"UPDATE exchange.outbox o SET claimed_at = NULL"
	" WHERE o.id IN (SELECT i.id FROM exchange.outbox i"
	"                 WHERE i.claimed_at IS NOT NULL FOR UPDATE SKIP LOCKED)",
	0, {InvalidOid},
	NULL
};

int
exa_delivery_lease_ms(void)
{
	return 30000 + exa_redis_connect_timeout + 3 * exa_redis_command_timeout;
}

/* ------------------------------------------------------------------------
 * SQL side
 * ------------------------------------------------------------------------
 */

/*
 * Copy SPI_tuptable (id, xid, kind, keys, service_id[, trade_ids]) into a
 * batch; the trade ids of all rows, in row and execution order, go to
 * *trade_ids (an array Datum, *ntrades of them) with the row of each in
 * *trade_row.
 */
static DeliveryBatch *
batch_from_spi(uint64 n, MemoryContext mcxt, Datum *trade_ids, int *ntrades,
			   int **trade_row)
{
	bool		feed = SPI_tuptable->tupdesc->natts >= 6;
	Datum	   *tids = NULL;
	int			ntids = 0;
	int			maxtids = 0;
	int		   *rowof = NULL;
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	DeliveryBatch *batch = palloc0(sizeof(DeliveryBatch));
	uint64		i;

	batch->nrows = (int) n;
	batch->rows = palloc0(sizeof(DeliveryRow) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		DeliveryRow *row = &batch->rows[i];
		char	   *kind;
		bool		isnull;
		Datum		keys;

		row->id = DatumGetInt64(exa_col_notnull(i, 1));
		row->xid = exa_col_cstring(i, 2);
		kind = exa_col_cstring(i, 3);
		row->registry = (strcmp(kind, "registry") == 0);
		row->service_id = exa_col_cstring(i, 5);
		keys = exa_col(i, 4, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			nelems;
			int			j;

			deconstruct_array(DatumGetArrayTypeP(keys), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &nelems);
			row->keys = palloc(sizeof(char *) * Max(nelems, 1));
			for (j = 0; j < nelems; j++)
			{
				if (!nulls[j])
					row->keys[row->nkeys++] = TextDatumGetCString(elems[j]);
			}
		}
		if (feed && !row->registry)
		{
			Datum		ids = exa_col(i, 6, &isnull);
			Datum	   *elems;
			bool	   *nulls;
			int			nelems;
			int			j;

			if (isnull)
				continue;
			deconstruct_array(DatumGetArrayTypeP(ids), UUIDOID, UUID_LEN, false,
							  TYPALIGN_CHAR, &elems, &nulls, &nelems);
			for (j = 0; j < nelems; j++)
			{
				if (nulls[j])
					continue;
				if (ntids >= maxtids)
				{
					maxtids = Max(64, 2 * maxtids);
					tids = tids == NULL ? palloc(sizeof(Datum) * maxtids) :
						repalloc(tids, sizeof(Datum) * maxtids);
					rowof = rowof == NULL ? palloc(sizeof(int) * maxtids) :
						repalloc(rowof, sizeof(int) * maxtids);
				}
				tids[ntids] = PointerGetDatum(palloc(UUID_LEN));
				memcpy(DatumGetPointer(tids[ntids]), DatumGetPointer(elems[j]),
					   UUID_LEN);
				rowof[ntids++] = (int) i;
			}
		}
	}
	MemoryContextSwitchTo(old);
	*ntrades = ntids;
	*trade_row = rowof;
	*trade_ids = ntids == 0 ? (Datum) 0 :
		PointerGetDatum(construct_array(tids, ntids, UUIDOID, UUID_LEN, false,
										TYPALIGN_CHAR));
	return batch;
}

/* Append a JSON string, or null. */
static void
json_string_or_null(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, s);
}

/*
 * Render the trade feed's messages of a claimed batch (README "Trade feed"):
 * channel <prefix>trades:<symbol>, payload {"v":1,"symbol":..,"seq":..,
 * "match_id":..,"price":"..","quantity":"..","taker_side":..,
 * "executed_at":".."}, into each row's trade_channels and trade_payloads,
 * in execution order.  The prefix is the one in force at claim time, as
 * for keys it is applied at push time.
 */
static void
render_trades(DeliveryBatch *batch, Datum trade_ids, int ntrades,
			  const int *trade_row, MemoryContext mcxt)
{
	Datum		values[1];
	uint64		n;
	uint64		i;
	MemoryContext old;
	StringInfoData buf;
	int			r;

	values[0] = trade_ids;
	n = exa_exec_indexed(exa_catalog_is_1_1() ? &stmt_trades_seq : &stmt_trades,
						 values, false);

	old = MemoryContextSwitchTo(mcxt);
	for (r = 0; r < batch->nrows; r++)
	{
		batch->rows[r].ntrades = 0;
		batch->rows[r].trade_channels = NULL;
		batch->rows[r].trade_payloads = NULL;
	}
	/* room for every message of each row */
	for (i = 0; i < (uint64) ntrades; i++)
		batch->rows[trade_row[i]].ntrades++;
	for (r = 0; r < batch->nrows; r++)
	{
		DeliveryRow *row = &batch->rows[r];

		if (row->ntrades == 0)
			continue;
		row->trade_channels = palloc(sizeof(char *) * row->ntrades);
		row->trade_payloads = palloc(sizeof(char *) * row->ntrades);
		row->ntrades = 0;
	}

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		int64		ord = DatumGetInt64(exa_col_notnull(i, 1));
		DeliveryRow *row;
		char	   *symbol = exa_col_cstring(i, 2);
		char	   *seq = exa_col_cstring(i, 3);

		if (ord < 1 || ord > ntrades)
			continue;
		row = &batch->rows[trade_row[ord - 1]];

		resetStringInfo(&buf);
		appendStringInfoString(&buf, "{\"v\":1,\"symbol\":");
		escape_json(&buf, symbol);
		appendStringInfo(&buf, ",\"seq\":%s,\"match_id\":", seq ? seq : "null");
		json_string_or_null(&buf, exa_col_cstring(i, 4));
		appendStringInfoString(&buf, ",\"price\":");
		escape_json(&buf, exa_col_cstring(i, 5));
		appendStringInfoString(&buf, ",\"quantity\":");
		escape_json(&buf, exa_col_cstring(i, 6));
		appendStringInfoString(&buf, ",\"taker_side\":");
		json_string_or_null(&buf, exa_col_cstring(i, 7));
		appendStringInfoString(&buf, ",\"executed_at\":");
		escape_json(&buf, exa_col_cstring(i, 8));
		appendStringInfoChar(&buf, '}');

		row->trade_channels[row->ntrades] = psprintf("%strades:%s",
													 exa_key_prefix, symbol);
		row->trade_payloads[row->ntrades] = pstrdup(buf.data);
		row->ntrades++;
	}
	pfree(buf.data);
	MemoryContextSwitchTo(old);
}

static int
row_id_cmp(const void *a, const void *b)
{
	int64		x = ((const DeliveryRow *) a)->id;
	int64		y = ((const DeliveryRow *) b)->id;

	return (x > y) - (x < y);
}

/*
 * The worker's statements on the outbox (claim, delete and release, all by
 * id) run with sequential scans disabled, and only they: the setting is
 * made at a GUC nest level of its own around the statement and undone
 * right after it, like a function's SET clause.  The outbox is a queue: its
 * statistics see it nearly empty while, under a stream of commits, its heap
 * holds thousands of dead rows between two vacuums.  The planner then reads
 * it sequentially, every page of it at every claim and delete, which cost
 * most of the worker's CPU (measured: heapgetpage and visibility checks).
 * By id, through outbox_pkey, a claim reads only the head of the queue,
 * whose dead entries the index scans mark and skip thereafter.  Setting it
 * at each execution, not once at prepare time, matters: a kept plan is made
 * again after any invalidation of the outbox's relcache entry (a vacuum or
 * an analyze of it sends one), and must again be made with the index.
 * flush_outbox (registry.c) runs in the caller's session with its settings.
 */
static uint64
exec_outbox_by_id(ExaStmt *stmt, Datum *values)
{
	return exa_exec_indexed(stmt, values, false);
}

static DeliveryBatch *
claim(ExaStmt *stmt, int limit, bool registry, MemoryContext mcxt)
{
	Datum		values[3];
	uint64		n;
	DeliveryBatch *batch;
	Datum		trade_ids;
	int			ntrades;
	int		   *trade_row;

	values[0] = Int32GetDatum(exa_delivery_lease_ms());
	values[1] = Int64GetDatum((int64) limit);
	values[2] = BoolGetDatum(registry);
	if (stmt == &stmt_claim_worker || stmt == &stmt_claim_worker_feed)
		n = exec_outbox_by_id(stmt, values);
	else
		n = exa_exec(stmt, values, NULL, 0);
	batch = batch_from_spi(n, mcxt, &trade_ids, &ntrades, &trade_row);
	if (ntrades > 0)
		render_trades(batch, trade_ids, ntrades, trade_row, mcxt);
	/* RETURNING has no order: deliver in commit-ish (id) order. */
	qsort(batch->rows, batch->nrows, sizeof(DeliveryRow), row_id_cmp);
	return batch;
}

/* registry = false: cache rows only (registry rows wait for a back-off). */
DeliveryBatch *
exa_delivery_claim_worker(int limit, bool registry, MemoryContext mcxt)
{
	return claim(exa_catalog_is_1_1() ? &stmt_claim_worker_feed :
				 &stmt_claim_worker, limit, registry, mcxt);
}

DeliveryBatch *
exa_delivery_claim_locked(int limit, bool registry, MemoryContext mcxt)
{
	return claim(exa_catalog_is_1_1() ? &stmt_claim_locked_feed :
				 &stmt_claim_locked, limit, registry, mcxt);
}

/* The next free entry of batch->services, checked against its room. */
static DeliveryService *
batch_next_service(DeliveryBatch *batch)
{
	if (batch->nservices >= batch->maxservices)
		elog(ERROR, "delivery batch has room for %d services, a %dth was added",
			 batch->maxservices, batch->nservices + 1);
	return &batch->services[batch->nservices++];
}

/* Append SPI_tuptable's service rows (SERVICE_COLUMNS) to batch->services. */
static void
services_from_spi(DeliveryBatch *batch, uint64 n, MemoryContext mcxt)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	uint64		i;

	for (i = 0; i < n; i++)
	{
		DeliveryService *svc = batch_next_service(batch);
		bool		isnull;
		Datum		px;

		svc->service_id = exa_col_cstring(i, 1);
		svc->json = exa_col_cstring(i, 2);
		svc->heartbeat = exa_col_cstring(i, 3);
		px = exa_col(i, 4, &isnull);
		svc->px = isnull ? 0 : DatumGetInt64(px);
		svc->live = (svc->px > 0);
	}
	MemoryContextSwitchTo(old);
}

/* Registry lock of one service id; see EXA_LOCK_CLASS_REGISTRY. */
static void
service_locktag(LOCKTAG *tag, uint32 key)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, EXA_LOCK_CLASS_REGISTRY, key, 2);
}

typedef struct LockId
{
	const char *id;
	uint32		key;
} LockId;

static int
lockid_cmp(const void *a, const void *b)
{
	const LockId *x = a;
	const LockId *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return strcmp(x->id, y->id);
}

static DeliveryService *
find_service(DeliveryBatch *batch, const char *id)
{
	int			i;

	for (i = 0; i < batch->nservices; i++)
	{
		if (strcmp(batch->services[i].service_id, id) == 0)
			return &batch->services[i];
	}
	return NULL;
}

/*
 * Lock each service id of ids (a List of C strings, distinct), then read
 * the current state of those locked into batch->services: live, or absent
 * or expired (to be deleted).  The read is a statement of its own after the
 * locks, so in READ COMMITTED it sees every registry change committed before
 * the lock was granted; the lock is held until the push of what was read is
 * done, so two deliverers' pushes of one service happen in the order of
 * their reads and the last push carries the latest state: a deliverer that
 * read "live" can no longer SET after another one has read "absent" and
 * DELeted.  Locks are taken in key order (no deadlock between two
 * flush_outbox callers).  In DELIVERY_LOCK_SESSION_NOWAIT mode (the worker,
 * which must never wait for a user transaction) a busy id is deferred: not
 * read, not pushed, its rows left for later.
 */
static void
load_services(DeliveryBatch *batch, List *ids, DeliveryLockMode mode,
			  MemoryContext mcxt)
{
	int			nids = list_length(ids);
	LockId	   *order;
	bool	   *got;
	List	   *locked = NIL;
	ListCell   *lc;
	int			i;
	uint64		n;

	/* One more than the ids: exa_delivery_add_self may add the worker's own. */
	batch->maxservices = nids + 1;
	batch->services = MemoryContextAllocZero(mcxt,
											 sizeof(DeliveryService) * batch->maxservices);
	batch->nservices = 0;
	if (nids == 0)
		return;

	order = palloc(sizeof(LockId) * nids);
	got = palloc0(sizeof(bool) * nids);
	i = 0;
	foreach(lc, ids)
	{
		order[i].id = (const char *) lfirst(lc);
		order[i].key = hash_bytes((const unsigned char *) order[i].id,
								  strlen(order[i].id));
		i++;
	}
	qsort(order, nids, sizeof(LockId), lockid_cmp);
	for (i = 0; i < nids; i++)
	{
		LOCKTAG		tag;
		bool		session = (mode == DELIVERY_LOCK_SESSION_NOWAIT);

		service_locktag(&tag, order[i].key);
		got[i] = (LockAcquire(&tag, ExclusiveLock, session, session) !=
				  LOCKACQUIRE_NOT_AVAIL);
		if (got[i])
			locked = lappend(locked, (char *) order[i].id);
	}

	if (locked != NIL)
	{
		Datum		values[1];

		values[0] = exa_text_array(locked);
		n = exa_exec(&stmt_services, values, NULL, 0);
		services_from_spi(batch, n, mcxt);
	}

	for (i = 0; i < nids; i++)
	{
		DeliveryService *svc = got[i] ? find_service(batch, order[i].id) : NULL;

		if (svc == NULL)
		{
			/* No row (deregistered: its keys are deleted), or deferred. */
			svc = batch_next_service(batch);
			svc->service_id = MemoryContextStrdup(mcxt, order[i].id);
			svc->live = false;
			svc->deferred = !got[i];
		}
		svc->locked = got[i];
		svc->session_lock = got[i] && mode == DELIVERY_LOCK_SESSION_NOWAIT;
		svc->lockkey = order[i].key;
	}
	pfree(order);
	pfree(got);
	list_free(locked);
}

void
exa_delivery_load_services(DeliveryBatch *batch, DeliveryLockMode mode,
						   MemoryContext mcxt)
{
	List	   *ids = NIL;
	int			i;

	for (i = 0; i < batch->nrows; i++)
	{
		DeliveryRow *row = &batch->rows[i];
		ListCell   *lc;
		bool		seen = false;

		if (!row->registry || row->service_id == NULL)
			continue;
		foreach(lc, ids)
		{
			if (strcmp((char *) lfirst(lc), row->service_id) == 0)
			{
				seen = true;
				break;
			}
		}
		if (!seen)
			ids = lappend(ids, row->service_id);
	}
	load_services(batch, ids, mode, mcxt);
	list_free(ids);
}

/*
 * Every live registration, for the worker's periodic re-application, read
 * under the registry locks like a delivery (a service whose lock is busy is
 * being delivered by someone else, and is skipped this time).
 */
DeliveryBatch *
exa_delivery_live_services(MemoryContext mcxt)
{
	uint64		n;
	uint64		i;
	List	   *ids = NIL;
	DeliveryBatch *batch;

	n = exa_exec(&stmt_live_ids, NULL, NULL, 0);
	for (i = 0; i < n; i++)
		ids = lappend(ids, exa_col_cstring(i, 1));
	batch = MemoryContextAllocZero(mcxt, sizeof(DeliveryBatch));
	load_services(batch, ids, DELIVERY_LOCK_SESSION_NOWAIT, mcxt);
	return batch;
}

/* Release the session-level registry locks of a batch (after its push). */
void
exa_delivery_unlock_services(DeliveryBatch *batch)
{
	int			i;

	for (i = 0; i < batch->nservices; i++)
	{
		DeliveryService *svc = &batch->services[i];
		LOCKTAG		tag;

		if (!svc->locked || !svc->session_lock)
			continue;
		service_locktag(&tag, svc->lockkey);
		LockRelease(&tag, ExclusiveLock, true);
		svc->locked = false;
	}
}

/*
 * Add the database's own registration (exchange_adapter.service_id and
 * friends) to a batch made by exa_delivery_live_services.  Its ttl is three
 * heartbeat intervals: it stays while the worker lives.
 */
void
exa_delivery_add_self(DeliveryBatch *batch, const char *database,
					  TimestampTz started_at, MemoryContext mcxt)
{
	Datum		values[6];
	DeliveryService *svc;
	MemoryContext old;

	if (exa_service_id == NULL || exa_service_id[0] == '\0')
		return;

	values[0] = CStringGetTextDatum(exa_service_name && exa_service_name[0] ?
									exa_service_name : EXA_EXTENSION_NAME);
	values[1] = CStringGetTextDatum(exa_service_id);
	values[2] = CStringGetTextDatum(exa_service_address ? exa_service_address : "");
	values[3] = Int32GetDatum(exa_service_port > 0 ? exa_service_port : PostPortNumber);
	values[4] = CStringGetTextDatum(database);
	values[5] = TimestampTzGetDatum(started_at);
	if (exa_exec(&stmt_self, values, NULL, 0) != 1)
		return;

	old = MemoryContextSwitchTo(mcxt);
	svc = batch_next_service(batch);
	svc->service_id = pstrdup(exa_service_id);
	svc->json = exa_col_cstring(0, 1);
	svc->heartbeat = exa_col_cstring(0, 2);
	svc->px = (int64) exa_heartbeat_interval * 3000;
	svc->live = true;
	MemoryContextSwitchTo(old);
}

/* Ids of the rows whose "delivered" is want, as an int8[]; NULL if none. */
static Datum
batch_ids(DeliveryBatch *batch, bool want, int *nids)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(batch->nrows, 1));
	int			i;

	*nids = 0;
	for (i = 0; i < batch->nrows; i++)
	{
		if (batch->rows[i].delivered == want)
			ids[(*nids)++] = Int64GetDatum(batch->rows[i].id);
	}
	return PointerGetDatum(construct_array(ids, *nids, INT8OID,
										   sizeof(int64), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

void
exa_delivery_delete_delivered(DeliveryBatch *batch)
{
	Datum		values[1];
	int			nids;

	values[0] = batch_ids(batch, true, &nids);
	if (nids > 0)
		exa_exec(&stmt_delete, values, NULL, 0);
}

void
exa_delivery_delete_ids(const int64 *ids, int nids)
{
	Datum	   *elems;
	Datum		values[1];
	int			i;

	if (nids == 0)
		return;
	elems = palloc(sizeof(Datum) * nids);
	for (i = 0; i < nids; i++)
		elems[i] = Int64GetDatum(ids[i]);
	values[0] = PointerGetDatum(construct_array(elems, nids, INT8OID,
												sizeof(int64), FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	(void) exec_outbox_by_id(&stmt_delete, values);
}

/* Give back the claims of the rows not delivered (worker). */
void
exa_delivery_release_undelivered(DeliveryBatch *batch)
{
	Datum		values[1];
	int			nids;

	values[0] = batch_ids(batch, false, &nids);
	if (nids > 0)
		(void) exec_outbox_by_id(&stmt_release, values);
}

int64
exa_delivery_release_all_claims(void)
{
	return (int64) exec_outbox_by_id(&stmt_release_all, NULL);
}

/* ------------------------------------------------------------------------
 * Redis side
 * ------------------------------------------------------------------------
 */

void
exa_delivery_connected(void)
{
	/* use_del stays: a refused UNLINK is learned once per process. */
	refusal.publish_refused = false;
	refusal.trades_refused = false;
	refusal.multi_refused = false;
	refusal.ping_refused = false;
}

const char *
exa_delivery_refusals(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (refusal.use_del)
		appendStringInfoString(&buf, "UNLINK refused, using DEL");
	if (refusal.publish_refused)
		appendStringInfo(&buf, "%sPUBLISH refused, no invalidation messages",
						 buf.len ? "; " : "");
	if (refusal.trades_refused)
		appendStringInfo(&buf, "%sPUBLISH on %strades:* refused, no trade messages",
						 buf.len ? "; " : "", exa_key_prefix);
	if (refusal.ping_refused)
		appendStringInfo(&buf, "%sPING refused, using EXISTS",
						 buf.len ? "; " : "");
	if (refusal.multi_refused)
		appendStringInfo(&buf, "%sMULTI refused, registrations written without MULTI/EXEC",
						 buf.len ? "; " : "");
	if (refusal.registry_refused)
		appendStringInfo(&buf, "%sregistrations refused (%s), retried with back-off",
						 buf.len ? "; " : "", refusal.registry_error);
	strlcpy(refusal_text, buf.data, sizeof(refusal_text));
	pfree(buf.data);
	return refusal_text;
}

/* Commands whose refusal has a fallback (report_refusal). */
typedef enum RefusedCommand
{
	REFUSED_UNLINK,
	REFUSED_MULTI,
	REFUSED_PUBLISH,
	REFUSED_PUBLISH_TRADES,
	REFUSED_PING
} RefusedCommand;

/*
 * The error code that opens a Redis error reply ("NOPERM", "ERR", ...), at
 * most len - 1 bytes of it: like a SQLSTATE, the part of the reply a reader
 * branches on.  The whole reply is server text (errdetail_internal).
 */
static void
reply_error_code(const redisReply *reply, char *code, size_t len)
{
	const char *s = reply && reply->str ? reply->str : "error";
	size_t		n = strcspn(s, " ");

	if (n >= len)
		n = len - 1;
	memcpy(code, s, n);
	code[n] = '\0';
}

/*
 * Report a refusal that will not heal, once per process: a WARNING (the
 * server log for the worker) and the worker's last_error.  SQLSTATE LX011:
 * Redis refusing a command is not a PostgreSQL privilege.
 */
static void
report_refusal(RefusedCommand which, const redisReply *reply)
{
	static const struct
	{
		const char *command;
		const char *fallback;	/* for the status, in English */
	}			what[] = {
		[REFUSED_UNLINK] = {"UNLINK", "deletes keys with DEL instead"},
		[REFUSED_MULTI] = {"MULTI", "writes registrations with two SETs, not atomically"},
		[REFUSED_PUBLISH] = {"PUBLISH", "deletes keys but publishes no invalidation messages"},
		[REFUSED_PUBLISH_TRADES] = {"PUBLISH of a trade message", "publishes no trade messages until it reconnects"},
		[REFUSED_PING] = {"PING", "checks the connection with EXISTS instead"},
	};
	bool	   *reported;
	const char *text = reply && reply->str ? reply->str : "error";
	char		code[32];
	char		msg[EXA_STATUS_ERROR_LEN];

	switch (which)
	{
		case REFUSED_UNLINK:
			reported = &refusal.reported_unlink;
			break;
		case REFUSED_MULTI:
			reported = &refusal.reported_multi;
			break;
		case REFUSED_PUBLISH:
			reported = &refusal.reported_publish;
			break;
		case REFUSED_PUBLISH_TRADES:
			reported = &refusal.reported_trades;
			break;
		case REFUSED_PING:
			reported = &refusal.reported_ping;
			break;
		default:
			elog(ERROR, "unrecognized refused command %d", (int) which);
			return;				/* keep compiler quiet */
	}
	if (*reported)
		return;
	*reported = true;
	snprintf(msg, sizeof(msg), "Redis refused %s: %s; %s",
			 what[which].command, text, what[which].fallback);
	exa_status_set_error(msg);

	reply_error_code(reply, code, sizeof(code));
	switch (which)
	{
		case REFUSED_UNLINK:
			ereport(WARNING,
					(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
					 errmsg("Redis refused %s: %s", "UNLINK", code),
					 errdetail_internal("%s", text),
					 errhint("Allow UNLINK (+@keyspace) to the Redis user. Until then exchange_adapter deletes keys with DEL; this is reported once.")));
			break;
		case REFUSED_MULTI:
			ereport(WARNING,
					(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
					 errmsg("Redis refused %s: %s", "MULTI", code),
					 errdetail_internal("%s", text),
					 errhint("Allow +multi +exec to the Redis user (see docker/redis/users.acl). Until then exchange_adapter writes registrations with two SETs, not atomically; this is reported once.")));
			break;
		case REFUSED_PUBLISH:
			ereport(WARNING,
					(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
					 errmsg("Redis refused %s: %s", "PUBLISH", code),
					 errdetail_internal("%s", text),
					 errhint("Allow +publish and the channel (&exchange:*) to the Redis user, or set \"%s\" to ''. Until then exchange_adapter deletes keys but publishes no invalidation messages; this is reported once.",
							 "exchange_adapter.invalidation_channel")));
			break;
		case REFUSED_PUBLISH_TRADES:
			ereport(WARNING,
					(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
					 errmsg("Redis refused %s: %s", "PUBLISH of a trade message", code),
					 errdetail_internal("%s", text),
					 errhint("Allow +publish and the channels %strades:* (&%s*) to the Redis user. Until it reconnects exchange_adapter publishes no trade messages (subscribers re-read exchange.trades); this is reported once.",
							 exa_key_prefix, exa_key_prefix)));
			break;
		case REFUSED_PING:
			ereport(WARNING,
					(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
					 errmsg("Redis refused %s: %s", "PING", code),
					 errdetail_internal("%s", text),
					 errhint("Allow +ping to the Redis user (see docker/redis/users.acl). Until then exchange_adapter checks the connection with EXISTS; this is reported once.")));
			break;
	}
}

static void
set_err(char *errbuf, size_t errlen, const char *what, const redisReply *reply)
{
	snprintf(errbuf, errlen, "Redis refused %s: %s", what,
			 reply == NULL ? "no reply" :
			 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
}

static int
cstring_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sort and de-duplicate an array of C strings in place; returns new length. */
static int
unique_strings(char **strs, int n)
{
	int			i,
				j;

	if (n <= 1)
		return n;
	qsort(strs, n, sizeof(char *), cstring_cmp);
	for (i = 1, j = 1; i < n; i++)
	{
		if (strcmp(strs[i], strs[j - 1]) != 0)
			strs[j++] = strs[i];
	}
	return j;
}

/* Append UNLINK (or DEL) commands for keys, at most 1,000 keys each. */
static int
append_deletes(RedisClient *client, char **keys, int nkeys)
{
	const char *cmd = refusal.use_del ? "DEL" : "UNLINK";
	int			ncmds = 0;
	int			start;

	for (start = 0; start < nkeys; start += DELIVERY_KEYS_PER_COMMAND)
	{
		int			n = Min(DELIVERY_KEYS_PER_COMMAND, nkeys - start);
		const char **argv = palloc(sizeof(char *) * (n + 1));
		size_t	   *argvlen = palloc(sizeof(size_t) * (n + 1));
		int			i;

		argv[0] = cmd;
		argvlen[0] = strlen(cmd);
		for (i = 0; i < n; i++)
		{
			argv[i + 1] = keys[start + i];
			argvlen[i + 1] = strlen(keys[start + i]);
		}
		exa_redis_append(client, n + 1, argv, argvlen);
		pfree(argv);
		pfree(argvlen);
		ncmds++;
	}
	return ncmds;
}

/* The keys of one transaction, for its PUBLISH. */
typedef struct XidKeys
{
	char		xid[24];		/* hash key: text of the xid8 */
	int			order;			/* first appearance in the batch */
	int			nkeys;
	int			maxkeys;
	char	  **keys;
} XidKeys;

static int
xidkeys_order_cmp(const void *a, const void *b)
{
	return (*(XidKeys *const *) a)->order - (*(XidKeys *const *) b)->order;
}

static void
append_publish_one(RedisClient *client, const char *payload, int len)
{
	const char *argv[3];
	size_t		argvlen[3];

	argv[0] = "PUBLISH";
	argvlen[0] = 7;
	argv[1] = exa_invalidation_channel;
	argvlen[1] = strlen(exa_invalidation_channel);
	argv[2] = payload;
	argvlen[2] = len;
	exa_redis_append(client, 3, argv, argvlen);
}

/*
 * Append one PUBLISH per distinct xid, in order of first appearance, with
 * payload {"v":1,"xid":"<xid8>","keys":[...]} (full key names), split into
 * several messages when it would exceed DELIVERY_PUBLISH_MAX bytes.
 */
static int
append_publishes(RedisClient *client, DeliveryBatch *batch)
{
	HASHCTL		ctl;
	HTAB	   *htab;
	HASH_SEQ_STATUS seq;
	XidKeys    *entry;
	XidKeys   **ordered;
	int			nxids = 0;
	int			ncmds = 0;
	int			i;
	size_t		plen = strlen(exa_key_prefix);
	StringInfoData buf;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(((XidKeys *) 0)->xid);
	ctl.entrysize = sizeof(XidKeys);
	ctl.hcxt = CurrentMemoryContext;
	htab = hash_create("exchange_adapter publish", 64, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	for (i = 0; i < batch->nrows; i++)
	{
		DeliveryRow *row = &batch->rows[i];
		char		key[24];
		bool		found;
		int			k;

		if (row->registry || row->nkeys == 0 || row->xid == NULL)
			continue;
		memset(key, 0, sizeof(key));
		strlcpy(key, row->xid, sizeof(key));
		entry = hash_search(htab, key, HASH_ENTER, &found);
		if (!found)
		{
			entry->order = nxids++;
			entry->nkeys = 0;
			entry->maxkeys = Max(8, row->nkeys);
			entry->keys = palloc(sizeof(char *) * entry->maxkeys);
		}
		for (k = 0; k < row->nkeys; k++)
		{
			if (entry->nkeys >= entry->maxkeys)
			{
				entry->maxkeys *= 2;
				entry->keys = repalloc(entry->keys,
									   sizeof(char *) * entry->maxkeys);
			}
			entry->keys[entry->nkeys++] = row->keys[k];
		}
	}
	if (nxids == 0)
	{
		hash_destroy(htab);
		return 0;
	}

	ordered = palloc(sizeof(XidKeys *) * nxids);
	hash_seq_init(&seq, htab);
	i = 0;
	while ((entry = hash_seq_search(&seq)) != NULL)
		ordered[i++] = entry;
	qsort(ordered, nxids, sizeof(XidKeys *), xidkeys_order_cmp);

	initStringInfo(&buf);
	for (i = 0; i < nxids; i++)
	{
		XidKeys    *x = ordered[i];
		int			n = unique_strings(x->keys, x->nkeys);
		int			k;
		int			inmsg = 0;
		char	   *head = psprintf("{\"v\":1,\"xid\":\"%s\",\"keys\":[", x->xid);

		resetStringInfo(&buf);
		appendStringInfoString(&buf, head);
		for (k = 0; k < n; k++)
		{
			StringInfoData one;

			initStringInfo(&one);
			{
				char	   *full = palloc(plen + strlen(x->keys[k]) + 1);

				memcpy(full, exa_key_prefix, plen);
				strcpy(full + plen, x->keys[k]);
				escape_json(&one, full);
				pfree(full);
			}
			/* +2 for "]}" and +1 for the comma. */
			if (inmsg > 0 && buf.len + one.len + 3 > DELIVERY_PUBLISH_MAX)
			{
				appendStringInfoString(&buf, "]}");
				append_publish_one(client, buf.data, buf.len);
				ncmds++;
				resetStringInfo(&buf);
				appendStringInfoString(&buf, head);
				inmsg = 0;
			}
			if (inmsg > 0)
				appendStringInfoChar(&buf, ',');
			appendBinaryStringInfo(&buf, one.data, one.len);
			inmsg++;
			pfree(one.data);
		}
		appendStringInfoString(&buf, "]}");
		append_publish_one(client, buf.data, buf.len);
		ncmds++;
		pfree(head);
	}
	pfree(buf.data);
	pfree(ordered);
	hash_destroy(htab);
	return ncmds;
}

static char *
prefixed(const char *kind, const char *id)
{
	return psprintf("%s%s:%s", exa_key_prefix, kind, id);
}

/* Commands per service, to walk the replies. */
typedef enum
{
	SVC_MULTI,					/* MULTI SET SET EXEC */
	SVC_SETS,					/* SET SET */
	SVC_DELETE					/* UNLINK/DEL service heartbeat */
} SvcShape;

static SvcShape
append_service(RedisClient *client, DeliveryService *svc)
{
	char	   *skey = prefixed("service", svc->service_id);
	char	   *hkey = prefixed("heartbeat", svc->service_id);
	SvcShape	shape;

	if (svc->live)
	{
		char		px[32];

		snprintf(px, sizeof(px), INT64_FORMAT, svc->px);
		shape = refusal.multi_refused ? SVC_SETS : SVC_MULTI;
		if (shape == SVC_MULTI)
			exa_redis_appendv(client, 1, "MULTI");
		exa_redis_appendv(client, 5, "SET", skey, svc->json, "PX", px);
		exa_redis_appendv(client, 5, "SET", hkey, svc->heartbeat, "PX", px);
		if (shape == SVC_MULTI)
			exa_redis_appendv(client, 1, "EXEC");
	}
	else
	{
		exa_redis_appendv(client, 3, refusal.use_del ? "DEL" : "UNLINK", skey, hkey);
		shape = SVC_DELETE;
	}
	pfree(skey);
	pfree(hkey);
	return shape;
}

/*
 * Interpret the replies of one service; returns false (errbuf set) on a
 * refusal, sets *retry when UNLINK must be replaced by DEL.
 */
static bool
check_service(RedisClient *client, SvcShape shape, int *pos, bool *retry,
			  char *errbuf, size_t errlen)
{
	redisReply *r;

	switch (shape)
	{
		case SVC_DELETE:
			r = exa_redis_reply(client, (*pos)++);
			if (exa_redis_reply_is_error(r))
			{
				if (!refusal.use_del &&
					(exa_redis_reply_is_noperm(r) || exa_redis_reply_is_unknown_command(r)))
				{
					report_refusal(REFUSED_UNLINK, r);
					refusal.use_del = true;
					*retry = true;
					return true;
				}
				set_err(errbuf, errlen, "DEL of a registration", r);
				return false;
			}
			return true;

		case SVC_SETS:
			r = exa_redis_reply(client, (*pos)++);
			if (exa_redis_reply_is_error(r))
			{
				set_err(errbuf, errlen, "SET of a registration", r);
				(*pos)++;
				return false;
			}
			r = exa_redis_reply(client, (*pos)++);
			if (exa_redis_reply_is_error(r))
			{
				set_err(errbuf, errlen, "SET of a heartbeat", r);
				return false;
			}
			return true;

		case SVC_MULTI:
			r = exa_redis_reply(client, (*pos)++);
			if (exa_redis_reply_is_error(r))
			{
				redisReply *s1 = exa_redis_reply(client, (*pos)++);
				redisReply *s2 = exa_redis_reply(client, (*pos)++);

				(*pos)++;		/* EXEC: "EXEC without MULTI" or NOPERM */
				if (!exa_redis_reply_is_noperm(r))
				{
					set_err(errbuf, errlen, "MULTI", r);
					return false;
				}
				report_refusal(REFUSED_MULTI, r);
				refusal.multi_refused = true;
				/* Without MULTI the SETs ran at once: their replies count. */
				if (exa_redis_reply_is_error(s1))
				{
					set_err(errbuf, errlen, "SET of a registration", s1);
					return false;
				}
				if (exa_redis_reply_is_error(s2))
				{
					set_err(errbuf, errlen, "SET of a heartbeat", s2);
					return false;
				}
				return true;
			}
			{
				/* QUEUED, QUEUED; or a SET refused at once (OOM). */
				redisReply *q1 = exa_redis_reply(client, (*pos)++);
				redisReply *q2 = exa_redis_reply(client, (*pos)++);

				if (exa_redis_reply_is_error(q1) || exa_redis_reply_is_error(q2))
				{
					(*pos)++;	/* EXEC: EXECABORT */
					set_err(errbuf, errlen,
							exa_redis_reply_is_error(q1) ? "SET of a registration" :
							"SET of a heartbeat",
							exa_redis_reply_is_error(q1) ? q1 : q2);
					return false;
				}
			}
			r = exa_redis_reply(client, (*pos)++);
			if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
				exa_redis_reply_is_error(r->element[0]) ||
				exa_redis_reply_is_error(r->element[1]))
			{
				set_err(errbuf, errlen, "EXEC of a registration",
						r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ?
						(exa_redis_reply_is_error(r->element[0]) ? r->element[0] : r->element[1]) : r);
				return false;
			}
			return true;
	}
	return true;
}

/*
 * The cache part, first step: delete keys and read every reply before
 * anything announces them.  A refused UNLINK is learned here (reported
 * once) and the same keys are deleted again with DEL at once, so the
 * PUBLISH sent afterwards always follows the deletion.
 */
static DeliveryResult
push_deletes(RedisClient *client, char **keys, int nkeys,
			 char *errbuf, size_t errlen)
{
	for (;;)
	{
		int			ndel = append_deletes(client, keys, nkeys);
		bool		retry = false;
		int			i;

		if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
		{
			strlcpy(errbuf, client->errmsg, errlen);
			return DELIVERY_FAILED;
		}
		for (i = 0; i < ndel; i++)
		{
			redisReply *r = exa_redis_reply(client, i);

			if (!exa_redis_reply_is_error(r))
				continue;
			if (!refusal.use_del &&
				(exa_redis_reply_is_noperm(r) || exa_redis_reply_is_unknown_command(r)))
			{
				report_refusal(REFUSED_UNLINK, r);
				refusal.use_del = true;
				retry = true;
				break;
			}
			set_err(errbuf, errlen, refusal.use_del ? "DEL" : "UNLINK", r);
			exa_redis_clear_replies(client);
			return DELIVERY_REFUSED;
		}
		exa_redis_clear_replies(client);
		if (!retry)
			return DELIVERY_OK;
	}
}

/*
 * Append the trade feed's PUBLISHes of the batch's cache rows: rows in id
 * order (the batch is sorted), each row's executions in order.
 */
static int
append_trade_publishes(RedisClient *client, DeliveryBatch *batch)
{
	int			ncmds = 0;
	int			i;

	for (i = 0; i < batch->nrows; i++)
	{
		DeliveryRow *row = &batch->rows[i];
		int			k;

		if (row->registry)
			continue;
		for (k = 0; k < row->ntrades; k++)
		{
			const char *argv[3];
			size_t		argvlen[3];

			argv[0] = "PUBLISH";
			argvlen[0] = 7;
			argv[1] = row->trade_channels[k];
			argvlen[1] = strlen(row->trade_channels[k]);
			argv[2] = row->trade_payloads[k];
			argvlen[2] = strlen(row->trade_payloads[k]);
			exa_redis_append(client, 3, argv, argvlen);
			ncmds++;
		}
	}
	return ncmds;
}

/* Check the replies of the trade PUBLISHes at pos..pos+ntrades-1. */
static DeliveryResult
check_trade_publishes(RedisClient *client, int pos, int ntrades,
					  char *errbuf, size_t errlen)
{
	int			i;

	for (i = 0; i < ntrades; i++)
	{
		redisReply *r = exa_redis_reply(client, pos + i);

		if (!exa_redis_reply_is_error(r))
			continue;
		if (exa_redis_reply_is_noperm(r))
		{
			report_refusal(REFUSED_PUBLISH_TRADES, r);
			refusal.trades_refused = true;
			return DELIVERY_OK;
		}
		set_err(errbuf, errlen, "PUBLISH of a trade message", r);
		return DELIVERY_REFUSED;
	}
	return DELIVERY_OK;
}

/* Check the replies of the PUBLISHes at pos..pos+npub-1. */
static DeliveryResult
check_publishes(RedisClient *client, int pos, int npub,
				char *errbuf, size_t errlen)
{
	int			i;

	for (i = 0; i < npub; i++)
	{
		redisReply *r = exa_redis_reply(client, pos + i);

		if (!exa_redis_reply_is_error(r))
			continue;
		if (exa_redis_reply_is_noperm(r))
		{
			report_refusal(REFUSED_PUBLISH, r);
			refusal.publish_refused = true;
			return DELIVERY_OK;
		}
		set_err(errbuf, errlen, "PUBLISH", r);
		return DELIVERY_REFUSED;
	}
	return DELIVERY_OK;
}

/*
 * Append the registry commands of the services not deferred (and, when
 * only_retry, only of those whose UNLINK must be sent again as DEL).
 * Returns how many services were appended; shapes[i] is set for each.
 */
static int
append_services(RedisClient *client, DeliveryBatch *batch, SvcShape *shapes,
				bool only_retry)
{
	int			n = 0;
	int			i;

	for (i = 0; i < batch->nservices; i++)
	{
		DeliveryService *svc = &batch->services[i];

		if (svc->deferred || (only_retry && !svc->retry))
			continue;
		shapes[i] = append_service(client, svc);
		n++;
	}
	return n;
}

/* Check the registry replies from pos; marks failed and retry services. */
static bool
check_services(RedisClient *client, DeliveryBatch *batch, SvcShape *shapes,
			   bool only_retry, int pos, char *errbuf, size_t errlen)
{
	bool		any_retry = false;
	int			i;

	for (i = 0; i < batch->nservices; i++)
	{
		DeliveryService *svc = &batch->services[i];
		bool		retry = false;
		char		err[256];

		if (svc->deferred || (only_retry && !svc->retry))
			continue;
		svc->retry = false;
		if (!check_service(client, shapes[i], &pos, &retry, err, sizeof(err)))
		{
			svc->failed = true;
			if (errbuf[0] == '\0')
				strlcpy(errbuf, err, errlen);
		}
		else if (retry)
		{
			svc->retry = true;
			any_retry = true;
		}
	}
	return any_retry;
}

/* A registry push was refused: report it once per episode. */
static void
registry_refused(const char *error)
{
	refusal.registry_refused = true;
	strlcpy(refusal.registry_error, error, sizeof(refusal.registry_error));
	if (refusal.reported_registry)
		return;
	refusal.reported_registry = true;
	ereport(WARNING,
			(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
			 errmsg("Redis refused a registration"),
			 errdetail_internal("%s", error),
			 errhint("Cache invalidations are delivered regardless; registrations are retried with back-off. "
					 "If Redis is out of memory, free memory or raise maxmemory.")));
}

static void
registry_accepted(void)
{
	if (refusal.registry_refused || refusal.reported_registry)
		ereport(LOG,
				(errmsg("Redis accepts registrations again")));
	refusal.registry_refused = false;
	refusal.reported_registry = false;
	refusal.registry_error[0] = '\0';
}

/*
 * The keys of the batch's cache rows, prefixed, sorted and unique; every
 * row starts undelivered.
 */
static char **
batch_cache_keys(DeliveryBatch *batch, int *nkeys)
{
	char	  **keys;
	int			maxkeys = 0;
	size_t		plen = strlen(exa_key_prefix);
	int			i;

	*nkeys = 0;
	for (i = 0; i < batch->nrows; i++)
		maxkeys += batch->rows[i].registry ? 0 : batch->rows[i].nkeys;
	keys = palloc(sizeof(char *) * Max(maxkeys, 1));
	for (i = 0; i < batch->nrows; i++)
	{
		DeliveryRow *row = &batch->rows[i];
		int			k;

		row->delivered = false;
		if (row->registry)
			continue;
		for (k = 0; k < row->nkeys; k++)
		{
			char	   *full = palloc(plen + strlen(row->keys[k]) + 1);

			memcpy(full, exa_key_prefix, plen);
			strcpy(full + plen, row->keys[k]);
			keys[(*nkeys)++] = full;
		}
	}
	*nkeys = unique_strings(keys, *nkeys);
	return keys;
}

/* The connection failed during the registry part. */
static void
registry_failed(DeliveryBatch *batch, const char *error)
{
	batch->registry_result = DELIVERY_FAILED;
	strlcpy(batch->registry_error, error, sizeof(batch->registry_error));
}

/*
 * Step 2 of exa_delivery_push: the PUBLISHes announcing the deletions (when the
 * cache part is still whole), then the trade feed's PUBLISHes (each after
 * its transaction's invalidation message, since every invalidation of the
 * batch comes first), then the registry commands, in one pipeline;
 * a refused UNLINK of a registration is sent again as DEL.  Returns false
 * when the connection failed (*cache and the registry result say so).
 */
static bool
push_publishes_and_services(RedisClient *client, DeliveryBatch *batch,
							DeliveryResult *cache, char *errbuf, size_t errlen)
{
	int			npub = 0;
	int			ntrades = 0;
	int			nsvc = 0;
	SvcShape   *shapes = NULL;

	if (*cache == DELIVERY_OK && exa_invalidation_channel != NULL &&
		exa_invalidation_channel[0] != '\0' && !refusal.publish_refused)
		npub = append_publishes(client, batch);
	if (*cache == DELIVERY_OK && !refusal.trades_refused)
		ntrades = append_trade_publishes(client, batch);
	if (batch->nservices > 0)
	{
		shapes = palloc(sizeof(SvcShape) * batch->nservices);
		nsvc = append_services(client, batch, shapes, false);
	}
	if (npub + ntrades + nsvc == 0)
		return true;

	if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
	{
		/* Without PUBLISHes the cache part was complete after step 1. */
		if (npub + ntrades > 0)
		{
			*cache = DELIVERY_FAILED;
			strlcpy(errbuf, client->errmsg, errlen);
		}
		registry_failed(batch, client->errmsg);
		return false;
	}
	if (*cache == DELIVERY_OK)
		*cache = check_publishes(client, 0, npub, errbuf, errlen);
	if (*cache == DELIVERY_OK)
		*cache = check_trade_publishes(client, npub, ntrades, errbuf, errlen);
	if (nsvc > 0 &&
		check_services(client, batch, shapes, false, npub + ntrades,
					   batch->registry_error,
					   sizeof(batch->registry_error)))
	{
		/* UNLINK of a registration refused: once more, with DEL. */
		exa_redis_clear_replies(client);
		(void) append_services(client, batch, shapes, true);
		if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
		{
			registry_failed(batch, client->errmsg);
			return false;
		}
		(void) check_services(client, batch, shapes, true, 0,
							  batch->registry_error,
							  sizeof(batch->registry_error));
	}
	exa_redis_clear_replies(client);
	return true;
}

/*
 * The registry part reached Redis: refused if any service's commands were,
 * and a refusal episode ends when a registration was written.
 */
static void
settle_registry(DeliveryBatch *batch)
{
	DeliveryResult registry = DELIVERY_OK;
	bool		wrote = false;
	int			i;

	for (i = 0; i < batch->nservices; i++)
	{
		DeliveryService *svc = &batch->services[i];

		if (svc->failed)
			registry = DELIVERY_REFUSED;
		else if (!svc->deferred && svc->live)
			wrote = true;
	}
	batch->registry_result = registry;
	if (registry == DELIVERY_REFUSED)
		registry_refused(batch->registry_error);
	else if (wrote)
		registry_accepted();	/* a SET went through: the episode ends */
}

/* Which rows may be deleted, from the outcome of each part. */
static void
mark_delivered(DeliveryBatch *batch, DeliveryResult cache)
{
	int			i;

	for (i = 0; i < batch->nrows; i++)
	{
		DeliveryRow *row = &batch->rows[i];

		if (!row->registry)
			row->delivered = (cache == DELIVERY_OK);
		else if (batch->registry_result != DELIVERY_FAILED)
		{
			DeliveryService *svc = row->service_id ?
				find_service(batch, row->service_id) : NULL;

			/* A row naming no service has nothing to push. */
			row->delivered = row->service_id == NULL ||
				(svc != NULL && !svc->deferred && !svc->failed);
		}
	}
}

DeliveryResult
exa_delivery_push(RedisClient *client, DeliveryBatch *batch,
				  char *errbuf, size_t errlen)
{
	char	  **keys;
	int			nkeys;
	int			i;
	DeliveryResult cache = DELIVERY_OK;

	errbuf[0] = '\0';
	batch->registry_error[0] = '\0';
	batch->nkeys = 0;
	keys = batch_cache_keys(batch, &nkeys);
	for (i = 0; i < batch->nservices; i++)
		batch->services[i].failed = batch->services[i].retry = false;

	/* 1. Deletions, every reply read. */
	if (nkeys > 0)
		cache = push_deletes(client, keys, nkeys, errbuf, errlen);
	if (cache == DELIVERY_FAILED)
	{
		registry_failed(batch, errbuf);
		return cache;
	}

	/* 2. The PUBLISHes announcing them, then the registry, one pipeline. */
	if (push_publishes_and_services(client, batch, &cache, errbuf, errlen))
		settle_registry(batch);

	if (cache == DELIVERY_OK)
		batch->nkeys = nkeys;
	mark_delivered(batch, cache);
	return cache;
}

DeliveryResult
exa_delivery_ping(RedisClient *client, char *errbuf, size_t errlen)
{
	redisReply *r;
	char	   *probe;

	errbuf[0] = '\0';
	if (!refusal.ping_refused)
	{
		exa_redis_appendv(client, 1, "PING");
		if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
		{
			strlcpy(errbuf, client->errmsg, errlen);
			return DELIVERY_FAILED;
		}
		r = exa_redis_reply(client, 0);
		if (!exa_redis_reply_is_error(r))
		{
			exa_redis_clear_replies(client);
			return DELIVERY_OK;
		}
		if (!exa_redis_reply_is_noperm(r))
		{
			set_err(errbuf, errlen, "PING", r);
			exa_redis_clear_replies(client);
			return DELIVERY_REFUSED;
		}
		report_refusal(REFUSED_PING, r);
		refusal.ping_refused = true;
		exa_redis_clear_replies(client);
	}

	/* Fallback: a read in our own key space. */
	probe = psprintf("%sadapter:ping", exa_key_prefix);
	exa_redis_appendv(client, 2, "EXISTS", probe);
	pfree(probe);
	if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
	{
		strlcpy(errbuf, client->errmsg, errlen);
		return DELIVERY_FAILED;
	}
	r = exa_redis_reply(client, 0);
	if (exa_redis_reply_is_error(r))
	{
		set_err(errbuf, errlen, "EXISTS", r);
		exa_redis_clear_replies(client);
		return DELIVERY_REFUSED;
	}
	exa_redis_clear_replies(client);
	return DELIVERY_OK;
}

/*
 * Delete every key under <prefix>cache: with SCAN + UNLINK (never KEYS),
 * one round trip per SCAN page.  The prefix holds no glob characters (its
 * check hook refuses them).
 */
DeliveryResult
exa_delivery_unlink_cache_space(RedisClient *client, int64 *nkeys,
								char *errbuf, size_t errlen)
{
	char	   *pattern = psprintf("%scache:*", exa_key_prefix);
	char		cursor[32] = "0";

	*nkeys = 0;
	errbuf[0] = '\0';
	for (;;)
	{
		redisReply *r;
		redisReply *page;
		const char **argv;
		size_t	   *argvlen;
		int			i;
		int			n;
		int			pos = 0;

		CHECK_FOR_INTERRUPTS();
		exa_redis_appendv(client, 6, "SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
		if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
		{
			strlcpy(errbuf, client->errmsg, errlen);
			return DELIVERY_FAILED;
		}
		r = exa_redis_reply(client, pos++);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
			r->element[0]->type != REDIS_REPLY_STRING ||
			r->element[1]->type != REDIS_REPLY_ARRAY)
		{
			set_err(errbuf, errlen, "SCAN", r);
			exa_redis_clear_replies(client);
			return DELIVERY_REFUSED;
		}
		strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		page = r->element[1];

		/* Copy the page out of the reply before the next command. */
		n = 1;
		argv = palloc(sizeof(char *) * (page->elements + 1));
		argvlen = palloc(sizeof(size_t) * (page->elements + 1));
		argv[0] = refusal.use_del ? "DEL" : "UNLINK";
		argvlen[0] = strlen(argv[0]);
		for (i = 0; i < (int) page->elements; i++)
		{
			if (page->element[i]->type != REDIS_REPLY_STRING)
				continue;
			argv[n] = pnstrdup(page->element[i]->str, page->element[i]->len);
			argvlen[n++] = page->element[i]->len;
		}
		exa_redis_clear_replies(client);

		if (n > 1)
		{
			redisReply *d;

			exa_redis_append(client, n, argv, argvlen);
			if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
			{
				strlcpy(errbuf, client->errmsg, errlen);
				return DELIVERY_FAILED;
			}
			d = exa_redis_reply(client, 0);
			if (exa_redis_reply_is_error(d))
			{
				set_err(errbuf, errlen, argv[0], d);
				exa_redis_clear_replies(client);
				return DELIVERY_REFUSED;
			}
			*nkeys += d->integer;
		}
		for (i = 1; i < n; i++)
			pfree((char *) argv[i]);
		pfree(argv);
		pfree(argvlen);
		exa_redis_clear_replies(client);
		if (strcmp(cursor, "0") == 0)
			break;
	}
	pfree(pattern);
	return DELIVERY_OK;
}
