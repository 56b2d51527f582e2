/*
 * pg_postmaster: a PostgreSQL postmaster on this host, looked at without
 * a connection, a fork or a path lookup.
 *
 * Two files are opened once per postmaster and read with pread at every
 * look: /proc/PID/stat, for its run state (T or t: stopped by SIGSTOP, a
 * job-control signal or a tracer: a hang), and, where pgtrackd may look
 * into the postmaster's working directory (/proc/PID/cwd: its data
 * directory; root or the server's own user), the data directory's
 * postmaster.pid.  Its eighth line (LOCK_FILE_LINE_PM_STATUS, PostgreSQL
 * 10 and later) reads "starting", "ready   " or "standby ", and
 * "stopping" from the moment the postmaster takes a shutdown request,
 * smart, fast or immediate (postmaster.c, pmdie: AddToDataDirLockFile
 * rewrites the file in place, so an open descriptor sees it).  A smart
 * shutdown is otherwise seen only by a new connection (57P03): it waits
 * for the open sessions, pgtrackd's too.
 *
 * The pid file counts only if its first line is the PID we found: a
 * postmaster in another PID namespace writes its own number there.  It is
 * not even opened on a filesystem whose server can hang (NFS, FUSE, ...),
 * told from procfs first: the open's lookup could block the loop.  The
 * descriptors refer to that process, not to a number: once it has exited
 * the stat read fails (ESRCH), whatever process gets the PID next.
 */
#ifndef PGTRACK_PG_POSTMASTER_H
#define PGTRACK_PG_POSTMASTER_H

#include <stdbool.h>
#include <stddef.h>

enum pg_pm_status {
	PG_PM_UNKNOWN,  /* no readable pid file, or no status line (yet) */
	PG_PM_STARTING,
	PG_PM_READY,
	PG_PM_STANDBY,
	PG_PM_STOPPING,
};

struct pg_postmaster {
	int pid;         /* 0: none */
	int stat_fd;
	int pidfile_fd;  /* -1: not readable, see pidfile_why */
	char pidfile_why[96];
};

/* Nothing open; pg_postmaster_close is safe at once. */
void pg_postmaster_init(struct pg_postmaster *pm);

/*
 * Opens what there is to see of postmaster pid (closing what was open):
 * 0 once its /proc/PID/stat is open, whether or not its pid file could
 * be (pidfile_fd, pidfile_why); -errno otherwise, and nothing stays open.
 */
int pg_postmaster_open(struct pg_postmaster *pm, int pid);

void pg_postmaster_close(struct pg_postmaster *pm);

static inline bool pg_postmaster_known(const struct pg_postmaster *pm)
{
	return pm->pid > 0;
}

static inline bool pg_postmaster_has_pidfile(const struct pg_postmaster *pm)
{
	return pm->pidfile_fd >= 0;
}

/*
 * One look: *stopped from its state, *status from its pid file
 * (PG_PM_UNKNOWN without one).  -errno when the state cannot be read
 * (the process is gone).
 */
int pg_postmaster_look(const struct pg_postmaster *pm, bool *stopped, enum pg_pm_status *status);

/* The status line's words ("stopping", ...), for messages. */
const char *pg_pm_status_str(enum pg_pm_status s);

#endif
