/*
 * pgconn: one libpq connection driven by a libev loop, never blocking.
 *
 * Connects with PQconnectStartParams/PQconnectPoll, re-reading PQsocket
 * after every poll; runs one simple-protocol query at a time under a
 * deadline; and, while idle, watches the socket so that a server that dies
 * or drops the session is reported at once.  A deadline that passes closes
 * the connection (libpq 15 has only the blocking PQcancel).
 *
 * A host= entry that is a name (not numeric, not a socket directory) is
 * resolved first, asynchronously (resolver.c), and libpq gets each address
 * as hostaddr with the name kept as host (for TLS verification and .pgpass
 * matching): host=db,db hostaddr=10.0.0.1,10.0.0.2 for a name with two
 * addresses, tried by libpq in the resolver's order, at most
 * PGCONN_MAX_HOSTS entries in all; what lies beyond is not tried and the
 * failure message says so (and pgconn_dropped, after a connect).  Every
 * connect resolves again.  A host list of several entries goes the same
 * way even when nothing in it is a name.  libpq is never handed a name to
 * resolve.
 *
 * The connect timeout covers the lookups together, then applies to each
 * address separately, as libpq's connect_timeout does (libpq 15 enforces
 * it only in its blocking connect): when it passes while libpq is on an
 * address that is not the last, the connection starts again on the
 * addresses after it with a fresh deadline.  The attempt fails when the
 * last address fails or times out; the message names the addresses that
 * timed out.
 *
 * The owner embeds struct pgconn and gets called back through the handler.
 * Callbacks run from the loop, never from inside pgconn_connect or
 * pgconn_query, and may call any pgconn function, including pgconn_close.
 */
#ifndef PGTRACK_PGCONN_H
#define PGTRACK_PGCONN_H

#include <ev.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

enum pgconn_error {
	PGCONN_ERR_REFUSED,      /* nothing listens: connection refused, no socket */
	PGCONN_ERR_STARTING,     /* 57P03: starting up, shutting down, in recovery */
	PGCONN_ERR_TOO_MANY,     /* 53300 and friends */
	PGCONN_ERR_AUTH,         /* 28P01, 28000, no password supplied */
	PGCONN_ERR_TIMEOUT,      /* our deadline passed */
	PGCONN_ERR_QUERY,        /* the query failed; the connection is still usable */
	PGCONN_ERR_LOST,         /* an established connection closed */
	PGCONN_ERR_FAILED,       /* any other failure to connect */
	PGCONN_ERR_RESOLVE,      /* a host name could not be resolved in time */
};

struct pgconn_failure {
	enum pgconn_error kind;
	char sqlstate[6];   /* "" when the server sent none */
	char message[256];  /* first line of libpq's or the server's message */
};

#define PGCONN_MAX_PARAMS 12
#define PGCONN_MAX_HOSTS 8

/*
 * libpq's keyword and value arrays, built key by key and always
 * NULL-terminated; keys with an empty value are left out so libpq applies
 * its defaults.  port and options are storage for values built by the
 * caller; everything must outlive the connection attempts.
 */
struct pgconn_params {
	const char *keywords[PGCONN_MAX_PARAMS + 1];
	const char *values[PGCONN_MAX_PARAMS + 1];
	int n;
	char port[8];
	char options[64];
};

void pgconn_params_add(struct pgconn_params *p, const char *key, const char *value);

struct pgconn;
struct resolver;

struct pgconn_handler {
	void (*connected)(struct pgconn *c);
	/* The query's last result; freed by pgconn after the call. */
	void (*result)(struct pgconn *c, const PGresult *res);
	/* For PGCONN_ERR_QUERY the connection stays open; otherwise it is closed. */
	void (*failed)(struct pgconn *c, const struct pgconn_failure *f);
};

enum pgconn_state {
	PGCONN_CLOSED,
	PGCONN_CONNECTING,
	PGCONN_READY,
	PGCONN_BUSY,
};

struct pgconn {
	struct ev_loop *loop;
	const struct pgconn_handler *handler;
	PGconn *conn;
	enum pgconn_state state;
	ev_io io;
	ev_timer deadline;
	int io_fd;
	int io_events;
	PGresult *last_result;
	PGresult *error_result;
	struct pgconn_failure pending; /* delivered by the deadline timer at 0 */
	bool failure_pending;
	struct pgconn_failure goodbye_failure; /* a FATAL received while idle */
	bool goodbye;

	/* Resolving the host names of a connect, on copies of the caller's parameters. */
	struct resolver *lookup;
	char *copy;              /* the keyword and value strings */
	int n_kw;
	const char *host;        /* the host list (the caller's value, or PGHOST) */
	const char *port;        /* expanded with the hosts when it is a list */
	int index;               /* the host entry being resolved */
	int n_hosts;             /* entries built so far */
	int64_t timeout_ms;
	char lookup_name[256];
	char host_list[1024];
	char hostaddr_list[PGCONN_MAX_HOSTS * 47];
	char port_list[PGCONN_MAX_HOSTS * 6];
	/* Each address has its own deadline: libpq gets the entries from first on. */
	int first;
	char run_host[1024];
	char run_hostaddr[PGCONN_MAX_HOSTS * 47];
	char run_port[PGCONN_MAX_HOSTS * 6];
	char timed_out[160];     /* the entries that gave no answer in time */
	char dropped[96];        /* the entries beyond PGCONN_MAX_HOSTS, not tried */
	const char *kw[PGCONN_MAX_PARAMS + 4];
	const char *val[PGCONN_MAX_PARAMS + 4];
};

void pgconn_init(struct pgconn *c, struct ev_loop *loop, const struct pgconn_handler *handler);
/* Closes without a callback. */
void pgconn_close(struct pgconn *c);

/* Starts connecting; the outcome arrives as connected() or failed(). */
void pgconn_connect(struct pgconn *c, const char *const *keywords,
		    const char *const *values, int64_t timeout_ms);
/* Only in PGCONN_READY.  0, or -EBUSY/-ENOTCONN; errors of sending arrive as failed(). */
int pgconn_query(struct pgconn *c, const char *sql, int64_t timeout_ms);
/*
 * The same for a statement the session prepared, without parameters, over
 * the extended protocol (Bind, Execute, Sync: still one round trip): the
 * server skips parsing even the EXECUTE command and its utility wrapper.
 */
int pgconn_query_prepared(struct pgconn *c, const char *statement, int64_t timeout_ms);

/* The host entries the last connect left out (beyond PGCONN_MAX_HOSTS), or "". */
static inline const char *pgconn_dropped(const struct pgconn *c)
{
	return c->dropped;
}

static inline bool pgconn_ready(const struct pgconn *c)
{
	return c->state == PGCONN_READY;
}

/* What kind of failure a libpq connection error message says. */
void pgconn_classify(const char *message, struct pgconn_failure *f);
const char *pgconn_error_str(enum pgconn_error kind);

#endif
