#include "verdict.h"

void verdict_init(struct verdict *v, int rise, int fall)
{
	*v = (struct verdict){ .state = TRACK_UNKNOWN, .rise = rise, .fall = fall };
}

/* A probe's report that is not a failure: the state of the same number (see track_state.h). */
static enum track_state role_of(enum pgtrackd_state s)
{
	if (s > PGTRACKD_STATE_FAIL && (int)s <= PGTRACKD_STATE_MAINTENANCE)
		return (enum track_state)s;
	return TRACK_STANDBY; /* a state this pgtrackd does not know */
}

static bool set_state(struct verdict *v, enum track_state state)
{
	if (v->state == state)
		return false;
	v->state = state;
	return true;
}

bool verdict_feed_certain_failure(struct verdict *v)
{
	v->successes = 0;
	v->failures = v->fall;
	return set_state(v, TRACK_DOWN);
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
	/* From down or stopped it takes rise answers in a row; otherwise the answer wins. */
	if ((v->state == TRACK_DOWN || v->state == TRACK_STOPPED) && v->successes < v->rise)
		return false;
	return set_state(v, role_of(s));
}
