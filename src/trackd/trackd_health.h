/*
 * trackd_health: the Patroni-compatible health endpoints, as a pure
 * function of a track's state, a few of its probe's facts and the query.
 *
 *   /, /primary, /read-write  200: the healthy primary (state primary; not
 *                             stale, conflict, down or maintenance)
 *   /replica                  200: a healthy standby (state standby, not
 *                             lagging); ?lag=16MB (bytes, kB, MB, GB, TB)
 *                             compares the fact lag_bytes, 503 when it is
 *                             above or unknown; ?replication_state=streaming
 *                             compares the fact replication_state
 *   /read-only                200: /primary's or /replica's 200
 *   /health                   200: the server answers (any state but down,
 *                             unknown and stopped; a module's ok counts)
 *   /liveness                 200 while pgtrackd's loop runs
 *   /readiness                200: the first verdict is in and it is primary,
 *                             a healthy standby or a module's ok
 * Anything else is 503, and a ?lag= that is no size 400.
 */
#ifndef PGTRACKD_TRACKD_HEALTH_H
#define PGTRACKD_TRACKD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "track_state.h"

enum health_endpoint {
	HEALTH_PRIMARY,
	HEALTH_REPLICA,
	HEALTH_READ_ONLY,
	HEALTH_HEALTH,
	HEALTH_LIVENESS,
	HEALTH_READINESS,
};

struct health_input {
	enum track_state state;
	bool verdict_written;	/* the track's first verdict is in its file */
	bool has_lag;
	int64_t lag_bytes;	/* the fact lag_bytes */
	const char *replication_state;	/* the fact; NULL: unknown */
};

struct health_query {
	const char *lag;		/* ?lag=, NULL: absent */
	const char *replication_state;	/* ?replication_state=, NULL: absent */
};

/* The endpoint of path ("/", "/primary", "/replica", ...); -ENOENT. */
int health_endpoint_of(const char *path, enum health_endpoint *e);

/* 200, 503 or 400; why (may be NULL) says what failed, "" on 200. */
unsigned int health_status(enum health_endpoint e, const struct health_input *in,
			   const struct health_query *q, char *why, size_t size);

/* "primary" (primary, stale, conflict), "replica" (standby, lagging) or "unknown". */
const char *health_role(enum track_state state);

#endif
