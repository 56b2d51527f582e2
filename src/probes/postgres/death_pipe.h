/*
 * death_pipe: the postmaster's death as its own children see it.
 *
 * The postmaster keeps the only write end of a pipe whose read end every
 * child inherits (PostgreSQL's InitPostmasterDeathWatchHandle): that read
 * end reports a hang-up the moment the postmaster's descriptors close,
 * early in its exit, before its memory is torn down (which is when its
 * pidfd becomes readable) and before the backends, woken all at once, get
 * to end their sessions.  Measured on a 2-core VM after kill -9: hang-up
 * 2 ms, a session's end 7.5 ms, the pidfd 16 ms (medians; maxima 4, 16
 * and 34 ms).
 *
 * pgtrackd takes a duplicate of that read end with pidfd_getfd(2) (Linux
 * 5.6+; ptrace access to the postmaster: the server's own user, or root
 * with CAP_SYS_PTRACE).
 * A duplicate, not a reopening through /proc/PID/fd: a pipe reopened by
 * path reports no hang-up for writers that were there before it (FIFO
 * semantics).  The pipe is told from the postmaster's others by the
 * session's own backend: the one pipe that backend holds for reading only
 * and the postmaster holds for writing.  Nothing is ever read from it, and
 * its flags are left alone (they are the postmaster's too).
 */
#ifndef PGTRACKD_DEATH_PIPE_H
#define PGTRACKD_DEATH_PIPE_H

/*
 * The postmaster's descriptor for the read end of its death pipe, found
 * through /proc/pm_pid/fd and /proc/backend_pid/fd (backend_pid must be a
 * child of pm_pid); *inode is the pipe's.  -errno: EACCES/EPERM (not
 * permitted to look), ESRCH (no such process, or not its child), ENOENT
 * (no such pipe), ENOTUNIQ (more than one candidate).
 */
int death_pipe_find(int pm_pid, int backend_pid, unsigned long *inode);

/*
 * A duplicate (close-on-exec) of the postmaster's descriptor pm_fd, through
 * its pidfd, checked to be the pipe inode and to be quiet (no data, no
 * hang-up: the postmaster still lives); -errno otherwise (EPERM: no ptrace
 * access; ENOSYS: no pidfd_getfd; ESTALE: another file now; EPIPE: hung up
 * already; EPROTO: it holds data, so it is not the death pipe).
 */
int death_pipe_take(int pidfd, int pm_fd, unsigned long inode);

/* The pipe has hung up (every writer gone): 1, 0 if not, -errno. */
int death_pipe_hung_up(int fd);

#endif
