/*
 * bouncer: makes pgbouncer serve or fence the configured databases,
 * through its admin console (simple query protocol, one command per
 * query, each under command_timeout), on the shared event loop.
 *
 * Every run reads SHOW DATABASES, sends only the commands that the
 * difference calls for, and reads SHOW DATABASES again to verify.  So a
 * transition, a periodic reconcile and a repair after pgbouncer restarted
 * are one and the same procedure, and every run is idempotent.
 */
#ifndef PGTRACK_BOUNCER_H
#define PGTRACK_BOUNCER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "notify_config.h"
#include "notify_stats.h"
#include "pgconn.h"
#include "ratelimit.h"

/* Errors that would repeat at every run while their cause lasts. */
enum bouncer_repeat {
	BOUNCER_LOG_MISSING_DB,
	BOUNCER_LOG_REWRITE,
	BOUNCER_LOG_SHOW,
	BOUNCER_LOG_COMMAND,
	BOUNCER_LOG_VERIFY,
	BOUNCER_LOG_DRIFT,      /* something keeps undoing what we set */
	BOUNCER_LOG_RELOAD,     /* pgbouncer does not have what the databases file says */
	BOUNCER_LOG_KINDS,
};

/* Each of them is logged at most once in this many seconds. */
#define BOUNCER_REPEAT_EVERY 60.0

enum bouncer_mode {
	BOUNCER_UNKNOWN, /* leave pgbouncer alone */
	BOUNCER_SERVE,
	BOUNCER_FENCE,
	BOUNCER_HOLD, /* enabled but paused: clients wait inside pgbouncer */
};

/* With databases = *, at most this many of the databases pgbouncer lists per run. */
#define BOUNCER_MAX_LISTED 256
#define BOUNCER_MAX_COMMANDS (2 * BOUNCER_MAX_LISTED + 8)
#define BOUNCER_COMMAND_SIZE 96

/* Where the run (or poke) in progress is: BOUNCER_IDLE when there is none. */
enum bouncer_phase {
	BOUNCER_IDLE,
	BOUNCER_CONNECTING,
	BOUNCER_CONFIG, /* SHOW CONFIG, once per admin session */
	BOUNCER_PREPARE, /* RELOAD, global RESUME */
	BOUNCER_SHOW,
	BOUNCER_APPLY,
	BOUNCER_VERIFY,
	BOUNCER_POKE, /* SHOW VERSION, only to wake pgbouncer's loop up */
};

struct bouncer {
	struct ev_loop *loop;
	const struct notify_config *config; /* borrowed; see bouncer_set_config */
	struct pgconn conn;
	struct pgconn_params params;
	char target[CONF_STR_SIZE + 16]; /* "host:port", for log lines */

	enum bouncer_mode mode;
	enum bouncer_mode run_mode; /* what the run in progress works toward */
	char reason[96];    /* the VRRP state behind mode */
	bool announce;      /* mode changed and not yet applied */
	bool periodic;      /* this run comes from the reconcile timer */
	bool rerun;
	bool resumed_globally;

	enum bouncer_phase phase;
	char commands[BOUNCER_MAX_COMMANDS][BOUNCER_COMMAND_SIZE];
	int n_commands;
	int next_command;
	int sent; /* commands sent in this run */
	bool resumed_db; /* this run sent RESUME db */
	bool held;        /* a hold began and no serve or fence succeeded since */
	bool hold_applied; /* the last run that succeeded held the databases */
	bool kill_paused; /* this run's plan: KILL paused databases too */
	bool cut_held;    /* leaving MASTER: the next hold KILLs held clients too */
	bool run_cuts;    /* this run's plan applies cut_held */
	/* The databases the last hold plan saw: its end RESUMEs them before SHOW DATABASES. */
	char held_dbs[BOUNCER_MAX_LISTED][NOTIFY_DBNAME_MAX + 1];
	int n_held_dbs;
	/*
	 * A client that logs in to a paused database whose pool never had a
	 * server connection makes pgbouncer 1.18 open one (to learn the
	 * server's parameters) and close it at once ("pause mode"): a fork
	 * on the server, which is being promoted, for every client, and a
	 * failed login that can make the first server connection after
	 * RESUME wait server_login_retry.  Under a global PAUSE it opens
	 * none.  So a hold pauses pgbouncer globally too, when every
	 * database it lists is one of ours (a global PAUSE holds them all).
	 */
	bool pause_all_ok;     /* the last hold plan found no database but ours */
	bool paused_globally;  /* our global PAUSE is in place (as far as we know) */

	/*
	 * pgbouncer answers RELOAD with success even when it refused the
	 * new file and kept its old databases: each run's SHOW DATABASES is
	 * compared with the databases file (dbfile.h).
	 */
	bool file_known;   /* this run's databases file is what run_mode wants */
	bool reload_sent;  /* this run sent RELOAD: counted once SHOW DATABASES tells */
	bool reload_retry; /* this run's RELOAD is a retry (a debug line, not an info one) */
	bool reload_due;   /* pgbouncer differs from the file: RELOAD at every reconcile */
	bool reload_now;   /* ... and once at the next run (found without a RELOAD) */
	bool file_differs; /* the difference was logged: say when it is gone */

	/*
	 * pgbouncer's server_login_retry in seconds (-1 unknown).  A client
	 * that logged in to a paused database with no server connection
	 * left pgbouncer a failed server login: after RESUME it launches
	 * the next only once server_login_retry has passed, and only when
	 * its loop wakes up (at worst its 1/3 s maintenance timer); the
	 * server connections for the other waiting clients are launched
	 * one at a time, also at a wake-up.  So after a RESUME a trivial
	 * query is sent every POKE_EVERY until server_login_retry + 250 ms
	 * have passed (the poke).
	 */
	double login_retry;
	bool login_retry_warned;
	ev_timer poke;
	double poke_until; /* ev_now() */

	ev_timer retry;
	int64_t backoff_ms;
	bool outage;
	bool dropped_warned; /* host entries beyond pgconn's limit: said once */
	ev_timer reconcile;
	struct ratelimit repeat_log[BOUNCER_LOG_KINDS];
	struct notify_bouncer_stats stats; /* for /status and /metrics */
};

void bouncer_init(struct bouncer *b, struct ev_loop *loop, const struct notify_config *config);
void bouncer_finish(struct bouncer *b);
/* Starts the periodic reconcile and a first run. */
void bouncer_start(struct bouncer *b);
/* A new config (after a reload); reconnects if the connection settings changed. */
void bouncer_set_config(struct bouncer *b, const struct notify_config *config);
/* What keepalived says this node is; applied at once (or when pgbouncer is back). */
void bouncer_set_mode(struct bouncer *b, enum bouncer_mode mode, const char *reason);
/*
 * The node left MASTER: clients held there (paused databases) are cut
 * by the next run even if it holds again (a BACKUP's hold), so they
 * reconnect through the VIP to the new MASTER.
 */
void bouncer_cut_held(struct bouncer *b);

const char *bouncer_mode_name(enum bouncer_mode mode);

#endif
