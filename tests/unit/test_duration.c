/* duration_parse / duration_format / size_parse (src/common/duration.h). */
#include <errno.h>
#include <stdint.h>

#include "check.h"
#include "duration.h"

static void check_parse(const char *text, int expected_r, int64_t expected_ms, int line)
{
	int64_t ms = -12345;
	int r = duration_parse(text, &ms);

	checks++;
	if (r != expected_r || (expected_r == 0 && ms != expected_ms) ||
	    (expected_r != 0 && ms != -12345)) {
		failures++;
		printf("%s:%d: duration_parse(\"%s\") = %d, ms %lld; expected %d, ms %lld\n",
		       __FILE__, line, text, r, (long long)ms, expected_r,
		       (long long)(expected_r == 0 ? expected_ms : -12345));
	}
}

#define PARSE_OK(text, ms) check_parse(text, 0, ms, __LINE__)
#define PARSE_BAD(text, r) check_parse(text, r, 0, __LINE__)

static void test_parse(void)
{
	PARSE_OK("0", 0);
	PARSE_OK("0ms", 0);
	PARSE_OK("1", 1000);
	PARSE_OK("250ms", 250);
	PARSE_OK("2s", 2000);
	PARSE_OK("5m", 300000);
	PARSE_OK("1h", 3600000);
	PARSE_OK("10", 10000);
	PARSE_OK("007s", 7000);
	PARSE_OK("1500ms", 1500);
	PARSE_OK("9000000000000000000ms", INT64_C(9000000000000000000));
	PARSE_OK("9223372036854775s", INT64_C(9223372036854775000));
	PARSE_OK("2562047788015h", INT64_C(2562047788015) * 3600000);
	PARSE_OK("153722867280912m", INT64_C(153722867280912) * 60000);

	/* Malformed: -EINVAL, *ms untouched. */
	PARSE_BAD("", -EINVAL);
	PARSE_BAD("s", -EINVAL);
	PARSE_BAD("ms", -EINVAL);
	PARSE_BAD("-1s", -EINVAL);
	PARSE_BAD("+1s", -EINVAL);
	PARSE_BAD(" 1s", -EINVAL);
	PARSE_BAD("1s ", -EINVAL);
	PARSE_BAD("1 s", -EINVAL);
	PARSE_BAD("1.5s", -EINVAL);
	PARSE_BAD("1S", -EINVAL);
	PARSE_BAD("1MS", -EINVAL);
	PARSE_BAD("1sec", -EINVAL);
	PARSE_BAD("1d", -EINVAL);
	PARSE_BAD("1us", -EINVAL);
	PARSE_BAD("1m1s", -EINVAL);
	PARSE_BAD("0x10", -EINVAL);

	/* Overflow: -ERANGE, never a wrapped value. */
	PARSE_BAD("99999999999999999999", -ERANGE);
	PARSE_BAD("99999999999999999999ms", -ERANGE);
	PARSE_BAD("9223372036854776s", -ERANGE);
	PARSE_BAD("9223372036854776", -ERANGE);
	PARSE_BAD("2562047788016h", -ERANGE);
	PARSE_BAD("153722867280913m", -ERANGE);
}

static void check_format(int64_t ms, const char *expected, int line)
{
	char buf[32];

	memset(buf, 'x', sizeof(buf));
	duration_format(ms, buf, sizeof(buf));
	checks++;
	if (strcmp(buf, expected) != 0) {
		failures++;
		printf("%s:%d: duration_format(%lld) = \"%s\", expected \"%s\"\n", __FILE__, line,
		       (long long)ms, buf, expected);
	}
}

#define FORMAT(ms, text) check_format(ms, text, __LINE__)

static void test_format(void)
{
	FORMAT(0, "0s");
	FORMAT(1, "1ms");
	FORMAT(10, "10ms");
	FORMAT(250, "250ms");
	FORMAT(1000, "1s");
	FORMAT(1500, "1500ms");
	FORMAT(2000, "2s");
	FORMAT(59000, "59s");
	FORMAT(60000, "1m");
	FORMAT(90000, "90s");
	FORMAT(300000, "5m");
	FORMAT(3600000, "1h");
	FORMAT(5400000, "90m");
	FORMAT(7200000, "2h");
	FORMAT(3601000, "3601s");

	/* Truncated to the buffer, always terminated. */
	char small[4];

	duration_format(123456, small, sizeof(small));
	CHECK_STR_EQ(small, "123");
}

static void test_round_trip(void)
{
	static const int64_t values[] = { 0, 1, 10, 100, 999, 1000, 1001, 59999, 60000,
					  61000, 3599999, 3600000, 86400000 };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char buf[32];
		int64_t back = -1;

		duration_format(values[i], buf, sizeof(buf));
		CHECK_INT_EQ(duration_parse(buf, &back), 0);
		CHECK_INT_EQ(back, values[i]);
	}
}

static void test_seconds(void)
{
	CHECK(duration_seconds(1500) == 1.5);
	CHECK(duration_seconds(0) == 0.0);
	CHECK(duration_seconds(10) == 0.01);
}

static void check_size(const char *text, int expected_r, int64_t expected_bytes, int line)
{
	int64_t bytes = -12345;
	int r = size_parse(text, &bytes);

	checks++;
	if (r != expected_r || (expected_r == 0 && bytes != expected_bytes) ||
	    (expected_r != 0 && bytes != -12345)) {
		failures++;
		printf("%s:%d: size_parse(\"%s\") = %d, bytes %lld; expected %d, bytes %lld\n",
		       __FILE__, line, text, r, (long long)bytes, expected_r,
		       (long long)(expected_r == 0 ? expected_bytes : -12345));
	}
}

#define SIZE_OK(text, bytes) check_size(text, 0, bytes, __LINE__)
#define SIZE_BAD(text, r) check_size(text, r, 0, __LINE__)

static void test_size(void)
{
	SIZE_OK("0", 0);
	SIZE_OK("0kB", 0);
	SIZE_OK("1", 1);
	SIZE_OK("8192", 8192);
	SIZE_OK("8192B", 8192);
	SIZE_OK("64kB", 64 * 1024);
	SIZE_OK("16MB", INT64_C(16) * 1024 * 1024);
	SIZE_OK("1GB", INT64_C(1) << 30);
	SIZE_OK("1TB", INT64_C(1) << 40);
	SIZE_OK("1024TB", INT64_C(1) << 50);
	SIZE_OK("007MB", INT64_C(7) << 20);
	SIZE_OK("9000000000000000000", INT64_C(9000000000000000000));
	SIZE_OK("9000000000000000000B", INT64_C(9000000000000000000));
	SIZE_OK("8388607TB", INT64_C(8388607) << 40);

	/* Units as PostgreSQL spells them, and nothing else: -EINVAL, *bytes untouched. */
	SIZE_BAD("", -EINVAL);
	SIZE_BAD("kB", -EINVAL);
	SIZE_BAD("MB", -EINVAL);
	SIZE_BAD("-1", -EINVAL);
	SIZE_BAD("+1", -EINVAL);
	SIZE_BAD(" 1MB", -EINVAL);
	SIZE_BAD("1MB ", -EINVAL);
	SIZE_BAD("1 MB", -EINVAL);
	SIZE_BAD("1.5MB", -EINVAL);
	SIZE_BAD("64KB", -EINVAL);
	SIZE_BAD("64kb", -EINVAL);
	SIZE_BAD("64k", -EINVAL);
	SIZE_BAD("16mb", -EINVAL);
	SIZE_BAD("16M", -EINVAL);
	SIZE_BAD("16MiB", -EINVAL);
	SIZE_BAD("1gB", -EINVAL);
	SIZE_BAD("1G", -EINVAL);
	SIZE_BAD("1tb", -EINVAL);
	SIZE_BAD("1PB", -EINVAL);
	SIZE_BAD("1b", -EINVAL);
	SIZE_BAD("1s", -EINVAL);
	SIZE_BAD("1MB1kB", -EINVAL);
	SIZE_BAD("0x10", -EINVAL);

	/* Overflow: -ERANGE, never a wrapped value. */
	SIZE_BAD("99999999999999999999", -ERANGE);
	SIZE_BAD("99999999999999999999kB", -ERANGE);
	SIZE_BAD("8388608TB", -ERANGE);
	SIZE_BAD("8796093022208GB", -ERANGE);
	SIZE_BAD("9007199254740992kB", -ERANGE);
	SIZE_BAD("9223372036854775808", -ERANGE);
}

int main(void)
{
	test_parse();
	test_format();
	test_round_trip();
	test_seconds();
	test_size();
	CHECK_DONE();
}
