/*
 * The configuration: the trackd loader config_load() (src/trackd/config.h)
 * on good and bad files, and the INI layer under it (src/common/conf.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "check.h"
#include "conf.h"
#include "config_probe.h"
#include "pg_settings.h"
#include "trackd_config.h"
#include "testutil.h"

static char dir[256];

/* The built-in probe's settings of t, as it reads them at init. */
static struct pg_settings pg_of(const struct track_settings *t)
{
	struct pgtrackd_dict_item items[PROBE_MAX_KEYS];
	struct pgtrackd_dict dict;
	struct pg_settings s;

	config_probe_dict(t, false, items, &dict);
	pg_settings_parse(&s, &dict, t->name, t->interval_ms, t->reminder_interval_ms, NULL, NULL);
	return s;
}

#define PG(t) (pg_of(t))

/* The line of the built-in probe's peer i of t. */
static int peer_line(const struct track_settings *t, int i)
{
	struct pg_settings s = pg_of(t);

	return i < s.n_peers ? t->probe_keys[s.peers[i].item].line : -1;
}
static int file_no;

/* Writes len bytes of text to a new file in the scratch directory. */
static void new_file(char *path, size_t size, const char *text, size_t len)
{
	snprintf(path, size, "%s/c%d.conf", dir, ++file_no);
	if (write_bytes(path, text, len) < 0) {
		perror(path);
		exit(2);
	}
}

static struct trackd_config *load(const char *text, char *path, size_t size,
				  struct conf_errors *errs)
{
	new_file(path, size, text, strlen(text));
	*errs = (struct conf_errors){ 0 };
	return config_load(path, errs);
}

/*
 * Loads text and checks that the errors are exactly the expected ones
 * (given as "LINE: message", or ": message" for the lines without a line
 * number; the path is prefixed here), in any order, and that no config
 * comes back.
 */
static void expect_errors_len(int line, const char *text, size_t len, ...)
{
	char path[4200];
	const char *expected[64];
	char *full[64];
	size_t n = 0;
	struct conf_errors errs = { 0 };
	struct trackd_config *c;
	bool ok = true;
	va_list ap;

	va_start(ap, len);
	for (const char *e = va_arg(ap, const char *); e && n < 64; e = va_arg(ap, const char *))
		expected[n++] = e;
	va_end(ap);

	new_file(path, sizeof(path), text, len);
	c = config_load(path, &errs);

	for (size_t i = 0; i < n; i++) {
		bool found = false;

		if (asprintf(&full[i], "%s:%s", path, expected[i]) < 0)
			exit(2);
		if (expected[i][0] == ':') {
			free(full[i]);
			if (asprintf(&full[i], "%s%s", path, expected[i]) < 0)
				exit(2);
		}
		for (size_t j = 0; j < errs.count; j++)
			found |= strcmp(errs.lines[j], full[i]) == 0;
		ok &= found;
	}
	ok &= errs.count == n;
	ok &= c == NULL;
	ok &= !errs.oom;

	checks++;
	if (!ok) {
		failures++;
		printf("%s:%d: config_load errors differ (config %s)\n", __FILE__, line,
		       c ? "returned" : "NULL");
		for (size_t i = 0; i < n; i++)
			printf("  expected: %s\n", full[i]);
		for (size_t j = 0; j < errs.count; j++)
			printf("  got:      %s\n", errs.lines[j]);
		fflush(stdout);
	}
	for (size_t i = 0; i < n; i++)
		free(full[i]);
	config_destroy(c);
	conf_errors_finish(&errs);
}

#define EXPECT_ERRORS(text, ...) \
	expect_errors_len(__LINE__, text, strlen(text), __VA_ARGS__, (const char *)NULL)
#define EXPECT_ERRORS_LEN(text, len, ...) \
	expect_errors_len(__LINE__, text, len, __VA_ARGS__, (const char *)NULL)

/* Loads text that must be valid; NULL (and a failed check) otherwise. */
static struct trackd_config *load_ok(const char *text, int line)
{
	char path[4200];
	struct conf_errors errs;
	struct trackd_config *c = load(text, path, sizeof(path), &errs);

	checks++;
	if (!c || errs.count != 0) {
		failures++;
		printf("%s:%d: config_load failed on a valid file\n", __FILE__, line);
		for (size_t j = 0; j < errs.count; j++)
			printf("  got: %s\n", errs.lines[j]);
		config_destroy(c);
		c = NULL;
	}
	conf_errors_finish(&errs);
	return c;
}

#define LOAD_OK(text) load_ok(text, __LINE__)

/* The spec's exact form: PATH:LINE: unknown section "NAME". */
#define UNKNOWN_SECTION(name) "unknown section \"" name "\""

static void test_defaults(void)
{
	struct trackd_config *c = LOAD_OK("[track a]\nfile = /run/pgtrackd/a\n");

	if (!c)
		return;
	CHECK_INT_EQ(c->global.file_check_interval_ms, 500);
	CHECK_STR_EQ(c->global.syslog_facility, "daemon");
	CHECK_INT_EQ(c->n_tracks, 1);
	CHECK(strstr(c->path, "/c") != NULL);

	const struct track_settings *t = &c->tracks[0];

	CHECK_STR_EQ(t->name, "a");
	CHECK_INT_EQ(t->line, 1);
	CHECK_STR_EQ(t->file, "/run/pgtrackd/a");
	CHECK_STR_EQ(PG(t).host, "");
	CHECK_STR_EQ(PG(t).hostaddr, "");
	CHECK_INT_EQ(PG(t).port, 0);
	CHECK_STR_EQ(PG(t).dbname, "");
	CHECK_STR_EQ(PG(t).user, "");
	CHECK_STR_EQ(PG(t).passfile, "");
	CHECK_STR_EQ(PG(t).sslmode, "");
	CHECK_STR_EQ(PG(t).application_name, "pgtrackd");
	CHECK_INT_EQ(PG(t).connect_timeout_ms, 2000);
	CHECK_INT_EQ(t->interval_ms, 1000);
	CHECK_INT_EQ(PG(t).timeout_ms, 1000);
	CHECK_INT_EQ(t->rise, 2);
	CHECK_INT_EQ(t->fall, 2);
	CHECK_INT_EQ(PG(t).accept_interval_ms, 1000); /* the interval */
	CHECK_INT_EQ(t->values[TRACK_PRIMARY], 54);
	CHECK_INT_EQ(t->values[TRACK_STANDBY], 53);
	CHECK_INT_EQ(t->values[TRACK_DOWN], -254);
	CHECK_INT_EQ(t->values[TRACK_UNKNOWN], 0);
	CHECK_INT_EQ(t->values[TRACK_STOPPED], -254);
	CHECK_INT_EQ(t->values[TRACK_STALE], -254);
	CHECK_INT_EQ(t->values[TRACK_CONFLICT], -254);
	CHECK_INT_EQ(t->values[TRACK_LAGGING], -100);
	CHECK_INT_EQ(t->base_priority, 200);
	CHECK_STR_EQ(PG(t).node, "");
	CHECK_INT_EQ(PG(t).rank_tolerance, 128 * 1024);
	CHECK_INT_EQ(PG(t).max_lag_bytes, 0);
	CHECK_INT_EQ(PG(t).max_lag_time_ms, 0);
	CHECK_INT_EQ(PG(t).n_peers, 0);
	config_destroy(c);
}

/* accept_interval follows the track's interval unless it is set, to 0 as well. */
static void test_accept_interval_default(void)
{
	struct trackd_config *c = LOAD_OK("[track a]\nfile = /run/pgtrackd/a\ninterval = 200ms\n"
					  "[track b]\nfile = /run/pgtrackd/b\ninterval = 200ms\n"
					  "accept_interval = 3s\n"
					  "[track c]\nfile = /run/pgtrackd/c\naccept_interval = 0\n");

	if (!c)
		return;
	CHECK_INT_EQ(c->n_tracks, 3);
	CHECK_INT_EQ(PG(&c->tracks[0]).accept_interval_ms, 200);
	CHECK_INT_EQ(PG(&c->tracks[1]).accept_interval_ms, 3000);
	CHECK_INT_EQ(PG(&c->tracks[2]).accept_interval_ms, 0);
	config_destroy(c);
}

static void test_every_key(void)
{
	struct trackd_config *c = LOAD_OK(
		"; pgtrackd.conf\n"                      /* 1 */
		"[global]\n"                             /* 2 */
		"file_check_interval = 250ms\n"          /* 3 */
		"syslog_facility = local3\n"             /* 4 */
		"\n"                                     /* 5 */
		"[track pg-main_1.x]\n"                  /* 6 */
		"file = /run/pgtrackd/main\n"
		"host = /var/run/postgresql\n"
		"hostaddr = 127.0.0.1\n"
		"port = 5433\n"
		"dbname = template1\n"
		"user = monitor\n"
		"passfile = /etc/pgtrackd/pgpass\n"
		"sslmode = verify-full\n"
		"application_name = pgtrackd-main\n"
		"connect_timeout = 3s\n"
		"interval = 250ms\n"
		"timeout = 2m\n"
		"rise = 100\n"
		"fall = 1\n"
		"accept_interval = 0\n"
		"value_primary = 254\n"
		"value_standby = -254\n"
		"value_down = -200\n"
		"value_unknown = 7\n"
		"value_stopped = 0\n"
		"[track b]\n"                            /* 27 */
		"file = /run/pgtrackd/b\n"
		"accept_interval = 1h\n"
		"interval = 10ms\n"
		"connect_timeout = 100ms\n"
		"timeout = 1h\n"
		"port = 1\n");

	if (!c)
		return;
	CHECK_INT_EQ(c->global.file_check_interval_ms, 250);
	CHECK_STR_EQ(c->global.syslog_facility, "local3");
	CHECK_INT_EQ(c->n_tracks, 2);
	if (c->n_tracks != 2) {
		config_destroy(c);
		return;
	}

	const struct track_settings *t = &c->tracks[0];

	CHECK_STR_EQ(t->name, "pg-main_1.x");
	CHECK_INT_EQ(t->line, 6);
	CHECK_STR_EQ(t->file, "/run/pgtrackd/main");
	CHECK_STR_EQ(PG(t).host, "/var/run/postgresql");
	CHECK_STR_EQ(PG(t).hostaddr, "127.0.0.1");
	CHECK_INT_EQ(PG(t).port, 5433);
	CHECK_STR_EQ(PG(t).dbname, "template1");
	CHECK_STR_EQ(PG(t).user, "monitor");
	CHECK_STR_EQ(PG(t).passfile, "/etc/pgtrackd/pgpass");
	CHECK_STR_EQ(PG(t).sslmode, "verify-full");
	CHECK_STR_EQ(PG(t).application_name, "pgtrackd-main");
	CHECK_INT_EQ(PG(t).connect_timeout_ms, 3000);
	CHECK_INT_EQ(t->interval_ms, 250);
	CHECK_INT_EQ(PG(t).timeout_ms, 120000);
	CHECK_INT_EQ(t->rise, 100);
	CHECK_INT_EQ(t->fall, 1);
	CHECK_INT_EQ(PG(t).accept_interval_ms, 0);
	CHECK_INT_EQ(t->values[TRACK_PRIMARY], 254);
	CHECK_INT_EQ(t->values[TRACK_STANDBY], -254);
	CHECK_INT_EQ(t->values[TRACK_DOWN], -200);
	CHECK_INT_EQ(t->values[TRACK_UNKNOWN], 7);
	CHECK_INT_EQ(t->values[TRACK_STOPPED], 0);

	t = &c->tracks[1];
	CHECK_STR_EQ(t->name, "b");
	CHECK_INT_EQ(t->line, 27);
	CHECK_STR_EQ(t->file, "/run/pgtrackd/b");
	CHECK_INT_EQ(PG(t).accept_interval_ms, 3600000);
	CHECK_INT_EQ(t->interval_ms, 10);
	CHECK_INT_EQ(PG(t).connect_timeout_ms, 100);
	CHECK_INT_EQ(PG(t).timeout_ms, 3600000);
	CHECK_INT_EQ(PG(t).port, 1);
	/* Defaults are per track, untouched by the first track's keys. */
	CHECK_INT_EQ(t->rise, 2);
	CHECK_INT_EQ(t->values[TRACK_PRIMARY], 54);
	CHECK_STR_EQ(PG(t).application_name, "pgtrackd");
	config_destroy(c);
}

static void test_layout(void)
{
	/* Indented keys, blanks around '=', comments, inline "; comment", CRLF. */
	struct trackd_config *c = LOAD_OK(
		"# leading comment\n"
		"   ; indented comment\n"
		"\n"
		"  [track a]   ; header comment\n"
		"    file = /run/a\n"
		"\tport = 5444\n"
		"  \t interval=3s ; every three seconds\n"
		"dbname = db;no-comment-without-a-blank\n"
		"user   =   spaced   \n"
		"timeout = 250ms\t; tab before the comment\n"
		"rise = 3\r\n"
		"fall = 4\r\n");

	if (!c)
		return;
	CHECK_INT_EQ(c->n_tracks, 1);

	const struct track_settings *t = &c->tracks[0];

	CHECK_STR_EQ(t->name, "a");
	CHECK_INT_EQ(t->line, 4);
	CHECK_STR_EQ(t->file, "/run/a");
	CHECK_INT_EQ(PG(t).port, 5444);
	CHECK_INT_EQ(t->interval_ms, 3000);
	CHECK_STR_EQ(PG(t).dbname, "db;no-comment-without-a-blank");
	CHECK_STR_EQ(PG(t).user, "spaced");
	CHECK_INT_EQ(PG(t).timeout_ms, 250);
	CHECK_INT_EQ(t->rise, 3);
	CHECK_INT_EQ(t->fall, 4);
	config_destroy(c);
}

static void test_hash_is_no_inline_comment(void)
{
	/* '#' only starts a comment at the beginning of a line. */
	EXPECT_ERRORS("[track a]\nfile = /run/a\nfall = 4 # four\n",
		      "3: invalid value \"4 # four\" for fall: expected an integer");
}

static void test_line_length(void)
{
	char text[1024], value[300];
	struct trackd_config *c;

	/* A 197-byte line is read whole: "host = " is 7 bytes, the value 190. */
	memset(value, 'h', 190);
	value[190] = '\0';
	snprintf(text, sizeof(text), "[track a]\nfile = /run/a\nhost = /%s\n", value + 1);
	c = LOAD_OK(text);
	if (c) {
		CHECK_INT_EQ(strlen(PG(&c->tracks[0]).host), 190);
		CHECK(PG(&c->tracks[0]).host[0] == '/' && PG(&c->tracks[0]).host[189] == 'h');
		config_destroy(c);
	}
	/* The same with CRLF: the CR does not count. */
	snprintf(text, sizeof(text), "[track a]\r\nfile = /run/a\r\nhost = /%s\r\n", value + 1);
	c = LOAD_OK(text);
	if (c) {
		CHECK_INT_EQ(strlen(PG(&c->tracks[0]).host), 190);
		config_destroy(c);
	}
	/* A 197-byte comment, as the last line without a newline. */
	memset(value, 'x', 195);
	value[195] = '\0';
	snprintf(text, sizeof(text), "[track a]\nfile = /run/a\n; %s", value);
	c = LOAD_OK(text);
	config_destroy(c);

	/* 198 bytes: an error. */
	memset(value, 'y', 196);
	value[196] = '\0';
	snprintf(text, sizeof(text), "[track a]\nfile = /run/a\n; %s\n", value);
	EXPECT_ERRORS(text, "3: line is longer than 197 bytes");

	/*
	 * 250 bytes: one error, and the rest of the line is not taken for a
	 * key of its own ("zzz...zzz = x" would be an unknown key).
	 */
	memset(value, 'z', 231);
	value[231] = '\0';
	snprintf(text, sizeof(text), "[track a]\nfile = /run/a\napplication_name = %s\nfall = 2\n",
		 value);
	CHECK_INT_EQ(strcspn(strstr(text, "application_name"), "\n"), 250);
	EXPECT_ERRORS(text, "3: line is longer than 197 bytes");

	memset(value, 'z', 240);
	memcpy(value + 200, " ; port = 1 = 2", 15);
	value[240] = '\0';
	snprintf(text, sizeof(text), "[track a]\nfile = /run/a\n%s\nport = x\n", value);
	EXPECT_ERRORS(text, "3: line is longer than 197 bytes",
		      "4: invalid value \"x\" for port: expected an integer");

	/* A long section header. */
	memset(value, 'n', 240);
	value[240] = '\0';
	snprintf(text, sizeof(text), "[track %s]\nfile = /run/a\n", value);
	EXPECT_ERRORS(text, "1: line is longer than 197 bytes",
		      "2: key \"file\" outside of any section",
		      ": no [track NAME] section: nothing to do");
}

static void test_nul_byte(void)
{
	static const char text[] = "[track a]\nfile = /run/a\nport = 54\0" "32\nfall = 3\n";

	EXPECT_ERRORS_LEN(text, sizeof(text) - 1, "3: line contains a NUL byte");

	static const char text2[] = "[track a]\nfile = /run/a\n\0\n";

	EXPECT_ERRORS_LEN(text2, sizeof(text2) - 1, "3: line contains a NUL byte");
}

static void test_unknown_key_and_section(void)
{
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\ncolour = blue\n",
		      "3: unknown key \"colour\" in section [track a]");
	EXPECT_ERRORS("[global]\nfile_check_interval = 1s\nverbose = yes\n[track a]\nfile = /a\n",
		      "3: unknown key \"verbose\" in section [global]");
	/* There is no password key: passwords only through a passfile. */
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\npassword = secret\n",
		      "3: unknown key \"password\" in section [track a]");
	/* Keys are case-sensitive. */
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\nPort = 5432\n",
		      "3: unknown key \"Port\" in section [track a]");
	/* A global key in a track and the reverse. */
	EXPECT_ERRORS("[global]\nport = 1\n[track a]\nfile = /a\nsyslog_facility = local0\n",
		      "2: unknown key \"port\" in section [global]",
		      "5: unknown key \"syslog_facility\" in section [track a]");

	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\n\n[frobnicate]\n",
		      "4: " UNKNOWN_SECTION("frobnicate"));
	/* Section names are case-sensitive. */
	EXPECT_ERRORS("[Global]\n[track a]\nfile = /a\n", "1: " UNKNOWN_SECTION("Global"));
	EXPECT_ERRORS("[track]\nfile = /a\n[track a]\nfile = /a\n",
		      "1: " UNKNOWN_SECTION("track"));
	/* Keys under a bad header are not reported one by one. */
	EXPECT_ERRORS("[nonsense]\nfoo = 1\nbar = 2\n[track a]\nfile = /a\n",
		      "1: " UNKNOWN_SECTION("nonsense"));
}

static void test_track_names(void)
{
	char text[512], name[80];
	struct trackd_config *c;

	/* 64 characters is the longest name. */
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), "[track %s]\nfile = /a\n", name);
	c = LOAD_OK(text);
	if (c) {
		CHECK_STR_EQ(c->tracks[0].name, name);
		config_destroy(c);
	}

	/* The section is named whole in messages, even when long. */
	snprintf(text, sizeof(text), "[track %s]\nfile = /a\ncolour = blue\n", name);
	char expected[256];

	snprintf(expected, sizeof(expected), "3: unknown key \"colour\" in section [track %s]",
		 name);
	EXPECT_ERRORS(text, expected);

	memset(name, 'n', 65);
	name[65] = '\0';
	snprintf(text, sizeof(text), "[track %s]\nfile = /a\n[track b]\nfile = /b\n", name);
	snprintf(expected, sizeof(expected),
		 "1: invalid track name \"%s\": use 1 to 64 of A-Z a-z 0-9 _ . -", name);
	EXPECT_ERRORS(text, expected);

	EXPECT_ERRORS("[track a/b]\nfile = /a\n[track b]\nfile = /b\n",
		      "1: invalid track name \"a/b\": use 1 to 64 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS("[track a b]\nfile = /a\n[track b]\nfile = /b\n",
		      "1: invalid track name \"a b\": use 1 to 64 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS("[track ]\nfile = /a\n[track b]\nfile = /b\n",
		      "1: invalid track name \"\": use 1 to 64 of A-Z a-z 0-9 _ . -");
}

static void test_duplicates(void)
{
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\nport = 5432\nport = 5433\n",
		      "4: duplicate key \"port\"");
	/* A duplicate is an error even when the first value was bad. */
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\nrise = 0\nrise = 2\n",
		      "3: invalid value \"0\" for rise: must be between 1 and 100",
		      "4: duplicate key \"rise\"");
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\nfile = /nonexistent/b\n", "3: duplicate key \"file\"");
	EXPECT_ERRORS("[global]\nfile_check_interval = 1s\nfile_check_interval = 1s\n"
		      "[track a]\nfile = /a\n",
		      "3: duplicate key \"file_check_interval\"");
	EXPECT_ERRORS("[global]\n[track a]\nfile = /a\n[global]\n",
		      "4: duplicate section [global]");

	EXPECT_ERRORS("[track a]\n"            /* 1 */
		      "file = /tmp/t/a\n"      /* 2 */
		      "\n"                     /* 3 */
		      "[track a]\n"            /* 4: duplicate track name */
		      "file = /tmp/t/a2\n"     /* 5 */
		      "file = /tmp/t/a3\n"     /* 6: not reported, the section is */
		      "\n"                     /* 7 */
		      "[track b]\n"            /* 8 */
		      "file = /tmp/t/a\n",     /* 9: same file as track a */
		      "4: duplicate track \"a\" (first defined at line 1)",
		      "8: track \"b\": file /tmp/t/a is already written by track \"a\"");
}

static void test_bad_values(void)
{
#define TRACK_A "[track a]\nfile = /nonexistent/a\n"
	EXPECT_ERRORS(TRACK_A "interval = fast\n",
		      "3: invalid value \"fast\" for interval: expected a duration like 250ms or 2s");
	EXPECT_ERRORS(TRACK_A "timeout = 2sec\n",
		      "3: invalid value \"2sec\" for timeout: expected a duration like 250ms or 2s");
	EXPECT_ERRORS(TRACK_A "timeout = -1s\n",
		      "3: invalid value \"-1s\" for timeout: expected a duration like 250ms or 2s");
	EXPECT_ERRORS(TRACK_A "timeout =\n",
		      "3: invalid value \"\" for timeout: expected a duration like 250ms or 2s");
	EXPECT_ERRORS(TRACK_A "interval = 5ms\n",
		      "3: invalid value \"5ms\" for interval: must be between 10ms and 1h");
	EXPECT_ERRORS(TRACK_A "interval = 0\n",
		      "3: invalid value \"0\" for interval: must be between 10ms and 1h");
	EXPECT_ERRORS(TRACK_A "connect_timeout = 99ms\n",
		      "3: invalid value \"99ms\" for connect_timeout: must be between 100ms and 1h");
	EXPECT_ERRORS(TRACK_A "connect_timeout = 3601s\n",
		      "3: invalid value \"3601s\" for connect_timeout: must be between 100ms and 1h");
	EXPECT_ERRORS(TRACK_A "accept_interval = 5ms\n",
		      "3: invalid value \"5ms\" for accept_interval: must be between 10ms and 1h, "
		      "or 0 to disable");
	EXPECT_ERRORS(TRACK_A "interval = 99999999999999999999h\n",
		      "3: invalid value \"99999999999999999999h\" for interval: expected a duration "
		      "like 250ms or 2s");
	EXPECT_ERRORS("[global]\nfile_check_interval = 20ms\n" TRACK_A,
		      "2: invalid value \"20ms\" for file_check_interval: must be between 100ms "
		      "and 10s");
	EXPECT_ERRORS("[global]\nfile_check_interval = 11s\n" TRACK_A,
		      "2: invalid value \"11s\" for file_check_interval: must be between 100ms "
		      "and 10s");
	EXPECT_ERRORS(TRACK_A "rise = 0\n",
		      "3: invalid value \"0\" for rise: must be between 1 and 100");
	EXPECT_ERRORS(TRACK_A "fall = 101\n",
		      "3: invalid value \"101\" for fall: must be between 1 and 100");
	EXPECT_ERRORS(TRACK_A "rise = 2.5\n", "3: invalid value \"2.5\" for rise: expected an integer");
	EXPECT_ERRORS(TRACK_A "rise = two\n", "3: invalid value \"two\" for rise: expected an integer");
	EXPECT_ERRORS(TRACK_A "fall = 99999999999999999999\n",
		      "3: invalid value \"99999999999999999999\" for fall: expected an integer");
	EXPECT_ERRORS(TRACK_A "value_primary = 255\n",
		      "3: invalid value \"255\" for value_primary: must be between -254 and 254");
	EXPECT_ERRORS(TRACK_A "value_down = -255\n",
		      "3: invalid value \"-255\" for value_down: must be between -254 and 254");
	EXPECT_ERRORS(TRACK_A "value_stopped = 4294967296\n",
		      "3: invalid value \"4294967296\" for value_stopped: must be between -254 "
		      "and 254");
	EXPECT_ERRORS(TRACK_A "port = 0\n",
		      "3: invalid value \"0\" for port: must be between 1 and 65535");
	EXPECT_ERRORS(TRACK_A "port = 65536\n",
		      "3: invalid value \"65536\" for port: must be between 1 and 65535");
	EXPECT_ERRORS(TRACK_A "port = postgres\n",
		      "3: invalid value \"postgres\" for port: expected an integer");
	EXPECT_ERRORS(TRACK_A "sslmode = sometimes\n",
		      "3: invalid value \"sometimes\" for sslmode: expected one of disable, allow, "
		      "prefer, require, verify-ca, verify-full");
	EXPECT_ERRORS(TRACK_A "sslmode = Require\n",
		      "3: invalid value \"Require\" for sslmode: expected one of disable, allow, "
		      "prefer, require, verify-ca, verify-full");
	EXPECT_ERRORS("[global]\nsyslog_facility = kern\n" TRACK_A,
		      "2: invalid value \"kern\" for syslog_facility: expected one of daemon, user, "
		      "local0, local1, local2, local3, local4, local5, local6, local7");
	EXPECT_ERRORS("[track a]\nfile = run/a\n",
		      "2: invalid value \"run/a\" for file: must be an absolute path");
	EXPECT_ERRORS("[track a]\nfile =\n",
		      "2: invalid value \"\" for file: must be an absolute path");
	EXPECT_ERRORS(TRACK_A "passfile = pgpass\n",
		      "3: invalid value \"pgpass\" for passfile: must be an absolute path");

	char text[256], name[80];

	memset(name, 'x', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), TRACK_A "application_name = %s\n", name);
	char expected[256];

	snprintf(expected, sizeof(expected),
		 "3: invalid value \"%s\" for application_name: longer than 63 bytes", name);
	EXPECT_ERRORS(text, expected);
	name[63] = '\0';
	snprintf(text, sizeof(text), TRACK_A "application_name = %s\n", name);
	struct trackd_config *c = LOAD_OK(text);

	if (c)
		CHECK_STR_EQ(PG(&c->tracks[0]).application_name, name);
	config_destroy(c);
#undef TRACK_A
}

static void test_missing_file_key(void)
{
	EXPECT_ERRORS("[global]\nfile_check_interval = 1s\n\n[track nofile]\nport = 5432\n",
		      "4: track \"nofile\": missing required key \"file\"");
	/* Reported at its own header, also when another section follows. */
	EXPECT_ERRORS("[track a]\nport = 5432\n\n[track b]\nfile = /b\n[track c]\n[global]\n",
		      "1: track \"a\": missing required key \"file\"",
		      "6: track \"c\": missing required key \"file\"");
	/* A bad file value is not also reported as missing. */
	EXPECT_ERRORS("[track a]\nfile = a\n",
		      "2: invalid value \"a\" for file: must be an absolute path");
}

static void test_syntax(void)
{
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\nthis line has no equals sign\n",
		      "3: syntax error: expected KEY = VALUE");
	EXPECT_ERRORS("[track a]\nfile = /nonexistent/a\n[track b\nfile = /nonexistent/b\n",
		      "3: syntax error: section header without ']'",
		      "4: duplicate key \"file\"");
	/* A key before any section. */
	EXPECT_ERRORS("port = 5432\n[track a]\nfile = /a\n",
		      "1: key \"port\" outside of any section");
}

static void test_no_tracks_and_no_file(void)
{
	EXPECT_ERRORS("", ": no [track NAME] section: nothing to do");
	EXPECT_ERRORS("[global]\nfile_check_interval = 1s\n",
		      ": no [track NAME] section: nothing to do");

	char path[4200];
	struct conf_errors errs = { 0 };

	snprintf(path, sizeof(path), "%s/does-not-exist.conf", dir);
	CHECK(config_load(path, &errs) == NULL);
	CHECK_INT_EQ(errs.count, 1);
	if (errs.count == 1) {
		char expected[4300];

		snprintf(expected, sizeof(expected), "%s: cannot open: No such file or directory",
			 path);
		CHECK_STR_EQ(errs.lines[0], expected);
	}
	conf_errors_finish(&errs);
	CHECK_INT_EQ(errs.count, 0);
	CHECK(errs.lines == NULL);
}

static void test_all_errors_in_one_run(void)
{
	char text[2048], long_line[300];

	memset(long_line, 'z', 231);
	long_line[231] = '\0';
	snprintf(text, sizeof(text),
		 "[global]\n"                       /* 1 */
		 "file_check_interval = 20ms\n"     /* 2  out of range */
		 "[track a]\n"                      /* 3 */
		 "file = /tmp/t/a\n"                /* 4 */
		 "colour = blue\n"                  /* 5  unknown key */
		 "interval = soon\n"                /* 6  bad duration */
		 "rise = 0\n"                       /* 7  out of range */
		 "port = 5432\n"                    /* 8 */
		 "port = 5433\n"                    /* 9  duplicate key */
		 "application_name = %s\n"          /* 10 250-byte line */
		 "fall = 2\n"                       /* 11 */
		 "[track b]\n"                      /* 12 missing file */
		 "port = 5432\n"                    /* 13 */
		 "[nonsense]\n"                     /* 14 unknown section */
		 "[track c]\n"                      /* 15 */
		 "file = /tmp/t/c\n"                /* 16 */
		 "value_primary = 255\n"            /* 17 out of range */
		 "this is not a key\n"              /* 18 syntax */
		 "x = 1\n",                          /* 19 unknown key */
		 long_line);
	EXPECT_ERRORS(text,
		      "2: invalid value \"20ms\" for file_check_interval: must be between 100ms "
		      "and 10s",
		      "5: unknown key \"colour\" in section [track a]",
		      "6: invalid value \"soon\" for interval: expected a duration like 250ms or 2s",
		      "7: invalid value \"0\" for rise: must be between 1 and 100",
		      "9: duplicate key \"port\"",
		      "10: line is longer than 197 bytes",
		      "12: track \"b\": missing required key \"file\"",
		      "14: " UNKNOWN_SECTION("nonsense"),
		      "17: invalid value \"255\" for value_primary: must be between -254 and 254",
		      "18: syntax error: expected KEY = VALUE",
		      "19: unknown key \"x\" in section [track c]");
}

/* Host names are resolved on the loop: no warning for any kind of host. */
static void test_host_names(void)
{
	struct capture cap;
	char path[4200], *out;
	struct conf_errors errs;
	struct trackd_config *c;

	log_init("pgtrackd", true, 0);
	capture_begin(&cap, dir);
	c = load("[track dns]\nfile = /a\nhost = db.example.com\n"
		 "[track ip]\nfile = /b\nhost = 10.1.2.3\n"
		 "[track ip6]\nfile = /c\nhost = ::1\n"
		 "[track sock]\nfile = /d\nhost = /var/run/postgresql\n"
		 "[track both]\nfile = /e\nhost = db.example.com\nhostaddr = 10.1.2.3\n",
		 path, sizeof(path), &errs);
	out = capture_end(&cap);

	CHECK(c != NULL);
	CHECK_INT_EQ(errs.count, 0);
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	CHECK(strstr(out, "DNS") == NULL);
	free(out);
	config_destroy(c);
	conf_errors_finish(&errs);
}

/* What a file gives on the log while it loads (warnings do not fail it). */
static char *load_log(const char *text, int *n_errors)
{
	struct capture cap;
	char path[4200], *out;
	struct conf_errors errs;
	struct trackd_config *c;

	log_init("pgtrackd", true, 0);
	capture_begin(&cap, dir);
	c = load(text, path, sizeof(path), &errs);
	out = capture_end(&cap);
	*n_errors = (int)errs.count;
	config_destroy(c);
	conf_errors_finish(&errs);
	return out;
}

/* The priority layout: -t warns when keepalived would clamp a value or an ordering breaks. */
static void test_priority_layout_warnings(void)
{
	char *out;
	int n;

	/* The defaults on base 200, three nodes: silent. */
	out = load_log("[track a]\nfile = /a\nnode = n1\npeer.n2 = 10.0.0.2\npeer.n3 = 10.0.0.3\n", &n);
	CHECK_INT_EQ(n, 0);
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	free(out);

	/* The old layout's primary on base 200: clamped. */
	out = load_log("[track a]\nfile = /a\nvalue_primary = 100\n", &n);
	CHECK_INT_EQ(n, 0);
	CHECK_INT_EQ(count_substr(out, "warning:"), 1);
	CHECK(strstr(out, ":1: track \"a\": value_primary 100 on base_priority 200 gives priority "
			  "300, which keepalived clamps to 254: it no longer differs from its "
			  "neighbours") != NULL);
	free(out);

	/* base_priority 0: no clamp check; FAULT values are never priorities. */
	out = load_log("[track a]\nfile = /a\nbase_priority = 0\nvalue_primary = 100\n"
		       "value_standby = 90\nvalue_lagging = -254\n", &n);
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	free(out);

	/* Below 1 is clamped too; the lowest rank counts the peers. */
	out = load_log("[track a]\nfile = /a\nnode = x\nbase_priority = 10\nvalue_primary = 20\n"
		       "value_standby = -8\nvalue_lagging = -30\npeer.b = 10.0.0.2\n"
		       "peer.c = 10.0.0.3\nrank_step = 1\n", &n);
	CHECK(strstr(out, "value_standby minus the lowest rank -10 on base_priority 10 gives "
			  "priority 0, which keepalived clamps to 1") != NULL);
	CHECK(strstr(out, "value_lagging -30 on base_priority 10 gives priority -20, which "
			  "keepalived clamps to 1") != NULL);
	free(out);

	/* Orderings: the primary above the standbys, lagging below every rank. */
	out = load_log("[track a]\nfile = /a\nvalue_primary = 50\nvalue_standby = 50\n"
		       "value_lagging = 49\nnode = a\npeer.b = 10.0.0.2\n", &n);
	CHECK(strstr(out, "value_primary 50 is not above value_standby 50") != NULL);
	CHECK(strstr(out, "value_lagging 49 is not below the lowest ranked standby value 40 "
			  "(value_standby - 1 peers x rank_step 10)") != NULL);
	free(out);

	/* Peers without node: ties cannot be broken the same way everywhere. */
	out = load_log("[track a]\nfile = /a\npeer.b = 10.0.0.2\npeer.c = 10.0.0.3\n", &n);
	CHECK(strstr(out, ":1: track \"a\": peers without node: this node cannot place itself in "
			  "the peers' naming, so it concedes every tie of WAL positions; set node = "
			  "NAME, the name the other nodes give this one") != NULL);
	free(out);
	/* Two nodes: never two standbys beside a primary; no warning. */
	out = load_log("[track a]\nfile = /a\npeer.b = 10.0.0.2\n", &n);
	CHECK_INT_EQ(count_substr(out, "warning:"), 0);
	free(out);
}

static void test_node_key(void)
{
	EXPECT_ERRORS("[track a]\nfile = /a\nnode = no/slash\n",
		      "1: track \"a\": invalid node name \"no/slash\": use 1 to 32 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS("[track a]\nfile = /a\nnode = b\npeer.b = 10.0.0.2\n",
		      "4: track \"a\": peer.b names this node (node = b)");
	EXPECT_ERRORS("[track a]\nfile = /a\nnode = 123456789012345678901234567890123\n",
		      "3: invalid value \"123456789012345678901234567890123\" for node: longer than "
		      "32 bytes");
	EXPECT_ERRORS("[track a]\nfile = /a\nbase_priority = 255\n",
		      "3: invalid value \"255\" for base_priority: must be between 0 and 254");
}

#define BAD_ADDRESS "the address must be a numeric address, a host name or a unix socket directory"

static bool equal_tracks(const char *text_a, const char *text_b, int line)
{
	struct trackd_config *a = load_ok(text_a, line), *b = load_ok(text_b, line);
	bool eq = false;

	if (a && b)
		eq = track_settings_equal(&a->tracks[a->n_tracks - 1], &b->tracks[b->n_tracks - 1]);
	config_destroy(a);
	config_destroy(b);
	return eq;
}

#define EQUAL_TRACKS(a, b) equal_tracks(a, b, __LINE__)

static void test_track_settings_equal(void)
{
	const char *base = "[track a]\nfile = /a\ninterval = 2s\napplication_name = x\n";

	CHECK(EQUAL_TRACKS(base, base));
	/* Elsewhere in the file, keys in another order, comments: still equal. */
	CHECK(EQUAL_TRACKS(base, "; moved down\n[track z]\nfile = /z\n\n"
				 "[track a]\napplication_name = x ; same\n"
				 "interval = 2000ms\nfile = /a\n"));
	/* A default given explicitly is the same setting. */
	CHECK(EQUAL_TRACKS("[track a]\nfile = /a\n", "[track a]\nfile = /a\nrise = 2\n"
						     "application_name = pgtrackd\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /a\ninterval = 3s\napplication_name = x\n"));
	CHECK(!EQUAL_TRACKS(base, "[track b]\nfile = /a\ninterval = 2s\napplication_name = x\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /b\ninterval = 2s\napplication_name = x\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /a\ninterval = 2s\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /a\ninterval = 2s\napplication_name = x\n"
				  "value_down = -253\n"));

	/* line is ignored, everything else counts. */
	struct track_settings x, y;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	x.line = 1;
	y.line = 99;
	CHECK(track_settings_equal(&x, &y));
	y.values[TRACK_STOPPED] = 1;
	CHECK(!track_settings_equal(&x, &y));
}

#define TRACK_A "[track a]\nfile = /nonexistent/a\n"

static void test_peers(void)
{
	struct trackd_config *c = LOAD_OK(
		"[track a]\n"                            /* 1 */
		"file = /nonexistent/a\n"                        /* 2 */
		"port = 5433\n"                          /* 3 */
		"peer.sock = /var/run/postgresql\n"      /* 4 */
		"peer.sock-port = /tmp 5434\n"           /* 5 */
		"peer.v4 = 192.0.2.11\n"                 /* 6 */
		"peer.v4_port = 192.0.2.12   6432\n"     /* 7 */
		"peer.v6 = 2001:db8::13\n"               /* 8 */
		"peer.v6.port = ::1\t65535\n"            /* 9 */
		"\n"                                     /* 10 */
		"peer.Node-7.b_ = 10.0.0.1 1\n"          /* 11 */
		"peer.12345678901234567890123456789012 = 192.0.2.14\n" /* 12 */
		"[track b]\n"                            /* 13 */
		"file = /nonexistent/b\n"                        /* 14 */
		"peer.v4 = 192.0.2.21\n");               /* 15 */

	if (!c)
		return;
	CHECK_INT_EQ(c->n_tracks, 2);
	if (c->n_tracks != 2) {
		config_destroy(c);
		return;
	}

	const struct track_settings *t = &c->tracks[0];

	CHECK_INT_EQ(PG(t).n_peers, 8);
	CHECK_STR_EQ(PG(t).peers[0].name, "sock");
	CHECK_STR_EQ(PG(t).peers[0].host, "/var/run/postgresql");
	CHECK_STR_EQ(PG(t).peers[0].hostaddr, "");
	CHECK_INT_EQ(PG(t).peers[0].port, 0);
	CHECK_INT_EQ(peer_line(t, 0), 4);

	CHECK_STR_EQ(PG(t).peers[1].name, "sock-port");
	CHECK_STR_EQ(PG(t).peers[1].host, "/tmp");
	CHECK_STR_EQ(PG(t).peers[1].hostaddr, "");
	CHECK_INT_EQ(PG(t).peers[1].port, 5434);
	CHECK_INT_EQ(peer_line(t, 1), 5);

	CHECK_STR_EQ(PG(t).peers[2].name, "v4");
	CHECK_STR_EQ(PG(t).peers[2].host, "");
	CHECK_STR_EQ(PG(t).peers[2].hostaddr, "192.0.2.11");
	CHECK_INT_EQ(PG(t).peers[2].port, 0);

	CHECK_STR_EQ(PG(t).peers[3].name, "v4_port");
	CHECK_STR_EQ(PG(t).peers[3].hostaddr, "192.0.2.12");
	CHECK_INT_EQ(PG(t).peers[3].port, 6432);

	CHECK_STR_EQ(PG(t).peers[4].name, "v6");
	CHECK_STR_EQ(PG(t).peers[4].host, "");
	CHECK_STR_EQ(PG(t).peers[4].hostaddr, "2001:db8::13");
	CHECK_INT_EQ(PG(t).peers[4].port, 0);

	CHECK_STR_EQ(PG(t).peers[5].name, "v6.port");
	CHECK_STR_EQ(PG(t).peers[5].hostaddr, "::1");
	CHECK_INT_EQ(PG(t).peers[5].port, 65535);

	CHECK_STR_EQ(PG(t).peers[6].name, "Node-7.b_");
	CHECK_STR_EQ(PG(t).peers[6].hostaddr, "10.0.0.1");
	CHECK_INT_EQ(PG(t).peers[6].port, 1);
	CHECK_INT_EQ(peer_line(t, 6), 11);

	CHECK_STR_EQ(PG(t).peers[7].name, "12345678901234567890123456789012");
	CHECK_INT_EQ(peer_line(t, 7), 12);
	/* The track's own port is untouched by the peers'. */
	CHECK_INT_EQ(PG(t).port, 5433);

	/* Peers are per track. */
	t = &c->tracks[1];
	CHECK_INT_EQ(PG(t).n_peers, 1);
	CHECK_STR_EQ(PG(t).peers[0].name, "v4");
	CHECK_STR_EQ(PG(t).peers[0].hostaddr, "192.0.2.21");
	CHECK_INT_EQ(peer_line(t, 0), 15);
	config_destroy(c);
}

static void test_peer_errors(void)
{
	/* Names. */
	EXPECT_ERRORS(TRACK_A "peer.x y = 192.0.2.1\n",
		      "3: invalid peer name \"x y\": use 1 to 32 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS(TRACK_A "peer.b/c = 192.0.2.1\n",
		      "3: invalid peer name \"b/c\": use 1 to 32 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS(TRACK_A "peer. = 192.0.2.1\n",
		      "3: invalid peer name \"\": use 1 to 32 of A-Z a-z 0-9 _ . -");
	EXPECT_ERRORS(TRACK_A "peer.123456789012345678901234567890123 = 192.0.2.1\n",
		      "3: invalid peer name \"123456789012345678901234567890123\": use 1 to 32 "
		      "of A-Z a-z 0-9 _ . -");
	/* Keys are case-sensitive: "Peer.b" is no peer. */
	EXPECT_ERRORS(TRACK_A "Peer.b = 192.0.2.1\n",
		      "3: unknown key \"Peer.b\" in section [track a]");
	EXPECT_ERRORS(TRACK_A "peer = 192.0.2.1\n",
		      "3: unknown key \"peer\" in section [track a]");
	/* Only in tracks. */
	EXPECT_ERRORS("[global]\npeer.b = 192.0.2.1\n" TRACK_A,
		      "2: unknown key \"peer.b\" in section [global]");

	/* Duplicates, also with another address. */
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1\npeer.c = 192.0.2.2\npeer.b = 192.0.2.3\n",
		      "5: duplicate key \"peer.b\"");
	/* Names are case-sensitive: b and B are two peers. */
	struct trackd_config *c = LOAD_OK(TRACK_A "peer.b = 192.0.2.1\npeer.B = 192.0.2.2\n");

	if (c)
		CHECK_INT_EQ(PG(&c->tracks[0]).n_peers, 2);
	config_destroy(c);

	/* At most 8. */
	EXPECT_ERRORS(TRACK_A "peer.p1 = 192.0.2.1\npeer.p2 = 192.0.2.2\npeer.p3 = 192.0.2.3\n"
			      "peer.p4 = 192.0.2.4\npeer.p5 = 192.0.2.5\npeer.p6 = 192.0.2.6\n"
			      "peer.p7 = 192.0.2.7\npeer.p8 = 192.0.2.8\npeer.p9 = 192.0.2.9\n"
			      "peer.p10 = 192.0.2.10\n",
		      "11: too many peers: at most 8 per track",
		      "12: too many peers: at most 8 per track");
	/* A duplicate of one of the 8 is reported as a duplicate. */
	EXPECT_ERRORS(TRACK_A "peer.p1 = 192.0.2.1\npeer.p2 = 192.0.2.2\npeer.p3 = 192.0.2.3\n"
			      "peer.p4 = 192.0.2.4\npeer.p5 = 192.0.2.5\npeer.p6 = 192.0.2.6\n"
			      "peer.p7 = 192.0.2.7\npeer.p8 = 192.0.2.8\npeer.p1 = 192.0.2.9\n",
		      "11: duplicate key \"peer.p1\"");

	/* Addresses: numeric, a host name (resolved on the loop) or a socket directory. */
	c = LOAD_OK(TRACK_A "peer.b = db.example.com\npeer.c = localhost 5433\n"
			    "peer.d = 192.0.2.1\npeer.e = /tmp\n");
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[0].host, "db.example.com");
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[0].hostaddr, "");
	CHECK_INT_EQ(PG(&c->tracks[0]).peers[0].port, 0);
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[1].host, "localhost");
	CHECK_INT_EQ(PG(&c->tracks[0]).peers[1].port, 5433);
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[2].host, "");
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[2].hostaddr, "192.0.2.1");
	CHECK_STR_EQ(PG(&c->tracks[0]).peers[3].host, "/tmp");
	config_destroy(c);
	/* A track's host: each entry of the list must be one of the same kinds. */
	c = LOAD_OK(TRACK_A "host = db1.example,192.0.2.1,/tmp,::1\n");
	config_destroy(c);
	EXPECT_ERRORS(TRACK_A "host = db1.example,db!2\n",
		      "1: track \"a\": host \"db1.example,db!2\" is not a socket directory, a numeric "
		      "address or a host name");
	EXPECT_ERRORS(TRACK_A "host = 10.0.0\n",
		      "1: track \"a\": host \"10.0.0\" is not a socket directory, a numeric "
		      "address or a host name");
	EXPECT_ERRORS(TRACK_A "peer.b = db!example\n",
		      "3: invalid value \"db!example\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = db..example\n",
		      "3: invalid value \"db..example\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = -db\n",
		      "3: invalid value \"-db\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2\n",
		      "3: invalid value \"192.0.2\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.256\n",
		      "3: invalid value \"192.0.2.256\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = [2001:db8::1]\n",
		      "3: invalid value \"[2001:db8::1]\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b = var/run/postgresql\n",
		      "3: invalid value \"var/run/postgresql\" for peer.b: " BAD_ADDRESS);
	EXPECT_ERRORS(TRACK_A "peer.b =\n",
		      "3: invalid value \"\" for peer.b: expected ADDRESS [PORT]");

	/* Ports. */
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 99999\n",
		      "3: invalid value \"192.0.2.1 99999\" for peer.b: port must be between 1 and "
		      "65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 0\n",
		      "3: invalid value \"192.0.2.1 0\" for peer.b: port must be between 1 and "
		      "65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 -5432\n",
		      "3: invalid value \"192.0.2.1 -5432\" for peer.b: port must be between 1 and "
		      "65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 postgres\n",
		      "3: invalid value \"192.0.2.1 postgres\" for peer.b: port must be between 1 "
		      "and 65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 5432 5433\n",
		      "3: invalid value \"192.0.2.1 5432 5433\" for peer.b: port must be between 1 "
		      "and 65535");
	EXPECT_ERRORS(TRACK_A "peer.b = /tmp 54x\n",
		      "3: invalid value \"/tmp 54x\" for peer.b: port must be between 1 and 65535");
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 99999999999999999999\n",
		      "3: invalid value \"192.0.2.1 99999999999999999999\" for peer.b: port must be "
		      "between 1 and 65535");

	/* A bad peer does not count: the next one with its name is no duplicate. */
	c = LOAD_OK(TRACK_A "peer.b = 192.0.2.1\n");
	config_destroy(c);
	EXPECT_ERRORS(TRACK_A "peer.b = 192.0.2.1 0\npeer.b = 192.0.2.1\npeer.b = 192.0.2.2\n",
		      "3: invalid value \"192.0.2.1 0\" for peer.b: port must be between 1 and "
		      "65535",
		      "5: duplicate key \"peer.b\"");

	/* Every error of a file in one run. */
	EXPECT_ERRORS(TRACK_A "peer.x y = 1\npeer.c = db!example.com\npeer.d = ::1 70000\n"
			      "max_lag = lots\n",
		      "3: invalid peer name \"x y\": use 1 to 32 of A-Z a-z 0-9 _ . -",
		      "4: invalid value \"db!example.com\" for peer.c: " BAD_ADDRESS,
		      "5: invalid value \"::1 70000\" for peer.d: port must be between 1 and 65535",
		      "6: invalid value \"lots\" for max_lag: expected a size like 8192, 64kB, 16MB "
		      "or 1GB");
}

static void test_guard_keys(void)
{
	struct trackd_config *c = LOAD_OK(TRACK_A "value_stale = -200\nvalue_conflict = 254\n"
						  "value_lagging = 0\nmax_lag = 16MB\n"
						  "max_lag_time = 30s\n");

	if (c) {
		const struct track_settings *t = &c->tracks[0];

		CHECK_INT_EQ(t->values[TRACK_STALE], -200);
		CHECK_INT_EQ(t->values[TRACK_CONFLICT], 254);
		CHECK_INT_EQ(t->values[TRACK_LAGGING], 0);
		CHECK_INT_EQ(PG(t).max_lag_bytes, INT64_C(16) << 20);
		CHECK_INT_EQ(PG(t).max_lag_time_ms, 30000);
	}
	config_destroy(c);

	/* Sizes. */
	static const struct {
		const char *text;
		int64_t bytes;
	} sizes[] = {
		{ "0", 0 },
		{ "8192", 8192 },
		{ "8192B", 8192 },
		{ "64kB", 65536 },
		{ "16MB", INT64_C(16) << 20 },
		{ "1GB", INT64_C(1) << 30 },
		{ "1TB", INT64_C(1) << 40 },
		{ "1024TB", INT64_C(1) << 50 },
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), TRACK_A "max_lag = %s\n", sizes[i].text);
		c = LOAD_OK(text);
		if (c)
			CHECK_INT_EQ(PG(&c->tracks[0]).max_lag_bytes, sizes[i].bytes);
		config_destroy(c);
	}
	EXPECT_ERRORS(TRACK_A "max_lag = x\n",
		      "3: invalid value \"x\" for max_lag: expected a size like 8192, 64kB, 16MB or "
		      "1GB");
	EXPECT_ERRORS(TRACK_A "max_lag = 16mb\n",
		      "3: invalid value \"16mb\" for max_lag: expected a size like 8192, 64kB, 16MB "
		      "or 1GB");
	EXPECT_ERRORS(TRACK_A "max_lag = -1\n",
		      "3: invalid value \"-1\" for max_lag: expected a size like 8192, 64kB, 16MB or "
		      "1GB");
	EXPECT_ERRORS(TRACK_A "max_lag =\n",
		      "3: invalid value \"\" for max_lag: expected a size like 8192, 64kB, 16MB or "
		      "1GB");
	EXPECT_ERRORS(TRACK_A "max_lag = 1025TB\n",
		      "3: invalid value \"1025TB\" for max_lag: must be between 0 and "
		      "1125899906842624 bytes");
	EXPECT_ERRORS(TRACK_A "max_lag = 99999999999999999999\n",
		      "3: invalid value \"99999999999999999999\" for max_lag: expected a size like "
		      "8192, 64kB, 16MB or 1GB");
	EXPECT_ERRORS(TRACK_A "max_lag = 1MB\nmax_lag = 2MB\n", "4: duplicate key \"max_lag\"");

	/* max_lag_time: 0 disables, else 1s..24h. */
	static const struct {
		const char *text;
		int64_t ms;
	} times[] = {
		{ "0", 0 }, { "0s", 0 }, { "0ms", 0 }, { "1s", 1000 }, { "1000ms", 1000 },
		{ "90", 90000 }, { "5m", 300000 }, { "24h", 86400000 }, { "86400s", 86400000 },
	};

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), TRACK_A "max_lag_time = %s\n", times[i].text);
		c = LOAD_OK(text);
		if (c)
			CHECK_INT_EQ(PG(&c->tracks[0]).max_lag_time_ms, times[i].ms);
		config_destroy(c);
	}
	EXPECT_ERRORS(TRACK_A "max_lag_time = 999ms\n",
		      "3: invalid value \"999ms\" for max_lag_time: must be between 1s and 24h, or 0 "
		      "to disable");
	EXPECT_ERRORS(TRACK_A "max_lag_time = 86401s\n",
		      "3: invalid value \"86401s\" for max_lag_time: must be between 1s and 24h, or "
		      "0 to disable");
	EXPECT_ERRORS(TRACK_A "max_lag_time = 25h\n",
		      "3: invalid value \"25h\" for max_lag_time: must be between 1s and 24h, or 0 "
		      "to disable");
	EXPECT_ERRORS(TRACK_A "max_lag_time = 10 s\n",
		      "3: invalid value \"10 s\" for max_lag_time: expected a duration like 250ms or "
		      "2s");

	/* The new values: -254..254 like the others. */
	EXPECT_ERRORS(TRACK_A "value_stale = -255\n",
		      "3: invalid value \"-255\" for value_stale: must be between -254 and 254");
	EXPECT_ERRORS(TRACK_A "value_conflict = 255\n",
		      "3: invalid value \"255\" for value_conflict: must be between -254 and 254");
	EXPECT_ERRORS(TRACK_A "value_lagging = low\n",
		      "3: invalid value \"low\" for value_lagging: expected an integer");
}

static void test_track_settings_equal_peers(void)
{
	const char *base = TRACK_A "peer.b = 192.0.2.12\npeer.c = /tmp 5434\n";

	CHECK(EQUAL_TRACKS(base, base));
	/* Peers on other lines (the only difference): equal. */
	CHECK(EQUAL_TRACKS(base, "\n\n; moved\n" TRACK_A "\n\npeer.b = 192.0.2.12\n\n"
				 "peer.c = /tmp   5434 ; comment\n"));
	/* A changed address, port, name or peer count is a change. */
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.13\npeer.c = /tmp 5434\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12 5432\npeer.c = /tmp 5434\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\npeer.c = /tmp\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\npeer.c = /var/tmp 5434\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\npeer.d = /tmp 5434\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\n"));
	CHECK(!EQUAL_TRACKS(base, TRACK_A "peer.b = 192.0.2.12\npeer.c = /tmp 5434\npeer.d = ::1\n"));
	/* The new keys count too. */
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /nonexistent/a\npeer.b = 192.0.2.12\n"
				  "peer.c = /tmp 5434\nmax_lag = 1MB\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /nonexistent/a\npeer.b = 192.0.2.12\n"
				  "peer.c = /tmp 5434\nmax_lag_time = 10s\n"));
	CHECK(!EQUAL_TRACKS(base, "[track a]\nfile = /nonexistent/a\npeer.b = 192.0.2.12\n"
				  "peer.c = /tmp 5434\nvalue_lagging = -49\n"));

	/* On constructed settings: every peer's line is ignored, its address is not. */
	static struct track_settings x, y;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	x.n_probe_keys = y.n_probe_keys = PG_MAX_PEERS;
	for (int i = 0; i < PG_MAX_PEERS; i++) {
		snprintf(x.probe_keys[i].key, sizeof(x.probe_keys[i].key), "peer.p%d", i);
		snprintf(y.probe_keys[i].key, sizeof(y.probe_keys[i].key), "peer.p%d", i);
		snprintf(x.probe_keys[i].value, sizeof(x.probe_keys[i].value), "192.0.2.%d", i);
		snprintf(y.probe_keys[i].value, sizeof(y.probe_keys[i].value), "192.0.2.%d", i);
		x.probe_keys[i].line = 10 + i;
		y.probe_keys[i].line = 100 + 7 * i;
	}
	CHECK(track_settings_equal(&x, &y));
	/* Comparing does not change its arguments. */
	CHECK_INT_EQ(x.probe_keys[7].line, 17);
	CHECK_INT_EQ(y.probe_keys[7].line, 149);
	y.probe_keys[7].value[8] = '3';
	CHECK(!track_settings_equal(&x, &y));
	y.probe_keys[7].value[8] = '7';
	CHECK(track_settings_equal(&x, &y));
	snprintf(y.probe_keys[7].value, sizeof(y.probe_keys[7].value), "192.0.2.7 5432");
	CHECK(!track_settings_equal(&x, &y));
	snprintf(y.probe_keys[7].value, sizeof(y.probe_keys[7].value), "192.0.2.7");
	snprintf(y.probe_keys[8].key, sizeof(y.probe_keys[8].key), "max_lag");
	snprintf(y.probe_keys[8].value, sizeof(y.probe_keys[8].value), "1");
	y.n_probe_keys++;
	CHECK(!track_settings_equal(&x, &y));
}
#undef TRACK_A

/* The INI layer on its own: what the callbacks see. */
struct seen_events {
	char log[1024];
	int ends;
};

static void ev_section(struct conf_parser *p, const char *name, void *user)
{
	struct seen_events *s = user;
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof(s->log) - n, "%d:[%s] ", conf_line(p), name);
}

static void ev_key(struct conf_parser *p, const char *section, const char *key,
		   const char *value, void *user)
{
	struct seen_events *s = user;
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof(s->log) - n, "%d:%s.%s=%s ", conf_line(p), section, key,
		 value);
	if (strcmp(key, "bad") == 0)
		conf_error(p, "bad key here");
	if (strcmp(key, "earlier") == 0)
		conf_error_at(p, 1, "about line %d", 1);
}

static void ev_end(struct conf_parser *p, void *user)
{
	struct seen_events *s = user;

	s->ends++;
	CHECK(conf_path(p) != NULL);
}

static void test_conf_parser(void)
{
	static const struct conf_callbacks cb = {
		.section = ev_section, .key = ev_key, .end = ev_end,
	};
	char path[4200], expected[4400];
	struct seen_events s = { "", 0 };
	struct conf_errors errs = { 0 };
	const char *text = "top = 1\n[one]\n  a = x y \n\n[two words]\nb=\nbad = 1\nearlier = 2\n";

	new_file(path, sizeof(path), text, strlen(text));
	CHECK(!conf_parse_file(path, &cb, &s, &errs));
	CHECK_STR_EQ(s.log, "1:.top=1 2:[one] 3:one.a=x y 5:[two words] 6:two words.b= "
			    "7:two words.bad=1 8:two words.earlier=2 ");
	CHECK_INT_EQ(s.ends, 1);
	CHECK_INT_EQ(errs.count, 2);
	if (errs.count == 2) {
		snprintf(expected, sizeof(expected), "%s:7: bad key here", path);
		CHECK_STR_EQ(errs.lines[0], expected);
		snprintf(expected, sizeof(expected), "%s:1: about line 1", path);
		CHECK_STR_EQ(errs.lines[1], expected);
	}
	conf_errors_finish(&errs);

	/* Many errors: the list grows. */
	for (int i = 0; i < 100; i++)
		conf_errors_add(&errs, "error %d", i);
	CHECK_INT_EQ(errs.count, 100);
	CHECK_STR_EQ(errs.lines[99], "error 99");
	CHECK(!errs.oom);
	conf_errors_finish(&errs);
}

static void test_shared_name_rules(void)
{
	static const struct conf_key table[] = {
		{ .name = "a", .type = CONF_INT }, { .name = "b", .type = CONF_INT }, { 0 },
	};

	CHECK(conf_valid_name("main", 4, 8));
	CHECK(conf_valid_name("n-1.db_2", 8, 8));
	CHECK(!conf_valid_name("n-1.db_2x", 9, 8));
	CHECK(!conf_valid_name("", 0, 8));
	CHECK(!conf_valid_name("a b", 3, 8));
	CHECK(conf_valid_name("app, rest", 3, 8)); /* only the first len characters */
	CHECK(!conf_valid_name("d\"b", 3, 8));
	CHECK(conf_was_set(table, 2, "b"));
	CHECK(!conf_was_set(table, 2, "a"));
	CHECK(!conf_was_set(table, 3, "c"));
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_defaults();
	test_accept_interval_default();
	test_every_key();
	test_layout();
	test_hash_is_no_inline_comment();
	test_line_length();
	test_nul_byte();
	test_unknown_key_and_section();
	test_track_names();
	test_duplicates();
	test_bad_values();
	test_missing_file_key();
	test_syntax();
	test_no_tracks_and_no_file();
	test_all_errors_in_one_run();
	test_host_names();
	test_priority_layout_warnings();
	test_node_key();
	test_track_settings_equal();
	test_peers();
	test_peer_errors();
	test_guard_keys();
	test_track_settings_equal_peers();
	test_conf_parser();
	test_shared_name_rules();
	scratch_remove(dir);
	CHECK_DONE();
}
