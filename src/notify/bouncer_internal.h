/*
 * bouncer_internal: what bouncer.c (the admin session and its runs) and
 * bouncer_plan.c (the commands a run sends) share; nothing else includes it.
 */
#ifndef PGTRACK_BOUNCER_INTERNAL_H
#define PGTRACK_BOUNCER_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h> /* LOG_ERR ... for bouncer_log */

#include "bouncer.h"
#include "log.h"

/*
 * Whether an error that the periodic reconcile or the retries would repeat
 * may be logged now; *more gets " (N more times since the last one)" or "".
 */
bool bouncer_may_log(struct bouncer *b, enum bouncer_repeat kind, char *more, size_t size);
/* Logs "pgbouncer at TARGET" followed by fmt; priority as syslog's (LOG_ERR ...). */
void bouncer_log(const struct bouncer *b, int priority, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Counts the command in flight (or the file rewrite, what = its path) and its result. */
void bouncer_count(struct bouncer *b, enum notify_action action, const char *what,
		   const char *error);

/* Queues "COMMAND" or "COMMAND db" (db double-quoted unless a plain word). */
void bouncer_queue(struct bouncer *b, const char *command, const char *db);
/*
 * Makes the databases file what run_mode wants and queues a RELOAD when it
 * had to be rewritten (returns true then).
 */
bool bouncer_queue_file(struct bouncer *b);
/*
 * Compares SHOW DATABASES with the databases file; counts the RELOAD of
 * the run, if any, as taken or not.  On a difference, logs it (not at
 * every run) and makes the reconcile send RELOAD until it is gone.
 */
void bouncer_check_file(struct bouncer *b, const PGresult *res);
/* pgbouncer answered RELOAD: counted once bouncer_check_file tells whether it took the file. */
void bouncer_reload_answered(struct bouncer *b);
/* A RELOAD of this run that SHOW DATABASES did not get to verify: counted as failed. */
void bouncer_reload_unverified(struct bouncer *b, const char *error);
/*
 * From a hold to serving: RESUME at once what the hold paused, without
 * asking SHOW DATABASES first (one round trip less after the promotion);
 * the run's SHOW DATABASES then plans the rest (ENABLE ...).
 */
void bouncer_queue_held_resume(struct bouncer *b);
/* Queues a global RESUME where run_mode wants pgbouncer not paused globally (see bouncer.h). */
void bouncer_queue_global_resume(struct bouncer *b);
/* A global PAUSE or RESUME done, or found already so: where pgbouncer is now. */
void bouncer_note_global(struct bouncer *b, const char *cmd);
/* An error of cmd that says pgbouncer already is where cmd would put it. */
bool bouncer_is_benign(const char *cmd, const char *message);
/* Plans the commands that SHOW DATABASES says are missing; -1 if res is unusable. */
int bouncer_plan(struct bouncer *b, const PGresult *res, bool log_drift);

#endif
