#include "pgconn_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void pgconn_first_line(char *dst, size_t size, const char *src)
{
	size_t n = strcspn(src, "\n");

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool is_sqlstate_at(const char *s)
{
	for (int i = 0; i < 5; i++)
		if (!isdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]))
			return false;
	return s[5] == ':';
}

static enum pgconn_error kind_of_sqlstate(const char *sqlstate)
{
	if (strcmp(sqlstate, "57P03") == 0)
		return PGCONN_ERR_STARTING;
	if (strcmp(sqlstate, "53300") == 0 || strcmp(sqlstate, "53400") == 0)
		return PGCONN_ERR_TOO_MANY;
	if (strcmp(sqlstate, "28P01") == 0 || strcmp(sqlstate, "28000") == 0)
		return PGCONN_ERR_AUTH;
	return PGCONN_ERR_FAILED;
}

void pgconn_classify(const char *message, struct pgconn_failure *f)
{
	const char *server = NULL;

	f->sqlstate[0] = '\0';
	/* With PQERRORS_VERBOSE a server error reads "SEVERITY:  XXXXX: text". */
	for (const char *p = strstr(message, ":  "); p; p = strstr(p + 1, ":  ")) {
		if (is_sqlstate_at(p + 3)) {
			memcpy(f->sqlstate, p + 3, 5);
			f->sqlstate[5] = '\0';
			server = p + 9;
			while (*server == ' ')
				server++;
			break;
		}
	}
	if (f->sqlstate[0]) {
		f->kind = kind_of_sqlstate(f->sqlstate);
		pgconn_first_line(f->message, sizeof(f->message), server);
		return;
	}
	if (strstr(message, "Connection refused") || strstr(message, "No such file or directory"))
		f->kind = PGCONN_ERR_REFUSED;
	else if (strstr(message, "no password supplied") || strstr(message, "password authentication"))
		f->kind = PGCONN_ERR_AUTH;
	else
		f->kind = PGCONN_ERR_FAILED;
	pgconn_first_line(f->message, sizeof(f->message), message);
}

const char *pgconn_error_str(enum pgconn_error kind)
{
	switch (kind) {
	case PGCONN_ERR_REFUSED:
		return "connection refused";
	case PGCONN_ERR_STARTING:
		return "server starting up or shutting down";
	case PGCONN_ERR_TOO_MANY:
		return "too many connections";
	case PGCONN_ERR_AUTH:
		return "authentication failed";
	case PGCONN_ERR_TIMEOUT:
		return "timed out";
	case PGCONN_ERR_QUERY:
		return "query failed";
	case PGCONN_ERR_LOST:
		return "connection lost";
	case PGCONN_ERR_RESOLVE:
		return "name resolution failed";
	case PGCONN_ERR_FAILED:
		break;
	}
	return "connection failed";
}

/* Appends "; what" to a failure message, as much as fits. */
