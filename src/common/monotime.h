/*
 * monotime: seconds on CLOCK_MONOTONIC, for every age and deadline.
 *
 * ev_now() is wall-clock time: a clock step (NTP, an operator's date -s)
 * would make an old answer look fresh or a fresh one old.  libev's own
 * timers already run on the monotonic clock.
 */
#ifndef PGTRACK_MONOTIME_H
#define PGTRACK_MONOTIME_H

#include <time.h>

static inline double monotime_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
