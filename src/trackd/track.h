/*
 * track: one monitored server and the keepalived track_file it feeds.
 *
 * Owns its probe, the rise/fall verdict and the file.  Every state change
 * writes the state's value and logs one line saying what changed, to what
 * value, and why.
 */
#ifndef PGTRACKD_TRACK_H
#define PGTRACKD_TRACK_H

#include <ev.h>
#include <sys/queue.h>

#include <pgtrackd/module.h>

#include "config.h"
#include "module_loader.h"
#include "track_file.h"
#include "verdict.h"

/* The built-in PostgreSQL probe: a module of the public ABI, compiled in. */
extern const struct pgtrackd_module probe_postgres_module;

struct track {
	struct track_settings settings;
	struct pgtrackd_host host;
	const struct pgtrackd_module *probe_ops;
	struct loaded_module *module; /* NULL for the built-in probe */
	void *probe;
	struct verdict verdict;
	int rank;      /* a standby's rank, in its value (0: the most advanced) */
	int rank_next; /* the rank the probe's next report goes with */
	struct track_file file;
	LIST_ENTRY(track) link;
};

/* Creates and starts a track; its file gets the unknown value at once. */
struct track *track_create(struct ev_loop *loop, const struct track_settings *settings,
			   int64_t check_interval_ms);
/*
 * Applies changed settings: the probe is rebuilt, the state carries over
 * (so a reload does not flap the VIP), the value is rewritten if it changed.
 */
int track_reconfigure(struct track *t, const struct track_settings *settings,
		      int64_t check_interval_ms);
/* Stops probing and writes the stopped value. */
void track_stop(struct track *t, const char *why);
void track_destroy(struct track *t);

/* The value of a state; a standby's is value_standby minus its rank (never FAULT). */
int track_value(const struct track_settings *s, enum track_state state, int rank);

/*
 * For the built-in probe: the rank among the standbys (0: the most
 * advanced) that goes with its next report.  A change of rank while the
 * track stays standby is written and logged like a change of state.
 */
void track_set_rank(const struct pgtrackd_host *host, int rank);

/* For the built-in probe: its track's settings, behind the module ABI's host. */
const struct track_settings *track_settings_of(const struct pgtrackd_host *host);

#endif
