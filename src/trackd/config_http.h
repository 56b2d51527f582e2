/*
 * config_http: pgtrackd.conf's [http] section, the HTTP health listener's
 * settings (src/trackd/trackd_http.h runs it).
 *
 *   [http]
 *   listen = 127.0.0.1:8008 [::1]:8008   numeric address:port, several
 *                                        separated by spaces or commas;
 *                                        none (the default): no listener
 *   allow = 10.0.0.0/8 fd00::/64         client networks; unset: loopback
 *                                        only (127.0.0.0/8 and ::1)
 *   default_track = main                 the track of the unprefixed
 *                                        endpoints; required with several
 *                                        tracks, else the only one
 *   max_connections = 64                 client connections at once
 *   timeout = 10s                        idle and whole-request limit
 */
#ifndef PGTRACKD_CONFIG_HTTP_H
#define PGTRACKD_CONFIG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "httpd.h"

#define HTTP_MAX_LISTEN 8
#define HTTP_MAX_ALLOW 16
#define HTTP_ADDR_MAX 64 /* "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535" */

struct trackd_config;

struct http_settings {
	/* As written, for conf_set; parsed into the fields below. */
	char listen_text[CONF_STR_SIZE];
	char allow_text[CONF_STR_SIZE];
	char default_track[CONF_STR_SIZE]; /* after the checks: always a track's name when on */
	int max_connections;
	int64_t timeout_ms;

	char listen[HTTP_MAX_LISTEN][HTTP_ADDR_MAX];
	size_t n_listen; /* 0: the listener is off */
	struct httpd_net allow[HTTP_MAX_ALLOW];
	size_t n_allow;

	/* Where the section and its keys stand, for messages. */
	char origin[256];
	int line; /* 0: no [http] section */
	uint64_t seen;
	int default_track_line;
};

extern const struct conf_key config_http_keys[];

/* Sets the defaults (the listener off). */
void config_http_init(struct http_settings *h);
/* The [http] header; false (reported) if it is a duplicate. */
bool config_http_section(struct conf_parser *p, struct http_settings *h);
/* A key of [http]; every error is reported at its line. */
void config_http_key(struct conf_parser *p, struct http_settings *h, const char *key,
		     const char *value);
/* After every section: default_track against the tracks, the default allow-list. */
void config_http_check(struct conf_parser *p, struct trackd_config *c);
/* Whether the listener must be recreated to go from a to b (default_track does not count). */
bool config_http_listener_equal(const struct http_settings *a, const struct http_settings *b);

#endif
