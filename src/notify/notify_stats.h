/*
 * notify_stats: what pgtrack-notify counts and remembers for /status and
 * /metrics, as plain data.  Each counter lives next to the event it
 * counts: FIFO lines and VRRP transitions in main, admin commands, file
 * rewrites, repairs and what SHOW DATABASES said in bouncer.  follow stays
 * pure and counts nothing.
 *
 * Pure code: no I/O, no loop, no log; the caller passes the clock.
 */
#ifndef PGTRACK_NOTIFY_STATS_H
#define PGTRACK_NOTIFY_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "notify_config.h"

/* A moment: wall clock for display, monotonic clock for ages; 0/0 is "never". */
struct notify_when {
	double wall;
	double mono;
};

struct notify_when notify_when_now(void);
static inline bool notify_when_known(struct notify_when w)
{
	return w.mono > 0.0;
}

/* What became of a line read from the FIFO. */
enum notify_line_result {
	NOTIFY_LINE_APPLIED,   /* about the followed instance or group */
	NOTIFY_LINE_OTHER,     /* about another instance or group: ignored */
	NOTIFY_LINE_IGNORED,   /* LVS (VS/RS) and empty lines */
	NOTIFY_LINE_MALFORMED, /* unparsable or longer than 512 bytes */
	NOTIFY_LINE_RESULTS,
};

const char *notify_line_result_name(enum notify_line_result r);

/* What pgtrack-notify does to pgbouncer: its admin commands, and the databases file. */
enum notify_action {
	NOTIFY_ACTION_RELOAD,
	NOTIFY_ACTION_RESUME,
	NOTIFY_ACTION_ENABLE,
	NOTIFY_ACTION_DISABLE,
	NOTIFY_ACTION_KILL,
	NOTIFY_ACTION_PAUSE,   /* global: a hold where every database is ours */
	NOTIFY_ACTION_REWRITE, /* the databases file, from databases_template */
	NOTIFY_ACTION_OTHER,
	NOTIFY_ACTIONS,
};

const char *notify_action_name(enum notify_action a);
/* The action of an admin command ("RESUME appdb" is NOTIFY_ACTION_RESUME). */
enum notify_action notify_action_of(const char *command);

/* A database as pgbouncer's SHOW DATABASES last showed it. */
enum notify_db_mode {
	NOTIFY_DB_UNKNOWN,  /* not seen yet */
	NOTIFY_DB_SERVING,  /* enabled, not paused */
	NOTIFY_DB_PAUSED,   /* enabled, paused: clients wait (a hold) */
	NOTIFY_DB_DISABLED, /* disabled, not paused: new clients refused, old ones stay */
	NOTIFY_DB_FENCED,   /* disabled and paused (DISABLE + KILL): nobody gets in */
	NOTIFY_DB_MISSING,  /* configured, but pgbouncer does not list it */
	NOTIFY_DB_MODES,
};

const char *notify_db_mode_name(enum notify_db_mode m);
enum notify_db_mode notify_db_mode_of(bool paused, bool disabled);

#define NOTIFY_LAST_ACTIONS 16
#define NOTIFY_ACTION_TEXT 96
#define NOTIFY_ERROR_TEXT 300
/* With databases = *, the databases shown beyond this many are counted, not listed. */
#define NOTIFY_DBS_SHOWN 256

struct notify_action_record {
	struct notify_when at;
	char what[NOTIFY_ACTION_TEXT]; /* "RESUME appdb", "rewrite /etc/pgbouncer/db.ini" */
	bool ok;
	char error[NOTIFY_ERROR_TEXT]; /* "" when ok */
};

struct notify_db_seen {
	char name[NOTIFY_DBNAME_MAX + 1];
	enum notify_db_mode mode;
};

struct notify_bouncer_stats {
	/* pgbouncer's admin console */
	bool contacted;                   /* reached at least once */
	bool reachable;                   /* the last attempt worked */
	struct notify_when last_error_at;
	char last_error[NOTIFY_ERROR_TEXT];

	uint64_t actions[NOTIFY_ACTIONS][2]; /* [action][ok] */
	uint64_t repairs;                    /* runs that found drift and repaired it */
	struct notify_action_record last[NOTIFY_LAST_ACTIONS]; /* a ring */
	size_t n_last;                       /* records ever made */

	struct notify_when dbs_at;           /* the last SHOW DATABASES */
	size_t n_dbs;
	size_t dbs_not_shown;                /* beyond NOTIFY_DBS_SHOWN */
	struct notify_db_seen dbs[NOTIFY_DBS_SHOWN];
};

/* An admin command (or file rewrite) and how it ended; error may be NULL. */
void notify_stats_action(struct notify_bouncer_stats *s, struct notify_when at,
			 enum notify_action action, const char *what, bool ok, const char *error);
/* The i-th most recent action record (0 the newest); NULL past the last. */
const struct notify_action_record *notify_stats_last(const struct notify_bouncer_stats *s,
						     size_t i);
/* pgbouncer reached or not; error is NULL when reached. */
void notify_stats_reach(struct notify_bouncer_stats *s, struct notify_when at, const char *error);

/* A SHOW DATABASES: begin, one call per database, in order. */
void notify_stats_dbs_begin(struct notify_bouncer_stats *s, struct notify_when at);
void notify_stats_db(struct notify_bouncer_stats *s, const char *name, enum notify_db_mode m);

#endif
