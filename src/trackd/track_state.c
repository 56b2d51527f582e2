#include "track_state.h"

#define ROW(st, nm, ky, df) [TRACK_##st] = { nm, ky, df },
const struct track_state_info track_states[TRACK_N_STATES] = { TRACK_STATE_TABLE(ROW) };
#undef ROW

const char *track_state_name(enum track_state state)
{
	if ((int)state < 0 || state >= TRACK_N_STATES)
		return "?";
	return track_states[state].name;
}
