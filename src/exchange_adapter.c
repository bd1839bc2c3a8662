/*-------------------------------------------------------------------------
 *
 * exchange_adapter.c
 *	  Module initialisation and settings of exchange_adapter.
 *
 * This file owns PG_MODULE_MAGIC, _PG_init, every exchange_adapter.* setting
 * with its check hooks (README "Settings"), the parsed Redis URL, the table
 * lists of schema exchange and the small helpers shared by the other files
 * (actor, relation lookup).
 *
 * It must not make loading the library depend on shared_preload_libraries:
 * no setting is PGC_POSTMASTER, and shared memory (the worker's status and
 * latch, worker_status.c) is requested only while shared_preload_libraries is
 * being processed, like the launcher's registration.  A backend that loads
 * the library through CREATE EXTENSION or a function call gets the settings
 * and nothing else.  It must not talk to Redis or touch the ledger either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "exchange_adapter.h"
#include "stmt.h"
#include "worker_status.h"

PG_MODULE_MAGIC;

/* Tables and views of schema exchange; see exchange_adapter.h. */
const char *const exa_ledger_tables[] = {
	"accounts", "markets", "orders", "trades", "balances", "holds",
	"balance_journal", "order_events", "fee_ledger", NULL
};
const char *const exa_internal_tables[] = {
	"services", "outbox", NULL
};
const char *const exa_read_views[] = {
	"open_orders", "order_book", "account_balances", NULL
};

/*
 * Settings; defaults here must match the boot values below and README
 * "Settings".
 */
char	   *exa_database = NULL;
char	   *exa_redis_url = NULL;
char	   *exa_redis_password_file = NULL;
int			exa_redis_connect_timeout = 2000;
int			exa_redis_command_timeout = 2000;
int			exa_poll_interval = 1000;
int			exa_retry_backoff_max = 30000;
int			exa_outbox_batch_size = 1000;
int			exa_outbox_flush_after = 600;
int			exa_max_batch = 10000;
char	   *exa_key_prefix = NULL;
char	   *exa_invalidation_channel = NULL;
int			exa_heartbeat_interval = 30;
char	   *exa_service_id = NULL;
char	   *exa_service_name = NULL;
char	   *exa_service_address = NULL;
int			exa_service_port = 0;
bool		exa_allow_drop = false;

const ExaRedisTarget *exa_redis_target = NULL;

void		_PG_init(void);

static bool check_redis_url(char **newval, void **extra, GucSource source);
static void assign_redis_url(const char *newval, void *extra);
static bool check_key_prefix(char **newval, void **extra, GucSource source);

/*
 * The steps of exa_parse_redis_url.  Each parses one part of the URL,
 * stores it in *target and returns EXA_REDIS_URL_OK, or points *problem at
 * a full sentence (marked for translation, never quoting the URL) and
 * returns why the URL is refused.
 */
#define URL_PROBLEM(sentence) (*problem = gettext_noop(sentence), EXA_REDIS_URL_INVALID)

/* No query, fragment, white space or control character anywhere. */
static ExaRedisUrlStatus
url_check_characters(const char *p, const char **problem)
{
	for (; *p; p++)
	{
		if (*p == '?' || *p == '#')
			return URL_PROBLEM("Query parameters and fragments are not supported.");
		if (isspace((unsigned char) *p) || iscntrl((unsigned char) *p))
			return URL_PROBLEM("The URL must not contain white space or control characters.");
	}
	return EXA_REDIS_URL_OK;
}

/* The user name: the bytes from *p up to at (the last '@'). */
static ExaRedisUrlStatus
url_parse_user(const char **p, const char *at, ExaRedisTarget *target,
			   const char **problem)
{
	size_t		len = at - *p;

	if (len == 0)
		return URL_PROBLEM("The user name before \"@\" is empty.");
	if (memchr(*p, '/', len) != NULL)
		return URL_PROBLEM("The user name must not contain \"/\".");
	if (len >= EXA_REDIS_USER_MAX)
		return URL_PROBLEM("The user name is too long.");
	memcpy(target->user, *p, len);
	target->user[len] = '\0';
	*p = at + 1;
	return EXA_REDIS_URL_OK;
}

/* An IPv6 address in brackets, from *p (at '[') before hostend. */
static ExaRedisUrlStatus
url_parse_ipv6(const char **p, const char *hostend, ExaRedisTarget *target,
			   const char **problem)
{
	const char *close = memchr(*p, ']', hostend - *p);
	const char *c;
	size_t		len;

	if (close == NULL)
		return URL_PROBLEM("An IPv6 address opened with \"[\" must be closed with \"]\".");
	len = close - (*p + 1);
	for (c = *p + 1; c < close; c++)
	{
		if (!isxdigit((unsigned char) *c) && *c != ':' && *c != '.')
			return URL_PROBLEM("The IPv6 address contains an invalid character.");
	}
	if (len == 0 || len >= EXA_REDIS_HOST_MAX)
		return URL_PROBLEM("The IPv6 address is empty or too long.");
	memcpy(target->host, *p + 1, len);
	target->host[len] = '\0';
	*p = close + 1;
	if (*p < hostend && **p != ':')
		return URL_PROBLEM("Only \":port\" may follow the IPv6 address.");
	return EXA_REDIS_URL_OK;
}

/* A host name, from *p up to ':' or hostend. */
static ExaRedisUrlStatus
url_parse_hostname(const char **p, const char *hostend, ExaRedisTarget *target,
				   const char **problem)
{
	const char *c;
	size_t		len;

	for (c = *p; c < hostend && *c != ':'; c++)
	{
		if (!isalnum((unsigned char) *c) && *c != '.' && *c != '-' &&
			*c != '_')
			return URL_PROBLEM("The host name contains an invalid character.");
	}
	len = c - *p;
	if (len == 0)
		return URL_PROBLEM("The host is missing.");
	if (len >= EXA_REDIS_HOST_MAX)
		return URL_PROBLEM("The host name is too long.");
	memcpy(target->host, *p, len);
	target->host[len] = '\0';
	*p = c;
	return EXA_REDIS_URL_OK;
}

/* An optional ":port", from p before hostend. */
static ExaRedisUrlStatus
url_parse_port(const char *p, const char *hostend, ExaRedisTarget *target,
			   const char **problem)
{
	long		port = 0;

	if (p >= hostend || *p != ':')
		return EXA_REDIS_URL_OK;
	p++;
	if (p == hostend)
		return URL_PROBLEM("The port after \":\" is empty.");
	for (; p < hostend; p++)
	{
		if (!isdigit((unsigned char) *p))
			return URL_PROBLEM("The port must be a number.");
		port = port * 10 + (*p - '0');
		if (port > 65535)
			break;
	}
	if (port < 1 || port > 65535)
		return URL_PROBLEM("The port must lie between 1 and 65535.");
	target->port = (int) port;
	return EXA_REDIS_URL_OK;
}

/* An optional "/db", slash pointing at the '/' (or NULL). */
static ExaRedisUrlStatus
url_parse_db(const char *slash, ExaRedisTarget *target, const char **problem)
{
	long		db = 0;
	const char *p;

	if (slash == NULL || slash[1] == '\0')
		return EXA_REDIS_URL_OK;
	for (p = slash + 1; *p; p++)
	{
		if (!isdigit((unsigned char) *p))
			return URL_PROBLEM("The database after \"/\" must be a non-negative number.");
		db = db * 10 + (*p - '0');
		if (db > INT_MAX)
			return URL_PROBLEM("The database number is too large.");
	}
	target->db = (int) db;
	return EXA_REDIS_URL_OK;
}

/*
 * Parse a Redis URL of the form redis://[user@]host[:port][/db] into
 * *target.  On failure return why and point *problem at a full sentence
 * saying what is wrong (suitable for errdetail, after translation with _());
 * the sentence never quotes the URL, which might hold a password.  A
 * password in the user part (user:secret@, :secret@) and rediss:// have
 * statuses of their own, so that callers can word those refusals
 * distinctly.
 *
 * Allocates nothing and never raises, so GUC check hooks may call it.
 */
ExaRedisUrlStatus
exa_parse_redis_url(const char *url, ExaRedisTarget *target,
					const char **problem)
{
	const char *p;
	const char *at;
	const char *slash;
	const char *hostend;
	ExaRedisUrlStatus status;

	memset(target, 0, sizeof(ExaRedisTarget));
	target->port = EXA_REDIS_DEFAULT_PORT;
	target->db = 0;

	if (pg_strncasecmp(url, "rediss://", 9) == 0)
	{
		*problem = gettext_noop("TLS (rediss://) is not supported by hiredis 0.14.");
		return EXA_REDIS_URL_TLS;
	}
	if (pg_strncasecmp(url, "redis://", 8) != 0)
		return URL_PROBLEM("The URL must start with redis://.");
	p = url + 8;

	/*
	 * The user part ends at the last '@': a password may contain '@', '/',
	 * '?' or anything else, and must be recognised as one before the rest is
	 * parsed.
	 */
	at = strrchr(p, '@');
	if (at != NULL && memchr(p, ':', at - p) != NULL)
	{
		*problem = gettext_noop("The URL contains a password.");
		return EXA_REDIS_URL_PASSWORD;
	}
	if ((status = url_check_characters(p, problem)) != EXA_REDIS_URL_OK)
		return status;
	if (at != NULL &&
		(status = url_parse_user(&p, at, target, problem)) != EXA_REDIS_URL_OK)
		return status;

	/* host[:port] up to an optional /db */
	slash = strchr(p, '/');
	hostend = slash ? slash : p + strlen(p);
	if (*p == '[')
		status = url_parse_ipv6(&p, hostend, target, problem);
	else
		status = url_parse_hostname(&p, hostend, target, problem);
	if (status != EXA_REDIS_URL_OK)
		return status;
	if ((status = url_parse_port(p, hostend, target, problem)) != EXA_REDIS_URL_OK)
		return status;
	return url_parse_db(slash, target, problem);
}

/*
 * Check hook of exchange_adapter.redis_url.  '' means "no Redis".  The error
 * message never repeats the value: GUC's default message would print it, and
 * a refused value may hold a password.
 */
static bool
check_redis_url(char **newval, void **extra, GucSource source)
{
	ExaRedisTarget parsed;
	ExaRedisTarget *copy;
	ExaRedisUrlStatus status;
	const char *problem = NULL;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		*extra = NULL;
		return true;
	}

	status = exa_parse_redis_url(*newval, &parsed, &problem);
	if (status != EXA_REDIS_URL_OK)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		if (status == EXA_REDIS_URL_TLS)
		{
			GUC_check_errmsg("TLS connections to Redis are not supported");
			GUC_check_errdetail("\"%s\" uses rediss://, but hiredis 0.14 has no TLS support.",
								"exchange_adapter.redis_url");
			GUC_check_errhint("Use a redis:// URL on a trusted network, or reach Redis through a local TLS tunnel.");
		}
		else if (status == EXA_REDIS_URL_PASSWORD)
		{
			GUC_check_errmsg("\"%s\" must not contain a password",
							 "exchange_adapter.redis_url");
			GUC_check_errdetail("A password in the URL would be visible in pg_settings and could reach logs.");
			GUC_check_errhint("Remove the password from the URL and write it to the file named by \"%s\".",
							  "exchange_adapter.redis_password_file");
		}
		else
		{
			GUC_check_errmsg("invalid Redis URL in \"%s\"", "exchange_adapter.redis_url");
			/* problem: a literal sentence marked with gettext_noop */
			GUC_check_errdetail("%s", _(problem));
			GUC_check_errhint("The form is redis://[user@]host[:port][/db], or '' for no Redis.");
		}
		return false;
	}

	/* GUC keeps *extra and frees it with free(); it must be malloc'd. */
	copy = (ExaRedisTarget *) malloc(sizeof(ExaRedisTarget));
	if (copy == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	memcpy(copy, &parsed, sizeof(ExaRedisTarget));
	*extra = copy;
	return true;
}

static void
assign_redis_url(const char *newval, void *extra)
{
	exa_redis_target = (const ExaRedisTarget *) extra;
}

/*
 * Check hook of exchange_adapter.key_prefix.  The worker matches the cache
 * space with SCAN MATCH <prefix>cache:*, so glob metacharacters would widen
 * or break the pattern; white space and control characters have no place in
 * a key either.
 */
static bool
check_key_prefix(char **newval, void **extra, GucSource source)
{
	const char *c;

	if (*newval == NULL)
		return true;

	for (c = *newval; *c; c++)
	{
		if (strchr("*?[]\\", *c) != NULL ||
			isspace((unsigned char) *c) || iscntrl((unsigned char) *c))
		{
			GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			GUC_check_errdetail("The key prefix must not contain glob characters (*?[]\\), white space or control characters.");
			return false;
		}
	}
	return true;
}

/* Settings of the launcher and the worker (README "Settings"). */
static void
define_worker_settings(void)
{
	DefineCustomStringVariable("exchange_adapter.database",
							   "Database whose outbox the background worker delivers.",
							   "The launcher starts one worker for this database; an empty "
							   "string starts none.",
							   &exa_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("exchange_adapter.poll_interval",
							"Longest time the worker sleeps before looking at the outbox.",
							"Commits wake the worker at once; the poll picks up prepared "
							"transactions and expired claims.",
							&exa_poll_interval,
							1000, 10, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("exchange_adapter.retry_backoff_max",
							"Longest delay between two attempts to reach Redis.",
							NULL,
							&exa_retry_backoff_max,
							30000, 100, 600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("exchange_adapter.outbox_batch_size",
							"Most outbox rows the worker claims in one batch.",
							NULL,
							&exa_outbox_batch_size,
							1000, 1, 100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("exchange_adapter.outbox_flush_after",
							"Backlog age beyond which the worker invalidates the whole cache space instead of replaying it.",
							"-1: always replay the backlog key by key.",
							&exa_outbox_flush_after,
							600, -1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	/*
	 * A resource guard on the batch calls (README "Batches"): superuser-set,
	 * so that a client cannot lift it; ALTER ROLE ... SET may.
	 */
	DefineCustomIntVariable("exchange_adapter.max_batch",
							"Most items one batch call (place_orders, cancel_order_ids, apply_trades, apply_matches) accepts.",
							NULL,
							&exa_max_batch,
							10000, 1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/* Settings of the connection to Redis and of its keys (README "Settings"). */
static void
define_redis_settings(void)
{
	DefineCustomStringVariable("exchange_adapter.redis_url",
							   "Redis server the worker pushes to, as redis://[user@]host[:port][/db].",
							   "Empty: no Redis.  Must not contain a password (see "
							   "exchange_adapter.redis_password_file); rediss:// is refused.",
							   &exa_redis_url,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_redis_url, assign_redis_url, NULL);

	DefineCustomStringVariable("exchange_adapter.redis_password_file",
							   "File holding the Redis password, read at each connect.",
							   "Empty: no AUTH password.",
							   &exa_redis_password_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("exchange_adapter.redis_connect_timeout",
							"Deadline for connecting to Redis, including AUTH and SELECT.",
							NULL,
							&exa_redis_connect_timeout,
							2000, 100, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("exchange_adapter.redis_command_timeout",
							"Deadline for one Redis command or pipeline.",
							NULL,
							&exa_redis_command_timeout,
							2000, 100, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("exchange_adapter.key_prefix",
							   "Prefix of every Redis key the extension writes.",
							   "The Go services expect the default.",
							   &exa_key_prefix,
							   "exchange:",
							   PGC_SIGHUP,
							   0,
							   check_key_prefix, NULL, NULL);

	DefineCustomStringVariable("exchange_adapter.invalidation_channel",
							   "Redis channel on which invalidations are published (not prefixed).",
							   "Empty: no PUBLISH.",
							   &exa_invalidation_channel,
							   "exchange:invalidations",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
}

/* Settings of the service registry and the worker's own registration. */
static void
define_registry_settings(void)
{
	DefineCustomIntVariable("exchange_adapter.heartbeat_interval",
							"Interval at which the worker re-applies live service registrations.",
							"Keep it below every registration's ttl.",
							&exa_heartbeat_interval,
							30, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("exchange_adapter.service_id",
							   "Service id under which the worker registers this database.",
							   "Empty: no self-registration.",
							   &exa_service_id,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("exchange_adapter.service_name",
							   "Service name of the self-registration.",
							   NULL,
							   &exa_service_name,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("exchange_adapter.service_address",
							   "Address published by the self-registration.",
							   NULL,
							   &exa_service_address,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("exchange_adapter.service_port",
							"Port published by the self-registration.",
							"0: none.",
							&exa_service_port,
							0, 0, 65535,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
}

/* Settings of DROP EXTENSION (ddl_guard.c). */
static void
define_drop_settings(void)
{
	/*
	 * The one setting that is not PGC_SIGHUP.  It is a per-session safety
	 * catch for DROP EXTENSION (ddl_guard.c): a superuser turns it on in the
	 * session that drops a non-empty ledger, so a cluster-wide reload can
	 * never leave every session able to destroy it.  PGC_SUSET keeps other
	 * roles from setting it; like every setting here it is not
	 * PGC_POSTMASTER, so loading without preload still works.
	 */
	DefineCustomBoolVariable("exchange_adapter.allow_drop",
							 "Allows DROP EXTENSION exchange_adapter while the ledger holds rows.",
							 "Set it in the dropping session, after dumping the ledger.",
							 &exa_allow_drop,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
}

/*
 * Module load.  Defines the settings in every process that loads the
 * library; registers the launcher only from shared_preload_libraries.
 */
void
_PG_init(void)
{
	define_worker_settings();
	define_redis_settings();
	define_registry_settings();
	define_drop_settings();
	MarkGUCPrefixReserved(EXA_GUC_PREFIX);
	exa_check_cache_init();

	if (process_shared_preload_libraries_in_progress)
	{
		exa_shmem_register();
		exa_launcher_register();
	}
}

/*
 * OID of schema exchange, or InvalidOid when missing_ok and it is absent.
 */
Oid
exa_schema_oid(bool missing_ok)
{
	return get_namespace_oid(EXA_SCHEMA_NAME, missing_ok);
}

/*
 * OID of relation exchange.<relname>, or InvalidOid when it (or the schema)
 * does not exist: the C equivalent of to_regclass, without search_path.
 */
Oid
exa_relation_oid(const char *relname)
{
	Oid			nsp = exa_schema_oid(true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid(relname, nsp);
}

/*
 * The actor recorded in the journals (README "Data model"): session_user,
 * followed by "/" and the outer role when SET ROLE made it differ.  Inside a
 * SECURITY DEFINER function current_user is the definer, so it is never used.
 */
char *
exa_actor_cstring(void)
{
	Oid			session = GetSessionUserId();
	Oid			outer = GetOuterUserId();
	char	   *session_name = GetUserNameFromId(session, true);
	char	   *outer_name;

	if (session_name == NULL)
		session_name = psprintf("role %u", session);
	if (outer == session)
		return session_name;

	outer_name = GetUserNameFromId(outer, true);
	if (outer_name == NULL)
		outer_name = psprintf("role %u", outer);
	return psprintf("%s/%s", session_name, outer_name);
}

text *
exa_actor(void)
{
	return cstring_to_text(exa_actor_cstring());
}
