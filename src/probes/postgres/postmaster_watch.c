#include "postmaster_watch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "death_pipe.h"
#include "util.h"

static void stop_pipe(struct postmaster_watch *w)
{
	if (w->pipe_io.fd < 0)
		return;
	ev_io_stop(w->loop, &w->pipe_io);
	close(w->pipe_io.fd);
	ev_io_set(&w->pipe_io, -1, EV_READ);
}

static void exited_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct postmaster_watch *w = container_of(io, struct postmaster_watch, io);
	int pid = w->pid;

	(void)loop;
	(void)revents;
	postmaster_watch_stop(w);
	w->exited(w, pid, "exited");
}

static void pipe_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct postmaster_watch *w = container_of(io, struct postmaster_watch, pipe_io);
	int pid = w->pid;
	int hung_up = death_pipe_hung_up(io->fd);

	(void)loop;
	(void)revents;
	if (hung_up == 1) {
		postmaster_watch_stop(w);
		w->exited(w, pid, "is exiting (its death pipe hung up)");
		return;
	}
	/* Data, or a poll error: not the pipe it looked like; the pidfd stays. */
	stop_pipe(w);
	snprintf(w->pipe_why, sizeof(w->pipe_why), "a pipe that turned out not to be it (%s)",
		 hung_up < 0 ? strerror(-hung_up) : "it held data");
}

void postmaster_watch_init(struct postmaster_watch *w, struct ev_loop *loop, postmaster_exit_cb exited)
{
	*w = (struct postmaster_watch){ .loop = loop, .exited = exited };
	ev_io_init(&w->io, exited_cb, -1, EV_READ);
	ev_io_init(&w->pipe_io, pipe_cb, -1, EV_READ);
}

static void watch_death_pipe(struct postmaster_watch *w, int backend_pid)
{
	unsigned long inode = 0;
	int pm_fd = death_pipe_find(w->pid, backend_pid, &inode);
	int fd;

	if (pm_fd < 0) {
		snprintf(w->pipe_why, sizeof(w->pipe_why), "not found through /proc: %s", strerror(-pm_fd));
		return;
	}
	fd = death_pipe_take(w->io.fd, pm_fd, inode);
	if (fd < 0) {
		snprintf(w->pipe_why, sizeof(w->pipe_why), "pidfd_getfd: %s", strerror(-fd));
		return;
	}
	w->pipe_why[0] = '\0';
	ev_io_set(&w->pipe_io, fd, EV_READ);
	ev_io_start(w->loop, &w->pipe_io);
}

int postmaster_watch_start(struct postmaster_watch *w, int pid, int backend_pid)
{
#ifdef SYS_pidfd_open
	int fd;

	if (pid > 0 && pid == w->pid) {
		if (!postmaster_watch_has_pipe(w))
			watch_death_pipe(w, backend_pid);
		return 0;
	}
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
	watch_death_pipe(w, backend_pid);
	return 0;
#else
	(void)w;
	(void)pid;
	(void)backend_pid;
	return -ENOSYS;
#endif
}

void postmaster_watch_stop(struct postmaster_watch *w)
{
	if (!w->pid)
		return;
	stop_pipe(w);
	ev_io_stop(w->loop, &w->io);
	close(w->io.fd);
	ev_io_set(&w->io, -1, EV_READ);
	w->pid = 0;
}
