/*
 * duration: "250ms", "2s", "5m", "1h" or a bare number of seconds,
 * as written in configuration files, to milliseconds and back.
 */
#ifndef PGTRACK_DURATION_H
#define PGTRACK_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* 0 on success, -EINVAL on a malformed string, -ERANGE on overflow. */
int duration_parse(const char *text, int64_t *ms);

/* Writes the shortest exact form ("1500ms", "2s", "5m") into buf. */
void duration_format(int64_t ms, char *buf, size_t size);

/*
 * Sizes as PostgreSQL writes them: "8192", "64kB", "16MB", "1GB", "1TB"
 * (powers of 1024).  0, -EINVAL or -ERANGE.
 */
int size_parse(const char *text, int64_t *bytes);

/* Milliseconds, for tables of limits: DURATION_SEC(10) == 10000. */
#define DURATION_MS(x) ((int64_t)(x))
#define DURATION_SEC(x) ((int64_t)(x) * 1000)

static inline double duration_seconds(int64_t ms)
{
	return (double)ms / 1000.0;
}

#endif
