#include "trackd_service.h"

#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "log.h"
#include "track_state.h"
#include "util.h"

static bool all_have_verdicts(const struct trackd_service *s, char *missing, size_t size)
{
	const struct track *t;
	bool all = true;

	missing[0] = '\0';
	LIST_FOREACH(t, s->tracks, link) {
		size_t len = strlen(missing);

		if (t->verdict_written)
			continue;
		all = false;
		snprintf(missing + len, size - len, "%s%s", len ? ", " : "", t->settings.name);
	}
	return all;
}

static void build_status(const struct trackd_service *s, char *buf, size_t size)
{
	const struct track *t;

	buf[0] = '\0';
	LIST_FOREACH(t, s->tracks, link) {
		size_t len = strlen(buf);

		if (!t->file.has_value)
			snprintf(buf + len, size - len, "%s%s: %s, no value written yet",
				 len ? "; " : "", t->settings.name, track_state_name(t->verdict.state));
		else
			snprintf(buf + len, size - len, "%s%s: %s %d", len ? "; " : "",
				 t->settings.name, track_state_name(t->verdict.state), t->file.value);
	}
	if (!buf[0])
		snprintf(buf, size, "no tracks");
}

static void send_status(struct trackd_service *s, const char *prefix)
{
	char status[sizeof(s->status)];

	build_status(s, status, sizeof(status));
	if (!prefix[0] && strcmp(status, s->status) == 0)
		return;
	memcpy(s->status, status, sizeof(status));
	sdnotify_send("%sSTATUS=%s", prefix, status);
}

static void become_ready(struct trackd_service *s)
{
	s->ready = true;
	ev_timer_stop(s->loop, &s->ready_timer);
	send_status(s, "READY=1\n");
}

void trackd_service_changed(void *service)
{
	struct trackd_service *s = service;
	char missing[512];

	if (!s->ready && all_have_verdicts(s, missing, sizeof(missing)))
		become_ready(s);
	else
		send_status(s, "");
}

static void ready_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct trackd_service *s = container_of(w, struct trackd_service, ready_timer);
	char missing[512];

	if (all_have_verdicts(s, missing, sizeof(missing))) {
		become_ready(s);
		return;
	}
	log_warnx("telling systemd pgtrackd is ready although no verdict is written yet for: %s "
		  "(ready_timeout %.1fs); their files hold the unknown value", missing,
		  s->ready_timeout);
	s->ready = true;
	build_status(s, s->status, sizeof(s->status));
	sdnotify_send("READY=1\nSTATUS=no verdict yet for %s; %s", missing, s->status);
}

double trackd_service_silence_limit(const struct track *t)
{
	double interval = duration_seconds(t->settings.interval_ms);

	/* A probe reports every interval; a timeout or a reconnect may delay a few. */
	return interval * 5.0 > 10.0 ? interval * 5.0 : 10.0;
}

static bool probes_alive(void *ctx, char *why, size_t size)
{
	struct trackd_service *s = ctx;
	const struct track *t;
	double now = ev_now(s->loop);

	LIST_FOREACH(t, s->tracks, link) {
		double silent = now - t->last_report;

		if (silent > trackd_service_silence_limit(t)) {
			snprintf(why, size, "track \"%s\" has not reported for %.1fs (interval %.1fs)",
				 t->settings.name, silent, duration_seconds(t->settings.interval_ms));
			return false;
		}
	}
	return true;
}

void trackd_service_start(struct trackd_service *s, struct ev_loop *loop,
			  struct track_list *tracks, int64_t ready_timeout_ms)
{
	char missing[512];

	s->loop = loop;
	s->tracks = tracks;
	s->ready = false;
	s->status[0] = '\0';
	s->ready_timeout = duration_seconds(ready_timeout_ms);
	ev_timer_init(&s->ready_timer, ready_timeout_cb, s->ready_timeout, 0.0);
	if (ready_timeout_ms == 0 || all_have_verdicts(s, missing, sizeof(missing)))
		become_ready(s);
	else
		ev_timer_start(loop, &s->ready_timer);
	sdnotify_watchdog_start(&s->watchdog, loop, probes_alive, s);
}

/* Before READY=1 systemd is still starting us: a SIGHUP then is no reload to it. */
void trackd_service_reloading(struct trackd_service *s)
{
	if (s->ready)
		sdnotify_reloading();
}

void trackd_service_reloaded(struct trackd_service *s)
{
	if (s->ready)
		send_status(s, "READY=1\n");
	else
		trackd_service_changed(s);
}

void trackd_service_stopping(struct trackd_service *s)
{
	sdnotify_send("STOPPING=1");
}

void trackd_service_finish(struct trackd_service *s)
{
	ev_timer_stop(s->loop, &s->ready_timer);
	sdnotify_watchdog_stop(&s->watchdog, s->loop);
}
