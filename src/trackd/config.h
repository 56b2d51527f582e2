/*
 * config: pgtrackd.conf, its key tables and its checks.  Loading never
 * touches running state, so a reload can throw a bad file away whole.
 */
#ifndef PGTRACKD_CONFIG_H
#define PGTRACKD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

#define TRACK_NAME_MAX 64
#define PEER_NAME_MAX 32
#define TRACK_MAX_PEERS 8
#define MODULE_MAX_KEYS 16
#define MODULE_KEY_MAX 63

/* A key of a module's own, kept as text for the module. */
struct module_key {
	char key[MODULE_KEY_MAX + 1];
	char value[CONF_STR_SIZE];
	int line;
};

struct loaded_module;

/* Another node of the cluster, asked for its role by the stale-primary guard. */
struct peer_settings {
	char name[PEER_NAME_MAX + 1];
	char host[CONF_STR_SIZE];   /* a host name or a unix socket directory, or empty */
	char hostaddr[64];          /* a numeric address, or empty */
	int port;                   /* 0: the track's port */
	int line;
};

/*
 * Every how many accept probes (a ping each) a full connection is made
 * instead: the pace at which a server shutting down is seen, and at
 * which peer sessions are opened anew.
 */
#define TRACK_ACCEPT_FULL_EVERY 5

/*
 * Everything a track is configured with.  Compared with memcmp on reload,
 * so always zero it before filling it (config_load does).
 */
struct track_settings {
	char name[TRACK_NAME_MAX + 1];
	int line; /* of the section header, for messages */
	char file[CONF_STR_SIZE];

	char host[CONF_STR_SIZE];
	char hostaddr[CONF_STR_SIZE];
	int port; /* 0: libpq's default */
	char dbname[CONF_STR_SIZE];
	char user[CONF_STR_SIZE];
	char passfile[CONF_STR_SIZE];
	char sslmode[CONF_STR_SIZE];
	char application_name[CONF_STR_SIZE];
	int64_t connect_timeout_ms;

	int64_t interval_ms;
	int64_t timeout_ms;
	int rise;
	int fall;
	int64_t accept_interval_ms; /* unset: interval_ms */

	int value_primary;
	int value_standby;
	int value_down;
	int value_unknown;
	int value_stopped;
	int value_stale;
	int value_conflict;
	int value_lagging;

	/* Lag of a standby: above either, it is "lagging" (0 disables). */
	int64_t max_lag_bytes;
	int64_t max_lag_time_ms;
	/* A standby whose WAL receiver does not stream for longer is "lagging" (0 disables). */
	int64_t receiver_grace_ms;

	/*
	 * Standbys ranked by WAL position: this node's name in the peers'
	 * naming (empty: unknown, ties are conceded), and the difference in
	 * bytes below which two positions tie.
	 */
	char node[CONF_STR_SIZE];
	int64_t rank_tolerance;
	int rank_step;           /* value_standby falls this much per rank */
	/* keepalived's base priority the values are meant for (0: no check). */
	int base_priority;

	struct peer_settings peers[TRACK_MAX_PEERS];
	int n_peers;

	int value_ok;
	int value_maintenance;
	/* "postgres" (built in), or a probe module and its keys. */
	char probe[CONF_STR_SIZE];
	char module[CONF_STR_SIZE];
	struct module_key module_keys[MODULE_MAX_KEYS];
	int n_module_keys;

	/* From [global]: how often a lasting error (a conflict) is logged again. */
	int64_t reminder_interval_ms;
};

struct global_settings {
	int64_t file_check_interval_ms;
	int64_t reminder_interval_ms;
	char syslog_facility[CONF_STR_SIZE];
};

struct trackd_config {
	char *path;
	struct global_settings global;
	struct track_settings *tracks;
	size_t n_tracks;
	/* Modules loaded to check their keys; one reference each, dropped by config_destroy. */
	struct loaded_module **modules;
	size_t n_modules;
};

/*
 * Loads path into a new config.  NULL on errors, all of which are in errs
 * (also on out of memory).  Warnings (not errors) go to the log.
 */
struct trackd_config *config_load(const char *path, struct conf_errors *errs);
void config_destroy(struct trackd_config *config);

/* The value of a module key of s, or NULL. */
const char *track_module_key(const struct track_settings *s, const char *key);

/* Same settings, wherever in the file they stand. */
bool track_settings_equal(const struct track_settings *a, const struct track_settings *b);

extern const struct conf_key config_global_keys[];
extern const struct conf_key config_track_keys[];

#endif
