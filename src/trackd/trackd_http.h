/*
 * trackd_http: pgtrackd's HTTP listener ([http], config_http.h) and its
 * routes: the Patroni-compatible health endpoints (trackd_health.h) for
 * the default track and under /track/NAME/ for each track, /status and
 * /metrics.
 *
 * Handlers hold no track: they find the track by name in the daemon's
 * list at request time, so a reload that replaces or removes tracks
 * leaves nothing dangling.
 */
#ifndef PGTRACKD_TRACKD_HTTP_H
#define PGTRACKD_TRACKD_HTTP_H

#include <ev.h>
#include <stddef.h>

#include "config_http.h"
#include "httpd.h"
#include "track.h"

struct trackd_http {
	struct ev_loop *loop;
	const struct track_list *tracks;	/* the daemon's, for its whole life */
	struct httpd *httpd;			/* NULL: the listener is off */
	struct http_settings settings;		/* the running listener's */
	char default_track[CONF_STR_SIZE];
	double started;				/* ev_now() at the start */
	double started_wall;			/* the same, since the epoch */
};

void trackd_http_init(struct trackd_http *th, struct ev_loop *loop,
		      const struct track_list *tracks);
/*
 * Starts, replaces or stops the listener to match s (nothing if its
 * listener settings did not change; default_track always applies).
 * 0, or -errno with err saying which address failed and why: then the
 * running listener, if any, keeps serving as it did.
 */
int trackd_http_apply(struct trackd_http *th, const struct http_settings *s, char *err,
		      size_t errlen);
/* "127.0.0.1:8008 [::1]:8008" (the ports bound), for log lines. */
void trackd_http_describe(const struct trackd_http *th, char *buf, size_t size);
void trackd_http_finish(struct trackd_http *th);

#endif
