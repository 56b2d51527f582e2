/*
 * pgconn_classify (src/common/pgconn.h) on libpq 15 connection error
 * messages as PQerrorMessage returns them with PQERRORS_VERBOSE.
 */
#include "check.h"
#include "pgconn.h"

#define SOCK "connection to server on socket \"/tmp/x/.s.PGSQL.5432\" failed: "
#define TCP "connection to server at \"127.0.0.1\", port 5432 failed: "

static void classify(const char *msg, enum pgconn_error kind, const char *sqlstate,
		     const char *first, int line)
{
	struct pgconn_failure f;

	memset(&f, 'x', sizeof(f));
	pgconn_classify(msg, &f);
	checks++;
	if (f.kind != kind || strcmp(f.sqlstate, sqlstate) != 0 ||
	    strcmp(f.message, first) != 0) {
		failures++;
		printf("%s:%d: pgconn_classify(\"%s\")\n"
		       "  got      kind %d (%s), sqlstate \"%.6s\", message \"%.256s\"\n"
		       "  expected kind %d (%s), sqlstate \"%s\", message \"%s\"\n",
		       __FILE__, line, msg, f.kind, pgconn_error_str(f.kind), f.sqlstate,
		       f.message, kind, pgconn_error_str(kind), sqlstate, first);
	}
}

#define CLASSIFY(msg, kind, sqlstate, first) classify(msg, kind, sqlstate, first, __LINE__)

static void test_server_errors(void)
{
	CLASSIFY(SOCK "FATAL:  57P03: the database system is starting up\n"
		 "LOCATION:  ProcessStartupPacket, postmaster.c:2417\n",
		 PGCONN_ERR_STARTING, "57P03", "the database system is starting up");
	CLASSIFY(SOCK "FATAL:  57P03: the database system is shutting down\n"
		 "LOCATION:  ProcessStartupPacket, postmaster.c:2421\n",
		 PGCONN_ERR_STARTING, "57P03", "the database system is shutting down");
	CLASSIFY(SOCK "FATAL:  57P03: the database system is not yet accepting connections\n"
		 "DETAIL:  Consistent recovery state has not been yet reached.\n"
		 "LOCATION:  ProcessStartupPacket, postmaster.c:2434\n",
		 PGCONN_ERR_STARTING, "57P03",
		 "the database system is not yet accepting connections");
	CLASSIFY(SOCK "FATAL:  53300: sorry, too many clients already\n"
		 "LOCATION:  InitProcess, proc.c:362\n",
		 PGCONN_ERR_TOO_MANY, "53300", "sorry, too many clients already");
	CLASSIFY(TCP "FATAL:  53300: remaining connection slots are reserved for non-replication "
		 "superuser connections\nLOCATION:  InitPostgres, postinit.c:859\n",
		 PGCONN_ERR_TOO_MANY, "53300",
		 "remaining connection slots are reserved for non-replication superuser "
		 "connections");
	CLASSIFY(SOCK "FATAL:  53400: out of shared memory\n",
		 PGCONN_ERR_TOO_MANY, "53400", "out of shared memory");
	CLASSIFY(TCP "FATAL:  28P01: password authentication failed for user \"x\"\n"
		 "LOCATION:  auth_failed, auth.c:335\n",
		 PGCONN_ERR_AUTH, "28P01", "password authentication failed for user \"x\"");
	CLASSIFY(TCP "FATAL:  28000: no pg_hba.conf entry for host \"127.0.0.1\", user \"x\", "
		 "database \"postgres\", no encryption\nLOCATION:  ClientAuthentication, "
		 "auth.c:536\n",
		 PGCONN_ERR_AUTH, "28000",
		 "no pg_hba.conf entry for host \"127.0.0.1\", user \"x\", database "
		 "\"postgres\", no encryption");
	CLASSIFY(SOCK "FATAL:  28000: role \"nobody\" does not exist\n"
		 "LOCATION:  InitializeSessionUserId, miscinit.c:733\n",
		 PGCONN_ERR_AUTH, "28000", "role \"nobody\" does not exist");
	/* Some other SQLSTATE: a plain failure, but the code is kept. */
	CLASSIFY(SOCK "FATAL:  3D000: database \"nope\" does not exist\n"
		 "LOCATION:  InitPostgres, postinit.c:941\n",
		 PGCONN_ERR_FAILED, "3D000", "database \"nope\" does not exist");
	/* Without a trailing newline. */
	CLASSIFY(SOCK "FATAL:  57P03: the database system is starting up",
		 PGCONN_ERR_STARTING, "57P03", "the database system is starting up");
}

static void test_client_errors(void)
{
	CLASSIFY(SOCK "No such file or directory\n"
		 "\tIs the server running locally and accepting connections on that socket?\n",
		 PGCONN_ERR_REFUSED, "",
		 SOCK "No such file or directory");
	CLASSIFY(SOCK "Connection refused\n"
		 "\tIs the server running locally and accepting connections on that socket?\n",
		 PGCONN_ERR_REFUSED, "", SOCK "Connection refused");
	CLASSIFY(TCP "Connection refused\n"
		 "\tIs the server running on that host and accepting TCP/IP connections?\n",
		 PGCONN_ERR_REFUSED, "", TCP "Connection refused");
	CLASSIFY(SOCK "fe_sendauth: no password supplied\n",
		 PGCONN_ERR_AUTH, "", SOCK "fe_sendauth: no password supplied");
	/* The same without VERBOSE (no SQLSTATE in the text). */
	CLASSIFY(TCP "FATAL:  password authentication failed for user \"x\"\n",
		 PGCONN_ERR_AUTH, "", TCP "FATAL:  password authentication failed for user \"x\"");
	CLASSIFY(TCP "server closed the connection unexpectedly\n"
		 "\tThis probably means the server terminated abnormally\n"
		 "\tbefore or while processing the request.\n",
		 PGCONN_ERR_FAILED, "", TCP "server closed the connection unexpectedly");
	CLASSIFY(TCP "No route to host\n"
		 "\tIs the server running on that host and accepting TCP/IP connections?\n",
		 PGCONN_ERR_FAILED, "", TCP "No route to host");
	CLASSIFY("invalid sslmode value: \"sometimes\"\n",
		 PGCONN_ERR_FAILED, "", "invalid sslmode value: \"sometimes\"");
	CLASSIFY("could not translate host name \"db.invalid\" to address: "
		 "Name or service not known\n",
		 PGCONN_ERR_FAILED, "",
		 "could not translate host name \"db.invalid\" to address: "
		 "Name or service not known");
	CLASSIFY("", PGCONN_ERR_FAILED, "", "");
}

static void test_not_a_sqlstate(void)
{
	/* Double blanks followed by something that is not a 5-character code. */
	CLASSIFY("weird:  abcde: lower case is no SQLSTATE\n",
		 PGCONN_ERR_FAILED, "", "weird:  abcde: lower case is no SQLSTATE");
	CLASSIFY("weird:  57P0", PGCONN_ERR_FAILED, "", "weird:  57P0");
	CLASSIFY("weird:  57P03 no colon", PGCONN_ERR_FAILED, "", "weird:  57P03 no colon");
	CLASSIFY("ends with:  ", PGCONN_ERR_FAILED, "", "ends with:  ");
}

static void test_long_first_line(void)
{
	char msg[600];
	char expected[256];
	struct pgconn_failure f;

	memset(msg, 'a', 400);
	strcpy(msg + 400, "\nsecond line\n");
	memset(expected, 'a', 255);
	expected[255] = '\0';
	pgconn_classify(msg, &f);
	CHECK_INT_EQ(f.kind, PGCONN_ERR_FAILED);
	CHECK_STR_EQ(f.message, expected);
	CHECK_INT_EQ(strlen(f.message), 255);

	snprintf(msg, sizeof(msg), SOCK "FATAL:  57P03: %.500s\n", expected);
	pgconn_classify(msg, &f);
	CHECK_INT_EQ(f.kind, PGCONN_ERR_STARTING);
	CHECK_STR_EQ(f.sqlstate, "57P03");
	CHECK_STR_EQ(f.message, expected);
}

static void test_error_str(void)
{
	CHECK_STR_EQ(pgconn_error_str(PGCONN_ERR_REFUSED), "connection refused");
	CHECK_STR_EQ(pgconn_error_str(PGCONN_ERR_STARTING), "server starting up or shutting down");
	CHECK_STR_EQ(pgconn_error_str(PGCONN_ERR_TOO_MANY), "too many connections");
	CHECK_STR_EQ(pgconn_error_str(PGCONN_ERR_AUTH), "authentication failed");
	CHECK_STR_EQ(pgconn_error_str(PGCONN_ERR_TIMEOUT), "timed out");
	CHECK_STR_EQ(pgconn_error_str(PGCONN_ERR_QUERY), "query failed");
	CHECK_STR_EQ(pgconn_error_str(PGCONN_ERR_LOST), "connection lost");
	CHECK_STR_EQ(pgconn_error_str(PGCONN_ERR_FAILED), "connection failed");
}

int main(void)
{
	test_server_errors();
	test_client_errors();
	test_not_a_sqlstate();
	test_long_first_line();
	test_error_str();
	CHECK_DONE();
}
