/*-------------------------------------------------------------------------
 *
 * redis_client.c
 *	  The latch-aware hiredis 0.14 client (README "Redis delivery", "Connection").
 *
 * This file owns every call into hiredis.  The model is PostgreSQL's
 * libpq-be-fe-helpers.h: the socket is accounted with AcquireExternalFD,
 * the connect is non-blocking (redisConnectNonBlock to an address resolved
 * here), and all I/O goes through redisBufferWrite / redisBufferRead /
 * redisGetReplyFromReader between waits on WaitLatchOrSocket with a
 * deadline, each followed by CHECK_FOR_INTERRUPTS, so that SIGTERM, query
 * cancel, ProcSignalBarriers (DROP DATABASE) and postmaster death are served
 * within one wait whatever Redis does.  No blocking hiredis call
 * (redisCommand, redisGetReply, redisConnect...) may ever appear here.
 *
 * Rules:
 *	 - hiredis allocates with malloc: every redisContext and redisReply is
 *	   freed by exa_redis_disconnect / exa_redis_clear_replies, and an error
 *	   thrown by CHECK_FOR_INTERRUPTS while hiredis state is live is caught
 *	   (PG_TRY), the state freed, and the error re-thrown.
 *	 - Our own allocations (the reply array, the password) live in one
 *	   memory context per client, reset at every (re)connect and at
 *	   disconnect, so a worker that reconnects for days stays flat.
 *	 - The password is read from redis_password_file at each connect with
 *	   open()/read() (no stdio buffer), kept only until AUTH is written, then
 *	   zeroed; AUTH is built and sent here, never through hiredis' buffers
 *	   (send_auth), and zeroed too.  No message ever quotes it.
 *	 - Nothing here raises for a Redis problem: failures come back as a
 *	   RedisResult and client->errmsg, and the connection is closed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "redis_client.h"

/* Longest password file we read; Redis allows longer, nobody uses them. */
#define REDIS_PASSWORD_MAX	4096

static void redis_fail(RedisClient *client, const char *fmt,...) pg_attribute_printf(2, 3);
static void forget_password(RedisClient *client);
static int	redis_wait(RedisClient *client, int events, TimestampTz deadline);

RedisClient *
exa_redis_client_create(MemoryContext parent)
{
	RedisClient *client;

	client = MemoryContextAllocZero(parent, sizeof(RedisClient));
	client->mcxt = AllocSetContextCreate(parent,
										 "exchange_adapter redis client",
										 ALLOCSET_SMALL_SIZES);
	client->wait_event = PG_WAIT_EXTENSION;
	return client;
}

/*
 * Free replies and the context, release the fd, reset our memory.  Must not
 * raise: it runs in PG_CATCH blocks.
 */
void
exa_redis_disconnect(RedisClient *client)
{
	forget_password(client);
	exa_redis_clear_replies(client);
	if (client->ctx != NULL)
	{
		redisFree(client->ctx);
		client->ctx = NULL;
	}
	if (client->fd_reserved)
	{
		ReleaseExternalFD();
		client->fd_reserved = false;
	}
	client->replies = NULL;
	client->maxreplies = 0;
	MemoryContextReset(client->mcxt);
}

void
exa_redis_client_destroy(RedisClient *client)
{
	exa_redis_disconnect(client);
	MemoryContextDelete(client->mcxt);
	pfree(client);
}

/* Record a failure message and close the connection. */
static void
redis_fail(RedisClient *client, const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(client->errmsg, sizeof(client->errmsg), fmt, args);
	va_end(args);
	exa_redis_disconnect(client);
}

/*
 * Wait for one of the socket events, the latch or the deadline.  Returns the
 * socket events that fired, or 0 when the deadline passed.  Interrupts are
 * processed after every wake-up; the latch is reset here, so a caller that
 * relies on its latch to learn about new work must look for it again after
 * talking to Redis (the worker claims again after every push).
 */
static int
redis_wait(RedisClient *client, int events, TimestampTz deadline)
{
	for (;;)
	{
		long		timeout;
		int			rc;

		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
												  deadline);
		if (timeout <= 0)
			return 0;

		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH |
							   events,
							   client->ctx->fd, timeout, client->wait_event);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (rc & events)
			return rc & events;
	}
}

/*
 * Read the password file into buf (NUL-terminated, trailing CR/LF removed).
 * Returns false with client->errmsg set when it cannot be read.  *len is 0
 * when no file is configured.
 *
 * Plain open()/read() into buf, never stdio: a FILE's buffer is malloc'd by
 * libc and freed by fclose() with the password still in it.  buf is the only
 * copy, and every failure path zeroes it.
 */
static bool
read_password_file(RedisClient *client, char *buf, size_t bufsize, size_t *len)
{
	const char *path = exa_redis_password_file;
	int			fd;
	size_t		n = 0;

	*len = 0;
	buf[0] = '\0';
	if (path == NULL || path[0] == '\0')
		return true;

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		snprintf(client->errmsg, sizeof(client->errmsg),
				 "could not open Redis password file \"%s\": %m", path);
		return false;
	}
	for (;;)
	{
		ssize_t		rc;

		/* One byte more than a password may hold, to notice a long file. */
		rc = read(fd, buf + n, bufsize - n);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
		{
			snprintf(client->errmsg, sizeof(client->errmsg),
					 "could not read Redis password file \"%s\": %m", path);
			CloseTransientFile(fd);
			explicit_bzero(buf, bufsize);
			return false;
		}
		if (rc == 0)
			break;
		n += rc;
		if (n == bufsize)
		{
			snprintf(client->errmsg, sizeof(client->errmsg),
					 "Redis password file \"%s\" is longer than %d bytes",
					 path, REDIS_PASSWORD_MAX);
			CloseTransientFile(fd);
			explicit_bzero(buf, bufsize);
			return false;
		}
	}
	CloseTransientFile(fd);

	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (n == 0)
	{
		snprintf(client->errmsg, sizeof(client->errmsg),
				 "Redis password file \"%s\" is empty", path);
		explicit_bzero(buf, bufsize);
		return false;
	}
	if (memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL)
	{
		snprintf(client->errmsg, sizeof(client->errmsg),
				 "Redis password file \"%s\" must hold one line", path);
		explicit_bzero(buf, bufsize);
		return false;
	}
	*len = n;
	return true;
}

/*
 * Resolve host to a numeric address (first result) so that hiredis' own
 * getaddrinfo never blocks on DNS.  getaddrinfo itself may block for a DNS
 * name: the README recommends an IP or a hosts-file name.
 */
static bool
resolve_host(RedisClient *client, const char *host, char *addr, size_t addrlen)
{
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	int			rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || res == NULL)
	{
		snprintf(client->errmsg, sizeof(client->errmsg),
				 "could not resolve Redis host \"%s\": %s",
				 host, rc != 0 ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return false;
	}
	rc = getnameinfo(res->ai_addr, res->ai_addrlen, addr, addrlen,
					 NULL, 0, NI_NUMERICHOST);
	freeaddrinfo(res);
	if (rc != 0)
	{
		snprintf(client->errmsg, sizeof(client->errmsg),
				 "could not resolve Redis host \"%s\": %s",
				 host, gai_strerror(rc));
		return false;
	}
	return true;
}

/* Zero and forget the password read for this connect, and the AUTH command. */
static void
forget_password(RedisClient *client)
{
	if (client->password != NULL)
	{
		explicit_bzero(client->password, REDIS_PASSWORD_MAX + 1);
		client->password = NULL;
	}
	if (client->authcmd != NULL)
	{
		explicit_bzero(client->authcmd, client->authcmdlen);
		client->authcmd = NULL;
		client->authcmdlen = 0;
	}
}

/*
 * Send AUTH [user] password on the socket ourselves, not through hiredis.
 * redisAppendCommandArgv would format the password into an sds string of
 * its own, copy that into the context's output buffer c->obuf, and free
 * both (the first at once, c->obuf once written) without zeroing them: two
 * copies left in freed malloc memory.  Zeroing c->obuf before hiredis frees
 * it would not reach the first copy, nor the old block of an obuf that
 * sdscatlen() grew with realloc.  So the RESP command is built here, in one
 * buffer of our context that is zeroed as soon as it is written or on any
 * failure (exa_redis_disconnect -> forget_password), and written with send()
 * between latch-aware waits.  It must be the first thing sent (hiredis'
 * output buffer is still empty), so the bytes on the wire stay in order;
 * its reply is read by exa_redis_flush like any other (npending counts it).
 */
/*
 * Append n bytes to the AUTH command being built (client->authcmd, *len
 * bytes used).  The room is computed by send_auth; should it ever be short,
 * the buffer and the password are zeroed (exa_redis_disconnect) before raising.
 */
static void
auth_put(RedisClient *client, size_t *len, const char *data, size_t n)
{
	if (n > client->authcmdlen - *len)
	{
		size_t		cap = client->authcmdlen;

		exa_redis_disconnect(client);
		elog(ERROR, "Redis AUTH command does not fit in its buffer of %zu bytes",
			 cap);
	}
	memcpy(client->authcmd + *len, data, n);
	*len += n;
}

/* Append one RESP bulk string ($len, the bytes) to the AUTH command. */
static void
auth_put_bulk(RedisClient *client, size_t *len, const char *data, size_t n)
{
	char		head[32];
	int			headlen = snprintf(head, sizeof(head), "$%zu\r\n", n);

	auth_put(client, len, head, headlen);
	auth_put(client, len, data, n);
	auth_put(client, len, "\r\n", 2);
}

static RedisResult
send_auth(RedisClient *client, const char *user, size_t passlen,
		  TimestampTz deadline)
{
	size_t		userlen = strlen(user);
	size_t		len = 0;
	volatile size_t off = 0;
	volatile RedisResult result = REDIS_RESULT_OK;
	char	   *cmd;

	Assert(client->authcmd == NULL);
	client->authcmdlen = 64 + userlen + passlen;
	client->authcmd = MemoryContextAlloc(client->mcxt, client->authcmdlen);

	/* RESP: *N, then $len and the bytes of each argument. */
	auth_put(client, &len, userlen > 0 ? "*3\r\n" : "*2\r\n", 4);
	auth_put_bulk(client, &len, "AUTH", 4);
	if (userlen > 0)
		auth_put_bulk(client, &len, user, userlen);
	auth_put_bulk(client, &len, client->password, passlen);
	cmd = client->authcmd;

	PG_TRY();
	{
		while (off < len)
		{
			ssize_t		rc;

#ifdef MSG_NOSIGNAL
			rc = send(client->ctx->fd, cmd + off, len - off, MSG_NOSIGNAL);
#else
			rc = send(client->ctx->fd, cmd + off, len - off, 0);
#endif
			if (rc > 0)
			{
				off += rc;
				continue;
			}
			if (rc < 0 && errno == EINTR)
				continue;
			if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			{
				if (redis_wait(client, WL_SOCKET_WRITEABLE, deadline) == 0)
				{
					redis_fail(client, "Redis at %s did not accept AUTH within %d ms",
							   client->server, exa_redis_connect_timeout);
					result = REDIS_RESULT_TIMEOUT;
					break;
				}
				continue;
			}
			redis_fail(client, "could not send to Redis at %s: %m",
					   client->server);
			result = REDIS_RESULT_IO;
			break;
		}
	}
	PG_CATCH();
	{
		exa_redis_disconnect(client);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* redis_fail zeroed it already; zero it now on success too. */
	forget_password(client);
	if (result == REDIS_RESULT_OK)
		client->npending++;
	return result;
}

/*
 * Wait until the non-blocking connect completes and check its outcome.
 * On failure the connection is closed and errmsg set.
 */
static RedisResult
connect_wait(RedisClient *client, TimestampTz deadline)
{
	RedisResult result;
	int			sockerr = 0;
	socklen_t	optlen = sizeof(sockerr);

	PG_TRY();
	{
		if (redis_wait(client, WL_SOCKET_CONNECTED, deadline) == 0)
		{
			redis_fail(client, "could not connect to Redis at %s: timed out after %d ms",
					   client->server, exa_redis_connect_timeout);
			result = REDIS_RESULT_TIMEOUT;
		}
		else if (getsockopt(client->ctx->fd, SOL_SOCKET, SO_ERROR,
							&sockerr, &optlen) != 0 || sockerr != 0)
		{
			if (sockerr == 0)
				sockerr = errno;
			errno = sockerr;
			redis_fail(client, "could not connect to Redis at %s: %m",
					   client->server);
			result = REDIS_RESULT_CONNECT;
		}
		else
			result = REDIS_RESULT_OK;
	}
	PG_CATCH();
	{
		exa_redis_disconnect(client);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return result;
}

RedisResult
exa_redis_connect(RedisClient *client)
{
	const ExaRedisTarget *target = exa_redis_target;
	TimestampTz deadline;
	char		addr[NI_MAXHOST];
	size_t		passlen;
	RedisResult result;
	int			nauth = 0;

	exa_redis_disconnect(client);
	client->errmsg[0] = '\0';

	if (target == NULL)
	{
		snprintf(client->errmsg, sizeof(client->errmsg),
				 "exchange_adapter.redis_url is not set");
		return REDIS_RESULT_CONFIG;
	}
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   exa_redis_connect_timeout);
	snprintf(client->server, sizeof(client->server), "%s%s%s:%d",
			 strchr(target->host, ':') ? "[" : "", target->host,
			 strchr(target->host, ':') ? "]" : "", target->port);

	client->password = MemoryContextAlloc(client->mcxt, REDIS_PASSWORD_MAX + 1);
	if (!read_password_file(client, client->password, REDIS_PASSWORD_MAX + 1,
							&passlen))
	{
		forget_password(client);
		MemoryContextReset(client->mcxt);
		return REDIS_RESULT_CONFIG;
	}

	if (!resolve_host(client, target->host, addr, sizeof(addr)))
	{
		forget_password(client);
		MemoryContextReset(client->mcxt);
		return REDIS_RESULT_CONNECT;
	}

	/* Obey fd.c's limit on non-virtual descriptors, as libpq callers do. */
	if (!AcquireExternalFD())
	{
		forget_password(client);
		MemoryContextReset(client->mcxt);
		snprintf(client->errmsg, sizeof(client->errmsg),
				 "could not connect to Redis at %s: too many open files",
				 client->server);
		return REDIS_RESULT_CONNECT;
	}
	client->fd_reserved = true;

	client->ctx = redisConnectNonBlock(addr, target->port);
	if (client->ctx == NULL || client->ctx->err)
	{
		char		reason[128];

		strlcpy(reason, client->ctx ? client->ctx->errstr : "out of memory",
				sizeof(reason));
		redis_fail(client, "could not connect to Redis at %s: %s",
				   client->server, reason);
		return REDIS_RESULT_CONNECT;
	}

	/* exa_redis_disconnect zeroes the password on every failure path. */
	result = connect_wait(client, deadline);
	if (result != REDIS_RESULT_OK)
		return result;

	/* Dead peers are noticed by the deadlines; keepalive frees idle ones. */
	(void) redisEnableKeepAlive(client->ctx);

	if (passlen > 0 || target->user[0] != '\0')
	{
		result = send_auth(client, target->user, passlen, deadline);
		if (result != REDIS_RESULT_OK)
			return result;
		nauth = 1;
	}
	forget_password(client);
	if (target->db != 0)
	{
		char		db[16];

		snprintf(db, sizeof(db), "%d", target->db);
		exa_redis_appendv(client, 2, "SELECT", db);
	}
	if (client->npending == 0)
		return REDIS_RESULT_OK;

	result = exa_redis_flush(client,
							 Max(1, (int) TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																	  deadline)));
	if (result != REDIS_RESULT_OK)
		return result;

	if (nauth && exa_redis_reply_is_error(exa_redis_reply(client, 0)))
	{
		char		reason[256];

		strlcpy(reason, exa_redis_reply(client, 0)->str, sizeof(reason));
		redis_fail(client, "Redis at %s refused AUTH%s%s: %s",
				   client->server,
				   target->user[0] ? " for user " : "", target->user, reason);
		return REDIS_RESULT_AUTH;
	}
	if (target->db != 0 && exa_redis_reply_is_error(exa_redis_reply(client, nauth)))
	{
		char		reason[256];
		redisReply *r = exa_redis_reply(client, nauth);

		strlcpy(reason, r && r->str ? r->str : "no reply", sizeof(reason));
		redis_fail(client, "Redis at %s refused SELECT %d: %s",
				   client->server, target->db, reason);
		return REDIS_RESULT_AUTH;
	}
	exa_redis_clear_replies(client);
	return REDIS_RESULT_OK;
}

void
exa_redis_append(RedisClient *client, int argc, const char **argv,
				 const size_t *argvlen)
{
	if (client->ctx == NULL)
		elog(ERROR, "Redis client is not connected");

	/* A finished pipeline's replies go when the next one starts. */
	if (client->npending > 0 && client->nreplies == client->npending)
		exa_redis_clear_replies(client);

	/* hiredis aborts the process on out-of-memory; REDIS_ERR is not seen. */
	if (redisAppendCommandArgv(client->ctx, argc, argv, argvlen) != REDIS_OK)
	{
		exa_redis_disconnect(client);
		elog(ERROR, "could not append a Redis command");
	}
	client->npending++;
}

void
exa_redis_appendv(RedisClient *client, int argc,...)
{
	const char *argv[8];
	size_t		argvlen[8];
	va_list		args;
	int			i;

	if (argc < 1 || argc > (int) lengthof(argv))
		elog(ERROR, "Redis command with %d arguments, expected 1 to %d",
			 argc, (int) lengthof(argv));
	va_start(args, argc);
	for (i = 0; i < argc; i++)
	{
		argv[i] = va_arg(args, const char *);
		argvlen[i] = strlen(argv[i]);
	}
	va_end(args);
	exa_redis_append(client, argc, argv, argvlen);
}

/* Store one reply, growing the array in our context. */
static void
redis_store_reply(RedisClient *client, redisReply *reply)
{
	if (client->nreplies >= client->maxreplies)
	{
		int			newmax = Max(16, client->maxreplies * 2);

		while (newmax < client->npending)
			newmax *= 2;
		if (client->replies == NULL)
			client->replies = MemoryContextAlloc(client->mcxt,
												 sizeof(redisReply *) * newmax);
		else
			client->replies = repalloc(client->replies,
									   sizeof(redisReply *) * newmax);
		client->maxreplies = newmax;
	}
	client->replies[client->nreplies++] = reply;
}

/*
 * Move replies that hiredis has parsed into our array.  Returns false on a
 * protocol error.
 */
static bool
redis_collect_replies(RedisClient *client)
{
	while (client->nreplies < client->npending)
	{
		void	   *reply = NULL;

		if (redisGetReplyFromReader(client->ctx, &reply) != REDIS_OK)
			return false;
		if (reply == NULL)
			break;
		redis_store_reply(client, (redisReply *) reply);
	}
	return true;
}

RedisResult
exa_redis_flush(RedisClient *client, int timeout_ms)
{
	TimestampTz deadline;
	RedisResult result = REDIS_RESULT_OK;

	if (client->ctx == NULL)
	{
		snprintf(client->errmsg, sizeof(client->errmsg),
				 "not connected to Redis");
		return REDIS_RESULT_IO;
	}
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	PG_TRY();
	{
		int			done = 0;

		/*
		 * Write everything, reading replies as they come so that neither
		 * side's buffers fill up during a long pipeline.
		 */
		while (result == REDIS_RESULT_OK && !done)
		{
			int			ev;

			if (redisBufferWrite(client->ctx, &done) != REDIS_OK)
			{
				redis_fail(client, "could not send to Redis at %s: %s",
						   client->server, client->ctx->errstr);
				result = REDIS_RESULT_IO;
				break;
			}
			if (done)
				break;
			ev = redis_wait(client, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE,
							deadline);
			if (ev == 0)
			{
				redis_fail(client, "Redis at %s did not accept commands within %d ms",
						   client->server, timeout_ms);
				result = REDIS_RESULT_TIMEOUT;
			}
			else if (ev & WL_SOCKET_READABLE)
			{
				if (redisBufferRead(client->ctx) != REDIS_OK)
				{
					redis_fail(client, "connection to Redis at %s lost: %s",
							   client->server, client->ctx->errstr);
					result = REDIS_RESULT_IO;
				}
				else if (!redis_collect_replies(client))
				{
					redis_fail(client, "protocol error from Redis at %s: %s",
							   client->server, client->ctx->errstr);
					result = REDIS_RESULT_IO;
				}
			}
		}

		/* Then read until every command has its reply. */
		while (result == REDIS_RESULT_OK)
		{
			if (!redis_collect_replies(client))
			{
				redis_fail(client, "protocol error from Redis at %s: %s",
						   client->server, client->ctx->errstr);
				result = REDIS_RESULT_IO;
				break;
			}
			if (client->nreplies >= client->npending)
				break;
			if (redis_wait(client, WL_SOCKET_READABLE, deadline) == 0)
			{
				redis_fail(client, "no reply from Redis at %s within %d ms",
						   client->server, timeout_ms);
				result = REDIS_RESULT_TIMEOUT;
				break;
			}
			if (redisBufferRead(client->ctx) != REDIS_OK)
			{
				redis_fail(client, "connection to Redis at %s lost: %s",
						   client->server, client->ctx->errstr);
				result = REDIS_RESULT_IO;
			}
		}
	}
	PG_CATCH();
	{
		exa_redis_disconnect(client);
		PG_RE_THROW();
	}
	PG_END_TRY();

	return result;
}

redisReply *
exa_redis_reply(RedisClient *client, int i)
{
	/* Out of range is a caller's bug; NULL reads as an error reply. */
	if (i < 0 || i >= client->nreplies)
		return NULL;
	return client->replies[i];
}

void
exa_redis_clear_replies(RedisClient *client)
{
	int			i;

	for (i = 0; i < client->nreplies; i++)
		freeReplyObject(client->replies[i]);
	client->nreplies = 0;
	client->npending = 0;
}

bool
exa_redis_reply_is_error(const redisReply *reply)
{
	return reply == NULL || reply->type == REDIS_REPLY_ERROR;
}

bool
exa_redis_reply_is_noperm(const redisReply *reply)
{
	return reply != NULL && reply->type == REDIS_REPLY_ERROR &&
		reply->str != NULL && strncmp(reply->str, "NOPERM", 6) == 0;
}

bool
exa_redis_reply_is_unknown_command(const redisReply *reply)
{
	return reply != NULL && reply->type == REDIS_REPLY_ERROR &&
		reply->str != NULL &&
		(strncmp(reply->str, "ERR unknown command", 19) == 0);
}
