/*-------------------------------------------------------------------------
 *
 * exchange_adapter.h
 *	  Shared declarations of the exchange_adapter extension.
 *
 * This header owns what more than one source file needs: the names of the
 * schema and its tables, the SQLSTATEs of the LX class (README "Errors"),
 * the settings (README "Settings", defined in exchange_adapter.c), the parsed
 * Redis URL and a few small helpers.  It must not grow module-private state:
 * anything used by one file only stays static in that file.
 *
 * Include it after postgres.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXCHANGE_ADAPTER_H
#define EXCHANGE_ADAPTER_H

#include "fmgr.h"

/* Names fixed by the control file and README "Data model". */
#define EXA_EXTENSION_NAME	"exchange_adapter"
#define EXA_SCHEMA_NAME		"exchange"
#define EXA_GUC_PREFIX		"exchange_adapter"

/*
 * Domain errors, SQLSTATE class LX (implementation-defined, unused by
 * PostgreSQL).  Clients branch on these codes; never renumber them.
 */
#define ERRCODE_EXA_INSUFFICIENT_FUNDS		MAKE_SQLSTATE('L','X','0','0','1')
#define ERRCODE_EXA_ILLEGAL_TRANSITION		MAKE_SQLSTATE('L','X','0','0','2')
#define ERRCODE_EXA_NOT_FOUND				MAKE_SQLSTATE('L','X','0','0','3')
#define ERRCODE_EXA_ACCOUNT_NOT_ACTIVE		MAKE_SQLSTATE('L','X','0','0','4')
#define ERRCODE_EXA_RESERVED				MAKE_SQLSTATE('L','X','0','0','5')
#define ERRCODE_EXA_PRICE_OUTSIDE_LIMIT		MAKE_SQLSTATE('L','X','0','0','6')
#define ERRCODE_EXA_OVERFILL				MAKE_SQLSTATE('L','X','0','0','7')
#define ERRCODE_EXA_FILL_OR_KILL_REFUSED	MAKE_SQLSTATE('L','X','0','0','8')
#define ERRCODE_EXA_IDEMPOTENCY_CONFLICT	MAKE_SQLSTATE('L','X','0','0','9')
#define ERRCODE_EXA_ALREADY_EXISTS			MAKE_SQLSTATE('L','X','0','1','0')
#define ERRCODE_EXA_REDIS_UNAVAILABLE		MAKE_SQLSTATE('L','X','0','1','1')
#define ERRCODE_EXA_MATCHED_INTERNALLY		MAKE_SQLSTATE('L','X','0','1','2')

/*
 * Relations of schema exchange.  The ledger tables hold dumped state and are
 * readable by every grant_adapter profile, like the read views; the internal
 * tables (outbox, service registry) are neither dumped nor readable by
 * application roles.  Each list ends with NULL.
 */
extern const char *const exa_ledger_tables[];
extern const char *const exa_internal_tables[];
extern const char *const exa_read_views[];

/*
 * Settings (README "Settings"), all exchange_adapter.*, all PGC_SIGHUP except
 * allow_drop (PGC_SUSET).  Defined in exchange_adapter.c.
 */
extern char *exa_database;
extern char *exa_redis_url;
extern char *exa_redis_password_file;
extern int	exa_redis_connect_timeout;	/* ms */
extern int	exa_redis_command_timeout;	/* ms */
extern int	exa_poll_interval;	/* ms */
extern int	exa_retry_backoff_max;	/* ms */
extern int	exa_max_batch;	/* items per batch call */
extern int	exa_outbox_batch_size;	/* rows */
extern int	exa_outbox_flush_after;	/* s, -1: never */
extern char *exa_key_prefix;
extern char *exa_invalidation_channel;
extern int	exa_heartbeat_interval;	/* s */
extern char *exa_service_id;
extern char *exa_service_name;
extern char *exa_service_address;
extern int	exa_service_port;	/* 0: none */
extern bool exa_allow_drop;

/*
 * exchange_adapter.redis_url, parsed by its check hook:
 * redis://[user@]host[:port][/db].  Never holds a password (a URL with one
 * is refused; the password comes from redis_password_file at each connect).
 */
#define EXA_REDIS_DEFAULT_PORT	6379
#define EXA_REDIS_USER_MAX		128
#define EXA_REDIS_HOST_MAX		256

typedef struct ExaRedisTarget
{
	char		user[EXA_REDIS_USER_MAX];	/* "" when absent */
	char		host[EXA_REDIS_HOST_MAX];	/* IPv6 without brackets */
	int			port;
	int			db;
} ExaRedisTarget;

/* The current redis_url, parsed; NULL when it is '' (no Redis). */
extern const ExaRedisTarget *exa_redis_target;

/* What exa_parse_redis_url found. */
typedef enum ExaRedisUrlStatus
{
	EXA_REDIS_URL_OK,
	EXA_REDIS_URL_TLS,			/* rediss:// */
	EXA_REDIS_URL_PASSWORD,		/* user:secret@ or :secret@ */
	EXA_REDIS_URL_INVALID		/* anything else that is not the grammar */
} ExaRedisUrlStatus;

extern ExaRedisUrlStatus exa_parse_redis_url(const char *url,
											 ExaRedisTarget *target,
											 const char **problem);

/* Small shared helpers (exchange_adapter.c). */
extern Oid	exa_schema_oid(bool missing_ok);
extern Oid	exa_relation_oid(const char *relname);
extern char *exa_actor_cstring(void);
extern text *exa_actor(void);

/* launcher.c */
extern void exa_launcher_register(void);
/* The launcher's entry point; never returns (exits with proc_exit). */
extern PGDLLEXPORT void exa_launcher_main(Datum main_arg) pg_attribute_noreturn();

#endif							/* EXCHANGE_ADAPTER_H */
