/*
 * The configuration: the trackd loader config_load() (src/trackd/trackd_config.h)
 * on good and bad files, and the INI layer under it (src/common/conf.h).
 * The probe's keys: test_config_probe.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "check.h"
#include "conf.h"
#include "conf_fixture.h"

static void test_defaults(void)
{
	struct trackd_config *c = LOAD_OK("[track a]\nfile = /run/pgtrackd/a\n");

	if (!c)
		return;
	CHECK_INT_EQ(c->global.file_check_interval_ms, 5000);
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
	CHECK_INT_EQ(PG(t).accept_full_interval_ms, 60000);
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

/* test_every_key's track b: the bounds, and defaults per track. */
static void check_every_key_b(const struct track_settings *t)
{
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

	check_every_key_b(&c->tracks[1]);
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
}

/* The built-in probe's connection keys, and the names and paths. */
static void test_bad_connection_values(void)
{
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
	test_every_key();
	test_layout();
	test_hash_is_no_inline_comment();
	test_line_length();
	test_nul_byte();
	test_unknown_key_and_section();
	test_track_names();
	test_duplicates();
	test_bad_values();
	test_bad_connection_values();
	test_missing_file_key();
	test_no_tracks_and_no_file();
	test_conf_parser();
	test_shared_name_rules();
	scratch_remove(dir);
	CHECK_DONE();
}
