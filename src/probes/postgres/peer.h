/*
 * peer: a connection to another node of the cluster, asked the probe
 * query on the track's loop at every local answer: by a primary's round
 * (the stale-primary guard), or by a standby for the primary's WAL
 * position (the lag check).  Each peer has its own connection and deadlines, so a peer that
 * is black-holed or hung never delays the local probe.
 */
#ifndef PGTRACKD_PEER_H
#define PGTRACKD_PEER_H

#include <ev.h>
#include <stdbool.h>

#include <pgtrackd/module.h>

#include "pg_settings.h"
#include "pg_answer.h"
#include "pgconn.h"

/* How long a peer session is kept when accept_interval is 0. */
#define PEER_SESSION_MAX_MS 5000

struct peer;
/* A poll ended: an answer arrived or the attempt failed. */
typedef void (*peer_done_fn)(struct peer *p, void *owner);

struct peer {
	peer_done_fn done;
	void *owner;
	const struct pgtrackd_host *host; /* the loop, and the log */
	const struct pg_settings *track;
	const struct pg_peer_settings *settings;
	struct pgconn_params params;
	struct pgconn conns[2]; /* the session, and its successor while it is renewed */
	int cur;                /* which of them is the session */
	struct pg_answer answer;
	bool outage;    /* the last attempt failed: it gives no verdict */
	bool bad_answers; /* said once until a proper answer */
	bool heard;     /* answered or failed at least once since it was set up */
	double heard_at; /* monotonic: its last answer or failure */
	bool session_has_sysid; /* the session in use has answered with the system identifier */
	double connected_at; /* monotonic: when the session (or its last renewal attempt) began */
	bool in_round;  /* the owner waits for this poll */
};

void peer_init(struct peer *p, const struct pgtrackd_host *host,
	       const struct pg_settings *track, const struct pg_peer_settings *settings,
	       peer_done_fn done, void *owner);
/* Asks for a fresh answer: connects if needed, queries if idle. */
void peer_poll(struct peer *p);
void peer_stop(struct peer *p);
/* The last answer if it arrived within max_age seconds of now, else NULL. */
const struct pg_answer *peer_fresh_answer(const struct peer *p, double now, double max_age);

#endif
