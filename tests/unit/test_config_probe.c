/*
 * The probe's keys in pgtrackd.conf: the built-in PostgreSQL probe's
 * (src/probes/postgres/pg_settings.h) as config_load() checks them and the
 * probe reads them, peers, the priority layout, and when two tracks'
 * settings are the same.
 */
#include "conf_fixture.h"

/* accept_interval follows the track's interval unless it is set, to 0 as well. */
static void test_accept_interval_default(void)
{
	struct trackd_config *c = LOAD_OK("[track a]\nfile = /run/pgtrackd/a\ninterval = 200ms\n"
					  "[track b]\nfile = /run/pgtrackd/b\ninterval = 200ms\n"
					  "accept_interval = 3s\n"
					  "[track c]\nfile = /run/pgtrackd/c\naccept_interval = 0\n");

	if (!c)
		return;
	CHECK_INT_EQ(c->n_tracks, 3);
	CHECK_INT_EQ(PG(&c->tracks[0]).accept_interval_ms, 200);
	CHECK_INT_EQ(PG(&c->tracks[1]).accept_interval_ms, 3000);
	CHECK_INT_EQ(PG(&c->tracks[2]).accept_interval_ms, 0);
	config_destroy(c);
}

/* Host names are resolved on the loop: no warning for any kind of host. */
static void test_host_names(void)
{
	int n_errors;
	char *out = load_log("[track dns]\nfile = /a\nhost = db.example.com\n"
			     "[track ip]\nfile = /b\nhost = 10.1.2.3\n"
			     "[track ip6]\nfile = /c\nhost = ::1\n"
			     "[track sock]\nfile = /d\nhost = /var/run/postgresql\n"
			     "[track both]\nfile = /e\nhost = db.example.com\n"
			     "hostaddr = 10.1.2.3\n", &n_errors);

	CHECK_INT_EQ(n_errors, 0); /* so it loaded */
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	CHECK(strstr(out, "DNS") == NULL);
	free(out);
}

/* The priority layout: -t warns when keepalived would clamp a value or an ordering breaks. */
static void test_priority_layout_warnings(void)
{
	char *out;
	int n;

	/* The defaults on base 200, three nodes: silent. */
	out = load_log("[track a]\nfile = /a\nnode = n1\npeer.n2 = 10.0.0.2\npeer.n3 = 10.0.0.3\n", &n);
	CHECK_INT_EQ(n, 0);
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	free(out);

	/* The old layout's primary on base 200: clamped. */
	out = load_log("[track a]\nfile = /a\nvalue_primary = 100\n", &n);
	CHECK_INT_EQ(n, 0);
	CHECK_INT_EQ(count_substr(out, "warning:"), 1);
	CHECK(strstr(out, ":1: track \"a\": value_primary 100 on base_priority 200 gives priority "
			  "300, which keepalived clamps to 254: it no longer differs from its "
			  "neighbours") != NULL);
	free(out);

	/* base_priority 0: no clamp check; FAULT values are never priorities. */
	out = load_log("[track a]\nfile = /a\nbase_priority = 0\nvalue_primary = 100\n"
		       "value_standby = 90\nvalue_lagging = -254\n", &n);
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	free(out);

	/* Below 1 is clamped too; the lowest rank counts the peers. */
	out = load_log("[track a]\nfile = /a\nnode = x\nbase_priority = 10\nvalue_primary = 20\n"
		       "value_standby = -8\nvalue_lagging = -30\npeer.b = 10.0.0.2\n"
		       "peer.c = 10.0.0.3\nrank_step = 1\n", &n);
	CHECK(strstr(out, "value_standby minus the lowest rank -10 on base_priority 10 gives "
			  "priority 0, which keepalived clamps to 1") != NULL);
	CHECK(strstr(out, "value_lagging -30 on base_priority 10 gives priority -20, which "
			  "keepalived clamps to 1") != NULL);
	free(out);

	/* Orderings: the primary above the standbys, lagging below every rank. */
	out = load_log("[track a]\nfile = /a\nvalue_primary = 50\nvalue_standby = 50\n"
		       "value_lagging = 49\nnode = a\npeer.b = 10.0.0.2\n", &n);
	CHECK(strstr(out, "value_primary 50 is not above value_standby 50") != NULL);
	CHECK(strstr(out, "value_lagging 49 is not below the lowest ranked standby value 40 "
			  "(value_standby - 1 peers x rank_step 10)") != NULL);
	free(out);

	/* Peers without node: ties cannot be broken the same way everywhere. */
	out = load_log("[track a]\nfile = /a\npeer.b = 10.0.0.2\npeer.c = 10.0.0.3\n", &n);
	CHECK(strstr(out, ":1: track \"a\": peers without node: this node cannot place itself in "
			  "the peers' naming, so it concedes every tie of WAL positions; set node = "
			  "NAME, the name the other nodes give this one") != NULL);
	free(out);
	/* Two nodes: never two standbys beside a primary; no warning. */
	out = load_log("[track a]\nfile = /a\npeer.b = 10.0.0.2\n", &n);
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	free(out);

	/* sync_promotion = follower needs the peers to know what a promotion starts with. */
	out = load_log("[track a]\nfile = /a\nsync_standby_names = *\nsync_promotion = follower\n", &n);
	CHECK(strstr(out, ":1: track \"a\": sync_promotion = follower without peers: a standby "
			  "cannot see the other standbys that would follow its promotion") != NULL);
	free(out);
	/* With peers; or relaxed (the default), where a promotion starts relaxed, peers or not. */
	out = load_log("[track a]\nfile = /a\nsync_standby_names = *\nsync_promotion = follower\n"
		       "peer.b = 10.0.0.2\n[track b]\nfile = /b\nsync_standby_names = *\n", &n);
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	free(out);
}

static void test_node_key(void)
{
	EXPECT_ERRORS("[track a]\nfile = /a\nnode = no/slash\n",
		      "1: track \"a\": invalid node name \"no/slash\": use 1 to 32 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS("[track a]\nfile = /a\nnode = b\npeer.b = 10.0.0.2\n",
		      "4: track \"a\": peer.b names this node (node = b)");
	EXPECT_ERRORS("[track a]\nfile = /a\nnode = 123456789012345678901234567890123\n",
		      "3: invalid value \"123456789012345678901234567890123\" for node: longer than "
		      "32 bytes");
	EXPECT_ERRORS("[track a]\nfile = /a\nbase_priority = 255\n",
		      "3: invalid value \"255\" for base_priority: must be between 0 and 254");
}

static void test_track_settings_equal(void)
{
	const char *base = "[track a]\nfile = /a\ninterval = 2s\napplication_name = x\n";

	CHECK(EQUAL_TRACKS(base, base));
	/* Elsewhere in the file, keys in another order, comments: still equal. */
	CHECK(EQUAL_TRACKS(base, "; moved down\n[track z]\nfile = /z\n\n"
				 "[track a]\napplication_name = x ; same\n"
				 "interval = 2000ms\nfile = /a\n"));
	/* A default given explicitly is the same setting. */
	CHECK(EQUAL_TRACKS("[track a]\nfile = /a\n", "[track a]\nfile = /a\nrise = 2\n"
						     "application_name = pgtrackd\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /a\ninterval = 3s\napplication_name = x\n"));
	CHECK(!EQUAL_TRACKS(base, "[track b]\nfile = /a\ninterval = 2s\napplication_name = x\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /b\ninterval = 2s\napplication_name = x\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /a\ninterval = 2s\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /a\ninterval = 2s\napplication_name = x\n"
				  "value_down = -253\n"));

	/* line is ignored, everything else counts. */
	struct track_settings x, y;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	x.line = 1;
	y.line = 99;
	CHECK(track_settings_equal(&x, &y));
	y.values[TRACK_STOPPED] = 1;
	CHECK(!track_settings_equal(&x, &y));
}

static void test_peers(void)
{
	struct trackd_config *c = LOAD_OK(
		"[track a]\n"                            /* 1 */
		"file = /nonexistent/a\n"                        /* 2 */
		"port = 5433\n"                          /* 3 */
		"peer.sock = /var/run/postgresql\n"      /* 4 */
		"peer.sock-port = /tmp 5434\n"           /* 5 */
		"peer.v4 = 192.0.2.11\n"                 /* 6 */
		"peer.v4_port = 192.0.2.12   6432\n"     /* 7 */
		"peer.v6 = 2001:db8::13\n"               /* 8 */
		"peer.v6.port = ::1\t65535\n"            /* 9 */
		"\n"                                     /* 10 */
		"peer.Node-7.b_ = 10.0.0.1 1\n"          /* 11 */
		"peer.12345678901234567890123456789012 = 192.0.2.14\n" /* 12 */
		"[track b]\n"                            /* 13 */
		"file = /nonexistent/b\n"                        /* 14 */
		"peer.v4 = 192.0.2.21\n");               /* 15 */

	if (!c)
		return;
	CHECK_INT_EQ(c->n_tracks, 2);
	if (c->n_tracks != 2) {
		config_destroy(c);
		return;
	}

	const struct track_settings *t = &c->tracks[0];

	CHECK_INT_EQ(PG(t).n_peers, 8);
	CHECK_STR_EQ(PG(t).peers[0].name, "sock");
	CHECK_STR_EQ(PG(t).peers[0].host, "/var/run/postgresql");
	CHECK_STR_EQ(PG(t).peers[0].hostaddr, "");
	CHECK_INT_EQ(PG(t).peers[0].port, 0);
	CHECK_INT_EQ(peer_line(t, 0), 4);

	CHECK_STR_EQ(PG(t).peers[1].name, "sock-port");
	CHECK_STR_EQ(PG(t).peers[1].host, "/tmp");
	CHECK_STR_EQ(PG(t).peers[1].hostaddr, "");
	CHECK_INT_EQ(PG(t).peers[1].port, 5434);
	CHECK_INT_EQ(peer_line(t, 1), 5);

	CHECK_STR_EQ(PG(t).peers[2].name, "v4");
	CHECK_STR_EQ(PG(t).peers[2].host, "");
	CHECK_STR_EQ(PG(t).peers[2].hostaddr, "192.0.2.11");
	CHECK_INT_EQ(PG(t).peers[2].port, 0);

	CHECK_STR_EQ(PG(t).peers[3].name, "v4_port");
	CHECK_STR_EQ(PG(t).peers[3].hostaddr, "192.0.2.12");
	CHECK_INT_EQ(PG(t).peers[3].port, 6432);

	CHECK_STR_EQ(PG(t).peers[4].name, "v6");
	CHECK_STR_EQ(PG(t).peers[4].host, "");
	CHECK_STR_EQ(PG(t).peers[4].hostaddr, "2001:db8::13");
	CHECK_INT_EQ(PG(t).peers[4].port, 0);

	CHECK_STR_EQ(PG(t).peers[5].name, "v6.port");
	CHECK_STR_EQ(PG(t).peers[5].hostaddr, "::1");
	CHECK_INT_EQ(PG(t).peers[5].port, 65535);

	CHECK_STR_EQ(PG(t).peers[6].name, "Node-7.b_");
	CHECK_STR_EQ(PG(t).peers[6].hostaddr, "10.0.0.1");
	CHECK_INT_EQ(PG(t).peers[6].port, 1);
	CHECK_INT_EQ(peer_line(t, 6), 11);

	CHECK_STR_EQ(PG(t).peers[7].name, "12345678901234567890123456789012");
	CHECK_INT_EQ(peer_line(t, 7), 12);
	/* The track's own port is untouched by the peers'. */
	CHECK_INT_EQ(PG(t).port, 5433);

	/* Peers are per track. */
	t = &c->tracks[1];
	CHECK_INT_EQ(PG(t).n_peers, 1);
	CHECK_STR_EQ(PG(t).peers[0].name, "v4");
	CHECK_STR_EQ(PG(t).peers[0].hostaddr, "192.0.2.21");
	CHECK_INT_EQ(peer_line(t, 0), 15);
	config_destroy(c);
}

static void test_peer_errors(void)
{
	/* Names. */
	EXPECT_ERRORS(TRACK_A "peer.x y = 192.0.2.1\n",
		      "3: invalid peer name \"x y\": use 1 to 32 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS(TRACK_A "peer.b/c = 192.0.2.1\n",
		      "3: invalid peer name \"b/c\": use 1 to 32 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS(TRACK_A "peer. = 192.0.2.1\n",
		      "3: invalid peer name \"\": use 1 to 32 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS(TRACK_A "peer.123456789012345678901234567890123 = 192.0.2.1\n",
		      "3: invalid peer name \"123456789012345678901234567890123\": use 1 to 32 "
		      "of A-Z a-z 0-9 _ . -");
	/* Keys are case-sensitive: "Peer.b" is no peer. */
	EXPECT_ERRORS(TRACK_A "Peer.b = 192.0.2.1\n",
		      "3: unknown key \"Peer.b\" in section [track a]");
	EXPECT_ERRORS(TRACK_A "peer = 192.0.2.1\n",
		      "3: unknown key \"peer\" in section [track a]");
	/* Only in tracks. */
	EXPECT_ERRORS("[global]\npeer.b = 192.0.2.1\n" TRACK_A,
		      "2: unknown key \"peer.b\" in section [global]");

	/* Duplicates, also with another address. */
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1\npeer.c = 192.0.2.2\npeer.b = 192.0.2.3\n",
		      "5: duplicate key \"peer.b\"");
	/* Names are case-sensitive: b and B are two peers. */
	struct trackd_config *c = LOAD_OK(TRACK_A "peer.b = 192.0.2.1\npeer.B = 192.0.2.2\n");

	if (c)
		CHECK_INT_EQ(PG(&c->tracks[0]).n_peers, 2);
	config_destroy(c);

	/* At most 8. */
	EXPECT_ERRORS(TRACK_A "peer.p1 = 192.0.2.1\npeer.p2 = 192.0.2.2\npeer.p3 = 192.0.2.3\n"
			      "peer.p4 = 192.0.2.4\npeer.p5 = 192.0.2.5\npeer.p6 = 192.0.2.6\n"
			      "peer.p7 = 192.0.2.7\npeer.p8 = 192.0.2.8\npeer.p9 = 192.0.2.9\n"
			      "peer.p10 = 192.0.2.10\n",
		      "11: too many peers: at most 8 per track",
		      "12: too many peers: at most 8 per track");
	/* A duplicate of one of the 8 is reported as a duplicate. */
	EXPECT_ERRORS(TRACK_A "peer.p1 = 192.0.2.1\npeer.p2 = 192.0.2.2\npeer.p3 = 192.0.2.3\n"
			      "peer.p4 = 192.0.2.4\npeer.p5 = 192.0.2.5\npeer.p6 = 192.0.2.6\n"
			      "peer.p7 = 192.0.2.7\npeer.p8 = 192.0.2.8\npeer.p1 = 192.0.2.9\n",
		      "11: duplicate key \"peer.p1\"");
}

static void test_peer_addresses(void)
{
	struct trackd_config *c;

	/* Addresses: numeric, a host name (resolved on the loop) or a socket directory. */
	c = LOAD_OK(TRACK_A "peer.b = db.example.com\npeer.c = localhost 5433\n"
			    "peer.d = 192.0.2.1\npeer.e = /tmp\n");
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[0].host, "db.example.com");
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[0].hostaddr, "");
	CHECK_INT_EQ(PG(&c->tracks[0]).peers[0].port, 0);
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[1].host, "localhost");
	CHECK_INT_EQ(PG(&c->tracks[0]).peers[1].port, 5433);
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[2].host, "");
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[2].hostaddr, "192.0.2.1");
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[3].host, "/tmp");
	config_destroy(c);
	/* A track's host: each entry of the list must be one of the same kinds. */
	c = LOAD_OK(TRACK_A "host = db1.example,192.0.2.1,/tmp,::1\n");
	config_destroy(c);
	EXPECT_ERRORS(TRACK_A "host = db1.example,db!2\n",
		      "1: track \"a\": host \"db1.example,db!2\" is not a socket directory, a numeric "
		      "address or a host name");
	EXPECT_ERRORS(TRACK_A "host = 10.0.0\n",
		      "1: track \"a\": host \"10.0.0\" is not a socket directory, a numeric "
		      "address or a host name");
	EXPECT_ERRORS(TRACK_A "peer.b = db!example\n",
		      "3: invalid value \"db!example\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = db..example\n",
		      "3: invalid value \"db..example\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = -db\n",
		      "3: invalid value \"-db\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2\n",
		      "3: invalid value \"192.0.2\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.256\n",
		      "3: invalid value \"192.0.2.256\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = [2001:db8::1]\n",
		      "3: invalid value \"[2001:db8::1]\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = var/run/postgresql\n",
		      "3: invalid value \"var/run/postgresql\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b =\n",
		      "3: invalid value \"\" for peer.b: expected ADDRESS [PORT]");
}

static void test_peer_ports(void)
{
	struct trackd_config *c;

	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 99999\n",
		      "3: invalid value \"192.0.2.1 99999\" for peer.b: port must be between 1 and "
		      "65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 0\n",
		      "3: invalid value \"192.0.2.1 0\" for peer.b: port must be between 1 and "
		      "65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 -5432\n",
		      "3: invalid value \"192.0.2.1 -5432\" for peer.b: port must be between 1 and "
		      "65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 postgres\n",
		      "3: invalid value \"192.0.2.1 postgres\" for peer.b: port must be between 1 "
		      "and 65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 5432 5433\n",
		      "3: invalid value \"192.0.2.1 5432 5433\" for peer.b: port must be between 1 "
		      "and 65535");
	EXPECT_ERRORS(TRACK_A "peer.b = /tmp 54x\n",
		      "3: invalid value \"/tmp 54x\" for peer.b: port must be between 1 and 65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 99999999999999999999\n",
		      "3: invalid value \"192.0.2.1 99999999999999999999\" for peer.b: port must be "
		      "between 1 and 65535");

	/* A bad peer does not count: the next one with its name is no duplicate. */
	c = LOAD_OK(TRACK_A "peer.b = 192.0.2.1\n");
	config_destroy(c);
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 0\npeer.b = 192.0.2.1\npeer.b = 192.0.2.2\n",
		      "3: invalid value \"192.0.2.1 0\" for peer.b: port must be between 1 and "
		      "65535",
		      "5: duplicate key \"peer.b\"");

	/* Every error of a file in one run. */
	EXPECT_ERRORS(TRACK_A "peer.x y = 1\npeer.c = db!example.com\npeer.d = ::1 70000\n"
			      "max_lag = lots\n",
		      "3: invalid peer name \"x y\": use 1 to 32 of A-Z a-z 0-9 _ . -",
		      "4: invalid value \"db!example.com\" for peer.c: " BAD_ADDRESS,
		      "5: invalid value \"::1 70000\" for peer.d: port must be between 1 and 65535",
		      "6: invalid value \"lots\" for max_lag: expected a size like 8192, 64kB, 16MB "
		      "or 1GB");
}

static void test_guard_keys(void)
{
	struct trackd_config *c = LOAD_OK(TRACK_A "value_stale = -200\nvalue_conflict = 254\n"
						  "value_lagging = 0\nmax_lag = 16MB\n"
						  "max_lag_time = 30s\n");

	if (c) {
		const struct track_settings *t = &c->tracks[0];

		CHECK_INT_EQ(t->values[TRACK_STALE], -200);
		CHECK_INT_EQ(t->values[TRACK_CONFLICT], 254);
		CHECK_INT_EQ(t->values[TRACK_LAGGING], 0);
		CHECK_INT_EQ(PG(t).max_lag_bytes, INT64_C(16) << 20);
		CHECK_INT_EQ(PG(t).max_lag_time_ms, 30000);
	}
	config_destroy(c);

	/* Sizes. */
	static const struct {
		const char *text;
		int64_t bytes;
	} sizes[] = {
		{ "0", 0 },
		{ "8192", 8192 },
		{ "8192B", 8192 },
		{ "64kB", 65536 },
		{ "16MB", INT64_C(16) << 20 },
		{ "1GB", INT64_C(1) << 30 },
		{ "1TB", INT64_C(1) << 40 },
		{ "1024TB", INT64_C(1) << 50 },
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), TRACK_A "max_lag = %s\n", sizes[i].text);
		c = LOAD_OK(text);
		if (c)
			CHECK_INT_EQ(PG(&c->tracks[0]).max_lag_bytes, sizes[i].bytes);
		config_destroy(c);
	}
	EXPECT_ERRORS(TRACK_A "max_lag = x\n",
		      "3: invalid value \"x\" for max_lag: expected a size like 8192, 64kB, 16MB or "
		      "1GB");
	EXPECT_ERRORS(TRACK_A "max_lag = 16mb\n",
		      "3: invalid value \"16mb\" for max_lag: expected a size like 8192, 64kB, 16MB "
		      "or 1GB");
	EXPECT_ERRORS(TRACK_A "max_lag = -1\n",
		      "3: invalid value \"-1\" for max_lag: expected a size like 8192, 64kB, 16MB or "
		      "1GB");
	EXPECT_ERRORS(TRACK_A "max_lag =\n",
		      "3: invalid value \"\" for max_lag: expected a size like 8192, 64kB, 16MB or "
		      "1GB");
	EXPECT_ERRORS(TRACK_A "max_lag = 1025TB\n",
		      "3: invalid value \"1025TB\" for max_lag: must be between 0 and "
		      "1125899906842624 bytes");
	EXPECT_ERRORS(TRACK_A "max_lag = 99999999999999999999\n",
		      "3: invalid value \"99999999999999999999\" for max_lag: expected a size like "
		      "8192, 64kB, 16MB or 1GB");
	EXPECT_ERRORS(TRACK_A "max_lag = 1MB\nmax_lag = 2MB\n", "4: duplicate key \"max_lag\"");
}

static void test_lag_time_keys(void)
{
	struct trackd_config *c;

	/* max_lag_time: 0 disables, else 1s..24h. */
	static const struct {
		const char *text;
		int64_t ms;
	} times[] = {
		{ "0", 0 }, { "0s", 0 }, { "0ms", 0 }, { "1s", 1000 }, { "1000ms", 1000 },
		{ "90", 90000 }, { "5m", 300000 }, { "24h", 86400000 }, { "86400s", 86400000 },
	};

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), TRACK_A "max_lag_time = %s\n", times[i].text);
		c = LOAD_OK(text);
		if (c)
			CHECK_INT_EQ(PG(&c->tracks[0]).max_lag_time_ms, times[i].ms);
		config_destroy(c);
	}
	EXPECT_ERRORS(TRACK_A "max_lag_time = 999ms\n",
		      "3: invalid value \"999ms\" for max_lag_time: must be between 1s and 24h, or 0 "
		      "to disable");
	EXPECT_ERRORS(TRACK_A "max_lag_time = 86401s\n",
		      "3: invalid value \"86401s\" for max_lag_time: must be between 1s and 24h, or "
		      "0 to disable");
	EXPECT_ERRORS(TRACK_A "max_lag_time = 25h\n",
		      "3: invalid value \"25h\" for max_lag_time: must be between 1s and 24h, or 0 "
		      "to disable");
	EXPECT_ERRORS(TRACK_A "max_lag_time = 10 s\n",
		      "3: invalid value \"10 s\" for max_lag_time: expected a duration like 250ms or "
		      "2s");

	/* The new values: -254..254 like the others. */
	EXPECT_ERRORS(TRACK_A "value_stale = -255\n",
		      "3: invalid value \"-255\" for value_stale: must be between -254 and 254");
	EXPECT_ERRORS(TRACK_A "value_conflict = 255\n",
		      "3: invalid value \"255\" for value_conflict: must be between -254 and 254");
	EXPECT_ERRORS(TRACK_A "value_lagging = low\n",
		      "3: invalid value \"low\" for value_lagging: expected an integer");
}

static void test_track_settings_equal_peers(void)
{
	const char *base = TRACK_A "peer.b = 192.0.2.12\npeer.c = /tmp 5434\n";

	CHECK(EQUAL_TRACKS(base, base));
	/* Peers on other lines (the only difference): equal. */
	CHECK(EQUAL_TRACKS(base, "\n\n; moved\n" TRACK_A "\n\npeer.b = 192.0.2.12\n\n"
				 "peer.c = /tmp   5434 ; comment\n"));
	/* A changed address, port, name or peer count is a change. */
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.13\npeer.c = /tmp 5434\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12 5432\npeer.c = /tmp 5434\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\npeer.c = /tmp\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\npeer.c = /var/tmp 5434\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\npeer.d = /tmp 5434\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\npeer.c = /tmp 5434\npeer.d = ::1\n"));
	/* The new keys count too. */
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /nonexistent/a\npeer.b = 192.0.2.12\n"
				  "peer.c = /tmp 5434\nmax_lag = 1MB\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /nonexistent/a\npeer.b = 192.0.2.12\n"
				  "peer.c = /tmp 5434\nmax_lag_time = 10s\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /nonexistent/a\npeer.b = 192.0.2.12\n"
				  "peer.c = /tmp 5434\nvalue_lagging = -49\n"));

	/* On constructed settings: every peer's line is ignored, its address is not. */
	static struct track_settings x, y;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	x.n_probe_keys = y.n_probe_keys = PG_MAX_PEERS;
	for (int i = 0; i < PG_MAX_PEERS; i++) {
		snprintf(x.probe_keys[i].key, sizeof(x.probe_keys[i].key), "peer.p%d", i);
		snprintf(y.probe_keys[i].key, sizeof(y.probe_keys[i].key), "peer.p%d", i);
		snprintf(x.probe_keys[i].value, sizeof(x.probe_keys[i].value), "192.0.2.%d", i);
		snprintf(y.probe_keys[i].value, sizeof(y.probe_keys[i].value), "192.0.2.%d", i);
		x.probe_keys[i].line = 10 + i;
		y.probe_keys[i].line = 100 + 7 * i;
	}
	CHECK(track_settings_equal(&x, &y));
	/* Comparing does not change its arguments. */
	CHECK_INT_EQ(x.probe_keys[7].line, 17);
	CHECK_INT_EQ(y.probe_keys[7].line, 149);
	y.probe_keys[7].value[8] = '3';
	CHECK(!track_settings_equal(&x, &y));
	y.probe_keys[7].value[8] = '7';
	CHECK(track_settings_equal(&x, &y));
	snprintf(y.probe_keys[7].value, sizeof(y.probe_keys[7].value), "192.0.2.7 5432");
	CHECK(!track_settings_equal(&x, &y));
	snprintf(y.probe_keys[7].value, sizeof(y.probe_keys[7].value), "192.0.2.7");
	snprintf(y.probe_keys[8].key, sizeof(y.probe_keys[8].key), "max_lag");
	snprintf(y.probe_keys[8].value, sizeof(y.probe_keys[8].value), "1");
	y.n_probe_keys++;
	CHECK(!track_settings_equal(&x, &y));
}

static void test_all_errors_in_one_run(void)
{
	char text[2048], long_line[300];

	memset(long_line, 'z', 231);
	long_line[231] = '\0';
	snprintf(text, sizeof(text),
		 "[global]\n"                       /* 1 */
		 "file_check_interval = 20ms\n"     /* 2  out of range */
		 "[track a]\n"                      /* 3 */
		 "file = /tmp/t/a\n"                /* 4 */
		 "colour = blue\n"                  /* 5  unknown key */
		 "interval = soon\n"                /* 6  bad duration */
		 "rise = 0\n"                       /* 7  out of range */
		 "port = 5432\n"                    /* 8 */
		 "port = 5433\n"                    /* 9  duplicate key */
		 "application_name = %s\n"          /* 10 250-byte line */
		 "fall = 2\n"                       /* 11 */
		 "[track b]\n"                      /* 12 missing file */
		 "port = 5432\n"                    /* 13 */
		 "[nonsense]\n"                     /* 14 unknown section */
		 "[track c]\n"                      /* 15 */
		 "file = /tmp/t/c\n"                /* 16 */
		 "value_primary = 255\n"            /* 17 out of range */
		 "this is not a key\n"              /* 18 syntax */
		 "x = 1\n",                          /* 19 unknown key */
		 long_line);
	EXPECT_ERRORS(text,
		      "2: invalid value \"20ms\" for file_check_interval: must be between 100ms "
		      "and 10s",
		      "5: unknown key \"colour\" in section [track a]",
		      "6: invalid value \"soon\" for interval: expected a duration like 250ms or 2s",
		      "7: invalid value \"0\" for rise: must be between 1 and 100",
		      "9: duplicate key \"port\"",
		      "10: line is longer than 197 bytes",
		      "12: track \"b\": missing required key \"file\"",
		      "14: " UNKNOWN_SECTION("nonsense"),
		      "17: invalid value \"255\" for value_primary: must be between -254 and 254",
		      "18: syntax error: expected KEY = VALUE",
		      "19: unknown key \"x\" in section [track c]");
}

static void test_syntax(void)
{
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\nthis line has no equals sign\n",
		      "3: syntax error: expected KEY = VALUE");
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\n[track b\nfile = /nonexistent/b\n",
		      "3: syntax error: section header without ']'",
		      "4: duplicate key \"file\"");
	/* A key before any section. */
	EXPECT_ERRORS("port = 5432\n[track a]\nfile = /a\n",
		      "1: key \"port\" outside of any section");
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_accept_interval_default();
	test_host_names();
	test_priority_layout_warnings();
	test_node_key();
	test_track_settings_equal();
	test_peers();
	test_peer_errors();
	test_peer_addresses();
	test_peer_ports();
	test_guard_keys();
	test_lag_time_keys();
	test_track_settings_equal_peers();
	test_all_errors_in_one_run();
	test_syntax();
	scratch_remove(dir);
	CHECK_DONE();
}
