#include "trackd_health.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "log.h"

static const struct {
	const char *path;
	enum health_endpoint e;
} paths[] = {
	{ "/", HEALTH_PRIMARY },
	{ "/primary", HEALTH_PRIMARY },
	{ "/read-write", HEALTH_PRIMARY },
	{ "/replica", HEALTH_REPLICA },
	{ "/read-only", HEALTH_READ_ONLY },
	{ "/health", HEALTH_HEALTH },
	{ "/liveness", HEALTH_LIVENESS },
	{ "/readiness", HEALTH_READINESS },
};

int health_endpoint_of(const char *path, enum health_endpoint *e)
{
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (strcmp(paths[i].path, path) == 0) {
			*e = paths[i].e;
			return 0;
		}
	}
	return -ENOENT;
}

const char *health_role(enum track_state state)
{
	switch (state) {
	case TRACK_PRIMARY:
	case TRACK_STALE:
	case TRACK_CONFLICT:
		return "primary";
	case TRACK_STANDBY:
	case TRACK_LAGGING:
		return "replica";
	default:
		return "unknown";
	}
}

static unsigned int fail(char *why, size_t size, unsigned int status, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

static unsigned int fail(char *why, size_t size, unsigned int status, const char *fmt, ...)
{
	va_list ap;

	if (why) {
		va_start(ap, fmt);
		vsnprintf(why, size, fmt, ap);
		va_end(ap);
	}
	return status;
}

static unsigned int ok(char *why, size_t size)
{
	if (why && size)
		why[0] = '\0';
	return 200;
}

static unsigned int replica(const struct health_input *in, const struct health_query *q,
			    char *why, size_t size)
{
	const char *name = track_state_name(in->state);
	int64_t max;

	if (q->lag && (size_parse(q->lag, &max) < 0 || max < 0))
		return fail(why, size, 400, "lag=%s: not a size (bytes, or 16kB, 16MB, 1GB)",
			    q->lag);
	if (in->state != TRACK_STANDBY)
		return fail(why, size, 503, "state %s, not standby", name);
	if (q->lag && !in->has_lag)
		return fail(why, size, 503, "lag unknown, lag=%s asked", q->lag);
	if (q->lag && in->lag_bytes > max) {
		char lag[32];

		snprintf(lag, sizeof(lag), "%" PRId64, in->lag_bytes);
		return fail(why, size, 503, "lag %s bytes, above lag=%s", lag, q->lag);
	}
	if (q->replication_state && (!in->replication_state ||
				     strcmp(in->replication_state, q->replication_state) != 0))
		return fail(why, size, 503, "replication_state %s, not %s",
			    in->replication_state ? in->replication_state : "unknown",
			    q->replication_state);
	return ok(why, size);
}

static unsigned int primary(const struct health_input *in, char *why, size_t size)
{
	if (in->state != TRACK_PRIMARY)
		return fail(why, size, 503, "state %s, not primary",
			    track_state_name(in->state));
	return ok(why, size);
}

static bool up(enum track_state s)
{
	return s != TRACK_DOWN && s != TRACK_UNKNOWN && s != TRACK_STOPPED;
}

unsigned int health_status(enum health_endpoint e, const struct health_input *in,
			   const struct health_query *q, char *why, size_t size)
{
	const char *name = track_state_name(in->state);
	unsigned int r;

	switch (e) {
	case HEALTH_PRIMARY:
		return primary(in, why, size);
	case HEALTH_REPLICA:
		return replica(in, q, why, size);
	case HEALTH_READ_ONLY:
		r = replica(in, q, why, size);
		if (r == 503 && in->state == TRACK_PRIMARY)
			return primary(in, why, size);
		if (r == 503)
			return fail(why, size, 503, "state %s, neither primary nor a healthy "
				    "standby", name);
		return r;
	case HEALTH_HEALTH:
		if (!up(in->state))
			return fail(why, size, 503, "state %s", name);
		return ok(why, size);
	case HEALTH_LIVENESS:
		return ok(why, size);
	case HEALTH_READINESS:
		if (!in->verdict_written)
			return fail(why, size, 503, "no verdict yet (state %s)", name);
		if (in->state != TRACK_PRIMARY && in->state != TRACK_STANDBY &&
		    in->state != TRACK_OK)
			return fail(why, size, 503, "state %s", name);
		return ok(why, size);
	}
	return fail(why, size, 503, "unknown endpoint");
}
