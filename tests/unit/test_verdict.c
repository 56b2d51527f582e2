/* verdict (src/trackd/verdict.h): rise/fall hysteresis. */
#include <stdio.h>

#include "check.h"
#include "verdict.h"

#define P PGTRACKD_STATE_PRIMARY
#define S PGTRACKD_STATE_STANDBY
#define F PGTRACKD_STATE_FAIL
#define ST PGTRACKD_STATE_STALE
#define C PGTRACKD_STATE_CONFLICT
#define L PGTRACKD_STATE_LAGGING

/* Feeds s and checks both the return value and the resulting state. */
#define FEED(v, sample_, changed_, state_)                     \
	do {                                                      \
		CHECK_INT_EQ(verdict_feed(&(v), (sample_)), (changed_)); \
		CHECK_INT_EQ((v).state, (state_));                \
	} while (0)

static void test_init(void)
{
	struct verdict v;

	verdict_init(&v, 3, 4);
	CHECK_INT_EQ(v.state, TRACK_UNKNOWN);
	CHECK_INT_EQ(v.rise, 3);
	CHECK_INT_EQ(v.fall, 4);
	CHECK_INT_EQ(v.successes, 0);
	CHECK_INT_EQ(v.failures, 0);
}

static void test_first_sample_decides(void)
{
	struct verdict v;

	verdict_init(&v, 5, 5);
	FEED(v, P, true, TRACK_PRIMARY);

	verdict_init(&v, 5, 5);
	FEED(v, S, true, TRACK_STANDBY);

	/* One failure from unknown is enough, whatever fall says. */
	verdict_init(&v, 5, 5);
	FEED(v, F, true, TRACK_DOWN);
	CHECK_INT_EQ(v.failures, 1);
}

static void test_fall(void)
{
	struct verdict v;

	verdict_init(&v, 2, 3);
	FEED(v, P, true, TRACK_PRIMARY);
	FEED(v, F, false, TRACK_PRIMARY);
	CHECK_INT_EQ(v.failures, 1);
	FEED(v, F, false, TRACK_PRIMARY);
	CHECK_INT_EQ(v.failures, 2);
	FEED(v, F, true, TRACK_DOWN);
	CHECK_INT_EQ(v.failures, 3);
	/* Further failures change nothing. */
	FEED(v, F, false, TRACK_DOWN);
	FEED(v, F, false, TRACK_DOWN);

	/* From standby too, fall = 1: the first failure. */
	verdict_init(&v, 2, 1);
	FEED(v, S, true, TRACK_STANDBY);
	FEED(v, F, true, TRACK_DOWN);
}

/*
 * The server's process seen gone is down at once, whatever fall says; the
 * way back still takes rise answers, and a failure after it counts on.
 */
static void test_certain_failure(void)
{
	struct verdict v;

	verdict_init(&v, 2, 5);
	FEED(v, P, true, TRACK_PRIMARY);
	FEED(v, F, false, TRACK_PRIMARY);
	CHECK_INT_EQ(verdict_feed_certain_failure(&v), true);
	CHECK_INT_EQ(v.state, TRACK_DOWN);
	CHECK_INT_EQ(v.failures, 5);
	CHECK_INT_EQ(verdict_feed_certain_failure(&v), false);
	FEED(v, F, false, TRACK_DOWN);
	CHECK_INT_EQ(v.failures, 5);
	FEED(v, P, false, TRACK_DOWN);
	FEED(v, P, true, TRACK_PRIMARY);
	CHECK_INT_EQ(v.failures, 0);

	/* also from a state the guard gave, and from unknown */
	verdict_init(&v, 2, 3);
	FEED(v, ST, true, TRACK_STALE);
	CHECK_INT_EQ(verdict_feed_certain_failure(&v), true);
	CHECK_INT_EQ(v.state, TRACK_DOWN);
	verdict_init(&v, 2, 3);
	CHECK_INT_EQ(verdict_feed_certain_failure(&v), true);
	CHECK_INT_EQ(v.state, TRACK_DOWN);
}

static void test_success_resets_failures(void)
{
	struct verdict v;

	verdict_init(&v, 2, 3);
	FEED(v, P, true, TRACK_PRIMARY);
	FEED(v, F, false, TRACK_PRIMARY);
	FEED(v, F, false, TRACK_PRIMARY);
	FEED(v, P, false, TRACK_PRIMARY);
	CHECK_INT_EQ(v.failures, 0);
	/* Two more failures are not enough: the count started over. */
	FEED(v, F, false, TRACK_PRIMARY);
	FEED(v, F, false, TRACK_PRIMARY);
	FEED(v, F, true, TRACK_DOWN);
}

static void test_rise(void)
{
	struct verdict v;

	verdict_init(&v, 3, 2);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, P, false, TRACK_DOWN);
	CHECK_INT_EQ(v.successes, 1);
	CHECK_INT_EQ(v.failures, 0);
	FEED(v, P, false, TRACK_DOWN);
	FEED(v, P, true, TRACK_PRIMARY);

	/* The rise-th sample's role wins, even if earlier ones differed. */
	verdict_init(&v, 2, 2);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, P, false, TRACK_DOWN);
	FEED(v, S, true, TRACK_STANDBY);

	/* rise = 1: back at the first success. */
	verdict_init(&v, 1, 2);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, S, true, TRACK_STANDBY);
}

static void test_failure_during_rise_resets(void)
{
	struct verdict v;

	verdict_init(&v, 3, 2);
	FEED(v, S, true, TRACK_STANDBY);
	FEED(v, F, false, TRACK_STANDBY);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, S, false, TRACK_DOWN);
	FEED(v, S, false, TRACK_DOWN);
	FEED(v, F, false, TRACK_DOWN);
	CHECK_INT_EQ(v.successes, 0);
	/* Three fresh successes are needed again. */
	FEED(v, S, false, TRACK_DOWN);
	FEED(v, S, false, TRACK_DOWN);
	FEED(v, S, true, TRACK_STANDBY);
}

static void test_role_change_immediate(void)
{
	struct verdict v;

	verdict_init(&v, 5, 5);
	FEED(v, P, true, TRACK_PRIMARY);
	FEED(v, P, false, TRACK_PRIMARY);
	FEED(v, S, true, TRACK_STANDBY);
	FEED(v, S, false, TRACK_STANDBY);
	FEED(v, P, true, TRACK_PRIMARY);

	/* Also right after a (not yet fatal) failure. */
	FEED(v, F, false, TRACK_PRIMARY);
	FEED(v, S, true, TRACK_STANDBY);
	CHECK_INT_EQ(v.failures, 0);
}

static void test_long_run_counters_bounded(void)
{
	struct verdict v;

	verdict_init(&v, 2, 2);
	for (int i = 0; i < 1000; i++)
		verdict_feed(&v, P);
	CHECK_INT_EQ(v.state, TRACK_PRIMARY);
	CHECK(v.successes <= 2);
	for (int i = 0; i < 1000; i++)
		verdict_feed(&v, F);
	CHECK_INT_EQ(v.state, TRACK_DOWN);
	CHECK(v.failures <= 2);
	FEED(v, P, false, TRACK_DOWN);
	FEED(v, P, true, TRACK_PRIMARY);
}

static void test_names(void)
{
	CHECK_STR_EQ(track_state_name(TRACK_UNKNOWN), "unknown");
	CHECK_STR_EQ(track_state_name(TRACK_PRIMARY), "primary");
	CHECK_STR_EQ(track_state_name(TRACK_STANDBY), "standby");
	CHECK_STR_EQ(track_state_name(TRACK_DOWN), "down");
	CHECK_STR_EQ(track_state_name(TRACK_STOPPED), "stopped");
	CHECK_STR_EQ(track_state_name(TRACK_STALE), "stale");
	CHECK_STR_EQ(track_state_name(TRACK_CONFLICT), "conflict");
	CHECK_STR_EQ(track_state_name(TRACK_LAGGING), "lagging");
	CHECK_STR_EQ(track_state_name(TRACK_OK), "ok");
	CHECK_STR_EQ(track_state_name(TRACK_MAINTENANCE), "maintenance");
	CHECK_STR_EQ(track_state_name((enum track_state)99), "?");
	CHECK_STR_EQ(track_state_name((enum track_state)-1), "?");
}

/* The state table: a row for every state, its key value_NAME, a report lands on its state. */
static void test_state_table(void)
{
	static const enum pgtrackd_state reports[] = {
		PGTRACKD_STATE_OK, PGTRACKD_STATE_PRIMARY, PGTRACKD_STATE_STANDBY,
		PGTRACKD_STATE_STALE, PGTRACKD_STATE_CONFLICT, PGTRACKD_STATE_LAGGING,
		PGTRACKD_STATE_MAINTENANCE,
	};
	static const char *const names[] = {
		"ok", "primary", "standby", "stale", "conflict", "lagging", "maintenance",
	};

	for (int s = 0; s < TRACK_N_STATES; s++) {
		char key[64];

		CHECK(track_states[s].name != NULL && track_states[s].default_value != NULL);
		snprintf(key, sizeof(key), "value_%s", track_states[s].name);
		CHECK_STR_EQ(track_states[s].key, key);
	}
	for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++) {
		struct verdict v;

		verdict_init(&v, 2, 2);
		CHECK(verdict_feed(&v, reports[i]));
		CHECK_STR_EQ(track_state_name(v.state), names[i]);
	}
	CHECK_STR_EQ(track_states[TRACK_DOWN].default_value, "-254");
	CHECK_STR_EQ(track_states[TRACK_UNKNOWN].default_value, "0");
}

/* The guard's states: first sample, rise from down, fall. */
static void test_guard_states_rise_fall(void)
{
	struct verdict v;

	/* From unknown, the first sample decides. */
	verdict_init(&v, 3, 3);
	FEED(v, ST, true, TRACK_STALE);
	verdict_init(&v, 3, 3);
	FEED(v, C, true, TRACK_CONFLICT);
	verdict_init(&v, 3, 3);
	FEED(v, L, true, TRACK_LAGGING);

	/* From down, rise samples of stale lead to stale. */
	verdict_init(&v, 3, 2);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, ST, false, TRACK_DOWN);
	CHECK_INT_EQ(v.successes, 1);
	FEED(v, ST, false, TRACK_DOWN);
	FEED(v, ST, true, TRACK_STALE);

	/* Every guard sample counts as a success towards rise; the last one wins. */
	verdict_init(&v, 3, 2);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, P, false, TRACK_DOWN);
	FEED(v, C, false, TRACK_DOWN);
	FEED(v, ST, true, TRACK_STALE);

	verdict_init(&v, 2, 2);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, S, false, TRACK_DOWN);
	FEED(v, L, true, TRACK_LAGGING);

	verdict_init(&v, 2, 2);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, C, false, TRACK_DOWN);
	FEED(v, C, true, TRACK_CONFLICT);

	/* A failure during the rise starts it over. */
	verdict_init(&v, 2, 1);
	FEED(v, F, true, TRACK_DOWN);
	FEED(v, ST, false, TRACK_DOWN);
	FEED(v, F, false, TRACK_DOWN);
	FEED(v, ST, false, TRACK_DOWN);
	FEED(v, ST, true, TRACK_STALE);

	/* fall applies to the guard's states as to primary and standby. */
	verdict_init(&v, 2, 3);
	FEED(v, ST, true, TRACK_STALE);
	FEED(v, F, false, TRACK_STALE);
	FEED(v, F, false, TRACK_STALE);
	FEED(v, F, true, TRACK_DOWN);
	verdict_init(&v, 2, 2);
	FEED(v, C, true, TRACK_CONFLICT);
	FEED(v, F, false, TRACK_CONFLICT);
	FEED(v, C, false, TRACK_CONFLICT);
	CHECK_INT_EQ(v.failures, 0);
	FEED(v, F, false, TRACK_CONFLICT);
	FEED(v, F, true, TRACK_DOWN);
	verdict_init(&v, 2, 1);
	FEED(v, L, true, TRACK_LAGGING);
	FEED(v, F, true, TRACK_DOWN);
}

/* Between primary, stale, conflict, lagging and standby: at once, both ways. */
static void test_guard_states_immediate(void)
{
	static const enum pgtrackd_state samples[] = { P, S, ST, C, L };
	static const enum track_state states[] = { TRACK_PRIMARY, TRACK_STANDBY, TRACK_STALE,
						   TRACK_CONFLICT, TRACK_LAGGING };
	struct verdict v;

	for (int from = 0; from < 5; from++) {
		for (int to = 0; to < 5; to++) {
			verdict_init(&v, 5, 5);
			FEED(v, samples[from], true, states[from]);
			FEED(v, samples[to], from != to, states[to]);
			/* Also right after a failure that is not yet fatal. */
			FEED(v, F, false, states[to]);
			FEED(v, samples[from], from != to, states[from]);
			CHECK_INT_EQ(v.failures, 0);
		}
	}

	/* A sequence as the guard produces it. */
	verdict_init(&v, 5, 5);
	FEED(v, P, true, TRACK_PRIMARY);
	FEED(v, C, true, TRACK_CONFLICT);
	FEED(v, C, false, TRACK_CONFLICT);
	FEED(v, ST, true, TRACK_STALE);
	FEED(v, ST, false, TRACK_STALE);
	FEED(v, S, true, TRACK_STANDBY);
	FEED(v, L, true, TRACK_LAGGING);
	FEED(v, L, false, TRACK_LAGGING);
	FEED(v, S, true, TRACK_STANDBY);
	FEED(v, P, true, TRACK_PRIMARY);
}

/* From stopped, as from down: rise samples, whatever their role. */
static void test_guard_states_from_stopped(void)
{
	struct verdict v;

	verdict_init(&v, 2, 2);
	v.state = TRACK_STOPPED;
	FEED(v, ST, false, TRACK_STOPPED);
	FEED(v, ST, true, TRACK_STALE);
	verdict_init(&v, 2, 2);
	v.state = TRACK_STOPPED;
	FEED(v, L, false, TRACK_STOPPED);
	FEED(v, C, true, TRACK_CONFLICT);
}

int main(void)
{
	test_init();
	test_first_sample_decides();
	test_fall();
	test_certain_failure();
	test_success_resets_failures();
	test_rise();
	test_failure_during_rise_resets();
	test_role_change_immediate();
	test_long_run_counters_bounded();
	test_names();
	test_state_table();
	test_guard_states_rise_fall();
	test_guard_states_immediate();
	test_guard_states_from_stopped();
	CHECK_DONE();
}
