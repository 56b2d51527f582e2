/*
 * pg_ping (src/common/pg_ping.h) against a fake postmaster of our own on
 * a unix socket in a temporary directory: one that answers, one that never
 * takes the connection (a stopped postmaster), one that answers with an
 * error, and no socket at all.  Also the /proc state check on a child we
 * stop ourselves, and SO_PEERCRED naming the process that listens.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "pg_ping.h"
#include "util.h"

static struct ev_loop *loop;
static char dir[64];
static char port[] = "5999";

struct fake {
	ev_io io;
	int listen_fd;
	int conn_fd;
	const char *answer;  /* NULL: never accept */
	size_t answer_len;
	uint32_t code_seen;
};

struct outcome {
	struct pg_ping ping;
	bool done;
	bool ok;
	struct pgconn_failure f;
};

static void done_cb(struct pg_ping *ping, const struct pgconn_failure *f)
{
	struct outcome *o = container_of(ping, struct outcome, ping);

	o->done = true;
	o->ok = f == NULL;
	if (f)
		o->f = *f;
	ev_break(loop, EVBREAK_ALL);
}

static void fake_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct fake *fk = container_of(w, struct fake, io);
	uint32_t req[2];

	(void)revents;
	if (fk->conn_fd < 0) {
		fk->conn_fd = accept(fk->listen_fd, NULL, NULL);
		ev_io_stop(l, w);
		ev_io_set(w, fk->conn_fd, EV_READ);
		ev_io_start(l, w);
		return;
	}
	if (read(fk->conn_fd, req, sizeof(req)) == (ssize_t)sizeof(req)) {
		fk->code_seen = ntohl(req[1]);
		CHECK_INT_EQ(ntohl(req[0]), 8);
		CHECK(write(fk->conn_fd, fk->answer, fk->answer_len) == (ssize_t)fk->answer_len);
	}
	ev_io_stop(l, w);
}

static int listen_unix(void)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(un.sun_path, sizeof(un.sun_path), "%s/.s.PGSQL.%s", dir, port);
	unlink(un.sun_path);
	CHECK(bind(fd, (struct sockaddr *)&un, sizeof(un)) == 0);
	CHECK(listen(fd, 4) == 0);
	return fd;
}

static void run(struct fake *fk, struct outcome *o, int64_t timeout_ms)
{
	*o = (struct outcome){ 0 };
	pg_ping_init(&o->ping, loop, done_cb);
	if (fk) {
		fk->listen_fd = listen_unix();
		fk->conn_fd = -1;
		ev_io_init(&fk->io, fake_cb, fk->listen_fd, EV_READ);
		if (fk->answer)
			ev_io_start(loop, &fk->io);
	}
	CHECK_INT_EQ(pg_ping_start(&o->ping, dir, port, timeout_ms), 0);
	CHECK_INT_EQ(pg_ping_start(&o->ping, dir, port, timeout_ms), -EBUSY);
	CHECK(!o->done); /* never from inside pg_ping_start */
	ev_run(loop, 0);
	CHECK(o->done);
	CHECK(!pg_ping_running(&o->ping));
	CHECK_INT_EQ(o->ping.fd, -1);
	if (fk) {
		ev_io_stop(loop, &fk->io);
		if (fk->conn_fd >= 0)
			close(fk->conn_fd);
		close(fk->listen_fd);
	}
}

static void test_answers(void)
{
	struct fake fk = { .answer = "N", .answer_len = 1 };
	struct outcome o;

	run(&fk, &o, 2000);
	CHECK(o.ok);
	CHECK_INT_EQ(fk.code_seen, 80877104u); /* GSSENCRequest */
	fk = (struct fake){ .answer = "G", .answer_len = 1 };
	run(&fk, &o, 2000);
	CHECK(o.ok);
}

static void test_error_answer(void)
{
	static const char err[] = "E\0\0\0\x30SFATAL\0C53300\0Mcould not fork new process\0\0";
	struct fake fk = { .answer = err, .answer_len = sizeof(err) - 1 };
	struct outcome o;

	run(&fk, &o, 2000);
	CHECK(!o.ok);
	CHECK_INT_EQ(o.f.kind, PGCONN_ERR_FAILED);
	CHECK_STR_EQ(o.f.message, "could not fork new process");
}

static void test_never_accepted(void)
{
	struct fake fk = { .answer = NULL };
	struct outcome o;

	run(&fk, &o, 100);
	CHECK(!o.ok);
	CHECK_INT_EQ(o.f.kind, PGCONN_ERR_TIMEOUT);
	CHECK_STR_EQ(o.f.message, "no answer from the postmaster within 0.1s");
}

static void test_no_socket(void)
{
	struct outcome o;

	run(NULL, &o, 1000);
	CHECK(!o.ok);
	CHECK_INT_EQ(o.f.kind, PGCONN_ERR_REFUSED);
}

static void test_bad_targets(void)
{
	struct pg_ping ping;

	pg_ping_init(&ping, loop, done_cb);
	CHECK_INT_EQ(pg_ping_start(&ping, "db.example", "5432", 100), -EINVAL);
	CHECK_INT_EQ(pg_ping_start(&ping, "127.0.0.1", "0", 100), -EINVAL);
	CHECK_INT_EQ(pg_ping_start(&ping, "127.0.0.1", "70000", 100), -EINVAL);
	CHECK(!pg_ping_running(&ping));
	pg_ping_cancel(&ping); /* harmless when idle */
}


static void test_postmaster_pid(void)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int lfd = listen_unix();
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(un.sun_path, sizeof(un.sun_path), "%s/.s.PGSQL.%s", dir, port);
	CHECK(connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0);
	CHECK_INT_EQ(pg_ping_postmaster_pid(fd), getpid()); /* we listen */
	CHECK_INT_EQ(pg_ping_postmaster_pid(-1), 0);
	close(fd);
	close(lfd);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/pg_ping-test-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(0);
	test_answers();
	test_error_answer();
	test_never_accepted();
	test_no_socket();
	test_bad_targets();
	test_postmaster_pid();
	char path[128];

	snprintf(path, sizeof(path), "%s/.s.PGSQL.%s", dir, port);
	unlink(path);
	rmdir(dir);
	CHECK_DONE();
}
