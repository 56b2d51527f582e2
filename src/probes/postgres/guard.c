#include "guard.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void guard_init(struct guard *g)
{
	*g = (struct guard){ .conflict_peer = -1, .history_peer = -1, .primary_peer = -1,
			     .behind_bytes = -1, .behind_received = -1, .behind_seconds = -1.0,
			     .rank = -1, .position = -1 };
}

static void forget_standby(struct guard *g)
{
	g->standby_seen = false;
	g->receiver_down = false;
	g->n_history = 0;
	g->history_peer = -1;
	g->primary_peer = -1;
	g->behind_bytes = -1;
	g->behind_received = -1;
	g->behind_seconds = -1.0;
	g->rank = -1;
	g->ranked = 0;
	g->position = -1;
	g->n_own = 0;
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

/* The primary among the peers' answers: same cluster, not in recovery, latest timeline. */
static int find_primary(struct guard *g, const struct pg_answer *local,
			const struct guard_peer *peers, int n_peers)
{
	int best = -1;

	for (int i = 0; i < n_peers; i++) {
		const struct pg_answer *a = peers[i].answer;

		if (!a || !a->valid || !same_cluster(g, i, local, a) || a->in_recovery || a->lsn < 0)
			continue;
		if (best < 0 || a->timeline > peers[best].answer->timeline ||
		    (a->timeline == peers[best].answer->timeline && a->lsn > peers[best].answer->lsn))
			best = i;
	}
	return best;
}

static void history_reset(struct guard *g, int peer, long timeline)
{
	g->n_history = 0;
	g->history_peer = peer;
	g->history_timeline = timeline;
	g->history_last_t = 0.0;
	g->history_last_lsn = -1;
}

/* Full: keeps the oldest sample exact (it gives the age) and every other one after it. */
static void history_thin(struct guard *g)
{
	int n = 1;

	for (int i = 2; i < g->n_history; i += 2)
		g->history[n++] = g->history[i];
	g->n_history = n;
}

/*
 * Adds the primary's position at its answer's time, drops the positions the
 * local replay has reached, and returns for how long replay has been behind:
 * since the first sample beyond the local replay position.  0 when caught up.
 */
static double history_age(struct guard *g, int peer, const struct pg_answer *primary,
			  const struct pg_answer *local)
{
	int drop = 0;

	if (peer != g->history_peer || primary->timeline != g->history_timeline ||
	    primary->lsn < g->history_last_lsn)
		history_reset(g, peer, primary->timeline);
	if (primary->lsn > g->history_last_lsn && primary->at > g->history_last_t) {
		if (g->n_history == GUARD_HISTORY)
			history_thin(g);
		g->history[g->n_history++] = (struct guard_sample){ primary->at, primary->lsn };
		g->history_last_t = primary->at;
		g->history_last_lsn = primary->lsn;
	}
	while (drop < g->n_history && g->history[drop].lsn <= local->lsn)
		drop++;
	memmove(g->history, g->history + drop, (size_t)(g->n_history - drop) * sizeof(g->history[0]));
	g->n_history -= drop;
	if (g->n_history == 0 || local->at < g->history[0].t)
		return 0.0;
	return local->at - g->history[0].t;
}

static int64_t behind(int64_t ahead, int64_t pos)
{
	return ahead > pos ? ahead - pos : 0;
}

/* Is the WAL receiver down for longer than receiver_grace?  Keeps its clock. */
static bool receiver_check(struct guard *g, const struct pg_settings *s,
			   const struct pg_answer *local, double *down_for)
{
	double gap = (double)(3 * s->interval_ms + s->timeout_ms + s->connect_timeout_ms) / 1000.0;

	/* Without answers for a while (the local server was down): start over. */
	if (g->standby_seen && local->at - g->last_standby > gap)
		g->receiver_down = false;
	g->standby_seen = true;
	g->last_standby = local->at;
	/* A receiver whose status is hidden (no pg_read_all_stats) runs: no proof it is down. */
	if (local->receiver == PG_RECEIVER_STREAMING || local->receiver == PG_RECEIVER_HIDDEN) {
		g->receiver_down = false;
		return false;
	}
	if (!g->receiver_down) {
		g->receiver_down = true;
		g->receiver_down_since = local->at;
	}
	*down_for = local->at - g->receiver_down_since;
	return s->receiver_grace_ms > 0 && *down_for * 1000.0 > (double)s->receiver_grace_ms;
}

int64_t guard_wal_position(const struct pg_answer *a)
{
	return a->receive_lsn > a->lsn ? a->receive_lsn : a->lsn;
}

static double distance(double a, double b)
{
	return a > b ? a - b : b - a;
}

/* This standby's position nearest in time to t: the peers answer after the local probe. */
static int64_t own_position_at(const struct guard *g, double t)
{
	if (g->n_own == 2 && distance(g->own[0].t, t) < distance(g->own[1].t, t))
		return g->own[0].lsn;
	return g->own[g->n_own - 1].lsn;
}

/* Is peer i ahead of this standby in the ranking? */
static bool ranks_ahead(const struct guard *g, const struct pg_settings *s,
			const struct guard_peer *peer, int64_t theirs)
{
	int64_t mine = own_position_at(g, peer->answer->at);

	if (theirs > mine && theirs - mine > s->rank_tolerance)
		return true;
	if (mine > theirs && mine - theirs > s->rank_tolerance)
		return false;
	/* A tie: the same order on every node, by name; without our own name, conceded. */
	return !s->node[0] || strcmp(peer->name, s->node) < 0;
}

static void rank_standby(struct guard *g, const struct pg_settings *s,
			 const struct pg_answer *local, const struct guard_peer *peers, int n_peers)
{
	g->rank = -1;
	g->ranked = 0;
	g->rank_pending = false;
	g->position = guard_wal_position(local);
	if (g->position < 0) {
		g->n_own = 0;
		return;
	}
	if (g->n_own == 2) {
		g->own[0] = g->own[1];
		g->n_own = 1;
	}
	g->own[g->n_own++] = (struct guard_sample){ local->at, g->position };
	if (n_peers == 0)
		return;
	g->rank = 0;
	g->ranked = 1;
	for (int i = 0; i < n_peers; i++) {
		const struct pg_answer *a = peers[i].answer;
		int64_t theirs;

		if (!a || !a->valid || !a->in_recovery || a->replay_paused ||
		    strcmp(local->system_identifier, a->system_identifier) != 0)
			continue;
		theirs = guard_wal_position(a);
		if (theirs < 0)
			continue;
		g->ranked++;
		if (ranks_ahead(g, s, &peers[i], theirs))
			g->rank++;
	}
	for (int i = 0; i < n_peers; i++) {
		if (peers[i].pending) {
			g->rank_pending = true;
			g->rank = n_peers;
			g->ranked = n_peers + 1;
		}
	}
}

/*
 * The standby's figures against the primary among the peers (g->behind_*):
 * the primary's answer the bytes are counted from, or NULL when they are
 * counted from what the standby received.
 */
static const struct pg_answer *measure_lag(struct guard *g, const struct pg_answer *local,
					   const struct guard_peer *peers,
					   int64_t *received_behind)
{
	const struct pg_answer *primary = NULL;

	*received_behind = -1;
	g->behind_bytes = local->lag_bytes;
	g->behind_received = -1;
	g->behind_seconds = -1.0;
	if (g->primary_peer < 0 || local->lsn < 0)
		return NULL;
	primary = peers[g->primary_peer].answer;
	g->behind_bytes = behind(primary->lsn, local->lsn);
	if (local->receive_lsn >= 0) {
		*received_behind = behind(primary->lsn, local->receive_lsn);
		g->behind_received = *received_behind;
		/* Received past the primary's (older) sample: count from there. */
		if (local->receive_lsn > primary->lsn) {
			g->behind_bytes = behind(local->receive_lsn, local->lsn);
			primary = NULL;
		}
	}
	g->behind_seconds = history_age(g, g->primary_peer, peers[g->primary_peer].answer, local);
	return primary;
}

static enum pgtrackd_state judge_standby(struct guard *g, const struct pg_settings *s,
				 const struct pg_answer *local, const struct guard_peer *peers,
				 int n_peers, char *reason, size_t size)
{
	const struct pg_answer *primary;
	const char *primary_name;
	double down_for = 0.0;
	bool receiver_late;
	int64_t received_behind;

	g->stale = false;
	g->conflict = false;
	g->conflict_peer = -1;

	receiver_late = receiver_check(g, s, local, &down_for);
	g->primary_peer = find_primary(g, local, peers, n_peers);
	rank_standby(g, s, local, peers, n_peers);
	primary = measure_lag(g, local, peers, &received_behind);
	primary_name = primary ? peers[g->primary_peer].name : NULL;

	if (local->replay_paused) {
		snprintf(reason, size, "in recovery, replay paused");
		return PGTRACKD_STATE_LAGGING;
	}
	if (receiver_late) {
		snprintf(reason, size, "in recovery, WAL receiver not streaming for %.1fs (%s%s; "
				       "receiver_grace %.1fs)", down_for,
			 local->receiver == PG_RECEIVER_NONE ? "none running" : "status ",
			 local->receiver == PG_RECEIVER_NONE ? "" : local->receiver_status,
			 (double)s->receiver_grace_ms / 1000.0);
		return PGTRACKD_STATE_LAGGING;
	}
	if (s->max_lag_bytes > 0 && g->behind_bytes > s->max_lag_bytes) {
		if (primary && received_behind >= 0)
			snprintf(reason, size, "in recovery, replay %" PRId64 " bytes behind primary "
					       "%s, %" PRId64 " of them not received (max_lag %" PRId64 ")",
				 g->behind_bytes, primary_name, received_behind, s->max_lag_bytes);
		else if (primary)
			snprintf(reason, size, "in recovery, replay %" PRId64 " bytes behind primary "
					       "%s (max_lag %" PRId64 ")",
				 g->behind_bytes, primary_name, s->max_lag_bytes);
		else
			snprintf(reason, size, "in recovery, %" PRId64 " bytes received but not "
					       "replayed (max_lag %" PRId64 ")",
				 g->behind_bytes, s->max_lag_bytes);
		return PGTRACKD_STATE_LAGGING;
	}
	if (s->max_lag_time_ms > 0 && g->behind_seconds >= 0.0) {
		if (g->behind_seconds * 1000.0 > (double)s->max_lag_time_ms) {
			snprintf(reason, size, "in recovery, replay behind primary %s for %.1fs "
					       "(max_lag_time %.1fs)", peers[g->primary_peer].name,
				 g->behind_seconds, (double)s->max_lag_time_ms / 1000.0);
			return PGTRACKD_STATE_LAGGING;
		}
	} else if (s->max_lag_time_ms > 0 &&
		   local->lag_seconds * 1000.0 > (double)s->max_lag_time_ms) {
		snprintf(reason, size, "in recovery, replay %.1fs behind (max_lag_time %.1fs)",
			 local->lag_seconds, (double)s->max_lag_time_ms / 1000.0);
		return PGTRACKD_STATE_LAGGING;
	}
	if (g->rank_pending)
		snprintf(reason, size, "in recovery, lowest rank (%d) until every peer was heard",
			 g->rank);
	else if (g->ranked >= 2)
		snprintf(reason, size, "in recovery, rank %d of %d standbys by WAL position %X/%X",
			 g->rank, g->ranked, PG_LSN_PARTS(g->position));
	else
		snprintf(reason, size, "in recovery");
	return PGTRACKD_STATE_STANDBY;
}

enum pgtrackd_state guard_judge(struct guard *g, const struct pg_settings *s,
			const struct pg_answer *local, const struct guard_peer *peers, int n_peers,
			char *reason, size_t size)
{
	int later = -1, same = -1;

	g->foreign_new = 0;
	if (local->in_recovery)
		return judge_standby(g, s, local, peers, n_peers, reason, size);
	forget_standby(g);

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
