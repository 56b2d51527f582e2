/*
 * The built-in probe's facts (module ABI 3, describe): what it last saw of
 * the local server, of the accept probe and of each peer, written out only
 * when pgtrackd asks (an HTTP request), from the figures the checks keep.
 * The keys are listed in pgtrackd(8), "Facts".
 */
#include "probe_pg.h"

#include "monotime.h"

static const char *accept_state(const struct pg_probe *p)
{
	if (p->settings.accept_interval_ms == 0)
		return "off";
	if (p->accept_failing)
		return "failing";
	if (p->accept_crowded)
		return "too_many_connections";
	return "ok";
}

/* A standby's figures: lag against the primary among the peers, else its own backlog. */
static void describe_standby(const struct pg_probe *p, const struct pgtrackd_facts *out)
{
	const struct pg_answer *a = &p->local;
	const struct guard *g = &p->guard;
	int64_t lag = g->behind_bytes >= 0 ? g->behind_bytes : a->lag_bytes;

	if (lag >= 0)
		out->put_int(out, "lag_bytes", lag);
	if (g->behind_received >= 0)
		out->put_int(out, "receive_lag_bytes", g->behind_received);
	if (g->behind_seconds >= 0.0)
		out->put_double(out, "lag_seconds", g->behind_seconds);
	else
		/* pg_last_xact_replay_timestamp's age while there is a backlog, else none */
		out->put_double(out, "lag_seconds", a->lag_seconds >= 0.0 ? a->lag_seconds : 0.0);
	switch (a->receiver) {
	case PG_RECEIVER_NONE:
		out->put_text(out, "replication_state", "none");
		break;
	case PG_RECEIVER_HIDDEN:
		out->put_text(out, "replication_state", "unknown");
		break;
	case PG_RECEIVER_STREAMING:
	case PG_RECEIVER_OTHER:
		out->put_text(out, "replication_state", a->receiver_status);
		break;
	}
	out->put_int(out, "replay_paused", a->replay_paused);
	if (a->receive_lsn >= 0)
		out->put_int(out, "receive_position", a->receive_lsn);
	if (g->primary_peer >= 0 && g->primary_peer < p->settings.n_peers)
		out->put_text(out, "primary", p->settings.peers[g->primary_peer].name);
	if (g->rank >= 0) {
		out->put_int(out, "rank", g->rank);
		out->put_int(out, "ranked", g->ranked);
		out->put_int(out, "rank_pending", g->rank_pending);
	}
}

static void describe_local(const struct pg_probe *p, const struct pgtrackd_facts *out,
			   double now)
{
	const struct pg_answer *a = &p->local;

	out->put_int(out, "connected", pgconn_ready(&p->session) ||
				       p->session.state == PGCONN_BUSY);
	if (p->latency >= 0.0)
		out->put_double(out, "probe_latency_seconds", p->latency);
	if (!a->valid)
		return;
	out->put_double(out, "answer_age_seconds", now - a->at);
	out->put_int(out, "in_recovery", a->in_recovery);
	if (a->system_identifier[0])
		out->put_text(out, "system_identifier", a->system_identifier);
	if (a->lsn >= 0)
		out->put_int(out, "position", a->lsn);
	if (a->in_recovery) {
		describe_standby(p, out);
		return;
	}
	if (a->timeline > 0)
		out->put_int(out, "timeline", a->timeline);
	out->put_int(out, "stale", p->guard.stale);
	out->put_int(out, "conflict", p->guard.conflict);
	if (p->guard.conflict && p->guard.conflict_peer >= 0 &&
	    p->guard.conflict_peer < p->settings.n_peers)
		out->put_text(out, "conflict_peer", p->settings.peers[p->guard.conflict_peer].name);
}

static const char *peer_answer(const struct peer *peer)
{
	if (!peer->heard)
		return "pending";
	if (peer->outage || !peer->answer.valid)
		return "failed";
	return peer->answer.in_recovery ? "standby" : "primary";
}

static void describe_peer(const struct pg_probe *p, int i, const struct pgtrackd_facts *out,
			  double now)
{
	const struct peer *peer = &p->peers[i];
	const struct pg_answer *a = &peer->answer;
	bool answered = peer->heard && !peer->outage && a->valid;

	out->begin_object(out, NULL);
	out->put_text(out, "name", p->settings.peers[i].name);
	out->put_text(out, "answer", peer_answer(peer));
	if (peer->heard)
		out->put_double(out, "age_seconds", now - peer->heard_at);
	out->put_int(out, "reachable", answered);
	if (answered) {
		if (!a->in_recovery && a->timeline > 0)
			out->put_int(out, "timeline", a->timeline);
		if (guard_wal_position(a) >= 0)
			out->put_int(out, "position", guard_wal_position(a));
		if (a->system_identifier[0])
			out->put_text(out, "system_identifier", a->system_identifier);
		out->put_int(out, "same_cluster", !(p->guard.foreign & (1u << i)));
	}
	out->end(out);
}

void pg_probe_describe(void *state, const struct pgtrackd_facts *out)
{
	const struct pg_probe *p = state;
	double now = monotime_now();

	describe_local(p, out, now);
	out->put_text(out, "accept_probe", accept_state(p));
	out->put_int(out, "accept_failures", (int64_t)p->accept_failures);
	if (p->accept_failing)
		out->put_text(out, "accept_reason", p->accept_reason);
	if (p->settings.sync_standby_names[0])
		sync_policy_describe(&p->sync, out);
	if (p->settings.n_peers == 0)
		return;
	out->begin_list(out, "peers");
	for (int i = 0; i < p->settings.n_peers; i++)
		describe_peer(p, i, out, now);
	out->end(out);
}
