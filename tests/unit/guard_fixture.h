/*
 * guard_fixture: constructed answers of a local server and its peers, and
 * a judge over them, for test_guard.c and test_guard_standby.c.
 */
#ifndef PGTRACK_GUARD_FIXTURE_H
#define PGTRACK_GUARD_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "guard.h"

#define SYSID "7301234567890123456"
#define OTHER_SYSID "7309999999999999999"

static inline struct pg_answer primary(long timeline)
{
	return (struct pg_answer){ .valid = true, .in_recovery = false, .timeline = timeline,
				   .lag_bytes = -1, .lag_seconds = -1.0, .lsn = -1,
				   .receive_lsn = -1, .system_identifier = SYSID };
}

static inline struct pg_answer standby(int64_t lag_bytes, double lag_seconds, bool paused)
{
	return (struct pg_answer){ .valid = true, .in_recovery = true, .timeline = 0,
				   .lag_bytes = lag_bytes, .lag_seconds = lag_seconds,
				   .replay_paused = paused, .lsn = -1, .receive_lsn = -1,
				   .receiver = PG_RECEIVER_STREAMING,
				   .receiver_status = "streaming", .system_identifier = SYSID };
}

/* A primary at WAL position lsn, answering at monotonic time t. */
static inline struct pg_answer primary_at(long timeline, int64_t lsn, double t)
{
	struct pg_answer a = primary(timeline);

	a.lsn = lsn;
	a.at = t;
	return a;
}

/* A standby that replayed up to replay and received up to received, at time t. */
static inline struct pg_answer standby_at(int64_t replay, int64_t received, enum pg_receiver r, double t)
{
	struct pg_answer a = standby(received >= 0 ? received - replay : -1, -1.0, false);

	a.lsn = replay;
	a.receive_lsn = received;
	a.receiver = r;
	snprintf(a.receiver_status, sizeof(a.receiver_status), "%s",
		 r == PG_RECEIVER_STREAMING ? "streaming" : r == PG_RECEIVER_HIDDEN ? "?" :
		 r == PG_RECEIVER_OTHER ? "starting" : "");
	a.at = t;
	return a;
}

static inline struct pg_answer foreign_primary(long timeline)
{
	struct pg_answer a = primary(timeline);

	snprintf(a.system_identifier, sizeof(a.system_identifier), "%s", OTHER_SYSID);
	return a;
}

static inline struct pg_settings settings(int64_t max_lag_bytes, int64_t max_lag_time_ms)
{
	struct pg_settings s;

	memset(&s, 0, sizeof(s));
	s.max_lag_bytes = max_lag_bytes;
	s.max_lag_time_ms = max_lag_time_ms;
	s.interval_ms = 1000;
	s.timeout_ms = 1000;
	s.connect_timeout_ms = 2000;
	return s;
}

static char reason[400];

/* Judges local against peers named b, c, ... (answers may be NULL). */
static inline enum pgtrackd_state judge_n(struct guard *g, const struct pg_settings *s,
			   const struct pg_answer *local, const struct pg_answer *const *answers,
			   int n)
{
	static const char *const names[] = { "b", "c", "d", "e", "f", "g", "h", "i" };
	struct guard_peer peers[8];

	for (int i = 0; i < n; i++)
		peers[i] = (struct guard_peer){ .name = names[i], .answer = answers[i] };
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	return guard_judge(g, s, local, peers, n, reason, sizeof(reason));
}

#define JUDGE(g, s, local, ...)                                                            \
	judge_n(&(g), &(s), (local), (const struct pg_answer *const[]){ __VA_ARGS__ },     \
		(int)(sizeof((const struct pg_answer *const[]){ __VA_ARGS__ }) /          \
		      sizeof(const struct pg_answer *)))

#define MB (INT64_C(1) << 20)
#define KB 1024

#endif
