/*
 * verdict: rise/fall hysteresis from probe samples to a track state,
 * as keepalived's vrrp_script does it (keepalived's track_file has none).
 *
 * - From unknown, the first sample decides.
 * - fall consecutive failures make a track down; from down, rise
 *   consecutive successes bring it back.
 * - Between primary and standby the server's own answer wins at once.
 */
#ifndef PGTRACKD_VERDICT_H
#define PGTRACKD_VERDICT_H

#include <stdbool.h>

enum track_state {
	TRACK_UNKNOWN,
	TRACK_PRIMARY,
	TRACK_STANDBY,
	TRACK_DOWN,
	TRACK_STOPPED,
};

enum sample {
	SAMPLE_PRIMARY,
	SAMPLE_STANDBY,
	SAMPLE_FAIL,
};

struct verdict {
	enum track_state state;
	int rise;
	int fall;
	int successes; /* in a row */
	int failures;  /* in a row */
};

void verdict_init(struct verdict *v, int rise, int fall);
/* Feeds one sample; true if the state changed. */
bool verdict_feed(struct verdict *v, enum sample s);

const char *track_state_name(enum track_state state);

#endif
