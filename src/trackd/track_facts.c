#include "track_facts.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "jsonutil.h"
#include "module_loader.h"
#include "track.h"
#include "trackd_expose.h"

/* One describe call: the objects and lists open, the top-level object first. */
struct builder {
	struct json_object *open[TRACK_FACTS_DEPTH + 1];
	int depth;   /* index of the innermost open one */
	int ignored; /* begins past the depth limit (or whose object failed): their ends too */
};

static struct builder *of(const struct pgtrackd_facts *f)
{
	return f->ctx;
}

/* Adds value (taken) to the innermost open object or list. */
static void put(const struct pgtrackd_facts *f, const char *key, struct json_object *value)
{
	struct builder *b = of(f);
	struct json_object *parent = b->open[b->depth];

	if (!value)
		return;
	if (b->ignored) {
		json_object_put(value);
	} else if (json_object_is_type(parent, json_type_array)) {
		if (json_object_array_add(parent, value) < 0)
			json_object_put(value);
	} else if (!key || json_object_object_add(parent, key, value) < 0) {
		json_object_put(value);
	}
}

static void put_int(const struct pgtrackd_facts *f, const char *key, int64_t value)
{
	put(f, key, json_object_new_int64(value));
}

static void put_double(const struct pgtrackd_facts *f, const char *key, double value)
{
	/* JSON has no NaN or infinity: such a figure is not known */
	if (isfinite(value))
		put(f, key, json_object_new_double(value));
}

static void put_text(const struct pgtrackd_facts *f, const char *key, const char *value)
{
	if (value)
		put(f, key, jsonutil_string(value));
}

static void begin(const struct pgtrackd_facts *f, const char *key, struct json_object *o)
{
	struct builder *b = of(f);

	if (b->ignored || b->depth == TRACK_FACTS_DEPTH || !o) {
		json_object_put(o);
		b->ignored++;
		return;
	}
	/* put takes o; it stays valid as the parent holds it (or until the end, if not added) */
	json_object_get(o);
	put(f, key, o);
	b->open[++b->depth] = o;
}

static void begin_object(const struct pgtrackd_facts *f, const char *key)
{
	begin(f, key, json_object_new_object());
}

static void begin_list(const struct pgtrackd_facts *f, const char *key)
{
	begin(f, key, json_object_new_array());
}

static void end(const struct pgtrackd_facts *f)
{
	struct builder *b = of(f);

	if (b->ignored) {
		b->ignored--;
		return;
	}
	if (b->depth == 0)
		return; /* the top level is the host's to close */
	json_object_put(b->open[b->depth--]);
}

struct json_object *track_facts_describe(void (*describe)(void *, const struct pgtrackd_facts *),
					 void *state)
{
	struct builder b = { .depth = 0 };
	const struct pgtrackd_facts facts = {
		.ctx = &b,
		.put_int = put_int,
		.put_double = put_double,
		.put_text = put_text,
		.begin_object = begin_object,
		.begin_list = begin_list,
		.end = end,
	};

	b.open[0] = json_object_new_object();
	if (!b.open[0])
		return NULL;
	describe(state, &facts);
	/* What the probe left open. */
	while (b.depth > 0)
		json_object_put(b.open[b.depth--]);
	return b.open[0];
}

void track_facts_forget(struct track_facts *f)
{
	if (f)
		f->fresh = false;
}

void track_facts_finish(struct track_facts *f)
{
	if (!f)
		return;
	json_object_put(f->obj);
	f->obj = NULL;
	f->fresh = false;
}

const struct json_object *track_facts_get(const struct track *t)
{
	struct track_facts *f = t->facts;
	void (*describe)(void *, const struct pgtrackd_facts *);
	double now;

	if (!f || !t->probe || !t->probe_ops)
		return NULL;
	describe = module_describe(t->probe_ops);
	if (!describe)
		return NULL;
	now = ev_now(t->host.loop);
	if (f->fresh && f->obj && f->at == now)
		return f->obj;
	json_object_put(f->obj);
	f->obj = track_facts_describe(describe, t->probe);
	f->at = now;
	f->fresh = f->obj != NULL;
	return f->obj;
}

static struct json_object *fact(const struct track *t, const char *key)
{
	struct json_object *obj = (struct json_object *)track_facts_get(t), *v;

	if (!obj || !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

int track_fact_int(const struct track *t, const char *key, int64_t *out)
{
	struct json_object *v = fact(t, key);

	if (!v || !json_object_is_type(v, json_type_int))
		return -ENOENT;
	*out = json_object_get_int64(v);
	return 0;
}

int track_fact_double(const struct track *t, const char *key, double *out)
{
	struct json_object *v = fact(t, key);

	if (!v || (!json_object_is_type(v, json_type_double) &&
		   !json_object_is_type(v, json_type_int)))
		return -ENOENT;
	*out = json_object_get_double(v);
	return 0;
}

const char *track_fact_text(const struct track *t, const char *key)
{
	struct json_object *v = fact(t, key);

	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}
