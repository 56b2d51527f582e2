/*
 * guard (src/probes/postgres/guard.h): the stale-primary guard and the lag check,
 * judged on constructed answers of the local server and its peers.
 */
#include "guard_fixture.h"

static void test_init(void)
{
	struct guard g;

	memset(&g, 0x5a, sizeof(g));
	guard_init(&g);
	CHECK(!g.stale);
	CHECK(!g.conflict);
	CHECK_INT_EQ(g.conflict_peer, -1);
	CHECK_INT_EQ(g.foreign, 0);
	CHECK_INT_EQ(g.foreign_new, 0);
}

static void test_no_peers(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer p = primary(1), sb = standby(0, -1.0, false);

	guard_init(&g);
	CHECK_INT_EQ(guard_judge(&g, &s, &p, NULL, 0, reason, sizeof(reason)), PGTRACKD_STATE_PRIMARY);
	CHECK_STR_EQ(reason, "not in recovery");
	CHECK_INT_EQ(guard_judge(&g, &s, &sb, NULL, 0, reason, sizeof(reason)), PGTRACKD_STATE_STANDBY);
	CHECK_STR_EQ(reason, "in recovery");

	/* Peers that are standbys, or give no answer, change nothing. */
	struct pg_answer p2 = primary(2), invalid = primary(3);

	invalid.valid = false;
	CHECK_INT_EQ(JUDGE(g, s, &p2, &sb, NULL, &invalid), PGTRACKD_STATE_PRIMARY);
	CHECK_STR_EQ(reason, "not in recovery");
	CHECK(!g.stale && !g.conflict);

	/* A peer primary on an earlier timeline: it is the stale one, not us. */
	struct pg_answer old = primary(1);

	CHECK_INT_EQ(JUDGE(g, s, &p2, &old), PGTRACKD_STATE_PRIMARY);
	CHECK(!g.stale && !g.conflict);
}

static void test_stale(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer local = primary(1), newer = primary(2), sb = standby(0, -1.0, false);

	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb), PGTRACKD_STATE_PRIMARY);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &newer), PGTRACKD_STATE_STALE);
	CHECK_STR_EQ(reason, "stale primary: peer c is primary on timeline 2, this server on "
			     "timeline 1");
	CHECK(g.stale);

	/* Sticky while primary: the peer gone, a standby, or back on our timeline. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, NULL), PGTRACKD_STATE_STALE);
	CHECK(strstr(reason, "stale primary") == reason);
	CHECK(strstr(reason, "until it is rebuilt as a standby") != NULL);
	CHECK_INT_EQ(JUDGE(g, s, &local, NULL, &sb), PGTRACKD_STATE_STALE);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &newer), PGTRACKD_STATE_STALE);
	CHECK_INT_EQ(guard_judge(&g, &s, &local, NULL, 0, reason, sizeof(reason)), PGTRACKD_STATE_STALE);
	struct pg_answer same = primary(1);

	/* Not even a same-timeline peer makes it a conflict: stale wins. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &same), PGTRACKD_STATE_STALE);
	/* A later local timeline (promoted again) does not clear it either. */
	struct pg_answer local3 = primary(3);

	CHECK_INT_EQ(JUDGE(g, s, &local3, &sb), PGTRACKD_STATE_STALE);
	CHECK(g.stale);

	/* Cleared by a local standby answer, at once. */
	CHECK_INT_EQ(JUDGE(g, s, &sb, &newer), PGTRACKD_STATE_STANDBY);
	CHECK(!g.stale);
	CHECK_STR_EQ(reason, "in recovery");
	/* Promoted again on a timeline the peer is past: stale again, named anew. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &newer), PGTRACKD_STATE_STALE);
	CHECK_STR_EQ(reason, "stale primary: peer b is primary on timeline 2, this server on "
			     "timeline 1");
	/* Cleared: a promotion past the peer gives a primary. */
	CHECK_INT_EQ(JUDGE(g, s, &sb, &newer), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(JUDGE(g, s, &local3, &newer), PGTRACKD_STATE_PRIMARY);

	/* The first of several later peers is named. */
	struct pg_answer newer5 = primary(5);

	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &newer5, &newer), PGTRACKD_STATE_STALE);
	CHECK_STR_EQ(reason, "stale primary: peer c is primary on timeline 5, this server on "
			     "timeline 1");
}

static void test_conflict(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer local = primary(4), same = primary(4), sb = standby(0, -1.0, false);

	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &same), PGTRACKD_STATE_CONFLICT);
	CHECK_STR_EQ(reason, "conflict: peer c is primary on timeline 4 like this server; "
			     "neither may take writes until one is a standby");
	CHECK(g.conflict);
	CHECK_INT_EQ(g.conflict_peer, 1);
	CHECK(!g.stale);

	/* Sticky while that peer gives no answer. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, NULL), PGTRACKD_STATE_CONFLICT);
	CHECK_STR_EQ(reason, "conflict: peer c was last seen primary on timeline 4 like this "
			     "server; neither may take writes until one is a standby");
	CHECK_INT_EQ(JUDGE(g, s, &local, NULL, NULL), PGTRACKD_STATE_CONFLICT);
	/* ... or an answer that is no answer. */
	struct pg_answer invalid = standby(0, -1.0, false);

	invalid.valid = false;
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &invalid), PGTRACKD_STATE_CONFLICT);
	/* Another peer being a standby does not clear it. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, NULL), PGTRACKD_STATE_CONFLICT);
	CHECK(g.conflict);

	/* Cleared when that peer is seen as a standby. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &sb), PGTRACKD_STATE_PRIMARY);
	CHECK_STR_EQ(reason, "not in recovery");
	CHECK(!g.conflict);
	/* ... and stays cleared while it gives no answer. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, NULL), PGTRACKD_STATE_PRIMARY);

	/* Conflict peer on a lower timeline: it is the stale one, we are primary. */
	struct pg_answer lower = primary(3);

	CHECK_INT_EQ(JUDGE(g, s, &local, &same), PGTRACKD_STATE_CONFLICT);
	CHECK_INT_EQ(g.conflict_peer, 0);
	CHECK_INT_EQ(JUDGE(g, s, &local, &lower), PGTRACKD_STATE_PRIMARY);
	CHECK(!g.conflict);
	CHECK(!g.stale);

	/* Conflict peer on a later timeline: we are the stale one. */
	struct pg_answer later = primary(5);

	CHECK_INT_EQ(JUDGE(g, s, &local, &same), PGTRACKD_STATE_CONFLICT);
	CHECK_INT_EQ(JUDGE(g, s, &local, &later), PGTRACKD_STATE_STALE);
	CHECK(g.stale);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb), PGTRACKD_STATE_STALE);

	/* Cleared (both) by a local standby answer. */
	CHECK_INT_EQ(JUDGE(g, s, &sb, &same), PGTRACKD_STATE_STANDBY);
	CHECK(!g.conflict);
	CHECK(!g.stale);
	CHECK_INT_EQ(g.conflict_peer, -1);

	/* Conflict peer c turns standby while peer d is primary on our timeline too. */
	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &same, &sb), PGTRACKD_STATE_CONFLICT);
	CHECK_INT_EQ(g.conflict_peer, 1);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &sb, &same), PGTRACKD_STATE_CONFLICT);
	CHECK_INT_EQ(g.conflict_peer, 2);
	CHECK(strstr(reason, "peer d is primary on timeline 4") != NULL);
}

static void test_foreign(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer local = primary(1), other_later = foreign_primary(9),
			 other_same = foreign_primary(1), sb = standby(0, -1.0, false);

	guard_init(&g);
	/* Another cluster's primary, on any timeline, is ignored. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &other_later), PGTRACKD_STATE_PRIMARY);
	CHECK_INT_EQ(g.foreign, 1u << 1);
	CHECK_INT_EQ(g.foreign_new, 1u << 1);
	/* Reported once: not new on the next judgement. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &other_later), PGTRACKD_STATE_PRIMARY);
	CHECK_INT_EQ(g.foreign, 1u << 1);
	CHECK_INT_EQ(g.foreign_new, 0);
	CHECK_INT_EQ(JUDGE(g, s, &local, &sb, &other_same), PGTRACKD_STATE_PRIMARY);
	CHECK_INT_EQ(g.foreign_new, 0);
	CHECK(!g.stale && !g.conflict);

	/* A second foreign peer is new, the first still not. */
	CHECK_INT_EQ(JUDGE(g, s, &local, &other_same, &other_later, NULL, &other_later),
		     PGTRACKD_STATE_PRIMARY);
	CHECK_INT_EQ(g.foreign, (1u << 0) | (1u << 1) | (1u << 3));
	CHECK_INT_EQ(g.foreign_new, (1u << 0) | (1u << 3));
	CHECK_INT_EQ(JUDGE(g, s, &local, &other_same, &other_later, NULL, &other_later),
		     PGTRACKD_STATE_PRIMARY);
	CHECK_INT_EQ(g.foreign_new, 0);

	/* Between judgements in recovery, foreign_new is cleared too. */
	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &local, &other_later), PGTRACKD_STATE_PRIMARY);
	CHECK_INT_EQ(g.foreign_new, 1);
	CHECK_INT_EQ(JUDGE(g, s, &sb, &other_later), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.foreign_new, 0);
	CHECK_INT_EQ(JUDGE(g, s, &local, &other_later), PGTRACKD_STATE_PRIMARY);
	CHECK_INT_EQ(g.foreign_new, 0);

	/* A foreign peer does not hide a peer of ours. */
	struct pg_answer ours_later = primary(2);

	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &local, &other_later, &ours_later), PGTRACKD_STATE_STALE);
	CHECK_STR_EQ(reason, "stale primary: peer c is primary on timeline 2, this server on "
			     "timeline 1");
	CHECK_INT_EQ(g.foreign_new, 1);

	/* A conflict peer that turns out to be of another cluster ends the conflict. */
	struct pg_answer ours_same = primary(1);

	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &local, &ours_same), PGTRACKD_STATE_CONFLICT);
	CHECK_INT_EQ(JUDGE(g, s, &local, &other_same), PGTRACKD_STATE_PRIMARY);
	CHECK(!g.conflict);
}

static void test_standby_lag(void)
{
	struct guard g;
	struct pg_settings off = settings(0, 0), bytes = settings(16 << 20, 0),
			      secs = settings(0, 30000);
	struct pg_answer a;

	guard_init(&g);

	/* Replay paused: lagging, whatever the limits. */
	a = standby(0, -1.0, true);
	CHECK_INT_EQ(JUDGE(g, off, &a, NULL), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, replay paused");
	CHECK_INT_EQ(JUDGE(g, bytes, &a, NULL), PGTRACKD_STATE_LAGGING);
	a = standby(-1, -1.0, true);
	CHECK_INT_EQ(guard_judge(&g, &off, &a, NULL, 0, reason, sizeof(reason)), PGTRACKD_STATE_LAGGING);

	/* max_lag: above is lagging, equal is not. */
	a = standby((16 << 20) + 1, -1.0, false);
	CHECK_INT_EQ(JUDGE(g, bytes, &a, NULL), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, 16777217 bytes received but not replayed "
			     "(max_lag 16777216)");
	a = standby(16 << 20, -1.0, false);
	CHECK_INT_EQ(JUDGE(g, bytes, &a, NULL), PGTRACKD_STATE_STANDBY);
	CHECK_STR_EQ(reason, "in recovery");
	a = standby(0, -1.0, false);
	CHECK_INT_EQ(JUDGE(g, bytes, &a, NULL), PGTRACKD_STATE_STANDBY);
	/* Unknown (nothing received by streaming): not lagging. */
	a = standby(-1, -1.0, false);
	CHECK_INT_EQ(JUDGE(g, bytes, &a, NULL), PGTRACKD_STATE_STANDBY);
	/* max_lag 0 disables the check. */
	a = standby(INT64_C(1) << 40, -1.0, false);
	CHECK_INT_EQ(JUDGE(g, off, &a, NULL), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(JUDGE(g, bytes, &a, NULL), PGTRACKD_STATE_LAGGING);
	CHECK_INT_EQ(JUDGE(g, secs, &a, NULL), PGTRACKD_STATE_STANDBY);

	/* max_lag_time: above is lagging, equal or none is not. */
	a = standby(100, 30.5, false);
	CHECK_INT_EQ(JUDGE(g, secs, &a, NULL), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, replay 30.5s behind (max_lag_time 30.0s)");
	a = standby(100, 30.0, false);
	CHECK_INT_EQ(JUDGE(g, secs, &a, NULL), PGTRACKD_STATE_STANDBY);
	a = standby(100, 29.9, false);
	CHECK_INT_EQ(JUDGE(g, secs, &a, NULL), PGTRACKD_STATE_STANDBY);
	a = standby(0, -1.0, false);
	CHECK_INT_EQ(JUDGE(g, secs, &a, NULL), PGTRACKD_STATE_STANDBY);
	/* max_lag_time 0 disables it. */
	a = standby(100, 86400.0, false);
	CHECK_INT_EQ(JUDGE(g, off, &a, NULL), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(JUDGE(g, bytes, &a, NULL), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(JUDGE(g, secs, &a, NULL), PGTRACKD_STATE_LAGGING);

	/* Back to standby at once when below. */
	a = standby(100, 31.0, false);
	CHECK_INT_EQ(JUDGE(g, secs, &a, NULL), PGTRACKD_STATE_LAGGING);
	a = standby(0, -1.0, false);
	CHECK_INT_EQ(JUDGE(g, secs, &a, NULL), PGTRACKD_STATE_STANDBY);

	/* Both limits set: either one is enough. */
	struct pg_settings both = settings(1024, 10000);

	a = standby(1025, 1.0, false);
	CHECK_INT_EQ(JUDGE(g, both, &a, NULL), PGTRACKD_STATE_LAGGING);
	a = standby(10, 11.0, false);
	CHECK_INT_EQ(JUDGE(g, both, &a, NULL), PGTRACKD_STATE_LAGGING);
	a = standby(10, 1.0, false);
	CHECK_INT_EQ(JUDGE(g, both, &a, NULL), PGTRACKD_STATE_STANDBY);

	/* The lag of a primary is never looked at. */
	a = primary(1);
	a.lag_bytes = INT64_C(1) << 40;
	a.lag_seconds = 1e6;
	a.replay_paused = true;
	CHECK_INT_EQ(JUDGE(g, both, &a, NULL), PGTRACKD_STATE_PRIMARY);
}

/* The WAL receiver not streaming for longer than receiver_grace: lagging. */
static void test_receiver_grace(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer a;

	s.receiver_grace_ms = 10000;
	guard_init(&g);
	a = standby_at(100, 100, PG_RECEIVER_STREAMING, 1000.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);
	/* The clock starts at the first answer without a streaming receiver. */
	for (double t = 1001.0; t <= 1011.0; t += 1.0) {
		a = standby_at(100, 100, PG_RECEIVER_NONE, t);
		CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);
	}
	a = standby_at(100, 100, PG_RECEIVER_NONE, 1011.5);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, WAL receiver not streaming for 10.5s (none running; "
			     "receiver_grace 10.0s)");
	/* A receiver that starts but does not stream does not reset the clock. */
	a = standby_at(100, 100, PG_RECEIVER_OTHER, 1012.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, WAL receiver not streaming for 11.0s (status starting; "
			     "receiver_grace 10.0s)");
	/* Streaming again: standby at once, and the clock starts over. */
	a = standby_at(100, 100, PG_RECEIVER_STREAMING, 1013.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);
	CHECK_STR_EQ(reason, "in recovery");
	for (double t = 1014.0; t <= 1024.0; t += 1.0) {
		a = standby_at(100, 100, PG_RECEIVER_NONE, t);
		CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);
	}
	a = standby_at(100, 100, PG_RECEIVER_NONE, 1024.5);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_LAGGING);

	/* A hidden status (no pg_read_all_stats): a receiver runs, no proof it is down. */
	a = standby_at(100, 100, PG_RECEIVER_HIDDEN, 1025.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);

	/* No answer for longer than 3 x interval + timeout + connect_timeout: start over. */
	a = standby_at(100, 100, PG_RECEIVER_NONE, 1026.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);
	for (double t = 1040.0; t <= 1050.0; t += 1.0) {
		a = standby_at(100, 100, PG_RECEIVER_NONE, t);
		CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);
	}
	a = standby_at(100, 100, PG_RECEIVER_NONE, 1050.5);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_LAGGING);

	/* With no primary among the peers too (a failover): the grace still applies. */
	struct pg_answer peer_sb = standby_at(50, 50, PG_RECEIVER_NONE, 1050.0);

	a = standby_at(100, 100, PG_RECEIVER_NONE, 1051.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, &peer_sb, NULL), PGTRACKD_STATE_LAGGING);

	/* A promotion forgets the clock. */
	struct pg_answer p = primary_at(2, 100, 1052.0);

	CHECK_INT_EQ(JUDGE(g, s, &p, NULL), PGTRACKD_STATE_PRIMARY);
	a = standby_at(100, 100, PG_RECEIVER_NONE, 1053.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);

	/* receiver_grace 0 disables the check. */
	s.receiver_grace_ms = 0;
	a = standby_at(100, 100, PG_RECEIVER_NONE, 5000.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL), PGTRACKD_STATE_STANDBY);
	CHECK_STR_EQ(reason, "in recovery");
}

int main(void)
{
	test_init();
	test_no_peers();
	test_stale();
	test_conflict();
	test_foreign();
	test_standby_lag();
	test_receiver_grace();
	CHECK_DONE();
}
