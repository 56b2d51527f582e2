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

static struct pg_probe *of_accept(struct pgconn *c)
{
	return container_of(c, struct pg_probe, accept);
}

void pg_probe_stop_accept(struct pg_probe *p)
{
	pgconn_close(&p->accept);
	pg_ping_cancel(&p->ping);
}

/*
 * (Re)starts the accept timer at its pace, due with a session tick: both
 * run in the same wakeup of the loop (one wakeup a second, not two, at
 * the default timings), and a light probe that fails is followed at once
 * by the session's answer, which repeats the failure, so that with fall =
 * 2 a stopped postmaster is down within one interval of the hang (a ping's
 * deadline later over TCP), whatever the phase.  Both timers repeat, so
 * they stay in step.
 */
void pg_probe_arm_accept_tick(struct pg_probe *p)
{
	double after = ev_timer_remaining(p->host->loop, &p->tick);

	ev_timer_stop(p->host->loop, &p->accept_tick);
	ev_timer_set(&p->accept_tick, after > 0.0 ? after : 0.0, p->accept_tick.repeat);
	ev_timer_start(p->host->loop, &p->accept_tick);
}

/* The accept probe's pace: accept_interval, or every interval while it fails. */
static void set_accept_pace(struct pg_probe *p)
{
	int64_t ms = p->accept_failing ? p->settings.interval_ms : p->settings.accept_interval_ms;
	double every = duration_seconds(ms);

	if (p->accept_tick.repeat == every)
		return;
	p->accept_tick.repeat = every;
	pg_probe_arm_accept_tick(p);
}

static void accept_succeeded(struct pg_probe *p)
{
	if (p->accept_failing || p->accept_crowded)
		pg_log(p->host, INFO, "the server accepts new connections again");
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
			pg_log(p->host, INFO, "the postmaster runs and answers again");
			p->accept_failing = false;
			p->ping_failing = false;
		}
		set_accept_pace(p);
		return;
	}
	p->accept_failing = true;
	p->ping_failing = true;
	p->accept_failures++;
	/* The postmaster hangs (stopped, or its ping unanswered) while the session answers. */
	p->accept_class = PGTRACKD_FAILURE_NOT_ACCEPTING;
	pg_probe_format_failure(p->accept_reason, sizeof(p->accept_reason),
		       "not accepting new connections: ", f);
	set_accept_pace(p);
	p->host->report_failure(p->host, p->accept_class, p->accept_reason);
}

void pg_probe_ping_done(struct pg_ping *ping, const struct pgconn_failure *f)
{
	light_probe_done(container_of(ping, struct pg_probe, ping), f);
}

static void accept_refused(struct pg_probe *p, const struct pgconn_failure *f);

/*
 * A local postmaster, without a connection: stopped (SIGSTOP, a tracer)
 * is a hang; "stopping" in its postmaster.pid is a shutdown under way,
 * which a full connection would hear as 57P03.  false when it cannot be
 * seen: the caller pings.
 */
static bool check_postmaster_state(struct pg_probe *p)
{
	struct pgconn_failure f = { .kind = PGCONN_ERR_FAILED };
	enum pg_pm_status status;
	bool stopped;

	if (!pg_postmaster_known(&p->pm) || pg_postmaster_look(&p->pm, &stopped, &status) < 0) {
		pg_postmaster_close(&p->pm);
		return false;
	}
	pg_log(p->host, DEBUG, "accept probe: postmaster state");
	if (stopped) {
		snprintf(f.message, sizeof(f.message), "the postmaster (pid %d) is stopped", p->pm.pid);
		light_probe_done(p, &f);
		return true;
	}
	if (status == PG_PM_STOPPING) {
		f.kind = PGCONN_ERR_STARTING;
		snprintf(f.message, sizeof(f.message), "the database system is shutting down "
			 "(postmaster.pid of pid %d: %s)", p->pm.pid, pg_pm_status_str(status));
		accept_refused(p, &f);
		return true;
	}
	light_probe_done(p, NULL);
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
		pg_log(p->host, WARNING, "new connections are turned away: too many connections "
			  "(%s); the server answered, so it counts as accepting, and the open "
			  "session keeps probing its role", f->message);
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
	pg_log(p->host, NOTICE, "the server is shutting down or starting up (%s); closing "
		   "our session so that it is not held up, reconnecting every interval",
		   f->message);
	pg_probe_cancel_round(p);
	pgconn_close(&p->session);
}

/* A full connection's failure, or a shutdown read in postmaster.pid. */
static void accept_refused(struct pg_probe *p, const struct pgconn_failure *f)
{
	if (f->kind == PGCONN_ERR_TOO_MANY) {
		accept_crowded_out(p, f);
		return;
	}
	p->accept_failing = true;
	p->ping_failing = false;
	p->accept_crowded = false;
	p->accept_failures++;
	/* A full connection's failure says why (shutting down, authentication, ...). */
	p->accept_class = pg_probe_failure_class(f->kind);
	if (p->accept_class == PGTRACKD_FAILURE_OTHER || p->accept_class == PGTRACKD_FAILURE_TIMEOUT)
		p->accept_class = PGTRACKD_FAILURE_NOT_ACCEPTING;
	pg_probe_format_failure(p->accept_reason, sizeof(p->accept_reason),
		       "not accepting new connections: ", f);
	set_accept_pace(p);
	if (f->kind == PGCONN_ERR_STARTING)
		let_go_of_server(p, f);
	p->host->report_failure(p->host, p->accept_class, p->accept_reason);
}

static void accept_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	accept_refused(of_accept(c), f);
}

/*
 * A full connection every accept_full_interval (the first probe is one),
 * and every probe while a full connection's failure lasts (so that its end
 * is seen) or when there is nowhere to ping.
 */
static bool accept_full_due(const struct pg_probe *p)
{
	return !p->ping_host[0] || p->last_full == 0.0 ||
	       monotime_now() - p->last_full >= duration_seconds(p->settings.accept_full_interval_ms) -
			0.005 ||
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

void pg_probe_accept_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
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

	/*
	 * The state check costs nothing: it runs at every tick, the full
	 * connection's too (a hang must not wait for the next light tick).
	 */
	bool seen = check_postmaster_state(p);

	/* The report may have stopped us; a shutdown seen closed the session. */
	if (!p->running || (p->session.state != PGCONN_READY && p->session.state != PGCONN_BUSY))
		return;
	if (seen && (!full || p->ping_failing))
		return;
	if (!full) {
		if (pg_ping_start(&p->ping, p->ping_host, p->ping_port, ping_deadline_ms(p)) == 0) {
			pg_log(p->host, DEBUG, "accept probe: ping");
			return;
		}
		if (p->ping_host[0])
			p->ping_host[0] = '\0'; /* not a target a ping can take: full connections */
	}
	if (p->accept.state != PGCONN_CLOSED)
		return; /* never restarted: its deadline decides */
	pg_log(p->host, DEBUG, "accept probe: full connection");
	p->last_full = monotime_now();
	pgconn_connect(&p->accept, p->params.keywords, p->params.values, p->settings.connect_timeout_ms);
}

const struct pgconn_handler pg_probe_accept_handler = {
	.connected = accept_connected,
	.result = NULL, /* never queries */
	.failed = accept_failed,
};
