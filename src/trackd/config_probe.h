/*
 * config_probe: the keys of a track's probe, as config_load meets them.
 *
 * pgtrackd does not know the probes' keys: it keeps them as text
 * (track_settings.probe_keys) and asks the probe about them, the built-in
 * PostgreSQL probe (pg_settings_parse, for every problem at its line) or
 * the track's module (check_key, check_section), loaded once per
 * configuration and then run by the track.
 */
#ifndef PGTRACKD_CONFIG_PROBE_H
#define PGTRACKD_CONFIG_PROBE_H

#include "trackd_config.h"

/* An error at t's section line, or a warning in the log, about t: "track \"NAME\": ...". */
void config_track_say(struct conf_parser *p, const struct track_settings *t, bool error,
		      const char *fmt, ...) PRINTF_LIKE(4, 5);
#define config_track_error(p, t, ...) config_track_say(p, t, true, __VA_ARGS__)
#define config_track_warn(p, t, ...) config_track_say(p, t, false, __VA_ARGS__)

/* Keeps a key pgtrackd does not know for the probe (or an error). */
void config_stash_probe_key(struct conf_parser *p, struct track_settings *t, const char *key,
			    const char *value);
/* At the end of a track's section: loads and asks its module (or refuses unknown keys). */
void config_check_module(struct conf_parser *p, struct trackd_config *c,
			 struct track_settings *t);
/* At the end of the file: the built-in probe's keys, and the values' layout. */
void config_check_probe(struct conf_parser *p, const struct track_settings *t);

/*
 * Whether a and b give their probes the same settings: the built-in
 * probe's keys as it reads them (a default written out is no change),
 * a module's as text; lines do not count.
 */
bool config_probe_equal(const struct track_settings *a, const struct track_settings *b);

/* The probe's keys of t as a dictionary: the module's only (skips the built-in probe's) or all. */
void config_probe_dict(const struct track_settings *t, bool module_only,
		       struct pgtrackd_dict_item items[PROBE_MAX_KEYS], struct pgtrackd_dict *dict);

#endif
