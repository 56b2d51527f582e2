/*
 * notify_http: pgtrack-notify's optional HTTP listener ([http]), on
 * src/common/httpd: its lifecycle across reloads.
 *
 * The listener copies its routes and allow-list; the routes' argument is
 * the notifier itself, which outlives every configuration, so a reload
 * that frees a configuration leaves no handler pointing into it.
 */
#ifndef PGTRACK_NOTIFY_HTTP_H
#define PGTRACK_NOTIFY_HTTP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "httpd.h"
#include "notify_config.h"

#define NOTIFY_HTTP_ROUTES 2

struct notify_http {
	struct ev_loop *loop;
	struct httpd *httpd;		/* NULL: no listener */
	struct notify_http_config running; /* what httpd was made from */
	struct httpd_route routes[NOTIFY_HTTP_ROUTES];
	ev_timer retry;			/* script mode: an address still in use */
	struct notify_http_config wanted; /* what retry tries */
	int retries_left;
};

/* What notify_http_apply did. */
enum notify_http_change {
	NOTIFY_HTTP_UNCHANGED,
	NOTIFY_HTTP_STARTED,
	NOTIFY_HTTP_STOPPED,
	NOTIFY_HTTP_REPLACED,
};

void notify_http_init(struct notify_http *h, struct ev_loop *loop,
		      const struct httpd_route routes[NOTIFY_HTTP_ROUTES]);
/*
 * Makes the listener what c says, if it differs from the running one: a
 * new listener is bound before the old one is closed; only when an
 * address of both is taken (by the old one) is the old one closed first,
 * and put back if the new one still fails.  -errno with a sentence in
 * err when the new listener cannot be made: the old one then runs on
 * (notify_http_active says whether one does).
 */
int notify_http_apply(struct notify_http *h, const struct notify_http_config *c, char *err,
		      size_t errlen);
enum notify_http_when {
	NOTIFY_HTTP_AT_START,
	/*
	 * At the start of a notify_fifo_script: keepalived's reload starts the
	 * new copy while the old one runs on for up to a second, so an address
	 * in use is tried again every 0.1 s for 5 s instead of failing.
	 */
	NOTIFY_HTTP_AT_START_SCRIPT,
	NOTIFY_HTTP_AT_RELOAD,
};

/*
 * notify_http_apply, logged for the operator: false when the listener c
 * describes could not be made (at start the caller exits; on a reload
 * the running listener, if any, goes on); err gets why.
 */
bool notify_http_reconfigure(struct notify_http *h, const struct notify_http_config *c,
			     enum notify_http_when when, char *err, size_t errlen);
/* Closes the listener (and stops the retries); again at the exit is harmless. */
void notify_http_finish(struct notify_http *h);
bool notify_http_active(const struct notify_http *h);
/* "127.0.0.1:9188, [::1]:9188" with the ports actually bound. */
void notify_http_describe(const struct notify_http *h, char *out, size_t size);

#endif
