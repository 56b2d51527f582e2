/*
 * dbfile (src/notify/dbfile.h): a databases file read as pgbouncer 1.18
 * reads it, compared with what SHOW DATABASES shows.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbfile.h"

#define STALE "pgtrack_notify_fenced"

static bool matches(const char *text, const struct dbfile_row *rows, int n, char *why,
		    size_t size)
{
	struct dbfile f;
	bool ok;

	CHECK_INT_EQ(dbfile_parse(&f, text, strlen(text)), 0);
	ok = dbfile_matches(&f, rows, n, STALE, why, size);
	dbfile_finish(&f);
	return ok;
}

static void parse(void)
{
	struct dbfile f;
	const char *text =
		"; comment\n"
		"[databases]\n"
		"  # another\n"
		"appdb = host=127.0.0.1 port=5433 dbname=app pool_size=7\n"
		"sock=dbname=x\r\n"
		"quoted = host='/run/post''gres' dbname='a b'\n"
		"tabbed\t=\thost=h\tport=1 \t \n"
		"* = host=10.0.0.1 port=6000\n"
		"%include /etc/other.ini\n"
		"appdb = host=127.0.0.2\n"
		"[users]\n"
		"alice = pool_mode=session\n"
		"[databases]\n"
		"last = port=abc\n";

	CHECK_INT_EQ(dbfile_parse(&f, text, strlen(text)), 0);
	CHECK_INT_EQ(f.n, 5);
	CHECK_INT_EQ(f.bad_line, 0);
	/* defined again: the last line wins */
	CHECK_STR_EQ(f.entry[0].name, "appdb");
	CHECK_STR_EQ(f.entry[0].host, "127.0.0.2");
	CHECK_INT_EQ(f.entry[0].port, 5432);
	CHECK(f.entry[0].dbname == NULL);
	CHECK_INT_EQ(f.entry[0].line, 10);
	CHECK_STR_EQ(f.entry[1].name, "sock");
	CHECK(f.entry[1].host == NULL);
	CHECK_STR_EQ(f.entry[1].dbname, "x");
	CHECK_INT_EQ(f.entry[1].line, 5);
	CHECK_STR_EQ(f.entry[2].host, "/run/post'gres");
	CHECK_STR_EQ(f.entry[2].dbname, "a b");
	/* only spaces separate pairs: the tab is part of the value */
	CHECK_STR_EQ(f.entry[3].name, "tabbed");
	CHECK_STR_EQ(f.entry[3].host, "h\tport=1");
	CHECK_INT_EQ(f.entry[3].port, 5432);
	CHECK(f.entry[3].bad == NULL);
	CHECK_STR_EQ(f.entry[4].name, "last");
	CHECK(f.entry[4].bad != NULL);
	CHECK_INT_EQ(f.entry[4].line, 14);
	CHECK(f.has_fallback);
	CHECK_STR_EQ(f.fallback.host, "10.0.0.1");
	CHECK_INT_EQ(f.fallback.port, 6000);
	CHECK(f.fallback.dbname == NULL);
	dbfile_finish(&f);
	dbfile_finish(&f); /* an empty one again */

	/* lines before any header count as [databases]; broken lines stop the load */
	text = "a = host=x\nb c = host=y\nd = host=z\n";
	CHECK_INT_EQ(dbfile_parse(&f, text, strlen(text)), 0);
	CHECK_INT_EQ(f.n, 1);
	CHECK_INT_EQ(f.bad_line, 2);
	dbfile_finish(&f);
	text = "[databases\na = host=x\n";
	CHECK_INT_EQ(dbfile_parse(&f, text, strlen(text)), 0);
	CHECK_INT_EQ(f.bad_line, 1);
	dbfile_finish(&f);
	/* what pgbouncer refuses in a connection string */
	text = "a = host=\nb = host='x\nc = port=0\npgbouncer = host=x\nd = host=x  dbname=y\n"
	       "e = dbname=one dbname=two\n";
	CHECK_INT_EQ(dbfile_parse(&f, text, strlen(text)), 0);
	CHECK_INT_EQ(f.n, 6);
	for (int i = 0; i < 4; i++)
		CHECK(f.entry[i].bad != NULL);
	CHECK(f.entry[4].bad == NULL);
	CHECK_STR_EQ(f.entry[4].dbname, "y");
	CHECK_STR_EQ(f.entry[5].dbname, "two");
	dbfile_finish(&f);
	/* empty, and a NUL byte ends the text as it ends pgbouncer's */
	CHECK_INT_EQ(dbfile_parse(&f, "", 0), 0);
	CHECK_INT_EQ(f.n, 0);
	dbfile_finish(&f);
	CHECK_INT_EQ(dbfile_parse(&f, "a = host=x\n\0b = host=y\n", 23), 0);
	CHECK_INT_EQ(f.n, 1);
	dbfile_finish(&f);
}

static void compare(void)
{
	char why[512];
	const char *file = "[databases]\nappdb = host=127.0.0.1 port=5433 dbname=app\n"
			   "local = dbname=postgres\n";
	struct dbfile_row rows[] = {
		{ "pgbouncer", NULL, "6432", "pgbouncer" },
		{ "appdb", "127.0.0.1", "5433", "app" },
		{ "local", NULL, "5432", "postgres" },
		{ "other", "10.1.1.1", "5432", "other" }, /* from pgbouncer.ini, say */
	};

	CHECK(matches(file, rows, 4, why, sizeof(why)));
	CHECK_STR_EQ(why, "");

	rows[1].database = "postgres";
	CHECK(!matches(file, rows, 4, why, sizeof(why)));
	CHECK_STR_EQ(why, "database \"appdb\" has host=127.0.0.1 port=5433 dbname=postgres, "
			  "the file says host=127.0.0.1 port=5433 dbname=app");
	rows[1].database = "app";
	rows[1].port = "5432";
	CHECK(!matches(file, rows, 4, why, sizeof(why)));
	rows[1].port = "5433";
	/* host unset (a unix socket) is not host="" nor a socket directory */
	rows[2].host = "/tmp";
	CHECK(!matches(file, rows, 4, why, sizeof(why)));
	CHECK_STR_EQ(why, "database \"local\" has host=/tmp port=5432 dbname=postgres, "
			  "the file says host=(unset) port=5432 dbname=postgres");
	rows[2].host = NULL;
	CHECK(!matches(file, rows + 2, 2, why, sizeof(why)));
	CHECK_STR_EQ(why, "database \"appdb\" is missing, the file says host=127.0.0.1 port=5433 "
			  "dbname=app");
	/* dbname defaults to the name, port to 5432 */
	CHECK(matches("other = host=10.1.1.1", rows, 4, why, sizeof(why)));
	CHECK(!matches("other = host=10.1.1.1 port=5433", rows, 4, why, sizeof(why)));
	/* a line pgbouncer refuses never matches: it kept its old file */
	CHECK(!matches("other = host=10.1.1.1 port=x", rows, 4, why, sizeof(why)));
	CHECK(strstr(why, "line 1 of the file (database \"other\") has invalid port") != NULL);
	CHECK(!matches("other = host=10.1.1.1\nbad line\n", rows, 4, why, sizeof(why)));
	CHECK(strstr(why, "line 2 of the file is not") != NULL);
}

static void fallback(void)
{
	char why[512];
	const char *serve = "appdb = host=127.0.0.1 port=5433 dbname=app\n* = host=127.0.0.1 port=5433\n";
	const char *fenced = "appdb = host=127.0.0.1 port=5433 dbname=app\n"
			     "* = host=127.0.0.1 port=5433 dbname=" STALE "\n";
	struct dbfile_row rows[] = {
		{ "appdb", "127.0.0.1", "5433", "app" },
		{ "postgres", "127.0.0.1", "5433", STALE }, /* made from the fenced fallback */
	};

	/* serving: a database still made from the fenced "*" shows a RELOAD rejected */
	CHECK(!matches(serve, rows, 2, why, sizeof(why)));
	CHECK_STR_EQ(why, "database \"postgres\" (made from the fallback \"*\") has dbname="
			  STALE ", the file's \"*\" line (2) says host=127.0.0.1 port=5433 "
			  "dbname=postgres");
	CHECK(matches(fenced, rows, 2, why, sizeof(why)));
	rows[1].database = "postgres";
	CHECK(matches(serve, rows, 2, why, sizeof(why)));
	/* fenced, the auto databases cannot be told from pgbouncer.ini's own */
	CHECK(matches(fenced, rows, 2, why, sizeof(why)));
	/* without a "*" line pgbouncer keeps its old fallback whatever the RELOAD */
	rows[1].database = STALE;
	CHECK(matches("appdb = host=127.0.0.1 port=5433 dbname=app\n", rows, 2, why, sizeof(why)));
}

int main(void)
{
	parse();
	compare();
	fallback();
	CHECK_DONE();
}
