/*
 * realtime_apply / realtime_current (src/common/realtime.h) and pgtrackd's
 * [global] realtime_priority and realtime_limit.  Every scheduling case
 * runs in a child of its own, so this process never leaves normal
 * scheduling.  Without root the scheduling cases are skipped, and so is
 * the one that raises RLIMIT_RTPRIO where root lacks CAP_SYS_RESOURCE
 * (some containers): each skip is printed.
 */
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf_fixture.h"
#include "realtime.h"

#define NOBODY 65534
#define CHILD_SKIPPED 77

static rlim_t hard_limit(int resource)
{
	struct rlimit rl;

	return prlimit(0, resource, NULL, &rl) == 0 ? rl.rlim_max : 0;
}

static void set_limit(int resource, rlim_t soft, rlim_t hard)
{
	struct rlimit rl = { .rlim_cur = soft, .rlim_max = hard };

	if (prlimit(0, resource, &rl, NULL) == 0)
		return;
	if (errno == EPERM && hard > hard_limit(resource)) {
		printf("cannot raise a hard limit here (no CAP_SYS_RESOURCE): case skipped\n");
		fflush(stdout);
		_exit(CHILD_SKIPPED);
	}
	perror("prlimit");
	exit(2);
}

static void become_nobody_with_rtprio(rlim_t rtprio)
{
	set_limit(RLIMIT_RTPRIO, rtprio, rtprio);
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
		perror("dropping root");
		exit(2);
	}
}

/* Runs fn in a child; its failed checks become one failed check here. */
static void in_child(void (*fn)(void), const char *what)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		fn();
		fflush(stdout);
		_exit(failures ? 1 : 0);
	}
	checks++;
	if (waitpid(pid, &status, 0) != pid)
		status = -1;
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIPPED) {
		printf("%s: skipped\n", what);
		return;
	}
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		failures++;
		printf("%s:%d: %s: the child failed (status 0x%x)\n", __FILE__, __LINE__, what,
		       status);
	}
}

static void rr_and_back(void)
{
	int64_t limit_ms = 1000;
	char why[256];

	CHECK_INT_EQ(realtime_apply(40, &limit_ms, why, sizeof(why)), 0);
	CHECK_INT_EQ(realtime_current(), 40);
	CHECK_INT_EQ(sched_getscheduler(0), SCHED_RR | SCHED_RESET_ON_FORK);
	CHECK_INT_EQ(limit_ms, 1000);
	CHECK_INT_EQ(hard_limit(RLIMIT_RTTIME), 1000000);
	CHECK_INT_EQ(realtime_apply(0, &limit_ms, why, sizeof(why)), 0);
	CHECK_INT_EQ(realtime_current(), 0);
	CHECK_INT_EQ(sched_getscheduler(0), SCHED_OTHER);
}

/* An inherited hard limit below the configured one stays: pgtrackd only lowers it. */
static void lower_hard_limit_kept(void)
{
	int64_t limit_ms = 1000;
	char why[256];

	set_limit(RLIMIT_RTTIME, 200000, 500000);
	CHECK_INT_EQ(realtime_apply(30, &limit_ms, why, sizeof(why)), 0);
	CHECK_INT_EQ(limit_ms, 500);
	CHECK_INT_EQ(hard_limit(RLIMIT_RTTIME), 500000);
	CHECK_INT_EQ(realtime_current(), 30);
}

/* Unprivileged, RLIMIT_RTPRIO 0: refused, explained, still on normal scheduling. */
static void refused_explained(void)
{
	int64_t limit_ms = 1000;
	char why[256];

	become_nobody_with_rtprio(0);
	CHECK_INT_EQ(realtime_apply(40, &limit_ms, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "RLIMIT_RTPRIO is 0, below 40") != NULL);
	CHECK(strstr(why, "LimitRTPRIO=40") != NULL);
	CHECK_INT_EQ(realtime_current(), 0);
	/* the leash went on first: lowering a limit needs no privilege */
	CHECK_INT_EQ(hard_limit(RLIMIT_RTTIME), 1000000);
}

/* Unprivileged with RLIMIT_RTPRIO 40, as the systemd unit runs it. */
static void permitted_by_rtprio(void)
{
	int64_t limit_ms = 1000;
	char why[256];

	become_nobody_with_rtprio(40);
	CHECK_INT_EQ(realtime_apply(41, &limit_ms, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "RLIMIT_RTPRIO is 40, below 41") != NULL);
	CHECK_INT_EQ(realtime_apply(40, &limit_ms, why, sizeof(why)), 0);
	CHECK_INT_EQ(realtime_current(), 40);
	CHECK_INT_EQ(realtime_apply(0, &limit_ms, why, sizeof(why)), 0);
	CHECK_INT_EQ(realtime_current(), 0);
}

static void test_scheduling(void)
{
	if (geteuid() != 0) {
		printf("not root: the scheduling cases are skipped\n");
		return;
	}
	in_child(rr_and_back, "SCHED_RR 40 and back");
	in_child(lower_hard_limit_kept, "a lower hard RLIMIT_RTTIME");
	in_child(refused_explained, "refused without RLIMIT_RTPRIO");
	in_child(permitted_by_rtprio, "permitted by RLIMIT_RTPRIO");
	CHECK_INT_EQ(realtime_current(), 0);
}

static void test_keys(void)
{
	struct trackd_config *c = LOAD_OK(TRACK_A);

	if (c) {
		CHECK_INT_EQ(c->global.realtime_priority, 40);
		CHECK_INT_EQ(c->global.realtime_limit_ms, 1000);
		config_destroy(c);
	}
	c = LOAD_OK("[global]\nrealtime_priority = 0\nrealtime_limit = 250ms\n" TRACK_A);
	if (c) {
		CHECK_INT_EQ(c->global.realtime_priority, 0);
		CHECK_INT_EQ(c->global.realtime_limit_ms, 250);
		config_destroy(c);
	}
	EXPECT_ERRORS("[global]\nrealtime_priority = 100\n" TRACK_A,
		      "2: invalid value \"100\" for realtime_priority: must be between 0 and 99");
	EXPECT_ERRORS("[global]\nrealtime_priority = -1\n" TRACK_A,
		      "2: invalid value \"-1\" for realtime_priority: must be between 0 and 99");
	EXPECT_ERRORS("[global]\nrealtime_limit = 5ms\n" TRACK_A,
		      "2: invalid value \"5ms\" for realtime_limit: must be between 10ms and 1m");
	EXPECT_ERRORS("[track a]\nfile = /a\nrealtime_priority = 40\n",
		      "3: unknown key \"realtime_priority\" in section [track a]");
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_keys();
	test_scheduling();
	scratch_remove(dir);
	CHECK_DONE();
}
