#include "peer.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "monotime.h"
#include "util.h"

static struct peer *of_conn(struct pgconn *c)
{
	return container_of(c, struct peer, conn);
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
	pgconn_query(&p->conn, p->answer.system_identifier[0] ? PG_QUERY : PG_QUERY_FIRST,
		     p->track->timeout_ms);
}

static void on_connected(struct pgconn *c)
{
	struct peer *p = of_conn(c);

	/* A new session may be another server: its old answer no longer counts. */
	p->connected_at = monotime_now();
	p->answer.valid = false;
	p->answer.system_identifier[0] = '\0';
	send_query(p);
}

static void on_result(struct pgconn *c, const PGresult *res)
{
	struct peer *p = of_conn(c);

	if (!pg_answer_parse(res, &p->answer)) {
		if (!p->bad_answers)
			log_warnx("track \"%s\": peer %s: unexpected answer to the probe query; "
				  "no verdict from it until it answers properly",
				  p->track_name, p->settings->name);
		p->bad_answers = true;
		p->answer.valid = false;
		finish_poll(p);
		return;
	}
	p->bad_answers = false;
	p->answer.at = monotime_now();
	if (p->outage)
		log_info("track \"%s\": peer %s answers again: %s", p->track_name,
			 p->settings->name, p->answer.in_recovery ? "standby" : "primary");
	p->outage = false;
	log_debug("track \"%s\": peer %s: %s, timeline %ld, system identifier %s, WAL position %"
		  PRId64, p->track_name, p->settings->name,
		  p->answer.in_recovery ? "in recovery" : "not in recovery", p->answer.timeline,
		  p->answer.system_identifier, p->answer.lsn);
	finish_poll(p);
}

static void on_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct peer *p = of_conn(c);

	if (!p->outage)
		log_warnx("track \"%s\": peer %s gives no answer (%s: %s); no verdict from it "
			  "until it answers again, the local state stands",
			  p->track_name, p->settings->name, pgconn_error_str(f->kind), f->message);
	p->outage = true;
	finish_poll(p);
}

static const struct pgconn_handler handler = {
	.connected = on_connected,
	.result = on_result,
	.failed = on_failed,
};

void peer_init(struct peer *p, struct ev_loop *loop, const char *track_name,
	       const struct track_settings *track, const struct peer_settings *settings,
	       peer_done_fn done, void *owner)
{
	*p = (struct peer){ .loop = loop, .track_name = track_name, .track = track,
			    .settings = settings, .done = done, .owner = owner };
	pg_probe_params(track, settings->host, settings->hostaddr,
			settings->port ? settings->port : track->port, &p->params);
	pgconn_init(&p->conn, loop, &handler);
}

static double peer_session_max(const struct track_settings *track)
{
	/* As often as the local server gets a full connection: pings do not reach peers. */
	int64_t ms = track->accept_interval_ms > 0 ?
		track->accept_interval_ms * TRACK_ACCEPT_FULL_EVERY : PEER_SESSION_MAX_MS;

	return (double)ms / 1000.0;
}

void peer_poll(struct peer *p)
{
	/*
	 * A session held for good would hold up a smart shutdown of the peer
	 * forever (it waits for every session to end, and an idle session
	 * cannot tell): it is opened anew every TRACK_ACCEPT_FULL_EVERY
	 * accept_intervals (5 s if that is 0), and a peer that is shutting
	 * down turns the new one away (57P03).
	 */
	if (p->conn.state == PGCONN_READY &&
	    monotime_now() - p->connected_at >= peer_session_max(p->track))
		pgconn_close(&p->conn);
	switch (p->conn.state) {
	case PGCONN_CLOSED:
		pgconn_connect(&p->conn, p->params.keywords, p->params.values, p->track->connect_timeout_ms);
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
	pgconn_close(&p->conn);
}

const struct pg_answer *peer_fresh_answer(const struct peer *p, double now, double max_age)
{
	if (!p->answer.valid || now - p->answer.at > max_age)
		return NULL;
	return &p->answer;
}
