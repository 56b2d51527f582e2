/*
 * pgconn_os_defaults (src/common/pgconn_osdefaults.c): libpq is handed the
 * passfile, user and TLS files it would otherwise look up in the password
 * database on every connection; explicit keywords and libpq's environment
 * variables keep their precedence.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pgconn_internal.h"

#define SIZE 16

/* what libpq reads instead of a lookup; PGPASSWORD and PGSSLCRLDIR too */
static const char *const ENV[] = { "PGPASSFILE", "PGPASSWORD", "PGUSER",  "PGSSLCERT", "PGSSLKEY",
				   "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR", "PGGSSENCMODE",
				   NULL };

static const char *kw[SIZE], *val[SIZE];
static const char *const k1[] = { "host", "port", NULL }, *const v1[] = { "/run/postgresql", "5432", NULL };
static struct passwd *pw;
static char pgpass[4200], sslcert[4200], sslkey[4200], sslrootcert[4200], sslcrl[4200];

/* the last value for key: libpq's, where a keyword appears twice */
static const char *lookup(const char *key)
{
	const char *v = NULL;

	for (int i = 0; kw[i]; i++)
		if (strcmp(kw[i], key) == 0)
			v = val[i];
	return v;
}

static void home_paths(const char *home)
{
	snprintf(pgpass, sizeof(pgpass), "%s/.pgpass", home);
	snprintf(sslcert, sizeof(sslcert), "%s/.postgresql/postgresql.crt", home);
	snprintf(sslkey, sizeof(sslkey), "%s/.postgresql/postgresql.key", home);
	snprintf(sslrootcert, sizeof(sslrootcert), "%s/.postgresql/root.crt", home);
	snprintf(sslcrl, sizeof(sslcrl), "%s/.postgresql/root.crl", home);
}

static size_t run(const char *const *keywords, const char *const *values)
{
	memset(kw, 0xff, sizeof(kw));
	return pgconn_os_defaults(keywords, values, kw, val, SIZE);
}

static void set_all_env(const char *value)
{
	for (const char *const *e = ENV; *e; e++)
		if (value)
			setenv(*e, value, 1);
		else
			unsetenv(*e);
}

/* the keywords first, in order, then libpq's defaults it would look up */
static void test_defaults_added(void)
{
	const char *none[] = { NULL };

	CHECK_INT_EQ(run(k1, v1), 9);
	CHECK_STR_EQ(kw[0], "host");
	CHECK_STR_EQ(val[0], "/run/postgresql");
	CHECK_STR_EQ(kw[1], "port");
	CHECK_STR_EQ(lookup("passfile"), pgpass);
	CHECK_STR_EQ(lookup("user"), pw->pw_name);
	CHECK_STR_EQ(lookup("sslcert"), sslcert);
	CHECK_STR_EQ(lookup("sslkey"), sslkey);
	CHECK_STR_EQ(lookup("sslrootcert"), sslrootcert);
	CHECK_STR_EQ(lookup("sslcrl"), sslcrl);
	CHECK_STR_EQ(lookup("gssencmode"), "disable");
	CHECK(kw[9] == NULL && val[9] == NULL);

	CHECK_INT_EQ(run(none, none), 7);
}

static void test_keywords_win(void)
{
	/* given: nothing added for them */
	{
		const char *k[] = { "user", "passfile", "sslrootcert", NULL },
			   *v[] = { "app", "/etc/pgpass", "/etc/ssl/ca.pem", NULL };

		CHECK_INT_EQ(run(k, v), 7);
		CHECK_STR_EQ(lookup("user"), "app");
		CHECK_STR_EQ(lookup("passfile"), "/etc/pgpass");
		CHECK_STR_EQ(lookup("sslrootcert"), "/etc/ssl/ca.pem");
		CHECK_STR_EQ(lookup("sslcert"), sslcert);
	}
	/* a password: libpq reads no passfile, so none is added */
	{
		const char *k[] = { "password", NULL }, *v[] = { "secret", NULL };

		CHECK_INT_EQ(run(k, v), 7);
		CHECK(lookup("passfile") == NULL);
		CHECK_STR_EQ(lookup("user"), pw->pw_name);
	}
	/* GSSAPI encryption asked for: kept */
	{
		const char *k[] = { "gssencmode", NULL }, *v[] = { "prefer", NULL };

		CHECK_INT_EQ(run(k, v), 7);
		CHECK_STR_EQ(lookup("gssencmode"), "prefer");
	}
	/* a CRL directory: libpq reads no default CRL file, so none is added */
	{
		const char *k[] = { "sslcrldir", NULL }, *v[] = { "/etc/ssl/crl", NULL };

		CHECK_INT_EQ(run(k, v), 7);
		CHECK(lookup("sslcrl") == NULL);
		CHECK_STR_EQ(lookup("sslkey"), sslkey);
	}
	/* an empty value counts as not given, as libpq treats it */
	{
		const char *k[] = { "user", NULL }, *v[] = { "", NULL };

		CHECK_INT_EQ(run(k, v), 8);
		CHECK_STR_EQ(lookup("passfile"), pgpass);
		CHECK_STR_EQ(lookup("user"), pw->pw_name);
	}
}

/* libpq's environment wins over the default: nothing added */
static void test_environment_wins(void)
{
	set_all_env("/tmp/from-env");
	CHECK_INT_EQ(run(k1, v1), 2);
	set_all_env(NULL);
	setenv("PGPASSWORD", "x", 1);
	CHECK_INT_EQ(run(k1, v1), 8);
	CHECK(lookup("passfile") == NULL);
	unsetenv("PGPASSWORD");
	setenv("PGGSSENCMODE", "prefer", 1);
	CHECK_INT_EQ(run(k1, v1), 8);
	CHECK(lookup("gssencmode") == NULL);
	unsetenv("PGGSSENCMODE");
	setenv("PGSSLCRLDIR", "/etc/ssl/crl", 1);
	CHECK_INT_EQ(run(k1, v1), 8);
	CHECK(lookup("sslcrl") == NULL);
	unsetenv("PGSSLCRLDIR");
}

/* the home directory as libpq 15 finds it: $HOME, else the password database's */
static void test_home(void)
{
	setenv("HOME", "/srv/elsewhere", 1);
	home_paths("/srv/elsewhere");
	CHECK_INT_EQ(run(k1, v1), 9);
	CHECK_STR_EQ(lookup("passfile"), pgpass);
	CHECK_STR_EQ(lookup("sslrootcert"), sslrootcert);
	CHECK_STR_EQ(lookup("user"), pw->pw_name);
	/* a ':' in the key's path would make libpq look for an OpenSSL engine */
	setenv("HOME", "/srv/a:b", 1);
	CHECK_INT_EQ(run(k1, v1), 8);
	CHECK(lookup("sslkey") == NULL);
	setenv("HOME", "", 1);
	home_paths(pw->pw_dir);
	CHECK_INT_EQ(run(k1, v1), 9);
	CHECK_STR_EQ(lookup("passfile"), pgpass);
	unsetenv("HOME");
	CHECK_INT_EQ(run(k1, v1), 9);
	CHECK_STR_EQ(lookup("sslcert"), sslcert);
}

/* never beyond the arrays: the terminator always fits */
static void test_bounds(void)
{
	const char *k[] = { "a", "b", "c", NULL }, *v[] = { "1", "2", "3", NULL };
	const char *skw[5], *sval[5];

	CHECK_INT_EQ(pgconn_os_defaults(k, v, skw, sval, 4), 3);
	CHECK(skw[3] == NULL);
	CHECK_INT_EQ(pgconn_os_defaults(k, v, skw, sval, 5), 4);
	CHECK(skw[4] == NULL);
}

int main(void)
{
	pw = getpwuid(geteuid());
	if (!pw) {
		printf("no password database entry for uid %d: nothing to test\n", (int)geteuid());
		return 77;
	}
	home_paths(pw->pw_dir);
	set_all_env(NULL);
	unsetenv("HOME");

	test_defaults_added();
	test_keywords_win();
	test_environment_wins();
	test_home();
	test_bounds();
	CHECK_DONE();
}
