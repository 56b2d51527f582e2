/*
 * pgtrackd/module.h: the probe module ABI of pgtrackd.
 *
 * A probe watches something and reports, through the host, which state it
 * is in.  pgtrackd turns the reports into the track's state (with rise and
 * fall for failures) and the state into the value written to the track's
 * keepalived track_file.  The built-in PostgreSQL probe is a module of
 * this very interface, compiled in.
 *
 * A module is a shared object named by a track ("module = /path/x.so").
 * It exports one function, pgtrackd_module_entry(), returning a const
 * struct pgtrackd_module whose first member is the ABI version it was
 * built for.  pgtrackd refuses a module built for another version, and a
 * module file, or any directory above it, that is writable by group or
 * others or not owned by root or by the user pgtrackd runs as.
 *
 * Everything runs on pgtrackd's single libev loop (host->loop): a module
 * must never block or fork, and uses libev watchers for its work.  Build:
 *
 *     cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags pgtrackd-module) \
 *        -o x.so x.c -lev
 *
 * and mark only the entry point visible (PGTRACKD_MODULE_EXPORT).
 *
 * One probe feeds one track file.  To combine checks, give each its own
 * track and file and let keepalived sum them: a vrrp_instance tracks
 * several track_files, and any of them at -254 or below puts it in FAULT.
 */
#ifndef PGTRACKD_MODULE_H
#define PGTRACKD_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ev.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bumped whenever a struct below or the meaning of a call changes.
 * 2: a probe gets its keys as a dictionary (init, check_section) instead
 * of host->config; the host tells the track's interval and
 * reminder_interval and takes a standby's rank (set_rank).
 * 3: a probe may describe what it knows (describe, struct pgtrackd_facts)
 * for pgtrackd's /status, /metrics and health endpoints, and say which
 * class of failure it saw (host->report_failure).  Only members were
 * added at the ends of the structs: pgtrackd loads modules built for 2
 * as before (they describe nothing, and their failures are "other").
 */
#define PGTRACKD_MODULE_ABI_VERSION 3
/* The oldest version this header's host still loads. */
#define PGTRACKD_MODULE_ABI_VERSION_MIN 2

/* The name of the one symbol a module exports. */
#define PGTRACKD_MODULE_ENTRY_NAME "pgtrackd_module_entry"

#define PGTRACKD_MODULE_EXPORT __attribute__((visibility("default")))

/*
 * What a probe reports.  Each state has a value in the track's section:
 * value_primary, value_standby, value_stale, value_conflict,
 * value_lagging, value_maintenance, value_ok; FAIL counts toward "fall"
 * and then writes value_down.  Between the other states the newest report
 * wins at once; coming back from down takes "rise" of them in a row.
 */
enum pgtrackd_state {
	PGTRACKD_STATE_FAIL = 0,    /* the check failed (reason says why) */
	PGTRACKD_STATE_OK,          /* healthy, nothing to add: value_ok, default 0 */
	PGTRACKD_STATE_PRIMARY,     /* a primary server: value_primary, default 54 */
	PGTRACKD_STATE_STANDBY,     /* a standby: value_standby, default 53 */
	PGTRACKD_STATE_STALE,       /* a primary that a peer superseded: default -254 */
	PGTRACKD_STATE_CONFLICT,    /* two primaries on one timeline: default -254 */
	PGTRACKD_STATE_LAGGING,     /* a standby too far behind: default -100 */
	PGTRACKD_STATE_MAINTENANCE, /* drained on purpose: default -254 */
};

/*
 * The class of a failure (ABI 3, host->report_failure): a small fixed set,
 * so that pgtrackd can count failures by class (the metric
 * pgtrackd_probe_failures_total{reason=...} has one series per class).
 * The label of each is in the comment.  A FAIL given to report() is OTHER.
 */
enum pgtrackd_failure {
	PGTRACKD_FAILURE_OTHER = 0,     /* "other": anything below does not fit */
	PGTRACKD_FAILURE_REFUSED,       /* "refused": nothing listens, no route, no socket */
	PGTRACKD_FAILURE_TIMEOUT,       /* "timeout": no answer within the probe's deadline */
	PGTRACKD_FAILURE_AUTH,          /* "auth": authentication or authorisation refused */
	PGTRACKD_FAILURE_STARTING,      /* "starting": starting up or shutting down (57P03) */
	PGTRACKD_FAILURE_TOO_MANY,      /* "too_many_connections": no slot (53300) */
	PGTRACKD_FAILURE_QUERY,         /* "query": the check's query failed or answered nonsense */
	PGTRACKD_FAILURE_LOST,          /* "lost": an open connection closed */
	PGTRACKD_FAILURE_NOT_ACCEPTING, /* "not_accepting": a session answers, new clients are not let in */
	/*
	 * "exited": the server's own process is gone (a postmaster seen exiting
	 * on this host): no second opinion can change that, so the track is
	 * down at once, whatever "fall" says.  Only for a death the probe saw
	 * itself, never for a lost connection.
	 */
	PGTRACKD_FAILURE_EXITED,
	PGTRACKD_FAILURE_N              /* not a class: how many there are */
};

enum pgtrackd_log_level {
	PGTRACKD_LOG_ERROR,
	PGTRACKD_LOG_WARNING,
	PGTRACKD_LOG_NOTICE,
	PGTRACKD_LOG_INFO,
	PGTRACKD_LOG_DEBUG,
};

/* One key of the track's section and its value, as written. */
struct pgtrackd_dict_item {
	const char *key;
	const char *value;
};

/*
 * The keys of a track's section that belong to its probe (pgtrackd's own
 * keys are not in it), in the order of the file; no key twice.
 */
struct pgtrackd_dict {
	const struct pgtrackd_dict_item *items;
	size_t n_items;
};

/* The value of key in dict, or NULL if it is not set. */
static inline const char *pgtrackd_dict_get(const struct pgtrackd_dict *dict, const char *key)
{
	for (size_t i = 0; i < dict->n_items; i++)
		if (strcmp(dict->items[i].key, key) == 0)
			return dict->items[i].value;
	return NULL;
}

/*
 * Where a probe describes what it knows (ABI 3): its describe callback
 * gets one, valid for that call only.  Each put adds a fact to the object
 * or list open at the moment: at first the probe's top-level object.
 * Keys are short snake_case names; in a list the key is ignored (pass
 * NULL); a key given twice keeps its last value.  Text is copied, and
 * need not be valid UTF-8 (bytes that are not become U+FFFD); NULL text
 * is skipped.  begin_object and begin_list open a nested object or list
 * under key (nested at most 4 deep), end closes the innermost one; the
 * host closes what the probe left open.  A fact the probe does not know
 * is left out, never made up (no -1 for "unknown").  Nothing here fails
 * in a way the probe must handle: out of memory, the host drops facts.
 */
struct pgtrackd_facts {
	void *ctx; /* the host's; a probe never touches it */
	void (*put_int)(const struct pgtrackd_facts *f, const char *key, int64_t value);
	void (*put_double)(const struct pgtrackd_facts *f, const char *key, double value);
	void (*put_text)(const struct pgtrackd_facts *f, const char *key, const char *value);
	void (*begin_object)(const struct pgtrackd_facts *f, const char *key);
	void (*begin_list)(const struct pgtrackd_facts *f, const char *key);
	void (*end)(const struct pgtrackd_facts *f);
};

/* What pgtrackd offers a module; valid from init to destroy. */
struct pgtrackd_host {
	unsigned abi_version;   /* the host's PGTRACKD_MODULE_ABI_VERSION */
	struct ev_loop *loop;   /* the loop to put watchers on */
	const char *track_name; /* the track this probe feeds */
	int64_t interval_ms;    /* the track's interval: how often to check */
	/* [global] reminder_interval: how often a lasting error is logged again. */
	int64_t reminder_interval_ms;

	/*
	 * Reports the probe's current state.  Report on every check, not only
	 * on changes, and at least once per interval_ms: failures are
	 * counted, and under systemd's watchdog a probe silent for five
	 * intervals (at least 10 s) counts as hung.  reason (may be NULL) ends up in
	 * the log line of a state change.
	 */
	void (*report)(const struct pgtrackd_host *host, enum pgtrackd_state state,
		       const char *reason);

	/* Logs a line prefixed with the track's name. */
	void (*log)(const struct pgtrackd_host *host, enum pgtrackd_log_level level,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

	/*
	 * A standby's place among the standbys: rank 0 is the most advanced,
	 * and each rank lowers value_standby by step (never below -253).  The
	 * rank goes with the next report of PGTRACKD_STATE_STANDBY; the step
	 * applies at once (also when called from init).  A change of rank
	 * while the track stays standby is written and logged like a change
	 * of state.  Probes that do not rank never call it.
	 */
	void (*set_rank)(const struct pgtrackd_host *host, int rank, int step);

	/*
	 * ABI 3: report(host, PGTRACKD_STATE_FAIL, reason) with the class of
	 * the failure, which pgtrackd counts (report's FAIL counts as OTHER).
	 * Only in a host whose abi_version is 3 or more.
	 */
	void (*report_failure)(const struct pgtrackd_host *host, enum pgtrackd_failure failure,
			       const char *reason);
};

/* A module: the const struct its entry point returns. */
struct pgtrackd_module {
	unsigned abi_version; /* PGTRACKD_MODULE_ABI_VERSION; always the first member */
	const char *name;     /* for log lines */

	/*
	 * Checks one key of the track's section that pgtrackd does not know,
	 * when the configuration is loaded (also by pgtrackd -t).  Returns 0 if
	 * the key and value are fine, -ENOENT for a key the module does not
	 * know, -EINVAL (with a sentence in error) for a bad value.  pgtrackd
	 * adds the file and line.  May be NULL if the module has no keys.
	 */
	int (*check_key)(const char *key, const char *value, char *error, size_t error_size);

	/*
	 * Checks the section as a whole after every key was seen (required
	 * keys, combinations): config holds the module's keys, each passed by
	 * check_key.  0, or -EINVAL with a sentence in error.  May be NULL.
	 */
	int (*check_section)(const struct pgtrackd_dict *config, char *error, size_t error_size);

	/*
	 * Allocates the probe's state from its keys (checked beforehand by
	 * check_key and check_section; config and its strings are valid only
	 * during the call: copy what is kept); nothing runs yet.  0 or -errno.
	 */
	int (*init)(const struct pgtrackd_host *host, const struct pgtrackd_dict *config,
		    void **state);
	/* Starts watching on host->loop.  0 or -errno. */
	int (*start)(void *state);
	/* Stops every watcher; start may follow. */
	void (*stop)(void *state);
	/* Frees the state (stopping first if needed); accepts NULL. */
	void (*destroy)(void *state);
	/*
	 * Optional: on a reload that changed the track's settings, carries
	 * what must survive from the old probe to the new one, which has been
	 * initialised but not started.
	 */
	void (*migrate)(void *old_state, void *new_state);

	/*
	 * ABI 3, optional (NULL, and never read in a module built for 2):
	 * describes what the probe knows now, through out (see struct
	 * pgtrackd_facts).  pgtrackd calls it when someone asks (an HTTP
	 * request for /status, /metrics or a health endpoint: at most once per
	 * loop iteration), never per check, so a probe keeps its figures as it
	 * goes and only writes them out here.  It runs on the loop between
	 * start and stop or destroy (also while stopped): quick, no I/O, no
	 * report().  Facts pgtrackd itself reads (all optional):
	 *
	 *   probe_latency_seconds (double)  the last check's round trip
	 *   in_recovery (int 0/1)           a PostgreSQL standby (1) or primary (0)
	 *   timeline (int)                  the server's timeline
	 *   lag_bytes (int)                 a standby's replay behind the newest
	 *                                   primary position it knows
	 *   receive_lag_bytes (int)         a standby's received WAL behind the primary
	 *   lag_seconds (double)            a standby's replay lag in time
	 *   replication_state (text)        "streaming", or what else the WAL
	 *                                   receiver does, "none" without one
	 *   accept_failures (int)           failures of an accept probe so far
	 *   peers (list of objects)         each with name (text), answer (text:
	 *                                   primary, standby, failed or pending),
	 *                                   age_seconds (double) and reachable (int 0/1)
	 *
	 * The built-in PostgreSQL probe describes these and more (pgtrackd(8),
	 * "Facts").
	 */
	void (*describe)(void *state, const struct pgtrackd_facts *out);
};

/* The entry point every module defines (with PGTRACKD_MODULE_EXPORT). */
const struct pgtrackd_module *pgtrackd_module_entry(void);

#ifdef __cplusplus
}
#endif

#endif
