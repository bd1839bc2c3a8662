/*-------------------------------------------------------------------------
 *
 * redis_client.h
 *	  The latch-aware hiredis 0.14 client (README "Redis delivery", "Connection").
 *
 * One RedisClient per process (the worker) or per call (discover_services,
 * flush_outbox).  Every wait is a WaitLatchOrSocket with a deadline followed
 * by CHECK_FOR_INTERRUPTS; no blocking hiredis call is ever made.  Failures
 * of the connection are returned as a RedisResult with a message in
 * client->errmsg (never the password); the connection is then already
 * closed.  Error replies to single commands (NOPERM, OOM, ...) are not
 * failures of the connection: the caller inspects each reply.
 *
 * If an interrupt raises an error inside the client (query cancel,
 * terminate), the client closes the connection and frees every hiredis
 * object before the error propagates, so callers need no cleanup of their
 * own for the client (they may still hold pointers to replies: those are
 * gone too).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXA_REDIS_CLIENT_H
#define EXA_REDIS_CLIENT_H

#include <hiredis/hiredis.h>

#include "exchange_adapter.h"

typedef enum RedisResult
{
	REDIS_RESULT_OK = 0,
	REDIS_RESULT_CONFIG,		/* no redis_url, unreadable password file */
	REDIS_RESULT_CONNECT,		/* could not resolve, connect, or fd limit */
	REDIS_RESULT_AUTH,			/* AUTH or SELECT refused */
	REDIS_RESULT_TIMEOUT,		/* a deadline passed */
	REDIS_RESULT_IO				/* connection lost, protocol error */
} RedisResult;

typedef struct RedisClient
{
	redisContext *ctx;			/* NULL when not connected */
	bool		fd_reserved;	/* AcquireExternalFD done for ctx->fd */
	MemoryContext mcxt;			/* our allocations; reset on (re)connect */
	char	   *password;		/* during connect only (in mcxt), else NULL */
	char	   *authcmd;		/* AUTH in RESP, while being sent, else NULL */
	size_t		authcmdlen;		/* allocated length of authcmd */
	redisReply **replies;		/* replies of the last pipeline (in mcxt) */
	int			nreplies;		/* received so far */
	int			npending;		/* appended, not yet read */
	int			maxreplies;		/* allocated length of replies */
	uint32		wait_event;		/* reported while waiting */
	char		server[EXA_REDIS_HOST_MAX + 16];	/* "addr:port", for messages */
	char		errmsg[512];	/* last failure, never a secret */
} RedisClient;

/*
 * Create a client in TopMemoryContext-owned memory (once per process, or
 * per call with a short-lived parent).  Not connected.
 */
extern RedisClient *exa_redis_client_create(MemoryContext parent);

/*
 * Connect to exa_redis_target: resolve, non-blocking connect, AUTH with the
 * user of the URL and the password of redis_password_file (read now), then
 * SELECT when db != 0, all within redis_connect_timeout.  Closes any previous
 * connection first.
 */
extern RedisResult exa_redis_connect(RedisClient *client);

/* Close the connection and free hiredis state.  Never raises. */
extern void exa_redis_disconnect(RedisClient *client);

/* Close, and free the client itself (its memory context).  Never raises. */
extern void exa_redis_client_destroy(RedisClient *client);

static inline bool
redis_is_connected(RedisClient *client)
{
	return client->ctx != NULL;
}

/*
 * Pipelining: append any number of commands, then exa_redis_flush() sends them
 * and reads one reply per command within timeout_ms (the whole exchange).
 * Replies stay valid until the next exa_redis_append after a flush, or until
 * exa_redis_clear_replies / disconnect.  On a failure the connection is closed.
 */
extern void exa_redis_append(RedisClient *client, int argc, const char **argv,
							 const size_t *argvlen);
extern void exa_redis_appendv(RedisClient *client, int argc,...);	/* C strings */
extern RedisResult exa_redis_flush(RedisClient *client, int timeout_ms);
extern redisReply *exa_redis_reply(RedisClient *client, int i);
extern void exa_redis_clear_replies(RedisClient *client);

/* Helpers on replies. */
extern bool exa_redis_reply_is_error(const redisReply *reply);
extern bool exa_redis_reply_is_noperm(const redisReply *reply);
extern bool exa_redis_reply_is_unknown_command(const redisReply *reply);

#endif							/* EXA_REDIS_CLIENT_H */
