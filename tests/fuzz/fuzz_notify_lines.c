/*
 * fuzz_notify_lines: arbitrary bytes from keepalived's notify FIFO, through
 * linebuf (src/notify/linebuf.h) into vrrp_event_parse
 * (src/notify/vrrp_event.h), as pgtrack-notify reads them.
 *
 * Built as a libFuzzer target under clang (tests/fuzz/meson.build), and
 * with replay.c as a plain program that runs the seed corpus in every
 * build.  A broken invariant aborts, which both report as a failure.
 *
 * Checked:
 *  - linebuf: every line given to the callback is at most LINEBUF_SIZE
 *    bytes; it is exactly what a simple model of the rules expects
 *    (min(L, LINEBUF_SIZE) first bytes of each line of L bytes, overlong
 *    iff L > LINEBUF_SIZE, an unterminated line only if already too long);
 *    the same lines come out whether the input arrives at once, in
 *    pseudo-random pieces or byte by byte; linebuf_pending() is what is
 *    left of the unterminated line.
 *  - vrrp_event_parse, on each line and on the whole input: a valid
 *    result; a reason on error and none otherwise; on OK a non-empty,
 *    NUL-terminated name of at most VRRP_NAME_MAX bytes, a known kind and
 *    state, priority 0..255, and the line is exactly
 *    KIND "name" STATE digits[\r]; IGNORED only for empty and VS/RS lines.
 *    The parser gets a heap copy of exactly the line's bytes, so ASan
 *    sees any read past its end.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linebuf.h"
#include "vrrp_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                              \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                \
			abort();                                                       \
		}                                                                      \
	} while (0)

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

static void check_event(const char *line, size_t len)
{
	char *copy = malloc(len ? len : 1);
	struct vrrp_event ev;
	const char *why = "(untouched)";
	enum vrrp_parse_result r;
	size_t body = len; /* without a trailing CR */

	FUZZ_ASSERT(copy != NULL);
	memcpy(copy, line, len);
	memset(&ev, 0x5a, sizeof(ev));
	r = vrrp_event_parse(copy, len, &ev, &why);
	free(copy);
	if (body > 0 && line[body - 1] == '\r')
		body--;

	switch (r) {
	case VRRP_PARSE_OK: {
		char prefix[VRRP_NAME_MAX + 64];
		size_t name_len = strnlen(ev.name, sizeof(ev.name));
		size_t prefix_len, digits;
		int value = 0;

		FUZZ_ASSERT(why == NULL);
		FUZZ_ASSERT(memchr(line, '\0', len) == NULL);
		FUZZ_ASSERT(name_len < sizeof(ev.name)); /* NUL-terminated */
		FUZZ_ASSERT(name_len >= 1 && name_len <= VRRP_NAME_MAX);
		FUZZ_ASSERT(ev.kind == VRRP_INSTANCE || ev.kind == VRRP_GROUP);
		FUZZ_ASSERT(ev.state >= VRRP_MASTER && ev.state <= VRRP_UNKNOWN_STATE);
		FUZZ_ASSERT(strcmp(vrrp_state_name(ev.state), "?") != 0);
		FUZZ_ASSERT(ev.priority >= 0 && ev.priority <= 255);

		/* Round trip: the line is KIND "name" STATE <digits>. */
		prefix_len = (size_t)snprintf(prefix, sizeof(prefix), "%s \"%s\" %s ",
					      vrrp_kind_name(ev.kind), ev.name,
					      vrrp_state_name(ev.state));
		FUZZ_ASSERT(prefix_len < sizeof(prefix));
		FUZZ_ASSERT(body > prefix_len);
		FUZZ_ASSERT(memcmp(line, prefix, prefix_len) == 0);
		digits = body - prefix_len;
		FUZZ_ASSERT(digits >= 1 && digits <= 3);
		for (size_t i = prefix_len; i < body; i++) {
			FUZZ_ASSERT(line[i] >= '0' && line[i] <= '9');
			value = value * 10 + (line[i] - '0');
		}
		FUZZ_ASSERT(value == ev.priority);
		break;
	}
	case VRRP_PARSE_IGNORED:
		FUZZ_ASSERT(why == NULL);
		FUZZ_ASSERT(memchr(line, '\0', len) == NULL);
		FUZZ_ASSERT(body == 0 || starts_with(line, body, "VS ") ||
			    starts_with(line, body, "RS "));
		break;
	case VRRP_PARSE_ERROR:
		FUZZ_ASSERT(why != NULL && why[0] != '\0' && strcmp(why, "(untouched)") != 0);
		if (memchr(line, '\0', len) != NULL)
			FUZZ_ASSERT(strstr(why, "NUL") != NULL);
		break;
	default:
		FUZZ_ASSERT(!"unknown vrrp_parse_result");
	}
}

/* Expected lines, computed from the whole input. */
struct model {
	const char *data;
	size_t size;
	size_t pos; /* where the next expected line starts */
	bool parse;
};

static void on_line(const char *line, size_t len, bool overlong, void *user)
{
	struct model *m = user;
	const char *nl, *start;
	size_t full;

	FUZZ_ASSERT(len <= LINEBUF_SIZE);
	FUZZ_ASSERT(!overlong || len == LINEBUF_SIZE);
	FUZZ_ASSERT(m->pos < m->size);
	start = m->data + m->pos;
	nl = memchr(start, '\n', m->size - m->pos);
	full = nl ? (size_t)(nl - start) : m->size - m->pos;
	/* An unterminated line is reported only once it is too long. */
	FUZZ_ASSERT(nl != NULL || full > LINEBUF_SIZE);
	FUZZ_ASSERT(overlong == (full > LINEBUF_SIZE));
	FUZZ_ASSERT(len == (overlong ? LINEBUF_SIZE : full));
	FUZZ_ASSERT(memcmp(line, start, len) == 0);
	FUZZ_ASSERT(memchr(line, '\n', len) == NULL);
	m->pos = nl ? (size_t)(nl - m->data) + 1 : m->size;

	if (m->parse && !overlong)
		check_event(line, len);
}

/* After the whole input: all that is left is one open line that fits. */
static void check_end(const struct linebuf *lb, const struct model *m)
{
	size_t rest = m->size - m->pos;

	FUZZ_ASSERT(memchr(m->data + m->pos, '\n', rest) == NULL);
	FUZZ_ASSERT(rest <= LINEBUF_SIZE);
	FUZZ_ASSERT(linebuf_pending(lb) == rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct linebuf lb;
	struct model m = { text, size, 0, true };
	uint32_t seed = 2166136261u;

	/* 1. All at once, parsing each line. */
	linebuf_init(&lb);
	linebuf_feed(&lb, text, size, on_line, &m);
	check_end(&lb, &m);

	/* 2. In pseudo-random pieces (seeded from the input). */
	for (size_t i = 0; i < size && i < 16; i++)
		seed = (seed ^ data[i]) * 16777619u;
	seed ^= (uint32_t)size;
	if (seed == 0)
		seed = 1;
	m.pos = 0;
	m.parse = false;
	linebuf_init(&lb);
	for (size_t off = 0; off < size;) {
		size_t step;

		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		step = seed % 4 == 0 ? 1 + seed % 600 : 1 + (seed >> 8) % 24;
		if (step > size - off)
			step = size - off;
		linebuf_feed(&lb, text + off, step, on_line, &m);
		FUZZ_ASSERT(linebuf_pending(&lb) <= LINEBUF_SIZE);
		off += step;
	}
	check_end(&lb, &m);

	/* 3. Byte by byte. */
	m.pos = 0;
	linebuf_init(&lb);
	for (size_t off = 0; off < size; off++)
		linebuf_feed(&lb, text + off, 1, on_line, &m);
	check_end(&lb, &m);

	/* 4. The whole input as one line, newlines and all. */
	check_event(text, size);
	return 0;
}
