/*
 * guard (src/probes/postgres/guard.h) on a standby: lag against the
 * primary among the peers, and the ranking of the standbys.
 */
#include "guard_fixture.h"

/* max_lag against the primary's flushed position, found among the peers. */
static void test_bytes_behind_primary(void)
{
	struct guard g;
	struct pg_settings s = settings(16 * MB, 0);
	struct pg_answer a, p, sb = standby_at(0, 0, PG_RECEIVER_STREAMING, 0.0);

	s.receiver_grace_ms = 10000;
	guard_init(&g);

	/* The receiver is down (within its grace): nothing received, nothing to replay,
	 * but the primary went on writing. */
	p = primary_at(1, 100 * MB, 10.0);
	a = standby_at(80 * MB, 80 * MB, PG_RECEIVER_NONE, 10.1);
	CHECK_INT_EQ(JUDGE(g, s, &a, &sb, &p), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, replay 20971520 bytes behind primary c, 20971520 of "
			     "them not received (max_lag 16777216)");
	CHECK_INT_EQ(g.primary_peer, 1);
	CHECK(g.behind_bytes == 20 * MB && g.behind_received == 20 * MB);
	/* Today's figure (received but not replayed) says 0: only the primary shows it. */
	CHECK(a.lag_bytes == 0);

	/* Equal to the limit is not above it. */
	a = standby_at(84 * MB, 84 * MB, PG_RECEIVER_NONE, 10.2);
	CHECK_INT_EQ(JUDGE(g, s, &a, &sb, &p), PGTRACKD_STATE_STANDBY);
	CHECK_STR_EQ(reason, "in recovery, rank 0 of 2 standbys by WAL position 0/5400000");

	/* Received everything, replay behind: counts too, from the primary's position. */
	a = standby_at(70 * MB, 100 * MB, PG_RECEIVER_STREAMING, 10.3);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, replay 31457280 bytes behind primary b, 0 of them not "
			     "received (max_lag 16777216)");

	/* Received past the primary's (older) answer: counted from what was received. */
	a = standby_at(70 * MB, 110 * MB, PG_RECEIVER_STREAMING, 10.4);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, 41943040 bytes received but not replayed "
			     "(max_lag 16777216)");

	/* Ahead of the primary's answer: 0, not negative. */
	a = standby_at(101 * MB, 101 * MB, PG_RECEIVER_STREAMING, 10.5);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	CHECK(g.behind_bytes == 0 && g.behind_received == 0);

	/* The primary of the latest timeline is the one; a stale old primary is not. */
	struct pg_answer old = primary_at(1, 500 * MB, 10.0), new2 = primary_at(2, 90 * MB, 10.0);

	a = standby_at(85 * MB, 85 * MB, PG_RECEIVER_STREAMING, 10.6);
	CHECK_INT_EQ(JUDGE(g, s, &a, &old, &new2), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.primary_peer, 1);
	CHECK(g.behind_bytes == 5 * MB);

	/* A primary of another cluster is not ours. */
	struct pg_answer foreign = primary_at(3, 900 * MB, 10.0);

	snprintf(foreign.system_identifier, sizeof(foreign.system_identifier), "%s", OTHER_SYSID);
	CHECK_INT_EQ(JUDGE(g, s, &a, &foreign), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.primary_peer, -1);
	CHECK(g.foreign_new == 1);

	/* No primary (a failover), or no fresh answer from it: the lag against it is
	 * unknown and not a reason by itself; what was received still counts. */
	a = standby_at(10 * MB, 10 * MB, PG_RECEIVER_NONE, 11.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, &sb, NULL), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.primary_peer, -1);
	a = standby_at(10 * MB, 30 * MB, PG_RECEIVER_STREAMING, 11.1);
	CHECK_INT_EQ(JUDGE(g, s, &a, &sb, NULL), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, 20971520 bytes received but not replayed "
			     "(max_lag 16777216)");

	/* Nothing received by streaming (archive recovery): replay against the primary. */
	a = standby_at(10 * MB, -1, PG_RECEIVER_NONE, 11.2);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, replay 94371840 bytes behind primary b "
			     "(max_lag 16777216)");

	/* max_lag 0: off. */
	s.max_lag_bytes = 0;
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
}

/* max_lag_time: for how long replay has been behind the primary's position. */
static void test_time_behind_primary(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 5000);
	struct pg_answer a, p;

	s.receiver_grace_ms = 0;
	guard_init(&g);

	/* Caught up: the primary's position is the local one. */
	p = primary_at(1, 1000, 100.0);
	a = standby_at(1000, 1000, PG_RECEIVER_STREAMING, 100.1);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	CHECK(g.behind_seconds == 0.0);

	/* The primary moves on at 101.0; replay stays at 1000. */
	for (int i = 1; i <= 5; i++) {
		p = primary_at(1, 1000 + 100 * i, 100.0 + i);
		a = standby_at(1000, 1000, PG_RECEIVER_STREAMING, 100.1 + i);
		CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	}
	CHECK(g.behind_seconds > 4.09 && g.behind_seconds < 4.11);
	p = primary_at(1, 1600, 106.0);
	a = standby_at(1000, 1000, PG_RECEIVER_STREAMING, 106.1);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, replay behind primary b for 5.1s (max_lag_time 5.0s)");

	/* Replay reaches the position the primary had at 104: behind since 105. */
	p = primary_at(1, 1700, 107.0);
	a = standby_at(1400, 1700, PG_RECEIVER_STREAMING, 107.1);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	CHECK(g.behind_seconds > 2.09 && g.behind_seconds < 2.11);

	/* Caught up: 0 at once. */
	a = standby_at(1700, 1700, PG_RECEIVER_STREAMING, 107.2);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	CHECK(g.behind_seconds == 0.0);

	/* An idle primary for an hour, then one commit: the age starts at that commit,
	 * not at the hour-old last one (the pitfall of now() - replay timestamp). */
	p = primary_at(1, 1800, 3700.0);
	a = standby_at(1700, 1800, PG_RECEIVER_STREAMING, 3700.2);
	a.lag_seconds = 3600.0;
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	CHECK(g.behind_seconds > 0.19 && g.behind_seconds < 0.21);

	/* A primary that does not move is not counted twice. */
	p = primary_at(1, 1800, 3701.0);
	a = standby_at(1700, 1800, PG_RECEIVER_STREAMING, 3701.2);
	a.lag_seconds = 3600.0;
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	CHECK(g.behind_seconds > 1.19 && g.behind_seconds < 1.21);

	/* Many samples behind: the history is thinned, the oldest kept exact. */
	for (int i = 0; i < 500; i++) {
		p = primary_at(1, 2000 + i, 4000.0 + i);
		a = standby_at(1900, 1900, PG_RECEIVER_STREAMING, 4000.5 + i);
		JUDGE(g, s, &a, &p);
		CHECK(g.n_history <= GUARD_HISTORY);
	}
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, replay behind primary b for 499.5s (max_lag_time 5.0s)");

	/* Another primary (a failover): its history starts anew. */
	struct pg_answer sb = standby_at(0, 0, PG_RECEIVER_STREAMING, 0.0);

	p = primary_at(2, 2600, 4600.0);
	a = standby_at(2400, 2400, PG_RECEIVER_STREAMING, 4600.5);
	CHECK_INT_EQ(JUDGE(g, s, &a, &sb, &p), PGTRACKD_STATE_STANDBY);
	CHECK(g.behind_seconds > 0.49 && g.behind_seconds < 0.51);

	/* Without a primary: the old figure (a backlog's last replayed commit age). */
	a = standby_at(2400, 2500, PG_RECEIVER_STREAMING, 4601.0);
	a.lag_seconds = 6.0;
	CHECK_INT_EQ(JUDGE(g, s, &a, &sb), PGTRACKD_STATE_LAGGING);
	CHECK_STR_EQ(reason, "in recovery, replay 6.0s behind (max_lag_time 5.0s)");
}

/* Standbys ranked by WAL position: the most advanced is rank 0. */
static void test_rank(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer a, b, p = primary_at(1, 200 * MB, 10.0);

	s.rank_tolerance = 128 * KB;
	snprintf(s.node, sizeof(s.node), "a");

	/* No peers: not ranked (value_standby as such). */
	guard_init(&g);
	a = standby_at(100 * MB, 100 * MB, PG_RECEIVER_STREAMING, 10.0);
	CHECK_INT_EQ(guard_judge(&g, &s, &a, NULL, 0, reason, sizeof(reason)),
		     PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, -1);
	CHECK_STR_EQ(reason, "in recovery");

	/* Only the primary among the peers: alone, rank 0. */
	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 0);
	CHECK_INT_EQ(g.ranked, 1);
	CHECK_STR_EQ(reason, "in recovery");

	/* b received more (beyond the tolerance): b first, a second. */
	b = standby_at(90 * MB, 101 * MB, PG_RECEIVER_STREAMING, 10.01);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1);
	CHECK_INT_EQ(g.ranked, 2);
	CHECK_STR_EQ(reason, "in recovery, rank 1 of 2 standbys by WAL position 0/6400000");

	/* Received, not replayed, counts: a is ahead by what it received. */
	guard_init(&g);
	a = standby_at(50 * MB, 102 * MB, PG_RECEIVER_STREAMING, 10.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 0);
	CHECK(g.position == 102 * MB);

	/* Without received WAL (archive), the replayed position. */
	guard_init(&g);
	a = standby_at(103 * MB, -1, PG_RECEIVER_NONE, 10.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 0);

	/* Ties (within rank_tolerance) go by name, the same on every node. */
	guard_init(&g);
	a = standby_at(100 * MB, 100 * MB, PG_RECEIVER_STREAMING, 10.0);
	b = standby_at(100 * MB, 100 * MB + 100 * KB, PG_RECEIVER_STREAMING, 10.01);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 0); /* "a" < "b" */
	snprintf(s.node, sizeof(s.node), "c");
	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1); /* "b" < "c" */
	/* Equal to the tolerance is a tie; one byte more is not. */
	b.receive_lsn = 100 * MB + 128 * KB;
	guard_init(&g);
	snprintf(s.node, sizeof(s.node), "a");
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 0);
	b.receive_lsn = 100 * MB + 128 * KB + 1;
	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1);
	/* Ahead beyond the tolerance wins over the name. */
	a.receive_lsn = 101 * MB;
	guard_init(&g);
	snprintf(s.node, sizeof(s.node), "z");
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 0);
	/* Without node, a tie is conceded. */
	s.node[0] = '\0';
	a.receive_lsn = 100 * MB;
	b.receive_lsn = 100 * MB;
	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1);
	snprintf(s.node, sizeof(s.node), "a");
}

static void test_rank_three(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer a, b, c, p = primary_at(1, 200 * MB, 10.0);

	s.rank_tolerance = 128 * KB;
	snprintf(s.node, sizeof(s.node), "a");

	/* Three standbys: b ahead, c behind: a second. */
	guard_init(&g);
	a = standby_at(100 * MB, 100 * MB, PG_RECEIVER_STREAMING, 10.0);
	b = standby_at(100 * MB, 105 * MB, PG_RECEIVER_STREAMING, 10.01);
	c = standby_at(90 * MB, 95 * MB, PG_RECEIVER_STREAMING, 10.01);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &c, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1);
	CHECK_INT_EQ(g.ranked, 3);
	CHECK_STR_EQ(reason, "in recovery, rank 1 of 3 standbys by WAL position 0/6400000");
	/* Both behind: first. */
	b.receive_lsn = 99 * MB;
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &c, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 0);
	/* Both ahead: third. */
	b.receive_lsn = c.receive_lsn = 120 * MB;
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &c, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 2);

	/* A peer whose replay is paused (lagging on its own node) is not ranked. */
	b.replay_paused = true;
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &c, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1);
	CHECK_INT_EQ(g.ranked, 2);
	b.replay_paused = false;

	/* A standby of another cluster is not ranked either. */
	snprintf(b.system_identifier, sizeof(b.system_identifier), "%s", OTHER_SYSID);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &c, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1);
	CHECK_INT_EQ(g.ranked, 2);
	CHECK(g.foreign_new == 1);
	snprintf(b.system_identifier, sizeof(b.system_identifier), "%s", SYSID);

	/* Nor one without a fresh answer, nor a primary. */
	CHECK_INT_EQ(JUDGE(g, s, &a, NULL, &c, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1);
	CHECK_INT_EQ(g.ranked, 2);

	/* A peer not heard of yet (pgtrackd just started): the lowest rank until it is. */
	{
		struct guard_peer views[3] = {
			{ .name = "b", .answer = &b },
			{ .name = "c", .answer = NULL, .pending = true },
			{ .name = "d", .answer = &p },
		};

		b.receive_lsn = 10 * MB;
		CHECK_INT_EQ(guard_judge(&g, &s, &a, views, 3, reason, sizeof(reason)),
			     PGTRACKD_STATE_STANDBY);
		CHECK_INT_EQ(g.rank, 3);
		CHECK(g.rank_pending);
		CHECK_STR_EQ(reason, "in recovery, lowest rank (3) until every peer was heard");
		views[1].pending = false;
		CHECK_INT_EQ(guard_judge(&g, &s, &a, views, 3, reason, sizeof(reason)),
			     PGTRACKD_STATE_STANDBY);
		CHECK_INT_EQ(g.rank, 0);
		CHECK(!g.rank_pending);
		b.receive_lsn = 120 * MB;
	}

	/* A lagging local standby still knows its rank; its value is value_lagging. */
	a.replay_paused = true;
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &c, &p), PGTRACKD_STATE_LAGGING);
	CHECK_INT_EQ(g.rank, 2);
}

/*
 * While the primary writes, a peer's answer is younger than the local one:
 * it is compared with the local position nearest in time, not the newest,
 * so that two standbys streaming the same WAL tie instead of each seeing
 * the other ahead.
 */
static void test_rank_same_time(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer a, b, p = primary_at(1, 200 * MB, 10.0);

	s.rank_tolerance = 128 * KB;
	snprintf(s.node, sizeof(s.node), "c");
	guard_init(&g);
	/* Local at 10.0: 100 MB.  Peers polled after it; b answers at 10.002 with 100 MB + 8 kB. */
	a = standby_at(100 * MB, 100 * MB, PG_RECEIVER_STREAMING, 10.0);
	b = standby_at(100 * MB, 100 * MB + 8 * KB, PG_RECEIVER_STREAMING, 10.002);
	CHECK_INT_EQ(JUDGE(g, s, &a, &p), PGTRACKD_STATE_STANDBY);
	/* Next local answer at 11.0: 110 MB.  b's answer is compared with 100 MB: a tie. */
	a = standby_at(110 * MB, 110 * MB, PG_RECEIVER_STREAMING, 11.0);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 1); /* "b" < "c": the tie goes to b */
	/* Against the newest local position b would look 10 MB behind: rank 0. */
	guard_init(&g);
	CHECK_INT_EQ(JUDGE(g, s, &a, &b, &p), PGTRACKD_STATE_STANDBY);
	CHECK_INT_EQ(g.rank, 0);
}

/*
 * After the primary crashed every position freezes: the ranks computed from
 * then on never change, however many answers come, so a standby never
 * changes its value while keepalived hands the address over.
 */
static void test_rank_frozen_after_crash(void)
{
	struct guard gb, gc;
	struct pg_settings sb = settings(0, 0), sc = settings(0, 0);
	int rank_b = -2, rank_c = -2;

	sb.rank_tolerance = sc.rank_tolerance = 128 * KB;
	sb.receiver_grace_ms = sc.receiver_grace_ms = 10000;
	snprintf(sb.node, sizeof(sb.node), "b");
	snprintf(sc.node, sizeof(sc.node), "c");
	guard_init(&gb);
	guard_init(&gc);
	for (int i = 0; i < 20; i++) {
		double t = 20.0 + 0.2 * i;
		struct pg_answer b = standby_at(300 * MB, 300 * MB + 512 * KB, PG_RECEIVER_NONE, t);
		struct pg_answer c = standby_at(300 * MB, 300 * MB, PG_RECEIVER_NONE, t + 0.05);
		struct pg_answer b_seen = b, c_seen = c;

		b_seen.at = t + 0.003;
		c_seen.at = t + 0.053;
		/* On b: c's answer, on c: b's; the primary is gone (no answer). */
		CHECK_INT_EQ(judge_n(&gb, &sb, &b, (const struct pg_answer *const[]){ &c_seen, NULL },
				     2), PGTRACKD_STATE_STANDBY);
		CHECK_INT_EQ(judge_n(&gc, &sc, &c, (const struct pg_answer *const[]){ &b_seen, NULL },
				     2), PGTRACKD_STATE_STANDBY);
		if (i > 0) {
			CHECK_INT_EQ(gb.rank, rank_b);
			CHECK_INT_EQ(gc.rank, rank_c);
		}
		rank_b = gb.rank;
		rank_c = gc.rank;
	}
	/* b, 512 kB ahead, is first on both nodes; never two at rank 0. */
	CHECK_INT_EQ(rank_b, 0);
	CHECK_INT_EQ(rank_c, 1);
}

static void test_reason_truncated(void)
{
	struct guard g;
	struct pg_settings s = settings(0, 0);
	struct pg_answer local = primary(1), newer = primary(2);
	const struct guard_peer peer = { .name = "b", .answer = &newer };
	char small[8];

	guard_init(&g);
	memset(small, 'x', sizeof(small));
	CHECK_INT_EQ(guard_judge(&g, &s, &local, &peer, 1, small, sizeof(small)), PGTRACKD_STATE_STALE);
	CHECK_STR_EQ(small, "stale p");
}

int main(void)
{
	test_bytes_behind_primary();
	test_time_behind_primary();
	test_rank();
	test_rank_three();
	test_rank_same_time();
	test_rank_frozen_after_crash();
	test_reason_truncated();
	CHECK_DONE();
}
