/* log (src/common/log.h): console format, levels, errno, facilities. */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "testutil.h"

static char dir[256];

/* Whether text matches the extended regular expression re. */
static bool matches(const char *text, const char *re)
{
	regex_t rx;
	bool ok;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE) != 0) {
		printf("bad regex %s\n", re);
		return false;
	}
	ok = regexec(&rx, text, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

static void test_console_lines(void)
{
	struct capture cap;
	char *out;

	log_init("pgtrackd", true, LOG_DAEMON);
	log_set_verbose(false);

	capture_begin(&cap, dir);
	log_error("e %d", 1);
	log_warnx("w %s", "x");
	log_notice("n");
	log_info("i");
	log_debug("hidden debug");
	log_set_verbose(true);
	log_debug("shown debug");
	errno = ENOENT;
	log_warn("open %s", "/nope");
	out = capture_end(&cap);

	CHECK(matches(out, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
			   "pgtrackd: error: e 1$"));
	CHECK(matches(out, "^[0-9T:.-]{23} pgtrackd: warning: w x$"));
	CHECK(matches(out, "^[0-9T:.-]{23} pgtrackd: notice: n$"));
	CHECK(matches(out, "^[0-9T:.-]{23} pgtrackd: info: i$"));
	CHECK(matches(out, "^[0-9T:.-]{23} pgtrackd: debug: shown debug$"));
	CHECK(matches(out, "^[0-9T:.-]{23} pgtrackd: warning: open /nope: "
			   "No such file or directory$"));
	CHECK(strstr(out, "hidden debug") == NULL);
	CHECK_INT_EQ(count_substr(out, "\n"), 6);
	free(out);
	log_set_verbose(false);
}

static void test_errno_preserved(void)
{
	struct capture cap;
	char *out;
	int e1, e2, e3;

	capture_begin(&cap, dir);
	errno = EACCES;
	log_error("x");
	e1 = errno;
	errno = ETIMEDOUT;
	log_warn("y");
	e2 = errno;
	errno = EAGAIN;
	log_debug("z (not shown)");
	e3 = errno;
	out = capture_end(&cap);
	free(out);

	CHECK_INT_EQ(e1, EACCES);
	CHECK_INT_EQ(e2, ETIMEDOUT);
	CHECK_INT_EQ(e3, EAGAIN);

	/* Also when the write itself fails (EBADF): the caller's errno survives. */
	int saved = dup(STDERR_FILENO);

	fflush(stderr);
	close(STDERR_FILENO);
	errno = EACCES;
	log_error("to a closed stderr");
	e1 = errno;
	errno = ENOSPC;
	log_notice("to a closed stderr");
	e2 = errno;
	dup2(saved, STDERR_FILENO);
	close(saved);
	clearerr(stderr);
	CHECK_INT_EQ(e1, EACCES);
	CHECK_INT_EQ(e2, ENOSPC);
}

static void test_long_message_truncated(void)
{
	struct capture cap;
	char *out, *big = malloc(5000);

	memset(big, 'a', 4999);
	big[4999] = '\0';
	capture_begin(&cap, dir);
	log_info("%s", big);
	out = capture_end(&cap);
	/* One line, cut at the 2047-byte message buffer, still terminated. */
	CHECK_INT_EQ(count_substr(out, "\n"), 1);
	CHECK(strstr(out, "pgtrackd: info: aaaa") != NULL);
	CHECK_INT_EQ(strlen(strstr(out, "info: ") + 6), 2047 + 1);
	free(out);
	free(big);
}

static void test_facilities(void)
{
	CHECK_INT_EQ(log_facility_from_name("daemon"), LOG_DAEMON);
	CHECK_INT_EQ(log_facility_from_name("user"), LOG_USER);
	CHECK_INT_EQ(log_facility_from_name("local0"), LOG_LOCAL0);
	CHECK_INT_EQ(log_facility_from_name("local7"), LOG_LOCAL7);
	CHECK_INT_EQ(log_facility_from_name("LOCAL3"), LOG_LOCAL3);
	CHECK_INT_EQ(log_facility_from_name("local8"), -1);
	CHECK_INT_EQ(log_facility_from_name("kern"), -1);
	CHECK_INT_EQ(log_facility_from_name(""), -1);
}

/* Under systemd, stderr is the journal: "<N>" priorities, no timestamp. */
static void test_journal_lines(void)
{
	struct capture cap;
	struct stat st;
	char stream[64];
	char *out;

	capture_begin(&cap, dir);
	CHECK(fstat(STDERR_FILENO, &st) == 0);
	snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", stream, 1);
	log_init("pgtrackd", false, LOG_DAEMON);
	CHECK(log_to_journal());
	log_set_verbose(true);
	log_error("e %d", 1);
	log_warnx("w");
	log_notice("n");
	log_info("i");
	log_debug("d");
	errno = ENOENT;
	log_warn("open %s", "/nope");
	out = capture_end(&cap);
	CHECK(matches(out, "^<3>error: e 1$"));
	CHECK(matches(out, "^<4>warning: w$"));
	CHECK(matches(out, "^<5>notice: n$"));
	CHECK(matches(out, "^<6>info: i$"));
	CHECK(matches(out, "^<7>debug: d$"));
	CHECK(matches(out, "^<4>warning: open /nope: No such file or directory$"));
	free(out);

	/* Another stream (stderr redirected since systemd started us): the console format. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	capture_begin(&cap, dir);
	log_init("pgtrackd", true, LOG_DAEMON);
	CHECK(!log_to_journal());
	log_warnx("plain");
	out = capture_end(&cap);
	CHECK(matches(out, "^[0-9T:.-]{23} pgtrackd: warning: plain$"));
	free(out);
	setenv("JOURNAL_STREAM", "garbage", 1);
	log_init("pgtrackd", true, LOG_DAEMON);
	CHECK(!log_to_journal());
	unsetenv("JOURNAL_STREAM");
	log_set_verbose(false);
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_console_lines();
	test_errno_preserved();
	test_long_message_truncated();
	test_facilities();
	test_journal_lines();
	scratch_remove(dir);
	CHECK_DONE();
}
