#include "mainloop.h"

#include <signal.h>

struct ev_loop *mainloop_new(void)
{
	/* A reader that goes away (pgbouncer, a peer) must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	return ev_default_loop(EVFLAG_AUTO);
}

static void watch(struct ev_loop *loop, ev_signal *w, int signum, mainloop_signal_cb *cb,
		  void *data)
{
	ev_signal_init(w, cb, signum);
	w->data = data;
	ev_signal_start(loop, w);
}

void mainloop_watch_signals(struct ev_loop *loop, struct mainloop_signals *s,
			    mainloop_signal_cb *cb, void *data)
{
	watch(loop, &s->hup, SIGHUP, cb, data);
	watch(loop, &s->term, SIGTERM, cb, data);
	watch(loop, &s->intr, SIGINT, cb, data);
}
