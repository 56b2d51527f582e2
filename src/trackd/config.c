#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "log.h"
#include "module_loader.h"
#include "track_file.h"
#include "resolver.h"
#include "util.h"


static const char *const sslmodes[] = {
	"disable", "allow", "prefer", "require", "verify-ca", "verify-full", NULL,
};

#define G(field) offsetof(struct global_settings, field)
const struct conf_key config_global_keys[] = {
	{ .name = "file_check_interval", .type = CONF_DURATION, .offset = G(file_check_interval_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(10), .default_value = "500ms" },
	{ .name = "reminder_interval", .type = CONF_DURATION, .offset = G(reminder_interval_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(86400), .default_value = "1m" },
	{ .name = "syslog_facility", .type = CONF_CHOICE, .offset = G(syslog_facility),
	  .default_value = "daemon",
	  .choices = log_facility_names },
	{ 0 },
};
#undef G

#define T(field) offsetof(struct track_settings, field)
#define VALUE_KEY(key, field, def)                                              \
	{ .name = key, .type = CONF_INT, .offset = T(field), .min = -254, .max = 254, \
	  .default_value = def }
const struct conf_key config_track_keys[] = {
	{ .name = "file", .type = CONF_PATH, .offset = T(file), .flags = CONF_REQUIRED },
	{ .name = "host", .type = CONF_STRING, .offset = T(host) },
	{ .name = "hostaddr", .type = CONF_STRING, .offset = T(hostaddr) },
	{ .name = "port", .type = CONF_INT, .offset = T(port), .min = 1, .max = 65535 },
	{ .name = "dbname", .type = CONF_STRING, .offset = T(dbname) },
	{ .name = "user", .type = CONF_STRING, .offset = T(user) },
	{ .name = "passfile", .type = CONF_PATH, .offset = T(passfile) },
	{ .name = "sslmode", .type = CONF_CHOICE, .offset = T(sslmode), .choices = sslmodes },
	{ .name = "application_name", .type = CONF_STRING, .offset = T(application_name),
	  .default_value = "pgtrackd", .max = 63 },
	{ .name = "connect_timeout", .type = CONF_DURATION, .offset = T(connect_timeout_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(3600), .default_value = "2s" },
	{ .name = "interval", .type = CONF_DURATION, .offset = T(interval_ms),
	  .min = DURATION_MS(10), .max = DURATION_SEC(3600), .default_value = "1s" },
	{ .name = "timeout", .type = CONF_DURATION, .offset = T(timeout_ms),
	  .min = DURATION_MS(10), .max = DURATION_SEC(3600), .default_value = "1s" },
	{ .name = "rise", .type = CONF_INT, .offset = T(rise), .min = 1, .max = 100,
	  .default_value = "2" },
	{ .name = "fall", .type = CONF_INT, .offset = T(fall), .min = 1, .max = 100,
	  .default_value = "2" },
	/* Unset: the track's interval (finish_track). */
	{ .name = "accept_interval", .type = CONF_DURATION, .offset = T(accept_interval_ms),
	  .min = DURATION_MS(10), .max = DURATION_SEC(3600), .flags = CONF_ZERO_OK },
	VALUE_KEY("value_primary", value_primary, "54"),
	VALUE_KEY("value_standby", value_standby, "53"),
	VALUE_KEY("value_down", value_down, "-254"),
	VALUE_KEY("value_unknown", value_unknown, "0"),
	VALUE_KEY("value_stopped", value_stopped, "-254"),
	VALUE_KEY("value_stale", value_stale, "-254"),
	VALUE_KEY("value_conflict", value_conflict, "-254"),
	VALUE_KEY("value_lagging", value_lagging, "-100"),
	VALUE_KEY("value_ok", value_ok, "0"),
	VALUE_KEY("value_maintenance", value_maintenance, "-254"),
	{ .name = "probe", .type = CONF_CHOICE, .offset = T(probe), .default_value = "postgres",
	  .choices = (const char *const[]){ "postgres", NULL } },
	{ .name = "module", .type = CONF_PATH, .offset = T(module) },
	{ .name = "max_lag", .type = CONF_SIZE, .offset = T(max_lag_bytes),
	  .min = 0, .max = INT64_C(1) << 50, .default_value = "0" },
	{ .name = "max_lag_time", .type = CONF_DURATION, .offset = T(max_lag_time_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(86400), .default_value = "0", .flags = CONF_ZERO_OK },
	{ .name = "receiver_grace", .type = CONF_DURATION, .offset = T(receiver_grace_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(86400), .default_value = "10s", .flags = CONF_ZERO_OK },
	{ .name = "node", .type = CONF_STRING, .offset = T(node), .max = PEER_NAME_MAX },
	{ .name = "rank_tolerance", .type = CONF_SIZE, .offset = T(rank_tolerance),
	  .min = 0, .max = INT64_C(1) << 40, .default_value = "128kB" },
	{ .name = "rank_step", .type = CONF_INT, .offset = T(rank_step), .min = 1, .max = 50,
	  .default_value = "10" },
	{ .name = "base_priority", .type = CONF_INT, .offset = T(base_priority), .min = 0,
	  .max = 254, .default_value = "200" },
	{ 0 },
};
#undef T
#undef VALUE_KEY

enum section_kind { SECTION_NONE, SECTION_GLOBAL, SECTION_TRACK, SECTION_BAD };

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

const char *track_module_key(const struct track_settings *s, const char *key)
{
	for (int i = 0; i < s->n_module_keys; i++)
		if (strcmp(s->module_keys[i].key, key) == 0)
			return s->module_keys[i].value;
	return NULL;
}

static const char *module_key_of(void *ctx, const char *key)
{
	return track_module_key(ctx, key);
}

static bool keep_module(struct loader *l, struct loaded_module *m)
{
	struct loaded_module **modules =
		realloc(l->config->modules, (l->config->n_modules + 1) * sizeof(*modules));

	if (!modules)
		return false;
	modules[l->config->n_modules++] = m;
	l->config->modules = modules;
	return true;
}

/* Keys pgtrackd does not know belong to the track's module, if it has one. */
static void check_module_keys(struct conf_parser *p, struct loader *l, struct track_settings *t)
{
	struct loaded_module *m = NULL;
	char why[PATH_MAX + 300];

	if (t->module[0]) {
		m = module_load(t->module, why, sizeof(why));
		if (!m) {
			conf_error_at(p, t->line, "track \"%s\": %s", t->name, why);
			return;
		}
		if (!keep_module(l, m)) {
			module_unload(m);
			conf_error_at(p, t->line, "out of memory");
			return;
		}
	}
	for (int i = 0; i < t->n_module_keys; i++) {
		const struct module_key *k = &t->module_keys[i];
		int r = -ENOENT;

		why[0] = '\0';
		if (m && m->ops->check_key)
			r = m->ops->check_key(k->key, k->value, why, sizeof(why));
		if (r == -ENOENT)
			conf_error_at(p, k->line, "unknown key \"%s\" in section [track %s]", k->key,
				      t->name);
		else if (r < 0)
			conf_error_at(p, k->line, "invalid value \"%s\" for %s: %s", k->value, k->key,
				      why[0] ? why : "refused by the module");
	}
	if (m && m->ops->check_section) {
		why[0] = '\0';
		if (m->ops->check_section(module_key_of, t, why, sizeof(why)) < 0)
			conf_error_at(p, t->line, "track \"%s\": module %s: %s", t->name,
				      m->ops->name ? m->ops->name : t->module,
				      why[0] ? why : "section refused");
	}
}

static bool was_set(uint64_t seen, const char *name)
{
	return conf_was_set(config_track_keys, seen, name);
}

/* A module track ignores what only the built-in PostgreSQL probe reads. */
static void warn_postgres_keys(struct conf_parser *p, struct loader *l,
			       const struct track_settings *t)
{
	static const char *const postgres_only[] = {
		"host", "hostaddr", "port", "dbname", "user", "passfile", "sslmode",
		"application_name", "connect_timeout", "timeout", "accept_interval",
		"max_lag", "max_lag_time", "receiver_grace", "node", "rank_tolerance", "rank_step", NULL,
	};

	for (const char *const *k = postgres_only; *k; k++)
		if (was_set(l->seen, *k))
			log_warnx("%s:%d: track \"%s\": %s is read only by the built-in postgres "
				  "probe; this track's module ignores it",
				  conf_path(p), t->line, t->name, *k);
	if (t->n_peers)
		log_warnx("%s:%d: track \"%s\": peers are asked only by the built-in postgres "
			  "probe; this track's module ignores them", conf_path(p), t->line, t->name);
}

static void finish_track(struct conf_parser *p, struct loader *l)
{
	if (l->kind == SECTION_TRACK) {
		struct track_settings *t = current_track(l);
		char what[TRACK_NAME_MAX + 16];

		snprintf(what, sizeof(what), "track \"%s\"", t->name);
		conf_check_required(p, config_track_keys, l->seen, t->line, what);
		if (!was_set(l->seen, "accept_interval"))
			t->accept_interval_ms = t->interval_ms;
		if (t->module[0] && was_set(l->seen, "probe"))
			conf_error_at(p, t->line, "track \"%s\": set either probe (built in) or module, "
						  "not both", t->name);
		if (t->module[0])
			warn_postgres_keys(p, l, t);
		check_module_keys(p, l, t);
	}
}

/* Keeps a key pgtrackd does not know for the module (or an error at the end). */
static void stash_module_key(struct conf_parser *p, struct track_settings *t, const char *key,
			     const char *value)
{
	struct module_key *k;

	for (int i = 0; i < t->n_module_keys; i++) {
		if (strcmp(t->module_keys[i].key, key) == 0) {
			conf_error(p, "duplicate key \"%s\"", key);
			return;
		}
	}
	if (t->n_module_keys == MODULE_MAX_KEYS || strlen(key) > MODULE_KEY_MAX) {
		conf_error(p, "unknown key \"%s\" in section [track %s]", key, t->name);
		return;
	}
	k = &t->module_keys[t->n_module_keys++];
	snprintf(k->key, sizeof(k->key), "%s", key);
	snprintf(k->value, sizeof(k->value), "%s", value);
	k->line = conf_line(p);
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
		if (strcmp(l->config->tracks[i].name, track) == 0) {
			conf_error(p, "duplicate track \"%s\" (first defined at line %d)", track,
				   l->config->tracks[i].line);
			l->kind = SECTION_BAD;
			return;
		}
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
	t->line = conf_line(p);
	l->kind = SECTION_TRACK;
}

static bool is_numeric_address(const char *host);

/*
 * peer.NAME = ADDRESS [PORT]: a numeric address, a host name (resolved on
 * the loop at every connect, pgconn.c) or a unix socket directory.
 */
static void add_peer(struct conf_parser *p, struct track_settings *t, const char *name,
		     const char *value)
{
	struct peer_settings *peer;
	char address[CONF_STR_SIZE];
	const char *space;
	size_t len;

	if (!conf_valid_name(name, strlen(name), PEER_NAME_MAX)) {
		conf_error(p, "invalid peer name \"%s\": use 1 to %d of A-Z a-z 0-9 _ . -", name,
			   PEER_NAME_MAX);
		return;
	}
	for (int i = 0; i < t->n_peers; i++) {
		if (strcmp(t->peers[i].name, name) == 0) {
			conf_error(p, "duplicate key \"peer.%s\"", name);
			return;
		}
	}
	if (t->n_peers == TRACK_MAX_PEERS) {
		conf_error(p, "too many peers: at most %d per track", TRACK_MAX_PEERS);
		return;
	}
	space = strpbrk(value, " \t");
	len = space ? (size_t)(space - value) : strlen(value);
	if (len == 0 || len >= sizeof(address)) {
		conf_error(p, "invalid value \"%s\" for peer.%s: expected ADDRESS [PORT]", value, name);
		return;
	}
	memcpy(address, value, len);
	address[len] = '\0';

	peer = &t->peers[t->n_peers];
	memset(peer, 0, sizeof(*peer));
	if (address[0] == '/' || address[0] == '@') {
		snprintf(peer->host, sizeof(peer->host), "%s", address);
	} else if (is_numeric_address(address) && len < sizeof(peer->hostaddr)) {
		memcpy(peer->hostaddr, address, len + 1);
	} else if (resolver_valid_name(address)) {
		snprintf(peer->host, sizeof(peer->host), "%s", address);
	} else {
		conf_error(p, "invalid value \"%s\" for peer.%s: the address must be a numeric "
			      "address, a host name or a unix socket directory", value, name);
		return;
	}
	if (space) {
		char *end;
		long port;

		space += strspn(space, " \t");
		port = strtol(space, &end, 10);
		if (*space < '0' || *space > '9' || *end != '\0' || port < 1 || port > 65535) {
			conf_error(p, "invalid value \"%s\" for peer.%s: port must be between 1 and "
				      "65535", value, name);
			return;
		}
		peer->port = (int)port;
	}
	snprintf(peer->name, sizeof(peer->name), "%s", name);
	peer->line = conf_line(p);
	t->n_peers++;
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
	case SECTION_TRACK:
		if (strncmp(key, "peer.", 5) == 0) {
			add_peer(p, current_track(l), key + 5, value);
			return;
		}
		if (!conf_set(p, config_track_keys, current_track(l), &l->seen, key, value))
			stash_module_key(p, current_track(l), key, value);
		return;
	}
}

static bool is_numeric_address(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void check_track(struct conf_parser *p, struct track_settings *t)
{
	char why[CONF_STR_SIZE + 160];
	int r = t->file[0] ? track_file_check_path(t->file, why, sizeof(why)) : 0;

	/* What the writer would refuse; a missing directory is retried at run time. */
	if (r == -EISDIR)
		conf_error_at(p, t->line, "track \"%s\": file %s names a directory, not a file",
			      t->name, t->file);
	else if (r == -ELOOP || r == -ENOTDIR || r == -EPERM)
		conf_error_at(p, t->line, "track \"%s\": file %s: %s", t->name, t->file, why);
	else if (r < 0 && r != -ENOENT)
		log_warnx("%s:%d: track \"%s\": cannot check the directory of %s: %s",
			  conf_path(p), t->line, t->name, t->file, why);
	if (t->node[0] && !conf_valid_name(t->node, strlen(t->node), PEER_NAME_MAX))
		conf_error_at(p, t->line, "track \"%s\": invalid node name \"%s\": use 1 to %d of "
			      "A-Z a-z 0-9 _ . -", t->name, t->node, PEER_NAME_MAX);
	for (int i = 0; i < t->n_peers; i++)
		if (t->node[0] && strcmp(t->peers[i].name, t->node) == 0)
			conf_error_at(p, t->peers[i].line, "track \"%s\": peer.%s names this node "
				      "(node = %s)", t->name, t->node, t->node);
	/* A host name is fine: pgconn resolves it on the loop, without blocking. */
	if (t->host[0] && !resolver_valid_host_list(t->host))
		conf_error_at(p, t->line, "track \"%s\": host \"%s\" is not a socket directory, a "
			      "numeric address or a host name", t->name, t->host);
}

/* Warns, for -t and at every load, about a value keepalived would clamp. */
static void warn_clamp(struct conf_parser *p, const struct track_settings *t, const char *key,
		       int value)
{
	int prio = t->base_priority + value;

	if (value <= -254)
		return; /* FAULT: never a priority */
	if (prio > 254 || prio < 1)
		log_warnx("%s:%d: track \"%s\": %s %d on base_priority %d gives priority %d, "
			  "which keepalived clamps to %d: it no longer differs from its neighbours",
			  conf_path(p), t->line, t->name, key, value, t->base_priority, prio,
			  prio > 254 ? 254 : 1);
}

/*
 * The orderings the guard and the standby ranking rely on: nothing above
 * the primary, ranked standbys above the neutral 0 (a missing file), a
 * lagging standby below every healthy one.
 */
static void check_layout(struct conf_parser *p, const struct track_settings *t)
{
	/* Ranks run from 0 to n_peers (all nodes standbys during a failover). */
	int lowest = t->value_standby - t->n_peers * t->rank_step;

	if (t->module[0]) {
		if (t->base_priority) {
			warn_clamp(p, t, "value_ok", t->value_ok);
			warn_clamp(p, t, "value_maintenance", t->value_maintenance);
		}
		return;
	}
	if (t->base_priority) {
		warn_clamp(p, t, "value_primary", t->value_primary);
		warn_clamp(p, t, "value_standby", t->value_standby);
		if (t->n_peers && lowest != t->value_standby)
			warn_clamp(p, t, "value_standby minus the lowest rank", lowest);
		warn_clamp(p, t, "value_lagging", t->value_lagging);
		warn_clamp(p, t, "value_unknown", t->value_unknown);
	}
	if (t->value_primary <= t->value_standby)
		log_warnx("%s:%d: track \"%s\": value_primary %d is not above value_standby %d: "
			  "a standby can keep the address from the primary", conf_path(p), t->line,
			  t->name, t->value_primary, t->value_standby);
	if (t->n_peers && t->value_standby > t->value_unknown && lowest <= t->value_unknown)
		log_warnx("%s:%d: track \"%s\": the lowest ranked standby value %d (value_standby "
			  "- %d peers x rank_step %d) is not above value_unknown %d, the value of a "
			  "node whose file is missing: lower rank_step", conf_path(p), t->line, t->name,
			  lowest, t->n_peers, t->rank_step, t->value_unknown);
	if (t->value_standby > -254 && t->value_lagging >= lowest)
		log_warnx("%s:%d: track \"%s\": value_lagging %d is not below the lowest ranked "
			  "standby value %d (value_standby - %d peers x rank_step %d)", conf_path(p),
			  t->line, t->name, t->value_lagging, lowest, t->n_peers, t->rank_step);
	/* Two standbys at once need three nodes (or no primary at all). */
	if (t->n_peers >= 2 && !t->node[0])
		log_warnx("%s:%d: track \"%s\": peers without node: this node cannot place "
			  "itself in the peers' naming, so it concedes every tie of WAL positions; "
			  "set node = NAME, the name the other nodes give this one",
			  conf_path(p), t->line, t->name);
}

static void on_end(struct conf_parser *p, void *user)
{
	struct loader *l = user;
	struct trackd_config *c = l->config;

	finish_track(p, l);
	if (l->oom)
		conf_errors_add(l->errs, "%s: out of memory", conf_path(p));
	for (size_t i = 0; i < c->n_tracks; i++) {
		for (size_t j = 0; j < i; j++) {
			if (c->tracks[i].file[0] && c->tracks[j].file[0] &&
			    track_file_same_path(c->tracks[i].file, c->tracks[j].file))
				conf_error_at(p, c->tracks[i].line,
					      "track \"%s\": file %s is already written by track \"%s\"",
					      c->tracks[i].name, c->tracks[i].file, c->tracks[j].name);
		}
		check_track(p, &c->tracks[i]);
		check_layout(p, &c->tracks[i]);
		c->tracks[i].reminder_interval_ms = c->global.reminder_interval_ms;
	}
	if (c->n_tracks == 0)
		conf_errors_add(l->errs, "%s: no [track NAME] section: nothing to do", conf_path(p));
}

struct trackd_config *config_load(const char *path, struct conf_errors *errs)
{
	static const struct conf_callbacks callbacks = {
		.section = on_section, .key = on_key, .end = on_end,
	};
	struct trackd_config *config = calloc(1, sizeof(*config));
	struct loader l = { .config = config, .errs = errs };

	if (!config || !(config->path = strdup(path))) {
		free(config);
		conf_errors_add(errs, "%s: out of memory", path);
		return NULL;
	}
	conf_defaults(config_global_keys, &config->global);
	if (!conf_parse_file(path, &callbacks, &l, errs)) {
		config_destroy(config);
		return NULL;
	}
	return config;
}

void config_destroy(struct trackd_config *config)
{
	if (!config)
		return;
	for (size_t i = 0; i < config->n_modules; i++)
		module_unload(config->modules[i]);
	free(config->modules);
	free(config->tracks);
	free(config->path);
	free(config);
}

bool track_settings_equal(const struct track_settings *a, const struct track_settings *b)
{
	struct track_settings x, y;

	/* memcpy keeps the zeroed padding that memcmp looks at. */
	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	x.line = y.line = 0;
	for (int i = 0; i < TRACK_MAX_PEERS; i++)
		x.peers[i].line = y.peers[i].line = 0;
	for (int i = 0; i < MODULE_MAX_KEYS; i++)
		x.module_keys[i].line = y.module_keys[i].line = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}
