#include "config_probe.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "module_loader.h"
#include "log.h"
#include "pg_settings.h"

struct problem_ctx {
	struct conf_parser *p;
	const struct track_settings *t;
	const struct pgtrackd_dict *dict;
	int item;     /* the key to report on (-1: none) */
	bool section; /* or: the problems of the keys together */
};

/* A problem of the built-in probe's, at its key's line, if it is one to report now. */
static void pg_problem(void *ctx, int item, bool section, const char *message)
{
	struct problem_ctx *pc = ctx;
	const struct pgtrackd_dict_item *it = item >= 0 ? &pc->dict->items[item] : NULL;
	int line = pc->t->line;

	if (section != pc->section || (!section && item != pc->item))
		return;
	for (int i = 0; it && i < pc->t->n_probe_keys; i++)
		if (pc->t->probe_keys[i].key == it->key)
			line = pc->t->probe_keys[i].line;
	conf_error_in(pc->p, pc->t->origin, line, "%s", message);
}

/* The built-in probe's keys of t; pc (may be NULL) says which problems to report. */
static void pg_read(const struct track_settings *t, struct pg_settings *pg,
		    struct problem_ctx *pc)
{
	struct pgtrackd_dict_item items[PROBE_MAX_KEYS];
	struct pgtrackd_dict dict = { .items = items };

	for (int i = 0; i < t->n_probe_keys; i++)
		if (pg_settings_is_key(t->probe_keys[i].key))
			items[dict.n_items++] = (struct pgtrackd_dict_item){ t->probe_keys[i].key,
									     t->probe_keys[i].value };
	if (pc) {
		pc->dict = &dict;
		pc->item = (int)dict.n_items - 1;
	}
	pg_settings_parse(pg, &dict, t->name, t->interval_ms, t->reminder_interval_ms,
			  pc ? pg_problem : NULL, pc);
}

void config_stash_probe_key(struct conf_parser *p, struct track_settings *t, const char *key,
			    const char *value)
{
	struct probe_key *k;

	/* The built-in probe says which peer is a duplicate: one refused does not count. */
	for (int i = 0; strncmp(key, "peer.", 5) != 0 && i < t->n_probe_keys; i++) {
		if (strcmp(t->probe_keys[i].key, key) == 0) {
			conf_error(p, "duplicate key \"%s\"", key);
			return;
		}
	}
	if (t->n_probe_keys == PROBE_MAX_KEYS || strlen(key) > PROBE_KEY_MAX) {
		conf_error(p, "unknown key \"%s\" in section [track %s]", key, t->name);
		return;
	}
	k = &t->probe_keys[t->n_probe_keys++];
	snprintf(k->key, sizeof(k->key), "%s", key);
	snprintf(k->value, sizeof(k->value), "%s", value);
	k->line = conf_line(p);
	/* The built-in probe's keys are checked at once, also in a module's track. */
	if (pg_settings_is_key(key)) {
		static struct pg_settings pg; /* large: not on the stack */
		struct problem_ctx pc = { .p = p, .t = t };

		pg_read(t, &pg, &pc);
	}
}

void config_track_say(struct conf_parser *p, const struct track_settings *t, bool error,
		      const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (error)
		conf_error_in(p, t->origin, t->line, "track \"%s\": %s", t->name, message);
	else
		log_warnx("%s:%d: track \"%s\": %s", t->origin, t->line, t->name, message);
}

const char *track_probe_key(const struct track_settings *s, const char *key)
{
	for (int i = 0; i < s->n_probe_keys; i++)
		if (strcmp(s->probe_keys[i].key, key) == 0)
			return s->probe_keys[i].value;
	return NULL;
}

void config_probe_dict(const struct track_settings *t, bool module_only,
		       struct pgtrackd_dict_item items[PROBE_MAX_KEYS], struct pgtrackd_dict *dict)
{
	dict->items = items;
	dict->n_items = 0;
	for (int i = 0; i < t->n_probe_keys; i++) {
		if (module_only && pg_settings_is_key(t->probe_keys[i].key))
			continue;
		items[dict->n_items].key = t->probe_keys[i].key;
		items[dict->n_items].value = t->probe_keys[i].value;
		dict->n_items++;
	}
}

struct loaded_module *config_module(const struct trackd_config *config, const char *path)
{
	for (size_t i = 0; i < config->n_modules; i++)
		if (strcmp(config->modules[i]->path, path) == 0)
			return config->modules[i];
	return NULL;
}

/* The module of t, loaded once for every track that names it. */
static struct loaded_module *load_module(struct conf_parser *p, struct trackd_config *c,
					 const struct track_settings *t)
{
	struct loaded_module *m = config_module(c, t->module), **modules;
	char why[PATH_MAX + 300];

	if (m)
		return m;
	m = module_load(t->module, why, sizeof(why));
	if (!m) {
		config_track_error(p, t, "%s", why);
		return NULL;
	}
	modules = realloc(c->modules, (c->n_modules + 1) * sizeof(*modules));
	if (!modules) {
		module_unload(m);
		conf_error_in(p, t->origin, t->line, "out of memory");
		return NULL;
	}
	modules[c->n_modules++] = m;
	c->modules = modules;
	return m;
}

/* A module track ignores what only the built-in PostgreSQL probe reads: said once per key. */
static void warn_postgres_keys(struct conf_parser *p, const struct track_settings *t)
{
	bool peers = false;

	for (int i = 0; i < t->n_probe_keys; i++) {
		const char *key = t->probe_keys[i].key;

		if (!pg_settings_is_key(key))
			continue;
		if (strncmp(key, "peer.", 5) == 0)
			peers = true;
		else
			config_track_warn(p, t, "%s is read only by the built-in postgres probe; "
					  "this track's module ignores it", key);
	}
	if (peers)
		config_track_warn(p, t, "peers are asked only by the built-in postgres probe; "
				  "this track's module ignores them");
}

/* The keys the built-in probe does not know belong to the track's module. */
static void ask_module(struct conf_parser *p, const struct loaded_module *m,
		       const struct track_settings *t)
{
	struct pgtrackd_dict_item items[PROBE_MAX_KEYS];
	struct pgtrackd_dict dict;
	char why[PATH_MAX + 300];

	config_probe_dict(t, true, items, &dict);
	for (int i = 0; i < t->n_probe_keys; i++) {
		const struct probe_key *k = &t->probe_keys[i];
		int r = -ENOENT;

		if (pg_settings_is_key(k->key))
			continue;
		why[0] = '\0';
		if (m && m->ops->check_key)
			r = m->ops->check_key(k->key, k->value, why, sizeof(why));
		if (r == -ENOENT)
			conf_error_in(p, t->origin, k->line,
				      "unknown key \"%s\" in section [track %s]", k->key, t->name);
		else if (r < 0)
			conf_error_in(p, t->origin, k->line, "invalid value \"%s\" for %s: %s", k->value, k->key,
				      why[0] ? why : "refused by the module");
	}
	if (m && m->ops->check_section) {
		why[0] = '\0';
		if (m->ops->check_section(&dict, why, sizeof(why)) < 0)
			config_track_error(p, t, "module %s: %s",
					   m->ops->name ? m->ops->name : t->module,
					   why[0] ? why : "section refused");
	}
}

void config_check_module(struct conf_parser *p, struct trackd_config *c,
			 struct track_settings *t)
{
	const struct loaded_module *m;

	if (!t->module[0]) {
		ask_module(p, NULL, t); /* the keys nobody knows */
		return;
	}
	warn_postgres_keys(p, t);
	m = load_module(p, c, t);
	if (m)
		ask_module(p, m, t);
}

/* Warns, for -t and at every load, about a value keepalived would clamp. */
static void warn_clamp(struct conf_parser *p, const struct track_settings *t, const char *key,
		       int value)
{
	int prio = t->base_priority + value;

	if (value <= -254)
		return; /* FAULT: never a priority */
	if (prio > 254 || prio < 1)
		config_track_warn(p, t, "%s %d on base_priority %d gives priority %d, which "
				  "keepalived clamps to %d: it no longer differs from its neighbours",
				  key, value, t->base_priority, prio, prio > 254 ? 254 : 1);
}

/*
 * The orderings the guard and the standby ranking rely on: nothing above
 * the primary, ranked standbys above the neutral 0 (a missing file), a
 * lagging standby below every healthy one.
 */
#define V(t, state) ((t)->values[TRACK_##state])

static void check_layout(struct conf_parser *p, const struct track_settings *t,
			 const struct pg_settings *pg)
{
	/* Ranks run from 0 to n_peers (all nodes standbys during a failover). */
	int lowest = V(t, STANDBY) - pg->n_peers * pg->rank_step;

	if (t->base_priority) {
		warn_clamp(p, t, "value_primary", V(t, PRIMARY));
		warn_clamp(p, t, "value_standby", V(t, STANDBY));
		if (pg->n_peers && lowest != V(t, STANDBY))
			warn_clamp(p, t, "value_standby minus the lowest rank", lowest);
		warn_clamp(p, t, "value_lagging", V(t, LAGGING));
		warn_clamp(p, t, "value_unknown", V(t, UNKNOWN));
	}
	if (V(t, PRIMARY) <= V(t, STANDBY))
		config_track_warn(p, t, "value_primary %d is not above value_standby %d: a standby "
				  "can keep the address from the primary", V(t, PRIMARY), V(t, STANDBY));
	if (pg->n_peers && V(t, STANDBY) > V(t, UNKNOWN) && lowest <= V(t, UNKNOWN))
		config_track_warn(p, t, "the lowest ranked standby value %d (value_standby - %d "
				  "peers x rank_step %d) is not above value_unknown %d, the value of "
				  "a node whose file is missing: lower rank_step", lowest, pg->n_peers,
				  pg->rank_step, V(t, UNKNOWN));
	if (V(t, STANDBY) > -254 && V(t, LAGGING) >= lowest)
		config_track_warn(p, t, "value_lagging %d is not below the lowest ranked standby "
				  "value %d (value_standby - %d peers x rank_step %d)", V(t, LAGGING),
				  lowest, pg->n_peers, pg->rank_step);
	/* Two standbys at once need three nodes (or no primary at all). */
	if (pg->n_peers >= 2 && !pg->node[0])
		config_track_warn(p, t, "peers without node: this node cannot place itself in the "
				  "peers' naming, so it concedes every tie of WAL positions; set "
				  "node = NAME, the name the other nodes give this one");
}

void config_check_probe(struct conf_parser *p, const struct track_settings *t)
{
	static struct pg_settings pg; /* large: not on the stack */
	struct problem_ctx pc = { .p = p, .t = t, .section = true };

	/* The keys together (each alone was checked as it came). */
	pg_read(t, &pg, &pc);
	if (t->module[0]) {
		if (t->base_priority) {
			warn_clamp(p, t, "value_ok", V(t, OK));
			warn_clamp(p, t, "value_maintenance", V(t, MAINTENANCE));
		}
		return;
	}
	check_layout(p, t, &pg);
	if (pg.sync_standby_names[0] && pg.n_peers == 0 && pg_settings_promotion_waits(&pg))
		config_track_warn(p, t, "sync_promotion = follower without peers: a standby "
				  "cannot see the other standbys that would follow its promotion, so "
				  "it counts as the only one and a promotion there starts relaxed "
				  "(list the other nodes as peer.NAME)");
}

bool config_probe_equal(const struct track_settings *a, const struct track_settings *b)
{
	static struct pg_settings x, y; /* large: not on the stack */
	struct pgtrackd_dict_item ia[PROBE_MAX_KEYS], ib[PROBE_MAX_KEYS];
	struct pgtrackd_dict da, db;

	config_probe_dict(a, true, ia, &da);
	config_probe_dict(b, true, ib, &db);
	/* A module's keys in any order (no key twice). */
	if (da.n_items != db.n_items)
		return false;
	for (size_t i = 0; i < da.n_items; i++) {
		const char *v = pgtrackd_dict_get(&db, ia[i].key);

		if (!v || strcmp(v, ia[i].value) != 0)
			return false;
	}
	pg_read(a, &x, NULL);
	pg_read(b, &y, NULL);
	for (int i = 0; i < x.n_peers; i++)
		x.peers[i].item = 0;
	for (int i = 0; i < y.n_peers; i++)
		y.peers[i].item = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}
