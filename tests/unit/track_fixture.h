/*
 * track_fixture: real tracks (src/trackd/track.h) on a real libev loop,
 * run by a probe module compiled into the test (no dlopen): the test
 * holds the probe's host and reports what it likes, and the probe
 * describes whatever facts the test put in fixture_facts.
 */
#ifndef PGTRACK_TEST_TRACK_FIXTURE_H
#define PGTRACK_TEST_TRACK_FIXTURE_H

#include <ev.h>
#include <stdlib.h>

#include <pgtrackd/module.h>

#include "module_loader.h"
#include "testutil.h"
#include "track.h"

/* The probe of a fixture track. */
struct fixture_probe {
	const struct pgtrackd_host *host;
	int describes; /* describe calls so far */
	void (*facts)(const struct pgtrackd_facts *out); /* what describe writes, or NULL */
};

static struct fixture_probe *fixture_last_probe;

static int fixture_init(const struct pgtrackd_host *host, const struct pgtrackd_dict *config,
			void **state)
{
	struct fixture_probe *p = calloc(1, sizeof(*p));

	(void)config;
	if (!p)
		return -1;
	p->host = host;
	fixture_last_probe = p;
	*state = p;
	return 0;
}

static int fixture_start(void *state)
{
	(void)state;
	return 0;
}

static void fixture_stop(void *state)
{
	(void)state;
}

static void fixture_destroy(void *state)
{
	free(state);
}

static void fixture_describe(void *state, const struct pgtrackd_facts *out)
{
	struct fixture_probe *p = state;

	p->describes++;
	if (p->facts)
		p->facts(out);
}

static const struct pgtrackd_module fixture_ops_abi3 = {
	.abi_version = 3, .name = "fixture", .init = fixture_init, .start = fixture_start,
	.stop = fixture_stop, .destroy = fixture_destroy, .describe = fixture_describe,
};

/* A module built for ABI 2: the host must not read describe (set here to catch it). */
static const struct pgtrackd_module fixture_ops_abi2 = {
	.abi_version = 2, .name = "fixture-abi2", .init = fixture_init, .start = fixture_start,
	.stop = fixture_stop, .destroy = fixture_destroy, .describe = fixture_describe,
};

/* A loaded_module without a file: the test holds one reference, so it is never unloaded. */
struct fixture_module {
	struct loaded_module m;
	char path[8];
};

static void fixture_module_init(struct fixture_module *fm, const struct pgtrackd_module *ops)
{
	fm->m = (struct loaded_module){ .object = NULL, .ops = ops, .refs = 1 };
}

static void fixture_settings(struct track_settings *s, const char *dir, const char *name)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (snprintf(s->file, sizeof(s->file), "%.150s/%.40s", dir, name) < 0)
		abort();
	snprintf(s->module, sizeof(s->module), "/fixture.so");
	s->interval_ms = 1000;
	s->rise = 1;
	s->fall = 2;
	s->reminder_interval_ms = 60000;
	for (int i = 0; i < TRACK_N_STATES; i++)
		s->values[i] = atoi(track_states[i].default_value);
}

/* A started track running the fixture module ops; its probe in *probe. */
static struct track *fixture_track(struct ev_loop *loop, const char *dir, const char *name,
				   struct fixture_module *fm, struct fixture_probe **probe)
{
	struct track_settings s;
	struct track *t;

	fixture_settings(&s, dir, name);
	t = track_create(loop, &s, &fm->m, 1000);
	*probe = fixture_last_probe;
	return t;
}

#endif
