/*
 * pgtrackd.conf's [http] section (src/trackd/config_http.h): its keys, its
 * defaults (listener off, loopback-only allow-list, the only track as the
 * default track), and an error at file:line for each bad value.
 */
#include <arpa/inet.h>

#include "check.h"
#include "conf_fixture.h"

#define TRACK_B "[track b]\nfile = /nonexistent/b\n"

static bool allows(const struct http_settings *h, const char *ip)
{
	struct sockaddr_storage ss = { 0 };

	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
	for (size_t i = 0; i < h->n_allow; i++)
		if (httpd_net_contains(&h->allow[i], (struct sockaddr *)&ss))
			return true;
	return false;
}

static void test_defaults(void)
{
	struct trackd_config *c = LOAD_OK(TRACK_A);

	if (!c)
		return;
	CHECK_INT_EQ(c->http.n_listen, 0);
	CHECK_INT_EQ(c->http.max_connections, 64);
	CHECK_INT_EQ(c->http.timeout_ms, 10000);
	CHECK_STR_EQ(c->http.default_track, "a");
	CHECK(allows(&c->http, "127.0.0.1"));
	CHECK(allows(&c->http, "127.3.2.1"));
	CHECK(allows(&c->http, "::1"));
	CHECK(!allows(&c->http, "10.0.0.1"));
	CHECK(!allows(&c->http, "::2"));
	config_destroy(c);

	/* Several tracks and no listener: no default track needed. */
	c = LOAD_OK(TRACK_A TRACK_B);
	if (c)
		CHECK_STR_EQ(c->http.default_track, "");
	config_destroy(c);
}

static void test_keys(void)
{
	struct trackd_config *c = LOAD_OK("[http]\n"
		"listen = 127.0.0.1:8008, [::1]:8008 10.1.2.3:80\n"
		"allow = 10.0.0.0/8 fd00::/64,192.168.1.7\n"
		"default_track = b\n"
		"max_connections = 10\n"
		"timeout = 2s\n"
		TRACK_A TRACK_B);

	if (!c)
		return;
	CHECK_INT_EQ(c->http.n_listen, 3);
	CHECK_STR_EQ(c->http.listen[0], "127.0.0.1:8008");
	CHECK_STR_EQ(c->http.listen[1], "[::1]:8008");
	CHECK_STR_EQ(c->http.listen[2], "10.1.2.3:80");
	CHECK_INT_EQ(c->http.n_allow, 3);
	CHECK(allows(&c->http, "10.9.9.9"));
	CHECK(allows(&c->http, "fd00::5"));
	CHECK(allows(&c->http, "192.168.1.7"));
	CHECK(!allows(&c->http, "192.168.1.8"));
	CHECK(!allows(&c->http, "127.0.0.1"));
	CHECK_STR_EQ(c->http.default_track, "b");
	CHECK_INT_EQ(c->http.max_connections, 10);
	CHECK_INT_EQ(c->http.timeout_ms, 2000);
	config_destroy(c);

	/* [http] after the tracks, and every client allowed. */
	c = LOAD_OK(TRACK_A "[http]\nlisten = 127.0.0.1:0\nallow = 0.0.0.0/0 ::/0\n");
	if (!c)
		return;
	CHECK(allows(&c->http, "8.8.8.8"));
	CHECK(allows(&c->http, "2001:db8::1"));
	CHECK_STR_EQ(c->http.default_track, "a");
	config_destroy(c);
}

static void test_errors(void)
{
	EXPECT_ERRORS("[http]\nlisten = localhost:8008\n" TRACK_A,
		      "2: invalid value \"localhost:8008\" for listen: not a numeric "
		      "address:port (such as 127.0.0.1:8008 or [::1]:8008)");
	EXPECT_ERRORS("[http]\nlisten = 127.0.0.1\n" TRACK_A,
		      "2: invalid value \"127.0.0.1\" for listen: not a numeric "
		      "address:port (such as 127.0.0.1:8008 or [::1]:8008)");
	EXPECT_ERRORS("[http]\nlisten = 127.0.0.1:80 127.0.0.1:80\n" TRACK_A,
		      "2: listen: 127.0.0.1:80 is given twice");
	EXPECT_ERRORS("[http]\nlisten = 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3 127.0.0.1:4 "
		      "127.0.0.1:5 127.0.0.1:6 127.0.0.1:7 127.0.0.1:8 127.0.0.1:9\n" TRACK_A,
		      "2: listen: more than 8 addresses");
	EXPECT_ERRORS("[http]\nallow = 10.1.2.3/8\n" TRACK_A,
		      "2: invalid value \"10.1.2.3/8\" for allow: not a network (an address, "
		      "or ADDRESS/BITS with the host bits zero, such as 10.0.0.0/8 or "
		      "fd00::/64)");
	EXPECT_ERRORS("[http]\nallow = ,\n" TRACK_A,
		      "2: allow is empty: name the client networks (0.0.0.0/0 ::/0 for every "
		      "client), or leave it out for loopback only");
	EXPECT_ERRORS("[http]\nlisten = 127.0.0.1:0\n\ndefault_track = c\n" TRACK_A TRACK_B,
		      "4: default_track \"c\": no such track (the tracks are a, b)");
	EXPECT_ERRORS("# x\n[http]\nlisten = 127.0.0.1:0\n" TRACK_A TRACK_B,
		      "2: [http]: set default_track, the track /primary, /replica and the "
		      "other unprefixed endpoints answer for: one of a, b (each track answers "
		      "under /track/NAME/ too)");
	EXPECT_ERRORS("[http]\nmax_connections = 0\ntimeout = 0\n" TRACK_A,
		      "2: invalid value \"0\" for max_connections: must be between 1 and 1024",
		      "3: invalid value \"0\" for timeout: must be between 1s and 5m");
	EXPECT_ERRORS("[http]\nport = 8008\n" TRACK_A,
		      "2: unknown key \"port\" in section [http]");
	EXPECT_ERRORS("[http]\n[http]\n" TRACK_A,
		      "2: duplicate section [http] (first at line 1)");
	EXPECT_ERRORS("[http]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n" TRACK_A,
		      "3: duplicate key \"listen\"");
}

static struct trackd_config *http(const char *text)
{
	return LOAD_OK(text);
}

/* Which changes need a new listener: not default_track. */
static void test_listener_equal(void)
{
	struct trackd_config *a = http("[http]\nlisten = 127.0.0.1:1\ndefault_track = a\n"
				       TRACK_A TRACK_B);
	struct trackd_config *b = http("[http]\ndefault_track = b\nlisten = 127.0.0.1:1\n"
				       TRACK_A TRACK_B);
	struct trackd_config *c = http("[http]\nlisten = 127.0.0.1:1\nallow = ::1\n" TRACK_A);
	struct trackd_config *d = http("[http]\nlisten = 127.0.0.1:2\n" TRACK_A);
	struct trackd_config *e = http("[http]\nlisten = 127.0.0.1:1\ntimeout = 3s\n" TRACK_A);

	if (a && b && c && d && e) {
		CHECK(config_http_listener_equal(&a->http, &b->http));
		CHECK(!config_http_listener_equal(&a->http, &c->http));
		CHECK(!config_http_listener_equal(&a->http, &d->http));
		CHECK(!config_http_listener_equal(&a->http, &e->http));
	}
	config_destroy(a);
	config_destroy(b);
	config_destroy(c);
	config_destroy(d);
	config_destroy(e);
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_defaults();
	test_keys();
	test_errors();
	test_listener_equal();
	scratch_remove(dir);
	CHECK_DONE();
}
