/* A session's failure as pgtrackd reports it: its text and its class. */
#include "probe_pg.h"

#include <stdio.h>

void pg_probe_format_failure(char *buf, size_t size, const char *what,
			   const struct pgconn_failure *f)
{
	if (f->sqlstate[0])
		snprintf(buf, size, "%s%s: %s (SQLSTATE %s)", what, pgconn_error_str(f->kind),
			 f->message, f->sqlstate);
	else
		snprintf(buf, size, "%s%s: %s", what, pgconn_error_str(f->kind), f->message);
}

enum pgtrackd_failure pg_probe_failure_class(enum pgconn_error kind)
{
	switch (kind) {
	case PGCONN_ERR_REFUSED:
		return PGTRACKD_FAILURE_REFUSED;
	case PGCONN_ERR_STARTING:
		return PGTRACKD_FAILURE_STARTING;
	case PGCONN_ERR_TOO_MANY:
		return PGTRACKD_FAILURE_TOO_MANY;
	case PGCONN_ERR_AUTH:
		return PGTRACKD_FAILURE_AUTH;
	case PGCONN_ERR_TIMEOUT:
		return PGTRACKD_FAILURE_TIMEOUT;
	case PGCONN_ERR_QUERY:
		return PGTRACKD_FAILURE_QUERY;
	case PGCONN_ERR_LOST:
		return PGTRACKD_FAILURE_LOST;
	case PGCONN_ERR_FAILED:
	case PGCONN_ERR_RESOLVE:
		break;
	}
	return PGTRACKD_FAILURE_OTHER;
}
