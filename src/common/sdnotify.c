#include "sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "monotime.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
static uint64_t watchdog_usec;

static uint64_t parse_u64(const char *text)
{
	char *end;
	unsigned long long v;

	if (!text || !*text)
		return 0;
	errno = 0;
	v = strtoull(text, &end, 10);
	return errno || *end ? 0 : (uint64_t)v;
}

/* $WATCHDOG_USEC applies to us only if $WATCHDOG_PID is unset or ours. */
static void read_watchdog(void)
{
	const char *pid = getenv("WATCHDOG_PID");

	watchdog_usec = parse_u64(getenv("WATCHDOG_USEC"));
	if (pid && parse_u64(pid) != (uint64_t)getpid())
		watchdog_usec = 0;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int sdnotify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	read_watchdog();
	if (!path)
		return 0;
	len = strlen(path);
	if (len < 2 || len >= sizeof(notify_addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
		unsetenv("NOTIFY_SOCKET");
		return -EINVAL;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, len);
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0'; /* abstract namespace */
	notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	unsetenv("NOTIFY_SOCKET");

	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify_fd < 0)
		return -errno;
	return 0;
}

bool sdnotify_enabled(void)
{
	return notify_fd >= 0;
}

int sdnotify_send(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1; /* a long STATUS= is cut, not dropped */
	if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT,
		   (const struct sockaddr *)&notify_addr, notify_addr_len) < 0)
		return -errno;
	return 0;
}

int sdnotify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return sdnotify_send("RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
			     (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

uint64_t sdnotify_watchdog_usec(void)
{
	return watchdog_usec;
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sdnotify_watchdog *w = (struct sdnotify_watchdog *)t;
	char why[256] = "";
	unsigned long held_back;

	if (w->alive && !w->alive(w->ctx, why, sizeof(why))) {
		if (ratelimit_allow(&w->withheld_log, monotime_now(), &held_back))
			log_error("not petting systemd's watchdog: %s; systemd will restart us "
				  "unless this recovers", why);
		w->withholding = true;
		return;
	}
	if (w->withholding)
		log_notice("petting systemd's watchdog again");
	w->withholding = false;
	sdnotify_send("WATCHDOG=1");
}

void sdnotify_watchdog_start(struct sdnotify_watchdog *w, struct ev_loop *loop,
			     sdnotify_alive_fn *alive, void *ctx)
{
	double period;

	w->alive = alive;
	w->ctx = ctx;
	w->withholding = false;
	ev_init(&w->timer, watchdog_cb);
	if (!watchdog_usec || notify_fd < 0)
		return;
	period = (double)watchdog_usec / 1e6 / 2.0;
	ratelimit_init(&w->withheld_log, period * 4.0, 1);
	ev_timer_set(&w->timer, period, period);
	ev_timer_start(loop, &w->timer);
	sdnotify_send("WATCHDOG=1");
}

void sdnotify_watchdog_stop(struct sdnotify_watchdog *w, struct ev_loop *loop)
{
	ev_timer_stop(loop, &w->timer);
}

void sdnotify_reset(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
	watchdog_usec = 0;
}
