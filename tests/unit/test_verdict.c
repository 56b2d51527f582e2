/* verdict (src/trackd/verdict.h): rise/fall hysteresis. */
#include "check.h"
#include "verdict.h"

#define P SAMPLE_PRIMARY
#define S SAMPLE_STANDBY
#define F SAMPLE_FAIL

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
}

int main(void)
{
	test_init();
	test_first_sample_decides();
	test_fall();
	test_success_resets_failures();
	test_rise();
	test_failure_during_rise_resets();
	test_role_change_immediate();
	test_long_run_counters_bounded();
	test_names();
	CHECK_DONE();
}
