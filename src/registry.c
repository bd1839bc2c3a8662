/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  The service registry and the Redis-facing SQL functions:
 *	  register_service, heartbeat_service, deregister_service,
 *	  discover_services, adapter_status, flush_outbox.
 *
 * The three registry functions change exchange.services and enqueue one
 * registry outbox row naming the id, in the caller's transaction; they do
 * no Redis I/O.  The worker applies the table's current state (delivery.c).
 * They lock only the services row they change (INSERT ... ON CONFLICT,
 * UPDATE, DELETE), never a ledger row.
 *
 * discover_services and flush_outbox are the only SQL functions that do
 * Redis I/O in the calling backend (README "Redis delivery").  Both use the
 * latch-aware client with the connect and command deadlines, can be
 * cancelled, hold no ledger lock, and raise LX011 when Redis fails.
 * discover_services does all its I/O first, closes the connection and only
 * then parses what it read,
 * so no error can be raised while hiredis state is live outside the
 * client's own PG_TRY; flush_outbox wraps its I/O in PG_TRY to close the
 * connection on any error.  flush_outbox locks the outbox rows it delivers
 * (FOR UPDATE SKIP LOCKED) until the caller's transaction ends and never
 * delivers rows of the caller's own, uncommitted, transaction.
 *
 * On a hot standby the registry functions and flush_outbox fail like any
 * write (25006, from the executor); discover_services and adapter_status
 * only read, and work there (adapter_status says the server is a standby).
 *
 * Go layout (compatibility with the original services): key
 * <prefix>service:<id> holds JSON {ServiceName, ServiceID, Address, Port
 * (number), Version, Metadata (flat object of strings), RegisteredAt,
 * LastHeartbeat (RFC 3339 UTC)}; <prefix>heartbeat:<id> holds Unix seconds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "args.h"
#include "delivery.h"
#include "exchange_adapter.h"
#include "outbox.h"
#include "redis_client.h"
#include "stmt.h"
#include "worker_status.h"

PG_FUNCTION_INFO_V1(exa_register_service);
PG_FUNCTION_INFO_V1(exa_heartbeat_service);
PG_FUNCTION_INFO_V1(exa_deregister_service);
PG_FUNCTION_INFO_V1(exa_discover_services);
PG_FUNCTION_INFO_V1(exa_adapter_status);
PG_FUNCTION_INFO_V1(exa_flush_outbox);

/* Longest service id, name, address and version. */
#define SERVICE_TEXT_MAX	255
/* Longest ttl: registrations are heartbeats, not archives. */
#define SERVICE_TTL_MAX_DAYS	30
/* Most rows one flush_outbox call delivers. */
#define FLUSH_MAX_ROWS		100000

static ExaStmt stmt_register = {
	"INSERT INTO exchange.services AS s"
	"   (service_id, service_name, address, port, version, metadata, ttl,"
	"    registered_at, last_heartbeat)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, pg_catalog.now(), pg_catalog.now())"
	" ON CONFLICT (service_id) DO UPDATE"
	"   SET service_name = excluded.service_name, address = excluded.address,"
	"       port = excluded.port, version = excluded.version,"
	"       metadata = excluded.metadata, ttl = excluded.ttl,"
	"       registered_at = excluded.registered_at,"
	"       last_heartbeat = excluded.last_heartbeat"
	" RETURNING s.*",
	7, {TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, JSONBOID, INTERVALOID},
	NULL
};

static ExaStmt stmt_heartbeat = {
	"UPDATE exchange.services SET last_heartbeat = pg_catalog.now()"
	" WHERE service_id = $1 RETURNING *",
	1, {TEXTOID},
	NULL
};

static ExaStmt stmt_deregister = {
	"DELETE FROM exchange.services WHERE service_id = $1 RETURNING service_id",
	1, {TEXTOID},
	NULL
};

static ExaStmt stmt_outbox_summary = {
	"SELECT pg_catalog.count(*), pg_catalog.min(created_at) FROM exchange.outbox",
	0, {InvalidOid},
	NULL
};

/* ------------------------------------------------------------------------
 * Argument checks
 * ------------------------------------------------------------------------
 */

/* An id, name or address: no control characters (they end up in keys). */
static char *
service_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
				 bool null_ok)
{
	char	   *s = exa_arg_text(fcinfo, argno, name, null_ok, SERVICE_TEXT_MAX);
	const unsigned char *c;

	if (s == NULL)
		return NULL;
	for (c = (const unsigned char *) s; *c; c++)
	{
		if (*c < 0x20 || *c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", name)));
	}
	return s;
}

/* Metadata must be a flat object of strings (Go's map[string]string). */
static void
check_flat_metadata(Jsonb *metadata)
{
	JsonbIterator *it = JsonbIteratorInit(&metadata->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("metadata values must be strings"),
					 errdetail("The value of key \"%s\" is not a string.",
							   key ? key : ""),
					 errhint("Service metadata is a flat object of strings, as the Go services read it.")));
	}
}

static Interval *
ttl_arg(FunctionCallInfo fcinfo, int argno)
{
	Interval   *ttl;
	int64		usecs;
	int64		min_usecs = (int64) exa_heartbeat_interval * USECS_PER_SEC;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ttl must not be null")));
	ttl = PG_GETARG_INTERVAL_P(argno);
	if (ttl->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must not be given in months or years"),
				 errhint("Use seconds, minutes, hours or days.")));
	if (ttl->day < 0 || ttl->day > SERVICE_TTL_MAX_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must lie between \"%s\" and %d days",
						"exchange_adapter.heartbeat_interval", SERVICE_TTL_MAX_DAYS)));
	usecs = ttl->day * USECS_PER_DAY + ttl->time;
	if (usecs > (int64) SERVICE_TTL_MAX_DAYS * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must lie between \"%s\" and %d days",
						"exchange_adapter.heartbeat_interval", SERVICE_TTL_MAX_DAYS)));
	if (usecs <= min_usecs)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be longer than \"%s\"",
						"exchange_adapter.heartbeat_interval"),
				 errdetail("ttl is %s; \"%s\" is %d s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(ttl))),
						   "exchange_adapter.heartbeat_interval",
						   exa_heartbeat_interval),
				 errhint("The worker re-applies live registrations every \"%s\"; "
						 "a shorter ttl would let them lapse between two.",
						 "exchange_adapter.heartbeat_interval")));
	return ttl;
}

/* ------------------------------------------------------------------------
 * register_service, heartbeat_service, deregister_service
 * ------------------------------------------------------------------------
 */

Datum
exa_register_service(PG_FUNCTION_ARGS)
{
	char	   *service_id = service_text_arg(fcinfo, 0, "service_id", false);
	char	   *service_name = service_text_arg(fcinfo, 1, "service_name", false);
	char	   *address = service_text_arg(fcinfo, 2, "address", false);
	int32		port;
	char	   *version;
	Datum		metadata;
	Interval   *ttl;
	Datum		values[7];
	char		nulls[7] = "       ";
	Datum		result;

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("port must not be null")));
	port = PG_GETARG_INT32(3);
	if (port < 1 || port > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("port must lie between 1 and 65535"),
				 errdetail("port is %d.", port)));
	version = service_text_arg(fcinfo, 4, "version", true);
	metadata = exa_arg_metadata(fcinfo, 5);
	check_flat_metadata(DatumGetJsonbP(metadata));
	ttl = ttl_arg(fcinfo, 6);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = CStringGetTextDatum(service_id);
	values[1] = CStringGetTextDatum(service_name);
	values[2] = CStringGetTextDatum(address);
	values[3] = Int32GetDatum(port);
	values[4] = version ? CStringGetTextDatum(version) : (Datum) 0;
	if (version == NULL)
		nulls[4] = 'n';
	values[5] = metadata;
	values[6] = IntervalPGetDatum(ttl);
	if (exa_exec(&stmt_register, values, nulls, 0) != 1)
		elog(ERROR, "register_service wrote no row");
	result = exa_return_row(0);
	exa_outbox_enqueue_registry(service_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

Datum
exa_heartbeat_service(PG_FUNCTION_ARGS)
{
	char	   *service_id = service_text_arg(fcinfo, 0, "service_id", false);
	Datum		values[1];
	Datum		result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = CStringGetTextDatum(service_id);
	if (exa_exec(&stmt_heartbeat, values, NULL, 0) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_NOT_FOUND),
				 errmsg("service \"%s\" is not registered", service_id),
				 errhint("Call exchange.register_service first.")));
	result = exa_return_row(0);
	exa_outbox_enqueue_registry(service_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

Datum
exa_deregister_service(PG_FUNCTION_ARGS)
{
	char	   *service_id = service_text_arg(fcinfo, 0, "service_id", false);
	Datum		values[1];
	bool		deleted;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = CStringGetTextDatum(service_id);
	deleted = (exa_exec(&stmt_deregister, values, NULL, 0) == 1);
	/* A call that changes nothing writes no outbox row. */
	if (deleted)
		exa_outbox_enqueue_registry(service_id);
	SPI_finish();
	PG_RETURN_BOOL(deleted);
}

/* ------------------------------------------------------------------------
 * discover_services
 * ------------------------------------------------------------------------
 */

typedef struct FoundService
{
	char	   *id;				/* from the key */
	char	   *json;			/* NULL: key vanished between SCAN and MGET */
	size_t		jsonlen;
	char	   *heartbeat;		/* NULL: no heartbeat key */
} FoundService;

/* State of the JSON walk over one registration. */
typedef struct SvcParse
{
	int			level;			/* open objects and arrays */
	bool		root_object;
	char	   *field;			/* current top-level field */
	bool		in_metadata;	/* inside the Metadata object (level 2) */
	char	   *meta_key;
	char	   *service_name;
	char	   *service_id;
	char	   *address;
	char	   *port;
	char	   *version;
	char	   *registered_at;
	char	   *last_heartbeat;
	StringInfoData metadata;	/* JSON text of the flat metadata */
	int			nmeta;
	bool		bad;			/* a known field has the wrong type */
} SvcParse;

/*
 * Deepest nesting of objects and arrays a registration may have.  The Go
 * layout needs 2; unknown fields may nest a little.  Checked before the
 * JSON parser runs, whose recursion would otherwise reach the stack depth
 * limit on a value such as [[[[...]]]] and fail the whole call.
 */
#define SVC_MAX_DEPTH	32

/* Top-level fields whose value must be a JSON string (or null). */
static bool
svc_string_field(const char *field)
{
	return field != NULL &&
		(strcmp(field, "ServiceName") == 0 ||
		 strcmp(field, "ServiceID") == 0 ||
		 strcmp(field, "Address") == 0 ||
		 strcmp(field, "Version") == 0 ||
		 strcmp(field, "RegisteredAt") == 0 ||
		 strcmp(field, "LastHeartbeat") == 0);
}

/* A container opens: at level 1, only Metadata may hold one (an object). */
static void
svc_container_start(SvcParse *p, bool object)
{
	if (p->level == 1 && p->field != NULL)
	{
		bool		metadata = strcmp(p->field, "Metadata") == 0;

		if ((metadata && !object) || svc_string_field(p->field) ||
			strcmp(p->field, "Port") == 0)
			p->bad = true;
	}
	else if (p->level == 2 && p->in_metadata)
		p->bad = true;			/* Metadata values are strings */
}

static void
svc_object_start(void *state)
{
	SvcParse   *p = state;

	if (p->level == 0)
		p->root_object = true;
	else
		svc_container_start(p, true);
	if (p->level == 1 && p->field && strcmp(p->field, "Metadata") == 0)
		p->in_metadata = true;
	p->level++;
}

static void
svc_object_end(void *state)
{
	SvcParse   *p = state;

	p->level--;
	if (p->level == 1)
		p->in_metadata = false;
}

static void
svc_array_start(void *state)
{
	SvcParse   *p = state;

	if (p->level > 0)
		svc_container_start(p, false);
	p->level++;
}

static void
svc_array_end(void *state)
{
	((SvcParse *) state)->level--;
}

static void
svc_field_start(void *state, char *fname, bool isnull)
{
	SvcParse   *p = state;

	if (p->level == 1)
		p->field = fname;
	else if (p->level == 2 && p->in_metadata)
		p->meta_key = fname;
}

static void
svc_scalar(void *state, char *token, JsonTokenType tokentype)
{
	SvcParse   *p = state;

	if (tokentype == JSON_TOKEN_NULL)
		return;
	if (p->level == 1 && p->field != NULL)
	{
		if (svc_string_field(p->field) && tokentype != JSON_TOKEN_STRING)
		{
			p->bad = true;
			return;
		}
		if (strcmp(p->field, "ServiceName") == 0)
			p->service_name = token;
		else if (strcmp(p->field, "ServiceID") == 0)
			p->service_id = token;
		else if (strcmp(p->field, "Address") == 0)
			p->address = token;
		else if (strcmp(p->field, "Port") == 0)
		{
			if (tokentype != JSON_TOKEN_NUMBER)
				p->bad = true;
			p->port = token;
		}
		else if (strcmp(p->field, "Version") == 0)
			p->version = token;
		else if (strcmp(p->field, "RegisteredAt") == 0)
			p->registered_at = token;
		else if (strcmp(p->field, "LastHeartbeat") == 0)
			p->last_heartbeat = token;
		else if (strcmp(p->field, "Metadata") == 0)
			p->bad = true;		/* a scalar where an object belongs */
	}
	else if (p->level == 2 && p->in_metadata && p->meta_key != NULL)
	{
		if (tokentype != JSON_TOKEN_STRING)
		{
			p->bad = true;
			return;
		}
		appendStringInfoChar(&p->metadata, p->nmeta++ ? ',' : '{');
		escape_json(&p->metadata, p->meta_key);
		appendStringInfoChar(&p->metadata, ':');
		escape_json(&p->metadata, token);
	}
}

/*
 * Is the nesting of objects and arrays in json at most SVC_MAX_DEPTH?  A
 * linear scan that skips strings; what it does not understand is left to
 * the parser, which then fails without deep recursion.
 */
static bool
svc_depth_ok(const char *json, size_t len)
{
	int			depth = 0;
	bool		in_string = false;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		c = json[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[')
		{
			if (++depth > SVC_MAX_DEPTH)
				return false;
		}
		else if (c == '}' || c == ']')
			depth--;
	}
	return true;
}

static bool
digits(const char *s, int n, int *value)
{
	int			v = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*value = v;
	return true;
}

/*
 * Parse an RFC 3339 date-time strictly, without raising: YYYY-MM-DDTHH:MM:SS
 * with an optional fraction (rounded to microseconds) and Z or +HH:MM /
 * -HH:MM ("T" and "Z" in either case).  Nothing else: PostgreSQL's input
 * shortcuts ("now", "infinity", "epoch", "today"), a missing zone or a
 * space for "T" are not timestamps another service wrote, and "now" would
 * make a dead registration look alive forever.
 */
static bool
parse_rfc3339(const char *s, TimestampTz *out)
{
	struct pg_tm tm;
	fsec_t		fsec = 0;
	int			tz = 0;
	int			year,
				mon,
				mday,
				hour,
				min,
				sec;
	const char *c;

	if (s == NULL || strlen(s) < 20)
		return false;
	if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &mon) ||
		s[7] != '-' || !digits(s + 8, 2, &mday) ||
		(s[10] != 'T' && s[10] != 't') ||
		!digits(s + 11, 2, &hour) || s[13] != ':' ||
		!digits(s + 14, 2, &min) || s[16] != ':' ||
		!digits(s + 17, 2, &sec))
		return false;
	if (year < 1 || mon < 1 || mon > 12 || mday < 1 ||
		mday > day_tab[isleap(year) ? 1 : 0][mon - 1] ||
		hour > 23 || min > 59 || sec > 60)
		return false;

	c = s + 19;
	if (*c == '.')
	{
		double		frac = 0;
		double		scale = 0.1;

		c++;
		if (*c < '0' || *c > '9')
			return false;
		for (; *c >= '0' && *c <= '9'; c++)
		{
			frac += (*c - '0') * scale;
			scale /= 10;
		}
		fsec = (fsec_t) rint(frac * USECS_PER_SEC);
	}
	if (*c == 'Z' || *c == 'z')
		c++;
	else if (*c == '+' || *c == '-')
	{
		int			oh,
					om;

		if (!digits(c + 1, 2, &oh) || c[3] != ':' || !digits(c + 4, 2, &om) ||
			oh > 23 || om > 59)
			return false;
		/* PostgreSQL counts zones in seconds west of UTC. */
		tz = (*c == '+' ? -1 : 1) * (oh * SECS_PER_HOUR + om * SECS_PER_MINUTE);
		c += 6;
	}
	else
		return false;
	if (*c != '\0')
		return false;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year;
	tm.tm_mon = mon;
	tm.tm_mday = mday;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	return tm2timestamp(&tm, fsec, &tz, out) == 0 && IS_VALID_TIMESTAMP(*out);
}

static int
found_cmp(const void *a, const void *b)
{
	return strcmp(((const FoundService *) a)->id, ((const FoundService *) b)->id);
}

static int
cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * SCAN <prefix>service:* to the end: the keys longer than skip bytes (the
 * prefix and "service:"), sorted and unique (SCAN may return a key twice).
 * Returns false with errbuf set on failure.
 */
static bool
discover_scan(RedisClient *client, size_t skip, char ***out, int *nout,
			  char *errbuf, size_t errlen)
{
	char	   *pattern = psprintf("%sservice:*", exa_key_prefix);
	char		cursor[32] = "0";
	char	  **keys = NULL;
	int			nkeys = 0;
	int			maxkeys = 0;
	int			i,
				j;

	do
	{
		redisReply *r;
		redisReply *page;

		exa_redis_appendv(client, 6, "SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
		if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
		{
			strlcpy(errbuf, client->errmsg, errlen);
			return false;
		}
		r = exa_redis_reply(client, 0);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
			r->element[0]->type != REDIS_REPLY_STRING ||
			r->element[1]->type != REDIS_REPLY_ARRAY)
		{
			snprintf(errbuf, errlen, "Redis refused SCAN: %s",
					 r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
			return false;
		}
		strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		page = r->element[1];
		for (i = 0; i < (int) page->elements; i++)
		{
			if (page->element[i]->type != REDIS_REPLY_STRING ||
				page->element[i]->len <= skip)
				continue;
			if (nkeys >= maxkeys)
			{
				maxkeys = Max(64, maxkeys * 2);
				keys = keys ? repalloc(keys, sizeof(char *) * maxkeys) :
					palloc(sizeof(char *) * maxkeys);
			}
			keys[nkeys++] = pnstrdup(page->element[i]->str, page->element[i]->len);
		}
		exa_redis_clear_replies(client);
	} while (strcmp(cursor, "0") != 0);

	if (nkeys > 1)
	{
		qsort(keys, nkeys, sizeof(char *), cstr_cmp);
		for (i = 1, j = 1; i < nkeys; i++)
			if (strcmp(keys[i], keys[j - 1]) != 0)
				keys[j++] = keys[i];
		nkeys = j;
	}
	*out = keys;
	*nout = nkeys;
	return true;
}

/*
 * One MGET of n service keys and one of their heartbeat keys, in one round
 * trip, into found[0..n-1] (whose id is set here: the key after skip
 * bytes).  Returns false with errbuf set on failure.
 */
static bool
discover_mget(RedisClient *client, char **keys, int n, size_t skip,
			  FoundService *found, char *errbuf, size_t errlen)
{
	const char **argv = palloc(sizeof(char *) * (n + 1));
	size_t	   *argvlen = palloc(sizeof(size_t) * (n + 1));
	char	  **hkeys = palloc(sizeof(char *) * n);
	redisReply *sv;
	redisReply *hb;
	int			j;

	argv[0] = "MGET";
	argvlen[0] = 4;
	for (j = 0; j < n; j++)
	{
		found[j].id = keys[j] + skip;
		argv[j + 1] = keys[j];
		argvlen[j + 1] = strlen(keys[j]);
	}
	exa_redis_append(client, n + 1, argv, argvlen);
	for (j = 0; j < n; j++)
	{
		hkeys[j] = psprintf("%sheartbeat:%s", exa_key_prefix, found[j].id);
		argv[j + 1] = hkeys[j];
		argvlen[j + 1] = strlen(hkeys[j]);
	}
	exa_redis_append(client, n + 1, argv, argvlen);
	if (exa_redis_flush(client, exa_redis_command_timeout) != REDIS_RESULT_OK)
	{
		strlcpy(errbuf, client->errmsg, errlen);
		return false;
	}
	sv = exa_redis_reply(client, 0);
	hb = exa_redis_reply(client, 1);
	if (sv == NULL || sv->type != REDIS_REPLY_ARRAY || sv->elements != (size_t) n ||
		hb == NULL || hb->type != REDIS_REPLY_ARRAY || hb->elements != (size_t) n)
	{
		redisReply *bad = (sv && sv->type == REDIS_REPLY_ERROR) ? sv : hb;

		snprintf(errbuf, errlen, "Redis refused MGET: %s",
				 bad && bad->type == REDIS_REPLY_ERROR ? bad->str : "unexpected reply");
		return false;
	}
	for (j = 0; j < n; j++)
	{
		redisReply *s = sv->element[j];
		redisReply *h = hb->element[j];

		if (s->type == REDIS_REPLY_STRING)
		{
			found[j].json = pnstrdup(s->str, s->len);
			found[j].jsonlen = s->len;
		}
		if (h->type == REDIS_REPLY_STRING)
			found[j].heartbeat = pnstrdup(h->str, h->len);
	}
	exa_redis_clear_replies(client);
	pfree(argv);
	pfree(argvlen);
	for (j = 0; j < n; j++)
		pfree(hkeys[j]);
	pfree(hkeys);
	return true;
}

/*
 * The Redis part of a SQL call (discover_services, flush_outbox): session
 * runs on a client of its own, in cxt, which is destroyed on every way out
 * (an error included, so that no connection outlives the call).  Returns
 * what session returned: false with errbuf set when Redis failed.
 */
typedef bool (*RedisSession) (RedisClient *client, void *arg, char *errbuf,
							  size_t errlen);

static bool
with_redis(MemoryContext cxt, RedisSession session, void *arg, char *errbuf,
		   size_t errlen)
{
	RedisClient *client = exa_redis_client_create(cxt);
	volatile bool ok = false;

	PG_TRY();
	{
		ok = session(client, arg, errbuf, errlen);
	}
	PG_CATCH();
	{
		exa_redis_client_destroy(client);
		PG_RE_THROW();
	}
	PG_END_TRY();
	exa_redis_client_destroy(client);
	return ok;
}

/*
 * All Redis I/O of discover_services: SCAN <prefix>service:*, then MGET of
 * the service and heartbeat keys, 1,000 at a time.  Results are copied
 * into palloc'd memory.  Returns false with errbuf set on failure.
 */
typedef struct FoundServices
{
	FoundService *found;
	int			nfound;
} FoundServices;

static bool
discover_read(RedisClient *client, void *arg, char *errbuf, size_t errlen)
{
	FoundService **out = &((FoundServices *) arg)->found;
	int		   *nout = &((FoundServices *) arg)->nfound;

	size_t		skip = strlen(exa_key_prefix) + strlen("service:");
	char	  **keys;
	int			nkeys;
	FoundService *found;
	int			i;

	if (exa_redis_connect(client) != REDIS_RESULT_OK)
	{
		strlcpy(errbuf, client->errmsg, errlen);
		return false;
	}
	if (!discover_scan(client, skip, &keys, &nkeys, errbuf, errlen))
		return false;

	found = palloc0(sizeof(FoundService) * Max(nkeys, 1));
	for (i = 0; i < nkeys; i += DELIVERY_KEYS_PER_COMMAND)
	{
		if (!discover_mget(client, keys + i,
						   Min(DELIVERY_KEYS_PER_COMMAND, nkeys - i), skip,
						   found + i, errbuf, errlen))
			return false;
	}
	*out = found;
	*nout = nkeys;
	return true;
}

/*
 * Parse one registration and add it to the result unless the filter skips
 * it.  Returns false, adding nothing, when the value is malformed: not
 * valid UTF-8 or JSON, not an object, nested deeper than SVC_MAX_DEPTH, a
 * known field of the wrong type, a Port that is not an integer in range,
 * Metadata that is not a flat object of strings, or a timestamp that is not
 * RFC 3339.  Never raises for what another writer put in Redis.
 */
static bool
discover_emit(ReturnSetInfo *rsinfo, FoundService *f, const char *filter)
{
	SvcParse	p;
	JsonSemAction sem;
	JsonLexContext *lex;
	Datum		values[8];
	bool		nulls[8];
	TimestampTz ts;
	TimestampTz hb_ts = 0;
	bool		have_hb = false;

	if (f->json == NULL)
		return true;			/* vanished between SCAN and MGET */
	if (!pg_verifymbstr(f->json, f->jsonlen, true) ||
		!svc_depth_ok(f->json, f->jsonlen))
		return false;

	memset(&p, 0, sizeof(p));
	initStringInfo(&p.metadata);
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &p;
	sem.object_start = svc_object_start;
	sem.object_end = svc_object_end;
	sem.array_start = svc_array_start;
	sem.array_end = svc_array_end;
	sem.object_field_start = svc_field_start;
	sem.scalar = svc_scalar;
	lex = makeJsonLexContextCstringLen(f->json, f->jsonlen,
									   GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS || !p.root_object || p.bad)
		return false;
	if ((p.registered_at != NULL && !parse_rfc3339(p.registered_at, &ts)) ||
		(p.last_heartbeat != NULL && !parse_rfc3339(p.last_heartbeat, &ts)))
		return false;
	if (p.port != NULL)
	{
		char	   *end;
		long		port;

		errno = 0;
		port = strtol(p.port, &end, 10);
		if (errno != 0 || *end != '\0' || end == p.port ||
			port < 0 || port > 65535)
			return false;
	}

	if (filter != NULL &&
		(p.service_name == NULL || strcmp(p.service_name, filter) != 0))
		return true;

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(p.service_id ? p.service_id : f->id);
	if (p.service_name)
		values[1] = CStringGetTextDatum(p.service_name);
	else
		nulls[1] = true;
	if (p.address)
		values[2] = CStringGetTextDatum(p.address);
	else
		nulls[2] = true;
	nulls[3] = true;
	if (p.port)
	{
		char	   *end;
		long		port;

		errno = 0;
		port = strtol(p.port, &end, 10);
		if (errno == 0 && *end == '\0' && end != p.port &&
			port >= 0 && port <= 65535)
		{
			values[3] = Int32GetDatum((int32) port);
			nulls[3] = false;
		}
	}
	if (p.version)
		values[4] = CStringGetTextDatum(p.version);
	else
		nulls[4] = true;
	appendStringInfoString(&p.metadata, p.nmeta ? "}" : "{}");
	values[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(p.metadata.data));
	if (p.registered_at != NULL && parse_rfc3339(p.registered_at, &ts))
		values[6] = TimestampTzGetDatum(ts);
	else
		nulls[6] = true;

	/* Last heartbeat: the later of LastHeartbeat and the heartbeat key. */
	if (f->heartbeat)
	{
		char	   *end;
		long long	secs;

		errno = 0;
		secs = strtoll(f->heartbeat, &end, 10);
		if (errno == 0 && *end == '\0' && end != f->heartbeat &&
			secs >= 0 && secs < (long long) 1e11)
		{
			hb_ts = (TimestampTz) (secs -
								   ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) *
				USECS_PER_SEC;
			have_hb = true;
		}
	}
	if (p.last_heartbeat != NULL && parse_rfc3339(p.last_heartbeat, &ts))
	{
		if (have_hb && hb_ts > ts)
			ts = hb_ts;
		values[7] = TimestampTzGetDatum(ts);
		nulls[7] = false;
	}
	else if (have_hb)
		values[7] = TimestampTzGetDatum(hb_ts);
	else
		nulls[7] = true;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return true;
}

static void
require_redis(const char *what)
{
	if (exa_redis_target == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
				 errmsg("Redis is not configured"),
				 errdetail("%s needs Redis, and \"%s\" is empty.", what,
						   "exchange_adapter.redis_url"),
				 errhint("Set \"%s\" (and \"%s\") and reload.",
						 "exchange_adapter.redis_url",
						 "exchange_adapter.redis_password_file")));
}

Datum
exa_discover_services(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *filter = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	FoundServices fs = {NULL, 0};
	FoundService *found;
	int			nfound;
	char		errbuf[512];
	int			i;
	int			nbad = 0;
	StringInfoData badkeys;

	require_redis("discover_services");
	initStringInfo(&badkeys);
	InitMaterializedSRF(fcinfo, 0);

	if (!with_redis(CurrentMemoryContext, discover_read, &fs, errbuf, sizeof(errbuf)))
		ereport(ERROR,
				(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
				 errmsg("could not read service registrations from Redis"),
				 errdetail_internal("%s", errbuf)));
	found = fs.found;
	nfound = fs.nfound;

	if (nfound > 1)
		qsort(found, nfound, sizeof(FoundService), found_cmp);
	for (i = 0; i < nfound; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!discover_emit(rsinfo, &found[i], filter))
		{
			if (nbad < 10)
				appendStringInfo(&badkeys, "%s\"%sservice:%s\"",
								 nbad > 0 ? ", " : "", exa_key_prefix,
								 found[i].id);
			nbad++;
		}
	}
	if (nbad > 0)
		ereport(NOTICE,
				(errmsg_plural("discover_services skipped %d malformed service registration",
							   "discover_services skipped %d malformed service registrations",
							   nbad, nbad),
				 errdetail_internal("Skipped: %s%s.", badkeys.data,
									nbad > 10 ? ", ..." : ""),
				 errhint("Registrations are JSON objects in the Go layout with RFC 3339 timestamps; see the README.")));
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * adapter_status
 * ------------------------------------------------------------------------
 */

Datum
exa_adapter_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9];
	ExaStatus	st;
	bool		preloaded;
	bool		running;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	memset(nulls, true, sizeof(nulls));

	preloaded = exa_status_read(&st);
	running = preloaded && st.worker_pid != 0;

	if (running)
	{
		values[0] = Int32GetDatum(st.worker_pid);
		nulls[0] = false;
		values[1] = CStringGetTextDatum(st.database);
		nulls[1] = false;
		values[2] = BoolGetDatum(st.redis_connected);
		nulls[2] = false;
	}
	else if (exa_database != NULL && exa_database[0] != '\0')
	{
		values[1] = CStringGetTextDatum(exa_database);
		nulls[1] = false;
	}

	if (preloaded)
	{
		if (st.last_error[0] != '\0' && st.refusals[0] != '\0' &&
			strstr(st.last_error, "refused") == NULL)
		{
			values[3] = CStringGetTextDatum(psprintf("%s (in force: %s)",
													 st.last_error, st.refusals));
			nulls[3] = false;
		}
		else if (st.last_error[0] != '\0')
		{
			values[3] = CStringGetTextDatum(st.last_error);
			nulls[3] = false;
		}
		else if (st.refusals[0] != '\0')
		{
			values[3] = CStringGetTextDatum(st.refusals);
			nulls[3] = false;
		}
		if (!running && nulls[3])
		{
			/*
			 * A hot standby runs no launcher and no worker (src/launcher.c):
			 * say so, rather than suggest something is broken.
			 */
			values[3] = CStringGetTextDatum(RecoveryInProgress() ?
											"this server is a standby: the exchange_adapter worker starts when it is promoted" :
											"no exchange_adapter worker is running");
			nulls[3] = false;
		}
		if (st.last_push_at != 0)
		{
			values[4] = TimestampTzGetDatum(st.last_push_at);
			nulls[4] = false;
		}
		values[7] = Int64GetDatum((int64) st.pushed_keys);
		nulls[7] = false;
		values[8] = Int64GetDatum((int64) st.failed_pushes);
		nulls[8] = false;
	}

	/* The outbox of this database, whatever the worker serves. */
	if (OidIsValid(exa_relation_oid("outbox")))
	{
		bool		isnull;
		Datum		d;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (exa_exec(&stmt_outbox_summary, NULL, NULL, 1) == 1)
		{
			values[5] = Int64GetDatum(DatumGetInt64(exa_col(0, 1, &isnull)));
			nulls[5] = false;
			d = exa_col(0, 2, &isnull);
			if (!isnull)
			{
				values[6] = d;
				nulls[6] = false;
			}
		}
		SPI_finish();
	}

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ------------------------------------------------------------------------
 * flush_outbox
 * ------------------------------------------------------------------------
 */

/* Connect and push; false with errbuf set when the cache part failed. */
static bool
flush_push(RedisClient *client, void *arg, char *errbuf, size_t errlen)
{
	DeliveryBatch *batch = (DeliveryBatch *) arg;

	if (exa_redis_connect(client) != REDIS_RESULT_OK)
	{
		strlcpy(errbuf, client->errmsg, errlen);
		return false;
	}
	exa_delivery_connected();
	return exa_delivery_push(client, batch, errbuf, errlen) == DELIVERY_OK;
}

Datum
exa_flush_outbox(PG_FUNCTION_ARGS)
{
	int32		max_rows;
	MemoryContext cxt = CurrentMemoryContext;
	DeliveryBatch *batch;
	char		errbuf[512];
	int			ndelivered = 0;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_rows must not be null")));
	max_rows = PG_GETARG_INT32(0);
	if (max_rows < 1 || max_rows > FLUSH_MAX_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must lie between 1 and %d", FLUSH_MAX_ROWS),
				 errdetail("max_rows is %d.", max_rows)));
	require_redis("flush_outbox");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * Registry rows are applied from the services table read after their
	 * registry lock (delivery.c); a transaction snapshot older than the lock
	 * would push a stale state, so under REPEATABLE READ or SERIALIZABLE
	 * they are left to the worker.
	 */
	batch = exa_delivery_claim_locked(max_rows, !IsolationUsesXactSnapshot(), cxt);
	if (batch->nrows == 0)
	{
		SPI_finish();
		PG_RETURN_INT32(0);
	}
	exa_delivery_load_services(batch, DELIVERY_LOCK_XACT_WAIT, cxt);

	if (!with_redis(cxt, flush_push, batch, errbuf, sizeof(errbuf)))
		ereport(ERROR,
				(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
				 errmsg("could not deliver outbox rows to Redis"),
				 errdetail_internal("%s", errbuf),
				 errhint("The rows stay in the outbox; the worker delivers them when Redis is back.")));

	/*
	 * The cache part is delivered; registry rows Redis refused (reported by
	 * exa_delivery_push) or that the connection lost stay for the worker.
	 */
	if (batch->registry_result == DELIVERY_FAILED)
		ereport(WARNING,
				(errcode(ERRCODE_EXA_REDIS_UNAVAILABLE),
				 errmsg("could not deliver service registrations to Redis"),
				 errdetail_internal("%s", batch->registry_error),
				 errhint("The registry rows stay in the outbox; the worker delivers them when Redis is back.")));
	exa_delivery_delete_delivered(batch);
	SPI_finish();
	for (i = 0; i < batch->nrows; i++)
		ndelivered += batch->rows[i].delivered ? 1 : 0;
	PG_RETURN_INT32(ndelivered);
}
