#include "pg_answer.h"

#include <stdio.h>
#include <stdlib.h>

bool pg_answer_parse(const PGresult *res, struct pg_answer *a)
{
	int fields = PQnfields(res);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    (fields != 5 && fields != 6) || PQgetisnull(res, 0, 0))
		return false;
	a->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	a->timeline = PQgetisnull(res, 0, 1) ? 0 : strtol(PQgetvalue(res, 0, 1), NULL, 10);
	a->lag_bytes = PQgetisnull(res, 0, 2) ? -1 : strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	a->replay_paused = !PQgetisnull(res, 0, 3) && PQgetvalue(res, 0, 3)[0] == 't';
	a->lag_seconds = PQgetisnull(res, 0, 4) ? -1.0 : strtod(PQgetvalue(res, 0, 4), NULL);
	if (fields == 6)
		snprintf(a->system_identifier, sizeof(a->system_identifier), "%s",
			 PQgetisnull(res, 0, 5) ? "?" : PQgetvalue(res, 0, 5));
	a->valid = true;
	return true;
}
