/*
 * promtext (src/common/promtext.h): the exposition format, byte for byte,
 * and the errors that stick.  With PROMTOOL set (meson does, when Debian's
 * prometheus package is installed) the sample output is also checked by
 * `promtool check metrics`.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "check.h"
#include "promtool.h"
#include "promtext.h"

static void test_format_double(void)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 0.0, "0" }, { 1.0, "1" }, { -254.0, "-254" }, { 0.1, "0.1" },
		{ 1e-3, "0.001" }, { 123456789012.0, "123456789012" },
		{ 9007199254740993.0, "9007199254740992" }, { 1.0 / 3.0, "0.33333333333333331" },
		{ 1e300, "1e+300" }, { 0.30000000000000004, "0.30000000000000004" },
	};
	char out[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		promtext_format_double(cases[i].v, out, sizeof(out));
		CHECK_STR_EQ(out, cases[i].text);
		CHECK(strtod(out, NULL) == cases[i].v);
	}
	promtext_format_double(NAN, out, sizeof(out));
	CHECK_STR_EQ(out, "NaN");
	promtext_format_double(INFINITY, out, sizeof(out));
	CHECK_STR_EQ(out, "+Inf");
	promtext_format_double(-INFINITY, out, sizeof(out));
	CHECK_STR_EQ(out, "-Inf");
}

static void test_names(void)
{
	CHECK(promtext_valid_name("pgtrackd_up", false));
	CHECK(promtext_valid_name("a:b_c9", false));
	CHECK(promtext_valid_name("_x", false));
	CHECK(!promtext_valid_name("9x", false));
	CHECK(!promtext_valid_name("", false));
	CHECK(!promtext_valid_name("a-b", false));
	CHECK(!promtext_valid_name("a b", false));
	CHECK(promtext_valid_name("track", true));
	CHECK(!promtext_valid_name("a:b", true));
	CHECK(!promtext_valid_name("__name__", true));
}

/* The sample every format check below and promtool read. */
static char *sample_text(size_t *len)
{
	struct promtext p;
	char *text;
	int r;

	promtext_init(&p);
	promtext_family(&p, "pgtrackd_up", PROMTEXT_GAUGE, "Whether PostgreSQL answers.");
	promtext_sample(&p, 1.0, "track", "main", NULL);
	promtext_sample(&p, 0.0, "track", "b\\ad \"name\"\nhere", NULL);
	promtext_family(&p, "pgtrackd_probe_failures_total", PROMTEXT_COUNTER,
			"Probes that failed, by reason.\nSecond line \\ with a backslash.");
	promtext_sample(&p, 3.0, "track", "main", "reason", "timeout", NULL);
	promtext_family(&p, "pgtrackd_replication_lag_seconds", PROMTEXT_GAUGE,
			"Replay lag; NaN when unknown.");
	promtext_sample(&p, NAN, NULL);
	promtext_family(&p, "pgtrackd_probe_duration_seconds", PROMTEXT_HISTOGRAM,
			"Probe round trips.");
	promtext_sample_suffix(&p, "_bucket", 2.0, "le", "0.005", NULL);
	promtext_sample_suffix(&p, "_bucket", 5.0, "le", "+Inf", NULL);
	promtext_sample_suffix(&p, "_sum", 0.0125, NULL);
	promtext_sample_suffix(&p, "_count", 5.0, NULL);
	r = promtext_take(&p, &text, len);
	CHECK_INT_EQ(r, 0);
	CHECK(p.buf == NULL);
	return text;
}

static const char expected[] =
	"# HELP pgtrackd_up Whether PostgreSQL answers.\n"
	"# TYPE pgtrackd_up gauge\n"
	"pgtrackd_up{track=\"main\"} 1\n"
	"pgtrackd_up{track=\"b\\\\ad \\\"name\\\"\\nhere\"} 0\n"
	"# HELP pgtrackd_probe_failures_total Probes that failed, by reason.\\n"
	"Second line \\\\ with a backslash.\n"
	"# TYPE pgtrackd_probe_failures_total counter\n"
	"pgtrackd_probe_failures_total{track=\"main\",reason=\"timeout\"} 3\n"
	"# HELP pgtrackd_replication_lag_seconds Replay lag; NaN when unknown.\n"
	"# TYPE pgtrackd_replication_lag_seconds gauge\n"
	"pgtrackd_replication_lag_seconds NaN\n"
	"# HELP pgtrackd_probe_duration_seconds Probe round trips.\n"
	"# TYPE pgtrackd_probe_duration_seconds histogram\n"
	"pgtrackd_probe_duration_seconds_bucket{le=\"0.005\"} 2\n"
	"pgtrackd_probe_duration_seconds_bucket{le=\"+Inf\"} 5\n"
	"pgtrackd_probe_duration_seconds_sum 0.0125\n"
	"pgtrackd_probe_duration_seconds_count 5\n";

static void test_output(void)
{
	size_t len;
	char *text = sample_text(&len);

	CHECK_STR_EQ(text, expected);
	CHECK_INT_EQ(len, strlen(expected));
	free(text);
}

static void expect_error(void (*write)(struct promtext *p), int err)
{
	struct promtext p;
	char *text;
	size_t len;

	promtext_init(&p);
	write(&p);
	CHECK_INT_EQ(promtext_take(&p, &text, &len), err);
	CHECK(text == NULL);
	CHECK(p.buf == NULL);
}

static void counter_without_total(struct promtext *p)
{
	promtext_family(p, "pgtrackd_changes", PROMTEXT_COUNTER, "x");
}

static void gauge_with_total(struct promtext *p)
{
	promtext_family(p, "pgtrackd_changes_total", PROMTEXT_GAUGE, "x");
}

static void family_twice(struct promtext *p)
{
	promtext_family(p, "pgtrackd_up", PROMTEXT_GAUGE, "x");
	promtext_sample(p, 1.0, NULL);
	promtext_family(p, "pgtrackd_upper", PROMTEXT_GAUGE, "x");
	promtext_family(p, "pgtrackd_up", PROMTEXT_GAUGE, "x");
	/* Sticky: a good family afterwards does not clear the error. */
	promtext_family(p, "pgtrackd_other", PROMTEXT_GAUGE, "x");
}

static void sample_before_family(struct promtext *p)
{
	promtext_sample(p, 1.0, NULL);
}

static void bad_label(struct promtext *p)
{
	promtext_family(p, "pgtrackd_up", PROMTEXT_GAUGE, "x");
	promtext_sample(p, 1.0, "bad-label", "v", NULL);
}

static void bad_name(struct promtext *p)
{
	promtext_family(p, "pgtrackd-up", PROMTEXT_GAUGE, "x");
}

static void test_errors(void)
{
	expect_error(counter_without_total, -EINVAL);
	expect_error(gauge_with_total, -EINVAL);
	expect_error(family_twice, -EINVAL);
	expect_error(sample_before_family, -EINVAL);
	expect_error(bad_label, -EINVAL);
	expect_error(bad_name, -EINVAL);
}

/* Many families and long label values: the buffer grows past its first size. */
static void test_growth(void)
{
	struct promtext p;
	char name[64], value[300], *text;
	size_t len;

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	promtext_init(&p);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "pgtrackd_family_%d", i);
		promtext_family(&p, name, PROMTEXT_GAUGE, "many");
		promtext_sample(&p, (double)i, "v", value, NULL);
	}
	CHECK_INT_EQ(promtext_take(&p, &text, &len), 0);
	CHECK(len > 200 * 300);
	CHECK_INT_EQ(strlen(text), len);
	CHECK(strstr(text, "pgtrackd_family_199{v=\"vvv") != NULL);
	free(text);
}

/* An empty exposition is valid: an empty string, not NULL. */
static void test_empty(void)
{
	struct promtext p;
	char *text;
	size_t len;

	promtext_init(&p);
	CHECK_INT_EQ(promtext_take(&p, &text, &len), 0);
	CHECK(text != NULL && text[0] == '\0');
	CHECK_INT_EQ(len, 0);
	free(text);
}

static void test_promtool(void)
{
	const char *promtool = getenv("PROMTOOL");
	size_t len;
	char *text;

	if (!promtool || !*promtool) {
		printf("PROMTOOL not set: promtool check skipped\n");
		return;
	}
	text = sample_text(&len);
	CHECK_INT_EQ(promtool_check(text), 0);
	free(text);
	/* The check can fail: a gauge named like a counter is refused. */
	CHECK(promtool_check("# HELP x_total y\n# TYPE x_total gauge\nx_total 1\n") > 0);
}

int main(void)
{
	test_format_double();
	test_names();
	test_output();
	test_errors();
	test_growth();
	test_empty();
	test_promtool();
	CHECK_DONE();
}
