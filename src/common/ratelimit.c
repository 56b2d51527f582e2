#include "ratelimit.h"

void ratelimit_init(struct ratelimit *rl, double interval, int burst)
{
	*rl = (struct ratelimit){ .interval = interval, .burst = burst, .window_start = -1e18 };
}

bool ratelimit_allow(struct ratelimit *rl, double now, unsigned long *suppressed)
{
	if (now - rl->window_start >= rl->interval) {
		rl->window_start = now;
		rl->in_window = 0;
	}
	if (rl->in_window >= rl->burst) {
		rl->suppressed++;
		return false;
	}
	rl->in_window++;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}
