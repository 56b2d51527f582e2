/*
 * guard: the stale-primary guard and the lag check, as pure decisions.
 *
 * Given the local server's answer and the peers' latest answers, says
 * which sample the local track gets:
 *
 * - primary, and a peer of the same cluster is primary on a later
 *   timeline: stale.  Sticky: it clears only when the local server answers
 *   as a standby, never by itself while it is primary.
 * - primary, and a peer of the same cluster is primary on the same
 *   timeline: conflict (split brain that timelines cannot settle).  Sticky
 *   until that peer is seen as a standby or on another timeline, or the
 *   local server is a standby.  Both sides take the conflict value, so
 *   neither serves writes through the VIP until a human decides.
 * - a peer of another cluster (other system identifier) is ignored.
 * - a peer without a fresh answer gives no verdict: the local state stands.
 * - standby with replay paused, or behind by more than max_lag bytes or
 *   max_lag_time: lagging.
 */
#ifndef PGTRACKD_GUARD_H
#define PGTRACKD_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "pg_answer.h"
#include "verdict.h"

struct guard_peer {
	const char *name;
	const struct pg_answer *answer; /* NULL: no fresh answer */
};

struct guard {
	bool stale;
	bool conflict;
	int conflict_peer;
	unsigned foreign;      /* bit i: peer i belongs to another cluster */
	unsigned foreign_new;  /* bits first seen by the last judgement */
};

void guard_init(struct guard *g);

/*
 * Judges one local answer.  reason gets a sentence for the log (why the
 * sample is what it is).
 */
enum pgtrackd_state guard_judge(struct guard *g, const struct track_settings *s,
			const struct pg_answer *local, const struct guard_peer *peers, int n_peers,
			char *reason, size_t reason_size);

#endif
