#include "track.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

int track_value(const struct track_settings *s, enum track_state state, int rank)
{
	switch (state) {
	case TRACK_PRIMARY:
		return s->value_primary;
	case TRACK_STANDBY:
		if (rank <= 0)
			return s->value_standby;
		return s->value_standby - rank * s->rank_step > -253 ?
			       s->value_standby - rank * s->rank_step : -253;
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
	case TRACK_OK:
		return s->value_ok;
	case TRACK_MAINTENANCE:
		return s->value_maintenance;
	case TRACK_UNKNOWN:
		break;
	}
	return s->value_unknown;
}

static void publish(struct track *t, enum track_state old, const char *why)
{
	int value = track_value(&t->settings, t->verdict.state, t->rank);
	int r = track_file_write(&t->file, value);

	log_info("track \"%s\": %s -> %s, value %d %s %s (%s)", t->settings.name,
		 track_state_name(old), track_state_name(t->verdict.state), value,
		 r == 0 ? "written to" : "NOT YET written to", t->file.path, why);
}

/* A standby that changed places among the standbys: one line per change. */
static void publish_rank(struct track *t, int old, const char *why)
{
	int value = track_value(&t->settings, TRACK_STANDBY, t->rank);
	int r = track_file_write(&t->file, value);

	log_info("track \"%s\": standby rank %d -> %d, value %d %s %s (%s)", t->settings.name,
		 old, t->rank, value, r == 0 ? "written to" : "NOT YET written to", t->file.path,
		 why);
}

void track_set_rank(const struct pgtrackd_host *host, int rank)
{
	struct track *t = host->internal;

	t->rank_next = rank > 0 ? rank : 0;
}

const struct track_settings *track_settings_of(const struct pgtrackd_host *host)
{
	const struct track *t = host->internal;

	return &t->settings;
}

static void host_log(const struct pgtrackd_host *host, enum pgtrackd_log_level level,
		     const char *fmt, ...)
{
	const struct track *t = host->internal;
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	switch (level) {
	case PGTRACKD_LOG_ERROR:
		log_error("track \"%s\": %s", t->settings.name, line);
		break;
	case PGTRACKD_LOG_WARNING:
		log_warnx("track \"%s\": %s", t->settings.name, line);
		break;
	case PGTRACKD_LOG_NOTICE:
		log_notice("track \"%s\": %s", t->settings.name, line);
		break;
	case PGTRACKD_LOG_INFO:
		log_info("track \"%s\": %s", t->settings.name, line);
		break;
	default:
		log_debug("track \"%s\": %s", t->settings.name, line);
		break;
	}
}

static const char *host_config(const struct pgtrackd_host *host, const char *key)
{
	const struct track *t = host->internal;

	return track_module_key(&t->settings, key);
}

static void report(const struct pgtrackd_host *host, enum pgtrackd_state sample,
		   const char *reason)
{
	struct track *t = host->internal;
	enum track_state old = t->verdict.state;

	if (sample == PGTRACKD_STATE_FAIL)
		log_debug("track \"%s\": probe failed (%d of %d): %s", t->settings.name,
			  t->verdict.failures + 1 > t->verdict.fall ? t->verdict.fall
								   : t->verdict.failures + 1,
			  t->verdict.fall, reason);
	if (verdict_feed(&t->verdict, sample)) {
		t->rank = t->rank_next;
		publish(t, old, reason ? reason : "");
	} else if (t->verdict.state == TRACK_STANDBY && sample == PGTRACKD_STATE_STANDBY &&
		   t->rank != t->rank_next) {
		int old_rank = t->rank;

		t->rank = t->rank_next;
		publish_rank(t, old_rank, reason ? reason : "");
	}
}

/* The probe of settings: the built-in one, or a module loaded (again) for this track. */
static int init_probe(struct track *t, const struct track_settings *settings,
		      const struct pgtrackd_module **ops, struct loaded_module **module,
		      void **probe)
{
	char why[PATH_MAX + 300];
	int r;

	*module = NULL;
	*ops = &probe_postgres_module;
	if (settings->module[0]) {
		*module = module_load(settings->module, why, sizeof(why));
		if (!*module) {
			log_error("track \"%s\": %s", settings->name, why);
			return -EINVAL;
		}
		*ops = (*module)->ops;
	}
	r = (*ops)->init(&t->host, probe);
	if (r < 0) {
		log_error("track \"%s\": probe %s failed to initialise: %s", settings->name,
			  (*ops)->name ? (*ops)->name : "?", strerror(-r));
		module_unload(*module);
		*module = NULL;
	}
	return r;
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
	if (t->probe)
		t->probe_ops->destroy(t->probe);
	t->probe = NULL;
	module_unload(t->module);
	t->module = NULL;
}

struct track *track_create(struct ev_loop *loop, const struct track_settings *settings,
			   int64_t check_interval_ms)
{
	struct track *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	memcpy(&t->settings, settings, sizeof(t->settings));
	t->host.abi_version = PGTRACKD_MODULE_ABI_VERSION;
	t->host.loop = loop;
	t->host.track_name = t->settings.name;
	t->host.report = report;
	t->host.log = host_log;
	t->host.config = host_config;
	t->host.internal = t;
	verdict_init(&t->verdict, settings->rise, settings->fall);
	track_file_init(&t->file, loop, t->settings.name, t->settings.file, check_interval_ms);
	track_file_set_reminder(&t->file, t->settings.reminder_interval_ms);
	if (track_file_write(&t->file, track_value(&t->settings, TRACK_UNKNOWN, 0)) == 0)
		log_info("track \"%s\": started, value %d (unknown) written to %s",
			 t->settings.name, t->file.value, t->file.path);
	if (init_probe(t, &t->settings, &t->probe_ops, &t->module, &t->probe) < 0 ||
	    start_probe(t) < 0) {
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
	const struct pgtrackd_module *ops;
	struct loaded_module *module;
	struct track_settings old_settings;
	void *probe;
	int r;

	/*
	 * The new probe is initialised while the old one still runs; the host
	 * it is given already answers with the new settings.
	 */
	memcpy(&old_settings, &t->settings, sizeof(old_settings));
	memcpy(&t->settings, settings, sizeof(t->settings));
	r = init_probe(t, settings, &ops, &module, &probe);
	if (r < 0) {
		memcpy(&t->settings, &old_settings, sizeof(t->settings));
		return r; /* the old probe keeps running */
	}
	if (t->probe && ops == t->probe_ops && ops->migrate)
		ops->migrate(t->probe, probe);
	stop_probe(t);
	t->probe = probe;
	t->probe_ops = ops;
	t->module = module;
	memcpy(&t->settings, &old_settings, sizeof(t->settings));

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
	track_file_set_reminder(&t->file, settings->reminder_interval_ms);
	verdict_init(&t->verdict, settings->rise, settings->fall);
	t->verdict.state = state;
	if (!t->file.has_value || t->file.value != track_value(settings, state, t->rank))
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
