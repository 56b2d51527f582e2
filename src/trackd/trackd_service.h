/*
 * trackd_service: pgtrackd under systemd (Type=notify, sdnotify.h).
 *
 * READY=1 once every track's first verdict is in its file, or at
 * [global] ready_timeout with a STATUS= naming the tracks still without
 * one; STATUS= kept current ("main: primary 54; drain: ok 0");
 * RELOADING=1 and READY=1 around a reload; STOPPING=1; and WATCHDOG=1
 * from the loop only while every track's probe keeps reporting.
 */
#ifndef PGTRACKD_TRACKD_SERVICE_H
#define PGTRACKD_TRACKD_SERVICE_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "sdnotify.h"
#include "track.h"

struct trackd_service {
	struct ev_loop *loop;
	struct track_list *tracks;
	bool ready;
	double ready_timeout;
	ev_timer ready_timer;
	struct sdnotify_watchdog watchdog;
	char status[1024];
};

void trackd_service_start(struct trackd_service *s, struct ev_loop *loop,
			  struct track_list *tracks, int64_t ready_timeout_ms);
/* A track wrote a value (track_set_observer); also after tracks come and go. */
void trackd_service_changed(void *service);
void trackd_service_reloading(struct trackd_service *s);
void trackd_service_reloaded(struct trackd_service *s);
void trackd_service_stopping(struct trackd_service *s);
void trackd_service_finish(struct trackd_service *s);

/* How long a track's probe may go without reporting before the watchdog is withheld. */
double trackd_service_silence_limit(const struct track *t);

#endif
