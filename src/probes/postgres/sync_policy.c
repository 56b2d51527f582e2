#include "sync_policy.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "monotime.h"
#include "pg_answer.h"
#include "pg_log.h"
#include "util.h"

#define SYNC_QUERY                                                                          \
	"SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names'),"         \
	" CASE WHEN NOT pg_is_in_recovery()"                                                \
	" THEN pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::int8 END,"               \
	" (SELECT string_agg(pg_wal_lsn_diff(flush_lsn, '0/0')::int8::text, ',')"           \
	" FROM pg_stat_replication WHERE state = 'streaming' AND flush_lsn IS NOT NULL),"  \
	" (SELECT count(*) FROM pg_stat_replication),"                                      \
	" (SELECT pid || ' ' || query_start FROM pg_stat_activity"                          \
	" WHERE wait_event = 'SyncRep' ORDER BY query_start LIMIT 1),"                      \
	" (SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'),"            \
	" pg_has_role('pg_read_all_stats', 'USAGE')"

#define SYNC_GRANT_HINT                                                                     \
	"the role needs GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names and "     \
	"GRANT EXECUTE ON FUNCTION pg_reload_conf()"

#define SYNC_FIRST_BACKOFF 1.0


static struct sync_policy *of_conn(struct pgconn *c)
{
	return container_of(c, struct sync_policy, conn);
}

static double reminder(const struct sync_policy *sp)
{
	double r = duration_seconds(sp->settings->reminder_interval_ms);

	return r > SYNC_FIRST_BACKOFF ? r : SYNC_FIRST_BACKOFF;
}

/* The track's interval, at least a second: nothing here needs the probe's pace. */
static double poll_period(const struct pg_settings *s)
{
	double interval = duration_seconds(s->interval_ms);

	return interval > 1.0 ? interval : 1.0;
}

/* How long the server may take to show a value it was told to reload. */
static double settle_time(const struct sync_policy *sp)
{
	return 2.0 * poll_period(sp->settings);
}

/* A change that failed is tried again after 1, 2, 4 ... s up to reminder_interval. */
static double next_backoff(struct sync_policy *sp)
{
	double now = sp->backoff;

	sp->retry_at = monotime_now() + now;
	sp->backoff = now * 2.0 > reminder(sp) ? reminder(sp) : now * 2.0;
	return now;
}

static void say_change(struct sync_policy *sp, enum pgtrackd_log_level level, const char *line)
{
	unsigned long held = 0;

	if (!ratelimit_allow(&sp->change_log, monotime_now(), &held))
		return;
	if (held)
		sp->host->log(sp->host, level, "%s (%lu earlier change(s) of synchronous "
			      "replication not logged)", line, held);
	else
		sp->host->log(sp->host, level, "%s", line);
}

/* A failure, worded by the caller; logged once per reminder_interval. */
static void say_problem(struct sync_policy *sp, const char *problem, double retry)
{
	unsigned long held = 0;

	sp->failing = true;
	if (!ratelimit_allow(&sp->error_log, monotime_now(), &held))
		return;
	pg_log(sp->host, WARNING, "synchronous replication policy: %s; synchronous_standby_names "
	       "stays as it is, tried again in %.0fs", problem, retry);
	if (held)
		pg_log(sp->host, WARNING, "synchronous replication policy: %lu more failure(s) "
		       "not logged", held);
}

static void say_failure(struct sync_policy *sp, const char *what, const struct pgconn_failure *f,
			double retry)
{
	char problem[600];
	bool grant = strcmp(f->sqlstate, "42501") == 0;

	snprintf(problem, sizeof(problem), "%s failed (%s: %s)%s%s", what,
		 pgconn_error_str(f->kind), f->message, grant ? "; " : "",
		 grant ? SYNC_GRANT_HINT : "");
	say_problem(sp, problem, retry);
}

static void time_waiter(struct sync_policy *sp, const struct sync_observation *o, double now)
{
	if (!o->oldest_wait[0]) {
		sp->waiter[0] = '\0';
		return;
	}
	if (strcmp(sp->waiter, o->oldest_wait) != 0) {
		snprintf(sp->waiter, sizeof(sp->waiter), "%s", o->oldest_wait);
		sp->waiter_seen = now;
	}
}

/*
 * A standby that has strict names relaxes them only once the other
 * standbys have been gone for sync_relax_after (a peer whose answers come
 * and go must not make it ALTER SYSTEM and reload every poll).
 */
static void hold_while_others_gone(struct sync_policy *sp, const struct sync_observation *o,
				   struct sync_context *c, double now)
{
	bool alone = o->in_recovery && c->other_standbys >= 0 && c->other_standbys < c->needed;

	if (!alone || !o->current[0]) {
		sp->alone_since = 0.0;
		return;
	}
	if (sp->alone_since == 0.0)
		sp->alone_since = now;
	if (now - sp->alone_since < c->relax_after)
		c->other_standbys = -1; /* not yet: as if unknown, nothing changes */
}

static void send_change(struct sync_policy *sp, enum sync_action action)
{
	char sql[CONF_STR_SIZE + 80];

	sp->action = action;
	sp->step = SYNC_STEP_ALTER;
	snprintf(sql, sizeof(sql), "ALTER SYSTEM SET synchronous_standby_names = '%s'",
		 action == SYNC_STRICT ? sp->settings->sync_standby_names : "");
	pgconn_query(&sp->conn, sql, sp->settings->timeout_ms);
}

/* The server still shows the old value of a change just made: wait for the reload. */
static bool change_settling(struct sync_policy *sp, const struct sync_observation *o, double now)
{
	char problem[CONF_STR_SIZE * 2 + 200];

	if (sp->pending_at == 0.0)
		return false;
	if (strcmp(o->current, sp->pending) == 0) {
		sp->pending_at = 0.0;
		sp->backoff = SYNC_FIRST_BACKOFF; /* done: only now is the change a success */
		return false;
	}
	if (now - sp->pending_at < settle_time(sp))
		return true;
	snprintf(problem, sizeof(problem), "the server shows '%s' %.1fs after pgtrackd set '%s' "
		 "and reloaded: a setting that overrides postgresql.auto.conf (a command-line -c, "
		 "ALTER ROLE or ALTER DATABASE ... SET)?", o->current, now - sp->pending_at,
		 sp->pending);
	sp->pending_at = 0.0;
	say_problem(sp, problem, next_backoff(sp));
	return false;
}

static void on_poll(struct sync_policy *sp, const PGresult *res)
{
	struct sync_observation *o = &sp->seen;
	double now = monotime_now();
	struct sync_context c = {
		.names = sp->settings->sync_standby_names,
		.needed = sync_names_needed(sp->settings->sync_standby_names),
		.catchup = sp->settings->sync_catchup,
		.relax_lsn = sp->relax_lsn,
		.relax_after = duration_seconds(sp->settings->sync_relax_after_ms),
		.verdict = sp->verdict(sp->owner),
		.other_standbys = sp->other_standbys(sp->owner),
		.promotion_waits = pg_settings_promotion_waits(sp->settings),
	};
	enum sync_action action;

	sp->step = SYNC_STEP_IDLE;
	if (!sync_parse(res, o)) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_QUERY };

		snprintf(f.message, sizeof(f.message), "unexpected answer to the poll");
		say_failure(sp, "the poll", &f, poll_period(sp->settings));
		return;
	}
	sp->failing = false;
	sp->polled = true;
	if (!o->sees_stats && !sp->stats_warned) {
		sp->stats_warned = true;
		pg_log(sp->host, WARNING, "synchronous replication policy: this role cannot see "
		       "other sessions' waits nor the standbys' positions (grant it "
		       "pg_read_all_stats or pg_monitor): it will neither relax nor restore "
		       "synchronous replication");
	}
	time_waiter(sp, o, now);
	hold_while_others_gone(sp, o, &c, now);
	if (change_settling(sp, o, now))
		return;
	c.waited = sp->waiter[0] ? now - sp->waiter_seen : -1.0;
	action = sync_decide(o, &c);
	if (action != SYNC_KEEP && now >= sp->retry_at)
		send_change(sp, action);
}

static void log_done(struct sync_policy *sp)
{
	const struct sync_observation *o = &sp->seen;
	char line[600];

	if (o->in_recovery && sp->action == SYNC_RELAX &&
	    !pg_settings_promotion_waits(sp->settings)) {
		snprintf(line, sizeof(line), "standby: synchronous_standby_names set to '' (was "
			 "'%s'): a promotion here acknowledges its first commits at once and "
			 "turns synchronous once a standby follows it (sync_promotion = relaxed)",
			 o->current);
		say_change(sp, PGTRACKD_LOG_INFO, line);
	} else if (o->in_recovery && sp->action == SYNC_RELAX) {
		snprintf(line, sizeof(line), "standby: synchronous_standby_names set to '' (was "
			 "'%s'): no other standby answers among the peers, so a promotion here must "
			 "not wait for one", o->current);
		say_change(sp, PGTRACKD_LOG_INFO, line);
	} else if (o->in_recovery) {
		snprintf(line, sizeof(line), "standby: synchronous_standby_names set to '%s' (was "
			 "'%s'): other standbys answer among the peers, so a promotion here waits "
			 "for one of them to follow", sp->settings->sync_standby_names, o->current);
		say_change(sp, PGTRACKD_LOG_INFO, line);
	} else if (sp->action == SYNC_RELAX) {
		snprintf(line, sizeof(line), "synchronous replication relaxed: %d commit(s) waited "
			 "for a synchronous standby, the oldest %.1fs (sync_relax_after), %d "
			 "walsender(s), %d streaming; synchronous_standby_names = '' until a standby "
			 "has flushed WAL position %X/%X: commits acknowledged meanwhile are on this "
			 "node only", o->n_waiting, monotime_now() - sp->waiter_seen,
			 o->n_walsenders, o->n_standbys, PG_LSN_PARTS(o->flush_lsn));
		say_change(sp, PGTRACKD_LOG_WARNING, line);
	} else {
		snprintf(line, sizeof(line), "synchronous replication on: %d standby(s) streaming "
			 "within sync_catchup of WAL position %X/%X; synchronous_standby_names "
			 "= '%s' (was '%s')",
			 sync_caught_up(o, sp->settings->sync_catchup, sp->relax_lsn),
			 PG_LSN_PARTS(o->flush_lsn),
			 sp->settings->sync_standby_names, o->current);
		say_change(sp, PGTRACKD_LOG_NOTICE, line);
	}
}

static void on_result(struct pgconn *c, const PGresult *res)
{
	struct sync_policy *sp = of_conn(c);

	switch (sp->step) {
	case SYNC_STEP_POLL:
		on_poll(sp, res);
		return;
	case SYNC_STEP_ALTER:
		sp->step = SYNC_STEP_RELOAD;
		pgconn_query(&sp->conn, "SELECT pg_reload_conf()", sp->settings->timeout_ms);
		return;
	case SYNC_STEP_RELOAD:
		sp->step = SYNC_STEP_IDLE;
		sp->failing = false;
		snprintf(sp->pending, sizeof(sp->pending), "%s",
			 sp->action == SYNC_STRICT ? sp->settings->sync_standby_names : "");
		sp->pending_at = monotime_now();
		sp->relax_lsn = sp->action == SYNC_RELAX && !sp->seen.in_recovery
				? sp->seen.flush_lsn : -1;
		log_done(sp);
		return;
	case SYNC_STEP_IDLE:
		return;
	}
}

static void poll(struct sync_policy *sp)
{
	sp->step = SYNC_STEP_POLL;
	pgconn_query(&sp->conn, SYNC_QUERY, sp->settings->timeout_ms);
}

static void on_connected(struct pgconn *c)
{
	poll(of_conn(c));
}

static void on_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct sync_policy *sp = of_conn(c);
	enum sync_step step = sp->step;

	sp->step = SYNC_STEP_IDLE;
	if (step == SYNC_STEP_ALTER || step == SYNC_STEP_RELOAD) {
		/* Not every poll: each failed ALTER SYSTEM is an ERROR in the server's log. */
		say_failure(sp, step == SYNC_STEP_ALTER ? "ALTER SYSTEM SET synchronous_standby_names"
			    : "pg_reload_conf()", f, next_backoff(sp));
		return;
	}
	if (f->kind == PGCONN_ERR_QUERY) {
		say_failure(sp, "the poll", f, poll_period(sp->settings));
		return;
	}
	/* The server is down or turned us away: the probe reports that. */
	pg_log(sp->host, DEBUG, "synchronous replication policy: no session (%s: %s)",
	       pgconn_error_str(f->kind), f->message);
}

static const struct pgconn_handler sync_handler = {
	.connected = on_connected,
	.result = on_result,
	.failed = on_failed,
};

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sync_policy *sp = container_of(w, struct sync_policy, tick);

	(void)loop;
	(void)revents;
	/*
	 * While the probe reports the server down, this session goes too: a
	 * smart shutdown waits for every session, and the probe lets go of its
	 * own when it sees one (57P03, "stopping").
	 */
	if (sp->verdict(sp->owner) == PGTRACKD_STATE_FAIL) {
		if (sp->conn.state != PGCONN_CLOSED)
			pg_log(sp->host, DEBUG, "synchronous replication policy: the server is "
			       "down, closing the policy's session");
		pgconn_close(&sp->conn);
		sp->step = SYNC_STEP_IDLE;
		sp->pending_at = 0.0;
		return;
	}
	switch (sp->conn.state) {
	case PGCONN_CLOSED:
		pgconn_connect(&sp->conn, sp->params->keywords, sp->params->values,
			       sp->settings->connect_timeout_ms);
		break;
	case PGCONN_READY:
		poll(sp);
		break;
	case PGCONN_CONNECTING:
	case PGCONN_BUSY:
		break; /* its deadline decides */
	}
}

void sync_policy_describe(const struct sync_policy *sp, const struct pgtrackd_facts *out)
{
	const struct sync_observation *o = &sp->seen;

	out->put_int(out, "sync_policy_failing", sp->failing);
	if (!sp->polled)
		return;
	out->put_text(out, "sync_standby_names", o->current);
	out->put_int(out, "sync_relaxed", o->current[0] == '\0');
	out->put_int(out, "sync_waiting_commits", o->n_waiting);
	out->put_int(out, "sync_streaming_standbys", o->n_standbys);
}

void sync_policy_init(struct sync_policy *sp, const struct pgtrackd_host *host,
		      const struct pg_settings *settings, const struct pgconn_params *params,
		      sync_verdict_fn verdict, sync_count_fn other_standbys, void *owner)
{
	double period = poll_period(settings);

	*sp = (struct sync_policy){ .host = host, .settings = settings, .params = params,
				    .verdict = verdict, .other_standbys = other_standbys,
				    .owner = owner, .relax_lsn = -1,
				    .backoff = SYNC_FIRST_BACKOFF };
	pgconn_init(&sp->conn, host->loop, &sync_handler);
	ev_timer_init(&sp->tick, tick_cb, period, period);
	ratelimit_init(&sp->change_log, duration_seconds(settings->reminder_interval_ms), 4);
	ratelimit_init(&sp->error_log, duration_seconds(settings->reminder_interval_ms), 1);
}

void sync_policy_start(struct sync_policy *sp)
{
	/* The first tick connects, once the probe has a verdict that is not down. */
	ev_timer_again(sp->host->loop, &sp->tick);
}

void sync_policy_stop(struct sync_policy *sp)
{
	ev_timer_stop(sp->host->loop, &sp->tick);
	pgconn_close(&sp->conn);
	sp->step = SYNC_STEP_IDLE;
	sp->pending_at = 0.0;
	sp->waiter[0] = '\0';
	sp->alone_since = 0.0;
	sp->polled = false;
}
