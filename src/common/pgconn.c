#include "pgconn_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "resolver.h"
#include "util.h"

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);

void pgconn_params_add(struct pgconn_params *p, const char *key, const char *value)
{
	if (!value[0] || p->n >= PGCONN_MAX_PARAMS)
		return;
	p->keywords[p->n] = key;
	p->values[p->n] = value;
	p->n++;
	p->keywords[p->n] = NULL;
	p->values[p->n] = NULL;
}
static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);

void pgconn_init(struct pgconn *c, struct ev_loop *loop, const struct pgconn_handler *handler)
{
	*c = (struct pgconn){ .loop = loop, .handler = handler, .io_fd = -1 };
	ev_init(&c->io, io_cb);
	ev_init(&c->deadline, deadline_cb);
}

static void clear_results(struct pgconn *c)
{
	PQclear(c->last_result);
	PQclear(c->error_result);
	c->last_result = NULL;
	c->error_result = NULL;
}

void pgconn_close(struct pgconn *c)
{
	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->deadline);
	/* Cancels without a callback: nothing reaches c once it is closed. */
	resolver_destroy(c->lookup);
	c->lookup = NULL;
	free(c->copy);
	c->copy = NULL;
	c->io_fd = -1;
	c->io_events = 0;
	clear_results(c);
	if (c->conn)
		PQfinish(c->conn);
	c->conn = NULL;
	c->state = PGCONN_CLOSED;
	c->failure_pending = false;
	c->goodbye = false;
}

/*
 * Watches fd for events.  While connecting, libpq may close its socket and
 * open another with the same number (next address, SSL retry): ev_io_set
 * then makes libev register the new one even though nothing seems to change.
 */
static void watch(struct pgconn *c, int fd, int events)
{
	if (c->state != PGCONN_CONNECTING && fd == c->io_fd && events == c->io_events &&
	    ev_is_active(&c->io))
		return;
	ev_io_stop(c->loop, &c->io);
	c->io_fd = fd;
	c->io_events = events;
	if (fd >= 0 && events) {
		ev_io_set(&c->io, fd, events);
		ev_io_start(c->loop, &c->io);
	}
}

static void append_note(struct pgconn_failure *f, const char *what)
{
	size_t len = strlen(f->message);

	if (what[0] && len + 3 < sizeof(f->message))
		snprintf(f->message + len, sizeof(f->message) - len, "%s%s", len ? "; " : "", what);
}

/* Closes the connection and reports f, with the host entries that were left out. */
void pgconn_fail(struct pgconn *c, const struct pgconn_failure *f)
{
	struct pgconn_failure copy = *f;

	if (c->state == PGCONN_CONNECTING && c->dropped[0]) {
		char note[128];

		snprintf(note, sizeof(note), "not tried (over %d addresses): %s", PGCONN_MAX_HOSTS,
			 c->dropped);
		append_note(&copy, note);
	}

	pgconn_close(c);
	c->handler->failed(c, &copy);
}

static void fail_from_conn(struct pgconn *c, enum pgconn_error kind)
{
	struct pgconn_failure f = { .kind = kind };
	const char *msg = c->conn ? PQerrorMessage(c->conn) : "";

	if (kind == PGCONN_ERR_FAILED) {
		pgconn_classify(msg, &f);
		if (c->timed_out[0]) {
			char note[200];

			snprintf(note, sizeof(note), "no answer within %.1fs from %s",
				 (double)c->timeout_ms / 1000.0, c->timed_out);
			append_note(&f, note);
		}
	} else {
		pgconn_first_line(f.message, sizeof(f.message), msg);
		if (!f.message[0])
			snprintf(f.message, sizeof(f.message), "server closed the connection");
	}
	pgconn_fail(c, &f);
}

/*
 * Notices go to the debug log, not stderr.  A FATAL or PANIC that arrives
 * on an idle session is the server saying goodbye (57P01 when the
 * postmaster died or an administrator ended us): the socket closes only
 * once the backend has finished exiting, tens of milliseconds later, so
 * remember it and report the loss now.
 */
static void notice_receiver(void *arg, const PGresult *res)
{
	struct pgconn *c = arg;
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0)) {
		c->goodbye = true;
		c->goodbye_failure.kind = PGCONN_ERR_LOST;
		snprintf(c->goodbye_failure.sqlstate, sizeof(c->goodbye_failure.sqlstate), "%s",
			 sqlstate ? sqlstate : "");
		pgconn_first_line(c->goodbye_failure.message, sizeof(c->goodbye_failure.message),
			   message ? message : PQresultErrorMessage(res));
		return;
	}
	log_debug("server notice: %s", message ? message : "");
}

void pgconn_start_deadline(struct pgconn *c, int64_t timeout_ms)
{
	ev_timer_stop(c->loop, &c->deadline);
	ev_timer_set(&c->deadline, (double)timeout_ms / 1000.0, 0.0);
	ev_timer_start(c->loop, &c->deadline);
}

static void connect_poll(struct pgconn *c, PostgresPollingStatusType status)
{
	for (;;) {
		switch (status) {
		case PGRES_POLLING_READING:
			watch(c, PQsocket(c->conn), EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			watch(c, PQsocket(c->conn), EV_WRITE);
			return;
		case PGRES_POLLING_OK:
			ev_timer_stop(c->loop, &c->deadline);
			c->state = PGCONN_READY;
			watch(c, PQsocket(c->conn), EV_READ);
			c->handler->connected(c);
			return;
		case PGRES_POLLING_FAILED:
			fail_from_conn(c, PGCONN_ERR_FAILED);
			return;
		case PGRES_POLLING_ACTIVE:
			status = PQconnectPoll(c->conn);
			continue;
		}
		return;
	}
}

/* Reports f from the loop, as every outcome is. */
void pgconn_fail_later(struct pgconn *c, const struct pgconn_failure *f)
{
	c->pending = *f;
	c->failure_pending = true;
	pgconn_start_deadline(c, 0);
}

void pgconn_start_libpq(struct pgconn *c, const char *const *keywords, const char *const *values)
{
	const char *kw[PGCONN_MAX_PARAMS + 12], *val[PGCONN_MAX_PARAMS + 12];

	pgconn_os_defaults(keywords, values, kw, val, sizeof(kw) / sizeof(kw[0]));
	c->conn = PQconnectStartParams(kw, val, 0);
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD || PQsocket(c->conn) < 0) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_FAILED };

		if (!c->conn)
			snprintf(f.message, sizeof(f.message), "out of memory");
		else
			pgconn_classify(PQerrorMessage(c->conn), &f);
		pgconn_fail_later(c, &f);
		return;
	}
	PQsetnonblocking(c->conn, 1);
	PQsetErrorVerbosity(c->conn, PQERRORS_VERBOSE);
	PQsetNoticeReceiver(c->conn, notice_receiver, c);
	/* libpq has started the connect: wait as if it returned POLLING_WRITING. */
	connect_poll(c, PGRES_POLLING_WRITING);
}

void pgconn_connect(struct pgconn *c, const char *const *keywords,
		    const char *const *values, int64_t timeout_ms)
{
	const char *host = pgconn_param(keywords, values, "host", "PGHOST");
	const char *hostaddr = pgconn_param(keywords, values, "hostaddr", "PGHOSTADDR");
	int r;

	pgconn_close(c);
	c->state = PGCONN_CONNECTING;
	c->timeout_ms = timeout_ms;
	c->timed_out[0] = c->dropped[0] = '\0';
	pgconn_start_deadline(c, timeout_ms);
	/* A host list is built by us, so that each address gets a deadline of its own. */
	if ((hostaddr && hostaddr[0]) || !host || (!pgconn_hosts_any_name(host) && !strchr(host, ','))) {
		pgconn_start_libpq(c, keywords, values);
		return;
	}
	r = pgconn_hosts_copy(c, keywords, values, host, pgconn_param(keywords, values, "port", "PGPORT"));
	if (r < 0) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_FAILED };

		snprintf(f.message, sizeof(f.message), "cannot prepare the connection: %s",
			 strerror(-r));
		pgconn_fail_later(c, &f);
		return;
	}
	pgconn_hosts_resolve(c);
}

static void query_failure(struct pgconn *c, const PGresult *res)
{
	struct pgconn_failure f = { .kind = PGCONN_ERR_QUERY };
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	snprintf(f.sqlstate, sizeof(f.sqlstate), "%s", state ? state : "");
	pgconn_first_line(f.message, sizeof(f.message), msg ? msg : PQresultErrorMessage(res));
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		f.kind = PGCONN_ERR_LOST;
		pgconn_fail(c, &f);
		return;
	}
	clear_results(c);
	c->state = PGCONN_READY;
	ev_timer_stop(c->loop, &c->deadline);
	watch(c, PQsocket(c->conn), EV_READ);
	c->handler->failed(c, &f);
}

/* Reads what arrived; finishes the query when libpq has every result. */
static void query_consume(struct pgconn *c)
{
	PGresult *res;

	if (!PQconsumeInput(c->conn)) {
		fail_from_conn(c, PGCONN_ERR_LOST);
		return;
	}
	while (!PQisBusy(c->conn)) {
		res = PQgetResult(c->conn);
		if (!res)
			break;
		switch (PQresultStatus(res)) {
		case PGRES_FATAL_ERROR:
		case PGRES_BAD_RESPONSE:
		case PGRES_NONFATAL_ERROR:
			if (!c->error_result)
				c->error_result = res;
			else
				PQclear(res);
			break;
		default:
			PQclear(c->last_result);
			c->last_result = res;
			break;
		}
	}
	if (PQisBusy(c->conn)) {
		watch(c, PQsocket(c->conn), EV_READ);
		return;
	}
	if (c->error_result) {
		PGresult *err = c->error_result;

		c->error_result = NULL;
		query_failure(c, err);
		PQclear(err);
		return;
	}

	PGresult *last = c->last_result;

	c->last_result = NULL;
	ev_timer_stop(c->loop, &c->deadline);
	c->state = PGCONN_READY;
	watch(c, PQsocket(c->conn), EV_READ);
	c->handler->result(c, last);
	PQclear(last);
}

static void query_flush(struct pgconn *c)
{
	int r = PQflush(c->conn);

	if (r < 0)
		fail_from_conn(c, PGCONN_ERR_LOST);
	else if (r > 0)
		watch(c, PQsocket(c->conn), EV_READ | EV_WRITE);
	else
		watch(c, PQsocket(c->conn), EV_READ);
}

/* After PQsend*: sent, or the failure reported from the loop like every other outcome. */
static int query_sent(struct pgconn *c, bool sent, int64_t timeout_ms)
{
	if (!sent) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_LOST };

		pgconn_first_line(f.message, sizeof(f.message), PQerrorMessage(c->conn));
		ev_io_stop(c->loop, &c->io);
		c->state = PGCONN_BUSY;
		c->pending = f;
		c->failure_pending = true;
		pgconn_start_deadline(c, 0);
		return 0;
	}
	c->state = PGCONN_BUSY;
	pgconn_start_deadline(c, timeout_ms);
	query_flush(c);
	return 0;
}

static int query_allowed(const struct pgconn *c)
{
	if (c->state == PGCONN_BUSY || c->state == PGCONN_CONNECTING)
		return -EBUSY;
	if (c->state != PGCONN_READY)
		return -ENOTCONN;
	return 0;
}

int pgconn_query(struct pgconn *c, const char *sql, int64_t timeout_ms)
{
	int r = query_allowed(c);

	return r < 0 ? r : query_sent(c, PQsendQuery(c->conn, sql), timeout_ms);
}

int pgconn_query_prepared(struct pgconn *c, const char *statement, int64_t timeout_ms)
{
	int r = query_allowed(c);

	if (r < 0)
		return r;
	return query_sent(c, PQsendQueryPrepared(c->conn, statement, 0, NULL, NULL, NULL, 0),
			  timeout_ms);
}

/* Readable while idle: the server closed the session, or sent a notice. */
static void idle_readable(struct pgconn *c)
{
	bool alive = PQconsumeInput(c->conn) && PQstatus(c->conn) != CONNECTION_BAD;

	/* PQconsumeInput only buffers; PQisBusy parses, which runs the notice receiver. */
	if (alive)
		PQisBusy(c->conn);
	if (c->goodbye) {
		struct pgconn_failure f = c->goodbye_failure;

		pgconn_fail(c, &f);
		return;
	}
	if (!alive) {
		fail_from_conn(c, PGCONN_ERR_LOST);
		return;
	}
	/* Drop anything unsolicited so it cannot pile up. */
	for (PGnotify *n = PQnotifies(c->conn); n; n = PQnotifies(c->conn))
		PQfreemem(n);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pgconn *c = container_of(w, struct pgconn, io);

	switch (c->state) {
	case PGCONN_CONNECTING:
		connect_poll(c, PQconnectPoll(c->conn));
		break;
	case PGCONN_READY:
		idle_readable(c);
		break;
	case PGCONN_BUSY:
		if (revents & EV_WRITE) {
			query_flush(c);
			if (c->state != PGCONN_BUSY)
				return;
		}
		if (revents & EV_READ)
			query_consume(c);
		break;
	case PGCONN_CLOSED:
		ev_io_stop(loop, w);
		break;
	}
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pgconn *c = container_of(w, struct pgconn, deadline);
	struct pgconn_failure f = { .kind = PGCONN_ERR_TIMEOUT };

	if (c->failure_pending) {
		f = c->pending;
		pgconn_fail(c, &f);
		return;
	}
	if (c->lookup) {
		f.kind = PGCONN_ERR_RESOLVE;
		snprintf(f.message, sizeof(f.message), "%.160s: no answer within %.1fs", c->lookup_name,
			 (double)c->timeout_ms / 1000.0);
		pgconn_fail(c, &f);
		return;
	}
	if (pgconn_hosts_connect_next(c))
		return;
	if (c->state == PGCONN_CONNECTING && c->timed_out[0])
		snprintf(f.message, sizeof(f.message), "no answer within %.1fs from %s",
			 (double)c->timeout_ms / 1000.0, c->timed_out);
	else
		snprintf(f.message, sizeof(f.message), "no answer within the deadline while %s",
			 c->state == PGCONN_CONNECTING ? "connecting" : "waiting for a query result");
	pgconn_fail(c, &f);
}
