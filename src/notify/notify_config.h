/*
 * notify_config: pgtrack-notify.conf.  Like pgtrackd's, loading never
 * touches running state, so a reload can throw a bad file away whole.
 */
#ifndef PGTRACK_NOTIFY_CONFIG_H
#define PGTRACK_NOTIFY_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "dbfile.h"
#include "httpd.h"

#define NOTIFY_MAX_DATABASES 32
#define NOTIFY_DBNAME_MAX 63
#define HOOK_MAX_ARGS 32
#define TEMPLATE_MAX (64 * 1024)

struct notify_settings {
	char fifo[CONF_STR_SIZE];
	char fifo_owner[CONF_STR_SIZE];
	char instance[CONF_STR_SIZE];
	char group[CONF_STR_SIZE];
	char vip[CONF_STR_SIZE];
	int64_t reconcile_interval_ms;
	int64_t stop_grace_ms;
	char syslog_facility[CONF_STR_SIZE];
};

struct bouncer_settings {
	char host[CONF_STR_SIZE];
	int port;
	char user[CONF_STR_SIZE];
	char passfile[CONF_STR_SIZE];
	int64_t connect_timeout_ms;
	int64_t command_timeout_ms;
	char databases[CONF_STR_SIZE];
	char databases_file[CONF_STR_SIZE];
	char databases_template[CONF_STR_SIZE];
	int64_t retry_max_ms;
	char backup_clients[CONF_STR_SIZE]; /* "wait" or "refuse" */
};

/* [postgres]: the local PostgreSQL, whose promotion ends a hold. */
struct local_settings {
	char host[CONF_STR_SIZE];
	int port;
	char user[CONF_STR_SIZE];
	char dbname[CONF_STR_SIZE];
	char passfile[CONF_STR_SIZE];
	int64_t connect_timeout_ms;
	int64_t hold_poll_ms;
	int64_t hold_timeout_ms;
	int64_t session_renew_ms; /* the idle session is replaced this often (smart shutdown) */
	char hold_gate[CONF_STR_SIZE]; /* "on" or "off" */
};

/* [http]: the optional listener for /status and /metrics (notify_config_http.c). */
#define NOTIFY_HTTP_MAX_LISTEN 8
#define NOTIFY_HTTP_MAX_ALLOW 16
#define NOTIFY_HTTP_ADDR_SIZE 48 /* "[ffff:...:ffff]:65535" */

struct http_settings {
	char listen[CONF_STR_SIZE];
	char allow[CONF_STR_SIZE];
	int max_connections;
	int64_t timeout_ms;
};

/* [http] as the listener takes it; compared whole on reload. */
struct notify_http_config {
	bool enabled; /* the section is there */
	int n_listen;
	char listen[NOTIFY_HTTP_MAX_LISTEN][NOTIFY_HTTP_ADDR_SIZE];
	int n_allow;
	struct httpd_net allow[NOTIFY_HTTP_MAX_ALLOW]; /* loopback only when allow is unset */
	unsigned int max_connections;
	unsigned int timeout_s;
};

enum hook_event {
	HOOK_MASTER,
	HOOK_BACKUP,
	HOOK_FAULT,
	HOOK_STOP,
	HOOK_EVENTS,
};

struct hook_settings {
	char command[HOOK_EVENTS][CONF_STR_SIZE];
	int64_t timeout_ms;
};

struct hook_argv {
	int argc;
	char *argv[HOOK_MAX_ARGS + 1]; /* point into storage */
	char storage[CONF_STR_SIZE];
};

struct notify_config {
	char *path;
	struct notify_settings notify;
	struct bouncer_settings bouncer;
	struct hook_settings hooks;
	struct local_settings local;
	struct http_settings http_keys;
	bool hold; /* [postgres] is present: hold on MASTER until it is primary */
	bool backup_waits; /* backup_clients = wait: BACKUP holds clients instead of refusing */
	bool gate;   /* the databases file carries the gate (gate.h): a MASTER holds by serving */
	char gate_why[256]; /* with [postgres] and no gate: why not */

	/* Derived while loading. */
	uid_t fifo_uid;
	bool all_databases; /* databases = *: every database pgbouncer lists */
	int n_databases;
	char database[NOTIFY_MAX_DATABASES][NOTIFY_DBNAME_MAX + 1];
	char *template_text; /* NULL without databases_file; the MASTER's copy */
	size_t template_len;
	char *fenced_text;   /* the template, its fallback "*" sent nowhere */
	size_t fenced_len;
	struct dbfile template_dbs; /* what pgbouncer should have once it reloaded each */
	struct dbfile fenced_dbs;
	struct hook_argv hook[HOOK_EVENTS];
	struct notify_http_config http;
};

/*
 * Loads path.  fifo_override (the command line's FIFO, or NULL) stands in
 * for [notify] fifo.  NULL on errors, all of which are in errs.
 */
struct notify_config *notify_config_load(const char *path, const char *fifo_override,
					 struct conf_errors *errs);
/* The hold's method, logged at start and when a reload changes it; target names [postgres]. */
void notify_config_log_hold(const struct notify_config *c, const char *target);

void notify_config_destroy(struct notify_config *config);

/* [http] (notify_config_http.c), for notify_config.c's loader. */
extern const struct conf_key notify_http_keys[];
/* Checks listen and allow on their own line, as they are set. */
void notify_http_check_key(struct conf_parser *p, struct notify_config *c, const char *key);
/* At the end: required keys, the default allow-list; line is [http]'s, 0 if absent. */
void notify_http_check_end(struct conf_parser *p, struct notify_config *c, uint64_t seen,
			   int line);
/* Whether two [http] configurations make the same listener. */
bool notify_http_config_same(const struct notify_http_config *a,
			     const struct notify_http_config *b);

/* Splits a hook command on blanks, double quotes grouping; false if unbalanced. */
bool hook_argv_split(const char *command, struct hook_argv *out);

const char *hook_event_name(enum hook_event event);

/*
 * pgbouncer 1.18 keeps a fallback database ("*") that a RELOAD no longer
 * finds in its configuration, so off MASTER the "*" line stays, with this
 * appended: the databases pgbouncer creates from it then fail their server
 * login (the client gets 'database "pgtrack_notify_fenced" does not
 * exist'), and a later RELOAD of the MASTER's line points them back.
 */
#define NOTIFY_FENCED_DB "pgtrack_notify_fenced"
#define NOTIFY_FENCED_DBNAME "dbname=" NOTIFY_FENCED_DB

/*
 * Copies text, with NOTIFY_FENCED_DBNAME appended to the lines that define
 * pgbouncer's fallback database (key "*"); out must hold len + (lines + 1)
 * * sizeof(NOTIFY_FENCED_DBNAME) bytes.  Returns the length copied and sets
 * *found when such a line was there.
 */
size_t notify_template_fenced(const char *text, size_t len, char *out, bool *found);

#endif
