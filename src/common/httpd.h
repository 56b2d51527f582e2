/*
 * httpd: a small HTTP listener on the daemon's libev loop, for health checks,
 * /status and /metrics.  No threads: libmicrohttpd runs in its epoll mode,
 * its epoll fd is watched with an ev_io and its timeout with an ev_timer, so
 * one slow or hostile client costs a few short callbacks and never holds the
 * loop.
 *
 * Only GET, HEAD and OPTIONS are served; another method gets 405 with Allow,
 * a request with a body 413.  HEAD and OPTIONS call the handler as GET does
 * and answer with its status and no body: Patroni answers health checks the
 * same way, and HAProxy's `option httpchk OPTIONS /primary` relies on it.
 */
#ifndef PGTRACK_HTTPD_H
#define PGTRACK_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

struct httpd;
struct httpd_request;

struct httpd_reply {
	unsigned int status;
	const char *content_type;	/* a static string; NULL for none */
	char *body;			/* malloc'ed; httpd frees it */
	size_t len;
};

/*
 * Fills reply; 0, or -errno for a 500 (reply->body is freed either way).
 * path is the request's path without its query.
 */
typedef int (*httpd_handler_fn)(void *arg, const char *path, const struct httpd_request *req,
				struct httpd_reply *reply);

/*
 * path matches the request's path exactly or, with prefix, any path that
 * starts with it ("/track/").  The first matching route wins; none is 404.
 */
struct httpd_route {
	const char *path;
	bool prefix;
	httpd_handler_fn handler;
	void *arg;
};

/* A client network: family AF_INET or AF_INET6, addr in network order. */
struct httpd_net {
	int family;
	uint8_t addr[16];
	unsigned int bits;
};

struct httpd_config {
	const char *const *listen;	/* "127.0.0.1:8008", "[::1]:8008" */
	size_t n_listen;
	const struct httpd_net *allow;	/* n_allow == 0: every client */
	size_t n_allow;
	const struct httpd_route *routes;	/* copied */
	size_t n_routes;
	unsigned int max_connections;	/* all listeners together; 0: 64 */
	unsigned int max_per_ip;	/* per listen address; 0: no cap */
	/*
	 * 0: 10.  An idle connection is closed after timeout_s, and each
	 * request must arrive whole and be answered within timeout_s of the
	 * connection's start or of its previous answer (a client trickling a
	 * byte a second is cut there, not kept for ever).
	 */
	unsigned int timeout_s;
	size_t memory_limit;		/* per connection, bounds the headers; 0: 16 KiB */
	/*
	 * A running httpd this one replaces (a reload), or NULL: a listen
	 * address it also has (as the same text) shares its socket instead of
	 * binding again, so the new httpd can start before the old one is
	 * destroyed, and a failure leaves the old one serving.
	 */
	const struct httpd *inherit;
};

/*
 * "host:port" with a numeric IPv4 host or a bracketed IPv6 one; a host name
 * is -EINVAL (no DNS on the loop).  Port 0 picks a free port.
 */
int httpd_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len);
/* "10.0.0.0/8", "fd00::/64", or a bare address (a host); -EINVAL. */
int httpd_parse_net(const char *text, struct httpd_net *net);
bool httpd_net_contains(const struct httpd_net *net, const struct sockaddr *sa);

/*
 * Binds every listen address and starts serving on loop.  On failure every
 * listener opened so far is closed, and err says which address failed and
 * why ("127.0.0.1:8008: Address already in use").
 */
int httpd_create(struct ev_loop *loop, const struct httpd_config *cfg, struct httpd **out,
		 char *err, size_t errlen);
/* Closes the listeners and every client connection; stops all watchers. */
void httpd_destroy(struct httpd *h);
/* The port listener i is bound to (useful after port 0); -EINVAL. */
int httpd_port(const struct httpd *h, size_t i);
/* Client connections open now, on all listeners. */
unsigned int httpd_connections(const struct httpd *h);

/* A query argument ("?lag=16MB"), decoded; NULL when absent. */
const char *httpd_arg(const struct httpd_request *req, const char *name);
/* False for HEAD and OPTIONS: the body will not be sent. */
bool httpd_wants_body(const struct httpd_request *req);
/* Sets reply to a copy of text; -ENOMEM. */
int httpd_reply_text(struct httpd_reply *reply, unsigned int status, const char *content_type,
		     const char *text);

#endif
