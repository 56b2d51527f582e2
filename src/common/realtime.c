#include "realtime.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

int realtime_current(void)
{
	struct sched_param sp;
	int policy = sched_getscheduler(0);

	if (policy < 0)
		return 0;
	policy &= ~SCHED_RESET_ON_FORK;
	if (policy != SCHED_RR && policy != SCHED_FIFO)
		return 0;
	return sched_getparam(0, &sp) == 0 ? sp.sched_priority : 0;
}

/* RLIMIT_RTTIME to *limit_ms, or to the hard limit if that is lower. */
static int set_rttime(int64_t *limit_ms, char *why, size_t why_size)
{
	struct rlimit cur, want;
	rlim_t us = (rlim_t)*limit_ms * 1000;
	int r;

	if (prlimit(0, RLIMIT_RTTIME, NULL, &cur) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot read RLIMIT_RTTIME: %s", strerror(-r));
		return r;
	}
	if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < us)
		us = cur.rlim_max;
	want.rlim_cur = want.rlim_max = us;
	if (prlimit(0, RLIMIT_RTTIME, &want, NULL) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot set RLIMIT_RTTIME: %s", strerror(-r));
		return r;
	}
	*limit_ms = (int64_t)(us / 1000);
	return 0;
}

int realtime_apply(int priority, int64_t *limit_ms, char *why, size_t why_size)
{
	struct sched_param sp = { .sched_priority = priority };
	struct rlimit rtprio;
	int r;

	if (why_size)
		why[0] = '\0';
	if (priority <= 0) {
		if (realtime_current() == 0)
			return 0;
		sp.sched_priority = 0;
		if (sched_setscheduler(0, SCHED_OTHER, &sp) < 0) {
			r = -errno;
			snprintf(why, why_size, "cannot return to normal scheduling: %s", strerror(-r));
			return r;
		}
		return 0;
	}
	/* The leash before the real-time policy, never the other way round. */
	r = set_rttime(limit_ms, why, why_size);
	if (r < 0)
		return r;
	if (sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &sp) == 0)
		return 0;
	r = -errno;
	if (r == -EPERM && prlimit(0, RLIMIT_RTPRIO, NULL, &rtprio) == 0 &&
	    rtprio.rlim_cur != RLIM_INFINITY && rtprio.rlim_cur < (rlim_t)priority)
		snprintf(why, why_size, "not permitted: RLIMIT_RTPRIO is %llu, below %d "
			 "(systemd: LimitRTPRIO=%d) and no CAP_SYS_NICE",
			 (unsigned long long)rtprio.rlim_cur, priority, priority);
	else
		snprintf(why, why_size, "%s%s", strerror(-r), r == -EPERM ?
			 " (a seccomp filter, a container, or a cgroup without real-time "
			 "runtime may forbid it)" : "");
	return r;
}
