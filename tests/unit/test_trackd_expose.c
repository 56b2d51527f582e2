/*
 * trackd_expose (src/trackd/trackd_expose.h): /status and /metrics of real
 * tracks run by a probe compiled into the test (track_fixture.h): a standby
 * that describes postgres-like facts with peers, a module built for ABI 2
 * (no facts), a track that has not decided yet.  The JSON is parsed back
 * with json-c (a reason with quotes and invalid UTF-8 among it); the
 * metrics are checked by content and, with PROMTOOL set (meson does when
 * Debian's prometheus package is installed), by `promtool check metrics`.
 */
#include <errno.h>
#include <sys/wait.h>

#include "check.h"
#include "promtool.h"
#include "jsonutil.h"
#include "track_fixture.h"
#include "trackd_expose.h"

static char dir[256];
static struct ev_loop *loop;

static void standby_facts(const struct pgtrackd_facts *out)
{
	out->put_double(out, "probe_latency_seconds", 0.0025);
	out->put_int(out, "in_recovery", 1);
	out->put_int(out, "lag_bytes", 16777216);
	out->put_int(out, "receive_lag_bytes", 4096);
	out->put_double(out, "lag_seconds", 1.5);
	out->put_text(out, "replication_state", "streaming");
	out->put_int(out, "accept_failures", 2);
	out->begin_list(out, "peers");
	out->begin_object(out, NULL);
	out->put_text(out, "name", "db1");
	out->put_text(out, "answer", "primary");
	out->put_double(out, "age_seconds", 0.4);
	out->put_int(out, "reachable", 1);
	out->put_int(out, "timeline", 3);
	out->end(out);
	out->begin_object(out, NULL);
	out->put_text(out, "name", "db\"3\"");
	out->put_text(out, "answer", "failed");
	out->put_double(out, "age_seconds", 2.0);
	out->put_int(out, "reachable", 0);
	out->end(out);
	out->end(out);
}

struct world {
	struct fixture_module abi3, abi2;
	struct fixture_probe *p_standby, *p_old, *p_new;
	struct track *tracks[3];
	struct trackd_view view;
};

static void world_create(struct world *w)
{
	fixture_module_init(&w->abi3, &fixture_ops_abi3);
	fixture_module_init(&w->abi2, &fixture_ops_abi2);
	w->tracks[0] = fixture_track(loop, dir, "main", &w->abi3, &w->p_standby);
	w->tracks[1] = fixture_track(loop, dir, "old", &w->abi2, &w->p_old);
	w->tracks[2] = fixture_track(loop, dir, "new", &w->abi3, &w->p_new);
	if (!w->tracks[0] || !w->tracks[1] || !w->tracks[2])
		abort();
	w->p_standby->facts = standby_facts;
	w->view = (struct trackd_view){ .tracks = w->tracks, .n_tracks = 3,
					.started = ev_now(loop) - 10.0,
					.started_wall = 1700000000.0, .version = "1.2.3" };
	/* main: a standby after a timeout and a failure with a hostile reason */
	const struct pgtrackd_host *h = w->p_standby->host;

	h->report_failure(h, PGTRACKD_FAILURE_TIMEOUT, "timed out");
	h->report_failure(h, PGTRACKD_FAILURE_AUTH, "FATAL: \"r\xf4le\" \\ does not exist\n");
	h->report(h, PGTRACKD_STATE_STANDBY, "in recovery");
	w->p_old->host->report(w->p_old->host, PGTRACKD_STATE_MAINTENANCE, "flag file exists");
}

static void world_destroy(struct world *w)
{
	for (int i = 0; i < 3; i++)
		track_destroy(w->tracks[i]);
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *text_of(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static void check_main_track(struct json_object *t, double now)
{
	struct json_object *fails, *lag, *peers;

	CHECK_STR_EQ(text_of(t, "name"), "main");
	CHECK_STR_EQ(text_of(t, "state"), "standby");
	CHECK_INT_EQ(json_object_get_int(get(t, "value")), 53);
	CHECK_STR_EQ(text_of(t, "reason"), "in recovery");
	CHECK_INT_EQ(json_object_get_int(get(t, "state_changes")), 2); /* unknown, down, standby */
	CHECK(json_object_get_double(get(t, "since_seconds_ago")) >= 0.0);
	CHECK(json_object_get_double(get(t, "since_seconds_ago")) < 1.0 + (now - ev_now(loop)));
	CHECK(strncmp(text_of(t, "since"), "2023-11-14T22:13:", 17) == 0);
	fails = get(t, "failures");
	CHECK_INT_EQ(json_object_get_int(get(get(fails, "by_reason"), "timeout")), 1);
	CHECK_INT_EQ(json_object_get_int(get(get(fails, "by_reason"), "auth")), 1);
	CHECK_INT_EQ(json_object_get_int(get(get(fails, "by_reason"), "other")), 0);
	/* the libpq text kept whole: quotes, backslash, newline; the bad byte replaced */
	CHECK_STR_EQ(text_of(fails, "last"),
		     "FATAL: \"r\xef\xbf\xbdle\" \\ does not exist\n");
	CHECK(json_object_get_double(get(t, "probe_latency_seconds")) == 0.0025);
	lag = get(t, "lag");
	CHECK_INT_EQ(json_object_get_int64(get(lag, "bytes")), 16777216);
	CHECK_INT_EQ(json_object_get_int64(get(lag, "receive_bytes")), 4096);
	CHECK(json_object_get_double(get(lag, "seconds")) == 1.5);
	CHECK_STR_EQ(text_of(lag, "replication_state"), "streaming");
	peers = get(t, "peers");
	CHECK_INT_EQ(json_object_array_length(peers), 2);
	CHECK_STR_EQ(text_of(json_object_array_get_idx(peers, 0), "answer"), "primary");
	CHECK(json_object_get_double(get(json_object_array_get_idx(peers, 1), "age_seconds")) == 2.0);
	CHECK(get(get(t, "facts"), "accept_failures") != NULL);
}

static void test_status(void)
{
	struct world w;
	struct json_tokener *tok;
	struct json_object *doc, *tracks, *t;
	double now;
	char *text;
	size_t len;

	world_create(&w);
	now = ev_now(loop) + 0.5;
	CHECK_INT_EQ(trackd_status_json(&w.view, now, &text, &len), 0);
	CHECK_INT_EQ(strlen(text), len);
	if (getenv("EXPOSE_DUMP")) /* to read it: EXPOSE_DUMP=1 build/tests/unit/test_trackd_expose */
		printf("%s\n", text);
	/* valid UTF-8 throughout, so that a strict parser takes it */
	for (const unsigned char *s = (const unsigned char *)text; *s;) {
		size_t n = jsonutil_utf8_len(s);

		CHECK(n > 0);
		s += n ? n : 1;
	}
	CHECK(strstr(text, "\\/") == NULL);
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	doc = json_tokener_parse_ex(tok, text, (int)len);
	CHECK(doc != NULL);
	CHECK_STR_EQ(text_of(doc, "version"), "1.2.3");
	CHECK_STR_EQ(text_of(doc, "started"), "2023-11-14T22:13:20.000Z");
	CHECK(json_object_get_double(get(doc, "uptime_seconds")) == 10.5);
	tracks = get(doc, "tracks");
	CHECK_INT_EQ(json_object_array_length(tracks), 3);
	check_main_track(json_object_array_get_idx(tracks, 0), now);

	t = json_object_array_get_idx(tracks, 1); /* ABI 2: no facts, no figures */
	CHECK_STR_EQ(text_of(t, "state"), "maintenance");
	CHECK_INT_EQ(json_object_get_int(get(t, "value")), -254);
	CHECK(get(t, "facts") == NULL && get(t, "lag") == NULL && get(t, "peers") == NULL);
	CHECK_STR_EQ(text_of(t, "probe"), "fixture-abi2");

	t = json_object_array_get_idx(tracks, 2); /* no verdict yet */
	CHECK_STR_EQ(text_of(t, "state"), "unknown");
	CHECK(get(t, "first_verdict_seconds") == NULL);
	CHECK(get(t, "lag") == NULL);
	json_object_put(doc);
	json_tokener_free(tok);
	free(text);
	world_destroy(&w);
}

static void check_line(const char *text, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	if (!strstr(text, want))
		printf("missing line: %s\n", line);
	CHECK(strstr(text, want) != NULL);
}

static void test_metrics(void)
{
	const char *promtool = getenv("PROMTOOL");
	struct world w;
	char *text;
	size_t len;

	world_create(&w);
	CHECK_INT_EQ(trackd_metrics_text(&w.view, ev_now(loop), &text, &len), 0);
	CHECK_INT_EQ(strlen(text), len);
	if (getenv("EXPOSE_DUMP"))
		fputs(text, stdout);
	check_line(text, "pgtrackd_build_info{version=\"1.2.3\"} 1");
	check_line(text, "pgtrackd_start_time_seconds 1700000000");
	check_line(text, "pgtrackd_up{track=\"main\"} 1");
	check_line(text, "pgtrackd_up{track=\"new\"} 0");
	check_line(text, "pgtrackd_track_state{track=\"main\",state=\"standby\"} 1");
	check_line(text, "pgtrackd_track_state{track=\"main\",state=\"down\"} 0");
	check_line(text, "pgtrackd_track_state{track=\"old\",state=\"maintenance\"} 1");
	check_line(text, "pgtrackd_track_state{track=\"new\",state=\"unknown\"} 1");
	check_line(text, "pgtrackd_track_value{track=\"main\"} 53");
	check_line(text, "pgtrackd_track_value{track=\"old\"} -254");
	check_line(text, "pgtrackd_probe_duration_seconds{track=\"main\"} 0.0025");
	check_line(text, "pgtrackd_probe_failures_total{track=\"main\",reason=\"timeout\"} 1");
	check_line(text, "pgtrackd_probe_failures_total{track=\"main\",reason=\"auth\"} 1");
	check_line(text, "pgtrackd_probe_failures_total{track=\"old\",reason=\"not_accepting\"} 0");
	check_line(text, "pgtrackd_state_changes_total{track=\"main\"} 2");
	check_line(text, "pgtrackd_accept_probe_failures_total{track=\"main\"} 2");
	check_line(text, "pgtrackd_track_file_rewrites_total{track=\"main\"} 0");
	check_line(text, "pgtrackd_replication_is_replica{track=\"main\"} 1");
	check_line(text, "pgtrackd_replication_lag_seconds{track=\"main\"} 1.5");
	check_line(text, "pgtrackd_replication_lag_bytes{track=\"main\"} 16777216");
	check_line(text, "pgtrackd_replication_receive_lag_bytes{track=\"main\"} 4096");
	check_line(text, "pgtrackd_peer_up{track=\"main\",peer=\"db1\"} 1");
	check_line(text, "pgtrackd_peer_up{track=\"main\",peer=\"db\\\"3\\\"\"} 0");
	/* a track without facts has no figures of them, and the ABI 2 one is never asked */
	CHECK(strstr(text, "pgtrackd_replication_is_replica{track=\"old\"}") == NULL);
	CHECK(strstr(text, "pgtrackd_probe_duration_seconds{track=\"new\"}") == NULL);
	CHECK_INT_EQ(w.p_old->describes, 0);
	/* one describe per loop iteration, however many families read the facts */
	CHECK_INT_EQ(w.p_standby->describes, 1);
	if (promtool && *promtool)
		CHECK_INT_EQ(promtool_check(text), 0);
	else
		printf("PROMTOOL not set: promtool check skipped\n");
	free(text);
	world_destroy(&w);
}

/* A primary's lag is 0, as postgres_exporter's pg_replication_lag_seconds. */
static void primary_facts(const struct pgtrackd_facts *out)
{
	out->put_int(out, "in_recovery", 0);
	out->put_int(out, "timeline", 4);
}

static void test_metrics_primary(void)
{
	struct world w;
	char *text;
	size_t len;

	world_create(&w);
	w.p_standby->facts = primary_facts;
	ev_sleep(0.002);
	ev_now_update(loop); /* the next iteration: described anew */
	CHECK_INT_EQ(trackd_metrics_text(&w.view, ev_now(loop), &text, &len), 0);
	check_line(text, "pgtrackd_replication_is_replica{track=\"main\"} 0");
	check_line(text, "pgtrackd_replication_lag_seconds{track=\"main\"} 0");
	check_line(text, "pgtrackd_timeline{track=\"main\"} 4");
	CHECK(strstr(text, "pgtrackd_replication_lag_bytes{track=\"main\"}") == NULL);
	free(text);
	world_destroy(&w);
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	loop = ev_loop_new(EVFLAG_AUTO);
	test_status();
	test_metrics();
	test_metrics_primary();
	ev_loop_destroy(loop);
	scratch_remove(dir);
	CHECK_DONE();
}
