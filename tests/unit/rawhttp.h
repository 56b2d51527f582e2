/*
 * rawhttp: a raw-socket HTTP client for the unit tests, driven by the same
 * libev loop as the server under test, and a "probe" timer that records how
 * late the loop ran it.  Every wait is bounded in time.
 */
#ifndef PGTRACK_TEST_RAWHTTP_H
#define PGTRACK_TEST_RAWHTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monotime.h"
#include "util.h"

struct rawclient {
	struct ev_loop *loop;
	int fd;
	ev_io io;
	char buf[256 * 1024];
	size_t len;
	size_t total;		/* bytes received, kept or not */
	bool closed;		/* EOF or reset */
	double closed_at;	/* monotime */
};

/*
 * Connects to 127.0.0.1 (AF_INET) or ::1 (AF_INET6), with a receive buffer
 * of rcvbuf bytes unless 0; exits on failure.
 */
static inline void rawclient_open_rcvbuf(struct rawclient *c, struct ev_loop *loop, int family,
					 int port, int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t len;

	/* Not the buffer: clearing 256 KiB per client would itself delay the probe. */
	memset(&ss, 0, sizeof(ss));
	c->loop = loop;
	c->len = 0;
	c->total = 0;
	c->buf[0] = '\0';
	c->closed = false;
	c->closed_at = 0;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		s6->sin6_addr = in6addr_loopback;
		len = sizeof(*s6);
	}
	c->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Before connect: the window scale is agreed in the handshake. */
	if (c->fd >= 0 && rcvbuf)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* Loopback: the kernel completes the handshake from the backlog. */
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&ss, len) < 0) {
		perror("rawclient_open");
		exit(2);
	}
}

static inline void rawclient_open(struct rawclient *c, struct ev_loop *loop, int family,
				  int port)
{
	rawclient_open_rcvbuf(c, loop, family, port, 0);
}

/* Writes all of text (blocking: the tests send less than a socket buffer). */
static inline bool rawclient_send(struct rawclient *c, const char *text)
{
	size_t n = strlen(text), done = 0;

	while (done < n) {
		ssize_t w = send(c->fd, text + done, n - done, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		done += (size_t)w;
	}
	return true;
}

/* Keeps the first sizeof(buf) - 1 bytes; counts them all in total. */
static void rawclient_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rawclient *c = container_of(w, struct rawclient, io);
	char scratch[65536];
	size_t room = sizeof(c->buf) - 1 - c->len;
	ssize_t n = room ? recv(c->fd, c->buf + c->len, room, MSG_DONTWAIT)
			 : recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		if (room)
			c->len += (size_t)n;
		c->buf[c->len] = '\0';
		c->total += (size_t)n;
		return;
	}
	c->closed = true;
	c->closed_at = monotime_now();
	ev_io_stop(loop, w);
	ev_break(loop, EVBREAK_ONE);
}

static void rawclient_on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ONE);
}

/*
 * Runs the loop until the server closes the connection or `seconds` pass;
 * whether it closed.  Other watchers (the server, probes) run meanwhile.
 */
static inline bool rawclient_wait(struct rawclient *c, double seconds)
{
	ev_timer guard;
	double end = monotime_now() + seconds;

	ev_io_init(&c->io, rawclient_on_io, c->fd, EV_READ);
	ev_io_start(c->loop, &c->io);
	while (!c->closed && monotime_now() < end) {
		ev_timer_init(&guard, rawclient_on_guard, end - monotime_now(), 0.);
		ev_timer_start(c->loop, &guard);
		ev_run(c->loop, 0);
		ev_timer_stop(c->loop, &guard);
	}
	ev_io_stop(c->loop, &c->io);
	return c->closed;
}

static inline void rawclient_close(struct rawclient *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* The status code of the first response, or 0. */
static inline int rawclient_status(const struct rawclient *c)
{
	if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0)
		return 0;
	return atoi(c->buf + 9);
}

/* The first response's body (after the blank line), or NULL. */
static inline const char *rawclient_body(const struct rawclient *c)
{
	const char *end = strstr(c->buf, "\r\n\r\n");

	return end ? end + 4 : NULL;
}

/* The value of header name in the first response, copied to out; false if absent. */
static inline bool rawclient_header(const struct rawclient *c, const char *name, char *out,
				    size_t size)
{
	const char *end = strstr(c->buf, "\r\n\r\n");
	size_t n = strlen(name);

	for (const char *line = strstr(c->buf, "\r\n"); line && line < end;
	     line = strstr(line + 2, "\r\n")) {
		if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
			const char *v = line + 3 + n, *eol = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(eol - v), v);
			return true;
		}
	}
	return false;
}

/* One request on a fresh connection, answered and closed within `seconds`. */
static inline bool rawclient_exchange(struct rawclient *c, struct ev_loop *loop, int family,
				      int port, const char *request, double seconds)
{
	rawclient_open(c, loop, family, port);
	if (!rawclient_send(c, request)) {
		rawclient_close(c);
		return false;
	}
	rawclient_wait(c, seconds);
	rawclient_close(c);
	return c->closed;
}

/* A periodic timer standing for a probe: how late did the loop run it? */
struct ticker {
	ev_timer w;
	double interval;
	double last;
	double max_gap;
	int ticks;
};

static void ticker_on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ticker *t = container_of(w, struct ticker, w);
	double now = monotime_now();

	if (t->ticks > 0 && now - t->last > t->max_gap)
		t->max_gap = now - t->last;
	t->last = now;
	t->ticks++;
}

static inline void ticker_start(struct ticker *t, struct ev_loop *loop, double interval)
{
	memset(t, 0, sizeof(*t));
	t->interval = interval;
	ev_timer_init(&t->w, ticker_on_tick, interval, interval);
	ev_timer_start(loop, &t->w);
	/* The first gap is counted from here. */
	t->last = monotime_now();
	t->ticks = 1;
}

static inline void ticker_stop(struct ticker *t, struct ev_loop *loop)
{
	ev_timer_stop(loop, &t->w);
}

#endif
