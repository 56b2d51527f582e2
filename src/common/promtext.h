/*
 * promtext: writes the Prometheus text exposition format (version 0.0.4)
 * into a growing buffer, for /metrics.
 *
 * promtext_family() writes a family's HELP and TYPE lines, once: opening a
 * family twice is an error.  Its samples follow, carrying the family's name
 * (a histogram's or summary's with a suffix such as "_bucket" or "_sum").
 * Labels are alternating names and values ending with NULL; values are
 * escaped.  Errors stick: after the first failure every call does nothing
 * and promtext_take() returns it, so a writer checks once at the end.
 */
#ifndef PGTRACK_PROMTEXT_H
#define PGTRACK_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>

#define PROMTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum promtext_type {
	PROMTEXT_COUNTER,	/* the name must end in "_total" */
	PROMTEXT_GAUGE,
	PROMTEXT_HISTOGRAM,
	PROMTEXT_SUMMARY,
	PROMTEXT_UNTYPED,
};

struct promtext {
	char *buf;
	size_t len;
	size_t cap;
	int err;		/* the first -errno, or 0 */
	char family[128];	/* the open family's name; "" before the first */
};

void promtext_init(struct promtext *p);
void promtext_free(struct promtext *p);

/* -EINVAL (sticky) for a bad name, a counter without "_total", a repeat. */
void promtext_family(struct promtext *p, const char *name, enum promtext_type type,
		     const char *help);
/* A sample of the open family: value, then label name, value, ..., NULL. */
void promtext_sample(struct promtext *p, double value, ...);
/* The same with a suffix after the family's name ("_bucket", "_sum"). */
void promtext_sample_suffix(struct promtext *p, const char *suffix, double value, ...);

/*
 * Hands the text over (malloc'ed, NUL-terminated, for the caller to free)
 * and resets p; or frees it and returns the first error.
 */
int promtext_take(struct promtext *p, char **text, size_t *len);

/* v as the format spells it: "NaN", "+Inf", "-Inf", else the shortest exact form. */
void promtext_format_double(double v, char *out, size_t size);
/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: no ':' and no leading "__". */
bool promtext_valid_name(const char *name, bool label);

#endif
