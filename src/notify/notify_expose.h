/*
 * notify_expose: pgtrack-notify's /status (JSON) and /metrics (Prometheus
 * text) from a snapshot of its state, as pure functions: main fills a
 * notify_view (notify_view.c) per request, these render it.
 *
 * Metric names start with "pgtrack_notify_" (the program's name, '-'
 * spelled '_'); times are seconds, counters end in "_total".
 */
#ifndef PGTRACK_NOTIFY_EXPOSE_H
#define PGTRACK_NOTIFY_EXPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "notify_stats.h"

#define NOTIFY_METRIC_PREFIX "pgtrack_notify_"

struct notify_view {
	const char *version;
	struct notify_when now;
	struct notify_when started;

	/* The followed VRRP instance or sync group. */
	const char *kind;          /* "instance" or "group" */
	const char *name;
	const char *state;         /* "MASTER" ..., NULL while unknown */
	int priority;
	bool inferred;             /* from the VIP at start, no line yet */
	struct notify_when state_since;
	uint64_t state_changes;

	const char *fifo_path;
	bool fifo_open;
	bool fifo_present;         /* the path still names a FIFO (keepalived may remove it) */
	uint64_t lines[NOTIFY_LINE_RESULTS];

	/* The hold: MASTER with [postgres], the local PostgreSQL not primary yet. */
	bool hold_configured;
	bool holding;
	bool hold_expired;         /* hold_timeout passed: fenced */
	struct notify_when hold_since;
	double hold_timeout_s;
	const char *hold_method;   /* "gate" or "pause" (configured), NULL without [postgres] */
	const char *local_target;  /* NULL without [postgres] */
	const char *local_role;    /* "primary", "standby", "unknown" */

	const char *bouncer_target;
	const char *bouncer_mode;  /* "serve", "hold", "fence", "unknown" */
	const char *bouncer_reason;
	const struct notify_bouncer_stats *bouncer;
};

/* /status: a JSON document, malloc'ed, NUL-terminated.  0 or -ENOMEM. */
int notify_status_json(const struct notify_view *v, char **out, size_t *len);
/* /metrics: Prometheus text exposition 0.0.4, malloc'ed.  0, -ENOMEM or -EINVAL. */
int notify_metrics_text(const struct notify_view *v, char **out, size_t *len);

/* "2024-06-10T12:00:00.123Z" (UTC). */
void notify_format_time(double wall, char *out, size_t size);

#endif
