/*
 * conf_fixture: loading pgtrackd.conf texts from a scratch directory and
 * checking their errors, for test_conf.c and test_config_probe.c.
 */
#ifndef PGTRACK_CONF_FIXTURE_H
#define PGTRACK_CONF_FIXTURE_H

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
static inline struct pg_settings pg_of(const struct track_settings *t)
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
static inline int peer_line(const struct track_settings *t, int i)
{
	struct pg_settings s = pg_of(t);

	return i < s.n_peers ? t->probe_keys[s.peers[i].item].line : -1;
}
static int file_no;

/* Writes len bytes of text to a new file in the scratch directory. */
static inline void new_file(char *path, size_t size, const char *text, size_t len)
{
	snprintf(path, size, "%s/c%d.conf", dir, ++file_no);
	if (write_bytes(path, text, len) < 0) {
		perror(path);
		exit(2);
	}
}

static inline struct trackd_config *load(const char *text, char *path, size_t size,
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
static inline void expect_errors_len(int line, const char *text, size_t len, ...)
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
static inline struct trackd_config *load_ok(const char *text, int line)
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

/* What a file gives on the log while it loads (warnings do not fail it). */
static inline char *load_log(const char *text, int *n_errors)
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

static inline bool equal_tracks(const char *text_a, const char *text_b, int line)
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
#define TRACK_A "[track a]\nfile = /nonexistent/a\n"
#define BAD_ADDRESS "the address must be a numeric address, a host name or a unix socket directory"

#endif
