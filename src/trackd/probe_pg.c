/*
 * probe_pg: the built-in PostgreSQL probe.
 *
 * One persistent session answers a one-round-trip query every interval
 * (role, live timeline, system identifier).  While idle, its socket is
 * watched, so a crash or a killed backend is seen at once and a reconnect
 * follows immediately.  Every accept_interval the accept probe proves
 * that the postmaster still accepts clients: an open session keeps
 * answering while a stopped postmaster lets no one in.  Most accept probes
 * are a ping (pg_ping.c: the postmaster forks a child that answers one
 * byte; no backend start, no log line) to the server the session is
 * connected to; every TRACK_ACCEPT_FULL_EVERY-th is a full connection, which
 * alone sees a server that is shutting down (57P03: the session is let go
 * so that a smart shutdown is not held up) or out of slots (53300: alive).
 *
 * With peers configured, each tick also asks every peer (own connections,
 * own deadlines) for its role, timeline, WAL position and system
 * identifier.  While the local server is primary the verdict waits for
 * them (a round) and the guard (guard.c) turns the answers into stale or
 * conflict.  On a standby nothing waits: the local answer is judged at
 * once, with the peers' latest fresh answers, for lag against the primary
 * among them; a black-holed peer cannot delay a standby's verdict.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "guard.h"
#include "log.h"
#include "monotime.h"
#include "peer.h"
#include "pg_ping.h"
#include "pg_answer.h"
#include "pgconn.h"
#include "ratelimit.h"
#include "track.h"
#include "util.h"

struct pg_probe {
	const struct pgtrackd_host *host;
	struct track_settings settings;
	struct pgconn_params params;

	struct pgconn session;
	struct pgconn accept;
	struct pg_ping ping;
	/* Where the session is connected: a socket directory or the address libpq used. */
	char ping_host[256];
	char ping_port[8];
	int postmaster_pid;     /* as the kernel tells it through a unix socket; 0: unknown */
	unsigned accept_count;  /* accept probes since the start: picks ping or full connection */
	/*
	 * Both timers repeat from start to stop, whatever happens to the
	 * connections: nothing on a failure path has to remember to re-arm
	 * them.  A tick that finds its connection still in flight leaves it to
	 * that connection's deadline.
	 */
	ev_timer tick;
	ev_timer accept_tick;
	double query_started;         /* monotonic */
	double last_quick_reconnect;  /* monotonic */

	bool running;
	bool accept_failing;
	bool ping_failing;     /* accept_failing came from a ping: only an answer ends it */
	char accept_reason[512];
	bool accept_crowded;   /* the accept probe was turned away: too many connections */
	bool session_crowded;  /* so was the session: the last verdict stands */
	bool dropped_warned;   /* host entries beyond pgconn's limit: said once */

	struct ratelimit conflict_log; /* the transition, then one reminder a period */
	bool in_conflict;

	struct pg_answer local;
	int hot_standby;        /* in_hot_standby as last reported: -1 unknown, 0 off, 1 on */
	int hot_standby_disagreements;
	struct guard guard;
	struct peer peers[TRACK_MAX_PEERS];
	/*
	 * A round: a local answer as primary waits for the peers that can
	 * answer, so that a restarted old primary is never reported primary
	 * before the peers had their say.  Peers in an outage are not waited for.
	 */
	bool round_open;
	bool round_guard_only; /* on the last answer, while crowded out: only stale or conflict count */
	int round_waiting;
	ev_timer round_deadline;
	bool receiver_hidden_logged;
};

static struct pg_probe *of_session(struct pgconn *c)
{
	return container_of(c, struct pg_probe, session);
}

static struct pg_probe *of_accept(struct pgconn *c)
{
	return container_of(c, struct pg_probe, accept);
}

/* The accept probes in flight, ping or full connection; no callback follows. */
static void stop_accept_probes(struct pg_probe *p)
{
	pgconn_close(&p->accept);
	pg_ping_cancel(&p->ping);
}

static void format_failure(char *buf, size_t size, const char *what,
			   const struct pgconn_failure *f)
{
	if (f->sqlstate[0])
		snprintf(buf, size, "%s%s: %s (SQLSTATE %s)", what, pgconn_error_str(f->kind),
			 f->message, f->sqlstate);
	else
		snprintf(buf, size, "%s%s: %s", what, pgconn_error_str(f->kind), f->message);
}

static void cancel_round(struct pg_probe *p);

static void report_failure(struct pg_probe *p, const struct pgconn_failure *f)
{
	char reason[400];

	/* A judgement pending on an older answer must not follow this failure. */
	cancel_round(p);
	format_failure(reason, sizeof(reason), "", f);
	p->host->report(p->host, PGTRACKD_STATE_FAIL, reason);
}

static void connect_session(struct pg_probe *p)
{
	log_debug("track \"%s\": connecting", p->host->track_name);
	pgconn_connect(&p->session, p->params.keywords, p->params.values, p->settings.connect_timeout_ms);
}

static void send_probe(struct pg_probe *p)
{
	const char *sql = p->local.system_identifier[0] ? PG_QUERY : PG_QUERY_FIRST;

	p->query_started = monotime_now();
	if (pgconn_query(&p->session, sql, p->settings.timeout_ms) < 0)
		log_debug("track \"%s\": previous probe still running, skipping one",
			  p->host->track_name);
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

/* A local postmaster, seen through the session's unix socket: its state is a /proc read away. */
static void remember_postmaster(struct pg_probe *p)
{
	int pid = pg_ping_postmaster_pid(PQsocket(p->session.conn));
	bool stopped;

	if (pid > 0 && pg_ping_process_stopped(pid, &stopped) < 0)
		pid = 0;
	if (pid != p->postmaster_pid)
		log_debug("track \"%s\": postmaster pid %d", p->host->track_name, pid);
	p->postmaster_pid = pid;
}

static void session_connected(struct pgconn *c)
{
	struct pg_probe *p = of_session(c);

	log_debug("track \"%s\": connected", p->host->track_name);
	if (p->session_crowded)
		log_info("track \"%s\": session open again after too many connections",
			 p->host->track_name);
	p->session_crowded = false;
	if (pgconn_dropped(c)[0] && !p->dropped_warned) {
		p->dropped_warned = true;
		log_warnx("track \"%s\": host lists more than %d addresses; connecting without %s",
			  p->host->track_name, PGCONN_MAX_HOSTS, pgconn_dropped(c));
	}
	p->local.system_identifier[0] = '\0';
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
		log_info("track \"%s\": the server reports in_hot_standby = off: it was promoted",
			 p->host->track_name);
	p->hot_standby = now;
	if (now == p->local.in_recovery) {
		p->hot_standby_disagreements = 0;
		return;
	}
	if (++p->hot_standby_disagreements == 2)
		log_warnx("track \"%s\": in_hot_standby = %s but pg_is_in_recovery() = %s; trusting "
			  "pg_is_in_recovery()", p->host->track_name, hs,
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
			log_info("track \"%s\": the conflict is over", p->host->track_name);
		p->in_conflict = false;
		return;
	}
	if (!p->in_conflict)
		ratelimit_init(&p->conflict_log, (double)p->settings.reminder_interval_ms / 1000.0, 1);
	p->in_conflict = true;
	if (!ratelimit_allow(&p->conflict_log, monotime_now(), &held_back))
		return;
	log_error("track \"%s\": %s. Stop or rebuild one of them as a standby; until "
		  "then this node stays at value_conflict", p->host->track_name, reason);
}

/* The verdict of the guard on the local answer and the peers' fresh answers. */
static enum pgtrackd_state judge(struct pg_probe *p, char *reason, size_t size)
{
	struct guard_peer views[TRACK_MAX_PEERS];
	double now = monotime_now();
	double max_age = 3.0 * (double)p->settings.interval_ms / 1000.0 +
			 (double)p->settings.timeout_ms / 1000.0;
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
		track_set_rank(p->host, p->guard.rank);
	for (int i = 0; i < p->settings.n_peers; i++) {
		if (p->guard.foreign_new & (1u << i))
			log_warnx("track \"%s\": peer %s belongs to another cluster (system "
				  "identifier %s, ours %s); ignoring it",
				  p->host->track_name, p->settings.peers[i].name,
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
	p->host->report(p->host, sample, reason);
}

static void peer_done(struct peer *peer, void *owner)
{
	struct pg_probe *p = owner;

	if (p->round_open && --p->round_waiting == 0)
		close_round(p);
}

static void round_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pg_probe *p = container_of(w, struct pg_probe, round_deadline);

	log_debug("track \"%s\": %d peer(s) did not answer in time; judging without them",
		  p->host->track_name, p->round_waiting);
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
		     (double)(p->settings.connect_timeout_ms + p->settings.timeout_ms) / 1000.0, 0.0);
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
	log_info("track \"%s\": the WAL receiver's status is hidden from this role (grant it "
		 "pg_read_all_stats); receiver_grace can only tell whether a receiver runs",
		 p->host->track_name);
}

static void log_standby_figures(struct pg_probe *p)
{
	const struct guard *g = &p->guard;

	if (g->primary_peer < 0) {
		log_debug("track \"%s\": no primary among the peers' answers: lag against the "
			  "primary unknown", p->host->track_name);
		return;
	}
	log_debug("track \"%s\": primary %s: replay %" PRId64 " bytes behind, received %" PRId64
		  " bytes behind, replay behind for %.1fs", p->host->track_name,
		  p->settings.peers[g->primary_peer].name, g->behind_bytes, g->behind_received,
		  g->behind_seconds);
}

static void cancel_round(struct pg_probe *p)
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

	if (!pg_answer_parse(res, &p->local)) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_QUERY };

		snprintf(f.message, sizeof(f.message), "unexpected answer to the probe query");
		report_failure(p, &f);
		return;
	}
	p->local.at = monotime_now();
	cross_check_hot_standby(p);
	if (p->local.in_recovery)
		log_debug("track \"%s\": in recovery, %" PRId64 " bytes not replayed, %.1fs behind%s, "
			  "WAL receiver %s, %.1f ms", p->host->track_name, p->local.lag_bytes,
			  p->local.lag_seconds, p->local.replay_paused ? ", replay paused" : "",
			  p->local.receiver_status[0] ? p->local.receiver_status : "not running",
			  (monotime_now() - p->query_started) * 1000.0);
	else
		log_debug("track \"%s\": not in recovery, timeline %ld, system identifier %s, %.1f ms",
			  p->host->track_name, p->local.timeline, p->local.system_identifier,
			  (monotime_now() - p->query_started) * 1000.0);
	if (p->accept_failing) {
		p->host->report(p->host, PGTRACKD_STATE_FAIL, p->accept_reason);
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
		log_warnx("track \"%s\": cannot open a session: too many connections (%s); the "
			  "server answered, so it is alive: keeping the last verdict and retrying every "
			  "interval. Give pgtrackd a reserved slot (see pgtrackd(8), Accept probe)",
			  p->host->track_name, f->message);
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
	double pace = (2.0 * (double)p->settings.interval_ms + (double)p->settings.timeout_ms) / 1000.0;

	return monotime_now() - p->local.at > pace;
}

static void session_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct pg_probe *p = of_session(c);
	bool lost = f->kind == PGCONN_ERR_LOST;

	if (may_have_restarted(f->kind) || (lost && answer_too_old(p)))
		p->local.valid = false;

	if (f->kind == PGCONN_ERR_TOO_MANY && p->local.valid) {
		cancel_round(p);
		stop_accept_probes(p);
		session_crowded_out(p, f);
		/* The peers can still tell that a peer was promoted meanwhile. */
		if (guard_needed(p)) {
			p->round_guard_only = true;
			open_round(p);
		}
		return;
	}
	report_failure(p, f);
	/* The report may have stopped us. */
	if (!p->running)
		return;
	/* Without a session, the session's own reconnects are the accept probe. */
	if (!pgconn_ready(&p->session))
		stop_accept_probes(p);
	/*
	 * A lost session is retried at once, at most once an interval so that a
	 * server that drops every session cannot make us spin; a failed attempt
	 * waits for the next tick.
	 */
	double now = monotime_now();

	if (lost && now - p->last_quick_reconnect >= (double)p->settings.interval_ms / 1000.0) {
		p->last_quick_reconnect = now;
		connect_session(p);
	} else if (lost) {
		/* Until the next tick the server could restart unseen. */
		p->local.valid = false;
	}
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pg_probe *p = container_of(w, struct pg_probe, tick);

	switch (p->session.state) {
	case PGCONN_CLOSED:
		connect_session(p);
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

/*
 * (Re)starts the accept timer at its pace, firing just before a session
 * tick: a light probe that fails is then followed at once by the
 * session's answer, which repeats the failure, so that with fall = 2 a
 * stopped postmaster is down within one interval of the hang (a ping's
 * deadline later over TCP), whatever the phase.  Both timers repeat, so
 * they stay in step.
 */
static void arm_accept_tick(struct pg_probe *p)
{
	double after = ev_timer_remaining(p->host->loop, &p->tick) - 0.002;

	ev_timer_stop(p->host->loop, &p->accept_tick);
	ev_timer_set(&p->accept_tick, after > 0.0 ? after : 0.0, p->accept_tick.repeat);
	ev_timer_start(p->host->loop, &p->accept_tick);
}

/* The accept probe's pace: accept_interval, or every interval while it fails. */
static void set_accept_pace(struct pg_probe *p)
{
	int64_t ms = p->accept_failing ? p->settings.interval_ms : p->settings.accept_interval_ms;
	double every = (double)ms / 1000.0;

	if (p->accept_tick.repeat == every)
		return;
	p->accept_tick.repeat = every;
	arm_accept_tick(p);
}

static void accept_succeeded(struct pg_probe *p)
{
	if (p->accept_failing || p->accept_crowded)
		log_info("track \"%s\": the server accepts new connections again",
			 p->host->track_name);
	p->accept_failing = false;
	p->ping_failing = false;
	p->accept_crowded = false;
	set_accept_pace(p);
}

/*
 * The postmaster forked a child that answered.  That ends only a failure
 * a ping found (a hang): one a full connection found (shutting down,
 * authentication, ...) is ended by a full connection.  Too many
 * connections is not a failure and stays until a full connection gets in.
 */
static void light_probe_done(struct pg_probe *p, const struct pgconn_failure *f)
{
	if (!f) {
		if (p->accept_failing && p->ping_failing) {
			log_info("track \"%s\": the postmaster runs and answers again",
				 p->host->track_name);
			p->accept_failing = false;
			p->ping_failing = false;
		}
		set_accept_pace(p);
		return;
	}
	p->accept_failing = true;
	p->ping_failing = true;
	format_failure(p->accept_reason, sizeof(p->accept_reason),
		       "not accepting new connections: ", f);
	set_accept_pace(p);
	p->host->report(p->host, PGTRACKD_STATE_FAIL, p->accept_reason);
}

static void ping_done(struct pg_ping *ping, const struct pgconn_failure *f)
{
	light_probe_done(container_of(ping, struct pg_probe, ping), f);
}

/*
 * A local postmaster's state, without a connection: stopped (SIGSTOP, a
 * tracer) is a hang.  false when /proc cannot tell: the caller pings.
 */
static bool check_postmaster_state(struct pg_probe *p)
{
	struct pgconn_failure f = { .kind = PGCONN_ERR_FAILED };
	bool stopped;

	if (p->postmaster_pid <= 0 || pg_ping_process_stopped(p->postmaster_pid, &stopped) < 0) {
		p->postmaster_pid = 0;
		return false;
	}
	log_debug("track \"%s\": accept probe: postmaster state", p->host->track_name);
	if (!stopped) {
		light_probe_done(p, NULL);
		return true;
	}
	snprintf(f.message, sizeof(f.message), "the postmaster (pid %d) is stopped", p->postmaster_pid);
	light_probe_done(p, &f);
	return true;
}

static void accept_connected(struct pgconn *c)
{
	struct pg_probe *p = of_accept(c);

	pgconn_close(c);
	accept_succeeded(p);
}

/*
 * Turned away for want of a slot (53300): the postmaster accepted and
 * forked a backend that answered, so it is alive and the open session
 * proves the role.  A connection storm must not fail over a busy primary.
 */
static void accept_crowded_out(struct pg_probe *p, const struct pgconn_failure *f)
{
	if (!p->accept_crowded)
		log_warnx("track \"%s\": new connections are turned away: too many connections "
			  "(%s); the server answered, so it counts as accepting, and the open "
			  "session keeps probing its role", p->host->track_name, f->message);
	p->accept_crowded = true;
	p->accept_failing = false;
	p->ping_failing = false;
	set_accept_pace(p);
}

/*
 * 57P03 with "shutting down": a smart shutdown waits for every session to
 * end, ours included.  Let go of the session; its reconnects (refused with
 * the same reason until the server accepts again) carry on as the probe.
 */
static void let_go_of_server(struct pg_probe *p, const struct pgconn_failure *f)
{
	if (!pgconn_ready(&p->session) && p->session.state != PGCONN_BUSY)
		return;
	log_notice("track \"%s\": the server is shutting down or starting up (%s); closing "
		   "our session so that it is not held up, reconnecting every interval",
		   p->host->track_name, f->message);
	cancel_round(p);
	pgconn_close(&p->session);
}

static void accept_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct pg_probe *p = of_accept(c);

	if (f->kind == PGCONN_ERR_TOO_MANY) {
		accept_crowded_out(p, f);
		return;
	}
	p->accept_failing = true;
	p->ping_failing = false;
	p->accept_crowded = false;
	format_failure(p->accept_reason, sizeof(p->accept_reason),
		       "not accepting new connections: ", f);
	set_accept_pace(p);
	if (f->kind == PGCONN_ERR_STARTING)
		let_go_of_server(p, f);
	p->host->report(p->host, PGTRACKD_STATE_FAIL, p->accept_reason);
}

/*
 * A full connection every TRACK_ACCEPT_FULL_EVERY-th probe, and every probe
 * while a full connection's failure lasts (so that its end is seen) or
 * when there is nowhere to ping.
 */
static bool accept_full_due(const struct pg_probe *p)
{
	return !p->ping_host[0] || p->accept_count % TRACK_ACCEPT_FULL_EVERY == 0 ||
	       (p->accept_failing && !p->ping_failing);
}

/*
 * The ping's deadline: a ping not answered by 3/4 of the pace counts as
 * a hang, so that its failure is in before the session's next tick
 * repeats it (fall = 2 at interval 1 s: a hang is down within 2 s).
 */
static int64_t ping_deadline_ms(const struct pg_probe *p)
{
	int64_t ms = (int64_t)(p->accept_tick.repeat * 750.0);

	if (ms < 10)
		ms = 10;
	return ms < p->settings.connect_timeout_ms ? ms : p->settings.connect_timeout_ms;
}

static void accept_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pg_probe *p = container_of(w, struct pg_probe, accept_tick);

	if (pg_ping_running(&p->ping))
		return; /* the one in flight: its deadline decides */
	/* Without a session, the session's own reconnects are the accept probe. */
	if (p->session.state != PGCONN_READY && p->session.state != PGCONN_BUSY) {
		p->accept_failing = false;
		p->ping_failing = false;
		set_accept_pace(p);
		return;
	}
	/* A full connection in flight (its deadline decides) does not hold up the light probe. */
	bool full = accept_full_due(p) && p->accept.state == PGCONN_CLOSED;

	p->accept_count++;
	/*
	 * The state check costs nothing: it runs at every tick, the full
	 * connection's too (a hang must not wait for the next light tick).
	 */
	if (check_postmaster_state(p) && (!full || !p->running || p->ping_failing))
		return;
	if (!full) {
		if (pg_ping_start(&p->ping, p->ping_host, p->ping_port, ping_deadline_ms(p)) == 0) {
			log_debug("track \"%s\": accept probe: ping", p->host->track_name);
			return;
		}
		if (p->ping_host[0])
			p->ping_host[0] = '\0'; /* not a target a ping can take: full connections */
	}
	if (p->accept.state != PGCONN_CLOSED)
		return; /* never restarted: its deadline decides */
	log_debug("track \"%s\": accept probe: full connection", p->host->track_name);
	pgconn_connect(&p->accept, p->params.keywords, p->params.values, p->settings.connect_timeout_ms);
}

static const struct pgconn_handler session_handler = {
	.connected = session_connected,
	.result = session_result,
	.failed = session_failed,
};

static const struct pgconn_handler accept_handler = {
	.connected = accept_connected,
	.result = NULL, /* never queries */
	.failed = accept_failed,
};

static int pg_init(const struct pgtrackd_host *host, void **state)
{
	const struct track_settings *settings = track_settings_of(host);
	struct pg_probe *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->host = host;
	memcpy(&p->settings, settings, sizeof(p->settings));
	pg_probe_params(&p->settings, p->settings.host, p->settings.hostaddr, p->settings.port,
			&p->params);
	p->hot_standby = -1;
	guard_init(&p->guard);
	for (int i = 0; i < p->settings.n_peers; i++)
		peer_init(&p->peers[i], host->loop, host->track_name, &p->settings,
			  &p->settings.peers[i], peer_done, p);
	ev_init(&p->round_deadline, round_deadline_cb);
	pgconn_init(&p->session, host->loop, &session_handler);
	pgconn_init(&p->accept, host->loop, &accept_handler);
	pg_ping_init(&p->ping, host->loop, ping_done);
	ev_timer_init(&p->tick, tick_cb, (double)p->settings.interval_ms / 1000.0,
		      (double)p->settings.interval_ms / 1000.0);
	ev_init(&p->accept_tick, accept_tick_cb);
	ratelimit_init(&p->conflict_log, (double)p->settings.reminder_interval_ms / 1000.0, 1);
	*state = p;
	return 0;
}

static int pg_start(void *state)
{
	struct pg_probe *p = state;

	p->running = true;
	p->accept_failing = false;
	p->ping_failing = false;
	p->accept_count = 0;
	p->last_quick_reconnect = -1e18;
	ev_timer_again(p->host->loop, &p->tick);
	if (p->settings.accept_interval_ms > 0) {
		p->accept_tick.repeat = (double)p->settings.accept_interval_ms / 1000.0;
		arm_accept_tick(p);
	}
	connect_session(p);
	return 0;
}

static void pg_stop(void *state)
{
	struct pg_probe *p = state;

	p->running = false;
	ev_timer_stop(p->host->loop, &p->tick);
	ev_timer_stop(p->host->loop, &p->accept_tick);
	pgconn_close(&p->session);
	stop_accept_probes(p);
	cancel_round(p);
	for (int i = 0; i < p->settings.n_peers; i++)
		peer_stop(&p->peers[i]);
}

static void pg_destroy(void *state)
{
	struct pg_probe *p = state;

	if (!p)
		return;
	pg_stop(p);
	free(p);
}

static int peer_index(const struct pg_probe *p, const char *name)
{
	for (int i = 0; i < p->settings.n_peers; i++)
		if (strcmp(p->settings.peers[i].name, name) == 0)
			return i;
	return -1;
}

/* A standby's clocks survive a reload: the receiver's, and the primary's positions. */
static void migrate_standby(const struct pg_probe *old, struct pg_probe *p)
{
	const struct guard *o = &old->guard;
	struct guard *g = &p->guard;
	int peer = o->history_peer >= 0 ?
		peer_index(p, old->settings.peers[o->history_peer].name) : -1;

	g->standby_seen = o->standby_seen;
	g->last_standby = o->last_standby;
	g->receiver_down = o->receiver_down;
	g->receiver_down_since = o->receiver_down_since;
	/*
	 * The ranking too: the own positions, and the answers of the peers
	 * that kept their name and address, so that a reload does not move a
	 * standby's rank (and value) for an interval.
	 */
	memcpy(g->own, o->own, sizeof(g->own));
	g->n_own = o->n_own;
	for (int i = 0; i < p->settings.n_peers; i++) {
		const struct peer_settings *now = &p->settings.peers[i];
		int j = peer_index(old, now->name);

		if (j < 0 || strcmp(old->settings.peers[j].host, now->host) != 0 ||
		    strcmp(old->settings.peers[j].hostaddr, now->hostaddr) != 0 ||
		    old->settings.peers[j].port != now->port || old->settings.port != p->settings.port)
			continue;
		p->peers[i].answer = old->peers[j].answer;
		p->peers[i].heard = old->peers[j].heard;
		p->peers[i].outage = old->peers[j].outage;
	}
	if (peer < 0)
		return;
	memcpy(g->history, o->history, sizeof(g->history));
	g->n_history = o->n_history;
	g->history_peer = peer;
	g->history_timeline = o->history_timeline;
	g->history_last_t = o->history_last_t;
	g->history_last_lsn = o->history_last_lsn;
}

/* The guard's sticky verdicts survive a reload; peers are matched by name. */
static void pg_migrate(void *old_state, void *new_state)
{
	const struct pg_probe *old = old_state;
	struct pg_probe *p = new_state;

	migrate_standby(old, p);
	p->guard.stale = old->guard.stale;
	if (!old->guard.conflict || old->guard.conflict_peer < 0)
		return;
	for (int i = 0; i < p->settings.n_peers; i++) {
		if (strcmp(p->settings.peers[i].name,
			   old->settings.peers[old->guard.conflict_peer].name) == 0) {
			p->guard.conflict = true;
			p->guard.conflict_peer = i;
			return;
		}
	}
	log_info("track \"%s\": peer %s, in conflict with this server, was removed from the "
		 "configuration; the conflict is no longer tracked",
		 p->host->track_name, old->settings.peers[old->guard.conflict_peer].name);
}

const struct pgtrackd_module probe_postgres_module = {
	.abi_version = PGTRACKD_MODULE_ABI_VERSION,
	.name = "postgres",
	.init = pg_init,
	.start = pg_start,
	.stop = pg_stop,
	.destroy = pg_destroy,
	.migrate = pg_migrate,
};
