/*
 * track_state: the one table of a track's states.
 *
 * A row per state: the state, its name (log lines, and next the HTTP
 * status), the key of its value in the track's section and that value's
 * default.  The verdict, the writer, the configuration and the log all
 * read this table; a new state is a new row (and, if probes report it, a
 * new PGTRACKD_STATE_ in include/pgtrackd/module.h).
 *
 * The states a probe reports have the numbers of their enum pgtrackd_state
 * (FAIL becomes down); unknown and stopped are pgtrackd's own.
 */
#ifndef PGTRACKD_TRACK_STATE_H
#define PGTRACKD_TRACK_STATE_H

#include <pgtrackd/module.h>

/*                  state        name           key                  default */
#define TRACK_STATE_TABLE(X)                                                     \
	X(DOWN,        "down",        "value_down",        "-254")                   \
	X(OK,          "ok",          "value_ok",          "0")                      \
	X(PRIMARY,     "primary",     "value_primary",     "54")                     \
	X(STANDBY,     "standby",     "value_standby",     "53")                     \
	X(STALE,       "stale",       "value_stale",       "-254")                   \
	X(CONFLICT,    "conflict",    "value_conflict",    "-254")                   \
	X(LAGGING,     "lagging",     "value_lagging",     "-100")                   \
	X(MAINTENANCE, "maintenance", "value_maintenance", "-254")                   \
	X(UNKNOWN,     "unknown",     "value_unknown",     "0")                      \
	X(STOPPED,     "stopped",     "value_stopped",     "-254")

enum track_state {
	TRACK_DOWN = PGTRACKD_STATE_FAIL,
	TRACK_OK = PGTRACKD_STATE_OK,
	TRACK_PRIMARY = PGTRACKD_STATE_PRIMARY,
	TRACK_STANDBY = PGTRACKD_STATE_STANDBY,
	TRACK_STALE = PGTRACKD_STATE_STALE,       /* primary, but a peer is primary on a later timeline */
	TRACK_CONFLICT = PGTRACKD_STATE_CONFLICT, /* primary, and so is a peer on the same timeline */
	TRACK_LAGGING = PGTRACKD_STATE_LAGGING,   /* standby too far behind, or replay paused */
	TRACK_MAINTENANCE = PGTRACKD_STATE_MAINTENANCE,
	TRACK_UNKNOWN,                            /* nothing decided yet */
	TRACK_STOPPED,                            /* pgtrackd stopped probing */
	TRACK_N_STATES
};

struct track_state_info {
	const char *name;
	const char *key;           /* of the state's value in [track NAME] */
	const char *default_value;
};

extern const struct track_state_info track_states[TRACK_N_STATES];

const char *track_state_name(enum track_state state);

#endif
