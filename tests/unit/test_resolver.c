/*
 * resolver (src/common/resolver.h) and pgconn's use of it, with names from
 * /etc/hosts only ("localhost"): no query leaves the machine.  Lookups that
 * wait on a name server (cancelled, timed out) are covered by
 * tests/integration/test_dns.py, inside a network namespace.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "pgconn.h"
#include "resolver.h"
#include "util.h"

static struct ev_loop *loop;

static void test_is_name(void)
{
	CHECK(resolver_is_name("db1.example"));
	CHECK(resolver_is_name("localhost"));
	CHECK(resolver_is_name("10.0.0.1.example"));
	CHECK(!resolver_is_name(""));
	CHECK(!resolver_is_name("/var/run/postgresql"));
	CHECK(!resolver_is_name("@abstract"));
	CHECK(!resolver_is_name("10.0.0.1"));
	CHECK(!resolver_is_name("::1"));
	CHECK(!resolver_is_name("fd00::5"));

	CHECK(resolver_valid_name("db1.example.com"));
	CHECK(resolver_valid_name("db_1-a"));
	CHECK(resolver_valid_name("db.example."));
	CHECK(resolver_valid_name("1db"));
	CHECK(!resolver_valid_name(""));
	CHECK(!resolver_valid_name("192.0.2"));
	CHECK(!resolver_valid_name("192.0.2.256"));
	CHECK(!resolver_valid_name("-db"));
	CHECK(!resolver_valid_name(".db"));
	CHECK(!resolver_valid_name("db..example"));
	CHECK(!resolver_valid_name("db example"));
	CHECK(!resolver_valid_name("db:5432"));
	CHECK(!resolver_valid_name("[::1]"));

	CHECK(resolver_valid_host_list("db1"));
	CHECK(resolver_valid_host_list("/run/postgresql"));
	CHECK(resolver_valid_host_list("@abstract"));
	CHECK(resolver_valid_host_list("db1.example,10.0.0.2,::1,/tmp"));
	CHECK(!resolver_valid_host_list("db1,"));
	CHECK(!resolver_valid_host_list(",db1"));
	CHECK(!resolver_valid_host_list("db1,db 2"));
	CHECK(!resolver_valid_host_list("10.0.0"));
}

struct outcome {
	int calls;
	bool inside_create;
	struct resolver_result result;
};

static bool creating;

static void on_done(void *arg, const struct resolver_result *res)
{
	struct outcome *o = arg;

	o->calls++;
	o->inside_create |= creating;
	o->result = *res;
	ev_break(loop, EVBREAK_ALL);
}

static void stop_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	ev_break(l, EVBREAK_ALL);
}

static void run_for(double seconds)
{
	ev_timer t;

	ev_timer_init(&t, stop_cb, seconds, 0.0);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

static void test_hosts_file(void)
{
	struct outcome o = { 0 };
	struct resolver *r = NULL;
	bool loopback = false;

	creating = true;
	CHECK_INT_EQ(resolver_create(loop, "localhost", on_done, &o, &r), 0);
	creating = false;
	CHECK_INT_EQ(o.calls, 0); /* never from inside resolver_create */
	run_for(5.0);
	CHECK_INT_EQ(o.calls, 1);
	CHECK(!o.inside_create);
	CHECK_STR_EQ(o.result.error, "");
	CHECK(o.result.n >= 1);
	for (int i = 0; i < o.result.n; i++)
		loopback |= strcmp(o.result.addr[i], "127.0.0.1") == 0 ||
			    strcmp(o.result.addr[i], "::1") == 0;
	CHECK(loopback);
}

static void test_destroy_before_delivery(void)
{
	struct outcome o = { 0 };
	struct resolver *r = NULL;

	/* Answered from /etc/hosts inside create, delivered later: destroy drops it. */
	CHECK_INT_EQ(resolver_create(loop, "localhost", on_done, &o, &r), 0);
	resolver_destroy(r);
	resolver_destroy(NULL);
	run_for(0.1);
	CHECK_INT_EQ(o.calls, 0);
}

/* pgconn */

struct conn_outcome {
	struct pgconn conn;
	int connected;
	int failed;
	int reconnects_left;
	struct pgconn_failure failure;
	const char *const *kw;
	const char *const *val;
};

static void c_connected(struct pgconn *c)
{
	struct conn_outcome *o = container_of(c, struct conn_outcome, conn);

	o->connected++;
	pgconn_close(c);
	ev_break(loop, EVBREAK_ALL);
}

static void c_failed(struct pgconn *c, const struct pgconn_failure *f)
{
	struct conn_outcome *o = container_of(c, struct conn_outcome, conn);

	o->failed++;
	o->failure = *f;
	/* A failure callback may connect again at once. */
	if (o->reconnects_left-- > 0) {
		pgconn_connect(c, o->kw, o->val, 5000);
		return;
	}
	ev_break(loop, EVBREAK_ALL);
}

static void c_result(struct pgconn *c, const PGresult *res)
{
}

static const struct pgconn_handler handler = {
	.connected = c_connected,
	.result = c_result,
	.failed = c_failed,
};

/* A 127.0.0.1 port with nothing listening (bound and closed again). */
static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void test_pgconn_resolves(const char *host, int reconnects)
{
	char port[8];
	const char *kw[] = { "host", "port", "dbname", NULL };
	const char *val[] = { host, port, "postgres", NULL };
	struct conn_outcome o = { .reconnects_left = reconnects, .kw = kw, .val = val };

	snprintf(port, sizeof(port), "%d", closed_port());
	pgconn_init(&o.conn, loop, &handler);
	pgconn_connect(&o.conn, kw, val, 5000);
	CHECK_INT_EQ(o.failed, 0);
	run_for(10.0);
	CHECK_INT_EQ(o.connected, 0);
	CHECK_INT_EQ(o.failed, reconnects + 1);
	/* Resolved, then refused by 127.0.0.1: not a resolution failure. */
	CHECK_INT_EQ(o.failure.kind, PGCONN_ERR_REFUSED);
	if (o.failure.kind != PGCONN_ERR_REFUSED)
		printf("  %s: %s\n", pgconn_error_str(o.failure.kind), o.failure.message);
	CHECK(o.conn.state == PGCONN_CLOSED);
	pgconn_close(&o.conn);
}

/* Entries beyond PGCONN_MAX_HOSTS addresses are not tried, and the failure says so. */
static void test_pgconn_names_dropped_entries(void)
{
	char port[8];
	const char *host = "localhost,localhost,localhost,localhost,localhost,localhost,"
			   "localhost,localhost,127.0.0.2";
	const char *kw[] = { "host", "port", "dbname", NULL };
	const char *val[] = { host, port, "postgres", NULL };
	struct conn_outcome o = { .kw = kw, .val = val };

	snprintf(port, sizeof(port), "%d", closed_port());
	pgconn_init(&o.conn, loop, &handler);
	pgconn_connect(&o.conn, kw, val, 5000);
	run_for(10.0);
	CHECK_INT_EQ(o.failed, 1);
	CHECK_INT_EQ(o.failure.kind, PGCONN_ERR_REFUSED);
	CHECK(strstr(o.failure.message, "not tried (over 8 addresses): ") != NULL);
	CHECK(strstr(o.failure.message, "127.0.0.2") != NULL);
	if (!strstr(o.failure.message, "127.0.0.2"))
		printf("  %s\n", o.failure.message);
	CHECK(strstr(pgconn_dropped(&o.conn), "127.0.0.2") != NULL);
	pgconn_close(&o.conn);
}

static void test_pgconn_close_after_lookup(void)
{
	const char *kw[] = { "host", "port", NULL };
	const char *val[] = { "localhost", "1", NULL };
	struct conn_outcome o = { 0 };

	pgconn_init(&o.conn, loop, &handler);
	pgconn_connect(&o.conn, kw, val, 5000);
	pgconn_close(&o.conn);
	run_for(0.1);
	CHECK_INT_EQ(o.failed + o.connected, 0);
}

int main(void)
{
	loop = ev_default_loop(0);
	test_is_name();
	test_hosts_file();
	test_destroy_before_delivery();
	test_pgconn_resolves("localhost", 0);
	test_pgconn_resolves("localhost", 2);
	test_pgconn_resolves("/nonexistent-pgtrack-dir,localhost", 0);
	test_pgconn_names_dropped_entries();
	test_pgconn_close_after_lookup();
	ev_loop_destroy(loop);
	CHECK_DONE();
}
