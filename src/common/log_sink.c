#include "log_sink.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void log_sink_init_fd(struct log_sink *sink, int fd, log_sink_note_fn note)
{
	sink->fd = fd;
	sink->stream = true;
	sink->room_first = false;
	sink->path[0] = '\0';
	sink->pending_len = 0;
	sink->dropped = 0;
	sink->note = note;
}

void log_sink_set_fd(struct log_sink *sink, int fd, bool room_first)
{
	sink->room_first = room_first;
	if (fd == sink->fd)
		return;
	sink->fd = fd;
	if (sink->pending_len) {
		sink->pending_len = 0;
		sink->dropped++;
	}
}

/* A datagram socket, or a stream where the peer listens for streams only. */
static int connect_path(struct log_sink *sink)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err = ENOENT;

	memcpy(sa.sun_path, sink->path, sizeof(sa.sun_path));
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			sink->fd = fd;
			sink->stream = types[i] == SOCK_STREAM;
			return 0;
		}
		err = errno;
		close(fd);
		if (err != EPROTOTYPE)
			break;
	}
	return -err;
}

int log_sink_init_path(struct log_sink *sink, const char *path, log_sink_note_fn note)
{
	log_sink_init_fd(sink, -1, note);
	if (strlen(path) >= sizeof(sink->path))
		return -ENAMETOOLONG;
	memcpy(sink->path, path, strlen(path) + 1);
	return connect_path(sink);
}

void log_sink_finish(struct log_sink *sink)
{
	if (sink->path[0] && sink->fd >= 0)
		close(sink->fd);
	sink->fd = -1;
	sink->pending_len = 0;
}

/*
 * Bytes of buf sent without waiting.  A descriptor other than a socket is
 * written: without waiting if it is non-blocking (log.c reopens a pipe on
 * stderr so) or room_first, else as it is (a terminal, a file).  *gone: the peer is not
 * there any more, as opposed to having no room now.
 */
static size_t send_some(struct log_sink *sink, const char *buf, size_t len, bool *gone)
{
	size_t sent = 0;

	*gone = false;
	while (sent < len) {
		struct pollfd pfd = { .fd = sink->fd, .events = POLLOUT };

		/* no room, and not a pipe without reader either (whose write fails at once) */
		if (sink->room_first && poll(&pfd, 1, 0) >= 0 && !(pfd.revents & (POLLOUT | POLLERR)))
			return sent;

		ssize_t n = send(sink->fd, buf + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(sink->fd, buf + sent, len - sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
			*gone = true;
		if (n <= 0 || !sink->stream)
			return n > 0 ? (size_t)n : sent;
		sent += (size_t)n;
	}
	return sent;
}

/* A new connection for a path sink whose peer went; a line cut on the old one is lost. */
static void reconnect(struct log_sink *sink)
{
	if (sink->fd >= 0)
		close(sink->fd);
	sink->fd = -1;
	if (sink->pending_len) {
		sink->pending_len = 0;
		sink->dropped++;
	}
	connect_path(sink);
}

/*
 * false: nothing of buf went; a part that did leaves the rest pending.  A
 * peer that went gets one new connection.  On a syslog stream each message
 * ends with a NUL byte, as syslog(3) sends it.
 */
static bool put(struct log_sink *sink, const char *buf, size_t len)
{
	char framed[sizeof(sink->pending)];
	const char *msg = buf;
	size_t msg_len = len, sent = 0;
	bool gone = false;

	if (len >= sizeof(framed))
		return false;
	for (int attempt = 0; attempt < 2 && sent == 0; attempt++) {
		if (attempt) {
			if (!gone || !sink->path[0])
				break;
			reconnect(sink);
		}
		if (sink->fd < 0)
			break;
		msg = buf;
		msg_len = len;
		if (sink->path[0] && sink->stream) {
			memcpy(framed, buf, len);
			framed[len] = '\0';
			msg = framed;
			msg_len = len + 1;
		}
		sent = send_some(sink, msg, msg_len, &gone);
	}
	if (sent == 0)
		return false;
	if (sent < msg_len) {
		memcpy(sink->pending, msg + sent, msg_len - sent);
		sink->pending_len = msg_len - sent;
	}
	return true;
}

/* true: nothing is pending any more (sent, or lost with a peer that went) */
static bool flush_pending(struct log_sink *sink)
{
	size_t sent;
	bool gone;

	if (!sink->pending_len)
		return true;
	sent = send_some(sink, sink->pending, sink->pending_len, &gone);
	sink->pending_len -= sent;
	memmove(sink->pending, sink->pending + sent, sink->pending_len);
	if (sink->pending_len && gone) {
		if (sink->path[0]) {
			reconnect(sink);
		} else {
			sink->pending_len = 0;
			sink->dropped++;
		}
	}
	return sink->pending_len == 0;
}

void log_sink_write(struct log_sink *sink, const char *line, size_t len)
{
	if (sink->fd < 0 && sink->path[0])
		connect_path(sink);  /* the peer was not there at the last line */
	if (len >= sizeof(sink->pending) || !flush_pending(sink)) {
		sink->dropped++;
		return;
	}
	if (sink->dropped) {
		char note[256];
		size_t n = sink->note(note, sizeof(note), sink->dropped);

		if (!put(sink, note, n)) {
			sink->dropped++;
			return;
		}
		sink->dropped = 0;
		if (sink->pending_len) {
			/* the note's tail waits: this line has no room behind it */
			sink->dropped = 1;
			return;
		}
	}
	if (!put(sink, line, len))
		sink->dropped++;
}

/* Milliseconds from now to deadline on CLOCK_MONOTONIC, rounded up; 0 once it has passed. */
static int ms_until(const struct timespec *deadline)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (deadline->tv_sec - now.tv_sec) * 1000000000LL + (deadline->tv_nsec - now.tv_nsec);
	return ns <= 0 ? 0 : (int)((ns + 999999) / 1000000);
}

void log_sink_wait_room(struct log_sink *sink, const struct timespec *deadline)
{
	if (sink->fd < 0 && sink->path[0])
		connect_path(sink);
	for (;;) {
		struct pollfd pfd = { .fd = sink->fd, .events = POLLOUT };
		int ms = ms_until(deadline);

		if (sink->fd < 0 || ms == 0)
			return;
		if (poll(&pfd, 1, ms) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
			return;
		if ((pfd.revents & POLLOUT) && flush_pending(sink))
			return;
	}
}
