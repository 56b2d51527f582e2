/*
 * trackd_config: pgtrackd.conf, its key tables and its checks.  Loading never
 * touches running state, so a reload can throw a bad file away whole.
 */
#ifndef PGTRACKD_TRACKD_CONFIG_H
#define PGTRACKD_TRACKD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "config_http.h"
#include "track_state.h"

#define TRACK_NAME_MAX 64

struct loaded_module;
/* Keys of the probe's own: the built-in probe's (up to 17 and 8 peers) or a module's. */
#define PROBE_MAX_KEYS 48
/* As long as a line allows: a bad peer.NAME is the probe's to refuse, by its name. */
#define PROBE_KEY_MAX CONF_MAX_LINE

/* A key pgtrackd does not know, kept as text for the probe. */
struct probe_key {
	char key[PROBE_KEY_MAX + 1];
	char value[CONF_STR_SIZE];
	int line;
};

/*
 * What pgtrackd itself configures of a track: its name and file, the
 * timing of its verdict, the value of each state (track_state.h), and
 * its probe with the probe's keys as text.  The built-in PostgreSQL
 * probe's keys are its own (src/probes/postgres/pg_settings.h).
 * Compared with memcmp on reload, so always zero it before filling it
 * (config_load does).
 */
struct track_settings {
	char name[TRACK_NAME_MAX + 1];
	char origin[256]; /* the file of the section (the main file or conf.d/...) */
	int line; /* of the section header, for messages */
	char file[CONF_STR_SIZE];

	int64_t interval_ms;
	int rise;
	int fall;
	/* From [global]: how often a lasting error (a conflict) is logged again. */
	int64_t reminder_interval_ms;

	int values[TRACK_N_STATES]; /* by enum track_state */
	/* keepalived's base priority the values are meant for (0: no check). */
	int base_priority;

	/* A probe module, or empty for the built-in PostgreSQL probe. */
	char module[CONF_STR_SIZE];
	/*
	 * The section's keys pgtrackd does not know, for the probe: the
	 * built-in probe's, or the module's (the built-in probe's keys in a
	 * module's track are ignored, with a warning), in the file's order.
	 */
	struct probe_key probe_keys[PROBE_MAX_KEYS];
	int n_probe_keys;
};

struct global_settings {
	int64_t file_check_interval_ms;
	int64_t reminder_interval_ms;
	int64_t ready_timeout_ms; /* systemd READY=1 at the latest this long after start */
	char syslog_facility[CONF_STR_SIZE];
	int realtime_priority;     /* SCHED_RR priority of the event loop, 0: normal scheduling */
	int64_t realtime_limit_ms; /* RLIMIT_RTTIME: CPU without sleeping before the kernel kills */
};

struct trackd_config {
	char *path;
	char *conf_d; /* PATH's directory/conf.d: NAME.conf files read after PATH */
	struct global_settings global;
	struct http_settings http;
	struct track_settings *tracks;
	size_t n_tracks;
	/* Each module file named, loaded once to check its keys and then run by its tracks. */
	struct loaded_module **modules;
	size_t n_modules;
};

/*
 * Loads path into a new config.  NULL on errors, all of which are in errs
 * (also on out of memory).  Warnings (not errors) go to the log.
 */
struct trackd_config *config_load(const char *path, struct conf_errors *errs);
void config_destroy(struct trackd_config *config);

/* The value of a probe key of s, or NULL. */
const char *track_probe_key(const struct track_settings *s, const char *key);

/* The module config loaded for path (a track's module), or NULL. */
struct loaded_module *config_module(const struct trackd_config *config, const char *path);

/* Same settings, wherever in the file they stand. */
bool track_settings_equal(const struct track_settings *a, const struct track_settings *b);

extern const struct conf_key config_global_keys[];
extern const struct conf_key config_track_keys[];

#endif
