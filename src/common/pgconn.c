#include "pgconn.h"

#include <ctype.h>
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

static void first_line(char *dst, size_t size, const char *src)
{
	size_t n = strcspn(src, "\n");

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool is_sqlstate_at(const char *s)
{
	for (int i = 0; i < 5; i++)
		if (!isdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]))
			return false;
	return s[5] == ':';
}

static enum pgconn_error kind_of_sqlstate(const char *sqlstate)
{
	if (strcmp(sqlstate, "57P03") == 0)
		return PGCONN_ERR_STARTING;
	if (strcmp(sqlstate, "53300") == 0 || strcmp(sqlstate, "53400") == 0)
		return PGCONN_ERR_TOO_MANY;
	if (strcmp(sqlstate, "28P01") == 0 || strcmp(sqlstate, "28000") == 0)
		return PGCONN_ERR_AUTH;
	return PGCONN_ERR_FAILED;
}

void pgconn_classify(const char *message, struct pgconn_failure *f)
{
	const char *server = NULL;

	f->sqlstate[0] = '\0';
	/* With PQERRORS_VERBOSE a server error reads "SEVERITY:  XXXXX: text". */
	for (const char *p = strstr(message, ":  "); p; p = strstr(p + 1, ":  ")) {
		if (is_sqlstate_at(p + 3)) {
			memcpy(f->sqlstate, p + 3, 5);
			f->sqlstate[5] = '\0';
			server = p + 9;
			while (*server == ' ')
				server++;
			break;
		}
	}
	if (f->sqlstate[0]) {
		f->kind = kind_of_sqlstate(f->sqlstate);
		first_line(f->message, sizeof(f->message), server);
		return;
	}
	if (strstr(message, "Connection refused") || strstr(message, "No such file or directory"))
		f->kind = PGCONN_ERR_REFUSED;
	else if (strstr(message, "no password supplied") || strstr(message, "password authentication"))
		f->kind = PGCONN_ERR_AUTH;
	else
		f->kind = PGCONN_ERR_FAILED;
	first_line(f->message, sizeof(f->message), message);
}

const char *pgconn_error_str(enum pgconn_error kind)
{
	switch (kind) {
	case PGCONN_ERR_REFUSED:
		return "connection refused";
	case PGCONN_ERR_STARTING:
		return "server starting up or shutting down";
	case PGCONN_ERR_TOO_MANY:
		return "too many connections";
	case PGCONN_ERR_AUTH:
		return "authentication failed";
	case PGCONN_ERR_TIMEOUT:
		return "timed out";
	case PGCONN_ERR_QUERY:
		return "query failed";
	case PGCONN_ERR_LOST:
		return "connection lost";
	case PGCONN_ERR_RESOLVE:
		return "name resolution failed";
	case PGCONN_ERR_FAILED:
		break;
	}
	return "connection failed";
}

/* Appends "; what" to a failure message, as much as fits. */
static void append_note(struct pgconn_failure *f, const char *what)
{
	size_t len = strlen(f->message);

	if (what[0] && len + 3 < sizeof(f->message))
		snprintf(f->message + len, sizeof(f->message) - len, "%s%s", len ? "; " : "", what);
}

/* Closes the connection and reports f, with the host entries that were left out. */
static void fail(struct pgconn *c, const struct pgconn_failure *f)
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
		first_line(f.message, sizeof(f.message), msg);
		if (!f.message[0])
			snprintf(f.message, sizeof(f.message), "server closed the connection");
	}
	fail(c, &f);
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
		first_line(c->goodbye_failure.message, sizeof(c->goodbye_failure.message),
			   message ? message : PQresultErrorMessage(res));
		return;
	}
	log_debug("server notice: %s", message ? message : "");
}

static void start_deadline(struct pgconn *c, int64_t timeout_ms)
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
static void fail_later(struct pgconn *c, const struct pgconn_failure *f)
{
	c->pending = *f;
	c->failure_pending = true;
	start_deadline(c, 0);
}

static void start_libpq(struct pgconn *c, const char *const *keywords, const char *const *values)
{
	c->conn = PQconnectStartParams(keywords, values, 0);
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD || PQsocket(c->conn) < 0) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_FAILED };

		if (!c->conn)
			snprintf(f.message, sizeof(f.message), "out of memory");
		else
			pgconn_classify(PQerrorMessage(c->conn), &f);
		fail_later(c, &f);
		return;
	}
	PQsetnonblocking(c->conn, 1);
	PQsetErrorVerbosity(c->conn, PQERRORS_VERBOSE);
	PQsetNoticeReceiver(c->conn, notice_receiver, c);
	/* libpq has started the connect: wait as if it returned POLLING_WRITING. */
	connect_poll(c, PGRES_POLLING_WRITING);
}

/* A parameter as libpq sees it: the caller's non-empty value, else the environment's. */
static const char *param(const char *const *keywords, const char *const *values,
			 const char *key, const char *env)
{
	for (int i = 0; keywords[i]; i++)
		if (strcmp(keywords[i], key) == 0 && values[i] && values[i][0])
			return values[i];
	return getenv(env);
}

static int count_entries(const char *list)
{
	int n = 1;

	for (const char *s = strchr(list, ','); s; s = strchr(s + 1, ','))
		n++;
	return n;
}

/* Copies entry i of a comma-separated list into buf; false if it does not fit. */
static bool nth_entry(const char *list, int i, char *buf, size_t size)
{
	size_t len;

	while (i-- > 0) {
		list = strchr(list, ',');
		if (!list)
			return false;
		list++;
	}
	len = strcspn(list, ",");
	if (len >= size)
		return false;
	memcpy(buf, list, len);
	buf[len] = '\0';
	return true;
}

/* Whether a host list has an entry to look up (one too long for a path or an address has). */
static bool any_name(const char *list)
{
	char entry[256];
	int n = count_entries(list);

	for (int i = 0; i < n; i++)
		if (!nth_entry(list, i, entry, sizeof(entry)) || resolver_is_name(entry))
			return true;
	return false;
}

/* The port list is expanded with the hosts when it has one entry per host. */
static bool port_is_list(const struct pgconn *c)
{
	return c->port && strchr(c->port, ',') && count_entries(c->port) == count_entries(c->host);
}

/* Adds a host entry for libpq; false when the lists are full. */
static bool add_host(struct pgconn *c, const char *host, const char *hostaddr, const char *port)
{
	size_t need_host = strlen(c->host_list) + strlen(host) + 2;
	size_t need_addr = strlen(c->hostaddr_list) + strlen(hostaddr) + 2;
	size_t need_port = strlen(c->port_list) + strlen(port) + 2;

	if (c->n_hosts == PGCONN_MAX_HOSTS || need_host > sizeof(c->host_list) ||
	    need_addr > sizeof(c->hostaddr_list) || need_port > sizeof(c->port_list))
		return false;
	if (c->n_hosts) {
		strcat(c->host_list, ",");
		strcat(c->hostaddr_list, ",");
		strcat(c->port_list, ",");
	}
	strcat(c->host_list, host);
	strcat(c->hostaddr_list, hostaddr);
	strcat(c->port_list, port);
	c->n_hosts++;
	return true;
}

/* Entries first.. of a built list, into dst (large enough: a tail of list). */
static void list_tail(char *dst, size_t size, const char *list, int first)
{
	const char *s = list;

	for (int i = 0; i < first && s; i++) {
		s = strchr(s, ',');
		if (s)
			s++;
	}
	snprintf(dst, size, "%s", s ? s : "");
}

/*
 * Every entry is resolved: hands libpq the names as host and the addresses
 * as hostaddr, from entry c->first on, with a deadline for the first of them.
 */
static void connect_resolved(struct pgconn *c)
{
	bool have_host = false, have_hostaddr = false, have_port = false;
	bool ports = port_is_list(c);
	int n = c->n_kw;

	list_tail(c->run_host, sizeof(c->run_host), c->host_list, c->first);
	list_tail(c->run_hostaddr, sizeof(c->run_hostaddr), c->hostaddr_list, c->first);
	list_tail(c->run_port, sizeof(c->run_port), c->port_list, c->first);
	for (int i = 0; i < n; i++) {
		if (strcmp(c->kw[i], "host") == 0) {
			c->val[i] = c->run_host;
			have_host = true;
		} else if (strcmp(c->kw[i], "hostaddr") == 0) {
			c->val[i] = c->run_hostaddr;
			have_hostaddr = true;
		} else if (strcmp(c->kw[i], "port") == 0 && ports) {
			c->val[i] = c->run_port;
			have_port = true;
		}
	}
	if (!have_host) {
		c->kw[n] = "host";
		c->val[n++] = c->run_host;
	}
	if (!have_hostaddr) {
		c->kw[n] = "hostaddr";
		c->val[n++] = c->run_hostaddr;
	}
	if (ports && !have_port) {
		c->kw[n] = "port";
		c->val[n++] = c->run_port;
	}
	c->kw[n] = NULL;
	c->val[n] = NULL;
	start_deadline(c, c->timeout_ms);
	start_libpq(c, c->kw, c->val);
}

/*
 * The entry libpq is on, by its host, address and port; -1 if none of
 * first.. matches (libpq has not picked one yet).
 */
static int current_entry(struct pgconn *c)
{
	const char *host = PQhost(c->conn), *addr = PQhostaddr(c->conn), *port = PQport(c->conn);
	char h[256], a[RESOLVER_ADDR_SIZE + 1], p[16];
	bool ports = port_is_list(c);

	if (!host || !addr || !port)
		return -1;
	for (int i = c->first; i < c->n_hosts; i++) {
		if (!nth_entry(c->host_list, i, h, sizeof(h)) ||
		    !nth_entry(c->hostaddr_list, i, a, sizeof(a)) ||
		    (ports && !nth_entry(c->port_list, i, p, sizeof(p))))
			continue;
		if (strcmp(h, host) == 0 && strcmp(a, addr) == 0 && (!ports || strcmp(p, port) == 0))
			return i;
	}
	return -1;
}

/* Adds entry i to the list of entries that timed out: "name (address)". */
static void note_timed_out(struct pgconn *c, int i)
{
	char h[256], a[RESOLVER_ADDR_SIZE + 1];
	size_t len = strlen(c->timed_out);

	if (!nth_entry(c->host_list, i, h, sizeof(h)) || !nth_entry(c->hostaddr_list, i, a, sizeof(a)))
		return;
	if (a[0] && strcmp(a, h) != 0)
		snprintf(c->timed_out + len, sizeof(c->timed_out) - len, "%s%.60s (%s)",
			 len ? ", " : "", h, a);
	else
		snprintf(c->timed_out + len, sizeof(c->timed_out) - len, "%s%.100s",
			 len ? ", " : "", h);
}

/*
 * The deadline passed while libpq was connecting: if it is on an address
 * that is not the last, starts again on the ones after it.  True if so.
 */
static bool connect_next(struct pgconn *c)
{
	int i;

	if (!c->copy || !c->conn || c->lookup || c->state != PGCONN_CONNECTING)
		return false;
	i = current_entry(c);
	if (i < 0)
		i = c->first;
	note_timed_out(c, i);
	if (i + 1 >= c->n_hosts)
		return false;
	ev_io_stop(c->loop, &c->io);
	c->io_fd = -1;
	c->io_events = 0;
	PQfinish(c->conn);
	c->conn = NULL;
	c->first = i + 1;
	connect_resolved(c);
	return true;
}

static void on_resolved(void *arg, const struct resolver_result *res);

/* Notes a host entry (or some of its addresses) left out: the lists are full. */
static void note_dropped(struct pgconn *c, const char *name, int addresses)
{
	size_t len = strlen(c->dropped);

	if (addresses)
		snprintf(c->dropped + len, sizeof(c->dropped) - len, "%s%.40s (%d address%s)",
			 len ? ", " : "", name, addresses, addresses == 1 ? "" : "es");
	else
		snprintf(c->dropped + len, sizeof(c->dropped) - len, "%s%.40s", len ? ", " : "", name);
}

/* Walks the host entries from c->index on: names are looked up, the others kept. */
static void resolve_next(struct pgconn *c)
{
	int n = count_entries(c->host);
	char port[16] = "";

	for (; c->index < n; c->index++) {
		const char *name = c->lookup_name;

		if (!nth_entry(c->host, c->index, c->lookup_name, sizeof(c->lookup_name))) {
			struct pgconn_failure f = { .kind = PGCONN_ERR_RESOLVE };

			snprintf(f.message, sizeof(f.message), "host name %.40s... too long", c->host);
			fail_later(c, &f);
			return;
		}
		if (c->n_hosts == PGCONN_MAX_HOSTS) {
			note_dropped(c, name, 0);
			continue;
		}
		if (resolver_is_name(name)) {
			int r = resolver_create(c->loop, name, on_resolved, c, &c->lookup);

			if (r < 0) {
				struct pgconn_failure f = { .kind = PGCONN_ERR_RESOLVE };

				snprintf(f.message, sizeof(f.message), "%.160s: cannot start a lookup: %s",
					 name, strerror(-r));
				fail_later(c, &f);
			}
			return;
		}
		if (port_is_list(c))
			nth_entry(c->port, c->index, port, sizeof(port));
		/* A numeric host is its own hostaddr; a socket directory has none. */
		if (!add_host(c, name, name[0] == '/' || name[0] == '@' ? "" : name, port))
			note_dropped(c, name, 0);
	}
	connect_resolved(c);
}

static void on_resolved(void *arg, const struct resolver_result *res)
{
	struct pgconn *c = arg;
	char port[16] = "";

	c->lookup = NULL;
	if (res->error[0]) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_RESOLVE };

		snprintf(f.message, sizeof(f.message), "%.160s: %.80s", c->lookup_name, res->error);
		fail(c, &f);
		return;
	}
	if (port_is_list(c))
		nth_entry(c->port, c->index, port, sizeof(port));
	for (int i = 0; i < res->n; i++) {
		if (!add_host(c, c->lookup_name, res->addr[i], port)) {
			note_dropped(c, c->lookup_name, res->n - i);
			break;
		}
	}
	c->index++;
	resolve_next(c);
}

/*
 * Copies the caller's parameters (they may change before the lookups
 * end: a reload) and the host and port lists libpq would use.
 */
static int copy_params(struct pgconn *c, const char *const *keywords, const char *const *values,
		       const char *host, const char *port)
{
	size_t size = strlen(host) + 1 + (port ? strlen(port) + 1 : 0);
	char *p;
	int n = 0;

	for (int i = 0; keywords[i]; i++) {
		if (!values[i])
			continue;
		if (++n > PGCONN_MAX_PARAMS)
			return -E2BIG;
		size += strlen(keywords[i]) + strlen(values[i]) + 2;
	}
	p = c->copy = malloc(size);
	if (!p)
		return -ENOMEM;
	c->n_kw = 0;
	for (int i = 0; keywords[i]; i++) {
		if (!values[i])
			continue;
		c->kw[c->n_kw] = strcpy(p, keywords[i]);
		p += strlen(p) + 1;
		c->val[c->n_kw++] = strcpy(p, values[i]);
		p += strlen(p) + 1;
	}
	c->host = strcpy(p, host);
	p += strlen(p) + 1;
	c->port = port ? strcpy(p, port) : NULL;
	c->host_list[0] = c->hostaddr_list[0] = c->port_list[0] = '\0';
	c->n_hosts = 0;
	c->index = 0;
	c->first = 0;
	return 0;
}

void pgconn_connect(struct pgconn *c, const char *const *keywords,
		    const char *const *values, int64_t timeout_ms)
{
	const char *host = param(keywords, values, "host", "PGHOST");
	const char *hostaddr = param(keywords, values, "hostaddr", "PGHOSTADDR");
	int r;

	pgconn_close(c);
	c->state = PGCONN_CONNECTING;
	c->timeout_ms = timeout_ms;
	c->timed_out[0] = c->dropped[0] = '\0';
	start_deadline(c, timeout_ms);
	/* A host list is built by us, so that each address gets a deadline of its own. */
	if ((hostaddr && hostaddr[0]) || !host || (!any_name(host) && !strchr(host, ','))) {
		start_libpq(c, keywords, values);
		return;
	}
	r = copy_params(c, keywords, values, host, param(keywords, values, "port", "PGPORT"));
	if (r < 0) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_FAILED };

		snprintf(f.message, sizeof(f.message), "cannot prepare the connection: %s",
			 strerror(-r));
		fail_later(c, &f);
		return;
	}
	resolve_next(c);
}

static void query_failure(struct pgconn *c, const PGresult *res)
{
	struct pgconn_failure f = { .kind = PGCONN_ERR_QUERY };
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	snprintf(f.sqlstate, sizeof(f.sqlstate), "%s", state ? state : "");
	first_line(f.message, sizeof(f.message), msg ? msg : PQresultErrorMessage(res));
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		f.kind = PGCONN_ERR_LOST;
		fail(c, &f);
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

int pgconn_query(struct pgconn *c, const char *sql, int64_t timeout_ms)
{
	if (c->state == PGCONN_BUSY || c->state == PGCONN_CONNECTING)
		return -EBUSY;
	if (c->state != PGCONN_READY)
		return -ENOTCONN;
	if (!PQsendQuery(c->conn, sql)) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_LOST };

		first_line(f.message, sizeof(f.message), PQerrorMessage(c->conn));
		/* Reported from the loop, like every other outcome. */
		ev_io_stop(c->loop, &c->io);
		c->state = PGCONN_BUSY;
		c->pending = f;
		c->failure_pending = true;
		start_deadline(c, 0);
		return 0;
	}
	c->state = PGCONN_BUSY;
	start_deadline(c, timeout_ms);
	query_flush(c);
	return 0;
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

		fail(c, &f);
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
		fail(c, &f);
		return;
	}
	if (c->lookup) {
		f.kind = PGCONN_ERR_RESOLVE;
		snprintf(f.message, sizeof(f.message), "%.160s: no answer within %.1fs", c->lookup_name,
			 (double)c->timeout_ms / 1000.0);
		fail(c, &f);
		return;
	}
	if (connect_next(c))
		return;
	if (c->state == PGCONN_CONNECTING && c->timed_out[0])
		snprintf(f.message, sizeof(f.message), "no answer within %.1fs from %s",
			 (double)c->timeout_ms / 1000.0, c->timed_out);
	else
		snprintf(f.message, sizeof(f.message), "no answer within the deadline while %s",
			 c->state == PGCONN_CONNECTING ? "connecting" : "waiting for a query result");
	fail(c, &f);
}
