/*
 * track_facts (src/trackd/track_facts.h) and the host's counters of a
 * track (track.h): what a probe describes through struct pgtrackd_facts,
 * read back with track_fact_int/_double/_text; a module built for ABI 2
 * describes nothing and is never asked; failures counted by class, state
 * changes, since when, the reason.
 */
#include <errno.h>
#include <math.h>

#include "check.h"
#include "track_fixture.h"
#include "trackd_expose.h"

static char dir[256];
static struct ev_loop *loop;

static void facts_mixed(const struct pgtrackd_facts *out)
{
	out->put_int(out, "lag_bytes", 16777216);
	out->put_int(out, "lag_bytes", 4096); /* the last value counts */
	out->put_double(out, "lag_seconds", 1.5);
	out->put_double(out, "nan", NAN);     /* not a figure: left out */
	out->put_text(out, "replication_state", "streaming");
	out->put_text(out, "latin1", "caf\xe9 \"quoted\"");
	out->put_text(out, "null", NULL);
	out->put_int(out, NULL, 7);           /* no key in an object: dropped */
	out->begin_list(out, "peers");
	out->begin_object(out, "ignored-key");
	out->put_text(out, "name", "b");
	out->put_int(out, "reachable", 1);
	out->end(out);
	out->put_int(out, NULL, 42);
	out->end(out);
	/* deeper than the host keeps: dropped, and the ends still match */
	out->begin_object(out, "d1");
	out->begin_object(out, "d2");
	out->begin_object(out, "d3");
	out->begin_object(out, "d4");
	out->begin_object(out, "d5");
	out->put_int(out, "deep", 5);
	out->end(out);
	out->put_int(out, "four", 4);
	out->end(out);
	out->end(out);
	out->end(out);
	out->end(out);
	out->end(out); /* one end too many: ignored */
	out->put_int(out, "after", 1);
	out->begin_object(out, "left_open");
	out->put_int(out, "x", 1);
}

static void test_facts_read_back(void)
{
	struct fixture_module fm;
	struct fixture_probe *probe;
	struct track *t;
	struct json_object *obj, *peers, *peer, *d;
	int64_t i;
	double d_value;

	fixture_module_init(&fm, &fixture_ops_abi3);
	t = fixture_track(loop, dir, "facts", &fm, &probe);
	CHECK(t != NULL);
	if (!t)
		return;
	probe->facts = facts_mixed;
	CHECK_INT_EQ(track_fact_int(t, "lag_bytes", &i), 0);
	CHECK_INT_EQ(i, 4096);
	CHECK_INT_EQ(track_fact_double(t, "lag_seconds", &d_value), 0);
	CHECK(d_value == 1.5);
	CHECK_INT_EQ(track_fact_double(t, "lag_bytes", &d_value), 0); /* an int reads as a double */
	CHECK(d_value == 4096.0);
	CHECK_INT_EQ(track_fact_int(t, "lag_seconds", &i), -ENOENT);  /* not the other way */
	CHECK_INT_EQ(track_fact_double(t, "nan", &d_value), -ENOENT);
	CHECK_INT_EQ(track_fact_int(t, "missing", &i), -ENOENT);
	CHECK_STR_EQ(track_fact_text(t, "replication_state"), "streaming");
	CHECK_STR_EQ(track_fact_text(t, "latin1"), "caf\xef\xbf\xbd \"quoted\"");
	CHECK(track_fact_text(t, "null") == NULL);
	CHECK(track_fact_text(t, "lag_bytes") == NULL);
	CHECK_INT_EQ(track_fact_int(t, "after", &i), 0);
	/* one describe for all of these: the loop did not move on */
	CHECK_INT_EQ(probe->describes, 1);

	obj = (struct json_object *)track_facts_get(t);
	CHECK(json_object_object_get_ex(obj, "peers", &peers));
	CHECK_INT_EQ(json_object_array_length(peers), 2);
	peer = json_object_array_get_idx(peers, 0);
	CHECK(json_object_object_get_ex(peer, "name", &d));
	CHECK_STR_EQ(json_object_get_string(d), "b");
	CHECK_INT_EQ(json_object_get_int(json_object_array_get_idx(peers, 1)), 42);
	CHECK(json_object_object_get_ex(obj, "d1", &d));
	CHECK(json_object_object_get_ex(d, "d2", &d));
	CHECK(json_object_object_get_ex(d, "d3", &d));
	CHECK(json_object_object_get_ex(d, "d4", &d));
	CHECK(!json_object_object_get_ex(d, "d5", NULL));
	CHECK(json_object_object_get_ex(d, "four", NULL));
	CHECK(json_object_object_get_ex(obj, "left_open", NULL));

	/* the next loop iteration describes anew */
	ev_sleep(0.002);
	ev_now_update(loop);
	CHECK_INT_EQ(track_fact_int(t, "lag_bytes", &i), 0);
	CHECK_INT_EQ(probe->describes, 2);
	track_destroy(t);
}

static void test_abi2_module_has_no_facts(void)
{
	struct fixture_module fm;
	struct fixture_probe *probe;
	struct track *t;
	int64_t i;

	fixture_module_init(&fm, &fixture_ops_abi2);
	t = fixture_track(loop, dir, "old", &fm, &probe);
	CHECK(t != NULL);
	if (!t)
		return;
	probe->facts = facts_mixed;
	CHECK(track_facts_get(t) == NULL);
	CHECK_INT_EQ(track_fact_int(t, "lag_bytes", &i), -ENOENT);
	CHECK(track_fact_text(t, "replication_state") == NULL);
	CHECK_INT_EQ(probe->describes, 0);
	/* it still reports, through the host it was given */
	probe->host->report(probe->host, PGTRACKD_STATE_PRIMARY, "old module");
	CHECK_INT_EQ(t->verdict.state, TRACK_PRIMARY);
	track_destroy(t);
}

static void test_counters(void)
{
	struct fixture_module fm;
	struct fixture_probe *probe;
	const struct pgtrackd_host *h;
	struct track *t;
	double created;

	fixture_module_init(&fm, &fixture_ops_abi3);
	t = fixture_track(loop, dir, "count", &fm, &probe);
	CHECK(t != NULL);
	if (!t)
		return;
	h = probe->host;
	created = t->stats.since;
	CHECK(created > 0.0);
	CHECK(t->stats.first_verdict == 0.0);
	CHECK_INT_EQ(t->stats.state_changes, 0);

	ev_sleep(0.002);
	ev_now_update(loop);
	h->report(h, PGTRACKD_STATE_PRIMARY, "up");
	CHECK_INT_EQ(t->stats.state_changes, 1);
	CHECK(t->stats.since > created);
	CHECK(t->stats.first_verdict == t->stats.since);
	CHECK_STR_EQ(t->stats.reason, "up");
	h->report(h, PGTRACKD_STATE_PRIMARY, "still up");
	CHECK_STR_EQ(t->stats.reason, "still up");
	CHECK_INT_EQ(t->stats.state_changes, 1);

	/* one failure, short of fall = 2: counted, but not the state's reason */
	h->report_failure(h, PGTRACKD_FAILURE_TIMEOUT, "timed out");
	CHECK_INT_EQ(t->verdict.state, TRACK_PRIMARY);
	CHECK_STR_EQ(t->stats.reason, "still up");
	CHECK_STR_EQ(t->stats.last_failure, "timed out");
	h->report(h, PGTRACKD_STATE_FAIL, "plain failure"); /* report's FAIL: other */
	CHECK_INT_EQ(t->verdict.state, TRACK_DOWN);
	CHECK_STR_EQ(t->stats.reason, "plain failure");
	h->report_failure(h, (enum pgtrackd_failure)99, "out of range"); /* other */
	h->report_failure(h, PGTRACKD_FAILURE_REFUSED, "refused");
	CHECK_INT_EQ(t->stats.failures[PGTRACKD_FAILURE_TIMEOUT], 1);
	CHECK_INT_EQ(t->stats.failures[PGTRACKD_FAILURE_OTHER], 2);
	CHECK_INT_EQ(t->stats.failures[PGTRACKD_FAILURE_REFUSED], 1);
	CHECK_INT_EQ(t->stats.state_changes, 2);
	CHECK_STR_EQ(t->stats.reason, "refused");

	h->report(h, PGTRACKD_STATE_STANDBY, "back");
	CHECK_INT_EQ(t->stats.state_changes, 3);
	track_destroy(t);
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	loop = ev_loop_new(EVFLAG_AUTO);
	test_facts_read_back();
	test_abi2_module_has_no_facts();
	test_counters();
	ev_loop_destroy(loop);
	scratch_remove(dir);
	CHECK_DONE();
}
