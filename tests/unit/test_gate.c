/*
 * gate (src/notify/gate.h): which templates may carry the gate, and the
 * gate appended to each [databases] line of the text, every other byte
 * kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbfile.h"
#include "gate.h"

#define SOCK "/var/run/postgresql"

static char *gated(const char *in)
{
	struct dbfile f;
	size_t len = strlen(in), n;
	char *out;

	CHECK(dbfile_parse(&f, in, len) == 0);
	out = malloc(gate_applied_size(&f, len));
	n = gate_apply(&f, in, len, out);
	out[n] = '\0';
	CHECK(n < gate_applied_size(&f, len));
	dbfile_finish(&f);
	return out;
}

/* want with each "@" replaced by the suffix gate_apply adds. */
static void check_gated(const char *in, const char *want)
{
	char *got = gated(in);
	size_t room = strlen(want) * 2 + 1;
	char suffix[1024];
	char *expect;
	size_t k = 0;

	snprintf(suffix, sizeof(suffix), "%s%s'", GATE_SUFFIX_PREFIX, gate_query);
	for (const char *p = want; *p; p++)
		room += *p == '@' ? strlen(suffix) : 0;
	expect = malloc(room);
	for (const char *p = want; *p; p++) {
		if (*p == '@') {
			memcpy(expect + k, suffix, strlen(suffix));
			k += strlen(suffix);
		} else {
			expect[k++] = *p;
		}
	}
	expect[k] = '\0';
	CHECK_STR_EQ(got, expect);
	free(expect);
	free(got);
}

static void check_fits(const char *text, const char *host, int port, int want, const char *why_has)
{
	struct dbfile f;
	char why[256];

	CHECK(dbfile_parse(&f, text, strlen(text)) == 0);
	CHECK_INT_EQ(gate_fits(&f, host, port, why, sizeof(why)), want);
	if (why_has)
		CHECK(strstr(why, why_has) != NULL);
	else
		CHECK_STR_EQ(why, "");
	dbfile_finish(&f);
}

static void test_fits(void)
{
	check_fits("appdb = host=" SOCK " port=5432 dbname=appdb\n", SOCK, 5432, 1, NULL);
	/* pgbouncer's and [postgres]'s default port */
	check_fits("appdb = host=" SOCK " dbname=appdb\n", SOCK, 5432, 1, NULL);
	check_fits("appdb = host=" SOCK " port=5433\n", SOCK, 5432, 0,
		   "database \"appdb\" (line 1) goes to host=" SOCK " port=5433, [postgres] is "
		   "host=" SOCK " port=5432");
	/* the same server by another name is not recognised: no gate */
	check_fits("appdb = host=127.0.0.1 port=5432\n", SOCK, 5432, 0, "goes to host=127.0.0.1");
	check_fits("appdb = port=5432\n", SOCK, 5432, 0, "goes to host=(unset)");
	check_fits("appdb = host=" SOCK "\n", "", 5432, 0, "[postgres] sets no host");
	check_fits("; nothing\n", SOCK, 5432, 0, "no database");
	check_fits("a = host=" SOCK "\nb = host=" SOCK " connect_query='SET x=1'\n", SOCK, 5432, 0,
		   "database \"b\" (line 2) has a connect_query of its own");
	/* the fallback too; a line not in [databases] does not count */
	check_fits("a = host=" SOCK "\n* = host=10.0.0.1\n", SOCK, 5432, 0,
		   "database \"*\" (line 2) goes to host=10.0.0.1");
	check_fits("a = host=" SOCK "\n* = host=" SOCK "\n[pgbouncer]\nlisten_port = 6432\n", SOCK,
		   5432, 1, NULL);
	/* an included file's lines cannot be seen, nor gated */
	check_fits("a = host=" SOCK "\n%include /etc/pgbouncer/more.ini\n", SOCK, 5432, 0,
		   "%include line");
	/* a name defined twice: pgbouncer keeps the last line */
	check_fits("a = host=10.0.0.1\na = host=" SOCK "\n", SOCK, 5432, 1, NULL);
}

static void test_apply(void)
{
	check_gated("", "");
	check_gated("; only a comment\n", "; only a comment\n");
	check_gated("appdb = host=x dbname=appdb\n", "appdb = host=x dbname=appdb@\n");
	/* no newline at the end; CRLF; trailing blanks; blanks around "=" */
	check_gated("a = host=x", "a = host=x@");
	check_gated("a = host=x\r\nb  =  host=y  \n", "a = host=x@\r\nb  =  host=y@  \n");
	/* comments, a header, the fallback, repeated names, another section */
	check_gated("; c\n[databases]\n* = host=x\na = host=x\na = host=x port=1\n"
		    "[pgbouncer]\nlisten_port = 6432\n",
		    "; c\n[databases]\n* = host=x@\na = host=x@\na = host=x port=1@\n"
		    "[pgbouncer]\nlisten_port = 6432\n");
	/* a value quoted up to the end of the line */
	check_gated("a = host=x application_name='a b'\n",
		    "a = host=x application_name='a b'@\n");
}

/* pgbouncer 1.18 reads the gated line back as the same database, connect_query set. */
static void test_reparsed(void)
{
	char *out = gated("appdb = host=" SOCK " port=5432 dbname=appdb pool_size=7\n");
	struct dbfile f;

	CHECK(dbfile_parse(&f, out, strlen(out)) == 0);
	CHECK_INT_EQ(f.n, 1);
	CHECK(f.entry[0].bad == NULL);
	CHECK_STR_EQ(f.entry[0].host, SOCK);
	CHECK_INT_EQ(f.entry[0].port, 5432);
	CHECK_STR_EQ(f.entry[0].dbname, "appdb");
	CHECK(f.entry[0].connect_query);
	dbfile_finish(&f);
	free(out);
	CHECK(strchr(gate_query, '\'') == NULL);
	CHECK(strlen(gate_query) <= 506);
}

int main(void)
{
	test_fits();
	test_apply();
	test_reparsed();
	CHECK_DONE();
}
