#include "gate.h"

#include <stdio.h>
#include <string.h>

/*
 * Statement by statement:
 * - statement_timeout 0 for this query only: a role's own timeout would
 *   end the wait with an error, which pgbouncer logs and ignores, handing
 *   the standby's connection to clients (read-only errors).
 * - client_connection_check_interval: a backend asleep in pg_sleep does
 *   not otherwise notice that pgbouncer closed the connection (a fence,
 *   its server_connect_timeout); it checks the socket every 100 ms.
 * - the wait: pg_is_in_recovery() every millisecond, at most 30,000
 *   times (30 s or more), so that a gate whose pgbouncer hangs ends too.
 * - then, still in recovery: the backend ends itself before it could
 *   answer (pgbouncer counts a failed login and tries again later), so a
 *   gate never lets a standby through.
 * Functions are schema-qualified; at most 506 bytes (pgbouncer 1.18 sends
 * the query in a 512-byte packet and drops the connection otherwise).
 */
const char gate_query[] =
	"SET LOCAL statement_timeout=0;"
	"SET LOCAL client_connection_check_interval=100;"
	"WITH RECURSIVE g(n)AS(SELECT 0 UNION ALL SELECT n+1 FROM g WHERE n<30000 AND "
	"pg_catalog.pg_is_in_recovery()AND pg_catalog.pg_sleep(.001)IS NOT NULL)"
	"SELECT pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid())AND "
	"pg_catalog.pg_sleep(9)IS NULL FROM(SELECT pg_catalog.count(*)FROM g)c "
	"WHERE pg_catalog.pg_is_in_recovery()";

_Static_assert(sizeof(gate_query) - 1 <= 506, "pgbouncer 1.18 sends connect_query in 512 bytes");

static bool entry_fits(const struct dbfile_entry *e, const char *name, const char *host, int port,
		       char *why, size_t size)
{
	if (e->connect_query) {
		snprintf(why, size, "database \"%s\" (line %d) has a connect_query of its own", name,
			 e->line);
		return false;
	}
	if (!e->host || strcmp(e->host, host) != 0 || e->port != port) {
		snprintf(why, size, "database \"%s\" (line %d) goes to host=%s port=%d, [postgres] "
			 "is host=%s port=%d", name, e->line, dbfile_or_unset(e->host), e->port,
			 host[0] ? host : "(unset)", port);
		return false;
	}
	return true;
}

bool gate_fits(const struct dbfile *f, const char *host, int port, char *why, size_t size)
{
	if (size)
		why[0] = '\0';
	if (f->n_lines == 0) {
		snprintf(why, size, "the databases template has no database");
		return false;
	}
	if (!host[0]) {
		snprintf(why, size, "[postgres] sets no host");
		return false;
	}
	if (f->has_include) {
		/* Its databases would be served during the hold without a gate. */
		snprintf(why, size, "the databases template has an %%include line, whose databases "
			 "the gate cannot reach");
		return false;
	}
	for (int i = 0; i < f->n; i++) {
		if (!entry_fits(&f->entry[i], f->entry[i].name, host, port, why, size))
			return false;
	}
	if (f->has_fallback && !entry_fits(&f->fallback, "*", host, port, why, size))
		return false;
	return true;
}

size_t gate_applied_size(const struct dbfile *f, size_t len)
{
	/* Per line the prefix, the query and "'"; then room for the final NUL. */
	return len + (size_t)f->n_lines * (sizeof(GATE_SUFFIX_PREFIX) - 1 + sizeof(gate_query)) + 1;
}

size_t gate_apply(const struct dbfile *f, const char *text, size_t len, char *out)
{
	size_t from = 0, k = 0;

	for (int i = 0; i < f->n_lines; i++) {
		size_t end = f->value_end[i];

		memcpy(out + k, text + from, end - from);
		k += end - from;
		k += (size_t)sprintf(out + k, "%s%s'", GATE_SUFFIX_PREFIX, gate_query);
		from = end;
	}
	memcpy(out + k, text + from, len - from);
	k += len - from;
	return k;
}
