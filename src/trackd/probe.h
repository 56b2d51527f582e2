/*
 * probe: what a track asks of whatever watches its server.
 *
 * This is the shape the public module ABI (include/pgtrackd/module.h)
 * takes: a versioned const ops table, host services handed in at init,
 * and one report call.  The built-in PostgreSQL probe implements it.
 * A probe reports samples; the track applies rise/fall to them.
 */
#ifndef PGTRACKD_PROBE_H
#define PGTRACKD_PROBE_H

#include <ev.h>

#include "verdict.h"

#define PROBE_ABI_VERSION 1

struct probe_host {
	struct ev_loop *loop;
	const char *track_name;
	/* One sample; reason says why for a failure, may be NULL otherwise. */
	void (*report)(const struct probe_host *host, enum sample sample, const char *reason);
};

struct probe_ops {
	unsigned abi_version;
	const char *name;
	/* Allocates the probe's state from its settings; 0 or -errno. */
	int (*init)(const struct probe_host *host, const void *settings, void **state);
	/* Begins probing on host->loop. */
	int (*start)(void *state);
	/* Stops every watcher and closes connections; start may follow. */
	void (*stop)(void *state);
	/* Frees the state; accepts NULL. */
	void (*destroy)(void *state);
	/*
	 * Optional, on reload: carries what must survive a settings change
	 * (e.g. the guard's sticky verdicts) from the old probe to the new one,
	 * before the new one starts.
	 */
	void (*migrate)(void *old_state, void *new_state);
};

extern const struct probe_ops probe_postgres_ops;

#endif
