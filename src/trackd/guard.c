#include "guard.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void guard_init(struct guard *g)
{
	*g = (struct guard){ .conflict_peer = -1 };
}

static bool same_cluster(struct guard *g, int i, const struct pg_answer *local,
			 const struct pg_answer *peer)
{
	if (strcmp(local->system_identifier, peer->system_identifier) == 0)
		return true;
	if (!(g->foreign & (1u << i)))
		g->foreign_new |= 1u << i;
	g->foreign |= 1u << i;
	return false;
}

static enum pgtrackd_state judge_standby(struct guard *g, const struct track_settings *s,
				 const struct pg_answer *local, char *reason, size_t size)
{
	g->stale = false;
	g->conflict = false;
	g->conflict_peer = -1;
	if (local->replay_paused) {
		snprintf(reason, size, "in recovery, replay paused");
		return PGTRACKD_STATE_LAGGING;
	}
	if (s->max_lag_bytes > 0 && local->lag_bytes > s->max_lag_bytes) {
		snprintf(reason, size, "in recovery, %" PRId64 " bytes received but not replayed "
				       "(max_lag %" PRId64 ")", local->lag_bytes, s->max_lag_bytes);
		return PGTRACKD_STATE_LAGGING;
	}
	if (s->max_lag_time_ms > 0 && local->lag_seconds * 1000.0 > (double)s->max_lag_time_ms) {
		snprintf(reason, size, "in recovery, replay %.1fs behind (max_lag_time %.1fs)",
			 local->lag_seconds, (double)s->max_lag_time_ms / 1000.0);
		return PGTRACKD_STATE_LAGGING;
	}
	snprintf(reason, size, "in recovery");
	return PGTRACKD_STATE_STANDBY;
}

enum pgtrackd_state guard_judge(struct guard *g, const struct track_settings *s,
			const struct pg_answer *local, const struct guard_peer *peers, int n_peers,
			char *reason, size_t size)
{
	int later = -1, same = -1;

	g->foreign_new = 0;
	if (local->in_recovery)
		return judge_standby(g, s, local, reason, size);

	for (int i = 0; i < n_peers; i++) {
		const struct pg_answer *a = peers[i].answer;

		if (!a || !a->valid)
			continue;
		if (!same_cluster(g, i, local, a)) {
			if (g->conflict && g->conflict_peer == i)
				g->conflict = false;
			continue;
		}
		if (a->in_recovery) {
			if (g->conflict && g->conflict_peer == i)
				g->conflict = false;
			continue;
		}
		if (a->timeline > local->timeline) {
			if (later < 0)
				later = i;
		} else if (a->timeline == local->timeline) {
			if (same < 0)
				same = i;
		} else if (g->conflict && g->conflict_peer == i) {
			g->conflict = false; /* it is the stale one now */
		}
	}

	if (later >= 0) {
		g->stale = true;
		snprintf(reason, size, "stale primary: peer %s is primary on timeline %ld, this "
				       "server on timeline %ld",
			 peers[later].name, peers[later].answer->timeline, local->timeline);
		return PGTRACKD_STATE_STALE;
	}
	if (g->stale) {
		snprintf(reason, size, "stale primary: a peer was promoted after this server; it "
				       "stays stale until it is rebuilt as a standby");
		return PGTRACKD_STATE_STALE;
	}
	if (same >= 0) {
		g->conflict = true;
		g->conflict_peer = same;
	}
	if (g->conflict) {
		const struct pg_answer *a = peers[g->conflict_peer].answer;

		if (same >= 0 || !a)
			snprintf(reason, size, "conflict: peer %s %s primary on timeline %ld like this "
					       "server; neither may take writes until one is a standby",
				 peers[g->conflict_peer].name, same >= 0 ? "is" : "was last seen",
				 local->timeline);
		else
			snprintf(reason, size, "conflict: peer %s was primary on timeline %ld like "
					       "this server",
				 peers[g->conflict_peer].name, local->timeline);
		return PGTRACKD_STATE_CONFLICT;
	}
	snprintf(reason, size, "not in recovery");
	return PGTRACKD_STATE_PRIMARY;
}
