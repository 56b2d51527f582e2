/*
 * track_file: keeps one keepalived track_file holding our value.
 *
 * Writes atomically, and makes sure the file still holds what we wrote:
 * keepalived's init_file ... overwrite, an operator or a removed directory
 * must not leave another value in force.  inotify on the directory tells
 * of a change at once; the check interval is the backstop where it cannot
 * (NFS, a directory replaced, no inotify instance left).  A failed
 * write is logged once (per errno) and retried at the same pace.  The file
 * is written through its directory's fd, reached without following any
 * symlink.  The directory must be one nobody but root or our user may
 * change (atomic_file.h): track_file_check_path refuses anything else at
 * start and reload; at run time a directory that has been opened up since
 * is still written (the value must not freeze) and warned about once per
 * reminder period.
 */
#ifndef PGTRACKD_TRACK_FILE_H
#define PGTRACKD_TRACK_FILE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trackd_config.h"
#include "ratelimit.h"

#define TRACK_FILE_DEFAULT_REMINDER 60.0
#define TRACK_FILE_RESTORE_BURST 5 /* restore warnings per reminder period */

struct track_file {
	struct ev_loop *loop;
	const char *track_name; /* for log lines; owned by the track */
	char path[CONF_STR_SIZE];
	char text[16];          /* "-254\n" */
	int value;
	bool has_value;
	int failed_errno;       /* 0 while the file holds our value */
	struct ratelimit restore_log; /* a few warnings per reminder period */
	bool dir_warned;        /* written into a directory that fails the checks */
	struct ratelimit dir_log; /* one warning about it per reminder period */
	uint64_t rewrites;      /* our value put back after something else changed the file */
	ev_timer check;
	ev_io changes;          /* inotify on the directory; fd -1 when not watching */
	bool watch_failed;      /* said once: only the check interval then */
	double last_restore;    /* monotime of the last rewrite after a change */
	ev_timer soon;          /* a change reported right after a restore: checked then */
};

void track_file_init(struct track_file *f, struct ev_loop *loop, const char *track_name,
		     const char *path, int64_t check_interval_ms);
void track_file_finish(struct track_file *f);
void track_file_set_check_interval(struct track_file *f, int64_t check_interval_ms);
/* How often a file that keeps being changed behind our back is warned about. */
void track_file_set_reminder(struct track_file *f, int64_t reminder_ms);

/* Writes value now; 0 or -errno (logged, and retried by the check timer). */
int track_file_write(struct track_file *f, int value);

/*
 * Writes value to path once, with the writer's checks (a directory that
 * fails them is written all the same, with the finding in why and 1
 * returned); 0, 1 or -errno with why.  For --write-stopped: no loop, no
 * retries.
 */
int track_file_write_once(const char *path, int value, char *why, size_t size);

/*
 * What the writer will think of path's directory, for the configuration
 * check: 0, or -errno with a phrase in why.  The writer follows no symlink
 * anywhere in the path; the check also refuses (-EPERM) a directory that
 * group or others may write to (sticky or not) or that belongs to neither
 * root nor our user.  -ENOENT (the directory does not exist yet) is
 * retried at run time.
 */
int track_file_check_path(const char *path, char *why, size_t size);

/* Whether two configured paths name the same track file (however spelled). */
bool track_file_same_path(const char *a, const char *b);

#endif
