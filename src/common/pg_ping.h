/*
 * pg_ping: does the postmaster still accept and fork?  Asked without a
 * backend start, without authentication and without a line in the
 * server's log, on a libev loop, never blocking.
 *
 * A ping opens a socket of its own to one server (a unix socket
 * directory + port, or a numeric address + port: no name is ever
 * resolved), sends GSSENCRequest (8 bytes: length 8, code 80877104) and
 * waits for one byte.  The postmaster answers nothing itself: it accepts
 * the connection and forks a child, and that child answers 'G' (it would
 * negotiate GSSAPI encryption) or 'N' (it would not: a unix socket, or a
 * server built without GSSAPI) before any backend initialisation,
 * database state check or authentication.  The ping then closes; the
 * child finds EOF where it waits for the next packet and exits without
 * logging (PostgreSQL 12-15 ProcessStartupPacket, secure_open_gssapi).
 * GSSENCRequest, not SSLRequest: a server with ssl = on answers an
 * SSLRequest over TCP with 'S' and then logs "could not accept SSL
 * connection: EOF detected" for every client that closes instead of
 * starting TLS.
 *
 * An answer proves that the postmaster runs its accept loop and can fork:
 * a stopped (SIGSTOP) or wedged postmaster leaves the connection in the
 * listen queue and the ping times out.  It does not prove that the server
 * lets clients in: a server that is starting up, shutting down or has no
 * slot left answers the ping too (those are seen only after a startup
 * packet: the caller's full connection).  A first byte 'E' is an error
 * message, written by the postmaster itself when it cannot fork: a failure.
 *
 * The fd is the ping's own, its watchers are stopped before it is closed,
 * on every path; the outcome is delivered from the loop, after the ping
 * has been reset, so the callback may start the next one.
 */
#ifndef PGTRACK_PG_PING_H
#define PGTRACK_PG_PING_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgconn.h"

struct pg_ping;

/* f is NULL when the server answered; pgconn's failure kinds otherwise. */
typedef void (*pg_ping_done_fn)(struct pg_ping *ping, const struct pgconn_failure *f);

struct pg_ping {
	struct ev_loop *loop;
	pg_ping_done_fn done;
	ev_io io;
	ev_timer deadline;
	int fd;
	bool running;
	bool sent;
	bool failure_pending;          /* delivered by the deadline timer at 0 */
	struct pgconn_failure pending;
	double timeout;                /* seconds, for the message */
};

void pg_ping_init(struct pg_ping *ping, struct ev_loop *loop, pg_ping_done_fn done);

/*
 * Pings host (a socket directory "/...", or a numeric IPv4 or IPv6
 * address) on port.  The outcome arrives through done, from the loop,
 * within timeout_ms.  -EBUSY if a ping is running, -EINVAL for a host
 * that is neither (a name: the caller pings the address it connected to).
 */
int pg_ping_start(struct pg_ping *ping, const char *host, const char *port, int64_t timeout_ms);

/* Stops a running ping without a callback.  Safe at any time. */
void pg_ping_cancel(struct pg_ping *ping);

static inline bool pg_ping_running(const struct pg_ping *ping)
{
	return ping->running;
}

/*
 * The postmaster's PID as the kernel tells it, for a unix socket connected
 * to PostgreSQL (SO_PEERCRED of a connected unix stream socket gives the
 * credentials the listening socket was created with: the postmaster's),
 * translated into our PID namespace.  0 when fd is not a unix socket or
 * the postmaster is not visible from here (another PID namespace).
 */
int pg_ping_postmaster_pid(int fd);

/*
 * The postmaster's PID for a TCP connection to a PostgreSQL server on this
 * host: the parent of backend_pid (PQbackendPID), if that process is ours:
 * its process title ("postgres: ... 127.0.0.1(54321) idle") names the
 * local address and port of fd.  0 when it cannot tell: another host or
 * PID namespace, update_process_title off, hidepid.  procfs reads only.
 */
int pg_ping_postmaster_of_backend(int fd, int backend_pid);

/* The parent of process pid (/proc/PID/stat), 0 if unknown or init. */
int pg_ping_parent_pid(int pid);


#endif
