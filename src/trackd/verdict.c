#include "verdict.h"

void verdict_init(struct verdict *v, int rise, int fall)
{
	*v = (struct verdict){ .state = TRACK_UNKNOWN, .rise = rise, .fall = fall };
}

static enum track_state role_of(enum pgtrackd_state s)
{
	switch (s) {
	case PGTRACKD_STATE_PRIMARY:
		return TRACK_PRIMARY;
	case PGTRACKD_STATE_STALE:
		return TRACK_STALE;
	case PGTRACKD_STATE_CONFLICT:
		return TRACK_CONFLICT;
	case PGTRACKD_STATE_LAGGING:
		return TRACK_LAGGING;
	case PGTRACKD_STATE_OK:
		return TRACK_OK;
	case PGTRACKD_STATE_MAINTENANCE:
		return TRACK_MAINTENANCE;
	default:
		return TRACK_STANDBY;
	}
}

static bool set_state(struct verdict *v, enum track_state state)
{
	if (v->state == state)
		return false;
	v->state = state;
	return true;
}

bool verdict_feed(struct verdict *v, enum pgtrackd_state s)
{
	if (s == PGTRACKD_STATE_FAIL) {
		v->successes = 0;
		if (v->failures < v->fall)
			v->failures++;
		if (v->state == TRACK_UNKNOWN || v->failures >= v->fall)
			return set_state(v, TRACK_DOWN);
		return false;
	}

	v->failures = 0;
	if (v->successes < v->rise)
		v->successes++;
	switch (v->state) {
	case TRACK_UNKNOWN:
	case TRACK_PRIMARY:
	case TRACK_STANDBY:
	case TRACK_STALE:
	case TRACK_CONFLICT:
	case TRACK_LAGGING:
	case TRACK_OK:
	case TRACK_MAINTENANCE:
		return set_state(v, role_of(s));
	case TRACK_DOWN:
	case TRACK_STOPPED:
		if (v->successes >= v->rise)
			return set_state(v, role_of(s));
		return false;
	}
	return false;
}

const char *track_state_name(enum track_state state)
{
	switch (state) {
	case TRACK_UNKNOWN:
		return "unknown";
	case TRACK_PRIMARY:
		return "primary";
	case TRACK_STANDBY:
		return "standby";
	case TRACK_DOWN:
		return "down";
	case TRACK_STOPPED:
		return "stopped";
	case TRACK_STALE:
		return "stale";
	case TRACK_CONFLICT:
		return "conflict";
	case TRACK_LAGGING:
		return "lagging";
	case TRACK_OK:
		return "ok";
	case TRACK_MAINTENANCE:
		return "maintenance";
	}
	return "?";
}
