/*
 * The built-in PostgreSQL probe's facts (probe_pg_facts.c, module ABI 3
 * describe): a standby with peers, a primary, a probe that has not
 * answered yet.  The probe's state is set by hand, as its checks leave it.
 */
#include <stdlib.h>

#include "check.h"
#include "monotime.h"
#include "probe_pg.h"
#include "track_facts.h"

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int64_t int_of(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	CHECK(v && json_object_is_type(v, json_type_int));
	return v ? json_object_get_int64(v) : -999;
}

static const char *text_of(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static struct pg_probe *probe_new(int n_peers)
{
	struct pg_probe *p = calloc(1, sizeof(*p));
	static const char *names[] = { "a", "b", "c" };

	if (!p)
		abort();
	p->latency = -1.0;
	p->settings.accept_interval_ms = 1000;
	p->settings.n_peers = n_peers;
	for (int i = 0; i < n_peers; i++)
		snprintf(p->settings.peers[i].name, sizeof(p->settings.peers[i].name), "%s",
			 names[i]);
	guard_init(&p->guard);
	return p;
}

static void test_standby_with_peers(void)
{
	struct pg_probe *p = probe_new(3);
	double now = monotime_now();
	struct json_object *o, *peers, *a, *b, *c;

	p->latency = 0.0042;
	p->session.state = PGCONN_READY;
	p->local = (struct pg_answer){ .valid = true, .in_recovery = true, .lag_bytes = 100,
				       .lag_seconds = -1.0, .lsn = 5000, .receive_lsn = 5100,
				       .receiver = PG_RECEIVER_STREAMING, .at = now - 0.5 };
	snprintf(p->local.receiver_status, sizeof(p->local.receiver_status), "streaming");
	snprintf(p->local.system_identifier, sizeof(p->local.system_identifier), "7300");
	p->guard.primary_peer = 0;
	p->guard.behind_bytes = 900;
	p->guard.behind_received = 800;
	p->guard.behind_seconds = 2.5;
	p->guard.rank = 1;
	p->guard.ranked = 2;
	p->accept_failures = 3;
	/* a: the primary; b: failed; c: never heard */
	p->peers[0] = (struct peer){ .heard = true, .heard_at = now - 1.0,
				     .answer = { .valid = true, .timeline = 4, .lsn = 5900,
						 .receive_lsn = -1 } };
	snprintf(p->peers[0].answer.system_identifier, 24, "7300");
	p->peers[1] = (struct peer){ .heard = true, .outage = true, .heard_at = now - 2.0 };

	o = track_facts_describe(pg_probe_describe, p);
	CHECK(o != NULL);
	if (!o)
		return;
	CHECK_INT_EQ(int_of(o, "in_recovery"), 1);
	CHECK_INT_EQ(int_of(o, "lag_bytes"), 900);         /* the guard's, against the primary */
	CHECK_INT_EQ(int_of(o, "receive_lag_bytes"), 800);
	CHECK(json_object_get_double(get(o, "lag_seconds")) == 2.5);
	CHECK(json_object_get_double(get(o, "probe_latency_seconds")) == 0.0042);
	CHECK_STR_EQ(text_of(o, "replication_state"), "streaming");
	CHECK_STR_EQ(text_of(o, "primary"), "a");
	CHECK_STR_EQ(text_of(o, "system_identifier"), "7300");
	CHECK_INT_EQ(int_of(o, "rank"), 1);
	CHECK_INT_EQ(int_of(o, "connected"), 1);
	CHECK_INT_EQ(int_of(o, "accept_failures"), 3);
	CHECK_STR_EQ(text_of(o, "accept_probe"), "ok");
	CHECK(get(o, "timeline") == NULL); /* a standby's is not asked */
	peers = get(o, "peers");
	CHECK_INT_EQ(json_object_array_length(peers), 3);
	a = json_object_array_get_idx(peers, 0);
	b = json_object_array_get_idx(peers, 1);
	c = json_object_array_get_idx(peers, 2);
	CHECK_STR_EQ(text_of(a, "name"), "a");
	CHECK_STR_EQ(text_of(a, "answer"), "primary");
	CHECK_INT_EQ(int_of(a, "reachable"), 1);
	CHECK_INT_EQ(int_of(a, "timeline"), 4);
	CHECK_INT_EQ(int_of(a, "position"), 5900);
	CHECK(json_object_get_double(get(a, "age_seconds")) >= 1.0);
	CHECK_STR_EQ(text_of(b, "answer"), "failed");
	CHECK_INT_EQ(int_of(b, "reachable"), 0);
	CHECK(get(b, "position") == NULL);
	CHECK_STR_EQ(text_of(c, "answer"), "pending");
	CHECK(get(c, "age_seconds") == NULL);
	json_object_put(o);

	/* without a primary among the peers: the local backlog, no receive lag */
	guard_init(&p->guard);
	p->local.receiver = PG_RECEIVER_NONE;
	p->local.receiver_status[0] = '\0';
	o = track_facts_describe(pg_probe_describe, p);
	CHECK_INT_EQ(int_of(o, "lag_bytes"), 100);
	CHECK(get(o, "receive_lag_bytes") == NULL);
	CHECK(json_object_get_double(get(o, "lag_seconds")) == 0.0); /* no backlog */
	CHECK_STR_EQ(text_of(o, "replication_state"), "none");
	json_object_put(o);
	free(p);
}

static void test_primary_and_nothing_yet(void)
{
	struct pg_probe *p = probe_new(0);
	struct json_object *o;

	o = track_facts_describe(pg_probe_describe, p);
	CHECK(get(o, "in_recovery") == NULL);
	CHECK(get(o, "probe_latency_seconds") == NULL);
	CHECK(get(o, "peers") == NULL);
	CHECK_INT_EQ(int_of(o, "connected"), 0);
	json_object_put(o);

	p->local = (struct pg_answer){ .valid = true, .timeline = 3, .lsn = 77, .receive_lsn = -1,
				       .lag_bytes = -1, .at = monotime_now() };
	p->accept_failing = true;
	snprintf(p->accept_reason, sizeof(p->accept_reason), "not accepting: caf\xe9");
	o = track_facts_describe(pg_probe_describe, p);
	CHECK_INT_EQ(int_of(o, "in_recovery"), 0);
	CHECK_INT_EQ(int_of(o, "timeline"), 3);
	CHECK_INT_EQ(int_of(o, "position"), 77);
	CHECK(get(o, "lag_bytes") == NULL);
	CHECK(get(o, "replication_state") == NULL);
	CHECK_STR_EQ(text_of(o, "accept_probe"), "failing");
	CHECK_STR_EQ(text_of(o, "accept_reason"), "not accepting: caf\xef\xbf\xbd");
	json_object_put(o);
	free(p);
}

int main(void)
{
	test_standby_with_peers();
	test_primary_and_nothing_yet();
	CHECK_DONE();
}
