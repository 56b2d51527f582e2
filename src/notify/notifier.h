/*
 * notifier: pgtrack-notify's one running instance, as main builds it;
 * shared with notify_view.c, which reads it to answer /status and
 * /metrics.  Nothing else includes it.
 */
#ifndef PGTRACK_NOTIFIER_H
#define PGTRACK_NOTIFIER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "bouncer.h"
#include "fifo.h"
#include "follow.h"
#include "hooks.h"
#include "localpg.h"
#include "mainloop.h"
#include "notify_config.h"
#include "notify_http.h"
#include "notify_stats.h"
#include "ratelimit.h"
#include "sdnotify.h"

struct notifier {
	struct ev_loop *loop;
	struct notify_config *config;
	const char *fifo_arg; /* script mode: the FIFO keepalived appended */
	struct fifo_reader *fifo;
	struct bouncer bouncer;
	struct hooks hooks;
	struct localpg local;
	struct follow follow;
	ev_timer hold_timer;
	ev_timer unseen_timer;
	struct notify_http http;

	struct ratelimit bad_lines;
	struct ratelimit two_masters;
	unsigned long lines_seen;

	/* For /status and /metrics; follow itself keeps no clock and no count. */
	struct notify_when started;
	struct notify_when state_since; /* the followed state's last transition */
	uint64_t state_changes;
	struct notify_when hold_since;
	uint64_t lines[NOTIFY_LINE_RESULTS];

	bool stopping;
	struct mainloop_signals signals;
	ev_timer grace;
	struct sdnotify_watchdog watchdog;
	char status[256]; /* the STATUS= systemd has */
};

/* The routes of the HTTP listener: /status and /metrics, arg n. */
void notifier_routes(struct notifier *n, struct httpd_route routes[NOTIFY_HTTP_ROUTES]);

#endif
