#include "config_http.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "trackd_config.h"

#define H(field) offsetof(struct http_settings, field)
const struct conf_key config_http_keys[] = {
	{ .name = "listen", .type = CONF_STRING, .offset = H(listen_text) },
	{ .name = "allow", .type = CONF_STRING, .offset = H(allow_text) },
	{ .name = "default_track", .type = CONF_STRING, .offset = H(default_track) },
	{ .name = "max_connections", .type = CONF_INT, .offset = H(max_connections), .min = 1,
	  .max = 1024, .default_value = "64" },
	{ .name = "timeout", .type = CONF_DURATION, .offset = H(timeout_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(300), .default_value = "10s" },
	{ 0 },
};
#undef H

/* Loopback only, when allow is not set. */
static const char *const default_allow[] = { "127.0.0.0/8", "::1" };

void config_http_init(struct http_settings *h)
{
	memset(h, 0, sizeof(*h));
	conf_defaults(config_http_keys, h);
}

bool config_http_section(struct conf_parser *p, struct http_settings *h)
{
	if (h->line) {
		if (strcmp(h->origin, conf_path(p)) == 0)
			conf_error(p, "duplicate section [http] (first at line %d)", h->line);
		else
			conf_error(p, "duplicate section [http] (first at %s:%d)", h->origin, h->line);
		return false;
	}
	snprintf(h->origin, sizeof(h->origin), "%s", conf_path(p));
	h->line = conf_line(p);
	return true;
}

/* The next word of a list separated by spaces or commas; its length, 0 at the end. */
static size_t next_word(const char **s)
{
	size_t n;

	*s += strspn(*s, " \t,");
	n = strcspn(*s, " \t,");
	return n;
}

static void parse_listen(struct conf_parser *p, struct http_settings *h, const char *text)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t n;

	for (const char *s = text; (n = next_word(&s)) > 0; s += n) {
		char addr[HTTP_ADDR_MAX];

		if (n >= sizeof(addr) || (memcpy(addr, s, n), addr[n] = '\0',
					   httpd_parse_listen(addr, &ss, &len) < 0)) {
			conf_error(p, "invalid value \"%.*s\" for listen: not a numeric "
				   "address:port (such as 127.0.0.1:8008 or [::1]:8008)", (int)n, s);
			continue;
		}
		for (size_t i = 0; i < h->n_listen; i++) {
			if (strcmp(h->listen[i], addr) == 0) {
				conf_error(p, "listen: %s is given twice", addr);
				goto next;
			}
		}
		if (h->n_listen == HTTP_MAX_LISTEN) {
			conf_error(p, "listen: more than %d addresses", HTTP_MAX_LISTEN);
			return;
		}
		memcpy(h->listen[h->n_listen++], addr, n + 1);
next:;
	}
}

static void parse_allow(struct conf_parser *p, struct http_settings *h, const char *text)
{
	size_t n;

	for (const char *s = text; (n = next_word(&s)) > 0; s += n) {
		char net[HTTP_ADDR_MAX];

		if (h->n_allow == HTTP_MAX_ALLOW) {
			conf_error(p, "allow: more than %d networks", HTTP_MAX_ALLOW);
			return;
		}
		if (n >= sizeof(net) || (memcpy(net, s, n), net[n] = '\0',
					  httpd_parse_net(net, &h->allow[h->n_allow]) < 0)) {
			conf_error(p, "invalid value \"%.*s\" for allow: not a network (an "
				   "address, or ADDRESS/BITS with the host bits zero, such as "
				   "10.0.0.0/8 or fd00::/64)", (int)n, s);
			continue;
		}
		h->n_allow++;
	}
	if (h->n_allow == 0 && text[strspn(text, " \t,")] == '\0')
		conf_error(p, "allow is empty: name the client networks (0.0.0.0/0 ::/0 for "
			   "every client), or leave it out for loopback only");
}

void config_http_key(struct conf_parser *p, struct http_settings *h, const char *key,
		     const char *value)
{
	uint64_t before = h->seen;

	if (!conf_set(p, config_http_keys, h, &h->seen, key, value)) {
		conf_error(p, "unknown key \"%s\" in section [http]", key);
		return;
	}
	if (before == h->seen)
		return; /* a duplicate, reported */
	if (strcmp(key, "listen") == 0)
		parse_listen(p, h, h->listen_text);
	else if (strcmp(key, "allow") == 0)
		parse_allow(p, h, h->allow_text);
	else if (strcmp(key, "default_track") == 0)
		h->default_track_line = conf_line(p);
}

static void tracks_list(const struct trackd_config *c, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < c->n_tracks; i++) {
		size_t len = strlen(buf);

		snprintf(buf + len, size - len, "%s%s", i ? ", " : "", c->tracks[i].name);
	}
}

void config_http_check(struct conf_parser *p, struct trackd_config *c)
{
	struct http_settings *h = &c->http;
	char names[512];

	if (!conf_was_set(config_http_keys, h->seen, "allow")) {
		for (size_t i = 0; i < sizeof(default_allow) / sizeof(default_allow[0]); i++)
			httpd_parse_net(default_allow[i], &h->allow[h->n_allow++]);
	}
	tracks_list(c, names, sizeof(names));
	if (h->default_track[0]) {
		bool found = false;

		for (size_t i = 0; i < c->n_tracks; i++)
			found |= strcmp(c->tracks[i].name, h->default_track) == 0;
		if (!found)
			conf_error_in(p, h->origin, h->default_track_line,
				      "default_track \"%s\": no such track (the tracks are %s)",
				      h->default_track, names);
		return;
	}
	if (c->n_tracks == 1)
		snprintf(h->default_track, sizeof(h->default_track), "%s", c->tracks[0].name);
	else if (h->n_listen > 0 && c->n_tracks > 1)
		conf_error_in(p, h->origin, h->line,
			      "[http]: set default_track, the track /primary, /replica and the "
			      "other unprefixed endpoints answer for: one of %s (each track "
			      "answers under /track/NAME/ too)", names);
}

bool config_http_listener_equal(const struct http_settings *a, const struct http_settings *b)
{
	if (a->n_listen != b->n_listen || a->n_allow != b->n_allow ||
	    a->max_connections != b->max_connections || a->timeout_ms != b->timeout_ms)
		return false;
	for (size_t i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return false;
	return memcmp(a->allow, b->allow, a->n_allow * sizeof(a->allow[0])) == 0;
}
