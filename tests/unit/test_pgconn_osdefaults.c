/*
 * pgconn_os_defaults (src/common/pgconn_osdefaults.c): libpq is handed the
 * passfile and user it would otherwise look up in the password database on
 * every connection; explicit keywords and libpq's environment variables
 * keep their precedence.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pgconn_internal.h"

#define SIZE 16

static const char *kw[SIZE], *val[SIZE];

static const char *lookup(const char *key)
{
	for (int i = 0; kw[i]; i++)
		if (strcmp(kw[i], key) == 0)
			return val[i];
	return NULL;
}

static size_t run(const char *const *keywords, const char *const *values)
{
	memset(kw, 0xff, sizeof(kw));
	return pgconn_os_defaults(keywords, values, kw, val, SIZE);
}

int main(void)
{
	struct passwd *pw = getpwuid(geteuid());
	char pgpass[4200];
	const char *none[] = { NULL };
	const char *k1[] = { "host", "port", NULL }, *v1[] = { "/run/postgresql", "5432", NULL };

	if (!pw) {
		printf("no password database entry for uid %d: nothing to test\n", (int)geteuid());
		return 77;
	}
	snprintf(pgpass, sizeof(pgpass), "%s/.pgpass", pw->pw_dir);
	unsetenv("PGPASSFILE");
	unsetenv("PGPASSWORD");
	unsetenv("PGUSER");

	/* the keywords first, in order, then what libpq would look up */
	CHECK_INT_EQ(run(k1, v1), 4);
	CHECK_STR_EQ(kw[0], "host");
	CHECK_STR_EQ(val[0], "/run/postgresql");
	CHECK_STR_EQ(kw[1], "port");
	CHECK_STR_EQ(lookup("passfile"), pgpass);
	CHECK_STR_EQ(lookup("user"), pw->pw_name);
	CHECK(kw[4] == NULL && val[4] == NULL);

	CHECK_INT_EQ(run(none, none), 2);

	/* given: nothing added */
	{
		const char *k[] = { "user", "passfile", NULL }, *v[] = { "app", "/etc/pgpass", NULL };

		CHECK_INT_EQ(run(k, v), 2);
		CHECK_STR_EQ(lookup("user"), "app");
		CHECK_STR_EQ(lookup("passfile"), "/etc/pgpass");
	}
	/* a password: libpq reads no passfile, so none is added */
	{
		const char *k[] = { "password", NULL }, *v[] = { "secret", NULL };

		CHECK_INT_EQ(run(k, v), 2);
		CHECK(lookup("passfile") == NULL);
		CHECK_STR_EQ(lookup("user"), pw->pw_name);
	}
	/* an empty value counts as not given, as libpq treats it */
	{
		const char *k[] = { "user", NULL }, *v[] = { "", NULL };

		CHECK_INT_EQ(run(k, v), 3);
		CHECK_STR_EQ(val[1], pgpass);
		CHECK_STR_EQ(val[2], pw->pw_name);
	}
	/* libpq's environment wins over the default: nothing added */
	setenv("PGPASSFILE", "/tmp/other", 1);
	setenv("PGUSER", "envuser", 1);
	CHECK_INT_EQ(run(k1, v1), 2);
	unsetenv("PGPASSFILE");
	unsetenv("PGUSER");
	setenv("PGPASSWORD", "x", 1);
	CHECK_INT_EQ(run(k1, v1), 3);
	CHECK(lookup("passfile") == NULL);
	unsetenv("PGPASSWORD");

	/* never beyond the arrays: the terminator always fits */
	{
		const char *k[] = { "a", "b", "c", NULL }, *v[] = { "1", "2", "3", NULL };
		const char *skw[5], *sval[5];

		CHECK_INT_EQ(pgconn_os_defaults(k, v, skw, sval, 4), 3);
		CHECK(skw[3] == NULL);
		CHECK_INT_EQ(pgconn_os_defaults(k, v, skw, sval, 5), 4);
		CHECK(skw[4] == NULL);
	}
	CHECK_DONE();
}
