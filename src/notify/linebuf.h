/*
 * linebuf: bytes from a pipe into whole lines.  One read may hold several
 * lines or half of one.  A line longer than the buffer is reported once
 * as over-long and skipped up to its newline; nothing else is lost.
 * Pure code, fixed memory.
 */
#ifndef PGTRACK_LINEBUF_H
#define PGTRACK_LINEBUF_H

#include <stdbool.h>
#include <stddef.h>

#define LINEBUF_SIZE 512

struct linebuf {
	char buf[LINEBUF_SIZE];
	size_t len;
	bool discarding; /* inside an over-long line */
};

/*
 * Called for each complete line (without '\n').  overlong is true for a
 * line that did not fit; line then holds its first LINEBUF_SIZE bytes.
 */
typedef void (*linebuf_cb)(const char *line, size_t len, bool overlong, void *user);

void linebuf_init(struct linebuf *lb);
void linebuf_feed(struct linebuf *lb, const char *data, size_t len, linebuf_cb cb, void *user);
/* Bytes of an unfinished line waiting for their newline. */
size_t linebuf_pending(const struct linebuf *lb);

#endif
