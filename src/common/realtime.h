/*
 * realtime: the calling thread on real-time scheduling (SCHED_RR, reset on
 * fork) with RLIMIT_RTTIME as its leash, or back on normal scheduling; as
 * keepalived's vrrp_rt_priority and vrrp_rlimit_rttime do for its VRRP
 * process.  Works unprivileged up to RLIMIT_RTPRIO (systemd LimitRTPRIO=).
 */
#ifndef PGTRACK_REALTIME_H
#define PGTRACK_REALTIME_H

#include <stddef.h>
#include <stdint.h>

/*
 * priority 1..99: SCHED_RR at that priority, after RLIMIT_RTTIME is set to
 * limit_ms (soft and hard; lowered only, an unprivileged process cannot
 * raise a hard limit: *limit_ms gets what is in force).  priority 0: normal
 * scheduling.  0 or -errno; why gets the explanation of a failure.
 */
int realtime_apply(int priority, int64_t *limit_ms, char *why, size_t why_size);

/* The calling thread's real-time priority, 0 on normal scheduling. */
int realtime_current(void);

#endif
