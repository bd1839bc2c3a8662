/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  Claiming, pushing and deleting outbox rows (DESIGN §5).
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
 * lease, retaken when older than delivery_lease_ms()).  No ledger table is
 * read or locked here; exchange.services is read without locks.
 *
 * Delivery is at-least-once and every push idempotent: UNLINK of a missing
 * key, a repeated PUBLISH (subscribers tolerate duplicates) and the
 * state-based registry application (the table's current state, not the
 * event, is written) all converge when replayed or reordered.
 *
 * The SQL runs with search_path = pg_catalog, pg_temp (SECURITY DEFINER
 * functions, and the worker sets it at start); objects are qualified.
 *
 * Refusals that will not heal (NOPERM for PUBLISH, PING or MULTI; UNLINK
 * unknown or refused) are reported once per process with a WARNING and in
 * the worker's status, then the fallback is used: no PUBLISH, EXISTS
 * instead of PING, two SETs instead of MULTI/EXEC, DEL instead of UNLINK.
 * They are tried again only after a reconnect, never in a loop.
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "delivery.h"
#include "exchange_adapter.h"
#include "stmt.h"
#include "worker.h"

/* Per process: refusals in force and whether each was reported. */
static struct
{
	bool		use_del;
	bool		publish_refused;
	bool		multi_refused;
	bool		ping_refused;
	bool		reported_unlink;
	bool		reported_publish;
	bool		reported_multi;
	bool		reported_ping;
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
static ExaStmt stmt_claim_worker = {
	"UPDATE exchange.outbox o"
	"   SET claimed_at = pg_catalog.clock_timestamp(), attempts = o.attempts + 1"
	" WHERE o.id = ANY (ARRAY(SELECT i.id FROM exchange.outbox i"
	"                          WHERE i.claimed_at IS NULL"
	"                             OR i.claimed_at < pg_catalog.now() - $1 * interval '1 millisecond'"
	"                          ORDER BY i.id LIMIT $2 FOR UPDATE SKIP LOCKED))"
	" RETURNING o.id, o.xid::pg_catalog.text, o.kind::pg_catalog.text, o.keys, o.service_id",
	2, {INT4OID, INT8OID},
	NULL
};

/* flush_outbox: never the caller's own, not yet committed, rows. */
static ExaStmt stmt_claim_locked = {
	"SELECT o.id, o.xid::pg_catalog.text, o.kind::pg_catalog.text, o.keys, o.service_id"
	"  FROM exchange.outbox o"
	" WHERE (o.claimed_at IS NULL"
	"        OR o.claimed_at < pg_catalog.now() - $1 * interval '1 millisecond')"
	"   AND o.xid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned()"
	" ORDER BY o.id LIMIT $2 FOR UPDATE SKIP LOCKED",
	2, {INT4OID, INT8OID},
	NULL
};

static ExaStmt stmt_services = {
	"SELECT " SERVICE_COLUMNS
	"  FROM exchange.services s WHERE s.service_id = ANY ($1)",
	1, {TEXTARRAYOID},
	NULL
};

static ExaStmt stmt_live_services = {
	"SELECT " SERVICE_COLUMNS
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
delivery_lease_ms(void)
{
	return 30000 + exa_redis_connect_timeout + 3 * exa_redis_command_timeout;
}

/* ------------------------------------------------------------------------
 * SQL side
 * ------------------------------------------------------------------------
 */

/* Copy SPI_tuptable (id, xid, kind, keys, service_id) into a batch. */
static DeliveryBatch *
batch_from_spi(uint64 n, MemoryContext mcxt)
{
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
	}
	MemoryContextSwitchTo(old);
	return batch;
}

static int
row_id_cmp(const void *a, const void *b)
{
	int64		x = ((const DeliveryRow *) a)->id;
	int64		y = ((const DeliveryRow *) b)->id;

	return (x > y) - (x < y);
}

static DeliveryBatch *
claim(ExaStmt *stmt, int limit, MemoryContext mcxt)
{
	Datum		values[2];
	uint64		n;
	DeliveryBatch *batch;

	values[0] = Int32GetDatum(delivery_lease_ms());
	values[1] = Int64GetDatum((int64) limit);
	n = exa_exec(stmt, values, NULL, 0);
	batch = batch_from_spi(n, mcxt);
	/* RETURNING has no order: deliver in commit-ish (id) order. */
	qsort(batch->rows, batch->nrows, sizeof(DeliveryRow), row_id_cmp);
	return batch;
}

DeliveryBatch *
delivery_claim_worker(int limit, MemoryContext mcxt)
{
	return claim(&stmt_claim_worker, limit, mcxt);
}

DeliveryBatch *
delivery_claim_locked(int limit, MemoryContext mcxt)
{
	return claim(&stmt_claim_locked, limit, mcxt);
}

/* Append SPI_tuptable's service rows (SERVICE_COLUMNS) to batch->services. */
static void
services_from_spi(DeliveryBatch *batch, uint64 n, MemoryContext mcxt)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	uint64		i;

	for (i = 0; i < n; i++)
	{
		DeliveryService *svc = &batch->services[batch->nservices++];
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

void
delivery_load_services(DeliveryBatch *batch, MemoryContext mcxt)
{
	List	   *ids = NIL;
	int			i;
	int			nids;
	uint64		n;
	Datum		values[1];
	MemoryContext old;

	for (i = 0; i < batch->nrows; i++)
	{
		DeliveryRow *row = &batch->rows[i];

		if (row->registry && row->service_id != NULL &&
			!list_member(ids, makeString(row->service_id)))
			ids = lappend(ids, makeString(row->service_id));
	}
	nids = list_length(ids);
	if (nids == 0)
		return;

	{
		List	   *strs = NIL;
		ListCell   *lc;

		foreach(lc, ids)
			strs = lappend(strs, strVal(lfirst(lc)));
		values[0] = exa_text_array(strs);
	}
	n = exa_exec(&stmt_services, values, NULL, 0);

	old = MemoryContextSwitchTo(mcxt);
	batch->services = palloc0(sizeof(DeliveryService) * nids);
	MemoryContextSwitchTo(old);
	services_from_spi(batch, n, mcxt);

	/* Ids without a row: deregistered; their keys are deleted. */
	{
		ListCell   *lc;

		foreach(lc, ids)
		{
			const char *id = strVal(lfirst(lc));
			bool		found = false;

			for (i = 0; i < batch->nservices; i++)
			{
				if (strcmp(batch->services[i].service_id, id) == 0)
				{
					found = true;
					break;
				}
			}
			if (!found)
			{
				DeliveryService *svc = &batch->services[batch->nservices++];

				svc->service_id = MemoryContextStrdup(mcxt, id);
				svc->live = false;
			}
		}
	}
}

DeliveryBatch *
delivery_live_services(MemoryContext mcxt)
{
	uint64		n;
	DeliveryBatch *batch;

	n = exa_exec(&stmt_live_services, NULL, NULL, 0);
	batch = MemoryContextAllocZero(mcxt, sizeof(DeliveryBatch));
	/* One spare slot for the self-registration. */
	batch->services = MemoryContextAllocZero(mcxt,
											 sizeof(DeliveryService) * (n + 1));
	services_from_spi(batch, n, mcxt);
	return batch;
}

/*
 * Add the database's own registration (exchange_adapter.service_id and
 * friends) to a batch made by delivery_live_services.  Its ttl is three
 * heartbeat intervals: it stays while the worker lives.
 */
void
delivery_add_self(DeliveryBatch *batch, const char *database,
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
	svc = &batch->services[batch->nservices++];
	svc->service_id = pstrdup(exa_service_id);
	svc->json = exa_col_cstring(0, 1);
	svc->heartbeat = exa_col_cstring(0, 2);
	svc->px = (int64) exa_heartbeat_interval * 3000;
	svc->live = true;
	MemoryContextSwitchTo(old);
}

static Datum
batch_ids(DeliveryBatch *batch)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(batch->nrows, 1));
	int			i;

	for (i = 0; i < batch->nrows; i++)
		ids[i] = Int64GetDatum(batch->rows[i].id);
	return PointerGetDatum(construct_array(ids, batch->nrows, INT8OID,
										   sizeof(int64), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

void
delivery_delete(DeliveryBatch *batch)
{
	Datum		values[1];

	if (batch->nrows == 0)
		return;
	values[0] = batch_ids(batch);
	exa_exec(&stmt_delete, values, NULL, 0);
}

void
delivery_delete_ids(const int64 *ids, int nids)
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
	exa_exec(&stmt_delete, values, NULL, 0);
}

void
delivery_release(DeliveryBatch *batch)
{
	Datum		values[1];

	if (batch->nrows == 0)
		return;
	values[0] = batch_ids(batch);
	exa_exec(&stmt_release, values, NULL, 0);
}

int64
delivery_release_all_claims(void)
{
	return (int64) exa_exec(&stmt_release_all, NULL, NULL, 0);
}

/* ------------------------------------------------------------------------
 * Redis side
 * ------------------------------------------------------------------------
 */

void
delivery_connected(void)
{
	refusal.use_del = false;
	refusal.publish_refused = false;
	refusal.multi_refused = false;
	refusal.ping_refused = false;
}

const char *
delivery_refusals(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (refusal.use_del)
		appendStringInfoString(&buf, "UNLINK refused, using DEL");
	if (refusal.publish_refused)
		appendStringInfo(&buf, "%sPUBLISH refused, no invalidation messages",
						 buf.len ? "; " : "");
	if (refusal.ping_refused)
		appendStringInfo(&buf, "%sPING refused, using EXISTS",
						 buf.len ? "; " : "");
	if (refusal.multi_refused)
		appendStringInfo(&buf, "%sMULTI refused, registrations written without MULTI/EXEC",
						 buf.len ? "; " : "");
	strlcpy(refusal_text, buf.data, sizeof(refusal_text));
	pfree(buf.data);
	return refusal_text;
}

/*
 * Report a refusal that will not heal, once per process: a WARNING (the
 * server log for the worker) and the worker's last_error.
 */
static void
report_refusal(bool *reported, const char *command, const redisReply *reply,
			   const char *fallback, const char *hint)
{
	char		msg[EXA_STATUS_ERROR_LEN];

	if (*reported)
		return;
	*reported = true;
	snprintf(msg, sizeof(msg), "Redis refused %s: %s; %s",
			 command, reply && reply->str ? reply->str : "error", fallback);
	exa_status_set_error(msg);
	ereport(WARNING,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("Redis refused %s: %s", command,
					reply && reply->str ? reply->str : "error"),
			 errdetail("exchange_adapter %s; this is reported once.", fallback),
			 errhint("%s", hint)));
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
		redis_append(client, n + 1, argv, argvlen);
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
	redis_append(client, 3, argv, argvlen);
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
			redis_appendv(client, 1, "MULTI");
		redis_appendv(client, 5, "SET", skey, svc->json, "PX", px);
		redis_appendv(client, 5, "SET", hkey, svc->heartbeat, "PX", px);
		if (shape == SVC_MULTI)
			redis_appendv(client, 1, "EXEC");
	}
	else
	{
		redis_appendv(client, 3, refusal.use_del ? "DEL" : "UNLINK", skey, hkey);
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
			r = redis_reply(client, (*pos)++);
			if (redis_reply_is_error(r))
			{
				if (!refusal.use_del &&
					(redis_reply_is_noperm(r) || redis_reply_is_unknown_command(r)))
				{
					report_refusal(&refusal.reported_unlink, "UNLINK", r,
								   "deletes keys with DEL instead",
								   "Allow UNLINK (+@keyspace) to the Redis user.");
					refusal.use_del = true;
					*retry = true;
					return true;
				}
				set_err(errbuf, errlen, "DEL of a registration", r);
				return false;
			}
			return true;

		case SVC_SETS:
			r = redis_reply(client, (*pos)++);
			if (redis_reply_is_error(r))
			{
				set_err(errbuf, errlen, "SET of a registration", r);
				(*pos)++;
				return false;
			}
			r = redis_reply(client, (*pos)++);
			if (redis_reply_is_error(r))
			{
				set_err(errbuf, errlen, "SET of a heartbeat", r);
				return false;
			}
			return true;

		case SVC_MULTI:
			r = redis_reply(client, (*pos)++);
			if (redis_reply_is_error(r))
			{
				redisReply *s1 = redis_reply(client, (*pos)++);
				redisReply *s2 = redis_reply(client, (*pos)++);

				(*pos)++;		/* EXEC: "EXEC without MULTI" or NOPERM */
				if (!redis_reply_is_noperm(r))
				{
					set_err(errbuf, errlen, "MULTI", r);
					return false;
				}
				report_refusal(&refusal.reported_multi, "MULTI", r,
							   "writes registrations with two SETs, not atomically",
							   "Allow +multi +exec to the Redis user (see docker/redis/users.acl).");
				refusal.multi_refused = true;
				/* Without MULTI the SETs ran at once: their replies count. */
				if (redis_reply_is_error(s1))
				{
					set_err(errbuf, errlen, "SET of a registration", s1);
					return false;
				}
				if (redis_reply_is_error(s2))
				{
					set_err(errbuf, errlen, "SET of a heartbeat", s2);
					return false;
				}
				return true;
			}
			(*pos) += 2;		/* QUEUED, QUEUED (errors show in EXEC) */
			r = redis_reply(client, (*pos)++);
			if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
				redis_reply_is_error(r->element[0]) ||
				redis_reply_is_error(r->element[1]))
			{
				set_err(errbuf, errlen, "EXEC of a registration",
						r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ?
						(redis_reply_is_error(r->element[0]) ? r->element[0] : r->element[1]) : r);
				return false;
			}
			return true;
	}
	return true;
}

static DeliveryResult
push_once(RedisClient *client, DeliveryBatch *batch, bool *retry,
		  char *errbuf, size_t errlen)
{
	char	  **keys;
	int			nkeys = 0;
	int			maxkeys = 0;
	int			ndel;
	int			npub = 0;
	SvcShape   *shapes = NULL;
	int			i;
	int			pos;
	size_t		plen = strlen(exa_key_prefix);
	bool		publish;

	*retry = false;

	for (i = 0; i < batch->nrows; i++)
		maxkeys += batch->rows[i].registry ? 0 : batch->rows[i].nkeys;
	keys = palloc(sizeof(char *) * Max(maxkeys, 1));
	for (i = 0; i < batch->nrows; i++)
	{
		DeliveryRow *row = &batch->rows[i];
		int			k;

		if (row->registry)
			continue;
		for (k = 0; k < row->nkeys; k++)
		{
			char	   *full = palloc(plen + strlen(row->keys[k]) + 1);

			memcpy(full, exa_key_prefix, plen);
			strcpy(full + plen, row->keys[k]);
			keys[nkeys++] = full;
		}
	}
	nkeys = unique_strings(keys, nkeys);

	if (nkeys == 0 && batch->nservices == 0)
	{
		batch->nkeys = 0;
		return DELIVERY_OK;
	}

	ndel = append_deletes(client, keys, nkeys);
	publish = exa_invalidation_channel != NULL &&
		exa_invalidation_channel[0] != '\0' && !refusal.publish_refused;
	if (publish)
		npub = append_publishes(client, batch);
	if (batch->nservices > 0)
	{
		shapes = palloc(sizeof(SvcShape) * batch->nservices);
		for (i = 0; i < batch->nservices; i++)
			shapes[i] = append_service(client, &batch->services[i]);
	}

	if (redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
	{
		strlcpy(errbuf, client->errmsg, errlen);
		return DELIVERY_FAILED;
	}

	pos = 0;
	for (i = 0; i < ndel; i++)
	{
		redisReply *r = redis_reply(client, pos++);

		if (!redis_reply_is_error(r))
			continue;
		if (!refusal.use_del &&
			(redis_reply_is_noperm(r) || redis_reply_is_unknown_command(r)))
		{
			report_refusal(&refusal.reported_unlink, "UNLINK", r,
						   "deletes keys with DEL instead",
						   "Allow UNLINK (+@keyspace) to the Redis user.");
			refusal.use_del = true;
			*retry = true;
			redis_clear_replies(client);
			return DELIVERY_REFUSED;
		}
		set_err(errbuf, errlen, refusal.use_del ? "DEL" : "UNLINK", r);
		redis_clear_replies(client);
		return DELIVERY_REFUSED;
	}
	for (i = 0; i < npub; i++)
	{
		redisReply *r = redis_reply(client, pos++);

		if (!redis_reply_is_error(r))
			continue;
		if (redis_reply_is_noperm(r))
		{
			report_refusal(&refusal.reported_publish, "PUBLISH", r,
						   "deletes keys but publishes no invalidation messages",
						   "Allow +publish and the channel (&exchange:*) to the Redis user, "
						   "or set exchange_adapter.invalidation_channel to ''.");
			refusal.publish_refused = true;
			pos += npub - i - 1;
			break;
		}
		set_err(errbuf, errlen, "PUBLISH", r);
		redis_clear_replies(client);
		return DELIVERY_REFUSED;
	}
	for (i = 0; i < batch->nservices; i++)
	{
		if (!check_service(client, shapes[i], &pos, retry, errbuf, errlen))
		{
			redis_clear_replies(client);
			return DELIVERY_REFUSED;
		}
		if (*retry)
		{
			redis_clear_replies(client);
			return DELIVERY_REFUSED;
		}
	}
	redis_clear_replies(client);
	batch->nkeys = nkeys;
	return DELIVERY_OK;
}

DeliveryResult
delivery_push(RedisClient *client, DeliveryBatch *batch,
			  char *errbuf, size_t errlen)
{
	DeliveryResult result;
	bool		retry;
	int			attempt;

	errbuf[0] = '\0';
	for (attempt = 0;; attempt++)
	{
		result = push_once(client, batch, &retry, errbuf, errlen);
		if (!retry || attempt > 0)
			break;
	}
	return result;
}

DeliveryResult
delivery_ping(RedisClient *client, char *errbuf, size_t errlen)
{
	redisReply *r;
	char	   *probe;

	errbuf[0] = '\0';
	if (!refusal.ping_refused)
	{
		redis_appendv(client, 1, "PING");
		if (redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
		{
			strlcpy(errbuf, client->errmsg, errlen);
			return DELIVERY_FAILED;
		}
		r = redis_reply(client, 0);
		if (!redis_reply_is_error(r))
		{
			redis_clear_replies(client);
			return DELIVERY_OK;
		}
		if (!redis_reply_is_noperm(r))
		{
			set_err(errbuf, errlen, "PING", r);
			redis_clear_replies(client);
			return DELIVERY_REFUSED;
		}
		report_refusal(&refusal.reported_ping, "PING", r,
					   "checks the connection with EXISTS instead",
					   "Allow +ping to the Redis user (see docker/redis/users.acl).");
		refusal.ping_refused = true;
		redis_clear_replies(client);
	}

	/* Fallback: a read in our own key space. */
	probe = psprintf("%sadapter:ping", exa_key_prefix);
	redis_appendv(client, 2, "EXISTS", probe);
	pfree(probe);
	if (redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
	{
		strlcpy(errbuf, client->errmsg, errlen);
		return DELIVERY_FAILED;
	}
	r = redis_reply(client, 0);
	if (redis_reply_is_error(r))
	{
		set_err(errbuf, errlen, "EXISTS", r);
		redis_clear_replies(client);
		return DELIVERY_REFUSED;
	}
	redis_clear_replies(client);
	return DELIVERY_OK;
}

/*
 * Delete every key under <prefix>cache: with SCAN + UNLINK (never KEYS),
 * one round trip per SCAN page.  The prefix holds no glob characters (its
 * check hook refuses them).
 */
DeliveryResult
delivery_unlink_cache_space(RedisClient *client, int64 *nkeys,
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
		redis_appendv(client, 6, "SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
		if (redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
		{
			strlcpy(errbuf, client->errmsg, errlen);
			return DELIVERY_FAILED;
		}
		r = redis_reply(client, pos++);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
			r->element[0]->type != REDIS_REPLY_STRING ||
			r->element[1]->type != REDIS_REPLY_ARRAY)
		{
			set_err(errbuf, errlen, "SCAN", r);
			redis_clear_replies(client);
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
		redis_clear_replies(client);

		if (n > 1)
		{
			redisReply *d;

			redis_append(client, n, argv, argvlen);
			if (redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
			{
				strlcpy(errbuf, client->errmsg, errlen);
				return DELIVERY_FAILED;
			}
			d = redis_reply(client, 0);
			if (redis_reply_is_error(d))
			{
				set_err(errbuf, errlen, argv[0], d);
				redis_clear_replies(client);
				return DELIVERY_REFUSED;
			}
			*nkeys += d->integer;
		}
		for (i = 1; i < n; i++)
			pfree((char *) argv[i]);
		pfree(argv);
		pfree(argvlen);
		redis_clear_replies(client);
		if (strcmp(cursor, "0") == 0)
			break;
	}
	pfree(pattern);
	return DELIVERY_OK;
}
