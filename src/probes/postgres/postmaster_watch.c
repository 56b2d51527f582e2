#include "postmaster_watch.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

static void exited_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct postmaster_watch *w = container_of(io, struct postmaster_watch, io);
	int pid = w->pid;

	(void)loop;
	(void)revents;
	postmaster_watch_stop(w);
	w->exited(w, pid);
}

void postmaster_watch_init(struct postmaster_watch *w, struct ev_loop *loop, postmaster_exit_cb exited)
{
	*w = (struct postmaster_watch){ .loop = loop, .exited = exited };
	ev_io_init(&w->io, exited_cb, -1, EV_READ);
}

int postmaster_watch_start(struct postmaster_watch *w, int pid)
{
#ifdef SYS_pidfd_open
	int fd;

	if (pid > 0 && pid == w->pid)
		return 0;
	postmaster_watch_stop(w);
	if (pid <= 0)
		return -ESRCH;
	/* Close-on-exec by itself; no permission is needed to wait for an exit. */
	fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (fd < 0)
		return -errno;
	w->pid = pid;
	ev_io_set(&w->io, fd, EV_READ);
	ev_io_start(w->loop, &w->io);
	return 0;
#else
	(void)w;
	(void)pid;
	return -ENOSYS;
#endif
}

void postmaster_watch_stop(struct postmaster_watch *w)
{
	if (!w->pid)
		return;
	ev_io_stop(w->loop, &w->io);
	close(w->io.fd);
	ev_io_set(&w->io, -1, EV_READ);
	w->pid = 0;
}
