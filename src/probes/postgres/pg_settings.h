/*
 * pg_settings: the built-in PostgreSQL probe's keys, read from the
 * track's dictionary (include/pgtrackd/module.h), and their checks.
 *
 * The probe owns these keys: pgtrackd hands it every key of the section
 * it does not know itself.  pgtrackd calls pg_settings_parse when it loads
 * the configuration, so that each problem is reported at its key's line;
 * the probe parses the same dictionary again at init.  The one exception
 * to "no key twice" in the dictionary: pgtrackd leaves a repeated
 * peer.NAME to pg_settings_parse, which refuses the repeat of a peer it
 * accepted.
 */
#ifndef PGTRACKD_PG_SETTINGS_H
#define PGTRACKD_PG_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <pgtrackd/module.h>

#include "conf.h"

#define PG_PEER_NAME_MAX 32
#define PG_MAX_PEERS 8

/* Another node of the cluster, asked for its role by the stale-primary guard. */
struct pg_peer_settings {
	char name[PG_PEER_NAME_MAX + 1];
	char host[CONF_STR_SIZE];   /* a host name or a unix socket directory, or empty */
	char hostaddr[64];          /* a numeric address, or empty */
	int port;                   /* 0: the track's port */
	int item;                   /* its index in the dictionary, for messages */
};

struct pg_settings {
	char host[CONF_STR_SIZE];
	char hostaddr[CONF_STR_SIZE];
	int port; /* 0: libpq's default */
	char dbname[CONF_STR_SIZE];
	char user[CONF_STR_SIZE];
	char passfile[CONF_STR_SIZE];
	char sslmode[CONF_STR_SIZE];
	char application_name[CONF_STR_SIZE];
	int64_t connect_timeout_ms;
	int64_t timeout_ms;
	int64_t accept_interval_ms; /* unset: the track's interval */
	/*
	 * How often an accept probe is a full connection instead of a light
	 * one: the pace at which a server shutting down is seen, and at which
	 * peer sessions are opened anew.
	 */
	int64_t accept_full_interval_ms;

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
	int rank_step; /* value_standby falls this much per rank */

	/*
	 * Synchronous replication that relaxes (sync_policy.h): the names set
	 * while standbys stream (empty: pgtrackd leaves the setting alone), how
	 * long a commit may wait before it relaxes (0: never), how close a
	 * standby must be to turn it back on, and what a promotion starts
	 * with: "relaxed", or "follower" (strict while other standbys would
	 * follow it).
	 */
	char sync_standby_names[CONF_STR_SIZE];
	int64_t sync_relax_after_ms;
	int64_t sync_catchup;
	char sync_promotion[CONF_STR_SIZE];

	struct pg_peer_settings peers[PG_MAX_PEERS];
	int n_peers;

	/* The host's: the track's interval and [global] reminder_interval. */
	int64_t interval_ms;
	int64_t reminder_interval_ms;
};

/*
 * A problem with item (an index in the dictionary, -1: the section).
 * section: found by looking at the keys together (a peer named like the
 * node), not at item alone.
 */
typedef void (*pg_problem_fn)(void *ctx, int item, bool section, const char *message);

/* Whether key is one of the probe's (peer.NAME included). */
bool pg_settings_is_key(const char *key);

/*
 * Fills s from config over the defaults; interval_ms and
 * reminder_interval_ms are the host's.  Each problem goes to problem
 * (may be NULL), worded for the log with track_name; returns how many.
 */
int pg_settings_parse(struct pg_settings *s, const struct pgtrackd_dict *config,
		      const char *track_name, int64_t interval_ms, int64_t reminder_interval_ms,
		      pg_problem_fn problem, void *ctx);

/* sync_promotion = follower: a promotion waits for a standby that follows it. */
static inline bool pg_settings_promotion_waits(const struct pg_settings *s)
{
	return strcmp(s->sync_promotion, "follower") == 0;
}

#endif
