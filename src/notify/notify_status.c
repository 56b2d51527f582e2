/*
 * notify_status: /status as JSON (json-c; every text from pgbouncer, the
 * FIFO or the configuration goes through jsonutil_string, so the document
 * stays UTF-8).  Part of notify_expose.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "notify_expose.h"

/* Adds v under key; a NULL v (out of memory) or a failed add clears *ok. */
static void put(struct json_object *o, const char *key, struct json_object *v, bool *ok)
{
	if (!v) {
		*ok = false;
		return;
	}
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		*ok = false;
	}
}

static void put_null(struct json_object *o, const char *key, bool *ok)
{
	if (json_object_object_add(o, key, NULL) < 0)
		*ok = false;
}

static void put_text(struct json_object *o, const char *key, const char *text, bool *ok)
{
	if (!text)
		put_null(o, key, ok);
	else
		put(o, key, jsonutil_string(text), ok);
}

/* Seconds, to the millisecond. */
static void put_seconds(struct json_object *o, const char *key, double v, bool *ok)
{
	char text[48];

	if (!isfinite(v))
		v = 0.0;
	snprintf(text, sizeof(text), "%.3f", v);
	put(o, key, json_object_new_double_s(v, text), ok);
}

static void put_u64(struct json_object *o, const char *key, uint64_t v, bool *ok)
{
	put(o, key, json_object_new_uint64(v), ok);
}

void notify_format_time(double wall, char *out, size_t size)
{
	time_t secs = wall > 0.0 ? (time_t)wall : 0; /* no libm: wall is positive */
	int ms = (int)((wall - (double)secs) * 1000.0);
	struct tm tm;

	if (ms < 0 || ms > 999)
		ms = ms < 0 ? 0 : 999;
	if (!gmtime_r(&secs, &tm)) {
		snprintf(out, size, "?");
		return;
	}
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

/* key: the time of w, or null; age_key (if any): seconds since then, or null. */
static void put_when(struct json_object *o, const char *key, const char *age_key,
		     struct notify_when w, struct notify_when now, bool *ok)
{
	char text[40];

	if (!notify_when_known(w)) {
		put_null(o, key, ok);
		if (age_key)
			put_null(o, age_key, ok);
		return;
	}
	notify_format_time(w.wall, text, sizeof(text));
	put(o, key, json_object_new_string(text), ok);
	if (age_key)
		put_seconds(o, age_key, now.mono > w.mono ? now.mono - w.mono : 0.0, ok);
}

static struct json_object *vrrp_json(const struct notify_view *v, bool *ok)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	put_text(o, "kind", v->kind, ok);
	put_text(o, "name", v->name, ok);
	put_text(o, "state", v->state, ok);
	if (v->state && !v->inferred)
		put(o, "priority", json_object_new_int(v->priority), ok);
	else
		put_null(o, "priority", ok);
	put(o, "inferred_from_vip", json_object_new_boolean(v->inferred), ok);
	put_when(o, "since", "for_seconds", v->state_since, v->now, ok);
	put_u64(o, "state_changes", v->state_changes, ok);
	return o;
}

static struct json_object *fifo_json(const struct notify_view *v, bool *ok)
{
	struct json_object *o = json_object_new_object(), *lines;

	if (!o)
		return NULL;
	put_text(o, "path", v->fifo_path, ok);
	put(o, "open", json_object_new_boolean(v->fifo_open), ok);
	put(o, "present", json_object_new_boolean(v->fifo_present), ok);
	lines = json_object_new_object();
	for (int r = 0; lines && r < NOTIFY_LINE_RESULTS; r++)
		put_u64(lines, notify_line_result_name(r), v->lines[r], ok);
	put(o, "lines", lines, ok);
	return o;
}

static struct json_object *hold_json(const struct notify_view *v, bool *ok)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	put(o, "configured", json_object_new_boolean(v->hold_configured), ok);
	put(o, "active", json_object_new_boolean(v->holding), ok);
	put(o, "expired", json_object_new_boolean(v->hold_expired), ok);
	put_when(o, "since", "for_seconds", v->holding || v->hold_expired
		 ? v->hold_since : (struct notify_when){ 0 }, v->now, ok);
	if (v->hold_configured)
		put_seconds(o, "timeout_seconds", v->hold_timeout_s, ok);
	else
		put_null(o, "timeout_seconds", ok);
	put_text(o, "method", v->hold_configured ? v->hold_method : NULL, ok);
	put_text(o, "local_postgres", v->local_target, ok);
	put_text(o, "local_role", v->local_target ? v->local_role : NULL, ok);
	return o;
}

static struct json_object *actions_json(const struct notify_view *v, bool *ok)
{
	const struct notify_bouncer_stats *s = v->bouncer;
	struct json_object *a = json_object_new_array();
	const struct notify_action_record *r;

	for (size_t i = 0; a && (r = notify_stats_last(s, i)); i++) {
		struct json_object *o = json_object_new_object();

		if (!o) {
			*ok = false;
			break;
		}
		put_when(o, "at", NULL, r->at, v->now, ok);
		put_text(o, "action", r->what, ok);
		put_text(o, "result", r->ok ? "ok" : "failed", ok);
		put_text(o, "error", r->ok ? NULL : r->error, ok);
		if (json_object_array_add(a, o) < 0) {
			json_object_put(o);
			*ok = false;
		}
	}
	return a;
}

static struct json_object *counts_json(const struct notify_bouncer_stats *s, bool *ok)
{
	struct json_object *o = json_object_new_object();

	for (int a = 0; o && a < NOTIFY_ACTIONS; a++) {
		struct json_object *c;

		if (a == NOTIFY_ACTION_OTHER && !s->actions[a][0] && !s->actions[a][1])
			continue;
		c = json_object_new_object();

		if (c) {
			put_u64(c, "ok", s->actions[a][1], ok);
			put_u64(c, "failed", s->actions[a][0], ok);
		}
		put(o, notify_action_name(a), c, ok);
	}
	return o;
}

static struct json_object *databases_json(const struct notify_bouncer_stats *s, bool *ok)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < s->n_dbs; i++) {
		struct json_object *o = json_object_new_object();

		if (!o) {
			*ok = false;
			break;
		}
		put_text(o, "name", s->dbs[i].name, ok);
		put_text(o, "mode", notify_db_mode_name(s->dbs[i].mode), ok);
		if (json_object_array_add(a, o) < 0) {
			json_object_put(o);
			*ok = false;
		}
	}
	return a;
}

static struct json_object *bouncer_json(const struct notify_view *v, bool *ok)
{
	const struct notify_bouncer_stats *s = v->bouncer;
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	put_text(o, "target", v->bouncer_target, ok);
	put_text(o, "mode", v->bouncer_mode, ok);
	put_text(o, "reason", v->bouncer_reason, ok);
	if (s->contacted || notify_when_known(s->last_error_at))
		put(o, "reachable", json_object_new_boolean(s->reachable), ok);
	else
		put_null(o, "reachable", ok);
	put_text(o, "last_error", notify_when_known(s->last_error_at) ? s->last_error : NULL, ok);
	put_when(o, "last_error_at", NULL, s->last_error_at, v->now, ok);
	put_when(o, "databases_seen_at", NULL, s->dbs_at, v->now, ok);
	put(o, "databases", databases_json(s, ok), ok);
	put_u64(o, "databases_not_shown", s->dbs_not_shown, ok);
	put_u64(o, "reconcile_repairs", s->repairs, ok);
	put(o, "actions_total", counts_json(s, ok), ok);
	put(o, "last_actions", actions_json(v, ok), ok);
	return o;
}

int notify_status_json(const struct notify_view *v, char **out, size_t *len)
{
	struct json_object *root = json_object_new_object();
	const char *text;
	bool ok = true;
	size_t n;

	*out = NULL;
	if (!root)
		return -ENOMEM;
	put_text(root, "version", v->version, &ok);
	put_when(root, "started", NULL, v->started, v->now, &ok);
	put_seconds(root, "uptime_seconds", v->now.mono - v->started.mono, &ok);
	put(root, "vrrp", vrrp_json(v, &ok), &ok);
	put(root, "fifo", fifo_json(v, &ok), &ok);
	put(root, "hold", hold_json(v, &ok), &ok);
	put(root, "pgbouncer", bouncer_json(v, &ok), &ok);
	text = ok ? json_object_to_json_string_length(root, JSONUTIL_FLAGS, &n) : NULL;
	if (text)
		*out = malloc(n + 2);
	if (*out) {
		memcpy(*out, text, n);
		(*out)[n] = '\n';
		(*out)[n + 1] = '\0';
		*len = n + 1;
	}
	json_object_put(root);
	return *out ? 0 : -ENOMEM;
}
