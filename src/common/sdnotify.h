/*
 * sdnotify: systemd's service notification protocol (sd_notify(3)) and its
 * watchdog, for Type=notify units.
 *
 * Written here rather than linking libsystemd: systemd documents the
 * protocol as stable and recommends exactly this for small daemons (one
 * datagram of "KEY=VALUE" lines to the socket named by $NOTIFY_SOCKET),
 * it is forty lines, and the programs then run unchanged on machines
 * without systemd's library or with another supervisor. Every call is a
 * no-op when $NOTIFY_SOCKET is not set.
 */
#ifndef PGTRACK_SDNOTIFY_H
#define PGTRACK_SDNOTIFY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "ratelimit.h"

/*
 * Reads and unsets $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID (so that
 * nothing we run inherits them).  0 when there is nothing to notify or the
 * socket is set up; -errno if $NOTIFY_SOCKET is malformed or the socket
 * cannot be created (the caller logs it; notifications are then off).
 */
int sdnotify_init(void);

bool sdnotify_enabled(void);

/* Sends one datagram, e.g. "READY=1\nSTATUS=...".  0 or -errno; never blocks. */
int sdnotify_send(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Sends RELOADING=1 with MONOTONIC_USEC=now, as systemd 253+ requires for reloads. */
int sdnotify_reloading(void);

/* The watchdog period systemd asked for ($WATCHDOG_USEC), 0 if none. */
uint64_t sdnotify_watchdog_usec(void);

/*
 * Whether the daemon is alive enough to pet the watchdog: false, with a
 * reason in why, when something that must run on schedule has not.
 */
typedef bool sdnotify_alive_fn(void *ctx, char *why, size_t size);

struct sdnotify_watchdog {
	ev_timer timer;
	sdnotify_alive_fn *alive;
	void *ctx;
	bool withholding;
	struct ratelimit withheld_log;
};

/*
 * Sends WATCHDOG=1 every half period from the loop, while alive() says so.
 * Nothing happens without $WATCHDOG_USEC.
 */
void sdnotify_watchdog_start(struct sdnotify_watchdog *w, struct ev_loop *loop,
			     sdnotify_alive_fn *alive, void *ctx);
void sdnotify_watchdog_stop(struct sdnotify_watchdog *w, struct ev_loop *loop);

/* Closes the socket (tests). */
void sdnotify_reset(void);

#endif
