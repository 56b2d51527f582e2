#include "track.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

int track_value(const struct track_settings *s, enum track_state state)
{
	switch (state) {
	case TRACK_PRIMARY:
		return s->value_primary;
	case TRACK_STANDBY:
		return s->value_standby;
	case TRACK_DOWN:
		return s->value_down;
	case TRACK_STOPPED:
		return s->value_stopped;
	case TRACK_STALE:
		return s->value_stale;
	case TRACK_CONFLICT:
		return s->value_conflict;
	case TRACK_LAGGING:
		return s->value_lagging;
	case TRACK_UNKNOWN:
		break;
	}
	return s->value_unknown;
}

static void publish(struct track *t, enum track_state old, const char *why)
{
	int value = track_value(&t->settings, t->verdict.state);
	int r = track_file_write(&t->file, value);

	log_info("track \"%s\": %s -> %s, value %d %s %s (%s)", t->settings.name,
		 track_state_name(old), track_state_name(t->verdict.state), value,
		 r == 0 ? "written to" : "NOT YET written to", t->file.path, why);
}

static void report(const struct probe_host *host, enum sample sample, const char *reason)
{
	struct track *t = container_of(host, struct track, host);
	enum track_state old = t->verdict.state;

	if (sample == SAMPLE_FAIL)
		log_debug("track \"%s\": probe failed (%d of %d): %s", t->settings.name,
			  t->verdict.failures + 1 > t->verdict.fall ? t->verdict.fall
								   : t->verdict.failures + 1,
			  t->verdict.fall, reason);
	if (verdict_feed(&t->verdict, sample))
		publish(t, old, reason ? reason : "");
}

static int init_probe(struct track *t, const struct track_settings *settings, void **probe)
{
	t->probe_ops = &probe_postgres_ops;
	return t->probe_ops->init(&t->host, settings, probe);
}

static int start_probe(struct track *t)
{
	int r = t->probe_ops->start(t->probe);

	if (r < 0) {
		t->probe_ops->destroy(t->probe);
		t->probe = NULL;
	}
	return r;
}

static void stop_probe(struct track *t)
{
	if (!t->probe)
		return;
	t->probe_ops->destroy(t->probe);
	t->probe = NULL;
}

struct track *track_create(struct ev_loop *loop, const struct track_settings *settings,
			   int64_t check_interval_ms)
{
	struct track *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	memcpy(&t->settings, settings, sizeof(t->settings));
	t->host.loop = loop;
	t->host.track_name = t->settings.name;
	t->host.report = report;
	verdict_init(&t->verdict, settings->rise, settings->fall);
	track_file_init(&t->file, loop, t->settings.name, t->settings.file, check_interval_ms);
	if (track_file_write(&t->file, track_value(&t->settings, TRACK_UNKNOWN)) == 0)
		log_info("track \"%s\": started, value %d (unknown) written to %s",
			 t->settings.name, t->file.value, t->file.path);
	if (init_probe(t, &t->settings, &t->probe) < 0 || start_probe(t) < 0) {
		track_file_finish(&t->file);
		free(t);
		return NULL;
	}
	return t;
}

int track_reconfigure(struct track *t, const struct track_settings *settings,
		      int64_t check_interval_ms)
{
	enum track_state state = t->verdict.state;
	void *probe;
	int r;

	r = init_probe(t, settings, &probe);
	if (r < 0)
		return r; /* the old probe keeps running */
	if (t->probe && t->probe_ops->migrate)
		t->probe_ops->migrate(t->probe, probe);
	stop_probe(t);
	t->probe = probe;

	if (strcmp(t->settings.file, settings->file) != 0) {
		track_file_write(&t->file, t->settings.value_stopped);
		log_info("track \"%s\": moved from %s (left at the stopped value %d) to %s",
			 t->settings.name, t->settings.file, t->settings.value_stopped,
			 settings->file);
		track_file_finish(&t->file);
		track_file_init(&t->file, t->host.loop, t->settings.name, settings->file,
				check_interval_ms);
	}
	memcpy(&t->settings, settings, sizeof(t->settings));
	track_file_set_check_interval(&t->file, check_interval_ms);
	verdict_init(&t->verdict, settings->rise, settings->fall);
	t->verdict.state = state;
	if (!t->file.has_value || t->file.value != track_value(settings, state))
		publish(t, state, "configuration reloaded");
	return start_probe(t);
}

void track_stop(struct track *t, const char *why)
{
	enum track_state old = t->verdict.state;

	stop_probe(t);
	t->verdict.state = TRACK_STOPPED;
	publish(t, old, why);
	track_file_finish(&t->file);
}

void track_destroy(struct track *t)
{
	if (!t)
		return;
	stop_probe(t);
	track_file_finish(&t->file);
	free(t);
}
