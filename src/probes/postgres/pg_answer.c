#include "pg_answer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pg_probe_params(const struct pg_settings *s, const char *host, const char *hostaddr,
		     int port, struct pgconn_params *out)
{
	memset(out, 0, sizeof(*out));
	if (port)
		snprintf(out->port, sizeof(out->port), "%d", port);
	snprintf(out->options, sizeof(out->options), "-c statement_timeout=%" PRId64,
		 s->timeout_ms);
	pgconn_params_add(out, "host", host);
	pgconn_params_add(out, "hostaddr", hostaddr);
	pgconn_params_add(out, "port", out->port);
	pgconn_params_add(out, "dbname", s->dbname);
	pgconn_params_add(out, "user", s->user);
	pgconn_params_add(out, "passfile", s->passfile);
	pgconn_params_add(out, "sslmode", s->sslmode);
	pgconn_params_add(out, "application_name", s->application_name);
	pgconn_params_add(out, "options", out->options);
}

static int64_t lsn_of(const PGresult *res, int field)
{
	return PQgetisnull(res, 0, field) ? -1 : strtoll(PQgetvalue(res, 0, field), NULL, 10);
}

static void parse_receiver(const PGresult *res, int field, struct pg_answer *a)
{
	const char *status = PQgetisnull(res, 0, field) ? "" : PQgetvalue(res, 0, field);

	snprintf(a->receiver_status, sizeof(a->receiver_status), "%s", status);
	if (!status[0])
		a->receiver = PG_RECEIVER_NONE;
	else if (strcmp(status, "streaming") == 0)
		a->receiver = PG_RECEIVER_STREAMING;
	else if (strcmp(status, "?") == 0)
		a->receiver = PG_RECEIVER_HIDDEN;
	else
		a->receiver = PG_RECEIVER_OTHER;
}

bool pg_answer_parse(const PGresult *res, struct pg_answer *a)
{
	int fields = PQnfields(res);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    (fields != 8 && fields != 9) || PQgetisnull(res, 0, 0))
		return false;
	a->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	a->timeline = PQgetisnull(res, 0, 1) ? 0 : strtol(PQgetvalue(res, 0, 1), NULL, 10);
	a->lag_bytes = PQgetisnull(res, 0, 2) ? -1 : strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	a->replay_paused = !PQgetisnull(res, 0, 3) && PQgetvalue(res, 0, 3)[0] == 't';
	a->lag_seconds = PQgetisnull(res, 0, 4) ? -1.0 : strtod(PQgetvalue(res, 0, 4), NULL);
	a->lsn = lsn_of(res, 5);
	a->receive_lsn = lsn_of(res, 6);
	parse_receiver(res, 7, a);
	if (fields == 9)
		snprintf(a->system_identifier, sizeof(a->system_identifier), "%s",
			 PQgetisnull(res, 0, 8) ? "?" : PQgetvalue(res, 0, 8));
	a->valid = true;
	return true;
}
