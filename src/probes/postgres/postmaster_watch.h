/*
 * postmaster_watch: the postmaster's death as an event.  A killed
 * postmaster's backends notice its death only later (each on its own,
 * tens of milliseconds under load), so the session's end is not the
 * earliest sign of a crash.  Two are watched: its death pipe (death_pipe.h:
 * a hang-up when its descriptors close, the earliest there is; where
 * pgtrackd may take it) and its pidfd (Linux 5.3+), readable once its exit
 * is complete.  For a postmaster this process cannot see, nothing is
 * watched and the session's end tells.
 */
#ifndef PGTRACKD_POSTMASTER_WATCH_H
#define PGTRACKD_POSTMASTER_WATCH_H

#include <ev.h>
#include <stdbool.h>

struct postmaster_watch;
/* how: what told, "exited" or "is exiting (its death pipe hung up)" */
typedef void (*postmaster_exit_cb)(struct postmaster_watch *w, int pid, const char *how);

struct postmaster_watch {
	struct ev_loop *loop;
	ev_io io;           /* its pidfd */
	ev_io pipe_io;      /* a duplicate of its death pipe's read end; fd -1: none */
	int pid;            /* watched; 0: none */
	char pipe_why[96];  /* why its death pipe is not watched */
	postmaster_exit_cb exited;
};

void postmaster_watch_init(struct postmaster_watch *w, struct ev_loop *loop, postmaster_exit_cb exited);
/*
 * Watches pid (the one already watched stays), and its death pipe as the
 * session's backend backend_pid shows it, if it can (else pipe_why says
 * why).  0, or -errno (ENOSYS: no pidfds; ESRCH: gone already, which the
 * caller learns otherwise); on error nothing is watched.  exited is called
 * once, with the watch stopped.
 */
int postmaster_watch_start(struct postmaster_watch *w, int pid, int backend_pid);
void postmaster_watch_stop(struct postmaster_watch *w);

static inline bool postmaster_watch_has_pipe(const struct postmaster_watch *w)
{
	return w->pipe_io.fd >= 0;
}

#endif
