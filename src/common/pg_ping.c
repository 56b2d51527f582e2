#include "pg_ping.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define GSSENC_REQUEST_CODE 80877104u /* (1234 << 16) | 5680 */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);

void pg_ping_init(struct pg_ping *ping, struct ev_loop *loop, pg_ping_done_fn done)
{
	*ping = (struct pg_ping){ .loop = loop, .done = done, .fd = -1 };
	ev_init(&ping->io, io_cb);
	ev_init(&ping->deadline, deadline_cb);
}

/* The watcher goes before the fd: nothing can see a reused number. */
void pg_ping_cancel(struct pg_ping *ping)
{
	ev_io_stop(ping->loop, &ping->io);
	ev_timer_stop(ping->loop, &ping->deadline);
	if (ping->fd >= 0)
		close(ping->fd);
	ping->fd = -1;
	ping->running = false;
	ping->sent = false;
	ping->failure_pending = false;
}

static void finish(struct pg_ping *ping, const struct pgconn_failure *f)
{
	struct pgconn_failure copy;

	if (f)
		copy = *f;
	pg_ping_cancel(ping);
	ping->done(ping, f ? &copy : NULL);
}

__attribute__((format(printf, 3, 4)))
static void fail(struct pg_ping *ping, enum pgconn_error kind, const char *fmt, ...)
{
	struct pgconn_failure f = { .kind = kind };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f.message, sizeof(f.message), fmt, ap);
	va_end(ap);
	finish(ping, &f);
}

/* From the loop, as every outcome is. */
__attribute__((format(printf, 3, 4)))
static void fail_later(struct pg_ping *ping, enum pgconn_error kind, const char *fmt, ...)
{
	va_list ap;

	ping->pending = (struct pgconn_failure){ .kind = kind };
	va_start(ap, fmt);
	vsnprintf(ping->pending.message, sizeof(ping->pending.message), fmt, ap);
	va_end(ap);
	ping->failure_pending = true;
	ev_io_stop(ping->loop, &ping->io);
	ev_timer_stop(ping->loop, &ping->deadline);
	ev_timer_set(&ping->deadline, 0.0, 0.0);
	ev_timer_start(ping->loop, &ping->deadline);
}

static enum pgconn_error kind_of_errno(int err)
{
	return err == ECONNREFUSED || err == ENOENT ? PGCONN_ERR_REFUSED : PGCONN_ERR_FAILED;
}

/* The server's address: a socket in a directory or the abstract namespace, or a numeric address. */
static int make_address(const char *host, const char *port, struct sockaddr_storage *ss,
			socklen_t *len)
{
	char *end;
	unsigned long n = strtoul(port, &end, 10);

	memset(ss, 0, sizeof(*ss));
	if (!port[0] || *end || n == 0 || n > 65535)
		return -EINVAL;
	if (host[0] == '/' || host[0] == '@') {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		int w = snprintf(un->sun_path, sizeof(un->sun_path), "%s/.s.PGSQL.%lu", host, n);

		if (w < 0 || (size_t)w >= sizeof(un->sun_path))
			return -ENAMETOOLONG;
		un->sun_family = AF_UNIX;
		*len = sizeof(*un);
		if (host[0] == '@') {
			/* Abstract: a leading NUL, and exactly the name's length. */
			un->sun_path[0] = '\0';
			*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)w);
		}
		return 0;
	}
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)n);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)n);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static void send_request(struct pg_ping *ping)
{
	uint32_t req[2] = { htonl(8), htonl(GSSENC_REQUEST_CODE) };
	ssize_t n = send(ping->fd, req, sizeof(req), MSG_NOSIGNAL);

	if (n == (ssize_t)sizeof(req)) {
		ping->sent = true;
		ev_io_stop(ping->loop, &ping->io);
		ev_io_set(&ping->io, ping->fd, EV_READ);
		ev_io_start(ping->loop, &ping->io);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return; /* still writable-watched */
	/* Eight bytes into a fresh socket go at once or not at all. */
	int err = n < 0 ? errno : 0;

	fail(ping, err ? kind_of_errno(err) : PGCONN_ERR_FAILED, "cannot send the request: %s",
	     err ? strerror(err) : "short write");
}

/* An ErrorResponse: its 'M' field, best effort. */
static void error_message(const unsigned char *buf, size_t n, char *out, size_t size)
{
	size_t i = 5;

	snprintf(out, size, "the server answered with an error");
	while (i < n && buf[i]) {
		unsigned char field = buf[i++];
		const unsigned char *s = buf + i;
		size_t len = strnlen((const char *)s, n - i);

		if (field == 'M') {
			snprintf(out, size, "%.*s", (int)len, (const char *)s);
			return;
		}
		i += len + 1;
	}
}

static void read_answer(struct pg_ping *ping)
{
	/* More than the one byte: the buffer is left empty, so the close is a FIN, not a reset. */
	unsigned char buf[512];
	ssize_t n = recv(ping->fd, buf, sizeof(buf), 0);
	char msg[256];

	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		int err = errno;

		fail(ping, err == ECONNRESET ? PGCONN_ERR_LOST : kind_of_errno(err), "no answer: %s",
		     strerror(err));
		return;
	}
	if (n == 0) {
		fail(ping, PGCONN_ERR_LOST, "%s", "the server closed the connection without an answer");
		return;
	}
	switch (buf[0]) {
	case 'G':
	case 'N':
	case 'S':
		finish(ping, NULL);
		return;
	case 'E':
		error_message(buf, (size_t)n, msg, sizeof(msg));
		fail(ping, PGCONN_ERR_FAILED, "%s", msg);
		return;
	default:
		snprintf(msg, sizeof(msg), "unexpected answer 0x%02x", buf[0]);
		fail(ping, PGCONN_ERR_FAILED, "%s", msg);
		return;
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pg_ping *ping = container_of(w, struct pg_ping, io);
	int err = 0;
	socklen_t len = sizeof(err);

	(void)loop;
	(void)revents;
	if (ping->sent) {
		read_answer(ping);
		return;
	}
	if (getsockopt(ping->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		fail(ping, kind_of_errno(err), "cannot connect: %s", strerror(err));
		return;
	}
	send_request(ping);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pg_ping *ping = container_of(w, struct pg_ping, deadline);
	struct pgconn_failure f;

	(void)loop;
	(void)revents;
	if (ping->failure_pending) {
		f = ping->pending;
		finish(ping, &f);
		return;
	}
	if (ping->sent)
		fail(ping, PGCONN_ERR_TIMEOUT, "no answer from the postmaster within %.1fs",
		     ping->timeout);
	else
		fail(ping, PGCONN_ERR_TIMEOUT, "the postmaster did not take the connection within "
		     "%.1fs", ping->timeout);
}

int pg_ping_start(struct pg_ping *ping, const char *host, const char *port, int64_t timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int r;

	if (ping->running)
		return -EBUSY;
	r = make_address(host, port, &ss, &len);
	if (r < 0)
		return r;
	ping->running = true;
	ping->sent = false;
	ping->timeout = (double)timeout_ms / 1000.0;
	ev_timer_set(&ping->deadline, ping->timeout, 0.0);
	ev_timer_start(ping->loop, &ping->deadline);
	ping->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ping->fd < 0) {
		int err = errno;

		fail_later(ping, PGCONN_ERR_FAILED, "cannot create a socket: %s", strerror(err));
		return 0;
	}
	if (connect(ping->fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		int err = errno;

		/* EAGAIN on a unix socket: its listen queue is full, nobody takes from it. */
		if (err == EAGAIN)
			fail_later(ping, PGCONN_ERR_TIMEOUT,
				   "cannot connect: %s (the listen queue is full)", strerror(err));
		else
			fail_later(ping, kind_of_errno(err), "cannot connect: %s", strerror(err));
		return 0;
	}
	/* Connected or in progress: writable means done either way (SO_ERROR tells). */
	ev_io_set(&ping->io, ping->fd, EV_WRITE);
	ev_io_start(ping->loop, &ping->io);
	return 0;
}

int pg_ping_postmaster_pid(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_UNIX)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || clen != sizeof(cred))
		return 0;
	return cred.pid > 0 ? (int)cred.pid : 0;
}

/* Reads /proc/PID/NAME into buf (NUL-terminated, NULs inside made spaces); its length or -errno. */
static ssize_t read_proc(int pid, const char *name, char *buf, size_t size)
{
	char path[48];
	ssize_t n;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return n;
}

/* "PID (COMM) S PPID ...": the parent's PID, or 0. */
int pg_ping_parent_pid(int pid)
{
	char buf[512];
	const char *p;
	int ppid = 0;

	if (read_proc(pid, "stat", buf, sizeof(buf)) < 0)
		return 0;
	p = strrchr(buf, ')'); /* COMM may hold anything, ')' included */
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid > 1 ? ppid : 0;
}

int pg_ping_postmaster_of_backend(int fd, int backend_pid)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN + 16], title[1024];
	int port;

	if (fd < 0 || backend_pid <= 1 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	} else {
		return 0;
	}
	/* The backend's title ends its client with "ADDRESS(PORT)", the client's side of fd. */
	snprintf(want, sizeof(want), " %s(%d) ", host, port);
	if (read_proc(backend_pid, "cmdline", title, sizeof(title) - 1) <= 0)
		return 0;
	strcat(title, " ");
	if (!strstr(title, want))
		return 0;
	return pg_ping_parent_pid(backend_pid);
}
