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

#include "config.h"
#include "probe.h"
#include "track_file.h"
#include "verdict.h"

struct track {
	struct track_settings settings;
	struct probe_host host;
	const struct probe_ops *probe_ops;
	void *probe;
	struct verdict verdict;
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

int track_value(const struct track_settings *s, enum track_state state);

#endif
