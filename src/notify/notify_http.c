#include "notify_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* How often and how long script mode tries an address still in use. */
#define RETRY_EVERY 0.1
#define RETRIES 50

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents);

void notify_http_init(struct notify_http *h, struct ev_loop *loop,
		      const struct httpd_route routes[NOTIFY_HTTP_ROUTES])
{
	*h = (struct notify_http){ .loop = loop };
	memcpy(h->routes, routes, sizeof(h->routes));
	ev_init(&h->retry, retry_cb);
}

static int create(struct notify_http *h, const struct notify_http_config *c, struct httpd **out,
		  char *err, size_t errlen)
{
	const char *listen[NOTIFY_HTTP_MAX_LISTEN];
	struct httpd_config cfg = {
		.listen = listen,
		.n_listen = (size_t)c->n_listen,
		.allow = c->allow,
		.n_allow = (size_t)c->n_allow,
		.routes = h->routes,
		.n_routes = NOTIFY_HTTP_ROUTES,
		.max_connections = c->max_connections,
		.timeout_s = c->timeout_s,
	};

	for (int i = 0; i < c->n_listen; i++)
		listen[i] = c->listen[i];
	return httpd_create(h->loop, &cfg, out, err, errlen);
}

/* Whether the running listener holds an address c names too. */
static bool shares_address(const struct notify_http *h, const struct notify_http_config *c)
{
	for (int i = 0; i < c->n_listen; i++) {
		for (int k = 0; k < h->running.n_listen; k++) {
			if (strcmp(c->listen[i], h->running.listen[k]) == 0)
				return true;
		}
	}
	return false;
}

/* The old listener is in the way: close it, try the new one, put the old one back if need be. */
static int replace_in_place(struct notify_http *h, const struct notify_http_config *c,
			    struct httpd **fresh, char *err, size_t errlen)
{
	char again[256];
	int r;

	httpd_destroy(h->httpd);
	h->httpd = NULL;
	r = create(h, c, fresh, err, errlen);
	if (r == 0)
		return 0;
	if (create(h, &h->running, &h->httpd, again, sizeof(again)) < 0) {
		size_t n = strlen(err);

		snprintf(err + n, errlen - n, "; and the running listener could not be reopened "
			 "(%s): the listener is off", again);
		h->running.enabled = false;
	}
	return r;
}

int notify_http_apply(struct notify_http *h, const struct notify_http_config *c, char *err,
		      size_t errlen)
{
	struct httpd *fresh = NULL;
	bool had = h->httpd != NULL;
	int r;

	err[0] = '\0';
	if (had && notify_http_config_same(&h->running, c))
		return NOTIFY_HTTP_UNCHANGED;
	if (!c->enabled) {
		httpd_destroy(h->httpd);
		h->httpd = NULL;
		h->running = *c;
		return had ? NOTIFY_HTTP_STOPPED : NOTIFY_HTTP_UNCHANGED;
	}
	r = create(h, c, &fresh, err, errlen);
	if (r == -EADDRINUSE && had && shares_address(h, c))
		r = replace_in_place(h, c, &fresh, err, errlen);
	if (r < 0)
		return r;
	httpd_destroy(h->httpd);
	h->httpd = fresh;
	h->running = *c;
	return had ? NOTIFY_HTTP_REPLACED : NOTIFY_HTTP_STARTED;
}

void notify_http_finish(struct notify_http *h)
{
	ev_timer_stop(h->loop, &h->retry);
	httpd_destroy(h->httpd);
	h->httpd = NULL;
	h->running.enabled = false;
}

bool notify_http_active(const struct notify_http *h)
{
	return h->httpd != NULL;
}

void notify_http_describe(const struct notify_http *h, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (int i = 0; h->httpd && i < h->running.n_listen && n < size; i++) {
		const char *addr = h->running.listen[i];
		const char *colon = strrchr(addr, ':');

		n += (size_t)snprintf(out + n, size - n, "%s%.*s:%d", i ? ", " : "",
				      (int)(colon - addr), addr, httpd_port(h->httpd, (size_t)i));
	}
}

/* "127.0.0.0/8, ::1/128" */
static void describe_allow(const struct notify_http_config *c, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (int i = 0; i < c->n_allow && n < size; i++) {
		char addr[INET6_ADDRSTRLEN];

		if (!inet_ntop(c->allow[i].family, c->allow[i].addr, addr, sizeof(addr)))
			snprintf(addr, sizeof(addr), "?");
		n += (size_t)snprintf(out + n, size - n, "%s%s/%u", i ? ", " : "", addr,
				      c->allow[i].bits);
	}
}

/* Logs what notify_http_apply returned (r, with err). */
static void log_outcome(struct notify_http *h, int r, enum notify_http_when when,
			const char *err)
{
	char where[512], allow[512];

	notify_http_describe(h, where, sizeof(where));
	describe_allow(&h->running, allow, sizeof(allow));
	if (r < 0 && when == NOTIFY_HTTP_AT_START)
		log_error("HTTP listener for /status and /metrics: %s; exiting (fix [http] listen, "
			  "or remove [http] to run without the listener)", err);
	else if (r < 0 && notify_http_active(h))
		log_error("HTTP listener: [http] changed, but %s; keeping the listener on %s "
			  "as it was (reload again to retry)", err, where);
	else if (r < 0)
		log_error("HTTP listener for /status and /metrics: %s; running without it (reload "
			  "to retry)", err);
	else if (r == NOTIFY_HTTP_STARTED)
		log_info("HTTP listener on %s: /status and /metrics, for clients from %s", where,
			 allow);
	else if (r == NOTIFY_HTTP_REPLACED)
		log_info("HTTP listener: [http] changed, now on %s for clients from %s", where,
			 allow);
	else if (r == NOTIFY_HTTP_STOPPED)
		log_info("HTTP listener stopped: [http] was removed");
}

/* Script mode: the copy of pgtrack-notify that keepalived replaces may still hold the port. */
static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct notify_http *h = container_of(w, struct notify_http, retry);
	char err[512];
	int r = notify_http_apply(h, &h->wanted, err, sizeof(err));

	if (r == -EADDRINUSE && --h->retries_left > 0)
		return;
	ev_timer_stop(loop, w);
	log_outcome(h, r, NOTIFY_HTTP_AT_RELOAD, err);
}

bool notify_http_reconfigure(struct notify_http *h, const struct notify_http_config *c,
			     enum notify_http_when when, char *err, size_t errlen)
{
	int r;

	ev_timer_stop(h->loop, &h->retry); /* a reload supersedes the retries */
	r = notify_http_apply(h, c, err, errlen);
	if (r == -EADDRINUSE && when == NOTIFY_HTTP_AT_START_SCRIPT) {
		log_warnx("HTTP listener for /status and /metrics: %s; retrying every %.1fs for "
			  "%.0fs (keepalived runs the notify_fifo_script it replaces for up to 1s "
			  "more)", err, RETRY_EVERY, RETRY_EVERY * RETRIES);
		h->wanted = *c;
		h->retries_left = RETRIES;
		ev_timer_set(&h->retry, RETRY_EVERY, RETRY_EVERY);
		ev_timer_start(h->loop, &h->retry);
		return true;
	}
	log_outcome(h, r, when, err);
	return r >= 0;
}
