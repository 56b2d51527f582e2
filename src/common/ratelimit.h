/*
 * ratelimit: at most `burst` log lines per `interval` seconds for one kind
 * of event; the lines held back are counted and reported with the next
 * line that gets through.
 */
#ifndef PGTRACK_RATELIMIT_H
#define PGTRACK_RATELIMIT_H

#include <stdbool.h>

struct ratelimit {
	double interval;
	int burst;
	double window_start;
	int in_window;
	unsigned long suppressed;
};

void ratelimit_init(struct ratelimit *rl, double interval, int burst);
/*
 * Whether a line may be logged at time now.  *suppressed gets the number of
 * lines held back since the last one that was allowed.
 */
bool ratelimit_allow(struct ratelimit *rl, double now, unsigned long *suppressed);

#endif
