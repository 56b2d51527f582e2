/*
 * log_sink: log lines into a socket without ever waiting.
 *
 * The logger's outputs, the journal's stream on stderr and the syslog
 * socket, must not stop the event loop when their reader stalls (a
 * journald or rsyslogd restarting, a slow disk behind it): a line goes
 * whole or not at all, lines that found no room are counted, and a note
 * saying how many goes first once the socket takes lines again.  On a
 * stream the unsent tail of a line the socket took in part goes first next
 * time.  A sink with a path reconnects when its peer went away (the syslog
 * daemon restarted): one try per line, never waiting.  send() with
 * MSG_DONTWAIT leaves a shared descriptor (stderr, which a hook's child
 * process shares) blocking for the others.
 */
#ifndef PGTRACK_LOG_SINK_H
#define PGTRACK_LOG_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>
#include <time.h>

/* Writes into buf (size bytes) the line saying `dropped` lines were lost; returns its length. */
typedef size_t (*log_sink_note_fn)(char *buf, size_t size, unsigned long dropped);

struct log_sink {
	int fd;                 /* -1: not connected */
	bool stream;            /* a line may go in part (SOCK_STREAM, a pipe); else datagrams */
	bool room_first;        /* a blocking pipe: written only while poll() says it has room */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "": fd given, never reopened */
	char pending[4096];
	size_t pending_len;
	unsigned long dropped;
	log_sink_note_fn note;
};

/* A sink on fd, which the caller keeps open (stderr). */
void log_sink_init_fd(struct log_sink *sink, int fd, log_sink_note_fn note);

/*
 * Writes go to fd from now on; a line's tail left for the old one is lost.
 * room_first: fd is a blocking pipe (shared, so not to be made
 * non-blocking): a line goes only when poll() says the pipe has room,
 * which a line shorter than PIPE_BUF then takes without waiting (unless
 * another writer fills it in between).
 */
void log_sink_set_fd(struct log_sink *sink, int fd, bool room_first);

/*
 * A sink on the unix socket at path: a datagram socket, or a stream where
 * the peer takes only streams (as syslog(3) does).  Connects now; 0, or
 * -errno if not yet (each line tries again).
 */
int log_sink_init_path(struct log_sink *sink, const char *path, log_sink_note_fn note);

/* line[0..len) whole, or counted as dropped; never waits. */
void log_sink_write(struct log_sink *sink, const char *line, size_t len);

/*
 * Waits until the sink has room for a line, its pending tail flushed, or
 * until deadline (CLOCK_MONOTONIC), whichever comes first; returns at once
 * on a peer that went.  Only where nothing else waits on the caller: the
 * lines of a start that fails.
 */
void log_sink_wait_room(struct log_sink *sink, const struct timespec *deadline);

/* Closes a path sink's socket; the sink may be initialised again. */
void log_sink_finish(struct log_sink *sink);

#endif
