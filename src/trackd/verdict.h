/*
 * verdict: rise/fall hysteresis from probe samples to a track state,
 * as keepalived's vrrp_script does it (keepalived's track_file has none).
 *
 * - From unknown, the first sample decides.
 * - fall consecutive failures make a track down; from down, rise
 *   consecutive successes bring it back.  A certain failure (the server's
 *   process seen gone) counts as fall of them.
 * - Between the states that are not failures (primary, standby, the
 *   guard's stale, conflict and lagging, a module's ok and maintenance)
 *   the probe's answer wins at once: it is the server's own word, not a
 *   flaky signal.  Samples are the module ABI's states.
 */
#ifndef PGTRACKD_VERDICT_H
#define PGTRACKD_VERDICT_H

#include <stdbool.h>

#include <pgtrackd/module.h>

#include "track_state.h"

struct verdict {
	enum track_state state;
	int rise;
	int fall;
	int successes; /* in a row */
	int failures;  /* in a row */
};

void verdict_init(struct verdict *v, int rise, int fall);
/* Feeds one sample; true if the state changed. */
bool verdict_feed(struct verdict *v, enum pgtrackd_state s);
/* A failure that is certain (the server's process is gone): down now, as after fall of them. */
bool verdict_feed_certain_failure(struct verdict *v);

#endif
