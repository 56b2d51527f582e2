/*
 * sync_policy (src/probes/postgres/sync_policy.h): when synchronous
 * replication is relaxed and turned back on, judged on constructed polls;
 * the poll's parser on a result built with libpq; the keys' checks.
 */
#include <stdlib.h>

#include "check.h"
#include "pg_settings.h"
#include "sync_policy.h"

#define NAMES "ANY 1 (*)"
#define MB (INT64_C(1) << 20)

static struct sync_observation primary_at(int64_t flush, const char *current)
{
	struct sync_observation o = { .flush_lsn = flush, .sees_stats = true };

	snprintf(o.current, sizeof(o.current), "%s", current);
	return o;
}

static void add_standby(struct sync_observation *o, int64_t flush)
{
	o->standby_flush[o->n_standbys++] = flush;
	o->n_walsenders++;
}

static struct sync_context context(void)
{
	return (struct sync_context){ .names = NAMES, .needed = 1, .catchup = 16 * MB,
				      .relax_lsn = -1, .waited = -1.0, .relax_after = 5.0,
				      .verdict = PGTRACKD_STATE_PRIMARY };
}

static void test_names(void)
{
	CHECK_INT_EQ(sync_names_needed("*"), 1);
	CHECK_INT_EQ(sync_names_needed("n2, n3"), 1);
	CHECK_INT_EQ(sync_names_needed("ANY 1 (*)"), 1);
	CHECK_INT_EQ(sync_names_needed("any 2 (n1, n2, n3)"), 2);
	CHECK_INT_EQ(sync_names_needed("FIRST 3 (a,b,c)"), 3);
	CHECK_INT_EQ(sync_names_needed("2 (a, b)"), 2);
	CHECK_INT_EQ(sync_names_needed("2(a, b)"), 2);
	/* A standby whose name is digits, not a count. */
	CHECK_INT_EQ(sync_names_needed("2, 3"), 1);
	CHECK_INT_EQ(sync_names_needed("ANY 0 (a)"), 1);
	CHECK_INT_EQ(sync_names_needed("ANY 99 (*)"), SYNC_MAX_STANDBYS);
	/* ANY as a standby's name. */
	CHECK_INT_EQ(sync_names_needed("ANYTHING"), 1);

	CHECK(sync_names_valid("ANY 1 (*)"));
	CHECK(sync_names_valid("FIRST 2 (\"node-1\", n2.dc)"));
	CHECK(!sync_names_valid(""));
	CHECK(!sync_names_valid("n1'; DROP TABLE x; --"));
	CHECK(!sync_names_valid("n1\\"));
	CHECK(!sync_names_valid("n1\n"));
}

static void test_caught_up(void)
{
	struct sync_observation o = primary_at(100 * MB, NAMES);

	CHECK_INT_EQ(sync_caught_up(&o, 16 * MB, -1), 0);
	add_standby(&o, 100 * MB);
	add_standby(&o, 90 * MB);
	add_standby(&o, 80 * MB);
	CHECK_INT_EQ(sync_caught_up(&o, 16 * MB, -1), 2);
	CHECK_INT_EQ(sync_caught_up(&o, 0, -1), 1);
	/* Past where the primary relaxed: the one at 90 MB has not flushed 95 MB. */
	CHECK_INT_EQ(sync_caught_up(&o, 16 * MB, 95 * MB), 1);
	/* A standby (no flush position of its own): none. */
	o.flush_lsn = -1;
	CHECK_INT_EQ(sync_caught_up(&o, 16 * MB, -1), 0);
}

static void test_standby_relaxed(void)
{
	struct sync_context c = context();
	struct sync_observation o = primary_at(-1, NAMES);

	/* sync_promotion = relaxed: a promotion starts relaxed, however many standbys there are. */
	c.promotion_waits = false;
	o.in_recovery = true;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);
	c.other_standbys = -1;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);
	c.other_standbys = 2;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);
	snprintf(o.current, sizeof(o.current), "%s", "");
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);

	/* Promoted: strict once a standby has followed it and caught up. */
	o = primary_at(100 * MB, "");
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	add_standby(&o, 50 * MB);
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	add_standby(&o, 99 * MB);
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
}

static void test_standby(void)
{
	struct sync_context c = context();
	struct sync_observation o = primary_at(-1, NAMES);

	c.promotion_waits = true;
	o.in_recovery = true;
	/* The only standby relaxes, whatever the verdict: its promotion would wait for nobody. */
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);
	c.verdict = PGTRACKD_STATE_LAGGING;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);
	snprintf(o.current, sizeof(o.current), "%s", "");
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	/* The operator's own value on a standby is taken away too: pgtrackd owns it. */
	snprintf(o.current, sizeof(o.current), "%s", "n9");
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);

	/* Not every peer heard yet: nothing changes on a standby. */
	c.other_standbys = -1;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	/* Another standby answers: it would follow a promotion here; strict, and kept. */
	c.other_standbys = 1;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
	snprintf(o.current, sizeof(o.current), "%s", "");
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
	snprintf(o.current, sizeof(o.current), "%s", NAMES);
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	/* ... however long commits wait somewhere: a standby commits nothing. */
	c.waited = 3600.0;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	/* ANY 2 with one other standby: a promotion would wait for ever; relaxed. */
	c.needed = 2;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);
	c.other_standbys = 2;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
}

static void test_relax(void)
{
	struct sync_context c = context();
	struct sync_observation o = primary_at(100 * MB, NAMES);

	/* Strict, nobody waits: it stays. */
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	/* A commit has waited, not yet long enough. */
	c.waited = 4.9;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	c.waited = 5.0;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);
	/* A standby that streams caught up but does not acknowledge (hung): relaxed too. */
	add_standby(&o, 100 * MB);
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_RELAX);
	/* Only a healthy primary relaxes: not one that is failing or judged lagging. */
	c.verdict = PGTRACKD_STATE_FAIL;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	c.verdict = PGTRACKD_STATE_OK;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	/* relax_after 0: never. */
	c = context();
	c.waited = 3600.0;
	c.relax_after = 0.0;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
}

static void test_restore(void)
{
	struct sync_context c = context();
	struct sync_observation o = primary_at(100 * MB, "");

	/* Relaxed, no standby: it stays relaxed (a new primary that nobody follows yet). */
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	/* A standby streams, far behind: not yet. */
	add_standby(&o, 50 * MB);
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	/* Within sync_catchup: strict. */
	o.standby_flush[0] = 90 * MB;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
	/* But not before it has flushed what the primary had when it relaxed. */
	c.relax_lsn = 95 * MB;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	o.standby_flush[0] = 95 * MB;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
	/* ANY 2 needs two. */
	c = context();
	c.needed = 2;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
	add_standby(&o, 99 * MB);
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
	/* Someone else's value is replaced when the standbys are there ... */
	c = context();
	snprintf(o.current, sizeof(o.current), "%s", "n9");
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
	/* ... and relaxed like ours when commits wait on it (postgresql.conf's own names). */
	struct sync_observation alone = primary_at(100 * MB, "ANY 1 (*), n9");

	CHECK_INT_EQ(sync_decide(&alone, &c), SYNC_KEEP);
	c.waited = 6.0;
	CHECK_INT_EQ(sync_decide(&alone, &c), SYNC_RELAX);
}

static void test_lost_primary(void)
{
	struct sync_context c = context();
	struct sync_observation o = primary_at(100 * MB, "");

	/* A stale or conflicting primary goes strict without any standby: its commits wait. */
	c.verdict = PGTRACKD_STATE_STALE;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
	c.verdict = PGTRACKD_STATE_CONFLICT;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_STRICT);
	/* and never relaxes, however long commits wait. */
	snprintf(o.current, sizeof(o.current), "%s", NAMES);
	c.waited = 3600.0;
	CHECK_INT_EQ(sync_decide(&o, &c), SYNC_KEEP);
}

static PGresult *poll_result(const char *const values[8])
{
	static const char *const names[8] = { "r", "s", "f", "l", "w", "o", "n", "h" };
	PGresAttDesc attrs[8];
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	memset(attrs, 0, sizeof(attrs));
	for (int i = 0; i < 8; i++) {
		attrs[i].name = (char *)names[i];
		attrs[i].format = 0;
		attrs[i].typlen = -1;
		attrs[i].atttypmod = -1;
	}
	CHECK(PQsetResultAttrs(res, 8, attrs));
	for (int i = 0; i < 8; i++)
		CHECK(PQsetvalue(res, 0, i, (char *)values[i], values[i] ? (int)strlen(values[i]) : -1));
	return res;
}

static void test_parse(void)
{
	const char *const primary[8] = { "f", "ANY 1 (*)", "104857600", "104857600,94371840",
					 "3", "4242 2026-12-05 12:00:00.1+00", "2", "t" };
	const char *const standby[8] = { "t", "", NULL, NULL, "0", NULL, "0", "f" };
	struct sync_observation o;
	PGresult *res = poll_result(primary);

	CHECK(sync_parse(res, &o));
	CHECK(!o.in_recovery);
	CHECK_STR_EQ(o.current, "ANY 1 (*)");
	CHECK_INT_EQ(o.flush_lsn, 100 * MB);
	CHECK_INT_EQ(o.n_standbys, 2);
	CHECK_INT_EQ(o.standby_flush[1], 90 * MB);
	CHECK_INT_EQ(o.n_walsenders, 3);
	CHECK_STR_EQ(o.oldest_wait, "4242 2026-12-05 12:00:00.1+00");
	CHECK_INT_EQ(o.n_waiting, 2);
	CHECK(o.sees_stats);
	PQclear(res);

	res = poll_result(standby);
	CHECK(sync_parse(res, &o));
	CHECK(o.in_recovery);
	CHECK_STR_EQ(o.current, "");
	CHECK_INT_EQ(o.flush_lsn, -1);
	CHECK_INT_EQ(o.n_standbys, 0);
	CHECK_STR_EQ(o.oldest_wait, "");
	CHECK(!o.sees_stats);
	PQclear(res);

	/* Not a poll: another shape of result. */
	res = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
	CHECK(!sync_parse(res, &o));
	PQclear(res);
}

static int problems;
static char last_problem[600];

static void note_problem(void *ctx, int item, bool section, const char *message)
{
	(void)ctx;
	(void)item;
	(void)section;
	problems++;
	snprintf(last_problem, sizeof(last_problem), "%s", message);
}

static int parse_one(struct pg_settings *s, const char *key, const char *value)
{
	struct pgtrackd_dict_item item = { .key = key, .value = value };
	struct pgtrackd_dict config = { .items = &item, .n_items = key ? 1 : 0 };

	problems = 0;
	last_problem[0] = '\0';
	return pg_settings_parse(s, &config, "pg", 1000, 60000, note_problem, NULL);
}

static void test_keys(void)
{
	struct pg_settings *s = malloc(sizeof(*s));

	CHECK_INT_EQ(parse_one(s, NULL, NULL), 0);
	CHECK_STR_EQ(s->sync_standby_names, "");
	CHECK_INT_EQ(s->sync_relax_after_ms, 5000);
	CHECK_INT_EQ(s->sync_catchup, 16 * MB);
	CHECK_STR_EQ(s->sync_promotion, "relaxed");
	CHECK_INT_EQ(parse_one(s, "sync_promotion", "follower"), 0);
	CHECK_STR_EQ(s->sync_promotion, "follower");
	CHECK_INT_EQ(parse_one(s, "sync_promotion", "strict"), 1);
	CHECK_INT_EQ(parse_one(s, "sync_standby_names", "FIRST 1 (n2, n3)"), 0);
	CHECK_STR_EQ(s->sync_standby_names, "FIRST 1 (n2, n3)");
	CHECK_INT_EQ(parse_one(s, "sync_standby_names", "n2'"), 1);
	CHECK(strstr(last_problem, "invalid value \"n2'\" for sync_standby_names") != NULL);
	CHECK_INT_EQ(parse_one(s, "sync_relax_after", "0"), 0);
	CHECK_INT_EQ(s->sync_relax_after_ms, 0);
	CHECK_INT_EQ(parse_one(s, "sync_relax_after", "10ms"), 1);
	CHECK_INT_EQ(parse_one(s, "sync_catchup", "1GB"), 0);
	CHECK_INT_EQ(s->sync_catchup, INT64_C(1) << 30);
	CHECK(pg_settings_is_key("sync_standby_names"));
	free(s);
}

int main(void)
{
	test_names();
	test_caught_up();
	test_standby_relaxed();
	test_standby();
	test_relax();
	test_restore();
	test_lost_primary();
	test_parse();
	test_keys();
	CHECK_DONE();
}
