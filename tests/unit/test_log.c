/* log (src/common/log.h, log_sink.h): console and journal formats, levels, errno, facilities, stalled readers (syslog: test_log_syslog.c). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "testutil.h"

static char dir[256];

static void test_console_lines(void)
{
	struct capture cap;
	char *out;

	log_init("pgtrackd", true, LOG_DAEMON);
	log_set_verbose(false);

	capture_begin(&cap, dir);
	log_error("e %d", 1);
	log_warnx("w %s", "x");
	log_notice("n");
	log_info("i");
	log_debug("hidden debug");
	log_set_verbose(true);
	log_debug("shown debug");
	errno = ENOENT;
	log_warn("open %s", "/nope");
	out = capture_end(&cap);

	CHECK(regex_matches(out, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
			   "pgtrackd: error: e 1$"));
	CHECK(regex_matches(out, "^[0-9T:.-]{23} pgtrackd: warning: w x$"));
	CHECK(regex_matches(out, "^[0-9T:.-]{23} pgtrackd: notice: n$"));
	CHECK(regex_matches(out, "^[0-9T:.-]{23} pgtrackd: info: i$"));
	CHECK(regex_matches(out, "^[0-9T:.-]{23} pgtrackd: debug: shown debug$"));
	CHECK(regex_matches(out, "^[0-9T:.-]{23} pgtrackd: warning: open /nope: "
			   "No such file or directory$"));
	CHECK(strstr(out, "hidden debug") == NULL);
	CHECK_INT_EQ(count_substr(out, "\n"), 6);
	free(out);
	log_set_verbose(false);
}

static void test_errno_preserved(void)
{
	struct capture cap;
	char *out;
	int e1, e2, e3;

	capture_begin(&cap, dir);
	errno = EACCES;
	log_error("x");
	e1 = errno;
	errno = ETIMEDOUT;
	log_warn("y");
	e2 = errno;
	errno = EAGAIN;
	log_debug("z (not shown)");
	e3 = errno;
	out = capture_end(&cap);
	free(out);

	CHECK_INT_EQ(e1, EACCES);
	CHECK_INT_EQ(e2, ETIMEDOUT);
	CHECK_INT_EQ(e3, EAGAIN);

	/* Also when the write itself fails (EBADF): the caller's errno survives. */
	int saved = dup(STDERR_FILENO);

	fflush(stderr);
	close(STDERR_FILENO);
	errno = EACCES;
	log_error("to a closed stderr");
	e1 = errno;
	errno = ENOSPC;
	log_notice("to a closed stderr");
	e2 = errno;
	dup2(saved, STDERR_FILENO);
	close(saved);
	clearerr(stderr);
	CHECK_INT_EQ(e1, EACCES);
	CHECK_INT_EQ(e2, ENOSPC);

	/* The two lines are counted, and said so once stderr takes lines again. */
	capture_begin(&cap, dir);
	log_info("back");
	out = capture_end(&cap);
	CHECK(regex_matches(out, "^[0-9T:.-]{23} pgtrackd: warning: 2 log lines dropped: "
			   "standard error did not take them in time$"));
	CHECK(regex_matches(out, "^[0-9T:.-]{23} pgtrackd: info: back$"));
	CHECK_INT_EQ(count_substr(out, "\n"), 2);
	free(out);
}

static void test_long_message_truncated(void)
{
	struct capture cap;
	char *out, *big = malloc(5000);

	memset(big, 'a', 4999);
	big[4999] = '\0';
	capture_begin(&cap, dir);
	log_info("%s", big);
	out = capture_end(&cap);
	/* One line, cut at the 2047-byte message buffer, still terminated. */
	CHECK_INT_EQ(count_substr(out, "\n"), 1);
	CHECK(strstr(out, "pgtrackd: info: aaaa") != NULL);
	CHECK_INT_EQ(strlen(strstr(out, "info: ") + 6), 2047 + 1);
	free(out);
	free(big);
}

static void test_facilities(void)
{
	CHECK_INT_EQ(log_facility_from_name("daemon"), LOG_DAEMON);
	CHECK_INT_EQ(log_facility_from_name("user"), LOG_USER);
	CHECK_INT_EQ(log_facility_from_name("local0"), LOG_LOCAL0);
	CHECK_INT_EQ(log_facility_from_name("local7"), LOG_LOCAL7);
	CHECK_INT_EQ(log_facility_from_name("LOCAL3"), LOG_LOCAL3);
	CHECK_INT_EQ(log_facility_from_name("local8"), -1);
	CHECK_INT_EQ(log_facility_from_name("kern"), -1);
	CHECK_INT_EQ(log_facility_from_name(""), -1);
}

/* $JOURNAL_STREAM names the current stderr, as systemd sets it: log_init takes it for the journal. */
static void stderr_as_journal(void)
{
	struct stat st;
	char stream[64];

	CHECK(fstat(STDERR_FILENO, &st) == 0);
	snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", stream, 1);
	log_init("pgtrackd", false, LOG_DAEMON);
	CHECK(log_to_journal());
}

/* Under systemd, stderr is the journal: "<N>" priorities, no timestamp. */
static void test_journal_lines(void)
{
	struct capture cap;
	char *out;

	capture_begin(&cap, dir);
	stderr_as_journal();
	log_set_verbose(true);
	log_error("e %d", 1);
	log_warnx("w");
	log_notice("n");
	log_info("i");
	log_debug("d");
	errno = ENOENT;
	log_warn("open %s", "/nope");
	out = capture_end(&cap);
	CHECK(regex_matches(out, "^<3>error: e 1$"));
	CHECK(regex_matches(out, "^<4>warning: w$"));
	CHECK(regex_matches(out, "^<5>notice: n$"));
	CHECK(regex_matches(out, "^<6>info: i$"));
	CHECK(regex_matches(out, "^<7>debug: d$"));
	CHECK(regex_matches(out, "^<4>warning: open /nope: No such file or directory$"));
	free(out);

	/* Another stream (stderr redirected since systemd started us): the console format. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	capture_begin(&cap, dir);
	log_init("pgtrackd", true, LOG_DAEMON);
	CHECK(!log_to_journal());
	log_warnx("plain");
	out = capture_end(&cap);
	CHECK(regex_matches(out, "^[0-9T:.-]{23} pgtrackd: warning: plain$"));
	free(out);
	setenv("JOURNAL_STREAM", "garbage", 1);
	log_init("pgtrackd", true, LOG_DAEMON);
	CHECK(!log_to_journal());
	unsetenv("JOURNAL_STREAM");
	log_set_verbose(false);
}

/*
 * `lines` lines logged into a reader that takes nothing (rfd, its
 * non-blocking end, is not read meanwhile), then one more, "after the
 * stall", once it has read: what it got in all.  A blocking write would
 * hang here: the alarm fails the test loudly instead.
 */
static size_t log_past_a_stall(int lines, const char *what, int rfd, char *got, size_t size)
{
	size_t have;

	alarm(20);
	for (int i = 0; i < lines; i++)
		log_info("line %d of %s %0100d", i, what, 0);
	have = read_available(rfd, got, 0, size);
	log_info("after the stall");
	have = read_available(rfd, got, have, size);
	alarm(0);
	return have;
}

/*
 * A journald that takes nothing (its socket buffer full) must not stop the
 * logger: every call returns, a line goes whole or not at all, and the
 * dropped ones are counted and reported once the journal reads again.
 */
static void test_journal_stalled(void)
{
	enum { LINES = 5000 };
	int sv[2], saved = dup(STDERR_FILENO), sndbuf = 4096;
	static char got[1 << 22];
	unsigned long dropped = 0;
	size_t have = 0, lines;
	char *note;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
	CHECK(dup2(sv[0], STDERR_FILENO) == STDERR_FILENO);
	stderr_as_journal();

	have = log_past_a_stall(LINES, "a journal that reads nothing", sv[1], got, sizeof(got));

	CHECK(have > 0 && got[have - 1] == '\n');
	note = strstr(got, "<4>warning: ");
	CHECK(note && sscanf(note, "<4>warning: %lu log lines dropped", &dropped) == 1);
	CHECK(dropped > 0 && dropped < LINES);
	/* whole lines only, each once: what arrived and what was counted add up */
	lines = (size_t)count_substr(got, "\n");
	CHECK_INT_EQ((long)count_substr(got, "\n<6>info: line "), (long)(LINES - dropped - 1));
	CHECK(strncmp(got, "<6>info: line 0 ", 16) == 0);
	CHECK_INT_EQ((long)lines, (long)(LINES - dropped + 2));
	CHECK(regex_matches(got, "^<6>info: after the stall$"));

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(sv[0]);
	close(sv[1]);
	unsetenv("JOURNAL_STREAM");
	log_init("pgtrackd", true, LOG_DAEMON);
}

/*
 * stderr a pipe that nobody reads (a supervisor or a container runtime
 * that stalls): -l never waits for it either.  Whole lines or none, the
 * dropped ones counted, and the shared description left blocking.
 */
static void test_console_pipe_stalled(void)
{
	enum { LINES = 3000 };
	static char got[1 << 20];
	int p[2], saved = dup(STDERR_FILENO);
	unsigned long dropped = 0;
	size_t have = 0;
	char *note;

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	CHECK(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
	close(p[1]);
	log_init("pgtrackd", true, LOG_DAEMON);

	have = log_past_a_stall(LINES, "a pipe that nobody reads", p[0], got, sizeof(got));
	CHECK(!(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK));
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[0]);

	note = strstr(got, " pgtrackd: warning: ");
	CHECK(note && sscanf(note, " pgtrackd: warning: %lu log lines dropped: standard error "
				   "did not take them in time", &dropped) == 1);
	CHECK(dropped > 0 && dropped < LINES);
	CHECK_INT_EQ((long)count_substr(got, " pgtrackd: info: line "), (long)(LINES - dropped));
	CHECK_INT_EQ((long)count_substr(got, "\n"), (long)(LINES - dropped + 2));
	CHECK(regex_matches(got, "^[0-9T:.-]{23} pgtrackd: info: after the stall$"));
	CHECK(have > 0 && got[have - 1] == '\n');
}

/*
 * Where /proc is not mounted (a chroot, a bare container), our own
 * non-blocking opening of the pipe on stderr fails: the shared, blocking
 * pipe is then written only while it has room, and a reader that stalls
 * still costs lines, not the process.  In a child with a mount namespace
 * of its own and an empty /proc (needs root; skipped otherwise).
 */
static void test_console_pipe_stalled_without_proc(void)
{
	enum { LINES = 3000 };
	int p[2], status;
	pid_t child;

	/* the default 16 pages: poll() counts pages, not bytes (one page holds many lines) */
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0);
	child = fork();
	if (child == 0) {
		static char got[1 << 20];
		unsigned long dropped = 0;
		char *note;
		size_t have;

		if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", "/proc", "tmpfs", 0, "size=64k") < 0)
			_exit(77);
		if (open("/proc/self/fd/2", O_WRONLY) >= 0)
			_exit(3);
		dup2(p[1], STDERR_FILENO);
		close(p[1]);
		log_init("pgtrackd", true, LOG_DAEMON);
		have = log_past_a_stall(LINES, "a pipe that nobody reads, no /proc", p[0], got, sizeof(got));
		note = strstr(got, " pgtrackd: warning: ");
		if (fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK)
			_exit(4);
		if (!note || sscanf(note, " pgtrackd: warning: %lu log lines dropped", &dropped) != 1 ||
		    dropped == 0 || dropped >= LINES)
			_exit(5);
		if (count_substr(got, " pgtrackd: info: line ") != (int)(LINES - dropped) ||
		    !regex_matches(got, "^[0-9T:.-]{23} pgtrackd: info: after the stall$") || got[have - 1] != '\n')
		_exit(6);
		_exit(0);
	}
	close(p[0]);
	close(p[1]);
	CHECK(child > 0 && waitpid(child, &status, 0) == child);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("test_console_pipe_stalled_without_proc: skipped (no mount namespace: not root?)\n");
		return;
	}
	if (WIFSIGNALED(status))
		printf("the child was killed by signal %d (SIGALRM: a write waited)\n", WTERMSIG(status));
	CHECK(WIFEXITED(status));
	CHECK_INT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
}

/*
 * Before the event loop runs (log_set_wait), the reason a start fails must
 * arrive although the reader stalls for a while: the pipe is full, its
 * reader (a child) takes nothing for 300 ms, then everything.  The line
 * waits for it and arrives, after the count of the lines the full pipe cost
 * before the wait was turned on.  (Without the wait, test_console_pipe_stalled.)
 */
static void test_wait_before_the_loop(void)
{
	static char got[1 << 16];
	int p[2], saved = dup(STDERR_FILENO), status;
	unsigned long dropped = 0;
	char path[300], *note, *reason;
	pid_t reader;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/read-late", dir);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	reader = fork();
	if (reader == 0) {
		int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char buf[4096];
		ssize_t r;

		close(p[1]);
		usleep(300 * 1000);
		while ((r = read(p[0], buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)r) != r)
				_exit(1);
		_exit(0);
	}
	CHECK(reader > 0);
	close(p[0]);
	CHECK(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
	close(p[1]);
	log_init("pgtrackd", true, LOG_DAEMON);

	alarm(20);
	for (int i = 0; i < 100; i++)
		log_info("filler %d %0100d", i, 0);
	log_set_wait(10 * 1000);
	log_error("the reason the start failed");
	log_set_wait(0);
	alarm(0);

	dup2(saved, STDERR_FILENO);
	close(saved);
	log_init("pgtrackd", true, LOG_DAEMON);
	log_info("test_wait_before_the_loop: stderr restored"); /* closes our opening of the pipe */
	CHECK(waitpid(reader, &status, 0) == reader && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	f = fopen(path, "r");
	CHECK(f != NULL);
	n = f ? fread(got, 1, sizeof(got) - 1, f) : 0;
	got[n] = '\0';
	if (f)
		fclose(f);

	note = strstr(got, " pgtrackd: warning: ");
	reason = strstr(got, " pgtrackd: error: the reason the start failed\n");
	CHECK(note && sscanf(note, " pgtrackd: warning: %lu log lines dropped", &dropped) == 1);
	CHECK(dropped > 0 && dropped < 100);
	CHECK(reason != NULL && reason > note);
	CHECK_INT_EQ((long)count_substr(got, " pgtrackd: info: filler "), (long)(100 - dropped));
}

/*
 * stderr a pipe whose reader is gone (a supervisor's log reader that died):
 * a line logged before the event loop's set-up ignores SIGPIPE must not
 * kill the process either.  In a child, with SIGPIPE's default action.
 */
static void test_pipe_without_reader(void)
{
	int p[2], status;
	pid_t child;

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	child = fork();
	if (child == 0) {
		signal(SIGPIPE, SIG_DFL);
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		log_init("pgtrackd", true, LOG_DAEMON);
		log_set_wait(1000);
		log_error("nobody reads this");
		log_set_wait(0);
		log_error("nor this");
		_exit(7);
	}
	close(p[0]);
	close(p[1]);
	CHECK(child > 0 && waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	if (WIFSIGNALED(status))
		printf("the child was killed by signal %d\n", WTERMSIG(status));
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_console_lines();
	test_errno_preserved();
	test_long_message_truncated();
	test_facilities();
	test_journal_lines();
	test_journal_stalled();
	test_console_pipe_stalled();
	test_console_pipe_stalled_without_proc();
	test_wait_before_the_loop();
	test_pipe_without_reader();
	scratch_remove(dir);
	CHECK_DONE();
}
