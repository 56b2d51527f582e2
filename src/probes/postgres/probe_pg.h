/*
 * probe_pg: the built-in PostgreSQL probe, a module of include/pgtrackd/module.h.
 *
 * One persistent session answers a one-round-trip query every interval
 * (role, live timeline, system identifier).  While idle, its socket is
 * watched, so a crash or a killed backend is seen at once and a reconnect
 * follows immediately.  Every accept_interval the accept probe proves
 * that the postmaster still accepts clients: an open session keeps
 * answering while a stopped postmaster lets no one in.  Most accept probes
 * are a ping (pg_ping.c: the postmaster forks a child that answers one
 * byte; no backend start, no log line) to the server the session is
 * connected to, or a look at a local postmaster (pg_postmaster.c: its
 * state in /proc, and the status line of its postmaster.pid where we may
 * read it: "stopping" is a shutdown, handled as a full connection's
 * 57P03); every accept_full_interval one is a full connection, which
 * alone sees a server out of slots (53300: alive), a refused login, or,
 * without postmaster.pid, one that is shutting down (57P03: the session
 * is let go so that a smart shutdown is not held up).
 *
 * With peers configured, each tick also asks every peer (own connections,
 * own deadlines) for its role, timeline, WAL position and system
 * identifier.  While the local server is primary the verdict waits for
 * them (a round) and the guard (guard.c) turns the answers into stale or
 * conflict.  On a standby nothing waits: the local answer is judged at
 * once, with the peers' latest fresh answers, for lag against the primary
 * among them; a black-holed peer cannot delay a standby's verdict.
 */#ifndef PGTRACKD_PROBE_PG_H
#define PGTRACKD_PROBE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgtrackd/module.h>

#include "guard.h"
#include "peer.h"
#include "pg_answer.h"
#include "pg_ping.h"
#include "pg_postmaster.h"
#include "pg_settings.h"
#include "pgconn.h"
#include "postmaster_watch.h"
#include "ratelimit.h"
#include "sync_policy.h"

/* The built-in PostgreSQL probe's entry. */
extern const struct pgtrackd_module probe_postgres_module;

struct pg_probe {
	const struct pgtrackd_host *host;
	struct pg_settings settings;
	struct pgconn_params params;

	struct pgconn session;
	struct pgconn accept;
	struct pg_ping ping;
	/* Where the session is connected: a socket directory or the address libpq used. */
	char ping_host[256];
	char ping_port[8];
	struct pg_postmaster pm; /* a local postmaster: its state and postmaster.pid */
	struct postmaster_watch postmaster; /* its exit, the earliest sign of a crash */
	double last_full;       /* monotonic: the last full accept connection began (0: none yet) */
	/*
	 * Both timers repeat from start to stop, whatever happens to the
	 * connections: nothing on a failure path has to remember to re-arm
	 * them.  A tick that finds its connection still in flight leaves it to
	 * that connection's deadline.
	 */
	ev_timer tick;
	ev_timer accept_tick;
	double query_started;         /* monotonic */
	double latency;               /* the last probe query's round trip in seconds, -1 none */
	double last_quick_reconnect;  /* monotonic */
	/*
	 * The postmaster whose exit ended the session (0: none): the failure
	 * is reported as certain (PGTRACKD_FAILURE_EXITED), and the next
	 * connect gets PG_EXITING_RECONNECT_MS, not connect_timeout, since it
	 * may queue on the dying postmaster's listening socket, which no one
	 * answers any more.  exiting_connect_pid: that connect is under way.
	 */
	int exiting_pid;
	int exiting_connect_pid;

	bool running;
	bool accept_failing;
	bool ping_failing;     /* accept_failing came from a ping: only an answer ends it */
	char accept_reason[512];
	enum pgtrackd_failure accept_class; /* accept_reason's class */
	uint64_t accept_failures;  /* failed accept probes since the start (a reload keeps them) */
	bool accept_crowded;   /* the accept probe was turned away: too many connections */
	bool session_crowded;  /* so was the session: the last verdict stands */
	bool prepared;         /* the session has PG_STATEMENT */
	bool preparing;        /* the probe in flight prepares it */
	bool no_prepare;       /* the server lost it once (a pooler?): full queries only */
	bool dropped_warned;   /* host entries beyond pgconn's limit: said once */

	struct ratelimit conflict_log; /* the transition, then one reminder a period */
	bool in_conflict;

	struct pg_answer local;
	enum pgtrackd_state last_sample; /* the latest report() (FAIL after a failure) */
	struct sync_policy sync;         /* with sync_standby_names */
	int hot_standby;        /* in_hot_standby as last reported: -1 unknown, 0 off, 1 on */
	int hot_standby_disagreements;
	struct guard guard;
	struct peer peers[PG_MAX_PEERS];
	/*
	 * A round: a local answer as primary waits for the peers that can
	 * answer, so that a restarted old primary is never reported primary
	 * before the peers had their say.  Peers in an outage are not waited for.
	 */
	bool round_open;
	bool round_guard_only; /* on the last answer, while crowded out: only stale or conflict count */
	int round_waiting;
	ev_timer round_deadline;
	bool receiver_hidden_logged;
};

/* probe_pg.c: the session, the rounds and the verdict. */
extern const struct pgconn_handler pg_probe_session_handler;
void pg_probe_connect_session(struct pg_probe *p);
void pg_probe_tick_cb(struct ev_loop *loop, ev_timer *w, int revents);
void pg_probe_postmaster_exited(struct postmaster_watch *w, int pid, const char *how);
void pg_probe_round_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);
void pg_probe_peer_done(struct peer *peer, void *owner);
void pg_probe_cancel_round(struct pg_probe *p);
/* How old a peer's answer may be and still count (three intervals and a timeout). */
double pg_probe_peer_max_age(const struct pg_probe *p);
void pg_probe_format_failure(char *buf, size_t size, const char *what,
			     const struct pgconn_failure *f);
/* The module ABI's class of a connection's failure. */
enum pgtrackd_failure pg_probe_failure_class(enum pgconn_error kind);

/* probe_pg_facts.c: the module ABI's describe (what /status and /metrics show). */
void pg_probe_describe(void *state, const struct pgtrackd_facts *out);

/* probe_pg_accept.c: whether the postmaster still lets clients in. */
extern const struct pgconn_handler pg_probe_accept_handler;
void pg_probe_ping_done(struct pg_ping *ping, const struct pgconn_failure *f);
void pg_probe_accept_tick_cb(struct ev_loop *loop, ev_timer *w, int revents);
void pg_probe_arm_accept_tick(struct pg_probe *p);
/* The accept probes in flight, ping or full connection; no callback follows. */
void pg_probe_stop_accept(struct pg_probe *p);

#endif
