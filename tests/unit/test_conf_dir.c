/* pgtrackd.conf with conf.d/ (trackd_config.c, conf_parse_tree): one file per track. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "trackd_config.h"
#include "testutil.h"

static char dir[256];
static char main_path[512], conf_d[512];

static void put(const char *name, const char *text)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", conf_d, name);
	if (write_text(path, text) < 0) {
		perror(path);
		exit(2);
	}
}

static void reset(const char *main_text)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir '%s'", conf_d, conf_d);
	if (system(cmd) != 0)
		exit(2);
	if (write_text(main_path, main_text) < 0)
		exit(2);
}

static bool has_error(const struct conf_errors *errs, const char *file, int line,
		      const char *message)
{
	char want[2048];

	snprintf(want, sizeof(want), "%s:%d: %s", file, line, message);
	for (size_t i = 0; i < errs->count; i++)
		if (strcmp(errs->lines[i], want) == 0)
			return true;
	for (size_t i = 0; i < errs->count; i++)
		printf("  got: %s\n", errs->lines[i]);
	printf("  wanted: %s\n", want);
	return false;
}

static void test_tracks_from_conf_d_in_name_order(void)
{
	struct conf_errors errs = { 0 };
	static struct track_settings moved; /* large: not on the stack */
	struct trackd_config *c;
	char b[1024];

	reset("[global]\nreminder_interval = 2m\n[track a]\nfile = /run/pgtrackd/a\n");
	put("20-c.conf", "[track c]\nfile = /run/pgtrackd/c\n");
	put("10-b.conf", "; the b track\n[track b]\nfile = /run/pgtrackd/b\n");
	put("notes.txt", "[track ignored]\n");
	put(".hidden.conf", "[track hidden]\n");
	put("x.conf.dpkg-old", "[track old]\n");
	c = config_load(main_path, &errs);
	CHECK(c != NULL);
	if (!c) {
		conf_errors_finish(&errs);
		return;
	}
	CHECK_INT_EQ((int)c->n_tracks, 3);
	CHECK_STR_EQ(c->tracks[0].name, "a");
	CHECK_STR_EQ(c->tracks[1].name, "b");
	CHECK_STR_EQ(c->tracks[2].name, "c");
	snprintf(b, sizeof(b), "%s/10-b.conf", conf_d);
	CHECK_STR_EQ(c->tracks[1].origin, b);
	CHECK_INT_EQ(c->tracks[1].line, 2);
	CHECK_STR_EQ(c->tracks[0].origin, main_path);
	/* [global] of the main file applies to every track */
	CHECK(c->tracks[2].reminder_interval_ms == 120000);
	/* moving a track into conf.d changes nothing about it; another file does */
	moved = c->tracks[0];
	snprintf(moved.origin, sizeof(moved.origin), "%.200s", b);
	moved.line = 7;
	CHECK(track_settings_equal(&c->tracks[0], &moved));
	snprintf(moved.file, sizeof(moved.file), "/run/pgtrackd/elsewhere");
	CHECK(!track_settings_equal(&c->tracks[0], &moved));
	config_destroy(c);
	conf_errors_finish(&errs);
}

static void test_errors_name_their_file(void)
{
	struct conf_errors errs = { 0 };
	char b[1024], c[1024], d[1024];

	reset("[track a]\nfile = /run/pgtrackd/a\n");
	/* a section ends with its file: keys at the top of the next one are outside */
	put("b.conf", "[track b]\nfile = /run/pgtrackd/b\nbogus_key = 1\n");
	put("c.conf", "interval = 1s\n[track c]\nport = 5432\n");
	put("d.conf", "[track a]\nfile = /run/pgtrackd/other\n");
	snprintf(b, sizeof(b), "%s/b.conf", conf_d);
	snprintf(c, sizeof(c), "%s/c.conf", conf_d);
	snprintf(d, sizeof(d), "%s/d.conf", conf_d);
	CHECK(config_load(main_path, &errs) == NULL);
	CHECK(has_error(&errs, b, 3, "unknown key \"bogus_key\" in section [track b]"));
	CHECK(has_error(&errs, c, 1, "key \"interval\" outside of any section"));
	CHECK(has_error(&errs, c, 2, "track \"c\": missing required key \"file\""));
	{
		char msg[1100];

		snprintf(msg, sizeof(msg), "duplicate track \"a\" (first defined at %s:1)", main_path);
		CHECK(has_error(&errs, d, 1, msg));
	}
	CHECK_INT_EQ((int)errs.count, 4);
	conf_errors_finish(&errs);
}

static void test_conf_d_missing_or_not_a_directory(void)
{
	struct conf_errors errs = { 0 };
	struct trackd_config *c;
	char cmd[1200], want[1200];

	reset("[track a]\nfile = /run/pgtrackd/a\n");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", conf_d);
	CHECK(system(cmd) == 0);
	c = config_load(main_path, &errs);
	CHECK(c != NULL && c->n_tracks == 1);
	config_destroy(c);
	conf_errors_finish(&errs);

	CHECK(write_text(conf_d, "not a directory\n") == 0);
	CHECK(config_load(main_path, &errs) == NULL);
	snprintf(want, sizeof(want), "%s: cannot read the directory: %s", conf_d, strerror(ENOTDIR));
	CHECK(errs.count == 1 && strcmp(errs.lines[0], want) == 0);
	conf_errors_finish(&errs);
	unlink(conf_d);
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	snprintf(main_path, sizeof(main_path), "%s/pgtrackd.conf", dir);
	snprintf(conf_d, sizeof(conf_d), "%s/conf.d", dir);
	test_tracks_from_conf_d_in_name_order();
	test_errors_name_their_file();
	test_conf_d_missing_or_not_a_directory();
	scratch_remove(dir);
	CHECK_DONE();
}
