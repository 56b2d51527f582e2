#include "bouncer.h"
#include "bouncer_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "duration.h"
#include "log.h"
#include "monotime.h"
#include "util.h"

#define BACKOFF_START_MS 250
/* Longer server_login_retry values get no poke (with [postgres], a warning instead). */
#define POKE_MAX_S 1.0
#define POKE_EVERY 0.01

static void run(struct bouncer *b, bool periodic);

/* A run (or a poke) is in progress: its phase says where. */
static bool busy(const struct bouncer *b)
{
	return b->phase != BOUNCER_IDLE;
}

bool bouncer_may_log(struct bouncer *b, enum bouncer_repeat kind, char *more, size_t size)
{
	unsigned long held_back;

	more[0] = '\0';
	if (!ratelimit_allow(&b->repeat_log[kind], monotime_now(), &held_back))
		return false;
	if (held_back)
		snprintf(more, size, " (%lu more times since the last such line)", held_back);
	return true;
}

void bouncer_log(const struct bouncer *b, int priority, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	switch (priority) {
	case LOG_ERR:
		log_error("pgbouncer at %s%s", b->target, text);
		break;
	case LOG_WARNING:
		log_warnx("pgbouncer at %s%s", b->target, text);
		break;
	case LOG_INFO:
		log_info("pgbouncer at %s%s", b->target, text);
		break;
	default:
		log_debug("pgbouncer at %s%s", b->target, text);
		break;
	}
}

void bouncer_count(struct bouncer *b, enum notify_action action, const char *what,
		   const char *error)
{
	notify_stats_action(&b->stats, notify_when_now(), action, what, !error, error);
}

/* The command in flight, counted with its result. */
static void count_command(struct bouncer *b, const char *error)
{
	const char *cmd = b->commands[b->next_command];

	bouncer_count(b, notify_action_of(cmd), cmd, error);
}

const char *bouncer_mode_name(enum bouncer_mode mode)
{
	switch (mode) {
	case BOUNCER_SERVE:
		return "serve";
	case BOUNCER_FENCE:
		return "fence";
	case BOUNCER_HOLD:
		return "hold";
	case BOUNCER_UNKNOWN:
		break;
	}
	return "unknown";
}

static void build_params(struct bouncer *b)
{
	const struct bouncer_settings *s = &b->config->bouncer;
	struct pgconn_params *p = &b->params;

	memset(p, 0, sizeof(*p));
	snprintf(p->port, sizeof(p->port), "%d", s->port);
	pgconn_params_add(p, "host", s->host);
	pgconn_params_add(p, "port", p->port);
	pgconn_params_add(p, "user", s->user);
	pgconn_params_add(p, "passfile", s->passfile);
	pgconn_params_add(p, "dbname", "pgbouncer");
	snprintf(b->target, sizeof(b->target), "%s:%d", s->host[0] ? s->host : "(default)",
		 s->port);
}

static void finish_run(struct bouncer *b, bool ok)
{
	b->phase = BOUNCER_IDLE;
	if (ok) {
		if (b->run_cuts)
			b->cut_held = false;
		b->hold_applied = b->run_mode == BOUNCER_HOLD;
		if (b->run_mode != BOUNCER_HOLD)
			b->held = false;
	}
	if (ok && b->resumed_db && b->run_mode == BOUNCER_SERVE && b->login_retry >= 0.0 &&
	    b->login_retry <= POKE_MAX_S) {
		b->poke_until = ev_now(b->loop) + b->login_retry + 0.25;
		ev_timer_stop(b->loop, &b->poke);
		ev_timer_set(&b->poke, POKE_EVERY, POKE_EVERY);
		ev_timer_start(b->loop, &b->poke);
	}
	if (ok) {
		b->backoff_ms = BACKOFF_START_MS;
		/* Announce the mode applied, unless a newer one arrived meanwhile (the rerun announces that). */
		if (b->announce && b->run_mode == b->mode) {
			char list[NOTIFY_MAX_DATABASES * (NOTIFY_DBNAME_MAX + 1) + 32] = "";

			if (b->config->all_databases)
				snprintf(list, sizeof(list), "* (all that pgbouncer lists)");
			for (int i = 0; i < b->config->n_databases; i++) {
				if (i)
					strcat(list, " ");
				strcat(list, b->config->database[i]);
			}
			log_info("pgbouncer: %s databases %s (this node is %s)",
				 b->mode == BOUNCER_SERVE ? "serving"
				 : b->mode == BOUNCER_HOLD ? "holding (paused, clients wait)"
							   : "fenced",
				 list, b->reason);
		}
		if (b->run_mode == b->mode)
			b->announce = false;
	}
	if (b->rerun)
		run(b, false);
}

static void schedule_retry(struct bouncer *b)
{
	ev_timer_stop(b->loop, &b->retry);
	ev_timer_set(&b->retry, duration_seconds(b->backoff_ms), 0.0);
	ev_timer_start(b->loop, &b->retry);
	b->backoff_ms *= 2;
	if (b->backoff_ms > b->config->bouncer.retry_max_ms)
		b->backoff_ms = b->config->bouncer.retry_max_ms;
}

/* pgbouncer could not be reached or the run failed: try again later. */
static void fail_run(struct bouncer *b, const char *what, const struct pgconn_failure *f)
{
	char error[sizeof(f->message) + 64];

	snprintf(error, sizeof(error), "%s: %s", pgconn_error_str(f->kind), f->message);
	if ((b->phase == BOUNCER_PREPARE || b->phase == BOUNCER_APPLY) &&
	    b->next_command < b->n_commands)
		count_command(b, error);
	bouncer_reload_unverified(b, error);
	notify_stats_reach(&b->stats, notify_when_now(), error);
	if (!b->outage)
		bouncer_log(b, LOG_ERR, " %s: %s: %s; retrying every %.1fs at most, the %s state "
			    "will be applied when it is back", what, pgconn_error_str(f->kind),
			    f->message, duration_seconds(b->config->bouncer.retry_max_ms),
			  bouncer_mode_name(b->mode));
	b->outage = true;
	pgconn_close(&b->conn);
	b->rerun = false;
	b->phase = BOUNCER_IDLE;
	schedule_retry(b);
}

static void send_query(struct bouncer *b, const char *sql)
{
	if (pgconn_query(&b->conn, sql, b->config->bouncer.command_timeout_ms) < 0) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_LOST };

		snprintf(f.message, sizeof(f.message), "connection not ready");
		fail_run(b, "is unusable", &f);
	}
}

static void next_step(struct bouncer *b);

static void send_next(struct bouncer *b)
{
	if (b->next_command < b->n_commands) {
		b->sent++;
		if (strncmp(b->commands[b->next_command], "RESUME ", 7) == 0)
			b->resumed_db = true;
		log_debug("pgbouncer: sending %s", b->commands[b->next_command]);
		send_query(b, b->commands[b->next_command]);
		return;
	}
	next_step(b);
}

static void prepare(struct bouncer *b)
{
	b->phase = BOUNCER_PREPARE;
	b->n_commands = 0;
	b->next_command = 0;
	b->sent = 0;
	b->resumed_db = false;
	/* From the first ENABLE of a hold, clients may wait in a paused database. */
	if (b->run_mode == BOUNCER_HOLD)
		b->held = true;
	/* Paused, but with held clients: fencing, or holding after MASTER, must KILL them too. */
	b->run_cuts = b->cut_held && b->run_mode != BOUNCER_SERVE;
	b->kill_paused = (b->run_mode == BOUNCER_FENCE || b->run_cuts) && b->held;
	b->resumed_globally = false;
	bouncer_reload_unverified(b, "the run was cut short");
	/*
	 * The file first: fencing, no database is then created from the
	 * fallback after the SHOW DATABASES below; serving, the databases
	 * created from the fenced fallback point to their server before
	 * RESUME.  The file is the same in every mode unless the template
	 * has a fallback line: no RELOAD on the way to MASTER otherwise.
	 * A RELOAD that pgbouncer did not take is sent again at the
	 * reconcile's pace (bouncer_check_file).
	 */
	if (!bouncer_queue_file(b) && b->file_known && b->reload_due &&
	    (b->periodic || b->reload_now)) {
		b->reload_now = false;
		b->reload_retry = true;
		bouncer_queue(b, "RELOAD", NULL);
	}
	bool reloads = b->n_commands > 0;

	bouncer_queue_global_resume(b);
	/* The promotion ended a hold: the clients wait, no RELOAD comes first. */
	if (b->run_mode == BOUNCER_SERVE && b->hold_applied && !reloads)
		bouncer_queue_held_resume(b);
	send_next(b);
}

static void run(struct bouncer *b, bool periodic)
{
	if (busy(b)) {
		b->rerun = true;
		return;
	}
	b->rerun = false;
	if (b->mode == BOUNCER_UNKNOWN)
		return;
	ev_timer_stop(b->loop, &b->retry);
	b->periodic = periodic;
	b->run_mode = b->mode;
	if (pgconn_ready(&b->conn)) {
		prepare(b);
		return;
	}
	b->phase = BOUNCER_CONNECTING;
	pgconn_connect(&b->conn, b->params.keywords, b->params.values, b->config->bouncer.connect_timeout_ms);
}

static void next_step(struct bouncer *b)
{
	switch (b->phase) {
	case BOUNCER_PREPARE:
		b->phase = BOUNCER_SHOW;
		log_debug("pgbouncer: sending SHOW DATABASES");
		send_query(b, "SHOW DATABASES");
		return;
	case BOUNCER_APPLY:
		b->kill_paused = false;
		if (b->sent == 0) {
			finish_run(b, true);
			return;
		}
		b->phase = BOUNCER_VERIFY;
		log_debug("pgbouncer: sending SHOW DATABASES to verify %d command(s)", b->sent);
		send_query(b, "SHOW DATABASES");
		return;
	default:
		finish_run(b, true);
		return;
	}
}

static void show_result(struct bouncer *b, const PGresult *res)
{
	int n;

	if (b->phase == BOUNCER_SHOW) {
		/* A difference never stops the plan: the databases pgbouncer has still get it. */
		bouncer_check_file(b, res);
		n = bouncer_plan(b, res, b->periodic && !b->announce);
		if (n < 0) {
			finish_run(b, false);
			return;
		}
		/* The mode was applied already: something undid it. */
		if (n > 0 && !b->announce)
			b->stats.repairs++;
		b->phase = BOUNCER_APPLY;
		send_next(b); /* with nothing to send: done */
		return;
	}
	/* BOUNCER_VERIFY */
	n = bouncer_plan(b, res, false);
	if (n == 0 || b->run_mode != b->mode) {
		finish_run(b, true);
		return;
	}
	char more[64];

	if (bouncer_may_log(b, BOUNCER_LOG_VERIFY, more, sizeof(more)))
		bouncer_log(b, LOG_ERR, ": SHOW DATABASES still differs after our commands (next: "
			    "%s); trying again%s", n > 0 ? b->commands[0] : "?", more);
	b->phase = BOUNCER_IDLE;
	schedule_retry(b);
}

static void on_connected(struct pgconn *c)
{
	struct bouncer *b = container_of(c, struct bouncer, conn);

	if (b->outage)
		bouncer_log(b, LOG_INFO, " is reachable again");
	else
		log_debug("pgbouncer: connected to the admin console at %s", b->target);
	b->outage = false;
	notify_stats_reach(&b->stats, notify_when_now(), NULL);
	if (pgconn_dropped(c)[0] && !b->dropped_warned) {
		b->dropped_warned = true;
		bouncer_log(b, LOG_WARNING, ": host lists more than %d addresses; connecting without %s",
			    PGCONN_MAX_HOSTS, pgconn_dropped(c));
	}
	b->paused_globally = false; /* a hold finds out again: PAUSE, or "already paused" */
	b->phase = BOUNCER_CONFIG;
	send_query(b, "SHOW CONFIG");
}

/* server_login_retry from SHOW CONFIG; warns once if a hold would cost it. */
static void config_result(struct bouncer *b, const PGresult *res)
{
	int key = PQfnumber(res, "key"), value = PQfnumber(res, "value");

	b->login_retry = -1.0;
	for (int r = 0; key >= 0 && value >= 0 && r < PQntuples(res); r++) {
		if (strcmp(PQgetvalue(res, r, key), "server_login_retry") == 0) {
			char *end;
			double v = strtod(PQgetvalue(res, r, value), &end);

			if (end != PQgetvalue(res, r, value) && v >= 0.0)
				b->login_retry = v;
			break;
		}
	}
	if (b->config->hold && b->login_retry > POKE_MAX_S && !b->login_retry_warned) {
		b->login_retry_warned = true;
		bouncer_log(b, LOG_WARNING, " has server_login_retry = %g s: a client that logs in "
			    "while its database is held waits up to that long after the promotion; "
			    "set server_login_retry = 0.05 in pgbouncer.ini", b->login_retry);
	}
	prepare(b);
}

static void on_result(struct pgconn *c, const PGresult *res)
{
	struct bouncer *b = container_of(c, struct bouncer, conn);

	switch (b->phase) {
	case BOUNCER_CONFIG:
		config_result(b, res);
		return;
	case BOUNCER_POKE:
		b->phase = BOUNCER_IDLE;
		if (b->rerun)
			run(b, false);
		return;
	case BOUNCER_PREPARE:
	case BOUNCER_APPLY:
		if (notify_action_of(b->commands[b->next_command]) == NOTIFY_ACTION_RELOAD) {
			bouncer_reload_answered(b);
		} else {
			log_info("pgbouncer: %s", b->commands[b->next_command]);
			count_command(b, NULL);
			bouncer_note_global(b, b->commands[b->next_command]);
		}
		b->next_command++;
		send_next(b);
		return;
	case BOUNCER_SHOW:
	case BOUNCER_VERIFY:
		show_result(b, res);
		return;
	default:
		return;
	}
}

static void command_failed(struct bouncer *b, const struct pgconn_failure *f)
{
	const char *cmd = b->commands[b->next_command];
	char more[64];

	if (b->phase != BOUNCER_PREPARE && b->phase != BOUNCER_APPLY) {
		if (bouncer_may_log(b, BOUNCER_LOG_SHOW, more, sizeof(more)))
			bouncer_log(b, LOG_ERR, ": SHOW DATABASES failed: %s%s", f->message, more);
		finish_run(b, false);
		schedule_retry(b);
		return;
	}
	bool benign = bouncer_is_benign(cmd, f->message);

	count_command(b, benign ? NULL : f->message);
	if (benign) {
		log_debug("pgbouncer: %s: %s (fine)", cmd, f->message);
		bouncer_note_global(b, cmd);
	} else if (strncmp(cmd, "KILL ", 5) == 0 && strstr(f->message, "already suspended/paused") &&
		   !b->resumed_globally) {
		/* KILL is refused under a global PAUSE; lift it, DISABLE already keeps clients out. */
		bouncer_log(b, LOG_WARNING, " is paused globally and refuses %s; sending RESUME first",
			    cmd);
		char db[NOTIFY_DBNAME_MAX + 1];

		snprintf(db, sizeof(db), "%s", cmd + 5);
		b->resumed_globally = true;
		bouncer_queue(b, "RESUME", NULL);
		bouncer_queue(b, "KILL", db);
		if (b->run_mode == BOUNCER_HOLD && b->pause_all_ok)
			bouncer_queue(b, "PAUSE", NULL); /* ours, after the KILL */
	} else if (bouncer_may_log(b, BOUNCER_LOG_COMMAND, more, sizeof(more))) {
		bouncer_log(b, LOG_ERR, ": %s failed: %s%s", cmd, f->message, more);
	}
	b->next_command++;
	send_next(b);
}

/* The idle admin session went away: pgbouncer restarted, or was stopped. */
static void reconnect_idle(struct bouncer *b, const struct pgconn_failure *f)
{
	log_info("pgbouncer: admin connection to %s lost (%s); reconnecting to check its state",
		 b->target, f->message);
	run(b, false);
}

static void on_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct bouncer *b = container_of(c, struct bouncer, conn);

	if (b->phase == BOUNCER_POKE) {
		b->phase = BOUNCER_IDLE;
		ev_timer_stop(b->loop, &b->poke);
		if (f->kind == PGCONN_ERR_QUERY) {
			if (b->rerun)
				run(b, false);
			return;
		}
		reconnect_idle(b, f);
		return;
	}
	if (f->kind == PGCONN_ERR_QUERY && b->phase == BOUNCER_CONFIG) {
		/* Not worth failing the run: go on without the poke. */
		b->login_retry = -1.0;
		prepare(b);
		return;
	}
	if (f->kind == PGCONN_ERR_QUERY) {
		command_failed(b, f);
		return;
	}
	if (!busy(b)) {
		reconnect_idle(b, f);
		return;
	}
	fail_run(b, b->phase == BOUNCER_CONNECTING ? "is unreachable" : "dropped the connection", f);
}

static const struct pgconn_handler handler = {
	.connected = on_connected,
	.result = on_result,
	.failed = on_failed,
};

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bouncer *b = container_of(w, struct bouncer, retry);

	run(b, false);
}

static void poke_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bouncer *b = container_of(w, struct bouncer, poke);

	if (ev_now(loop) > b->poke_until) {
		ev_timer_stop(loop, w);
		return;
	}
	/* A run in progress wakes pgbouncer up just as well. */
	if (busy(b) || !pgconn_ready(&b->conn))
		return;
	b->phase = BOUNCER_POKE;
	if (pgconn_query(&b->conn, "SHOW VERSION", b->config->bouncer.command_timeout_ms) < 0) {
		b->phase = BOUNCER_IDLE;
	}
}

static void reconcile_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bouncer *b = container_of(w, struct bouncer, reconcile);

	if (busy(b) || ev_is_active(&b->retry))
		return;
	run(b, true);
}

void bouncer_init(struct bouncer *b, struct ev_loop *loop, const struct notify_config *config)
{
	*b = (struct bouncer){ .loop = loop, .config = config, .backoff_ms = BACKOFF_START_MS };
	snprintf(b->reason, sizeof(b->reason), "unknown");
	build_params(b);
	pgconn_init(&b->conn, loop, &handler);
	ev_init(&b->retry, retry_cb);
	ev_init(&b->reconcile, reconcile_cb);
	ev_init(&b->poke, poke_cb);
	b->login_retry = -1.0;
	for (int i = 0; i < BOUNCER_LOG_KINDS; i++)
		ratelimit_init(&b->repeat_log[i], BOUNCER_REPEAT_EVERY, 1);
}

void bouncer_start(struct bouncer *b)
{
	double every = duration_seconds(b->config->notify.reconcile_interval_ms);

	ev_timer_set(&b->reconcile, every, every);
	ev_timer_start(b->loop, &b->reconcile);
	run(b, true);
}

void bouncer_finish(struct bouncer *b)
{
	ev_timer_stop(b->loop, &b->retry);
	ev_timer_stop(b->loop, &b->reconcile);
	ev_timer_stop(b->loop, &b->poke);
	pgconn_close(&b->conn);
	b->phase = BOUNCER_IDLE;
}

void bouncer_set_config(struct bouncer *b, const struct notify_config *config)
{
	bool reconnect = memcmp(&b->config->bouncer, &config->bouncer, sizeof(config->bouncer)) != 0;
	double every = duration_seconds(config->notify.reconcile_interval_ms);

	b->config = config;
	b->n_held_dbs = 0; /* the databases may have changed: the next hold plans them anew */
	build_params(b);
	b->reconcile.repeat = every;
	ev_timer_again(b->loop, &b->reconcile);
	if (reconnect) {
		/* A run in flight used the old settings; start over with the new ones. */
		pgconn_close(&b->conn);
		b->phase = BOUNCER_IDLE;
		b->backoff_ms = BACKOFF_START_MS;
	}
	run(b, false);
}

void bouncer_cut_held(struct bouncer *b)
{
	b->cut_held = true;
}

void bouncer_set_mode(struct bouncer *b, enum bouncer_mode mode, const char *reason)
{
	snprintf(b->reason, sizeof(b->reason), "%s", reason);
	if (mode == BOUNCER_SERVE)
		b->cut_held = false; /* back to MASTER before the cut: nothing to cut */
	if (mode == b->mode && !b->cut_held)
		return;
	if (mode != BOUNCER_SERVE)
		ev_timer_stop(b->loop, &b->poke);
	b->mode = mode;
	b->announce = true;
	b->backoff_ms = BACKOFF_START_MS;
	run(b, false);
}
