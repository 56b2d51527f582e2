/*
 * hooks: the optional per-state commands ([hooks] on_master ...), for what
 * the admin console cannot do (start pgbouncer, page someone).
 *
 * argv is split at load time and run with posix_spawn: no shell, no PATH.
 * stdin is /dev/null; stdout and stderr are read on the loop and logged.
 * A hook that outlives hook_timeout gets SIGTERM, then SIGKILL 2 s later.
 * One hook runs at a time; while it runs, only the latest next one waits.
 */
#ifndef PGTRACK_HOOKS_H
#define PGTRACK_HOOKS_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "linebuf.h"
#include "notify_config.h"

/* What a hook is told about the event, in its environment (PGTRACK_*). */
struct hook_context {
	char kind[16];      /* "INSTANCE" or "GROUP" */
	char name[CONF_STR_SIZE]; /* the VRRP instance or sync group */
	char state[24];     /* MASTER, BACKUP, FAULT, STOP */
	int priority;
};

struct hooks {
	struct ev_loop *loop;
	const struct notify_config *config; /* borrowed */
	pid_t pid;
	enum hook_event running;
	bool has_pending;
	enum hook_event pending;
	struct hook_context pending_context;
	bool term_sent;
	ev_child child;
	ev_timer deadline;
	ev_io output;
	int output_fd;
	struct linebuf lines; /* of its output */
	int lines_logged;
};

void hooks_init(struct hooks *h, struct ev_loop *loop, const struct notify_config *config);
void hooks_set_config(struct hooks *h, const struct notify_config *config);
/*
 * Runs the hook for event, if one is configured, now or after the running
 * one.  The hook gets a minimal environment: PATH, LANG (ours, if set) and
 * the event's PGTRACK_EVENT, PGTRACK_VRRP_KIND, PGTRACK_VRRP_NAME,
 * PGTRACK_VRRP_STATE and PGTRACK_VRRP_PRIORITY; nothing else of ours
 * (a PGPASSWORD, say) reaches it.
 */
void hooks_run(struct hooks *h, enum hook_event event, const struct hook_context *context);
/* Stops watching; a running hook is left to finish on its own. */
void hooks_finish(struct hooks *h);

#endif
