#include "track.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_probe.h"
#include "probe_pg.h"
#include "util.h"

int track_value(const struct track_settings *s, enum track_state state, int rank, int step)
{
	int value = s->values[(int)state >= 0 && state < TRACK_N_STATES ? state : TRACK_UNKNOWN];

	if (state != TRACK_STANDBY || rank <= 0)
		return value;
	return value - rank * step > -253 ? value - rank * step : -253;
}

void track_log(const struct track *t, enum pgtrackd_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	track_vlog_named(t->settings.name, level, fmt, ap);
	va_end(ap);
}

static int value_of(const struct track *t, enum track_state state)
{
	return track_value(&t->settings, state, t->rank, t->rank_step);
}

static void notify_changed(struct track *t)
{
	if (t->changed)
		t->changed(t->changed_ctx);
}

void track_set_observer(struct track *t, void (*changed)(void *ctx), void *ctx)
{
	t->changed = changed;
	t->changed_ctx = ctx;
}

/* The counters of a state change (old to the verdict's state). */
static void count_change(struct track *t, enum track_state old)
{
	double now = ev_now(t->host.loop);

	if (old == t->verdict.state)
		return;
	t->stats.state_changes++;
	t->stats.since = now;
	if (t->stats.first_verdict == 0.0 && t->verdict.state != TRACK_UNKNOWN &&
	    t->verdict.state != TRACK_STOPPED)
		t->stats.first_verdict = now;
}

static void publish(struct track *t, enum track_state old, const char *why)
{
	int value = value_of(t, t->verdict.state);
	int r = track_file_write(&t->file, value);

	count_change(t, old);
	track_log(t, PGTRACKD_LOG_INFO, "%s -> %s, value %d %s %s (%s)", track_state_name(old),
		  track_state_name(t->verdict.state), value,
		  r == 0 ? "written to" : "NOT YET written to", t->file.path, why);
	if (r == 0 && t->verdict.state != TRACK_UNKNOWN)
		t->verdict_written = true;
	notify_changed(t);
}

/* A standby that changed places among the standbys: one line per change. */
static void publish_rank(struct track *t, int old, const char *why)
{
	int value = value_of(t, TRACK_STANDBY);
	int r = track_file_write(&t->file, value);

	track_log(t, PGTRACKD_LOG_INFO, "standby rank %d -> %d, value %d %s %s (%s)", old, t->rank,
		  value, r == 0 ? "written to" : "NOT YET written to", t->file.path, why);
	notify_changed(t);
}

static struct track *of_host(const struct pgtrackd_host *host)
{
	return container_of(host, struct track, host);
}

static void host_set_rank(const struct pgtrackd_host *host, int rank, int step)
{
	struct track *t = of_host(host);

	t->rank_next = rank > 0 ? rank : 0;
	t->rank_step = step;
}

static void host_log(const struct pgtrackd_host *host, enum pgtrackd_log_level level,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	track_vlog_named(of_host(host)->settings.name, level, fmt, ap);
	va_end(ap);
}

/* The reason of a report, kept if it is the current state's; a failure's always. */
static void keep_reason(struct track *t, enum pgtrackd_state sample, const char *reason)
{
	if (!reason)
		reason = "";
	if (sample == PGTRACKD_STATE_FAIL) {
		snprintf(t->stats.last_failure, sizeof(t->stats.last_failure), "%s", reason);
		t->stats.last_failure_at = t->last_report;
	}
	/* FAIL is TRACK_DOWN's number; a failure short of fall is not the state's reason */
	if ((int)sample == (int)t->verdict.state)
		snprintf(t->stats.reason, sizeof(t->stats.reason), "%s", reason);
}

static void feed(struct track *t, enum pgtrackd_state sample, enum pgtrackd_failure failure,
		 const char *reason)
{
	enum track_state old = t->verdict.state;
	const struct verdict *v = &t->verdict;
	bool certain = sample == PGTRACKD_STATE_FAIL && failure == PGTRACKD_FAILURE_EXITED;
	bool changed;

	t->last_report = ev_now(t->host.loop);

	if (certain) {
		t->stats.failures[failure]++;
		track_log(t, PGTRACKD_LOG_DEBUG, "probe failed (the server's process is gone: "
			  "down at once, not after %d failures): %s", v->fall, reason);
	} else if (sample == PGTRACKD_STATE_FAIL) {
		t->stats.failures[(unsigned)failure < PGTRACKD_FAILURE_N ? failure :
				  PGTRACKD_FAILURE_OTHER]++;
		track_log(t, PGTRACKD_LOG_DEBUG, "probe failed (%d of %d): %s",
			  v->failures + 1 > v->fall ? v->fall : v->failures + 1, v->fall, reason);
	}
	changed = certain ? verdict_feed_certain_failure(&t->verdict) : verdict_feed(&t->verdict, sample);
	if (changed) {
		t->rank = t->rank_next;
		publish(t, old, reason ? reason : "");
	} else if (t->verdict.state == TRACK_STANDBY && sample == PGTRACKD_STATE_STANDBY &&
		   t->rank != t->rank_next) {
		int old_rank = t->rank;

		t->rank = t->rank_next;
		publish_rank(t, old_rank, reason ? reason : "");
	}
	keep_reason(t, sample, reason);
}

static void report(const struct pgtrackd_host *host, enum pgtrackd_state sample,
		   const char *reason)
{
	feed(of_host(host), sample, PGTRACKD_FAILURE_OTHER, reason);
}

static void report_failure(const struct pgtrackd_host *host, enum pgtrackd_failure failure,
			   const char *reason)
{
	feed(of_host(host), PGTRACKD_STATE_FAIL, failure, reason);
}

/* The host the probe sees: settings' name and timing (t->settings may still be the old ones). */
static void set_host(struct track *t, struct ev_loop *loop, const struct track_settings *s)
{
	t->host = (struct pgtrackd_host){
		.abi_version = PGTRACKD_MODULE_ABI_VERSION,
		.loop = loop,
		.track_name = t->settings.name,
		.interval_ms = s->interval_ms,
		.reminder_interval_ms = s->reminder_interval_ms,
		.report = report,
		.log = host_log,
		.set_rank = host_set_rank,
		.report_failure = report_failure,
	};
}

/* The probe of settings: the built-in one, or the module its configuration loaded. */
static int init_probe(struct track *t, const struct track_settings *settings,
		      struct loaded_module *module, const struct pgtrackd_module **ops,
		      void **probe)
{
	struct pgtrackd_dict_item items[PROBE_MAX_KEYS];
	struct pgtrackd_dict config;
	int r;

	*ops = module ? module->ops : &probe_postgres_module;
	config_probe_dict(settings, module != NULL, items, &config);
	r = (*ops)->init(&t->host, &config, probe);
	if (r < 0)
		track_log_named(settings->name, PGTRACKD_LOG_ERROR,
				"probe %s failed to initialise: %s",
				(*ops)->name ? (*ops)->name : "?", strerror(-r));
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
	track_facts_forget(t->facts);
	if (t->probe)
		t->probe_ops->destroy(t->probe);
	t->probe = NULL;
	module_unload(t->module);
	t->module = NULL;
}

struct track *track_create(struct ev_loop *loop, const struct track_settings *settings,
			   struct loaded_module *module, int64_t check_interval_ms)
{
	struct track *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->facts = calloc(1, sizeof(*t->facts));
	if (!t->facts) {
		free(t);
		return NULL;
	}
	memcpy(&t->settings, settings, sizeof(t->settings));
	set_host(t, loop, settings);
	verdict_init(&t->verdict, settings->rise, settings->fall);
	t->last_report = ev_now(loop);
	t->stats.since = t->last_report;
	t->stats.created = t->last_report;
	track_file_init(&t->file, loop, t->settings.name, t->settings.file, check_interval_ms);
	track_file_set_reminder(&t->file, t->settings.reminder_interval_ms);
	if (track_file_write(&t->file, value_of(t, TRACK_UNKNOWN)) == 0)
		track_log(t, PGTRACKD_LOG_INFO, "started, value %d (unknown) written to %s",
			  t->file.value, t->file.path);
	if (init_probe(t, &t->settings, module, &t->probe_ops, &t->probe) < 0 ||
	    start_probe(t) < 0) {
		track_file_finish(&t->file);
		free(t->facts);
		free(t);
		return NULL;
	}
	t->module = module ? module_ref(module) : NULL;
	return t;
}

/* The file moved: the old one is left at the stopped value. */
static void move_file(struct track *t, const char *file, int64_t check_interval_ms)
{
	uint64_t rewrites = t->file.rewrites;

	track_file_write(&t->file, t->settings.values[TRACK_STOPPED]);
	track_log(t, PGTRACKD_LOG_INFO, "moved from %s (left at the stopped value %d) to %s",
		  t->settings.file, t->settings.values[TRACK_STOPPED], file);
	track_file_finish(&t->file);
	track_file_init(&t->file, t->host.loop, t->settings.name, file, check_interval_ms);
	t->file.rewrites = rewrites; /* the track's count, whatever its file */
}

int track_reconfigure(struct track *t, const struct track_settings *settings,
		      struct loaded_module *module, int64_t check_interval_ms)
{
	enum track_state state = t->verdict.state;
	struct pgtrackd_host old_host = t->host;
	int old_rank_next = t->rank_next, old_rank_step = t->rank_step;
	const struct pgtrackd_module *ops;
	void *probe;
	int r;

	/*
	 * The new probe is initialised while the old one still runs, on the
	 * same host with the new timing (each probe copies it at init).
	 */
	set_host(t, t->host.loop, settings);
	r = init_probe(t, settings, module, &ops, &probe);
	if (r < 0) {
		t->host = old_host;
		t->rank_next = old_rank_next;
		t->rank_step = old_rank_step;
		return r; /* the old probe keeps running */
	}
	if (t->probe && ops == t->probe_ops && ops->migrate)
		ops->migrate(t->probe, probe);
	stop_probe(t); /* forgets the old probe's facts */
	t->probe = probe;
	t->probe_ops = ops;
	t->module = module ? module_ref(module) : NULL;

	if (strcmp(t->settings.file, settings->file) != 0)
		move_file(t, settings->file, check_interval_ms);
	memcpy(&t->settings, settings, sizeof(t->settings));
	track_file_set_check_interval(&t->file, check_interval_ms);
	track_file_set_reminder(&t->file, settings->reminder_interval_ms);
	verdict_init(&t->verdict, settings->rise, settings->fall);
	t->verdict.state = state;
	if (!t->file.has_value || t->file.value != value_of(t, state))
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
	track_facts_finish(t->facts);
	free(t->facts);
	free(t);
}
