/*
 * track: one monitored server and the keepalived track_file it feeds.
 *
 * Owns its probe, the rise/fall verdict and the file.  Every state change
 * writes the state's value and logs one line saying what changed, to what
 * value, and why.  The track is its probe's host (include/pgtrackd/module.h):
 * the built-in PostgreSQL probe and modules alike get only that.
 */
#ifndef PGTRACKD_TRACK_H
#define PGTRACKD_TRACK_H

#include <ev.h>
#include <stdint.h>
#include <sys/queue.h>

#include <pgtrackd/module.h>

#include "log.h"
#include "module_loader.h"
#include "track_facts.h"
#include "track_file.h"
#include "track_log.h"
#include "trackd_config.h"
#include "verdict.h"

/* What the host counts and remembers of a track, for /status and /metrics. */
struct track_stats {
	double since;           /* ev_now when the current state began */
	double first_verdict;   /* ev_now of the first verdict (not unknown); 0: none yet */
	uint64_t state_changes; /* since the track was created (a reload keeps them) */
	uint64_t failures[PGTRACKD_FAILURE_N]; /* failed checks, by class */
	char reason[400];       /* the current state's reason, as last reported */
	char last_failure[400]; /* the last failed check's reason ("" none) */
	double last_failure_at; /* ev_now of it */
};

struct track {
	struct track_settings settings;
	struct pgtrackd_host host; /* what the probe sees of the track */
	const struct pgtrackd_module *probe_ops;
	struct loaded_module *module; /* NULL for the built-in probe */
	void *probe;
	struct verdict verdict;
	int rank;      /* a standby's rank, in its value (0: the most advanced) */
	int rank_next; /* the rank the probe's next report goes with */
	int rank_step; /* what a rank costs, as the probe says */
	struct track_file file;
	double last_report;     /* ev_now of the probe's last report (or of the start) */
	bool verdict_written;   /* a first verdict (not unknown) is in the file */
	struct track_stats stats;
	struct track_facts *facts; /* what the probe last described (track_facts.h) */
	void (*changed)(void *ctx); /* after every value written: the daemon's status */
	void *changed_ctx;
	LIST_ENTRY(track) link;
};

LIST_HEAD(track_list, track);

/*
 * Creates and starts a track; its file gets the unknown value at once.
 * module: the one its configuration loaded for settings->module (the
 * track takes a reference), NULL for the built-in probe.
 */
struct track *track_create(struct ev_loop *loop, const struct track_settings *settings,
			   struct loaded_module *module, int64_t check_interval_ms);
/*
 * Applies changed settings: the probe is rebuilt, the state carries over
 * (so a reload does not flap the VIP), the value is rewritten if it changed.
 */
int track_reconfigure(struct track *t, const struct track_settings *settings,
		      struct loaded_module *module, int64_t check_interval_ms);
/* changed(ctx) runs after each value the track writes. */
void track_set_observer(struct track *t, void (*changed)(void *ctx), void *ctx);

/* Stops probing and writes the stopped value. */
void track_stop(struct track *t, const char *why);
void track_destroy(struct track *t);

/* The value of a state; a standby's is value_standby minus rank steps (never FAULT). */
int track_value(const struct track_settings *s, enum track_state state, int rank, int step);

/* A line about track t, prefixed with its name (track_log_named: before it exists). */
void track_log(const struct track *t, enum pgtrackd_log_level level, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

#endif
