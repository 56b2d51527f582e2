/* log (src/common/log.h, log_sink.h) to syslog: the format on /dev/log, a daemon that stalls or restarts, a stream daemon. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "testutil.h"

static char dir[256];

/* A syslog daemon's socket at path: SOCK_DGRAM, or a listening SOCK_STREAM. */
static int syslogd_socket(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	if (type == SOCK_STREAM)
		CHECK(listen(fd, 4) == 0);
	return fd;
}

/* The next datagram, NUL-ended, or "" when none is queued. */
static const char *next_datagram(int fd)
{
	static char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void syslog_path(char *path, size_t size)
{
	snprintf(path, size, "%s/dev-log", dir);
	log_use_syslog_socket(path);
}

/* syslog(3)'s format on /dev/log: priority with the facility, stamp, ident[pid]. */
static void test_syslog_lines(void)
{
	char path[300], re[200];
	int fd;

	syslog_path(path, sizeof(path));
	fd = syslogd_socket(path, SOCK_DGRAM);
	log_init("pgtrackd", false, LOG_LOCAL3);
	CHECK(!log_to_journal());
	log_error("e %d", 1);
	errno = ENOENT;
	log_warn("open %s", "/nope");
	log_set_facility(LOG_DAEMON);
	log_info("i");
	snprintf(re, sizeof(re), "^<155>[A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} "
		 "pgtrackd\\[%ld\\]: e 1$", (long)getpid());
	CHECK(regex_matches(next_datagram(fd), re));
	snprintf(re, sizeof(re), "^<156>.{15} pgtrackd\\[%ld\\]: open /nope: No such file or directory$",
		 (long)getpid());
	CHECK(regex_matches(next_datagram(fd), re));
	CHECK(regex_matches(next_datagram(fd), "^<30>.{15} pgtrackd\\[[0-9]+\\]: i$"));
	CHECK_STR_EQ(next_datagram(fd), "");
	close(fd);
	unlink(path);
}

/*
 * A syslog daemon that reads nothing (its queue full) or restarts must not
 * stop the logger: every call returns, the lines that found no room are
 * counted and reported once it reads again, and a new daemon gets the lines
 * that follow.
 */
static void test_syslog_stalled_and_restarted(void)
{
	enum { LINES = 300 };
	char path[300];
	unsigned long dropped = 0;
	long arrived = 0;
	const char *d;
	int fd;

	syslog_path(path, sizeof(path));
	fd = syslogd_socket(path, SOCK_DGRAM);
	log_init("pgtrackd", false, LOG_DAEMON);
	alarm(20);      /* a blocking send would hang here: fail loudly instead */
	for (int i = 0; i < LINES; i++)
		log_info("line %d of a syslog that reads nothing", i);
	while (*(d = next_datagram(fd)))
		arrived += strstr(d, ": line ") != NULL;
	log_info("after the stall");
	alarm(0);
	d = next_datagram(fd);
	CHECK(regex_matches(d, "^<28>.{15} pgtrackd\\[[0-9]+\\]: [0-9]+ log lines dropped: "
			 "syslog did not take them in time$"));
	CHECK(sscanf(strstr(d, "]: ") + 3, "%lu", &dropped) == 1);
	CHECK(arrived > 0 && dropped > 0);
	CHECK_INT_EQ(arrived + (long)dropped, LINES);
	CHECK(regex_matches(next_datagram(fd), "^<30>.{15} pgtrackd\\[[0-9]+\\]: after the stall$"));

	/* the daemon goes, then another binds the same path */
	close(fd);
	unlink(path);
	log_info("while no syslog daemon listens");
	fd = syslogd_socket(path, SOCK_DGRAM);
	log_info("to the new daemon");
	CHECK(regex_matches(next_datagram(fd), ": 1 log lines dropped: syslog did not take them in time$"));
	CHECK(regex_matches(next_datagram(fd), ": to the new daemon$"));
	CHECK_STR_EQ(next_datagram(fd), "");
	close(fd);
	unlink(path);
}

/* A daemon that listens for streams only (as syslog(3) falls back to): NUL-ended messages. */
static void test_syslog_stream(void)
{
	char path[300], got[4096];
	size_t have = 0;
	int lfd, fd;

	syslog_path(path, sizeof(path));
	lfd = syslogd_socket(path, SOCK_STREAM);
	log_init("pgtrackd", false, LOG_DAEMON);
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	CHECK(fd >= 0);
	log_notice("one");
	log_notice("two");
	have = read_available(fd, got, have, sizeof(got));
	CHECK_INT_EQ((long)have, (long)(strlen(got) + 1 + strlen(got + strlen(got) + 1) + 1));
	CHECK(regex_matches(got, "^<29>.{15} pgtrackd\\[[0-9]+\\]: one$"));
	CHECK(regex_matches(got + strlen(got) + 1, "^<29>.{15} pgtrackd\\[[0-9]+\\]: two$"));
	close(fd);
	close(lfd);
	unlink(path);
	log_init("pgtrackd", true, LOG_DAEMON);
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_syslog_lines();
	test_syslog_stalled_and_restarted();
	test_syslog_stream();
	scratch_remove(dir);
	CHECK_DONE();
}
