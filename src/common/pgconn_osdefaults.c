/*
 * pgconn_osdefaults: the two facts libpq 15 takes from the password
 * database (NSS) on every connection, looked up once per process.
 *
 * Without a password and a passfile, libpq's connectOptions2 finds
 * ~/.pgpass through getpwuid(geteuid()) (it does not read $HOME), and
 * without a user it names the OS user through getpwuid as well: a blocking
 * lookup inside PQconnectStartParams on every connect and reconnect, the
 * one after a crash included, which an NSS module (LDAP, sssd) can stretch
 * to its timeout.  The answers do not change while the process runs; the
 * first connection looks them up and every later one gets them as
 * keywords, so libpq asks nothing.  Environment variables keep their
 * precedence: where PGPASSFILE, PGPASSWORD or PGUSER is set, libpq uses
 * it without a lookup and nothing is added.
 */
#include "pgconn_internal.h"

#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
	bool looked_up;
	bool found;
	char pgpass[4096];
	char user[256];
} os;

static void look_up(void)
{
	struct passwd pw, *found = NULL;
	char buf[16384];

	os.looked_up = true;
	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &found) != 0 || !found)
		return;
	/* libpq's default: the home directory, "/", PGPASSFILE (".pgpass") */
	if (snprintf(os.pgpass, sizeof(os.pgpass), "%s/.pgpass", pw.pw_dir) >= (int)sizeof(os.pgpass) ||
	    snprintf(os.user, sizeof(os.user), "%s", pw.pw_name) >= (int)sizeof(os.user))
		return;
	os.found = true;
}

static bool has_value(const char *const *keywords, const char *const *values, const char *key)
{
	for (size_t i = 0; keywords[i]; i++)
		if (strcmp(keywords[i], key) == 0 && values[i] && values[i][0])
			return true;
	return false;
}

static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && v[0];
}

size_t pgconn_os_defaults(const char *const *keywords, const char *const *values,
			  const char **kw, const char **val, size_t size)
{
	size_t n = 0;

	for (; keywords[n] && n + 1 < size; n++) {
		kw[n] = keywords[n];
		val[n] = values[n];
	}
	if (!os.looked_up)
		look_up();
	if (os.found && n + 1 < size && !has_value(keywords, values, "passfile") &&
	    !has_value(keywords, values, "password") && !env_set("PGPASSFILE") &&
	    !env_set("PGPASSWORD")) {
		kw[n] = "passfile";
		val[n++] = os.pgpass;
	}
	if (os.found && n + 1 < size && !has_value(keywords, values, "user") && !env_set("PGUSER")) {
		kw[n] = "user";
		val[n++] = os.user;
	}
	kw[n] = NULL;
	val[n] = NULL;
	return n;
}
