/*
 * notify_config_http: pgtrack-notify.conf's [http] section, the optional
 * listener for /status and /metrics.  Part of notify_config.
 *
 *   [http]
 *   listen = 127.0.0.1:9188, [::1]:9188
 *   allow = 127.0.0.0/8, ::1, 10.0.0.0/8
 *   max_connections = 16
 *   timeout = 10s
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "notify_config.h"

#define S(field) offsetof(struct http_settings, field)
const struct conf_key notify_http_keys[] = {
	{ .name = "listen", .type = CONF_STRING, .offset = S(listen), .flags = CONF_REQUIRED },
	{ .name = "allow", .type = CONF_STRING, .offset = S(allow) },
	{ .name = "max_connections", .type = CONF_INT, .offset = S(max_connections),
	  .min = 1, .max = 1024, .default_value = "16" },
	{ .name = "timeout", .type = CONF_DURATION, .offset = S(timeout_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(3600), .default_value = "10s" },
	{ 0 },
};
#undef S

#define SEPARATORS " \t,"

/* The next token of a list (blanks or commas between); 0 at the end. */
static size_t next_token(const char **s)
{
	*s += strspn(*s, SEPARATORS);
	return strcspn(*s, SEPARATORS);
}

static void check_listen(struct conf_parser *p, struct notify_http_config *h, const char *s)
{
	struct sockaddr_storage seen[NOTIFY_HTTP_MAX_LISTEN];
	size_t len;

	h->n_listen = 0;
	for (; (len = next_token(&s)) > 0; s += len) {
		char addr[NOTIFY_HTTP_ADDR_SIZE];
		socklen_t alen;

		if (h->n_listen == NOTIFY_HTTP_MAX_LISTEN) {
			conf_error(p, "[http] listen: more than %d addresses", NOTIFY_HTTP_MAX_LISTEN);
			return;
		}
		snprintf(addr, sizeof(addr), "%.*s", (int)len, s);
		if (len >= sizeof(addr) ||
		    httpd_parse_listen(addr, &seen[h->n_listen], &alen) < 0) {
			conf_error(p, "[http] listen: \"%.*s\" is not a numeric address:port (such as "
				      "127.0.0.1:9188 or [::1]:9188; no host names)", (int)len, s);
			continue;
		}
		for (int i = 0; i < h->n_listen; i++) {
			if (memcmp(&seen[i], &seen[h->n_listen], sizeof(seen[i])) == 0) {
				conf_error(p, "[http] listen: %s is listed twice", addr);
				goto next;
			}
		}
		memcpy(h->listen[h->n_listen++], addr, sizeof(addr));
next:;
	}
	if (h->n_listen == 0)
		conf_error(p, "[http] listen: no address (remove the [http] section to turn the "
			      "listener off)");
}

static void check_allow(struct conf_parser *p, struct notify_http_config *h, const char *s)
{
	size_t len;

	h->n_allow = 0;
	for (; (len = next_token(&s)) > 0; s += len) {
		char net[NOTIFY_HTTP_ADDR_SIZE + 4];

		if (h->n_allow == NOTIFY_HTTP_MAX_ALLOW) {
			conf_error(p, "[http] allow: more than %d networks", NOTIFY_HTTP_MAX_ALLOW);
			return;
		}
		snprintf(net, sizeof(net), "%.*s", (int)len, s);
		if (len >= sizeof(net) || httpd_parse_net(net, &h->allow[h->n_allow]) < 0) {
			conf_error(p, "[http] allow: \"%.*s\" is not a network (such as 10.0.0.0/8, "
				      "fd00::/64 or a single address; the bits after the prefix "
				      "must be zero)", (int)len, s);
			continue;
		}
		h->n_allow++;
	}
	if (h->n_allow == 0)
		conf_error(p, "[http] allow: no network (leave the key out for loopback only)");
}

void notify_http_check_key(struct conf_parser *p, struct notify_config *c, const char *key)
{
	if (strcmp(key, "listen") == 0)
		check_listen(p, &c->http, c->http_keys.listen);
	else if (strcmp(key, "allow") == 0)
		check_allow(p, &c->http, c->http_keys.allow);
	else if (strcmp(key, "timeout") == 0 && c->http_keys.timeout_ms % 1000 != 0)
		conf_error(p, "[http] timeout: whole seconds only (libmicrohttpd's connection "
			      "timeout), not %lldms", (long long)c->http_keys.timeout_ms);
}

void notify_http_check_end(struct conf_parser *p, struct notify_config *c, uint64_t seen,
			   int line)
{
	struct notify_http_config *h = &c->http;

	h->enabled = line != 0;
	if (!h->enabled)
		return;
	conf_check_required(p, notify_http_keys, seen, line, "[http]");
	if (!conf_was_set(notify_http_keys, seen, "allow")) {
		/* Loopback only: /status names paths and pgbouncer's errors. */
		httpd_parse_net("127.0.0.0/8", &h->allow[0]);
		httpd_parse_net("::1", &h->allow[1]);
		h->n_allow = 2;
	}
	h->max_connections = (unsigned int)c->http_keys.max_connections;
	h->timeout_s = (unsigned int)(c->http_keys.timeout_ms / 1000);
}

bool notify_http_config_same(const struct notify_http_config *a,
			     const struct notify_http_config *b)
{
	if (a->enabled != b->enabled || a->n_listen != b->n_listen || a->n_allow != b->n_allow ||
	    a->max_connections != b->max_connections || a->timeout_s != b->timeout_s)
		return false;
	for (int i = 0; i < a->n_listen; i++) {
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return false;
	}
	for (int i = 0; i < a->n_allow; i++) {
		if (a->allow[i].family != b->allow[i].family || a->allow[i].bits != b->allow[i].bits ||
		    memcmp(a->allow[i].addr, b->allow[i].addr, sizeof(a->allow[i].addr)) != 0)
			return false;
	}
	return true;
}
