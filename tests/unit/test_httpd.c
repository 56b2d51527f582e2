/*
 * httpd (src/common/httpd.h): a listener on 127.0.0.1 and ::1, ephemeral
 * ports, talked to with raw sockets from the same loop (rawhttp.h).
 * The property the listener exists for: a slow or hostile client never
 * delays another timer on the loop (a probe); the ticker measures it.
 */
#include <dirent.h>

#include <valgrind/valgrind.h>

#include "check.h"
#include "httpd.h"
#include "rawhttp.h"

static struct ev_loop *loop;
static unsigned int health_status = 503;

/* Lateness a probe timer may show; valgrind runs everything ~20x slower. */
static double slack(double seconds)
{
	return RUNNING_ON_VALGRIND ? seconds * 20 : seconds;
}

static int on_root(void *arg, const char *path, const struct httpd_request *req,
		   struct httpd_reply *reply)
{
	return httpd_reply_text(reply, 200, "text/plain", "root\n");
}

static int on_health(void *arg, const char *path, const struct httpd_request *req,
		     struct httpd_reply *reply)
{
	return httpd_reply_text(reply, health_status, "text/plain", "health\n");
}

static int on_echo(void *arg, const char *path, const struct httpd_request *req,
		   struct httpd_reply *reply)
{
	const char *lag = httpd_arg(req, "lag");
	const char *state = httpd_arg(req, "replication_state");
	char text[512];

	snprintf(text, sizeof(text), "path=%s lag=%s state=%s\n", path, lag ? lag : "(none)",
		 state ? state : "(none)");
	return httpd_reply_text(reply, 200, "text/plain", text);
}

static int on_fail(void *arg, const char *path, const struct httpd_request *req,
		   struct httpd_reply *reply)
{
	httpd_reply_text(reply, 200, "text/plain", "half-built body");
	return -ENOMEM;
}

static int on_big(void *arg, const char *path, const struct httpd_request *req,
		  struct httpd_reply *reply)
{
	size_t n = 100 * 1024;

	reply->body = malloc(n);
	if (!reply->body)
		return -ENOMEM;
	memset(reply->body, 'x', n);
	reply->len = n;
	reply->content_type = "application/octet-stream";
	return 0;
}

static const struct httpd_route routes[] = {
	{ .path = "/", .handler = on_root },
	{ .path = "/health", .handler = on_health },
	{ .path = "/echo", .handler = on_echo },
	{ .path = "/track/", .prefix = true, .handler = on_echo },
	{ .path = "/fail", .handler = on_fail },
	{ .path = "/big", .handler = on_big },
};

static const char *const both[] = { "127.0.0.1:0", "[::1]:0" };

static struct httpd *start(struct httpd_config *cfg)
{
	struct httpd *h = NULL;
	char err[256] = "";
	int r;

	if (!cfg->listen) {
		cfg->listen = both;
		cfg->n_listen = ARRAY_SIZE(both);
	}
	cfg->routes = routes;
	cfg->n_routes = ARRAY_SIZE(routes);
	r = httpd_create(loop, cfg, &h, err, sizeof(err));
	CHECK_INT_EQ(r, 0);
	if (r < 0) {
		printf("httpd_create: %s\n", err);
		exit(1);
	}
	return h;
}

/* One request to listener i; its status (0 if none came back). */
static int ask(struct rawclient *c, struct httpd *h, size_t i, const char *request)
{
	int family = i == 0 ? AF_INET : AF_INET6;

	CHECK(rawclient_exchange(c, loop, family, httpd_port(h, i), request, slack(2.0)));
	return rawclient_status(c);
}

#define REQ(method, path) method " " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

static void test_methods(void)
{
	struct httpd_config cfg = { 0 };
	struct httpd *h = start(&cfg);
	struct rawclient c;
	char v[128];

	CHECK(httpd_port(h, 0) > 0 && httpd_port(h, 1) > 0);
	CHECK_INT_EQ(httpd_port(h, 2), -EINVAL);
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/")), 200);
	CHECK_STR_EQ(rawclient_body(&c), "root\n");
	CHECK(rawclient_header(&c, "Content-Type", v, sizeof(v)) && strcmp(v, "text/plain") == 0);
	CHECK_INT_EQ(ask(&c, h, 1, REQ("GET", "/")), 200);
	CHECK_STR_EQ(rawclient_body(&c), "root\n");

	/* HEAD: GET's status and length, no body. */
	CHECK_INT_EQ(ask(&c, h, 0, REQ("HEAD", "/health")), 503);
	CHECK_STR_EQ(rawclient_body(&c), "");
	CHECK(rawclient_header(&c, "Content-Length", v, sizeof(v)) && strcmp(v, "7") == 0);
	/* OPTIONS, as HAProxy's httpchk sends it: the handler's status, no body. */
	CHECK_INT_EQ(ask(&c, h, 1, REQ("OPTIONS", "/health")), 503);
	CHECK_STR_EQ(rawclient_body(&c), "");
	CHECK(rawclient_header(&c, "Allow", v, sizeof(v)) && strcmp(v, "GET, HEAD, OPTIONS") == 0);
	health_status = 200;
	CHECK_INT_EQ(ask(&c, h, 0, REQ("OPTIONS", "/health")), 200);
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/health")), 200);

	CHECK_INT_EQ(ask(&c, h, 0, REQ("POST", "/")), 405);
	CHECK(rawclient_header(&c, "Allow", v, sizeof(v)) && strcmp(v, "GET, HEAD, OPTIONS") == 0);
	CHECK_INT_EQ(ask(&c, h, 1, REQ("DELETE", "/health")), 405);
	CHECK_INT_EQ(ask(&c, h, 0, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"),
		     405);
	CHECK_INT_EQ(ask(&c, h, 0, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"),
		     413);
	CHECK_INT_EQ(ask(&c, h, 0, "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
				   "5\r\nhello\r\n0\r\n\r\n"), 413);
	CHECK_INT_EQ(ask(&c, h, 0, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n"), 200);

	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/nope")), 404);
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/healthz")), 404);
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/track")), 404);
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/fail")), 500);
	CHECK_STR_EQ(rawclient_body(&c), "internal error\n");
	/* Malformed requests: MHD answers what it can and closes the rest. */
	CHECK_INT_EQ(ask(&c, h, 0, "garbage\r\n\r\n"), 0);
	CHECK_INT_EQ(ask(&c, h, 0, "GET / HTTP/1.1\r\nno colon here\r\n\r\n"), 400);
	CHECK_INT_EQ(ask(&c, h, 0, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n"), 400);
	CHECK_INT_EQ(ask(&c, h, 1, "GET / HTTP/9.9\r\nHost: t\r\n\r\n"), 505);
	CHECK_INT_EQ(ask(&c, h, 1, REQ("GET", "/big")), 200);
	CHECK_INT_EQ(strlen(rawclient_body(&c)), 100 * 1024);
	httpd_destroy(h);
}

static void test_query(void)
{
	struct httpd_config cfg = { 0 };
	struct httpd *h = start(&cfg);
	struct rawclient c;

	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/echo?lag=16MB&replication_state=streaming")), 200);
	CHECK_STR_EQ(rawclient_body(&c), "path=/echo lag=16MB state=streaming\n");
	CHECK_INT_EQ(ask(&c, h, 1, REQ("GET", "/echo?lag=16%20MB&x=1")), 200);
	CHECK_STR_EQ(rawclient_body(&c), "path=/echo lag=16 MB state=(none)\n");
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/echo")), 200);
	CHECK_STR_EQ(rawclient_body(&c), "path=/echo lag=(none) state=(none)\n");
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/track/main/replica?lag=1024")), 200);
	CHECK_STR_EQ(rawclient_body(&c), "path=/track/main/replica lag=1024 state=(none)\n");

	/* Keep-alive: two requests on one connection, the second closes it. */
	rawclient_exchange(&c, loop, AF_INET, httpd_port(h, 0),
			   "GET /echo?lag=1 HTTP/1.1\r\nHost: t\r\n\r\n"
			   "GET /echo?lag=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
			   slack(2.0));
	CHECK(strstr(c.buf, "lag=1 state") != NULL);
	CHECK(strstr(c.buf, "lag=2 state") != NULL);
	httpd_destroy(h);
}

static void test_parse(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct httpd_net net;
	socklen_t len;

	CHECK_INT_EQ(httpd_parse_listen("127.0.0.1:8008", &ss, &len), 0);
	CHECK(ss.ss_family == AF_INET && ntohs(s4->sin_port) == 8008 && len == sizeof(*s4));
	CHECK_INT_EQ(httpd_parse_listen("[::1]:8008", &ss, &len), 0);
	CHECK(ss.ss_family == AF_INET6 && ntohs(s6->sin6_port) == 8008 && len == sizeof(*s6));
	CHECK_INT_EQ(httpd_parse_listen("0.0.0.0:0", &ss, &len), 0);
	CHECK_INT_EQ(httpd_parse_listen("[::]:65535", &ss, &len), 0);
	CHECK_INT_EQ(httpd_parse_listen("localhost:8008", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("db1.example:8008", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("127.0.0.1", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("127.0.0.1:", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("127.0.0.1:65536", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("127.0.0.1:-1", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("127.0.0.1:80x", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("::1:8008", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("[::1]", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen("[127.0.0.1]:80", &ss, &len), -EINVAL);
	CHECK_INT_EQ(httpd_parse_listen(":8008", &ss, &len), -EINVAL);

	CHECK_INT_EQ(httpd_parse_net("10.0.0.0/8", &net), 0);
	CHECK(net.family == AF_INET && net.bits == 8);
	CHECK_INT_EQ(httpd_parse_net("127.0.0.1", &net), 0);
	CHECK(net.bits == 32);
	CHECK_INT_EQ(httpd_parse_net("fd00::/64", &net), 0);
	CHECK(net.family == AF_INET6 && net.bits == 64);
	CHECK_INT_EQ(httpd_parse_net("::/0", &net), 0);
	CHECK_INT_EQ(httpd_parse_net("10.1.2.3/8", &net), -EINVAL);
	CHECK_INT_EQ(httpd_parse_net("10.0.0.0/33", &net), -EINVAL);
	CHECK_INT_EQ(httpd_parse_net("10.0.0.0/", &net), -EINVAL);
	CHECK_INT_EQ(httpd_parse_net("10.0.0.0/x", &net), -EINVAL);
	CHECK_INT_EQ(httpd_parse_net("localhost/8", &net), -EINVAL);
	CHECK_INT_EQ(httpd_parse_net("", &net), -EINVAL);
}

static bool contains(const char *net_text, const char *addr)
{
	struct httpd_net net;
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };

	if (httpd_parse_net(net_text, &net) < 0)
		return false;
	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1)
		return httpd_net_contains(&net, (struct sockaddr *)&s4);
	CHECK(inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1);
	return httpd_net_contains(&net, (struct sockaddr *)&s6);
}

static void test_contains(void)
{
	CHECK(contains("10.0.0.0/8", "10.255.1.2"));
	CHECK(!contains("10.0.0.0/8", "11.0.0.1"));
	CHECK(contains("192.168.4.0/22", "192.168.7.255"));
	CHECK(!contains("192.168.4.0/22", "192.168.8.0"));
	CHECK(contains("127.0.0.1", "127.0.0.1"));
	CHECK(!contains("127.0.0.1", "127.0.0.2"));
	CHECK(contains("0.0.0.0/0", "203.0.113.9"));
	CHECK(!contains("0.0.0.0/0", "::1"));
	CHECK(contains("fd00::/64", "fd00::5"));
	CHECK(!contains("fd00::/64", "fd00:0:0:1::5"));
	CHECK(contains("::1/128", "::1"));
	CHECK(!contains("::/0", "10.0.0.1"));
	CHECK(contains("10.0.0.0/8", "::ffff:10.1.2.3"));
	CHECK(!contains("10.0.0.0/8", "::ffff:11.1.2.3"));
}

/* Open descriptors of this process. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void expect_start_error(const char *const *listen, size_t n, int err,
			       const char *message)
{
	struct httpd_config cfg = { .listen = listen, .n_listen = n, .routes = routes,
				    .n_routes = ARRAY_SIZE(routes) };
	struct httpd *h = (struct httpd *)&cfg;
	char text[256] = "";
	int fds = count_fds();

	CHECK_INT_EQ(httpd_create(loop, &cfg, &h, text, sizeof(text)), err);
	CHECK(h == NULL);
	CHECK_STR_EQ(text, message);
	/* Nothing left behind: no descriptor, no watcher (ev_run returns at once). */
	CHECK_INT_EQ(count_fds(), fds);
	CHECK_INT_EQ(ev_run(loop, EVRUN_NOWAIT), 0);
}

/* A socket listening on 127.0.0.1 and some free port; the port. */
static int occupy(int *fd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(*fd >= 0);
	CHECK(bind(*fd, (struct sockaddr *)&sa, len) == 0);
	CHECK(listen(*fd, 1) == 0);
	CHECK(getsockname(*fd, (struct sockaddr *)&sa, &len) == 0);
	return ntohs(sa.sin_port);
}

static void test_start_errors(void)
{
	static const char *const name[] = { "localhost:8008" };
	static const char *const noport[] = { "[::1]" };
	char taken[64], msg[256];
	const char *second[] = { "[::1]:0", taken };
	struct httpd_config cfg = { 0 };
	struct httpd *h;
	int fd;

	expect_start_error(name, 1, -EINVAL, "localhost:8008: not a numeric address:port "
			   "(such as 127.0.0.1:8008 or [::1]:8008)");
	expect_start_error(noport, 1, -EINVAL, "[::1]: not a numeric address:port "
			   "(such as 127.0.0.1:8008 or [::1]:8008)");
	expect_start_error(NULL, 0, -EINVAL, "no listen address");
	/* The second address is in use: the first, already open, is closed again. */
	snprintf(taken, sizeof(taken), "127.0.0.1:%d", occupy(&fd));
	snprintf(msg, sizeof(msg), "%s: Address already in use", taken);
	expect_start_error(second, 2, -EADDRINUSE, msg);
	close(fd);

	/* A clean stop with clients still connected leaves nothing running. */
	h = start(&cfg);
	{
		static struct rawclient c;

		rawclient_open(&c, loop, AF_INET, httpd_port(h, 0));
		rawclient_send(&c, "GET / HTTP/1.1\r\n");
		rawclient_wait(&c, 0.2);
		CHECK_INT_EQ(httpd_connections(h), 1);
		httpd_destroy(h);
		CHECK_INT_EQ(ev_run(loop, EVRUN_NOWAIT), 0);
		CHECK(rawclient_wait(&c, slack(1.0)));
		rawclient_close(&c);
	}
	httpd_destroy(NULL);
}

static void test_allow_list(void)
{
	struct httpd_net nets[2];
	struct httpd_config cfg = { .allow = nets, .n_allow = 2 };
	struct httpd *h;
	struct rawclient c;

	CHECK_INT_EQ(httpd_parse_net("10.0.0.0/8", &nets[0]), 0);
	CHECK_INT_EQ(httpd_parse_net("::1", &nets[1]), 0);
	h = start(&cfg);
	/* 127.0.0.1 is not allowed: closed without a byte of answer. */
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/")), 0);
	CHECK_INT_EQ(c.len, 0);
	CHECK_INT_EQ(ask(&c, h, 1, REQ("GET", "/")), 200);
	CHECK_INT_EQ(httpd_connections(h), 0);
	httpd_destroy(h);
}

/*
 * A reload replaces an httpd on the same address: binding it again would
 * fail while the old one runs (EADDRINUSE), so the new one inherits the
 * socket; once the old one is destroyed, the new one answers on that port.
 */
static void test_inherit(void)
{
	static const char *const v4[] = { "127.0.0.1:0" };
	struct httpd_config cfg = { .listen = v4, .n_listen = 1 };
	struct httpd *old = start(&cfg), *h = NULL;
	struct rawclient c;
	char addr[64], err[256] = "";
	const char *again[] = { addr };
	int port = httpd_port(old, 0);

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	cfg.listen = again;
	CHECK_INT_EQ(httpd_create(loop, &cfg, &h, err, sizeof(err)), -EADDRINUSE);
	printf("without inherit: %s\n", err);
	cfg.listen = v4;
	cfg.inherit = old;
	CHECK_INT_EQ(httpd_create(loop, &cfg, &h, err, sizeof(err)), 0);
	if (!h)
		return;
	CHECK_INT_EQ(httpd_port(h, 0), port);
	httpd_destroy(old);
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/")), 200);
	CHECK_INT_EQ(ask(&c, h, 0, REQ("GET", "/")), 200);
	httpd_destroy(h);
}

int main(void)
{
	loop = ev_default_loop(EVFLAG_AUTO);
	test_parse();
	test_contains();
	test_methods();
	test_query();
	test_start_errors();
	test_allow_list();
	test_inherit();
	CHECK_DONE();
}
