#include "sync_policy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int sync_names_needed(const char *names)
{
	const char *s = names + strspn(names, " \t");
	char *end;
	long n;

	if (strncasecmp(s, "ANY", 3) == 0 && (s[3] == ' ' || s[3] == '\t'))
		s += 3;
	else if (strncasecmp(s, "FIRST", 5) == 0 && (s[5] == ' ' || s[5] == '\t'))
		s += 5;
	s += strspn(s, " \t");
	if (!isdigit((unsigned char)*s))
		return 1;
	n = strtol(s, &end, 10);
	end += strspn(end, " \t");
	if (*end != '(' || n < 1)
		return 1; /* a standby named by digits, or nonsense PostgreSQL will refuse */
	return n > SYNC_MAX_STANDBYS ? SYNC_MAX_STANDBYS : (int)n;
}

bool sync_names_valid(const char *names)
{
	if (!names[0])
		return false;
	for (const char *c = names; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("_ ,()*\"-.", *c))
			return false;
	return true;
}

int sync_caught_up(const struct sync_observation *o, int64_t catchup, int64_t relax_lsn)
{
	int n = 0;

	if (o->flush_lsn < 0)
		return 0;
	for (int i = 0; i < o->n_standbys; i++)
		if (o->standby_flush[i] >= o->flush_lsn - catchup && o->standby_flush[i] >= relax_lsn)
			n++;
	return n;
}

enum sync_action sync_decide(const struct sync_observation *o, const struct sync_context *c)
{
	bool ours = strcmp(o->current, c->names) == 0;

	/*
	 * A standby: what its promotion starts with.  Relaxed; or (follower)
	 * strict while enough other standbys are there to follow it, and
	 * alone relaxed, or its first commits would wait for standbys that do
	 * not exist.
	 */
	if (o->in_recovery) {
		if (!c->promotion_waits)
			return o->current[0] ? SYNC_RELAX : SYNC_KEEP;
		if (c->other_standbys < 0)
			return SYNC_KEEP; /* the peers have not all been heard yet */
		if (c->other_standbys >= c->needed)
			return ours ? SYNC_KEEP : SYNC_STRICT;
		return o->current[0] ? SYNC_RELAX : SYNC_KEEP;
	}
	/* A primary that lost: what it commits waits for a standby rather than diverges. */
	if (c->verdict == PGTRACKD_STATE_STALE || c->verdict == PGTRACKD_STATE_CONFLICT)
		return ours ? SYNC_KEEP : SYNC_STRICT;
	if (!o->current[0])
		return sync_caught_up(o, c->catchup, c->relax_lsn) >= c->needed ? SYNC_STRICT
									   : SYNC_KEEP;
	/* Ours or not (postgresql.conf's, an operator's), commits that wait are relaxed. */
	if (c->relax_after > 0 && c->waited >= c->relax_after &&
	    c->verdict == PGTRACKD_STATE_PRIMARY)
		return SYNC_RELAX;
	if (!ours && sync_caught_up(o, c->catchup, -1) >= c->needed)
		return SYNC_STRICT;
	return SYNC_KEEP;
}

static int parse_positions(const char *list, int64_t *out, int max)
{
	int n = 0;

	while (*list && n < max) {
		char *end;
		long long v = strtoll(list, &end, 10);

		if (end == list)
			break;
		out[n++] = v;
		list = *end == ',' ? end + 1 : end;
	}
	return n;
}

bool sync_parse(const PGresult *res, struct sync_observation *o)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) != 8 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1))
		return false;
	memset(o, 0, sizeof(*o));
	o->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	snprintf(o->current, sizeof(o->current), "%s", PQgetvalue(res, 0, 1));
	o->flush_lsn = PQgetisnull(res, 0, 2) ? -1 : strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	if (!PQgetisnull(res, 0, 3))
		o->n_standbys = parse_positions(PQgetvalue(res, 0, 3), o->standby_flush,
						SYNC_MAX_STANDBYS);
	o->n_walsenders = atoi(PQgetvalue(res, 0, 4));
	if (!PQgetisnull(res, 0, 5))
		snprintf(o->oldest_wait, sizeof(o->oldest_wait), "%s", PQgetvalue(res, 0, 5));
	o->n_waiting = atoi(PQgetvalue(res, 0, 6));
	o->sees_stats = PQgetvalue(res, 0, 7)[0] == 't';
	return true;
}
