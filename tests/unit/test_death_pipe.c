/*
 * death_pipe and postmaster_watch: a child plays the postmaster, with a
 * death pipe, a decoy pipe as the syslogger's and a child of its own that
 * plays a backend (the death pipe's read end only, the decoy's write end
 * as its stderr, a self-pipe of its own).
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "death_pipe.h"
#include "postmaster_watch.h"

struct family {
	pid_t postmaster, backend;
	int death_rd;  /* the death pipe's read end, in the postmaster */
};

static int death_w = -1;

static void close_death_pipe(int sig)
{
	(void)sig;
	close(death_w);
}

static void sleep_long(void)
{
	for (int i = 0; i < 300; i++)
		usleep(100000);
	_exit(0);
}

/*
 * The postmaster child; with_data, a byte waits in its death pipe (so it
 * cannot be the death pipe).  SIGUSR1 makes it close its write end and
 * live on.
 */
static struct family spawn_family(bool with_data)
{
	struct family f = { 0 };
	int report[2], death[2], decoy[2];
	pid_t pm;

	CHECK(pipe(report) == 0);
	pm = fork();
	if (pm == 0) {
		int self[2];
		pid_t be;

		if (pipe(death) < 0 || pipe(decoy) < 0 || fcntl(death[0], F_SETFL, O_NONBLOCK) < 0)
			_exit(1);
		death_w = death[1];
		signal(SIGUSR1, close_death_pipe);
		if (with_data && write(death[1], "x", 1) != 1)
			_exit(1);
		be = fork();
		if (be == 0) {
			close(death[1]);
			close(decoy[0]);
			if (dup2(decoy[1], 2) < 0 || pipe(self) < 0)
				_exit(1);
			close(decoy[1]);
			sleep_long();
		}
		if (write(report[1], &be, sizeof(be)) != sizeof(be) ||
		    write(report[1], &death[0], sizeof(int)) != sizeof(int))
			_exit(1);
		sleep_long();
	}
	f.postmaster = pm;
	CHECK(read(report[0], &f.backend, sizeof(f.backend)) == sizeof(f.backend));
	CHECK(read(report[0], &f.death_rd, sizeof(int)) == sizeof(int));
	close(report[0]);
	close(report[1]);
	usleep(50000); /* the backend has arranged its descriptors */
	return f;
}

static void end_family(struct family *f)
{
	kill(f->backend, SIGKILL);
	kill(f->postmaster, SIGKILL);
	waitpid(f->postmaster, NULL, 0);
	/* The backend is init's (or the subreaper's) child now; gone with SIGKILL. */
}

static int pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void test_found_taken_and_hung_up_at_the_kill(void)
{
	struct family f = spawn_family(false);
	unsigned long inode = 0;
	int pidfd = pidfd_of(f.postmaster);
	int fd, pm_fd = death_pipe_find(f.postmaster, f.backend, &inode);
	struct pollfd pfd;

	CHECK_INT_EQ(pm_fd, f.death_rd);
	CHECK(inode != 0);
	fd = death_pipe_take(pidfd, pm_fd, inode);
	CHECK(fd >= 0);
	CHECK_INT_EQ(death_pipe_hung_up(fd), 0);
	/* Another inode than the one found: not taken. */
	CHECK_INT_EQ(death_pipe_take(pidfd, pm_fd, inode + 1), -ESTALE);
	kill(f.postmaster, SIGKILL);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK_INT_EQ(poll(&pfd, 1, 3000), 1);
	CHECK_INT_EQ(death_pipe_hung_up(fd), 1);
	/* The backend still lives: its end of the pipe does not hold the hang-up back. */
	CHECK_INT_EQ(kill(f.backend, 0), 0);
	close(fd);
	close(pidfd);
	end_family(&f);
}

static void test_not_found(void)
{
	struct family f = spawn_family(false);
	unsigned long inode = 0;

	/* Not the postmaster's child: this process, or the postmaster itself. */
	CHECK_INT_EQ(death_pipe_find(f.postmaster, getpid(), &inode), -ESRCH);
	CHECK_INT_EQ(death_pipe_find(f.postmaster, f.postmaster, &inode), -ESRCH);
	CHECK_INT_EQ(death_pipe_find(0, f.backend, &inode), -ESRCH);
	end_family(&f);
}

static void test_data_in_it_is_not_the_death_pipe(void)
{
	struct family f = spawn_family(true);
	unsigned long inode = 0;
	int pidfd = pidfd_of(f.postmaster);
	int pm_fd = death_pipe_find(f.postmaster, f.backend, &inode);

	CHECK_INT_EQ(pm_fd, f.death_rd);
	CHECK_INT_EQ(death_pipe_take(pidfd, pm_fd, inode), -EPROTO);
	close(pidfd);
	end_family(&f);
}

static int exits;
static char exit_how[64];
static int exit_pid;

static void on_exit_seen(struct postmaster_watch *w, int pid, const char *how)
{
	exits++;
	exit_pid = pid;
	snprintf(exit_how, sizeof(exit_how), "%s", how);
	ev_break(w->loop, EVBREAK_ALL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until the watch tells, or `seconds`. */
static void run_loop(struct ev_loop *loop, double seconds)
{
	ev_timer guard;

	ev_timer_init(&guard, on_timeout, seconds, 0.0);
	ev_timer_start(loop, &guard);
	ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
}

struct watch_case {
	struct ev_loop *loop;
	struct family f;
	struct postmaster_watch w;
};

/* A family and a watch on its postmaster, the pipe told by its backend or (0) by none. */
static void watch_case_start(struct watch_case *c, bool by_backend)
{
	c->loop = ev_loop_new(EVFLAG_AUTO);
	c->f = spawn_family(false);
	exits = 0;
	postmaster_watch_init(&c->w, c->loop, on_exit_seen);
	CHECK_INT_EQ(postmaster_watch_start(&c->w, c->f.postmaster, by_backend ? c->f.backend : getpid()), 0);
	CHECK(postmaster_watch_has_pipe(&c->w) == by_backend);
}

static void watch_case_end(struct watch_case *c)
{
	postmaster_watch_stop(&c->w);
	end_family(&c->f);
	ev_loop_destroy(c->loop);
}

/* The postmaster closes its write end and lives on: only the pipe can tell. */
static void test_watch_tells_by_the_pipe(void)
{
	struct watch_case c;

	watch_case_start(&c, true);
	kill(c.f.postmaster, SIGUSR1);
	run_loop(c.loop, 3.0);
	CHECK_INT_EQ(exits, 1);
	CHECK_INT_EQ(exit_pid, c.f.postmaster);
	CHECK(strstr(exit_how, "death pipe") != NULL);
	CHECK_INT_EQ(c.w.pid, 0);
	CHECK(!postmaster_watch_has_pipe(&c.w));
	watch_case_end(&c);
}

/* Without a backend to tell the pipe by: the pidfd alone, which tells once, at the exit. */
static void test_watch_without_the_pipe_tells_by_the_exit(void)
{
	struct watch_case c;

	watch_case_start(&c, false);
	CHECK(strstr(c.w.pipe_why, "not found") != NULL);
	kill(c.f.postmaster, SIGKILL);
	run_loop(c.loop, 3.0);
	CHECK_INT_EQ(exits, 1);
	CHECK_INT_EQ(strcmp(exit_how, "exited"), 0);
	watch_case_end(&c);
}

/* Killed with both watched: told once, whichever comes first. */
static void test_watch_tells_once(void)
{
	struct watch_case c;

	watch_case_start(&c, true);
	kill(c.f.postmaster, SIGKILL);
	waitpid(c.f.postmaster, NULL, 0);
	run_loop(c.loop, 3.0);
	run_loop(c.loop, 0.3); /* nothing more comes: the guard timer ends it */
	CHECK_INT_EQ(exits, 1);
	watch_case_end(&c);
}

/*
 * Without pidfd_open and pidfd_getfd (valgrind 3.19 knows neither): the
 * pipe is still found through /proc, nothing is watched, and the caller
 * hears ENOSYS (the session's end then tells).
 */
static void test_without_pidfds_nothing_is_watched(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct family f = spawn_family(false);
	struct postmaster_watch w;
	unsigned long inode = 0;

	CHECK_INT_EQ(death_pipe_find(f.postmaster, f.backend, &inode), f.death_rd);
	postmaster_watch_init(&w, loop, on_exit_seen);
	CHECK_INT_EQ(postmaster_watch_start(&w, f.postmaster, f.backend), -ENOSYS);
	CHECK(!postmaster_watch_has_pipe(&w));
	CHECK_INT_EQ(w.pid, 0);
	postmaster_watch_stop(&w);
	end_family(&f);
	ev_loop_destroy(loop);
}

static bool have_pidfds(void)
{
	int fd = pidfd_of(getpid());

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int main(void)
{
	test_not_found();
	if (!have_pidfds()) {
		printf("no pidfd_open here (under valgrind?): only the fallback is tested\n");
		test_without_pidfds_nothing_is_watched();
		CHECK_DONE();
	}
	test_found_taken_and_hung_up_at_the_kill();
	test_data_in_it_is_not_the_death_pipe();
	test_watch_tells_by_the_pipe();
	test_watch_without_the_pipe_tells_by_the_exit();
	test_watch_tells_once();
	CHECK_DONE();
}
