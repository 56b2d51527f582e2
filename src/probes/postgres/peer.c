#include "peer.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "monotime.h"
#include "pg_log.h"
#include "util.h"

/*
 * Two connection slots: the session in use (cur) and, while a session is
 * renewed, its successor.  Each slot has its own handler, so a callback
 * knows which one it comes from.
 */
static struct peer *of_slot0(struct pgconn *c)
{
	return container_of(c, struct peer, conns[0]);
}

static struct peer *of_slot1(struct pgconn *c)
{
	return container_of(c, struct peer, conns[1]);
}

static struct pgconn *session(struct peer *p)
{
	return &p->conns[p->cur];
}

static void finish_poll(struct peer *p)
{
	if (!p->in_round)
		return;
	p->in_round = false;
	p->done(p, p->owner);
}

static void send_query(struct peer *p)
{
	bool known = p->session_has_sysid && p->answer.system_identifier[0];

	pgconn_query(session(p), known ? PG_QUERY : PG_QUERY_FIRST, p->track->timeout_ms);
}

static void on_connected(struct peer *p, int slot)
{
	p->connected_at = monotime_now();
	p->session_has_sysid = false; /* each session asks once who it is */
	if (slot != p->cur) {
		/*
		 * The renewed session is up: it replaces the old one.  The last
		 * answer stays until the new session's first one replaces it: a
		 * renewal must not leave a gap in which the peer says nothing
		 * (a standby's rank, the guard's round).
		 */
		pgconn_close(session(p));
		p->cur = slot;
	} else {
		/* After an outage this may be another server: its old answer no longer counts. */
		p->answer.valid = false;
		p->answer.system_identifier[0] = '\0';
	}
	send_query(p);
}

static void on_result(struct peer *p, const PGresult *res)
{
	p->heard = true;
	p->heard_at = monotime_now();
	if (!pg_answer_parse(res, &p->answer)) {
		if (!p->bad_answers)
			pg_log(p->host, WARNING, "peer %s: unexpected answer to the probe query; "
				  "no verdict from it until it answers properly",
				  p->settings->name);
		p->bad_answers = true;
		p->answer.valid = false;
		finish_poll(p);
		return;
	}
	p->bad_answers = false;
	p->session_has_sysid = true;
	p->answer.at = monotime_now();
	if (p->outage)
		pg_log(p->host, INFO, "peer %s answers again: %s",
			 p->settings->name, p->answer.in_recovery ? "standby" : "primary");
	p->outage = false;
	pg_log(p->host, DEBUG, "peer %s: %s, timeline %ld, system identifier %s, WAL position %"
		  PRId64, p->settings->name,
		  p->answer.in_recovery ? "in recovery" : "not in recovery", p->answer.timeline,
		  p->answer.system_identifier, p->answer.lsn);
	finish_poll(p);
}

/*
 * The successor of a session failed.  A peer that is shutting down (57P03)
 * must be let go: a smart shutdown waits for our old session too.  Any
 * other failure keeps the old session, which still answers: a new primary
 * at max_connections (53300) must not blind the stale-primary guard.
 */
static void renewal_failed(struct peer *p, const struct pgconn_failure *f)
{
	if (f->kind != PGCONN_ERR_STARTING) {
		pg_log(p->host, DEBUG, "peer %s: keeping the session, a new one failed (%s: %s)",
			  p->settings->name, pgconn_error_str(f->kind), f->message);
		return;
	}
	pgconn_close(session(p));
	if (!p->outage)
		pg_log(p->host, WARNING, "peer %s is shutting down or starting up (%s); closing our "
			  "session to it, no verdict from it until it answers again",
			  p->settings->name, f->message);
	p->outage = true;
	finish_poll(p);
}

static void on_failed(struct peer *p, int slot, const struct pgconn_failure *f)
{
	if (slot != p->cur) {
		renewal_failed(p, f);
		return;
	}
	p->heard = true;
	p->heard_at = monotime_now();
	if (!p->outage)
		pg_log(p->host, WARNING, "peer %s gives no answer (%s: %s); no verdict from it "
			  "until it answers again, the local state stands",
			  p->settings->name, pgconn_error_str(f->kind), f->message);
	p->outage = true;
	finish_poll(p);
}

static void connected0(struct pgconn *c) { on_connected(of_slot0(c), 0); }
static void connected1(struct pgconn *c) { on_connected(of_slot1(c), 1); }
static void result0(struct pgconn *c, const PGresult *res) { on_result(of_slot0(c), res); }
static void result1(struct pgconn *c, const PGresult *res) { on_result(of_slot1(c), res); }
static void failed0(struct pgconn *c, const struct pgconn_failure *f) { on_failed(of_slot0(c), 0, f); }
static void failed1(struct pgconn *c, const struct pgconn_failure *f) { on_failed(of_slot1(c), 1, f); }

static const struct pgconn_handler slot_handlers[2] = {
	{ .connected = connected0, .result = result0, .failed = failed0 },
	{ .connected = connected1, .result = result1, .failed = failed1 },
};

void peer_init(struct peer *p, const struct pgtrackd_host *host,
	       const struct pg_settings *track, const struct pg_peer_settings *settings,
	       peer_done_fn done, void *owner)
{
	*p = (struct peer){ .host = host, .track = track,
			    .settings = settings, .done = done, .owner = owner };
	pg_probe_params(track, settings->host, settings->hostaddr,
			settings->port ? settings->port : track->port, &p->params);
	pgconn_init(&p->conns[0], host->loop, &slot_handlers[0]);
	pgconn_init(&p->conns[1], host->loop, &slot_handlers[1]);
}

static double peer_session_max(const struct pg_settings *track)
{
	/* As often as the local server gets a full connection: pings do not reach peers. */
	int64_t ms = track->accept_interval_ms > 0 ?
		track->accept_interval_ms * PG_ACCEPT_FULL_EVERY : PEER_SESSION_MAX_MS;

	return (double)ms / 1000.0;
}

void peer_poll(struct peer *p)
{
	struct pgconn *now = session(p);
	struct pgconn *next = &p->conns[1 - p->cur];

	/*
	 * A session held for good would hold up a smart shutdown of the peer
	 * forever (it waits for every session to end, and an idle session
	 * cannot tell): every PG_ACCEPT_FULL_EVERY accept_intervals (5 s
	 * if that is 0) a successor is opened, and replaces the session once
	 * it is up.  A peer that is shutting down turns it away (57P03), and
	 * then the old session goes.
	 */
	if (now->state == PGCONN_READY && next->state == PGCONN_CLOSED &&
	    monotime_now() - p->connected_at >= peer_session_max(p->track)) {
		p->connected_at = monotime_now(); /* paces the renewals that fail */
		pgconn_connect(next, p->params.keywords, p->params.values,
			       p->track->connect_timeout_ms);
	}
	switch (now->state) {
	case PGCONN_CLOSED:
		if (next->state == PGCONN_CLOSED)
			pgconn_connect(now, p->params.keywords, p->params.values,
				       p->track->connect_timeout_ms);
		/* else the successor under way decides */
		break;
	case PGCONN_READY:
		send_query(p);
		break;
	case PGCONN_CONNECTING:
	case PGCONN_BUSY:
		break; /* its deadline decides */
	}
}

void peer_stop(struct peer *p)
{
	pgconn_close(&p->conns[0]);
	pgconn_close(&p->conns[1]);
}

const struct pg_answer *peer_fresh_answer(const struct peer *p, double now, double max_age)
{
	if (!p->answer.valid || now - p->answer.at > max_age)
		return NULL;
	return &p->answer;
}
