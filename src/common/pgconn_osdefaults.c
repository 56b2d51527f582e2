/*
 * pgconn_osdefaults: the facts libpq 15 takes from the password database
 * (NSS) on every connection, looked up once per process.
 *
 * libpq 15 names the OS user through getpwuid(geteuid()) on every
 * connection that has no user, and finds the home directory ($HOME, or
 * getpwuid's when $HOME is unset or empty, as it is for a daemon started
 * without it) for ~/.pgpass when it has no password and no passfile, and
 * again on a connection that negotiates TLS (sslmode prefer, the default,
 * against a server with ssl on, as Debian's is) for the client certificate,
 * key, root certificate and CRL it is not given.  Each lookup in the
 * password database is a blocking call inside the connection's start, on
 * every connect and reconnect, the one after a crash included, which an
 * NSS module (LDAP, sssd) can stretch to its timeout.  The entry does not
 * change while the process runs: the first connection looks it up, and
 * every connection gets libpq's own defaults as keywords, so libpq asks
 * nothing.  Where a keyword or libpq's environment variable (PGUSER,
 * PGPASSFILE, PGPASSWORD, PGSSLCERT, ...) gives the value, nothing is
 * added.  Where the lookup fails, nothing is added that needs it and libpq
 * keeps its own behaviour.
 *
 * One default is libpq's no longer: gssencmode.  With libpq's "prefer",
 * every TCP connection first asks GSSAPI for credentials
 * (gss_acquire_cred: /etc/krb5.conf, the credential cache, a client
 * keytab), which with a KCM cache or a client keytab is a round trip to
 * sssd or to the KDC inside the event loop, for an encryption a health
 * check of its own server does not need.  pgtrackd and pgtrack-notify
 * connect with "disable" unless PGGSSENCMODE says otherwise.
 */
#include "pgconn_internal.h"

#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_SIZE 4096

static struct {
	bool looked_up;
	bool found;
	char user[256];
	char dir[PATH_SIZE];
} pw_entry;

static struct {
	char pgpass[PATH_SIZE];
	char sslcert[PATH_SIZE];
	char sslkey[PATH_SIZE];
	char sslrootcert[PATH_SIZE];
	char sslcrl[PATH_SIZE];
} files;

static void look_up(void)
{
	struct passwd pw, *found = NULL;
	char buf[16384];

	pw_entry.looked_up = true;
	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &found) != 0 || !found)
		return;
	if (snprintf(pw_entry.user, sizeof(pw_entry.user), "%s", pw.pw_name) >=
		    (int)sizeof(pw_entry.user) ||
	    snprintf(pw_entry.dir, sizeof(pw_entry.dir), "%s", pw.pw_dir) >= (int)sizeof(pw_entry.dir))
		return;
	pw_entry.found = true;
}

static bool home_file(char *buf, const char *home, const char *name)
{
	return snprintf(buf, PATH_SIZE, "%s/%s", home, name) < PATH_SIZE;
}

/* libpq's pqGetHomeDirectory: $HOME, else the password database's; then its default files */
static bool home_files(void)
{
	const char *home = getenv("HOME");

	if (!home || !home[0]) {
		if (!pw_entry.found)
			return false;
		home = pw_entry.dir;
	}
	return home_file(files.pgpass, home, ".pgpass") &&
	       home_file(files.sslcert, home, ".postgresql/postgresql.crt") &&
	       home_file(files.sslkey, home, ".postgresql/postgresql.key") &&
	       home_file(files.sslrootcert, home, ".postgresql/root.crt") &&
	       home_file(files.sslcrl, home, ".postgresql/root.crl");
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

/* key = value unless a keyword or libpq's environment variable env gives it */
static void add_default(const char *const *keywords, const char *const *values, const char **kw,
			const char **val, size_t size, size_t *n, const char *key, const char *env,
			const char *value)
{
	if (*n + 1 < size && !has_value(keywords, values, key) && !env_set(env)) {
		kw[*n] = key;
		val[(*n)++] = value;
	}
}

size_t pgconn_os_defaults(const char *const *keywords, const char *const *values,
			  const char **kw, const char **val, size_t size)
{
	size_t n = 0;

	for (; keywords[n] && n + 1 < size; n++) {
		kw[n] = keywords[n];
		val[n] = values[n];
	}
	if (!pw_entry.looked_up)
		look_up();
	if (home_files()) {
		/* a password means no passfile is read */
		if (!has_value(keywords, values, "password") && !env_set("PGPASSWORD"))
			add_default(keywords, values, kw, val, size, &n, "passfile", "PGPASSFILE",
				    files.pgpass);
		add_default(keywords, values, kw, val, size, &n, "sslcert", "PGSSLCERT", files.sslcert);
		/* libpq would take a given key with a ':' for an OpenSSL engine's */
		if (!strchr(files.sslkey, ':'))
			add_default(keywords, values, kw, val, size, &n, "sslkey", "PGSSLKEY",
				    files.sslkey);
		add_default(keywords, values, kw, val, size, &n, "sslrootcert", "PGSSLROOTCERT",
			    files.sslrootcert);
		/* libpq reads the default CRL file only when no CRL directory is given */
		if (!has_value(keywords, values, "sslcrldir") && !env_set("PGSSLCRLDIR"))
			add_default(keywords, values, kw, val, size, &n, "sslcrl", "PGSSLCRL",
				    files.sslcrl);
	}
	if (pw_entry.found)
		add_default(keywords, values, kw, val, size, &n, "user", "PGUSER", pw_entry.user);
	add_default(keywords, values, kw, val, size, &n, "gssencmode", "PGGSSENCMODE", "disable");
	kw[n] = NULL;
	val[n] = NULL;
	return n;
}
