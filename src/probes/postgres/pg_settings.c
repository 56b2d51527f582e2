#include "pg_settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "resolver.h"
#include "sync_policy.h"


static const char *const sync_promotions[] = { "relaxed", "follower", NULL };
static const char *const sslmodes[] = {
	"disable", "allow", "prefer", "require", "verify-ca", "verify-full", NULL,
};

#define S(field) offsetof(struct pg_settings, field)
static const struct conf_key pg_keys[] = {
	{ .name = "host", .type = CONF_STRING, .offset = S(host) },
	{ .name = "hostaddr", .type = CONF_STRING, .offset = S(hostaddr) },
	{ .name = "port", .type = CONF_INT, .offset = S(port), .min = 1, .max = 65535 },
	{ .name = "dbname", .type = CONF_STRING, .offset = S(dbname) },
	{ .name = "user", .type = CONF_STRING, .offset = S(user) },
	{ .name = "passfile", .type = CONF_PATH, .offset = S(passfile) },
	{ .name = "sslmode", .type = CONF_CHOICE, .offset = S(sslmode), .choices = sslmodes },
	{ .name = "application_name", .type = CONF_STRING, .offset = S(application_name),
	  .default_value = "pgtrackd", .max = 63 },
	{ .name = "connect_timeout", .type = CONF_DURATION, .offset = S(connect_timeout_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(3600), .default_value = "2s" },
	{ .name = "timeout", .type = CONF_DURATION, .offset = S(timeout_ms),
	  .min = DURATION_MS(10), .max = DURATION_SEC(3600), .default_value = "1s" },
	/* Unset: the track's interval (pg_settings_parse). */
	{ .name = "accept_interval", .type = CONF_DURATION, .offset = S(accept_interval_ms),
	  .min = DURATION_MS(10), .max = DURATION_SEC(3600), .flags = CONF_ZERO_OK },
	{ .name = "accept_full_interval", .type = CONF_DURATION,
	  .offset = S(accept_full_interval_ms), .min = DURATION_SEC(1), .max = DURATION_SEC(3600),
	  .default_value = "1m" },
	{ .name = "max_lag", .type = CONF_SIZE, .offset = S(max_lag_bytes),
	  .min = 0, .max = INT64_C(1) << 50, .default_value = "0" },
	{ .name = "max_lag_time", .type = CONF_DURATION, .offset = S(max_lag_time_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(86400), .default_value = "0",
	  .flags = CONF_ZERO_OK },
	{ .name = "receiver_grace", .type = CONF_DURATION, .offset = S(receiver_grace_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(86400), .default_value = "10s",
	  .flags = CONF_ZERO_OK },
	{ .name = "node", .type = CONF_STRING, .offset = S(node), .max = PG_PEER_NAME_MAX },
	{ .name = "rank_tolerance", .type = CONF_SIZE, .offset = S(rank_tolerance),
	  .min = 0, .max = INT64_C(1) << 40, .default_value = "128kB" },
	{ .name = "rank_step", .type = CONF_INT, .offset = S(rank_step), .min = 1, .max = 50,
	  .default_value = "10" },
	{ .name = "sync_standby_names", .type = CONF_STRING, .offset = S(sync_standby_names) },
	{ .name = "sync_relax_after", .type = CONF_DURATION, .offset = S(sync_relax_after_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(3600), .default_value = "5s",
	  .flags = CONF_ZERO_OK },
	{ .name = "sync_catchup", .type = CONF_SIZE, .offset = S(sync_catchup),
	  .min = 0, .max = INT64_C(1) << 40, .default_value = "16MB" },
	{ .name = "sync_promotion", .type = CONF_CHOICE, .offset = S(sync_promotion),
	  .choices = sync_promotions, .default_value = "relaxed" },
	{ 0 },
};
#undef S

struct parse {
	struct pg_settings *s;
	const struct pgtrackd_dict *config;
	const char *track;
	pg_problem_fn problem;
	void *ctx;
	int count;
};

static void say_at(struct parse *ps, int item, bool section, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void say_at(struct parse *ps, int item, bool section, const char *fmt, ...)
{
	char message[CONF_STR_SIZE * 2 + 200];
	va_list ap;

	ps->count++;
	if (!ps->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	ps->problem(ps->ctx, item, section, message);
}

#define say(ps, item, ...) say_at(ps, item, false, __VA_ARGS__)
#define say_section(ps, item, ...) say_at(ps, item, true, __VA_ARGS__)

bool pg_settings_is_key(const char *key)
{
	if (strncmp(key, "peer.", 5) == 0)
		return true;
	for (const struct conf_key *k = pg_keys; k->name; k++)
		if (strcmp(k->name, key) == 0)
			return true;
	return false;
}

static bool valid_peer_name(const char *name)
{
	return conf_valid_name(name, strlen(name), PG_PEER_NAME_MAX);
}

static bool is_numeric_address(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* ADDRESS of "ADDRESS [PORT]": a socket directory, a numeric address or a host name. */
static bool set_peer_address(struct pg_peer_settings *peer, const char *address, size_t len)
{
	if (address[0] == '/' || address[0] == '@')
		snprintf(peer->host, sizeof(peer->host), "%s", address);
	else if (is_numeric_address(address) && len < sizeof(peer->hostaddr))
		memcpy(peer->hostaddr, address, len + 1);
	else if (resolver_valid_name(address))
		snprintf(peer->host, sizeof(peer->host), "%s", address);
	else
		return false;
	return true;
}

/*
 * peer.NAME = ADDRESS [PORT]: a numeric address, a host name (resolved on
 * the loop at every connect, pgconn.c) or a unix socket directory.
 */
static void add_peer(struct parse *ps, int item, const char *name, const char *value)
{
	struct pg_settings *s = ps->s;
	struct pg_peer_settings *peer;
	char address[CONF_STR_SIZE];
	const char *space;
	size_t len;

	if (!valid_peer_name(name)) {
		say(ps, item, "invalid peer name \"%s\": use 1 to %d of A-Z a-z 0-9 _ . -", name,
		    PG_PEER_NAME_MAX);
		return;
	}
	for (int i = 0; i < s->n_peers; i++) {
		if (strcmp(s->peers[i].name, name) == 0) {
			say(ps, item, "duplicate key \"peer.%s\"", name);
			return;
		}
	}
	if (s->n_peers == PG_MAX_PEERS) {
		say(ps, item, "too many peers: at most %d per track", PG_MAX_PEERS);
		return;
	}
	space = strpbrk(value, " \t");
	len = space ? (size_t)(space - value) : strlen(value);
	if (len == 0 || len >= sizeof(address)) {
		say(ps, item, "invalid value \"%s\" for peer.%s: expected ADDRESS [PORT]", value, name);
		return;
	}
	memcpy(address, value, len);
	address[len] = '\0';

	peer = &s->peers[s->n_peers];
	memset(peer, 0, sizeof(*peer));
	if (!set_peer_address(peer, address, len)) {
		say(ps, item, "invalid value \"%s\" for peer.%s: the address must be a numeric "
			      "address, a host name or a unix socket directory", value, name);
		return;
	}
	if (space) {
		char *end;
		long port;

		space += strspn(space, " \t");
		port = strtol(space, &end, 10);
		if (*space < '0' || *space > '9' || *end != '\0' || port < 1 || port > 65535) {
			say(ps, item, "invalid value \"%s\" for peer.%s: port must be between 1 and "
				      "65535", value, name);
			return;
		}
		peer->port = (int)port;
	}
	snprintf(peer->name, sizeof(peer->name), "%s", name);
	peer->item = item;
	s->n_peers++;
}

/* The section as a whole: the node's name and the host. */
static void check_section(struct parse *ps)
{
	const struct pg_settings *s = ps->s;

	if (s->node[0] && !valid_peer_name(s->node))
		say_section(ps, -1, "track \"%s\": invalid node name \"%s\": use 1 to %d of "
			    "A-Z a-z 0-9 _ . -", ps->track, s->node, PG_PEER_NAME_MAX);
	for (int i = 0; i < s->n_peers; i++)
		if (s->node[0] && strcmp(s->peers[i].name, s->node) == 0)
			say_section(ps, s->peers[i].item, "track \"%s\": peer.%s names this node (node = %s)",
			    ps->track, s->node, s->node);
	/* A host name is fine: pgconn resolves it on the loop, without blocking. */
	if (s->host[0] && !resolver_valid_host_list(s->host))
		say_section(ps, -1, "track \"%s\": host \"%s\" is not a socket directory, a numeric "
			    "address or a host name", ps->track, s->host);
}

int pg_settings_parse(struct pg_settings *s, const struct pgtrackd_dict *config,
		      const char *track_name, int64_t interval_ms, int64_t reminder_interval_ms,
		      pg_problem_fn problem, void *ctx)
{
	struct parse ps = { .s = s, .config = config, .track = track_name, .problem = problem,
			    .ctx = ctx };
	bool accept_set = false;

	memset(s, 0, sizeof(*s));
	conf_defaults(pg_keys, s);
	s->interval_ms = interval_ms;
	s->reminder_interval_ms = reminder_interval_ms;
	for (size_t i = 0; i < config->n_items; i++) {
		const struct pgtrackd_dict_item *it = &config->items[i];
		char why[300];
		int r;

		if (strncmp(it->key, "peer.", 5) == 0) {
			add_peer(&ps, (int)i, it->key + 5, it->value);
			continue;
		}
		r = conf_set_value(pg_keys, s, it->key, it->value, why, sizeof(why));
		if (r == -ENOENT)
			say(&ps, (int)i, "unknown key \"%s\" in section [track %s]", it->key,
			    track_name);
		else if (r < 0)
			say(&ps, (int)i, "invalid value \"%s\" for %s: %s", it->value, it->key, why);
		else if (strcmp(it->key, "sync_standby_names") == 0 && it->value[0] &&
			 !sync_names_valid(it->value))
			say(&ps, (int)i, "invalid value \"%s\" for sync_standby_names: the syntax of "
			    "PostgreSQL's synchronous_standby_names, with only A-Z a-z 0-9 _ . - * , "
			    "( ) \" and spaces", it->value);
		accept_set |= r == 0 && strcmp(it->key, "accept_interval") == 0;
	}
	if (!accept_set)
		s->accept_interval_ms = interval_ms;
	check_section(&ps);
	return ps.count;
}
