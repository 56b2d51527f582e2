#include "probe_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "monotime.h"
#include "pg_log.h"
#include "util.h"

static struct pg_probe *of_session(struct pgconn *c)
{
	return container_of(c, struct pg_probe, session);
}

void pg_probe_cancel_round(struct pg_probe *p);

static void report_failure_as(struct pg_probe *p, const struct pgconn_failure *f,
			      enum pgtrackd_failure class)
{
	char reason[400];

	/* A judgement pending on an older answer must not follow this failure. */
	pg_probe_cancel_round(p);
	pg_probe_format_failure(reason, sizeof(reason), "", f);
	p->last_sample = PGTRACKD_STATE_FAIL;
	p->host->report_failure(p->host, class, reason);
}

static void report_failure(struct pg_probe *p, const struct pgconn_failure *f)
{
	report_failure_as(p, f, pg_probe_failure_class(f->kind));
}

/*
 * A refused connect takes microseconds; a healthy postmaster cannot have
 * taken the socket's place within this time of the old one's death.
 */
#define PG_EXITING_RECONNECT_MS 10

void pg_probe_connect_session(struct pg_probe *p)
{
	int64_t timeout_ms = p->settings.connect_timeout_ms;

	p->exiting_connect_pid = p->exiting_pid;
	p->exiting_pid = 0;
	if (p->exiting_connect_pid && timeout_ms > PG_EXITING_RECONNECT_MS)
		timeout_ms = PG_EXITING_RECONNECT_MS;
	pg_log(p->host, DEBUG, "connecting");
	pgconn_connect(&p->session, p->params.keywords, p->params.values, timeout_ms);
}

/*
 * The system identifier is asked once per session; the rest is prepared
 * with the session's first probe and then only executed.
 */
static int send_probe_query(struct pg_probe *p, bool *preparing)
{
	bool first = !p->local.system_identifier[0];
	int64_t timeout = p->settings.timeout_ms;

	*preparing = !p->prepared && !p->no_prepare;
	if (*preparing)
		return pgconn_query(&p->session, first ? PG_PREPARE PG_QUERY_FIRST : PG_PREPARE PG_QUERY,
				    timeout);
	if (first || p->no_prepare)
		return pgconn_query(&p->session, first ? PG_QUERY_FIRST : PG_QUERY, timeout);
	return pgconn_query_prepared(&p->session, PG_STATEMENT, timeout);
}

static void send_probe(struct pg_probe *p)
{
	bool preparing;
	double now = monotime_now();

	/* The one in flight keeps its start: the latency is its round trip. */
	if (send_probe_query(p, &preparing) < 0) {
		pg_log(p->host, DEBUG, "previous probe still running, skipping one");
	} else {
		p->query_started = now;
		p->preparing = preparing;
	}
}

/*
 * The ping goes where the session went: the socket directory, or the
 * numeric address libpq connected to (a host name is never resolved
 * again, and of a host list only the server that answered counts).
 */
static void remember_ping_target(struct pg_probe *p)
{
	const char *host = PQhost(p->session.conn);
	const char *addr = PQhostaddr(p->session.conn);
	const char *port = PQport(p->session.conn);
	const char *target = NULL;

	if (host && (host[0] == '/' || host[0] == '@'))
		target = host;
	else if (addr && addr[0])
		target = addr;
	p->ping_host[0] = '\0';
	if (!target || !port || strlen(target) >= sizeof(p->ping_host) ||
	    strlen(port) >= sizeof(p->ping_port))
		return; /* full connections only */
	strcpy(p->ping_host, target);
	strcpy(p->ping_port, port);
}

/*
 * A local postmaster, seen through the session's unix socket or, over TCP,
 * as the parent of the session's own backend: its state and its
 * postmaster.pid are a pread away, and the light accept probe costs the
 * server nothing.  Said (debug) when what can be seen of it changes.
 */
static void remember_postmaster(struct pg_probe *p)
{
	int fd = PQsocket(p->session.conn);
	int pid = pg_ping_postmaster_pid(fd);
	int was = p->pm.pid;
	bool had_pidfile = pg_postmaster_has_pidfile(&p->pm);

	if (pid <= 0)
		pid = pg_ping_postmaster_of_backend(fd, PQbackendPID(p->session.conn));
	if (pid <= 0 || pg_postmaster_open(&p->pm, pid) < 0) {
		pg_postmaster_close(&p->pm);
		postmaster_watch_stop(&p->postmaster);
		if (was > 0)
			pg_log(p->host, DEBUG, "postmaster not visible from here: accept probes are "
			       "pings and full connections");
		return;
	}
	if (postmaster_watch_start(&p->postmaster, pid, PQbackendPID(p->session.conn)) < 0) {
		if (pid != was)
			pg_log(p->host, DEBUG, "cannot watch the postmaster's exit; the session's end tells");
	} else if (pid != was && postmaster_watch_has_pipe(&p->postmaster)) {
		pg_log(p->host, INFO, "postmaster pid %d: its death pipe watched: a crash is seen "
		       "the moment its descriptors close", pid);
	} else if (pid != was) {
		pg_log(p->host, INFO, "postmaster pid %d: its death pipe not watched (%s); a crash is "
		       "seen once it has exited or the session ends, milliseconds later", pid,
		       p->postmaster.pipe_why);
	}
	if (pid == was && had_pidfile == pg_postmaster_has_pidfile(&p->pm))
		return;
	if (pg_postmaster_has_pidfile(&p->pm))
		pg_log(p->host, DEBUG, "postmaster pid %d, its state and postmaster.pid status read "
		       "every accept probe", pid);
	else
		pg_log(p->host, DEBUG, "postmaster pid %d: postmaster.pid not readable (%s); a "
		       "shutdown is seen by the full connection, every accept_full_interval", pid,
		       p->pm.pidfile_why);
}

static void session_connected(struct pgconn *c)
{
	struct pg_probe *p = of_session(c);

	pg_log(p->host, DEBUG, "connected");
	p->exiting_connect_pid = 0;
	if (p->session_crowded)
		pg_log(p->host, INFO, "session open again after too many connections");
	p->session_crowded = false;
	if (pgconn_dropped(c)[0] && !p->dropped_warned) {
		p->dropped_warned = true;
		pg_log(p->host, WARNING, "host lists more than %d addresses; connecting without %s",
			  PGCONN_MAX_HOSTS, pgconn_dropped(c));
	}
	p->local.system_identifier[0] = '\0';
	p->prepared = p->preparing = false;
	remember_ping_target(p);
	remember_postmaster(p);
	send_probe(p);
}

/*
 * PostgreSQL 14+ reports in_hot_standby with every ReadyForQuery: after a
 * promotion it flips to off with the first query's answer.  It must agree
 * with pg_is_in_recovery(); say so when it does not.
 */
static void cross_check_hot_standby(struct pg_probe *p)
{
	const char *hs = PQparameterStatus(p->session.conn, "in_hot_standby");
	int now;

	if (!hs)
		return; /* before PostgreSQL 14 */
	now = strcmp(hs, "on") == 0;
	if (p->hot_standby == 1 && now == 0)
		pg_log(p->host, INFO, "the server reports in_hot_standby = off: it was promoted");
	p->hot_standby = now;
	if (now == p->local.in_recovery) {
		p->hot_standby_disagreements = 0;
		return;
	}
	if (++p->hot_standby_disagreements == 2)
		pg_log(p->host, WARNING, "in_hot_standby = %s but pg_is_in_recovery() = %s; trusting "
			  "pg_is_in_recovery()", hs,
			  p->local.in_recovery ? "true" : "false");
}

static bool guard_needed(const struct pg_probe *p)
{
	return p->settings.n_peers > 0 &&
	       (!p->local.in_recovery || p->guard.stale || p->guard.conflict);
}

/*
 * A conflict is an error an operator must act on, but it lasts: the
 * transition is logged, then a reminder once every reminder_interval, not
 * at every probe.
 */
static void log_conflict(struct pg_probe *p, enum pgtrackd_state sample, const char *reason)
{
	unsigned long held_back;

	if (sample != PGTRACKD_STATE_CONFLICT) {
		if (p->in_conflict)
			pg_log(p->host, INFO, "the conflict is over");
		p->in_conflict = false;
		return;
	}
	if (!p->in_conflict)
		ratelimit_init(&p->conflict_log, duration_seconds(p->settings.reminder_interval_ms), 1);
	p->in_conflict = true;
	if (!ratelimit_allow(&p->conflict_log, monotime_now(), &held_back))
		return;
	pg_log(p->host, ERROR, "%s. Stop or rebuild one of them as a standby; until "
		  "then this node stays at value_conflict", reason);
}

double pg_probe_peer_max_age(const struct pg_probe *p)
{
	return 3.0 * duration_seconds(p->settings.interval_ms) +
	       duration_seconds(p->settings.timeout_ms);
}

/* The verdict of the guard on the local answer and the peers' fresh answers. */
static enum pgtrackd_state judge(struct pg_probe *p, char *reason, size_t size)
{
	struct guard_peer views[PG_MAX_PEERS];
	double now = monotime_now();
	double max_age = pg_probe_peer_max_age(p);
	enum pgtrackd_state sample;

	for (int i = 0; i < p->settings.n_peers; i++) {
		views[i].name = p->settings.peers[i].name;
		views[i].answer = peer_fresh_answer(&p->peers[i], now, max_age);
		views[i].pending = !p->peers[i].heard;
	}
	sample = guard_judge(&p->guard, &p->settings, &p->local, views, p->settings.n_peers,
			     reason, size);
	/* A standby's place among the standbys goes with this verdict (see track.h). */
	if (p->local.in_recovery)
		p->host->set_rank(p->host, p->guard.rank, p->settings.rank_step);
	for (int i = 0; i < p->settings.n_peers; i++) {
		if (p->guard.foreign_new & (1u << i))
			pg_log(p->host, WARNING, "peer %s belongs to another cluster (system "
				  "identifier %s, ours %s); ignoring it",
				  p->settings.peers[i].name,
				  p->peers[i].answer.system_identifier, p->local.system_identifier);
	}
	log_conflict(p, sample, reason);
	return sample;
}

static void close_round(struct pg_probe *p)
{
	char reason[400];
	enum pgtrackd_state sample;

	bool guard_only = p->round_guard_only;

	ev_timer_stop(p->host->loop, &p->round_deadline);
	p->round_open = false;
	p->round_guard_only = false;
	for (int i = 0; i < p->settings.n_peers; i++)
		p->peers[i].in_round = false;
	sample = judge(p, reason, sizeof(reason));
	if (guard_only && sample != PGTRACKD_STATE_STALE && sample != PGTRACKD_STATE_CONFLICT)
		return;
	p->last_sample = sample;
	p->host->report(p->host, sample, reason);
}

void pg_probe_peer_done(struct peer *peer, void *owner)
{
	struct pg_probe *p = owner;

	if (p->round_open && --p->round_waiting == 0)
		close_round(p);
}

void pg_probe_round_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pg_probe *p = container_of(w, struct pg_probe, round_deadline);

	pg_log(p->host, DEBUG, "%d peer(s) did not answer in time; judging without them",
		  p->round_waiting);
	close_round(p);
}

/* Asks every peer; the judgement waits for those not known to be out. */
static void open_round(struct pg_probe *p)
{
	if (p->round_open)
		return; /* the open round judges with this newer local answer */
	p->round_open = true;
	p->round_waiting = 0;
	for (int i = 0; i < p->settings.n_peers; i++) {
		struct peer *peer = &p->peers[i];

		peer->in_round = !peer->outage;
		p->round_waiting += peer->in_round;
		peer_poll(peer);
	}
	if (p->round_waiting == 0) {
		close_round(p);
		return;
	}
	ev_timer_set(&p->round_deadline,
		     duration_seconds(p->settings.connect_timeout_ms + p->settings.timeout_ms), 0.0);
	ev_timer_start(p->host->loop, &p->round_deadline);
}

/* A standby asks its peers without waiting: the next answer is judged with theirs. */
static void poll_peers(struct pg_probe *p)
{
	for (int i = 0; i < p->settings.n_peers; i++)
		peer_poll(&p->peers[i]);
}

/* Once per track: without pg_read_all_stats, receiver_grace sees less. */
static void note_hidden_receiver(struct pg_probe *p)
{
	if (p->receiver_hidden_logged || p->local.receiver != PG_RECEIVER_HIDDEN ||
	    p->settings.receiver_grace_ms == 0)
		return;
	p->receiver_hidden_logged = true;
	pg_log(p->host, INFO, "the WAL receiver's status is hidden from this role (grant it "
		 "pg_read_all_stats); receiver_grace can only tell whether a receiver runs");
}

static void log_standby_figures(struct pg_probe *p)
{
	const struct guard *g = &p->guard;

	if (g->primary_peer < 0) {
		pg_log(p->host, DEBUG, "no primary among the peers' answers: lag against the "
			  "primary unknown");
		return;
	}
	pg_log(p->host, DEBUG, "primary %s: replay %" PRId64 " bytes behind, received %" PRId64
	       " bytes behind, replay behind for %.1fs", p->settings.peers[g->primary_peer].name,
	       g->behind_bytes, g->behind_received, g->behind_seconds);
}

void pg_probe_cancel_round(struct pg_probe *p)
{
	ev_timer_stop(p->host->loop, &p->round_deadline);
	p->round_open = false;
	p->round_guard_only = false;
	for (int i = 0; i < p->settings.n_peers; i++)
		p->peers[i].in_round = false;
}

static void session_result(struct pgconn *c, const PGresult *res)
{
	struct pg_probe *p = of_session(c);
	char reason[400];
	enum pgtrackd_state sample;

	if (p->preparing)
		p->prepared = true;
	p->preparing = false;
	if (!pg_answer_parse(res, &p->local)) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_QUERY };

		snprintf(f.message, sizeof(f.message), "unexpected answer to the probe query");
		report_failure(p, &f);
		return;
	}
	p->local.at = monotime_now();
	p->latency = p->local.at - p->query_started;
	cross_check_hot_standby(p);
	if (p->local.in_recovery)
		pg_log(p->host, DEBUG, "in recovery, %" PRId64 " bytes not replayed, %.1fs behind%s, "
			  "WAL receiver %s, %.1f ms", p->local.lag_bytes,
			  p->local.lag_seconds, p->local.replay_paused ? ", replay paused" : "",
			  p->local.receiver_status[0] ? p->local.receiver_status : "not running",
			  p->latency * 1000.0);
	else
		pg_log(p->host, DEBUG, "not in recovery, timeline %ld, system identifier %s, %.1f ms",
			  p->local.timeline, p->local.system_identifier, p->latency * 1000.0);
	if (p->accept_failing) {
		p->host->report_failure(p->host, p->accept_class, p->accept_reason);
		return;
	}
	p->round_guard_only = false;
	if (guard_needed(p)) {
		open_round(p);
		return;
	}
	sample = judge(p, reason, sizeof(reason));
	if (p->local.in_recovery)
		note_hidden_receiver(p);
	if (p->local.in_recovery && p->settings.n_peers > 0) {
		log_standby_figures(p);
		poll_peers(p);
	}
	p->last_sample = sample;
	p->host->report(p->host, sample, reason);
}

/*
 * The server turned our session away for want of a slot (53300) after it
 * had answered us: it is alive, and its role cannot change without a
 * restart.  A restart shows on the way (refused, 57P03 starting up or
 * shutting down, a connect that times out), and any of those forgets the
 * last answer (forget_local).  So with an answer still held, the last
 * verdict stands; the session is retried at every tick.  (Without one,
 * 53300 is a failure like any other: a role that may never connect must
 * not pass for healthy.)
 */
static void session_crowded_out(struct pg_probe *p, const struct pgconn_failure *f)
{
	if (!p->session_crowded)
		pg_log(p->host, WARNING, "cannot open a session: too many connections (%s); the "
			  "server answered, so it is alive: keeping the last verdict and retrying every "
			  "interval. Give pgtrackd a reserved slot (see pgtrackd(8), Accept probe)",
			  f->message);
	p->session_crowded = true;
}

/*
 * Whether a failure says the server may have restarted since its last
 * answer (or is not the same server any more): then that answer no longer
 * tells its role.  A lost session alone does not: a terminated backend is
 * one failure and an immediate reconnect, which tells.
 */
static bool may_have_restarted(enum pgconn_error kind)
{
	switch (kind) {
	case PGCONN_ERR_LOST:     /* followed by an immediate reconnect, see below */
	case PGCONN_ERR_QUERY:
	case PGCONN_ERR_TOO_MANY:
		return false;
	case PGCONN_ERR_REFUSED:
	case PGCONN_ERR_STARTING:
	case PGCONN_ERR_AUTH:
	case PGCONN_ERR_TIMEOUT:
	case PGCONN_ERR_RESOLVE:
	case PGCONN_ERR_FAILED:
		break;
	}
	return true;
}

/* The last answer is older than the probes' pace allows: pgtrackd itself stalled. */
static bool answer_too_old(const struct pg_probe *p)
{
	double pace = 2.0 * duration_seconds(p->settings.interval_ms) +
		      duration_seconds(p->settings.timeout_ms);

	return monotime_now() - p->local.at > pace;
}

/*
 * The prepared statement after a failed probe: one that prepared it may
 * have got that far (42P05 next time: it exists); an EXECUTE that finds it
 * gone (26000) means the session is not ours alone (a pooler in
 * transaction mode): full queries from then on.
 */
static void statement_failed(struct pg_probe *p, const struct pgconn_failure *f)
{
	if (strcmp(f->sqlstate, "42P05") == 0)
		p->prepared = true;
	if (strcmp(f->sqlstate, "26000") == 0 && p->prepared && !p->no_prepare) {
		p->no_prepare = true;
		pg_log(p->host, WARNING, "the server no longer knows the probe's prepared statement "
			   "(%s): is a pooler between pgtrackd and PostgreSQL? Sending the query "
			   "in full from now on", f->message);
	}
	p->preparing = false;
}

static void session_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct pg_probe *p = of_session(c);
	bool lost = f->kind == PGCONN_ERR_LOST;
	struct pgconn_failure exiting;

	if (p->exiting_connect_pid && f->kind == PGCONN_ERR_TIMEOUT) {
		exiting = *f;
		snprintf(exiting.message, sizeof(exiting.message),
			 "the postmaster (pid %d) is exiting: no connection within %d ms",
			 p->exiting_connect_pid, PG_EXITING_RECONNECT_MS);
		f = &exiting;
	}
	p->exiting_connect_pid = 0;

	if (may_have_restarted(f->kind) || (lost && answer_too_old(p)))
		p->local.valid = false;
	statement_failed(p, f);

	if (f->kind == PGCONN_ERR_TOO_MANY && p->local.valid) {
		pg_probe_cancel_round(p);
		pg_probe_stop_accept(p);
		session_crowded_out(p, f);
		/* The peers can still tell that a peer was promoted meanwhile. */
		if (guard_needed(p)) {
			p->round_guard_only = true;
			open_round(p);
		}
		return;
	}
	/* The postmaster seen exiting is certain: down at once, not after fall failures. */
	report_failure_as(p, f, lost && p->exiting_pid ? PGTRACKD_FAILURE_EXITED :
			  pg_probe_failure_class(f->kind));
	/* The report may have stopped us. */
	if (!p->running)
		return;
	/* Without a session, the session's own reconnects are the accept probe. */
	if (!pgconn_ready(&p->session))
		pg_probe_stop_accept(p);
	/*
	 * A lost session is retried at once, at most once an interval so that a
	 * server that drops every session cannot make us spin; a failed attempt
	 * waits for the next tick.
	 */
	double now = monotime_now();

	if (lost && now - p->last_quick_reconnect >= duration_seconds(p->settings.interval_ms)) {
		p->last_quick_reconnect = now;
		pg_probe_connect_session(p);
	} else if (lost) {
		/* Until the next tick the server could restart unseen. */
		p->local.valid = false;
		p->exiting_pid = 0;
	}
}

/*
 * The session's postmaster is gone: a crash (or a stop), whatever the
 * session says yet.  Its backend would end the session only once it
 * notices; the session is let go now and reconnected at once, as when it
 * is lost.
 */
void pg_probe_postmaster_exited(struct postmaster_watch *w, int pid, const char *how)
{
	struct pg_probe *p = container_of(w, struct pg_probe, postmaster);
	struct pgconn_failure f = { .kind = PGCONN_ERR_LOST };

	if (p->pm.pid == pid)
		pg_postmaster_close(&p->pm);
	/* A connection being made may reach another postmaster (a restart's): it tells. */
	if (p->session.state != PGCONN_READY && p->session.state != PGCONN_BUSY)
		return;
	snprintf(f.message, sizeof(f.message), "the postmaster (pid %d) %s", pid, how);
	pgconn_close(&p->session);
	p->exiting_pid = pid;
	session_failed(&p->session, &f);
}

void pg_probe_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pg_probe *p = container_of(w, struct pg_probe, tick);

	switch (p->session.state) {
	case PGCONN_CLOSED:
		pg_probe_connect_session(p);
		break;
	case PGCONN_READY:
		send_probe(p);
		break;
	case PGCONN_CONNECTING:
	case PGCONN_BUSY:
		/* Its deadline decides. */
		break;
	}
}

const struct pgconn_handler pg_probe_session_handler = {
	.connected = session_connected,
	.result = session_result,
	.failed = session_failed,
};
