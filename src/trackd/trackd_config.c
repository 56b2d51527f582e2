#include "trackd_config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "config_probe.h"
#include "duration.h"
#include "module_loader.h"
#include "track_file.h"
#include "util.h"


#define G(field) offsetof(struct global_settings, field)
const struct conf_key config_global_keys[] = {
	{ .name = "file_check_interval", .type = CONF_DURATION, .offset = G(file_check_interval_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(10), .default_value = "5s" },
	{ .name = "reminder_interval", .type = CONF_DURATION, .offset = G(reminder_interval_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(86400), .default_value = "1m" },
	{ .name = "ready_timeout", .type = CONF_DURATION, .offset = G(ready_timeout_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(300), .default_value = "10s",
	  .flags = CONF_ZERO_OK },
	{ .name = "syslog_facility", .type = CONF_CHOICE, .offset = G(syslog_facility),
	  .default_value = "daemon",
	  .choices = log_facility_names },
	{ .name = "realtime_priority", .type = CONF_INT, .offset = G(realtime_priority),
	  .min = 0, .max = 99, .default_value = "40" },
	{ .name = "realtime_limit", .type = CONF_DURATION, .offset = G(realtime_limit_ms),
	  .min = DURATION_MS(10), .max = DURATION_SEC(60), .default_value = "1s" },
	{ 0 },
};
#undef G

#define T(field) offsetof(struct track_settings, field)
/* One key per row of the state table (track_state.h): value_STATE. */
#define VALUE_KEY(st, nm, ky, df)                                                     \
	{ .name = ky, .type = CONF_INT, .offset = T(values) + TRACK_##st * sizeof(int),     \
	  .min = -254, .max = 254, .default_value = df },
const struct conf_key config_track_keys[] = {
	{ .name = "file", .type = CONF_PATH, .offset = T(file), .flags = CONF_REQUIRED },
	{ .name = "interval", .type = CONF_DURATION, .offset = T(interval_ms),
	  .min = DURATION_MS(10), .max = DURATION_SEC(3600), .default_value = "1s" },
	{ .name = "rise", .type = CONF_INT, .offset = T(rise), .min = 1, .max = 100,
	  .default_value = "2" },
	{ .name = "fall", .type = CONF_INT, .offset = T(fall), .min = 1, .max = 100,
	  .default_value = "2" },
	TRACK_STATE_TABLE(VALUE_KEY)
	{ .name = "module", .type = CONF_PATH, .offset = T(module) },
	{ .name = "base_priority", .type = CONF_INT, .offset = T(base_priority), .min = 0,
	  .max = 254, .default_value = "200" },
	{ 0 },
};
#undef T
#undef VALUE_KEY

enum section_kind { SECTION_NONE, SECTION_GLOBAL, SECTION_HTTP, SECTION_TRACK, SECTION_BAD };

struct loader {
	struct trackd_config *config;
	struct conf_errors *errs;
	enum section_kind kind;
	uint64_t seen;           /* keys set in the current section */
	uint64_t global_seen;
	bool global_started;
	size_t alloc;
	bool oom;
};

static struct track_settings *current_track(struct loader *l)
{
	return &l->config->tracks[l->config->n_tracks - 1];
}

static void finish_track(struct conf_parser *p, struct loader *l)
{
	if (l->kind == SECTION_TRACK) {
		struct track_settings *t = current_track(l);
		char what[TRACK_NAME_MAX + 16];

		snprintf(what, sizeof(what), "track \"%s\"", t->name);
		conf_check_required(p, config_track_keys, l->seen, t->line, what);
		config_check_module(p, l->config, t);
	}
}

static void on_section(struct conf_parser *p, const char *name, void *user)
{
	struct loader *l = user;

	finish_track(p, l);
	l->seen = 0;
	if (strcmp(name, "global") == 0) {
		if (l->global_started)
			conf_error(p, "duplicate section [global]");
		l->global_started = true;
		l->kind = SECTION_GLOBAL;
		return;
	}
	if (strcmp(name, "http") == 0) {
		l->kind = config_http_section(p, &l->config->http) ? SECTION_HTTP : SECTION_BAD;
		return;
	}
	if (strncmp(name, "track ", 6) != 0) {
		conf_error(p, "unknown section \"%s\"", name);
		l->kind = SECTION_BAD;
		return;
	}

	const char *track = name + 6;

	if (!conf_valid_name(track, strlen(track), TRACK_NAME_MAX)) {
		conf_error(p, "invalid track name \"%s\": use 1 to %d of A-Z a-z 0-9 _ . -",
			   track, TRACK_NAME_MAX);
		l->kind = SECTION_BAD;
		return;
	}
	for (size_t i = 0; i < l->config->n_tracks; i++) {
		const struct track_settings *first = &l->config->tracks[i];

		if (strcmp(first->name, track) != 0)
			continue;
		if (strcmp(first->origin, conf_path(p)) == 0)
			conf_error(p, "duplicate track \"%s\" (first defined at line %d)", track,
				   first->line);
		else
			conf_error(p, "duplicate track \"%s\" (first defined at %s:%d)", track,
				   first->origin, first->line);
		l->kind = SECTION_BAD;
		return;
	}
	if (l->config->n_tracks == l->alloc) {
		size_t alloc = l->alloc ? l->alloc * 2 : 4;
		struct track_settings *tracks =
			realloc(l->config->tracks, alloc * sizeof(*tracks));

		if (!tracks) {
			l->oom = true;
			l->kind = SECTION_BAD;
			return;
		}
		l->config->tracks = tracks;
		l->alloc = alloc;
	}
	l->config->n_tracks++;

	struct track_settings *t = current_track(l);

	memset(t, 0, sizeof(*t));
	conf_defaults(config_track_keys, t);
	snprintf(t->name, sizeof(t->name), "%s", track);
	snprintf(t->origin, sizeof(t->origin), "%s", conf_path(p));
	t->line = conf_line(p);
	l->kind = SECTION_TRACK;
}

static void on_key(struct conf_parser *p, const char *section, const char *key,
		   const char *value, void *user)
{
	struct loader *l = user;

	switch (l->kind) {
	case SECTION_NONE:
		conf_error(p, "key \"%s\" outside of any section", key);
		return;
	case SECTION_BAD:
		return; /* the header was reported */
	case SECTION_GLOBAL:
		if (!conf_set(p, config_global_keys, &l->config->global, &l->seen, key, value))
			conf_error(p, "unknown key \"%s\" in section [%s]", key, section);
		return;
	case SECTION_HTTP:
		config_http_key(p, &l->config->http, key, value);
		return;
	case SECTION_TRACK:
		if (!conf_set(p, config_track_keys, current_track(l), &l->seen, key, value))
			config_stash_probe_key(p, current_track(l), key, value);
		return;
	}
}

/* What the writer would refuse; a missing directory is retried at run time. */
static void check_file(struct conf_parser *p, const struct track_settings *t)
{
	char why[CONF_STR_SIZE + 160];
	int r = t->file[0] ? track_file_check_path(t->file, why, sizeof(why)) : 0;

	if (r == -EISDIR)
		config_track_error(p, t, "file %s names a directory, not a file", t->file);
	else if (r == -EPERM && geteuid() == 0 && strstr(why, "neither root nor"))
		/* root checking a directory made for the daemon's user (the unit's tmpfiles). */
		config_track_error(p, t, "file %s: %s; check as the user pgtrackd runs as "
				   "(runuser -u USER -- pgtrackd -t)", t->file, why);
	else if (r == -ELOOP || r == -ENOTDIR || r == -EPERM)
		config_track_error(p, t, "file %s: %s", t->file, why);
	else if (r < 0 && r != -ENOENT)
		config_track_warn(p, t, "cannot check the directory of %s: %s", t->file, why);
}

/* A section ends with its file: a file of conf.d starts outside of any section. */
static void on_file_end(struct conf_parser *p, void *user)
{
	struct loader *l = user;

	finish_track(p, l);
	l->kind = SECTION_NONE;
	l->seen = 0;
}

static void on_end(struct conf_parser *p, void *user)
{
	struct loader *l = user;
	struct trackd_config *c = l->config;

	if (l->oom)
		conf_errors_add(l->errs, "%s: out of memory", conf_path(p));
	for (size_t i = 0; i < c->n_tracks; i++) {
		for (size_t j = 0; j < i; j++) {
			if (c->tracks[i].file[0] && c->tracks[j].file[0] &&
			    track_file_same_path(c->tracks[i].file, c->tracks[j].file))
				config_track_error(p, &c->tracks[i],
						   "file %s is already written by track \"%s\"",
						   c->tracks[i].file, c->tracks[j].name);
		}
		c->tracks[i].reminder_interval_ms = c->global.reminder_interval_ms;
		check_file(p, &c->tracks[i]);
		config_check_probe(p, &c->tracks[i]);
	}
	if (c->n_tracks == 0)
		conf_errors_add(l->errs, "%s: no [track NAME] section: nothing to do", conf_path(p));
	else
		config_http_check(p, c);
}

/* DIR/conf.d next to the main file. */
static char *conf_d_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL;

	if (!slash)
		return strdup("conf.d");
	if (asprintf(&dir, "%.*s/conf.d", (int)(slash - path), path) < 0)
		return NULL;
	return dir;
}

struct trackd_config *config_load(const char *path, struct conf_errors *errs)
{
	static const struct conf_callbacks callbacks = {
		.section = on_section, .key = on_key, .file_end = on_file_end, .end = on_end,
	};
	struct trackd_config *config = calloc(1, sizeof(*config));
	struct loader l = { .config = config, .errs = errs };

	if (!config || !(config->path = strdup(path)) || !(config->conf_d = conf_d_of(path))) {
		if (config)
			free(config->path);
		free(config);
		conf_errors_add(errs, "%s: out of memory", path);
		return NULL;
	}
	conf_defaults(config_global_keys, &config->global);
	config_http_init(&config->http);
	if (!conf_parse_tree(path, config->conf_d, &callbacks, &l, errs)) {
		config_destroy(config);
		return NULL;
	}
	return config;
}

void config_destroy(struct trackd_config *config)
{
	if (!config)
		return;
	free(config->conf_d);
	for (size_t i = 0; i < config->n_modules; i++)
		module_unload(config->modules[i]);
	free(config->modules);
	free(config->tracks);
	free(config->path);
	free(config);
}

bool track_settings_equal(const struct track_settings *a, const struct track_settings *b)
{
	static struct track_settings x, y; /* large: not on the stack */

	/* memcpy keeps the zeroed padding that memcmp looks at. */
	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	x.line = y.line = 0;
	memset(x.origin, 0, sizeof(x.origin)); /* moved to conf.d: the same track */
	memset(y.origin, 0, sizeof(y.origin));
	/* The probe's keys are compared by what they mean (config_probe.c). */
	memset(x.probe_keys, 0, sizeof(x.probe_keys));
	memset(y.probe_keys, 0, sizeof(y.probe_keys));
	x.n_probe_keys = y.n_probe_keys = 0;
	return memcmp(&x, &y, sizeof(x)) == 0 && config_probe_equal(a, b);
}
