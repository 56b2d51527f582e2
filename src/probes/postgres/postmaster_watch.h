/*
 * postmaster_watch: the postmaster's exit as an event.  A killed
 * postmaster's backends notice its death only later (each on its own,
 * tens of milliseconds under load), so the session's end is not the
 * earliest sign of a crash; a pidfd (Linux 5.3+) becomes readable the
 * moment the process exits.  Without pidfds, or for a postmaster this
 * process cannot see, nothing is watched and the session's end tells.
 */
#ifndef PGTRACKD_POSTMASTER_WATCH_H
#define PGTRACKD_POSTMASTER_WATCH_H

#include <ev.h>

struct postmaster_watch;
typedef void (*postmaster_exit_cb)(struct postmaster_watch *w, int pid);

struct postmaster_watch {
	struct ev_loop *loop;
	ev_io io;
	int pid; /* watched; 0: none */
	postmaster_exit_cb exited;
};

void postmaster_watch_init(struct postmaster_watch *w, struct ev_loop *loop, postmaster_exit_cb exited);
/*
 * Watches pid (the one already watched stays).  0, or -errno (ENOSYS:
 * no pidfds; ESRCH: gone already, which the caller learns otherwise);
 * on error nothing is watched.  exited is called once, with the watch
 * stopped.
 */
int postmaster_watch_start(struct postmaster_watch *w, int pid);
void postmaster_watch_stop(struct postmaster_watch *w);

#endif
