#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mhd.h"

#include "util.h"

/* libmicrohttpd, loaded by the first httpd_create (mhd.h says why). */
static const struct mhd_api *mhd;

#define ALLOWED_METHODS "GET, HEAD, OPTIONS"
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_TIMEOUT_S 10
#define DEFAULT_MEMORY_LIMIT (16 * 1024)
#define LISTEN_BACKLOG 64

/*
 * A client connection's whole-request deadline.  MHD's own timeout is an
 * idle one: a client that sends a byte a second would be kept for ever.
 * Each request must arrive and be answered within timeout_s of the
 * connection's start or of the previous answer, or the connection is shut.
 */
struct conn {
	struct listener *l;		/* NULL: the slot is free */
	struct MHD_Connection *mc;
	double deadline;		/* ev_now() time; INFINITY once shut */
};

struct listener {
	struct httpd *h;
	struct MHD_Daemon *daemon;
	ev_io io;		/* MHD's epoll fd */
	ev_timer timer;		/* MHD_get_timeout */
	int port;
	int fd;			/* the listening socket (MHD's) */
	char text[64];		/* the address as configured */
};

struct httpd {
	struct ev_loop *loop;
	struct listener *listeners;
	size_t n_listeners;
	struct httpd_net *allow;
	size_t n_allow;
	struct httpd_route *routes;
	size_t n_routes;
	unsigned int max_connections;
	unsigned int connections;
	double timeout;
	struct conn *conns;		/* max_connections slots */
	char mhd_msg[160];	/* libmicrohttpd's last complaint */
};

struct httpd_request {
	struct MHD_Connection *conn;
	bool wants_body;
};

enum method { METHOD_GET, METHOD_HEAD, METHOD_OPTIONS, METHOD_OTHER };

static enum method method_of(const char *m)
{
	if (strcmp(m, MHD_HTTP_METHOD_GET) == 0)
		return METHOD_GET;
	if (strcmp(m, MHD_HTTP_METHOD_HEAD) == 0)
		return METHOD_HEAD;
	if (strcmp(m, MHD_HTTP_METHOD_OPTIONS) == 0)
		return METHOD_OPTIONS;
	return METHOD_OTHER;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct httpd *h = cls;
	bool allowed = h->n_allow == 0;

	for (size_t i = 0; i < h->n_allow && !allowed; i++)
		allowed = httpd_net_contains(&h->allow[i], addr);
	if (!allowed || h->connections >= h->max_connections)
		return MHD_NO;
	return MHD_YES;
}

static struct conn *conn_take(struct listener *l, struct MHD_Connection *mc)
{
	struct httpd *h = l->h;

	for (unsigned int i = 0; i < h->max_connections; i++) {
		struct conn *c = &h->conns[i];

		if (c->l)
			continue;
		c->l = l;
		c->mc = mc;
		c->deadline = ev_now(h->loop) + h->timeout;
		return c;
	}
	return NULL;
}

/* Shuts the socket: MHD sees the end of it and closes the connection itself. */
static void conn_shut(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *info =
		mhd->get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);

	if (info)
		shutdown(info->connect_fd, SHUT_RDWR);
}

static void on_notify(void *cls, struct MHD_Connection *mc, void **socket_context,
		      enum MHD_ConnectionNotificationCode code)
{
	struct listener *l = cls;
	struct httpd *h = l->h;
	struct conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		h->connections++;
		*socket_context = c = conn_take(l, mc);
		/* on_accept keeps to max_connections: no slot is a bug, but never a leak. */
		if (!c)
			conn_shut(mc);
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (h->connections > 0)
			h->connections--;
		if (c)
			c->l = NULL;
		*socket_context = NULL;
	}
}

/* An answer is sent: the connection's next request has timeout_s from now. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct httpd *h = cls;
	const union MHD_ConnectionInfo *info =
		mhd->get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn *c = info ? info->socket_context : NULL;

	if (c && isfinite(c->deadline))
		c->deadline = ev_now(h->loop) + h->timeout;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *h = cls;
	size_t n;

	vsnprintf(h->mhd_msg, sizeof(h->mhd_msg), fmt, ap);
	n = strlen(h->mhd_msg);
	while (n > 0 && (h->mhd_msg[n - 1] == '\n' || h->mhd_msg[n - 1] == '.'))
		h->mhd_msg[--n] = '\0';
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned int status,
			     const char *type, char *body, size_t len, bool allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (body)
		resp = mhd->create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	else
		resp = mhd->create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if ((type && mhd->add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) ||
	    (allow && mhd->add_response_header(resp, MHD_HTTP_HEADER_ALLOW, ALLOWED_METHODS) != MHD_YES)) {
		mhd->destroy_response(resp);
		return MHD_NO;
	}
	ret = mhd->queue_response(conn, status, resp);
	mhd->destroy_response(resp);
	return ret;
}

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned int status,
				  const char *text, bool allow)
{
	char *body = strdup(text);

	if (!body)
		return MHD_NO;
	return queue(conn, status, "text/plain; charset=utf-8", body, strlen(body), allow);
}

static bool has_body(struct MHD_Connection *conn)
{
	const char *cl = mhd->lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = mhd->lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_TRANSFER_ENCODING);

	if (te)
		return true;
	if (!cl)
		return false;
	while (*cl == '0')
		cl++;
	return *cl != '\0';
}

static const struct httpd_route *find_route(const struct httpd *h, const char *path)
{
	for (size_t i = 0; i < h->n_routes; i++) {
		const struct httpd_route *r = &h->routes[i];

		if (r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0
			      : strcmp(path, r->path) == 0)
			return r;
	}
	return NULL;
}

static enum MHD_Result dispatch(struct httpd *h, struct MHD_Connection *conn, const char *url,
				enum method m)
{
	const struct httpd_route *r = find_route(h, url);
	struct httpd_request req = { .conn = conn, .wants_body = m == METHOD_GET };
	struct httpd_reply reply = { .status = MHD_HTTP_OK };

	if (!r)
		return queue_text(conn, MHD_HTTP_NOT_FOUND, "not found\n", false);
	if (r->handler(r->arg, url, &req, &reply) < 0) {
		free(reply.body);
		return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n", false);
	}
	if (m == METHOD_OPTIONS) {
		free(reply.body);
		reply.body = NULL;
		reply.len = 0;
	}
	return queue(conn, reply.status, reply.content_type, reply.body, reply.len,
		     m == METHOD_OPTIONS);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	static int seen;
	enum method m = method_of(method);

	/*
	 * The first call has the headers only: refuse there, before any body
	 * is read (MHD then closes the connection after the answer).  The
	 * second call has the whole request; answering only then keeps the
	 * connection alive.
	 */
	if (!*con_cls) {
		if (m == METHOD_OTHER)
			return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "method not allowed\n", true);
		if (has_body(conn))
			return queue_text(conn, MHD_HTTP_CONTENT_TOO_LARGE,
					  "request bodies are not accepted\n", false);
		*con_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0)
		return MHD_NO;
	return dispatch(cls, conn, url, m);
}

const char *httpd_arg(const struct httpd_request *req, const char *name)
{
	return mhd->lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool httpd_wants_body(const struct httpd_request *req)
{
	return req->wants_body;
}

int httpd_reply_text(struct httpd_reply *reply, unsigned int status, const char *content_type,
		     const char *text)
{
	char *copy = strdup(text);

	if (!copy)
		return -ENOMEM;
	free(reply->body);
	reply->status = status;
	reply->content_type = content_type;
	reply->body = copy;
	reply->len = strlen(copy);
	return 0;
}

/* Shuts l's connections past their deadline; the next deadline, or INFINITY. */
static double expire(struct listener *l, double now)
{
	struct httpd *h = l->h;
	double next = INFINITY;

	for (unsigned int i = 0; i < h->max_connections; i++) {
		struct conn *c = &h->conns[i];

		if (c->l != l || !isfinite(c->deadline))
			continue;
		if (c->deadline <= now) {
			conn_shut(c->mc);
			c->deadline = INFINITY;
		} else if (c->deadline < next) {
			next = c->deadline;
		}
	}
	return next;
}

/* Runs MHD and arms the timer for the next deadline, MHD's or ours. */
static void drive(struct listener *l)
{
	MHD_UNSIGNED_LONG_LONG ms;
	double now = ev_now(l->h->loop), wait;

	expire(l, now);
	mhd->run(l->daemon);
	/* Connections MHD accepted just now get their deadline from now. */
	wait = expire(l, now) - now;
	ev_timer_stop(l->h->loop, &l->timer);
	if (mhd->get_timeout(l->daemon, &ms) == MHD_YES && (double)ms / 1000.0 < wait)
		wait = (double)ms / 1000.0;
	if (isfinite(wait)) {
		ev_timer_set(&l->timer, wait > 0 ? wait : 0., 0.);
		ev_timer_start(l->h->loop, &l->timer);
	}
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	drive(container_of(w, struct listener, io));
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	drive(container_of(w, struct listener, timer));
}

static int open_socket(const struct sockaddr_storage *ss, socklen_t len, int *port)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int err;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)ss, len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen) < 0)
		goto fail;
	*port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						  : ((struct sockaddr_in *)&bound)->sin_port);
	return fd;
fail:
	err = errno;
	close(fd);
	return -err;
}

static struct MHD_Daemon *start_daemon(struct listener *l, int fd, bool v6,
				       const struct httpd_config *cfg)
{
	struct httpd *h = l->h;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);

	/*
	 * MHD's own cap sits one above ours: at its cap MHD stops accepting
	 * and leaves clients waiting in the backlog, while on_accept closes
	 * the connection at once.
	 */
	return mhd->start_daemon(flags, 0, on_accept, h, on_request, h,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, h->max_connections + 1,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)h->timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		cfg->memory_limit ? cfg->memory_limit : (size_t)DEFAULT_MEMORY_LIMIT,
		MHD_OPTION_NOTIFY_CONNECTION, on_notify, l,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
		MHD_OPTION_END);
}

/* A dup of the socket inherit listens on for text, or -ENOENT. */
static int inherited_socket(const struct httpd *inherit, const char *text, int *port)
{
	for (size_t i = 0; inherit && i < inherit->n_listeners; i++) {
		const struct listener *o = &inherit->listeners[i];
		int fd;

		if (strcmp(o->text, text) != 0)
			continue;
		fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		*port = o->port;
		return fd;
	}
	return -ENOENT;
}

static int listener_open(struct httpd *h, struct listener *l, const char *text,
			 const struct httpd_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	socklen_t len;
	int fd;

	if (httpd_parse_listen(text, &ss, &len) < 0 || strlen(text) >= sizeof(l->text)) {
		snprintf(err, errlen, "%s: not a numeric address:port "
			 "(such as 127.0.0.1:8008 or [::1]:8008)", text);
		return -EINVAL;
	}
	fd = inherited_socket(cfg->inherit, text, &l->port);
	if (fd == -ENOENT)
		fd = open_socket(&ss, len, &l->port);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", text, strerror(-fd));
		return fd;
	}
	h->mhd_msg[0] = '\0';
	l->h = h;
	l->fd = fd;
	snprintf(l->text, sizeof(l->text), "%s", text);
	l->daemon = start_daemon(l, fd, ss.ss_family == AF_INET6, cfg);
	info = l->daemon ? mhd->get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		snprintf(err, errlen, "%s: libmicrohttpd did not start: %s", text,
			 h->mhd_msg[0] ? h->mhd_msg : "no reason given");
		if (l->daemon)
			mhd->stop_daemon(l->daemon);
		else
			close(fd);
		l->daemon = NULL;
		return -EIO;
	}
	ev_io_init(&l->io, on_io, info->epoll_fd, EV_READ);
	ev_io_start(h->loop, &l->io);
	ev_timer_init(&l->timer, on_timer, 0., 0.);
	drive(l);
	return 0;
}

static void listener_close(struct listener *l)
{
	if (!l->daemon)
		return;
	ev_io_stop(l->h->loop, &l->io);
	ev_timer_stop(l->h->loop, &l->timer);
	mhd->stop_daemon(l->daemon);
	l->daemon = NULL;
}

static int copy_config(struct httpd *h, const struct httpd_config *cfg)
{
	h->listeners = calloc(cfg->n_listen ? cfg->n_listen : 1, sizeof(*h->listeners));
	h->allow = calloc(cfg->n_allow ? cfg->n_allow : 1, sizeof(*h->allow));
	h->routes = calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof(*h->routes));
	if (!h->listeners || !h->allow || !h->routes)
		return -ENOMEM;
	if (cfg->n_allow)
		memcpy(h->allow, cfg->allow, cfg->n_allow * sizeof(*h->allow));
	if (cfg->n_routes)
		memcpy(h->routes, cfg->routes, cfg->n_routes * sizeof(*h->routes));
	h->n_allow = cfg->n_allow;
	h->n_routes = cfg->n_routes;
	h->max_connections = cfg->max_connections ? cfg->max_connections
						  : DEFAULT_MAX_CONNECTIONS;
	h->timeout = cfg->timeout_s ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
	h->conns = calloc(h->max_connections, sizeof(*h->conns));
	if (!h->conns)
		return -ENOMEM;
	return 0;
}

int httpd_create(struct ev_loop *loop, const struct httpd_config *cfg, struct httpd **out,
		 char *err, size_t errlen)
{
	struct httpd *h = calloc(1, sizeof(*h));
	int r;

	*out = NULL;
	if (!mhd)
		mhd = mhd_load(err, errlen);
	if (!mhd) {
		free(h);
		return -ENOENT;
	}
	if (!h || (h->loop = loop, copy_config(h, cfg)) < 0) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto free_h;
	}
	if (cfg->n_listen == 0) {
		snprintf(err, errlen, "no listen address");
		r = -EINVAL;
		goto free_h;
	}
	for (size_t i = 0; i < cfg->n_listen; i++) {
		r = listener_open(h, &h->listeners[i], cfg->listen[i], cfg, err, errlen);
		if (r < 0)
			goto free_h;
		h->n_listeners++;
	}
	*out = h;
	return 0;
free_h:
	httpd_destroy(h);
	return r;
}

void httpd_destroy(struct httpd *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_listeners; i++)
		listener_close(&h->listeners[i]);
	free(h->listeners);
	free(h->allow);
	free(h->routes);
	free(h->conns);
	free(h);
}

int httpd_port(const struct httpd *h, size_t i)
{
	if (i >= h->n_listeners)
		return -EINVAL;
	return h->listeners[i].port;
}

unsigned int httpd_connections(const struct httpd *h)
{
	return h->connections;
}
