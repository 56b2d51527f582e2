/*
 * sync_policy: synchronous replication that gives way when no standby can
 * acknowledge (sync_standby_names, pgtrackd.conf(5)).
 *
 * With synchronous replication a crash of the primary loses nothing it
 * acknowledged; but a primary whose standbys are all gone commits nothing.
 * pgtrackd owns synchronous_standby_names (ALTER SYSTEM, then
 * pg_reload_conf()) and keeps it in one of two positions:
 *
 * - strict (the configured names) while the server is a healthy primary
 *   and enough standbys stream caught up;
 * - relaxed ('') once a commit has waited sync_relax_after for them.
 *
 * On a standby, what a promotion starts with: relaxed (sync_promotion =
 * relaxed: its first commits are acknowledged at once and it turns strict
 * when a standby has followed it, as Patroni's non-strict synchronous mode
 * does); or, with sync_promotion = follower, strict while enough other
 * standbys answer among the peers (they would follow a promotion here, and
 * its first commits wait for one of them), relaxed when it is the only one
 * (two nodes: a promotion here would wait for nobody) or the others have
 * been gone sync_relax_after.
 *
 * Strict again once enough standbys stream within sync_catchup bytes of
 * the primary's flushed WAL and have flushed everything the primary had
 * flushed when it relaxed (a hung standby does not flip it back).  A
 * stale or conflicting primary is put back to strict, never relaxed: what
 * it commits waits rather than diverges.
 *
 * A session of its own, polled every track interval (at least a second
 * apart), so that a blocked ALTER SYSTEM can never delay the probe's
 * verdict; closed while the track is down, so that it never holds up a
 * smart shutdown.
 */
#ifndef PGTRACKD_SYNC_POLICY_H
#define PGTRACKD_SYNC_POLICY_H

#include <ev.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include <pgtrackd/module.h>

#include "conf.h"
#include "pg_settings.h"
#include "pgconn.h"
#include "ratelimit.h"

#define SYNC_MAX_STANDBYS 32

/* One poll's answer. */
struct sync_observation {
	bool in_recovery;
	char current[CONF_STR_SIZE];   /* synchronous_standby_names as the server has it */
	int64_t flush_lsn;             /* primary: flushed WAL position in bytes; -1 standby */
	int64_t standby_flush[SYNC_MAX_STANDBYS]; /* streaming walsenders' flushed positions */
	int n_standbys;                /* how many of those */
	int n_walsenders;              /* every walsender, streaming or not */
	char oldest_wait[64];          /* the longest SyncRep waiter "pid start", "" none */
	int n_waiting;                 /* backends waiting on SyncRep */
	bool sees_stats;               /* the role has pg_read_all_stats */
};

enum sync_action {
	SYNC_KEEP,
	SYNC_STRICT,
	SYNC_RELAX,
};

/* What the decision needs besides the observation. */
struct sync_context {
	const char *names;      /* strict value */
	int needed;             /* standbys the names require (sync_names_needed) */
	int64_t catchup;        /* bytes */
	int64_t relax_lsn;      /* the primary's flush position when it relaxed, -1 unknown */
	double waited;          /* seconds the oldest SyncRep waiter has been seen waiting, -1 none */
	double relax_after;     /* seconds, 0: never relax */
	enum pgtrackd_state verdict; /* the probe's latest report */
	int other_standbys;     /* standbys among the peers (would follow a promotion here), -1 unknown */
	bool promotion_waits;   /* sync_promotion = follower */
};

/* The number of standbys "[FIRST|ANY] N (...)" asks for: N, or 1 for a plain list. */
int sync_names_needed(const char *names);
/* Whether names is safe to put between single quotes in ALTER SYSTEM. */
bool sync_names_valid(const char *names);
/* Standbys streaming within catchup bytes and past relax_lsn. */
int sync_caught_up(const struct sync_observation *o, int64_t catchup, int64_t relax_lsn);
enum sync_action sync_decide(const struct sync_observation *o, const struct sync_context *c);
/* Fills o from the poll's result; false if it is not one. */
bool sync_parse(const PGresult *res, struct sync_observation *o);

/* What the probe knows: its latest verdict, and how many peers answer as standbys. */
typedef enum pgtrackd_state (*sync_verdict_fn)(void *owner);
typedef int (*sync_count_fn)(void *owner);

enum sync_step {
	SYNC_STEP_IDLE,
	SYNC_STEP_POLL,
	SYNC_STEP_ALTER,
	SYNC_STEP_RELOAD,
};

struct sync_policy {
	const struct pgtrackd_host *host;
	const struct pg_settings *settings;
	const struct pgconn_params *params;
	sync_verdict_fn verdict;
	sync_count_fn other_standbys;
	void *owner;

	struct pgconn conn;
	ev_timer tick;
	enum sync_step step;
	enum sync_action action;        /* the change under way */
	struct sync_observation seen;   /* the poll that decided it */

	char waiter[64];                /* the oldest SyncRep waiter being timed */
	double waiter_seen;             /* monotonic: when it was first seen */
	double alone_since;             /* monotonic: a strict standby saw no other standby; 0 */
	int64_t relax_lsn;              /* -1 unknown */
	char pending[CONF_STR_SIZE];    /* the value set, until the server shows it */
	double pending_at;              /* monotonic; 0 none */
	double retry_at;                /* monotonic: no change is tried before (after a failure) */
	double backoff;                 /* seconds to the next try after a failed change */
	bool stats_warned;
	bool failing;                   /* the last poll or change failed */
	bool polled;                    /* seen holds an answer */
	struct ratelimit change_log;
	struct ratelimit error_log;
};

void sync_policy_init(struct sync_policy *sp, const struct pgtrackd_host *host,
		      const struct pg_settings *settings, const struct pgconn_params *params,
		      sync_verdict_fn verdict, sync_count_fn other_standbys, void *owner);
void sync_policy_start(struct sync_policy *sp);
void sync_policy_stop(struct sync_policy *sp);
/* The facts of /status and /metrics: sync_standby_names, sync_relaxed ... */
void sync_policy_describe(const struct sync_policy *sp, const struct pgtrackd_facts *out);

#endif
