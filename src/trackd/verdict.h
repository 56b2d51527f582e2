/*
 * verdict: rise/fall hysteresis from probe samples to a track state,
 * as keepalived's vrrp_script does it (keepalived's track_file has none).
 *
 * - From unknown, the first sample decides.
 * - fall consecutive failures make a track down; from down, rise
 *   consecutive successes bring it back.
 * - Between the healthy states (primary, standby, and the guard's stale,
 *   conflict and lagging) the probe's answer wins at once: it is the
 *   server's own word, not a flaky signal.
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
	TRACK_STALE,    /* primary, but a peer is primary on a later timeline */
	TRACK_CONFLICT, /* primary, and so is a peer on the same timeline */
	TRACK_LAGGING,  /* standby too far behind, or replay paused */
};

enum sample {
	SAMPLE_PRIMARY,
	SAMPLE_STANDBY,
	SAMPLE_FAIL,
	SAMPLE_STALE,
	SAMPLE_CONFLICT,
	SAMPLE_LAGGING,
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
