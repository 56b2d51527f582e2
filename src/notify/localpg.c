#include "localpg.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define IDLE_BACKOFF_START_MS 250
#define IDLE_BACKOFF_MAX_MS 5000

const char *localpg_role_name(enum localpg_role role)
{
	switch (role) {
	case LOCALPG_PRIMARY:
		return "primary";
	case LOCALPG_STANDBY:
		return "standby";
	case LOCALPG_UNKNOWN:
		break;
	}
	return "unreachable";
}

static void build_params(struct localpg *lp)
{
	const struct local_settings *s = &lp->config->local;
	struct pgconn_params *p = &lp->params;

	memset(p, 0, sizeof(*p));
	snprintf(p->port, sizeof(p->port), "%d", s->port);
	pgconn_params_add(p, "host", s->host);
	pgconn_params_add(p, "port", p->port);
	pgconn_params_add(p, "user", s->user);
	pgconn_params_add(p, "dbname", s->dbname);
	pgconn_params_add(p, "passfile", s->passfile);
	pgconn_params_add(p, "application_name", "pgtrack-notify");
	snprintf(lp->target, sizeof(lp->target), "%s:%d", s->host[0] ? s->host : "(default)",
		 s->port);
}

static void set_role(struct localpg *lp, enum localpg_role role)
{
	bool first = !lp->answered || (lp->watching && !lp->fresh);

	lp->answered = true;
	lp->fresh = lp->watching;
	if (role == lp->role && !first)
		return;
	lp->role = role;
	if (lp->changed)
		lp->changed(lp);
}

static void arm(struct localpg *lp, int64_t ms)
{
	ev_timer_stop(lp->loop, &lp->timer);
	ev_timer_set(&lp->timer, (double)ms / 1000.0, 0.0);
	ev_timer_start(lp->loop, &lp->timer);
}

static void ask(struct localpg *lp)
{
	if (pgconn_query(&lp->conn, "SELECT pg_is_in_recovery()", lp->config->local.connect_timeout_ms) < 0)
		arm(lp, lp->config->local.hold_poll_ms);
}

static void connect_now(struct localpg *lp)
{
	ev_timer_stop(lp->loop, &lp->timer);
	pgconn_connect(&lp->conn, lp->params.keywords, lp->params.values,
		       lp->config->local.connect_timeout_ms);
}

static void on_connected(struct pgconn *c)
{
	struct localpg *lp = container_of(c, struct localpg, conn);

	if (lp->outage)
		log_info("local PostgreSQL at %s is reachable again", lp->target);
	lp->outage = false;
	lp->refused = false;
	lp->backoff_ms = IDLE_BACKOFF_START_MS;
	/* SET client_connection_check_interval fails before 14: pgbouncer ignores the error. */
	if (lp->config->gate && PQserverVersion(c->conn) < 140000 && !lp->gate_version_warned) {
		lp->gate_version_warned = true;
		log_error("local PostgreSQL at %s is version %d, older than 14: the gate's connect_query "
			  "fails there and pgbouncer then serves a standby during a hold; set hold_gate = "
			  "off in [postgres]", lp->target, PQserverVersion(c->conn));
	}
	ask(lp);
}

static void on_result(struct pgconn *c, const PGresult *res)
{
	struct localpg *lp = container_of(c, struct localpg, conn);
	enum localpg_role role = LOCALPG_UNKNOWN;

	if (PQntuples(res) == 1 && PQnfields(res) == 1)
		role = strcmp(PQgetvalue(res, 0, 0), "f") == 0 ? LOCALPG_PRIMARY : LOCALPG_STANDBY;
	set_role(lp, role);
	if (lp->watching && lp->role != LOCALPG_PRIMARY)
		arm(lp, lp->config->local.hold_poll_ms);
	else if (!lp->watching)
		arm(lp, lp->config->local.session_renew_ms);
}

static void on_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct localpg *lp = container_of(c, struct localpg, conn);
	int64_t wait;

	lp->refused = f->kind == PGCONN_ERR_AUTH || f->kind == PGCONN_ERR_QUERY ||
		      (f->kind == PGCONN_ERR_FAILED && f->sqlstate[0]);
	snprintf(lp->last_error, sizeof(lp->last_error), "%s", f->message);
	if (f->kind == PGCONN_ERR_QUERY) {
		/* The session still works: ask again at the next poll. */
		if (!lp->outage)
			log_warnx("local PostgreSQL at %s: SELECT pg_is_in_recovery() failed: %s",
				  lp->target, f->message);
		lp->outage = true;
		set_role(lp, LOCALPG_UNKNOWN);
		arm(lp, IDLE_BACKOFF_MAX_MS);
		return;
	}
	if (!lp->outage)
		log_warnx("local PostgreSQL at %s %s: %s: %s; %s", lp->target,
			  f->kind == PGCONN_ERR_LOST ? "dropped the connection" : "is unreachable",
			  pgconn_error_str(f->kind), f->message,
			  lp->watching && !lp->refused ? "trying again every hold_poll while holding"
							: "trying again in the background");
	lp->outage = true;
	set_role(lp, LOCALPG_UNKNOWN);
	/* Refused for good: not at every hold_poll, the server logs each one. */
	if (lp->watching && !lp->refused) {
		wait = lp->config->local.hold_poll_ms;
	} else {
		wait = lp->backoff_ms;
		lp->backoff_ms *= 2;
		if (lp->backoff_ms > IDLE_BACKOFF_MAX_MS)
			lp->backoff_ms = IDLE_BACKOFF_MAX_MS;
	}
	arm(lp, wait);
}

static const struct pgconn_handler handler = {
	.connected = on_connected,
	.result = on_result,
	.failed = on_failed,
};

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct localpg *lp = container_of(w, struct localpg, timer);

	if (lp->conn.state == PGCONN_CLOSED) {
		connect_now(lp);
	} else if (pgconn_ready(&lp->conn) && (lp->watching || lp->role == LOCALPG_UNKNOWN)) {
		ask(lp);
	} else if (pgconn_ready(&lp->conn)) {
		/*
		 * An idle session is replaced every session_renew: a smart shutdown
		 * waits for every session and never tells an idle one, but turns the
		 * new one away (57P03), and the server is then let go.
		 */
		log_debug("local PostgreSQL at %s: renewing the idle session", lp->target);
		pgconn_close(&lp->conn);
		connect_now(lp);
	}
}

void localpg_init(struct localpg *lp, struct ev_loop *loop, const struct notify_config *config,
		  localpg_changed_cb *changed)
{
	*lp = (struct localpg){ .loop = loop, .config = config, .changed = changed,
				.backoff_ms = IDLE_BACKOFF_START_MS };
	build_params(lp);
	pgconn_init(&lp->conn, loop, &handler);
	ev_init(&lp->timer, timer_cb);
}

void localpg_start(struct localpg *lp)
{
	if (lp->config->hold && lp->conn.state == PGCONN_CLOSED)
		connect_now(lp);
}

void localpg_finish(struct localpg *lp)
{
	ev_timer_stop(lp->loop, &lp->timer);
	pgconn_close(&lp->conn);
}

void localpg_set_config(struct localpg *lp, const struct notify_config *config)
{
	bool reconnect = memcmp(&lp->config->local, &config->local, sizeof(config->local)) != 0 ||
			 lp->config->hold != config->hold;

	lp->config = config;
	build_params(lp);
	if (!reconnect)
		return;
	ev_timer_stop(lp->loop, &lp->timer);
	pgconn_close(&lp->conn);
	lp->backoff_ms = IDLE_BACKOFF_START_MS;
	if (config->hold)
		connect_now(lp);
}

void localpg_watch(struct localpg *lp, bool on)
{
	if (lp->watching == on)
		return;
	lp->watching = on;
	lp->fresh = false;
	if (!on && pgconn_ready(&lp->conn))
		arm(lp, lp->config->local.session_renew_ms); /* idle again: renewed in time */
	if (!on || !lp->config->hold || lp->role == LOCALPG_PRIMARY)
		return;
	/* Holding: ask now rather than at the end of a backoff. */
	if (lp->conn.state == PGCONN_CLOSED)
		connect_now(lp);
	else if (pgconn_ready(&lp->conn))
		ask(lp);
}
