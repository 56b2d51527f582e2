#include "notify_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "duration.h"
#include "gate.h"
#include "log.h"
#include "resolver.h"


#define N(field) offsetof(struct notify_settings, field)
static const struct conf_key notify_keys[] = {
	{ .name = "fifo", .type = CONF_PATH, .offset = N(fifo) },
	{ .name = "fifo_owner", .type = CONF_STRING, .offset = N(fifo_owner),
	  .default_value = "root", .max = 32 },
	{ .name = "instance", .type = CONF_STRING, .offset = N(instance), .max = 128 },
	{ .name = "group", .type = CONF_STRING, .offset = N(group), .max = 128 },
	{ .name = "vip", .type = CONF_STRING, .offset = N(vip), .max = 45 },
	{ .name = "reconcile_interval", .type = CONF_DURATION, .offset = N(reconcile_interval_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(3600), .default_value = "10s" },
	{ .name = "stop_grace", .type = CONF_DURATION, .offset = N(stop_grace_ms),
	  .min = DURATION_MS(0), .max = DURATION_SEC(10), .default_value = "800ms" },
	{ .name = "syslog_facility", .type = CONF_CHOICE, .offset = N(syslog_facility),
	  .default_value = "daemon", .choices = log_facility_names },
	{ 0 },
};
#undef N

static const char *const backup_clients_names[] = { "wait", "refuse", NULL };
static const char *const on_off_names[] = { "on", "off", NULL };

#define B(field) offsetof(struct bouncer_settings, field)
static const struct conf_key bouncer_keys[] = {
	{ .name = "host", .type = CONF_STRING, .offset = B(host) },
	{ .name = "port", .type = CONF_INT, .offset = B(port), .min = 1, .max = 65535,
	  .default_value = "6432" },
	{ .name = "user", .type = CONF_STRING, .offset = B(user), .default_value = "pgbouncer" },
	{ .name = "passfile", .type = CONF_PATH, .offset = B(passfile) },
	{ .name = "connect_timeout", .type = CONF_DURATION, .offset = B(connect_timeout_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(3600), .default_value = "2s" },
	{ .name = "command_timeout", .type = CONF_DURATION, .offset = B(command_timeout_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(3600), .default_value = "5s" },
	{ .name = "databases", .type = CONF_STRING, .offset = B(databases), .flags = CONF_REQUIRED },
	{ .name = "databases_file", .type = CONF_PATH, .offset = B(databases_file) },
	{ .name = "databases_template", .type = CONF_PATH, .offset = B(databases_template) },
	{ .name = "retry_max", .type = CONF_DURATION, .offset = B(retry_max_ms),
	  .min = DURATION_MS(250), .max = DURATION_SEC(600), .default_value = "5s" },
	{ .name = "backup_clients", .type = CONF_CHOICE, .offset = B(backup_clients),
	  .default_value = "wait", .choices = backup_clients_names },
	{ 0 },
};
#undef B

#define L(field) offsetof(struct local_settings, field)
static const struct conf_key local_keys[] = {
	{ .name = "host", .type = CONF_STRING, .offset = L(host) },
	{ .name = "port", .type = CONF_INT, .offset = L(port), .min = 1, .max = 65535,
	  .default_value = "5432" },
	{ .name = "user", .type = CONF_STRING, .offset = L(user) },
	{ .name = "dbname", .type = CONF_STRING, .offset = L(dbname), .default_value = "postgres" },
	{ .name = "passfile", .type = CONF_PATH, .offset = L(passfile) },
	{ .name = "connect_timeout", .type = CONF_DURATION, .offset = L(connect_timeout_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(3600), .default_value = "2s" },
	{ .name = "hold_poll", .type = CONF_DURATION, .offset = L(hold_poll_ms),
	  .min = DURATION_MS(5), .max = DURATION_SEC(1), .default_value = "5ms" },
	{ .name = "hold_timeout", .type = CONF_DURATION, .offset = L(hold_timeout_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(3600), .default_value = "30s" },
	{ .name = "session_renew", .type = CONF_DURATION, .offset = L(session_renew_ms),
	  .min = DURATION_SEC(1), .max = DURATION_SEC(3600), .default_value = "1m" },
	{ .name = "hold_gate", .type = CONF_CHOICE, .offset = L(hold_gate),
	  .default_value = "on", .choices = on_off_names },
	{ 0 },
};
#undef L

#define H(field) offsetof(struct hook_settings, field)
static const struct conf_key hook_keys[] = {
	{ .name = "on_master", .type = CONF_STRING, .offset = H(command[HOOK_MASTER]) },
	{ .name = "on_backup", .type = CONF_STRING, .offset = H(command[HOOK_BACKUP]) },
	{ .name = "on_fault", .type = CONF_STRING, .offset = H(command[HOOK_FAULT]) },
	{ .name = "on_stop", .type = CONF_STRING, .offset = H(command[HOOK_STOP]) },
	{ .name = "hook_timeout", .type = CONF_DURATION, .offset = H(timeout_ms),
	  .min = DURATION_MS(100), .max = DURATION_SEC(3600), .default_value = "30s" },
	{ 0 },
};
#undef H

const char *hook_event_name(enum hook_event event)
{
	static const char *const names[] = { "on_master", "on_backup", "on_fault", "on_stop" };

	return event < HOOK_EVENTS ? names[event] : "?";
}

enum section {
	SECTION_NONE,
	SECTION_NOTIFY,
	SECTION_BOUNCER,
	SECTION_HOOKS,
	SECTION_LOCAL,
	SECTION_HTTP,
	SECTION_BAD,
};

struct loader {
	struct notify_config *config;
	struct conf_errors *errs;
	const char *fifo_override;
	enum section section;
	uint64_t seen[SECTION_BAD];
	int line[SECTION_BAD]; /* of each section header, 0 if absent */
};

static const struct conf_key *table_of(enum section s)
{
	switch (s) {
	case SECTION_NOTIFY:
		return notify_keys;
	case SECTION_BOUNCER:
		return bouncer_keys;
	case SECTION_HOOKS:
		return hook_keys;
	case SECTION_LOCAL:
		return local_keys;
	case SECTION_HTTP:
		return notify_http_keys;
	default:
		return NULL;
	}
}

static void *target_of(struct loader *l, enum section s)
{
	switch (s) {
	case SECTION_NOTIFY:
		return &l->config->notify;
	case SECTION_BOUNCER:
		return &l->config->bouncer;
	case SECTION_HOOKS:
		return &l->config->hooks;
	case SECTION_LOCAL:
		return &l->config->local;
	case SECTION_HTTP:
		return &l->config->http_keys;
	default:
		return NULL;
	}
}

static void on_section(struct conf_parser *p, const char *name, void *user)
{
	static const struct {
		const char *name;
		enum section section;
	} sections[] = {
		{ "notify", SECTION_NOTIFY },
		{ "pgbouncer", SECTION_BOUNCER },
		{ "hooks", SECTION_HOOKS },
		{ "postgres", SECTION_LOCAL },
		{ "http", SECTION_HTTP },
	};
	struct loader *l = user;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (strcmp(name, sections[i].name) != 0)
			continue;
		if (l->line[sections[i].section]) {
			conf_error(p, "duplicate section [%s] (first at line %d)", name,
				   l->line[sections[i].section]);
			l->section = SECTION_BAD;
			return;
		}
		l->section = sections[i].section;
		l->line[l->section] = conf_line(p);
		return;
	}
	conf_error(p, "unknown section \"%s\"", name);
	l->section = SECTION_BAD;
}

static void on_key(struct conf_parser *p, const char *section, const char *key,
		   const char *value, void *user)
{
	struct loader *l = user;

	if (l->section == SECTION_NONE) {
		conf_error(p, "key \"%s\" outside of any section", key);
		return;
	}
	if (l->section == SECTION_BAD)
		return;
	if (!conf_set(p, table_of(l->section), target_of(l, l->section), &l->seen[l->section],
		      key, value))
		conf_error(p, "unknown key \"%s\" in section [%s]", key, section);
	else if (l->section == SECTION_HTTP)
		notify_http_check_key(p, l->config, key);
}

static void split_databases(struct conf_parser *p, struct loader *l)
{
	struct notify_config *c = l->config;
	const char *s = c->bouncer.databases;
	int line = l->line[SECTION_BOUNCER];
	bool invalid = false;

	while (*s) {
		size_t len;

		s += strspn(s, " \t,");
		len = strcspn(s, " \t,");
		if (len == 0)
			break;
		if (len == 1 && *s == '*') {
			c->all_databases = true;
		} else if (!conf_valid_name(s, len, NOTIFY_DBNAME_MAX)) {
			invalid = true;
			conf_error_at(p, line, "[pgbouncer] databases: \"%.*s\" is not a database name "
					       "(1 to %d of A-Z a-z 0-9 _ . -)",
				      (int)len, s, NOTIFY_DBNAME_MAX);
		} else if (c->n_databases == NOTIFY_MAX_DATABASES) {
			conf_error_at(p, line, "[pgbouncer] databases: more than %d databases",
				      NOTIFY_MAX_DATABASES);
			return;
		} else {
			memcpy(c->database[c->n_databases], s, len);
			c->database[c->n_databases][len] = '\0';
			c->n_databases++;
		}
		s += len;
	}
	if (c->all_databases && c->n_databases > 0) {
		conf_error_at(p, line, "[pgbouncer] databases: \"*\" (every database pgbouncer "
				       "lists) goes alone, without names");
		return;
	}
	if (c->n_databases == 0 && !c->all_databases && !invalid && conf_was_set(bouncer_keys, l->seen[SECTION_BOUNCER], "databases"))
		conf_error_at(p, line, "[pgbouncer] databases: no database named");
}

/*
 * With [postgres] and hold_gate = on, the template's lines get the gate
 * when every one goes to [postgres]'s server (gate.h); c->gate_why says
 * why not otherwise.  -ENOMEM, or 0.
 */
static int gate_template(struct notify_config *c, bool postgres)
{
	struct dbfile f;
	char *gated;

	c->gate = false;
	c->gate_why[0] = '\0';
	if (!postgres)
		return 0;
	if (strcmp(c->local.hold_gate, "on") != 0) {
		snprintf(c->gate_why, sizeof(c->gate_why), "hold_gate = off");
		return 0;
	}
	if (dbfile_parse(&f, c->template_text, c->template_len) < 0)
		return -ENOMEM;
	if (f.bad_line || !gate_fits(&f, c->local.host, c->local.port, c->gate_why,
				     sizeof(c->gate_why))) {
		if (f.bad_line)
			snprintf(c->gate_why, sizeof(c->gate_why), "line %d of the template is %s",
				 f.bad_line, f.bad);
		dbfile_finish(&f);
		return 0;
	}
	gated = malloc(gate_applied_size(&f, c->template_len));
	if (!gated) {
		dbfile_finish(&f);
		return -ENOMEM;
	}
	c->template_len = gate_apply(&f, c->template_text, c->template_len, gated);
	gated[c->template_len] = '\0';
	dbfile_finish(&f);
	free(c->template_text);
	c->template_text = gated;
	c->gate = true;
	return 0;
}

static void load_template(struct conf_parser *p, struct loader *l)
{
	struct notify_config *c = l->config;
	const char *path = c->bouncer.databases_template;
	int line = l->line[SECTION_BOUNCER];
	char *text;
	ssize_t n;
	int fd;

	if (!c->bouncer.databases_file[0]) {
		if (path[0])
			conf_error_at(p, line, "[pgbouncer] databases_template is set without databases_file");
		return;
	}
	if (!path[0]) {
		conf_error_at(p, line, "[pgbouncer] databases_file needs databases_template, "
				       "the content to write there on MASTER");
		return;
	}
	if (atomic_file_same_path(path, c->bouncer.databases_file)) {
		conf_error_at(p, line, "[pgbouncer] databases_template and databases_file are the same file");
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		conf_error_at(p, line, "[pgbouncer] databases_template %s: %s", path, strerror(errno));
		return;
	}
	text = malloc(TEMPLATE_MAX + 1);
	if (!text) {
		close(fd);
		conf_error_at(p, line, "out of memory");
		return;
	}
	n = read(fd, text, TEMPLATE_MAX + 1);
	close(fd);
	if (n < 0 || n > TEMPLATE_MAX) {
		conf_error_at(p, line, "[pgbouncer] databases_template %s: %s", path,
			      n < 0 ? strerror(errno) : "larger than 64 KiB");
		free(text);
		return;
	}
	text[n] = '\0';
	c->template_text = text;
	c->template_len = (size_t)n;
	if (gate_template(c, l->line[SECTION_LOCAL] != 0) < 0) {
		conf_error_at(p, line, "out of memory");
		return;
	}
	text = c->template_text; /* the gated copy, if any */
	n = (ssize_t)c->template_len;

	bool fallback;

	size_t lines = 1;

	for (ssize_t i = 0; i < n; i++)
		lines += text[i] == '\n';
	c->fenced_text = malloc((size_t)n + lines * sizeof(NOTIFY_FENCED_DBNAME) + 2);
	if (!c->fenced_text) {
		conf_error_at(p, line, "out of memory");
		return;
	}
	c->fenced_len = notify_template_fenced(text, (size_t)n, c->fenced_text, &fallback);
	if (dbfile_parse(&c->template_dbs, c->template_text, c->template_len) < 0 ||
	    dbfile_parse(&c->fenced_dbs, c->fenced_text, c->fenced_len) < 0) {
		conf_error_at(p, line, "out of memory");
		return;
	}
	if (fallback && !c->all_databases)
		conf_error_at(p, line, "[pgbouncer] databases_template %s defines the fallback "
				       "database \"*\": set databases = * so that the databases "
				       "pgbouncer creates from it are fenced too", path);
}

size_t notify_template_fenced(const char *text, size_t len, char *out, bool *found)
{
	size_t k = 0;

	*found = false;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) + 1 : len;
		size_t j = i;

		while (j < end && (text[j] == ' ' || text[j] == '\t'))
			j++;
		if (j < end && text[j] == '*') {
			size_t m = j + 1;

			while (m < end && (text[m] == ' ' || text[m] == '\t'))
				m++;
			if (m < end && text[m] == '=') {
				size_t body = end;

				while (body > i && (text[body - 1] == '\n' || text[body - 1] == '\r'))
					body--;
				*found = true;
				memcpy(out + k, text + i, body - i);
				k += body - i;
				memcpy(out + k, " " NOTIFY_FENCED_DBNAME "\n", sizeof(NOTIFY_FENCED_DBNAME) + 1);
				k += sizeof(NOTIFY_FENCED_DBNAME) + 1;
				i = end;
				continue;
			}
		}
		memcpy(out + k, text + i, end - i);
		k += end - i;
		i = end;
	}
	out[k] = '\0';
	return k;
}

bool hook_argv_split(const char *command, struct hook_argv *out)
{
	char *d = out->storage;
	const char *s = command;

	out->argc = 0;
	while (*s) {
		bool quoted = false;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		if (out->argc == HOOK_MAX_ARGS)
			return false;
		out->argv[out->argc++] = d;
		while (*s && (quoted || (*s != ' ' && *s != '\t'))) {
			if (*s == '"')
				quoted = !quoted;
			else
				*d++ = *s;
			s++;
		}
		if (quoted)
			return false;
		*d++ = '\0';
	}
	out->argv[out->argc] = NULL;
	return true;
}

static void split_hooks(struct conf_parser *p, struct loader *l)
{
	struct notify_config *c = l->config;

	for (int e = 0; e < HOOK_EVENTS; e++) {
		const char *cmd = c->hooks.command[e];

		if (!cmd[0])
			continue;
		if (!hook_argv_split(cmd, &c->hook[e]))
			conf_error_at(p, l->line[SECTION_HOOKS],
				      "[hooks] %s: unbalanced double quote or more than %d arguments",
				      hook_event_name(e), HOOK_MAX_ARGS);
		else if (c->hook[e].argc == 0 || c->hook[e].argv[0][0] != '/')
			conf_error_at(p, l->line[SECTION_HOOKS],
				      "[hooks] %s: the command must start with an absolute path "
				      "(hooks run without a shell and without PATH)",
				      hook_event_name(e));
	}
}

static void on_end(struct conf_parser *p, void *user)
{
	struct loader *l = user;
	struct notify_config *c = l->config;
	int nline = l->line[SECTION_NOTIFY] ? l->line[SECTION_NOTIFY] : 1;
	unsigned char addr[16];

	if (!l->line[SECTION_NOTIFY])
		conf_errors_add(l->errs, "%s: missing section [notify]", conf_path(p));
	if (!l->line[SECTION_BOUNCER])
		conf_errors_add(l->errs, "%s: missing section [pgbouncer]", conf_path(p));
	else
		conf_check_required(p, bouncer_keys, l->seen[SECTION_BOUNCER],
				    l->line[SECTION_BOUNCER], "[pgbouncer]");

	if (l->fifo_override)
		snprintf(c->notify.fifo, sizeof(c->notify.fifo), "%s", l->fifo_override);
	else if (l->line[SECTION_NOTIFY] && !conf_was_set(notify_keys, l->seen[SECTION_NOTIFY], "fifo"))
		conf_error_at(p, nline, "[notify]: missing required key \"fifo\" "
					"(or give the FIFO path on the command line)");

	if (l->line[SECTION_NOTIFY] && !c->notify.instance[0] == !c->notify.group[0])
		conf_error_at(p, nline, "[notify]: set exactly one of \"instance\" and \"group\"");

	if (c->notify.vip[0] && inet_pton(AF_INET, c->notify.vip, addr) != 1 &&
	    inet_pton(AF_INET6, c->notify.vip, addr) != 1)
		conf_error_at(p, nline, "[notify] vip: \"%s\" is not a numeric IPv4 or IPv6 address",
			      c->notify.vip);

	if (!c->notify.fifo_owner[0]) {
		conf_error_at(p, nline, "[notify] fifo_owner: empty; leave the key out for root");
	} else {
		struct passwd *pw = getpwnam(c->notify.fifo_owner);

		if (!pw)
			conf_error_at(p, nline, "[notify] fifo_owner: no such user \"%s\"",
				      c->notify.fifo_owner);
		else
			c->fifo_uid = pw->pw_uid;
	}
	/* A host name is resolved on the loop (pgconn.c), never blocking it. */
	if (c->bouncer.host[0] && !resolver_valid_host_list(c->bouncer.host))
		conf_error_at(p, l->line[SECTION_BOUNCER] ? l->line[SECTION_BOUNCER] : 1,
			      "[pgbouncer] host: \"%s\" is not a socket directory, a numeric address "
			      "or a host name", c->bouncer.host);
	if (l->line[SECTION_BOUNCER]) {
		split_databases(p, l);
		load_template(p, l);
	}
	split_hooks(p, l);
	notify_http_check_end(p, c, l->seen[SECTION_HTTP], l->line[SECTION_HTTP]);
	c->hold = l->line[SECTION_LOCAL] != 0;
	c->backup_waits = strcmp(c->bouncer.backup_clients, "wait") == 0;
	if (c->local.host[0] && !resolver_valid_host_list(c->local.host))
		conf_error_at(p, l->line[SECTION_LOCAL] ? l->line[SECTION_LOCAL] : 1,
			      "[postgres] host: \"%s\" is not a socket directory, a numeric address "
			      "or a host name", c->local.host);
}

struct notify_config *notify_config_load(const char *path, const char *fifo_override,
					 struct conf_errors *errs)
{
	static const struct conf_callbacks callbacks = {
		.section = on_section, .key = on_key, .end = on_end,
	};
	struct notify_config *config = calloc(1, sizeof(*config));
	struct loader l = { .config = config, .errs = errs, .fifo_override = fifo_override };

	if (!config || !(config->path = strdup(path))) {
		free(config);
		conf_errors_add(errs, "%s: out of memory", path);
		return NULL;
	}
	if (fifo_override && fifo_override[0] != '/') {
		conf_errors_add(errs, "FIFO %s: must be an absolute path", fifo_override);
		notify_config_destroy(config);
		return NULL;
	}
	conf_defaults(notify_keys, &config->notify);
	conf_defaults(bouncer_keys, &config->bouncer);
	conf_defaults(hook_keys, &config->hooks);
	conf_defaults(local_keys, &config->local);
	conf_defaults(notify_http_keys, &config->http_keys);
	if (!conf_parse_file(path, &callbacks, &l, errs)) {
		notify_config_destroy(config);
		return NULL;
	}
	return config;
}

void notify_config_log_hold(const struct notify_config *c, const char *target)
{
	log_info("on MASTER, clients are held in pgbouncer until the local PostgreSQL at %s is "
		 "primary (hold_timeout %.1fs), %s%s%s", target,
		 duration_seconds(c->local.hold_timeout_ms),
		 c->gate ? "their server connections waiting inside it (the gate)"
			 : "its databases paused; no gate: ", c->gate ? "" : c->gate_why,
		 c->gate || c->template_text ? "" : "no databases_file");
}

void notify_config_destroy(struct notify_config *config)
{
	if (!config)
		return;
	dbfile_finish(&config->template_dbs);
	dbfile_finish(&config->fenced_dbs);
	free(config->template_text);
	free(config->fenced_text);
	free(config->path);
	free(config);
}
