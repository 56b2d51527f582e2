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
 * - standby: lagging when replay is paused; when its WAL receiver has not
 *   been streaming for longer than receiver_grace; when replay is more than
 *   max_lag bytes behind the newest WAL position known (the primary's
 *   flushed position if a peer of the same cluster answers as primary,
 *   else what the standby received); or when replay has been behind the
 *   primary for longer than max_lag_time (without a primary: the old
 *   figure, age of the last replayed commit while there is a backlog).
 *   Ages are measured on CLOCK_MONOTONIC (pg_answer.at).
 * - standby with peers: ranked among the standbys of its cluster by WAL
 *   position (the larger of received and replayed): its rank is the number
 *   of standbys ahead of it.  A peer's position is compared with this
 *   node's own position nearest in time to the peer's answer; positions
 *   within rank_tolerance bytes tie, and a tie goes to the name first in
 *   strcmp order (node is this node's name; without it a tie is conceded).
 *   Peers whose replay is paused, without a fresh answer, or of another
 *   cluster are not ranked.  While a peer is still pending (pgtrackd just
 *   started), the rank is the lowest possible: a standby does not claim
 *   the top before it has heard the others.
 */
#ifndef PGTRACKD_GUARD_H
#define PGTRACKD_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include <pgtrackd/module.h>

#include "pg_answer.h"
#include "pg_settings.h"

struct guard_peer {
	const char *name;
	const struct pg_answer *answer; /* NULL: no fresh answer */
	bool pending; /* not heard of yet: neither an answer nor a failure */
};

#define GUARD_HISTORY 64

/* The primary's flushed WAL position at a time (CLOCK_MONOTONIC seconds). */
struct guard_sample {
	double t;
	int64_t lsn;
};

struct guard {
	bool stale;
	bool conflict;
	int conflict_peer;
	unsigned foreign;      /* bit i: peer i belongs to another cluster */
	unsigned foreign_new;  /* bits first seen by the last judgement */

	/* Standby side. */
	bool standby_seen;
	double last_standby;          /* when the last standby answer arrived */
	bool receiver_down;
	double receiver_down_since;   /* first answer without a streaming receiver */
	/*
	 * The primary's positions beyond the local replay position, oldest
	 * first: the oldest tells since when replay has been behind.
	 */
	struct guard_sample history[GUARD_HISTORY];
	int n_history;
	int history_peer;             /* whose positions: -1 none */
	long history_timeline;
	double history_last_t;        /* the newest sample taken, kept or not */
	int64_t history_last_lsn;

	/* Figures of the last standby judgement, for the log. */
	int primary_peer;             /* the primary among the peers, -1 none */
	int64_t behind_bytes;         /* replay behind the newest position known, -1 unknown */
	int64_t behind_received;      /* received behind the primary, -1 unknown */
	double behind_seconds;        /* replay behind the primary for, -1 unknown */

	/* Standbys ranked by WAL position (only with peers). */
	int rank;                     /* standbys ahead of this one; -1 not ranked */
	int ranked;                   /* standbys in the ranking, this one included */
	bool rank_pending;            /* lowest rank: a peer was not heard of yet */
	int64_t position;             /* this standby's WAL position, -1 unknown */
	struct guard_sample own[2];   /* its last two positions: compared at the peers' times */
	int n_own;
};

/* A standby's WAL position for the ranking: the larger of received and replayed, -1 unknown. */
int64_t guard_wal_position(const struct pg_answer *a);

void guard_init(struct guard *g);

/*
 * Judges one local answer.  reason gets a sentence for the log (why the
 * sample is what it is).
 */
enum pgtrackd_state guard_judge(struct guard *g, const struct pg_settings *s,
			const struct pg_answer *local, const struct guard_peer *peers, int n_peers,
			char *reason, size_t reason_size);

#endif
