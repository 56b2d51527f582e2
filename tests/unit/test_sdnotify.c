/* sdnotify (src/common/sdnotify.h): the datagrams systemd would receive. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "sdnotify.h"
#include "testutil.h"

static char dir[256];

/* A datagram socket bound at path (or abstract if path starts with '@'). */
static int listener(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memcpy(a.sun_path, path, len);
	if (path[0] == '@')
		a.sun_path[0] = '\0';
	if (fd < 0 || bind(fd, (struct sockaddr *)&a,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
		perror("listener");
		exit(2);
	}
	return fd;
}

/* The next datagram, or "" after 1 s. */
static const char *next(int fd)
{
	static char buf[2048];
	struct timeval tv = { .tv_sec = 1 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_off_without_socket(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	CHECK(sdnotify_init() == 0);
	CHECK(!sdnotify_enabled());
	CHECK(sdnotify_send("READY=1") == 0);
	CHECK(sdnotify_watchdog_usec() == 0);
	sdnotify_reset();
}

static void test_path_socket(void)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK(sdnotify_init() == 0);
	CHECK(sdnotify_enabled());
	CHECK(getenv("NOTIFY_SOCKET") == NULL); /* hooks and children do not inherit it */
	CHECK(sdnotify_send("READY=1\nSTATUS=%s", "main: primary 54") == 0);
	CHECK_STR_EQ(next(fd), "READY=1\nSTATUS=main: primary 54");
	CHECK(sdnotify_reloading() == 0);
	{
		const char *got = next(fd);
		unsigned long long usec = 0;

		CHECK(sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec) == 1);
		CHECK(usec > 0);
	}
	sdnotify_reset();
	close(fd);
	unlink(path);
}

static void test_abstract_socket(void)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@pgtrack-test-%d", (int)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK(sdnotify_init() == 0);
	CHECK(sdnotify_send("STOPPING=1") == 0);
	CHECK_STR_EQ(next(fd), "STOPPING=1");
	sdnotify_reset();
	close(fd);
}

static void test_bad_socket_and_watchdog_env(void)
{
	char pid[32];

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	CHECK(sdnotify_init() == -EINVAL);
	CHECK(!sdnotify_enabled());
	sdnotify_reset();

	setenv("WATCHDOG_USEC", "2000000", 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	CHECK(sdnotify_init() == 0);
	CHECK(sdnotify_watchdog_usec() == 2000000);
	CHECK(getenv("WATCHDOG_USEC") == NULL);
	sdnotify_reset();

	/* Meant for another process (we were forked by the service's main process). */
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	CHECK(sdnotify_init() == 0);
	CHECK(sdnotify_watchdog_usec() == 0);
	setenv("WATCHDOG_USEC", "12x", 1);
	unsetenv("WATCHDOG_PID");
	CHECK(sdnotify_init() == 0);
	CHECK(sdnotify_watchdog_usec() == 0);
	sdnotify_reset();
}

static bool alive_answer;

static bool alive(void *ctx, char *why, size_t size)
{
	(*(int *)ctx)++;
	if (!alive_answer)
		snprintf(why, size, "track \"main\" has not probed for 9.0s");
	return alive_answer;
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* WATCHDOG=1 at half the period, and none while alive() says no. */
static void test_watchdog(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct sdnotify_watchdog w;
	ev_timer stop;
	char path[512];
	int calls = 0, pets = 0, fd;

	snprintf(path, sizeof(path), "%s/wd", dir);
	fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", "100000", 1);
	unsetenv("WATCHDOG_PID");
	CHECK(sdnotify_init() == 0);

	alive_answer = true;
	sdnotify_watchdog_start(&w, loop, alive, &calls);
	ev_timer_init(&stop, stop_cb, 0.32, 0.0);
	ev_timer_start(loop, &stop);
	ev_run(loop, 0);
	sdnotify_watchdog_stop(&w, loop);
	while (strcmp(next(fd), "WATCHDOG=1") == 0 && pets < 100)
		pets++;
	/* one at start, then every 50 ms for 320 ms */
	CHECK(pets >= 5 && pets <= 8);
	CHECK(calls >= 4);

	alive_answer = false;
	calls = 0;
	ev_now_update(loop); /* the loop's clock stood still while next() waited */
	sdnotify_watchdog_start(&w, loop, alive, &calls);
	(void)next(fd); /* the first, at start */
	ev_timer_set(&stop, 0.32, 0.0);
	ev_timer_start(loop, &stop);
	ev_run(loop, 0);
	sdnotify_watchdog_stop(&w, loop);
	CHECK(calls >= 4);
	CHECK_STR_EQ(next(fd), "");
	sdnotify_reset();
	ev_loop_destroy(loop);
	close(fd);
	unlink(path);
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_off_without_socket();
	test_path_socket();
	test_abstract_socket();
	test_bad_socket_and_watchdog_env();
	test_watchdog();
	scratch_remove(dir);
	CHECK_DONE();
}
