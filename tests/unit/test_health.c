/*
 * The health endpoints' answers (src/trackd/trackd_health.h): every
 * endpoint for every state, ?lag= thresholds and units, ?replication_state=.
 */
#include <errno.h>

#include "check.h"
#include "trackd_health.h"
#include "util.h"

static unsigned int ask(enum health_endpoint e, enum track_state s, const char *lag,
			const char *rstate)
{
	struct health_input in = {
		.state = s, .verdict_written = s != TRACK_UNKNOWN, .has_lag = true,
		.lag_bytes = 1000, .replication_state = "streaming",
	};
	struct health_query q = { .lag = lag, .replication_state = rstate };

	return health_status(e, &in, &q, NULL, 0);
}

#define A(e, s) ask(HEALTH_##e, TRACK_##s, NULL, NULL)

/* One row per state: primary, replica, read-only, health, liveness, readiness. */
static void test_states(void)
{
	static const struct {
		enum track_state s;
		unsigned int want[6];
	} rows[] = {
		{ TRACK_PRIMARY, { 200, 503, 200, 200, 200, 200 } },
		{ TRACK_STANDBY, { 503, 200, 200, 200, 200, 200 } },
		{ TRACK_LAGGING, { 503, 503, 503, 200, 200, 503 } },
		{ TRACK_STALE, { 503, 503, 503, 200, 200, 503 } },
		{ TRACK_CONFLICT, { 503, 503, 503, 200, 200, 503 } },
		{ TRACK_MAINTENANCE, { 503, 503, 503, 200, 200, 503 } },
		{ TRACK_OK, { 503, 503, 503, 200, 200, 200 } },
		{ TRACK_DOWN, { 503, 503, 503, 503, 200, 503 } },
		{ TRACK_UNKNOWN, { 503, 503, 503, 503, 200, 503 } },
		{ TRACK_STOPPED, { 503, 503, 503, 503, 200, 503 } },
	};
	static const enum health_endpoint order[6] = {
		HEALTH_PRIMARY, HEALTH_REPLICA, HEALTH_READ_ONLY, HEALTH_HEALTH, HEALTH_LIVENESS,
		HEALTH_READINESS,
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		for (size_t j = 0; j < 6; j++) {
			unsigned int got = ask(order[j], rows[i].s, NULL, NULL);

			if (got != rows[i].want[j])
				printf("state %s, endpoint %zu: %u, expected %u\n",
				       track_state_name(rows[i].s), j, got, rows[i].want[j]);
			CHECK_INT_EQ(got, rows[i].want[j]);
		}
	}
}

static void test_readiness_needs_a_verdict(void)
{
	struct health_input in = { .state = TRACK_PRIMARY, .verdict_written = false };
	struct health_query q = { 0 };
	char why[128];

	CHECK_INT_EQ(health_status(HEALTH_READINESS, &in, &q, why, sizeof(why)), 503);
	CHECK_STR_EQ(why, "no verdict yet (state primary)");
}

static void test_lag(void)
{
	struct health_input in = { .state = TRACK_STANDBY, .verdict_written = true };
	struct health_query q = { .lag = "16MB" };
	char why[128];

	/* Unknown lag with ?lag=: 503, conservatively. */
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, why, sizeof(why)), 503);
	CHECK_STR_EQ(why, "lag unknown, lag=16MB asked");
	in.has_lag = true;
	in.lag_bytes = 16 * 1024 * 1024;
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, why, sizeof(why)), 200);
	CHECK_STR_EQ(why, "");
	in.lag_bytes++;
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, why, sizeof(why)), 503);
	CHECK_STR_EQ(why, "lag 16777217 bytes, above lag=16MB");
	CHECK_INT_EQ(health_status(HEALTH_READ_ONLY, &in, &q, NULL, 0), 503);
	/* Patroni's forms: bytes, kB, MB, GB. */
	in.lag_bytes = 1048576;
	q.lag = "1048576";
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, NULL, 0), 200);
	q.lag = "1024kB";
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, NULL, 0), 200);
	q.lag = "1023kB";
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, NULL, 0), 503);
	q.lag = "1GB";
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, NULL, 0), 200);
	q.lag = "0";
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, NULL, 0), 503);
	/* Not a size: 400, whatever the state. */
	q.lag = "lots";
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, why, sizeof(why)), 400);
	CHECK_STR_EQ(why, "lag=lots: not a size (bytes, or 16kB, 16MB, 1GB)");
	CHECK_INT_EQ(ask(HEALTH_PRIMARY, TRACK_PRIMARY, "lots", NULL), 200);
	CHECK_INT_EQ(ask(HEALTH_READ_ONLY, TRACK_PRIMARY, "lots", NULL), 400);
	/* The primary is not held to ?lag= on /read-only. */
	CHECK_INT_EQ(ask(HEALTH_READ_ONLY, TRACK_PRIMARY, "1", NULL), 200);
	CHECK_INT_EQ(ask(HEALTH_READ_ONLY, TRACK_STANDBY, "1", NULL), 503);
	CHECK_INT_EQ(ask(HEALTH_READ_ONLY, TRACK_STANDBY, "1kB", NULL), 200);
}

static void test_replication_state(void)
{
	struct health_input in = { .state = TRACK_STANDBY, .verdict_written = true };
	struct health_query q = { .replication_state = "streaming" };
	char why[128];

	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, why, sizeof(why)), 503);
	CHECK_STR_EQ(why, "replication_state unknown, not streaming");
	in.replication_state = "catchup";
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, why, sizeof(why)), 503);
	CHECK_STR_EQ(why, "replication_state catchup, not streaming");
	in.replication_state = "streaming";
	CHECK_INT_EQ(health_status(HEALTH_REPLICA, &in, &q, NULL, 0), 200);
	CHECK_INT_EQ(ask(HEALTH_REPLICA, TRACK_STANDBY, "1kB", "streaming"), 200);
	CHECK_INT_EQ(ask(HEALTH_REPLICA, TRACK_STANDBY, "1kB", "stopped"), 503);
}

static void test_paths(void)
{
	static const char *const paths[] = {
		"/", "/primary", "/read-write", "/replica", "/read-only", "/health",
		"/liveness", "/readiness",
	};
	enum health_endpoint e;

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		CHECK_INT_EQ(health_endpoint_of(paths[i], &e), 0);
	CHECK(health_endpoint_of("/read-write", &e) == 0 && e == HEALTH_PRIMARY);
	CHECK_INT_EQ(health_endpoint_of("/master", &e), -ENOENT);
	CHECK_INT_EQ(health_endpoint_of("/replica/", &e), -ENOENT);
	CHECK_STR_EQ(health_role(TRACK_STALE), "primary");
	CHECK_STR_EQ(health_role(TRACK_LAGGING), "replica");
	CHECK_STR_EQ(health_role(TRACK_OK), "unknown");
}

int main(void)
{
	test_states();
	test_readiness_needs_a_verdict();
	test_lag();
	test_replication_state();
	test_paths();
	CHECK_DONE();
}
