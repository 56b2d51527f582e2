/*
 * gate: the hold inside PostgreSQL.  Every line of the databases file gets
 * a connect_query that keeps a new server connection waiting, inside the
 * server, until the server is no longer in recovery.  pgbouncer 1.18 hands
 * a server connection to clients only after its connect_query has
 * answered, so while a MASTER's local PostgreSQL is still a standby the
 * databases can be served (not paused): clients wait in pgbouncer, the
 * server connection is already open (its backend started before the
 * promotion), and their queries run within a couple of milliseconds of
 * the end of recovery.  A paused database would not do: pgbouncer closes
 * a paused database's server connections at every turn of its loop.
 *
 * Pure code: no I/O, no loop, no log.
 */
#ifndef PGTRACK_NOTIFY_GATE_H
#define PGTRACK_NOTIFY_GATE_H

#include <stdbool.h>
#include <stddef.h>

#include "dbfile.h"

/* The connect_query (no single quote in it: written as '...' unescaped). */
extern const char gate_query[];

/* What gate_apply adds after each line's value. */
#define GATE_SUFFIX_PREFIX " connect_query='"

/*
 * Whether every [databases] line of f (the fallback "*" too) goes to host
 * and port, [postgres]'s server, and has no connect_query of its own: a
 * gate may only wait for the server whose promotion ends the hold.  If
 * not, why names the first line that does not ("database "x" goes to
 * host=... port=..., [postgres] is host=... port=...").
 */
bool gate_fits(const struct dbfile *f, const char *host, int port, char *why, size_t size);

/* Bytes gate_apply may write for f's text of len bytes, a final NUL included. */
size_t gate_applied_size(const struct dbfile *f, size_t len);

/* text with the gate appended to each [databases] line of f (parsed from text); returns the length. */
size_t gate_apply(const struct dbfile *f, const char *text, size_t len, char *out);

#endif
