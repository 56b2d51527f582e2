/*
 * mainloop: what both daemons do between reading their configuration and
 * running: ignore SIGPIPE, create the default event loop, and watch
 * SIGHUP, SIGTERM and SIGINT with one callback.
 */
#ifndef PGTRACK_MAINLOOP_H
#define PGTRACK_MAINLOOP_H

#include <ev.h>

struct mainloop_signals {
	ev_signal hup, term, intr;
};

typedef void mainloop_signal_cb(struct ev_loop *loop, ev_signal *w, int revents);

/* The default loop, SIGPIPE ignored; NULL if libev cannot create it. */
struct ev_loop *mainloop_new(void);

/* Starts the three watchers; each carries data in w->data. */
void mainloop_watch_signals(struct ev_loop *loop, struct mainloop_signals *s,
			    mainloop_signal_cb *cb, void *data);

#endif
