/*
 * httpd's limits (src/common/httpd.h): the connection cap, the per-IP cap,
 * the idle timeout and the whole-request deadline, the header memory limit,
 * and 2,000 requests in a row, each while a "probe" timer on the same loop
 * is measured: a slow or hostile client must never hold it up.
 *
 * How late the probe runs is printed; what is asserted is only a generous
 * bound that catches a blocked loop (a hang, a blocking call), not speed:
 * on two busy cores a 20 ms tick is routinely 70 ms late.  Speed is the
 * benchmarks' business (bench/).
 */
#include <sys/resource.h>

#include <valgrind/valgrind.h>

#include "check.h"
#include "httpd.h"
#include "rawhttp.h"

/* The probe ticks every TICK seconds; a gap over MAX_GAP means the loop was held. */
#define TICK 0.02
#define MAX_GAP 1.0

static struct ev_loop *loop;

static double slack(double seconds)
{
	return RUNNING_ON_VALGRIND ? seconds * 20 : seconds;
}

static int on_ok(void *arg, const char *path, const struct httpd_request *req,
		 struct httpd_reply *reply)
{
	return httpd_reply_text(reply, 200, "text/plain", "ok\n");
}

/* More than a loopback socket's largest send buffer (tcp_wmem: 4 MiB). */
#define BIG (16 * 1024 * 1024)

static int on_big(void *arg, const char *path, const struct httpd_request *req,
		  struct httpd_reply *reply)
{
	/* calloc: fresh zero pages, no 16 MiB memset on the loop. */
	reply->body = calloc(1, BIG);
	if (!reply->body)
		return -ENOMEM;
	reply->len = BIG;
	return 0;
}

static const struct httpd_route routes[] = {
	{ .path = "/big", .handler = on_big },
	{ .path = "/", .prefix = true, .handler = on_ok },
};

static const char *const v4[] = { "127.0.0.1:0" };

#define GET "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
#define HALF "GET / HTTP/1.1\r\nHost: t\r\n"

static struct httpd *start(struct httpd_config *cfg)
{
	struct httpd *h = NULL;
	char err[256] = "";

	cfg->listen = v4;
	cfg->n_listen = 1;
	cfg->routes = routes;
	cfg->n_routes = ARRAY_SIZE(routes);
	if (httpd_create(loop, cfg, &h, err, sizeof(err)) < 0) {
		printf("httpd_create: %s\n", err);
		exit(1);
	}
	return h;
}

static void on_stop(struct ev_loop *l, ev_timer *w, int revents)
{
	ev_break(l, EVBREAK_ALL);
}

/* Runs the loop for a while, or until the server has `want` connections. */
static void run_until(struct httpd *h, unsigned int want, double seconds)
{
	double end = monotime_now() + seconds;
	ev_timer t;

	while (monotime_now() < end && (!h || httpd_connections(h) != want)) {
		ev_timer_init(&t, on_stop, 0.01, 0.);
		ev_timer_start(loop, &t);
		ev_run(loop, 0);
		ev_timer_stop(loop, &t);
	}
}

static void check_ticker(const struct ticker *t, const char *what)
{
	printf("%s: probe ticked %d times, largest gap %.1f ms\n", what, t->ticks,
	       t->max_gap * 1000);
	CHECK(t->max_gap < slack(MAX_GAP));
}

/* max_connections 3: a fourth client is closed at once, unanswered. */
static void test_connection_cap(void)
{
	struct httpd_config cfg = { .max_connections = 3 };
	struct httpd *h = start(&cfg);
	static struct rawclient held[3], c;
	int port = httpd_port(h, 0);

	for (int i = 0; i < 3; i++) {
		rawclient_open(&held[i], loop, AF_INET, port);
		CHECK(rawclient_send(&held[i], HALF));
	}
	run_until(h, 3, slack(1.0));
	CHECK_INT_EQ(httpd_connections(h), 3);
	CHECK(rawclient_exchange(&c, loop, AF_INET, port, GET, slack(1.0)));
	CHECK_INT_EQ(c.len, 0);
	CHECK_INT_EQ(httpd_connections(h), 3);

	/* A held client finishes its request: its slot frees, the next is served. */
	CHECK(rawclient_send(&held[0], "Connection: close\r\n\r\n"));
	CHECK(rawclient_wait(&held[0], slack(1.0)));
	CHECK_INT_EQ(rawclient_status(&held[0]), 200);
	rawclient_close(&held[0]);
	run_until(h, 2, slack(1.0));
	CHECK(rawclient_exchange(&c, loop, AF_INET, port, GET, slack(1.0)));
	CHECK_INT_EQ(rawclient_status(&c), 200);
	for (int i = 1; i < 3; i++)
		rawclient_close(&held[i]);
	run_until(h, 0, slack(1.0));
	CHECK_INT_EQ(httpd_connections(h), 0);
	httpd_destroy(h);
}

static void test_per_ip_cap(void)
{
	struct httpd_config cfg = { .max_connections = 10, .max_per_ip = 2 };
	struct httpd *h = start(&cfg);
	static struct rawclient held[2], c;
	int port = httpd_port(h, 0);

	for (int i = 0; i < 2; i++) {
		rawclient_open(&held[i], loop, AF_INET, port);
		CHECK(rawclient_send(&held[i], HALF));
	}
	run_until(h, 2, slack(1.0));
	CHECK_INT_EQ(httpd_connections(h), 2);
	CHECK(rawclient_exchange(&c, loop, AF_INET, port, GET, slack(1.0)));
	CHECK_INT_EQ(c.len, 0);
	for (int i = 0; i < 2; i++)
		rawclient_close(&held[i]);
	run_until(h, 0, slack(1.0));
	CHECK(rawclient_exchange(&c, loop, AF_INET, port, GET, slack(1.0)));
	CHECK_INT_EQ(rawclient_status(&c), 200);
	httpd_destroy(h);
}

/*
 * Half a request, then nothing: dropped at the 1 s timeout.  Meanwhile the
 * probe keeps its schedule and another client is served.
 */
static void test_slow_client(void)
{
	struct httpd_config cfg = { .timeout_s = 1 };
	struct httpd *h = start(&cfg);
	static struct rawclient slow, c;
	struct ticker t;
	double t0;

	ticker_start(&t, loop, TICK);
	rawclient_open(&slow, loop, AF_INET, httpd_port(h, 0));
	t0 = monotime_now();
	CHECK(rawclient_send(&slow, "GET / HTTP/1.1\r\nHo"));
	run_until(NULL, 0, 0.3);
	CHECK(rawclient_exchange(&c, loop, AF_INET, httpd_port(h, 0), GET, slack(1.0)));
	CHECK_INT_EQ(rawclient_status(&c), 200);
	CHECK(rawclient_wait(&slow, slack(3.0)));
	if (slow.closed)
		printf("slow client dropped after %.2f s\n", slow.closed_at - t0);
	CHECK(slow.closed_at - t0 > 0.9);
	CHECK(slow.closed_at - t0 < 1.0 + slack(1.0));
	CHECK_INT_EQ(slow.len, 0);
	rawclient_close(&slow);
	ticker_stop(&t, loop);
	check_ticker(&t, "slow client");
	/* 50 when on time; a few mean the loop kept running. */
	CHECK(t.ticks >= 5);
	httpd_destroy(h);
}

struct trickle {
	ev_timer w;
	struct rawclient *c;
	int sent;
};

static void on_trickle(struct ev_loop *l, ev_timer *w, int revents)
{
	struct trickle *tr = container_of(w, struct trickle, w);

	if (!tr->c->closed && rawclient_send(tr->c, "a"))
		tr->sent++;
}

/*
 * A slowloris client: it sends one header byte every 0.25 s, well within the
 * 1 s idle timeout, and never ends its headers.  The whole request has
 * timeout_s to arrive: it is dropped after about 1 s, not kept for ever.
 */
static void test_trickling_client(void)
{
	struct httpd_config cfg = { .timeout_s = 1 };
	struct httpd *h = start(&cfg);
	static struct rawclient slow;
	struct trickle tr = { .c = &slow };
	double t0;

	rawclient_open(&slow, loop, AF_INET, httpd_port(h, 0));
	t0 = monotime_now();
	CHECK(rawclient_send(&slow, "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: "));
	ev_timer_init(&tr.w, on_trickle, 0.25, 0.25);
	ev_timer_start(loop, &tr.w);
	rawclient_wait(&slow, slack(4.0));
	ev_timer_stop(loop, &tr.w);
	printf("trickling client: %d bytes sent, %s after %.2f s\n", tr.sent,
	       slow.closed ? "dropped" : "still connected", monotime_now() - t0);
	CHECK(slow.closed);
	CHECK(slow.closed_at - t0 > 0.9);
	CHECK(slow.closed_at - t0 < 1.0 + slack(1.0));
	rawclient_close(&slow);
	run_until(h, 0, slack(1.0));
	CHECK_INT_EQ(httpd_connections(h), 0);
	httpd_destroy(h);
}

/* A header block larger than the memory limit is refused (431), as is a long URI (414). */
static void test_oversized(void)
{
	struct httpd_config cfg = { .memory_limit = 8192 };
	struct httpd *h = start(&cfg);
	static struct rawclient c;
	static char req[20000];
	char junk[16384];
	int port = httpd_port(h, 0);

	memset(junk, 'a', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\nX-Junk: %s\r\n\r\n", junk);
	CHECK(rawclient_exchange(&c, loop, AF_INET, port, req, slack(2.0)));
	CHECK_INT_EQ(rawclient_status(&c), 431);
	snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n", junk);
	CHECK(rawclient_exchange(&c, loop, AF_INET, port, req, slack(2.0)));
	CHECK_INT_EQ(rawclient_status(&c), 414);
	/* Many small headers add up the same way. */
	req[0] = '\0';
	strcat(req, "GET / HTTP/1.1\r\nHost: t\r\n");
	for (int i = 0; i < 800; i++)
		strcat(req, "X-A: 0123456789\r\n");
	strcat(req, "\r\n");
	CHECK(rawclient_exchange(&c, loop, AF_INET, port, req, slack(2.0)));
	CHECK_INT_EQ(rawclient_status(&c), 431);
	CHECK(rawclient_exchange(&c, loop, AF_INET, port, GET, slack(2.0)));
	CHECK_INT_EQ(rawclient_status(&c), 200);
	httpd_destroy(h);
}

/*
 * 10,000 requests one after another (the flood; bounded to 30 s,
 * which valgrind may reach first: at least 1,000 then), every one
 * answered, the probe on schedule.
 */
static void test_many_requests(void)
{
	struct httpd_config cfg = { 0 };
	struct httpd *h = start(&cfg);
	static struct rawclient c;
	struct ticker t;
	int ok = 0, n = 0;
	double t0 = monotime_now();

	ticker_start(&t, loop, TICK);
	for (; n < 10000 && monotime_now() - t0 < 30; n++) {
		if (rawclient_exchange(&c, loop, AF_INET, httpd_port(h, 0), GET, slack(1.0)) &&
		    rawclient_status(&c) == 200)
			ok++;
	}
	ticker_stop(&t, loop);
	printf("%d of %d requests answered in %.2f s\n", ok, n, monotime_now() - t0);
	CHECK_INT_EQ(ok, n);
	CHECK(n >= 1000);
	check_ticker(&t, "the requests");
	run_until(h, 0, slack(1.0));
	CHECK_INT_EQ(httpd_connections(h), 0);
	httpd_destroy(h);
}

/* 30 clients that connect and say nothing, at once: the probe is not late. */
static void test_idle_flood(void)
{
	struct httpd_config cfg = { .timeout_s = 1, .max_connections = 20 };
	struct httpd *h = start(&cfg);
	static struct rawclient idle[30];
	struct ticker t;

	ticker_start(&t, loop, TICK);
	for (int i = 0; i < 30; i++)
		rawclient_open(&idle[i], loop, AF_INET, httpd_port(h, 0));
	run_until(h, 20, slack(1.0));
	CHECK_INT_EQ(httpd_connections(h), 20);
	run_until(h, 0, slack(2.5));
	CHECK_INT_EQ(httpd_connections(h), 0);
	for (int i = 0; i < 30; i++)
		rawclient_close(&idle[i]);
	ticker_stop(&t, loop);
	check_ticker(&t, "idle flood");
	httpd_destroy(h);
	CHECK_INT_EQ(ev_run(loop, EVRUN_NOWAIT), 0);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/*
 * A client that asks for 16 MiB and stops reading: the server waits for the
 * socket to drain without spinning (MHD_get_timeout says "no deadline" or a
 * real one, never 0 for ever), and the probe keeps its schedule.
 */
static void test_stalled_reader(void)
{
	struct httpd_config cfg = { .timeout_s = 5 };
	struct httpd *h = start(&cfg);
	static struct rawclient c;
	struct ticker t;
	double cpu;

	ticker_start(&t, loop, TICK);
	rawclient_open_rcvbuf(&c, loop, AF_INET, httpd_port(h, 0), 4096);
	CHECK(rawclient_send(&c, "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
	run_until(NULL, 0, 0.2);
	cpu = cpu_seconds();
	run_until(NULL, 0, 0.5);
	cpu = cpu_seconds() - cpu;
	printf("stalled reader: %.3f s of CPU in 0.5 s\n", cpu);
	CHECK(cpu < slack(0.1));
	CHECK_INT_EQ(httpd_connections(h), 1);
	/* Now it reads: all of it arrives. */
	CHECK(rawclient_wait(&c, slack(5.0)));
	CHECK(rawclient_body(&c) != NULL);
	if (rawclient_body(&c))
		CHECK_INT_EQ(c.total - (size_t)(rawclient_body(&c) - c.buf), BIG);
	rawclient_close(&c);
	ticker_stop(&t, loop);
	check_ticker(&t, "stalled reader");
	httpd_destroy(h);
}

int main(void)
{
	loop = ev_default_loop(EVFLAG_AUTO);
	test_connection_cap();
	test_per_ip_cap();
	test_slow_client();
	test_trickling_client();
	test_oversized();
	test_many_requests();
	test_idle_flood();
	test_stalled_reader();
	CHECK_DONE();
}
