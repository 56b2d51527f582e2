/*
 * track_facts: what a track's probe describes of itself (module ABI 3,
 * struct pgtrackd_facts), kept as a json-c object.
 *
 * Nothing is kept per check: the probe's describe is called when someone
 * asks (track_facts_get, from an HTTP request), and its answer is reused
 * for the rest of that loop iteration.  A module built for ABI 2 has no
 * describe: its track has no facts.  The lookups by key are in
 * trackd_expose.h (track_fact_int and friends).
 */
#ifndef PGTRACKD_TRACK_FACTS_H
#define PGTRACKD_TRACK_FACTS_H

#include <json-c/json.h>
#include <stdbool.h>

#include <pgtrackd/module.h>

struct track;

/* Nesting of begin_object/begin_list under the top-level object. */
#define TRACK_FACTS_DEPTH 4

struct track_facts {
	struct json_object *obj; /* the last description, NULL if none */
	double at;               /* ev_now when it was made */
	bool fresh;              /* obj is of the probe running now */
};

/* The probe's facts as of this loop iteration (described now if needed), or NULL. */
const struct json_object *track_facts_get(const struct track *t);
/* The probe changed (reload, stop): the next get describes anew. */
void track_facts_forget(struct track_facts *f);
void track_facts_finish(struct track_facts *f);

/*
 * Calls describe(state, ...) and returns what it put as a new object
 * (NULL on ENOMEM).  For track_facts_get, and for tests of a probe's
 * describe.
 */
struct json_object *track_facts_describe(void (*describe)(void *, const struct pgtrackd_facts *),
					 void *state);

#endif
