/*
 * trackd_expose: what pgtrackd shows of its tracks over HTTP, as pure
 * functions of the tracks (no I/O, nothing kept between calls).
 *
 * trackd_status_json renders /status (json-c, every text kept valid
 * UTF-8 through jsonutil.h), trackd_metrics_text renders /metrics
 * (Prometheus text format 0.0.4 through promtext.h).  Both read the
 * tracks' counters (track.h) and the facts their probes describe (module
 * ABI 3, track_facts.c); the facts are asked for at most once per loop
 * iteration however many requests come.
 */
#ifndef PGTRACKD_TRACKD_EXPOSE_H
#define PGTRACKD_TRACKD_EXPOSE_H

#include <stddef.h>
#include <stdint.h>

struct track;

struct trackd_view {
	struct track *const *tracks;
	size_t n_tracks;
	double started;        /* ev_now() when the daemon started (the loop's clock) */
	double started_wall;   /* time since the epoch when it started, for display */
	const char *version;
};

/* /status: a JSON document, malloc'ed, NUL-terminated.  0 or -ENOMEM. */
int trackd_status_json(const struct trackd_view *v, double now, char **out, size_t *len);
/* /metrics: Prometheus text exposition 0.0.4, malloc'ed.  0 or -ENOMEM. */
int trackd_metrics_text(const struct trackd_view *v, double now, char **out, size_t *len);

/*
 * A fact the track's probe last described (module ABI 3), by its
 * top-level key; -ENOENT when unknown (no such fact, another type, a
 * probe that describes nothing, a stopped track).  track_fact_double
 * also reads an int fact.  The text stays valid until the loop's next
 * iteration (the facts are described anew at most once per iteration).
 */
int track_fact_int(const struct track *t, const char *key, int64_t *out);
int track_fact_double(const struct track *t, const char *key, double *out);
const char *track_fact_text(const struct track *t, const char *key); /* NULL: unknown */

#endif
