/*
 * probe_pg: the built-in PostgreSQL probe.
 *
 * One persistent session answers a one-round-trip query every interval
 * (role, live timeline, system identifier).  While idle, its socket is
 * watched, so a crash or a killed backend is seen at once and a reconnect
 * follows immediately.  Every accept_interval a fresh connection proves
 * that the postmaster still accepts clients: an open session keeps
 * answering while a stopped postmaster lets no one in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "pgconn.h"
#include "probe.h"
#include "util.h"

/*
 * One round trip: role and, on a primary, the live timeline (the control
 * file's checkpoint timeline lags after a promotion).  The system
 * identifier, read from the control file, cannot change while a session
 * lasts: it is asked for once per session.
 */
#define PROBE_SQL                                                                          \
	"SELECT pg_is_in_recovery(),"                                                      \
	" CASE WHEN pg_is_in_recovery() THEN NULL"                                         \
	" ELSE ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::int END"
#define PROBE_SQL_FIRST PROBE_SQL ", (SELECT system_identifier FROM pg_control_system())"

#define MAX_PARAMS 12

struct pg_probe {
	const struct probe_host *host;
	struct track_settings settings;
	const char *keywords[MAX_PARAMS + 1];
	const char *values[MAX_PARAMS + 1];
	char port[8];
	char options[64];

	struct pgconn session;
	struct pgconn accept;
	ev_timer tick;
	ev_timer accept_tick;
	ev_tstamp query_started;
	ev_tstamp last_quick_reconnect;

	bool running;
	bool accept_failing;
	char accept_reason[512];

	/* Last answer, kept for the stale-primary guard. */
	bool in_recovery;
	long timeline;
	char system_identifier[24];
};

static void add_param(struct pg_probe *p, int *n, const char *key, const char *value)
{
	if (!value[0] || *n >= MAX_PARAMS)
		return;
	p->keywords[*n] = key;
	p->values[*n] = value;
	(*n)++;
}

static void build_params(struct pg_probe *p)
{
	struct track_settings *s = &p->settings;
	int n = 0;

	if (s->port)
		snprintf(p->port, sizeof(p->port), "%d", s->port);
	/* The server gives up on a probe we have given up on. */
	snprintf(p->options, sizeof(p->options), "-c statement_timeout=%" PRId64,
		 s->timeout_ms);
	add_param(p, &n, "host", s->host);
	add_param(p, &n, "hostaddr", s->hostaddr);
	add_param(p, &n, "port", p->port);
	add_param(p, &n, "dbname", s->dbname);
	add_param(p, &n, "user", s->user);
	add_param(p, &n, "passfile", s->passfile);
	add_param(p, &n, "sslmode", s->sslmode);
	add_param(p, &n, "application_name", s->application_name);
	add_param(p, &n, "options", p->options);
	p->keywords[n] = NULL;
	p->values[n] = NULL;
}

static struct pg_probe *of_session(struct pgconn *c)
{
	return container_of(c, struct pg_probe, session);
}

static struct pg_probe *of_accept(struct pgconn *c)
{
	return container_of(c, struct pg_probe, accept);
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

static void report_failure(struct pg_probe *p, const struct pgconn_failure *f)
{
	char reason[400];

	format_failure(reason, sizeof(reason), "", f);
	p->host->report(p->host, SAMPLE_FAIL, reason);
}

static void connect_session(struct pg_probe *p)
{
	log_debug("track \"%s\": connecting", p->host->track_name);
	pgconn_connect(&p->session, p->keywords, p->values, p->settings.connect_timeout_ms);
}

static void send_probe(struct pg_probe *p)
{
	const char *sql = p->system_identifier[0] ? PROBE_SQL : PROBE_SQL_FIRST;

	p->query_started = ev_now(p->host->loop);
	if (pgconn_query(&p->session, sql, p->settings.timeout_ms) < 0)
		log_debug("track \"%s\": previous probe still running, skipping one",
			  p->host->track_name);
}

static void session_connected(struct pgconn *c)
{
	struct pg_probe *p = of_session(c);

	log_debug("track \"%s\": connected", p->host->track_name);
	p->system_identifier[0] = '\0';
	send_probe(p);
}

static bool parse_answer(struct pg_probe *p, const PGresult *res)
{
	int fields = p->system_identifier[0] ? 2 : 3;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) != fields || PQgetisnull(res, 0, 0))
		return false;
	p->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	p->timeline = PQgetisnull(res, 0, 1) ? 0 : strtol(PQgetvalue(res, 0, 1), NULL, 10);
	if (fields == 3)
		snprintf(p->system_identifier, sizeof(p->system_identifier), "%s",
			 PQgetisnull(res, 0, 2) ? "?" : PQgetvalue(res, 0, 2));
	return true;
}

static void session_result(struct pgconn *c, const PGresult *res)
{
	struct pg_probe *p = of_session(c);

	if (!parse_answer(p, res)) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_QUERY };

		snprintf(f.message, sizeof(f.message), "unexpected answer to the probe query");
		report_failure(p, &f);
		return;
	}
	log_debug("track \"%s\": %s, timeline %ld, system identifier %s, %.1f ms",
		  p->host->track_name,
		  p->in_recovery ? "in recovery (timeline not asked)" : "not in recovery",
		  p->timeline, p->system_identifier,
		  (ev_time() - p->query_started) * 1000.0);
	if (p->accept_failing) {
		p->host->report(p->host, SAMPLE_FAIL, p->accept_reason);
		return;
	}
	p->host->report(p->host, p->in_recovery ? SAMPLE_STANDBY : SAMPLE_PRIMARY,
			p->in_recovery ? "in recovery" : "not in recovery");
}

static void session_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct pg_probe *p = of_session(c);
	bool lost = f->kind == PGCONN_ERR_LOST;

	report_failure(p, f);
	/* The report may have stopped us. */
	if (!p->running)
		return;
	if (!pgconn_ready(&p->session))
		pgconn_close(&p->accept);
	/*
	 * A lost session is retried at once, at most once an interval so that a
	 * server that drops every session cannot make us spin; a failed attempt
	 * waits for the next tick.
	 */
	ev_tstamp now = ev_now(p->host->loop);

	if (lost && now - p->last_quick_reconnect >= (double)p->settings.interval_ms / 1000.0) {
		p->last_quick_reconnect = now;
		connect_session(p);
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

static void schedule_accept(struct pg_probe *p)
{
	int64_t ms = p->accept_failing ? p->settings.interval_ms : p->settings.accept_interval_ms;

	ev_timer_stop(p->host->loop, &p->accept_tick);
	ev_timer_set(&p->accept_tick, (double)ms / 1000.0, 0.0);
	ev_timer_start(p->host->loop, &p->accept_tick);
}

static void accept_connected(struct pgconn *c)
{
	struct pg_probe *p = of_accept(c);

	pgconn_close(c);
	if (p->accept_failing)
		log_info("track \"%s\": the server accepts new connections again",
			 p->host->track_name);
	p->accept_failing = false;
	schedule_accept(p);
}

static void accept_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct pg_probe *p = of_accept(c);

	p->accept_failing = true;
	format_failure(p->accept_reason, sizeof(p->accept_reason),
		       "not accepting new connections: ", f);
	schedule_accept(p);
	p->host->report(p->host, SAMPLE_FAIL, p->accept_reason);
}

static void accept_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pg_probe *p = container_of(w, struct pg_probe, accept_tick);

	/* Without a session, the session's own reconnects are the accept probe. */
	if (p->session.state != PGCONN_READY && p->session.state != PGCONN_BUSY) {
		p->accept_failing = false;
		schedule_accept(p);
		return;
	}
	log_debug("track \"%s\": accept probe", p->host->track_name);
	pgconn_connect(&p->accept, p->keywords, p->values, p->settings.connect_timeout_ms);
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

static int pg_init(const struct probe_host *host, const void *settings, void **state)
{
	struct pg_probe *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->host = host;
	memcpy(&p->settings, settings, sizeof(p->settings));
	build_params(p);
	pgconn_init(&p->session, host->loop, &session_handler);
	pgconn_init(&p->accept, host->loop, &accept_handler);
	ev_timer_init(&p->tick, tick_cb, (double)p->settings.interval_ms / 1000.0,
		      (double)p->settings.interval_ms / 1000.0);
	ev_init(&p->accept_tick, accept_tick_cb);
	*state = p;
	return 0;
}

static int pg_start(void *state)
{
	struct pg_probe *p = state;

	p->running = true;
	p->accept_failing = false;
	p->last_quick_reconnect = 0;
	ev_timer_again(p->host->loop, &p->tick);
	if (p->settings.accept_interval_ms > 0)
		schedule_accept(p);
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
	pgconn_close(&p->accept);
}

static void pg_destroy(void *state)
{
	struct pg_probe *p = state;

	if (!p)
		return;
	pg_stop(p);
	free(p);
}

const struct probe_ops probe_postgres_ops = {
	.abi_version = PROBE_ABI_VERSION,
	.name = "postgres",
	.init = pg_init,
	.start = pg_start,
	.stop = pg_stop,
	.destroy = pg_destroy,
};
