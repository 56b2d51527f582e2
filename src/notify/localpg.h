/*
 * localpg: whether the local PostgreSQL is a primary, known from a
 * persistent asynchronous libpq session ([postgres] in
 * pgtrack-notify.conf) on the shared event loop.
 *
 * While watching (a hold: this node is MASTER and its PostgreSQL was not
 * primary yet), SELECT pg_is_in_recovery() runs every hold_poll until it
 * says primary; otherwise the session idles, its socket watched, and is
 * asked once after every (re)connect.  A promotion needs no restart, so a
 * session that once said primary stays right for as long as it lives.
 */
#ifndef PGTRACK_LOCALPG_H
#define PGTRACK_LOCALPG_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "notify_config.h"
#include "pgconn.h"

enum localpg_role {
	LOCALPG_UNKNOWN, /* not asked yet, or unreachable */
	LOCALPG_PRIMARY,
	LOCALPG_STANDBY,
};

struct localpg;
typedef void localpg_changed_cb(struct localpg *lp);

struct localpg {
	struct ev_loop *loop;
	const struct notify_config *config; /* borrowed; see localpg_set_config */
	localpg_changed_cb *changed;        /* role changed, or first answer while watching */
	struct pgconn conn;
	struct pgconn_params params;
	char target[CONF_STR_SIZE + 16];

	enum localpg_role role;
	bool answered;  /* a probe answered or failed since the start */
	bool fresh;     /* ... since watching began (role is current) */
	bool watching;
	bool outage;
	/*
	 * The last failure was the server refusing us for good (authentication,
	 * no such database or role, the query failing), not a server that is
	 * down or starting: no answer is coming, whatever the wait.
	 */
	bool refused;
	char last_error[256];
	bool gate_version_warned; /* the gate needs PostgreSQL 14: said once */
	int64_t backoff_ms;
	ev_timer timer; /* next poll, or next connect */
};

void localpg_init(struct localpg *lp, struct ev_loop *loop, const struct notify_config *config,
		  localpg_changed_cb *changed);
/* Connects (when [postgres] is configured). */
void localpg_start(struct localpg *lp);
void localpg_finish(struct localpg *lp);
void localpg_set_config(struct localpg *lp, const struct notify_config *config);
/* Polls every hold_poll while on and not primary; idles otherwise. */
void localpg_watch(struct localpg *lp, bool on);

const char *localpg_role_name(enum localpg_role role);

#endif
