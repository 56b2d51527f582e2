/*
 * linebuf (src/notify/linebuf.h): a byte stream into lines, whatever the
 * reads look like.  Over-long lines (> LINEBUF_SIZE bytes) are reported
 * once with their first LINEBUF_SIZE bytes and skipped up to their newline.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "linebuf.h"

#define MAX_LINES 64

/* What the callback saw. */
struct seen {
	int n;
	struct {
		char data[LINEBUF_SIZE];
		size_t len;
		bool overlong;
	} line[MAX_LINES];
	int bad_len; /* calls with len > LINEBUF_SIZE, or overlong with len != LINEBUF_SIZE */
};

static void collect(const char *line, size_t len, bool overlong, void *user)
{
	struct seen *s = user;

	if (len > LINEBUF_SIZE || (overlong && len != LINEBUF_SIZE)) {
		s->bad_len++;
		return;
	}
	if (s->n < MAX_LINES) {
		memcpy(s->line[s->n].data, line, len);
		s->line[s->n].len = len;
		s->line[s->n].overlong = overlong;
	}
	s->n++;
}

static void reset(struct linebuf *lb, struct seen *s)
{
	linebuf_init(lb);
	memset(s, 0, sizeof(*s));
}

/* Feeds a NUL-terminated string. */
static void feed(struct linebuf *lb, struct seen *s, const char *text)
{
	linebuf_feed(lb, text, strlen(text), collect, s);
}

/* Feeds from a heap copy of exactly len bytes, so that over-reads show. */
static void feed_bytes(struct linebuf *lb, struct seen *s, const char *data, size_t len)
{
	char *copy = malloc(len ? len : 1);

	if (!copy)
		exit(2);
	memcpy(copy, data, len);
	linebuf_feed(lb, copy, len, collect, s);
	free(copy);
}

static void check_line(const struct seen *s, int i, const char *data, size_t len, bool overlong,
		       int lineno)
{
	checks++;
	if (i >= s->n || i >= MAX_LINES) {
		failures++;
		printf("%s:%d: line %d missing (%d lines seen)\n", __FILE__, lineno, i, s->n);
		return;
	}
	if (s->line[i].len != len || s->line[i].overlong != overlong ||
	    memcmp(s->line[i].data, data, len) != 0) {
		failures++;
		printf("%s:%d: line %d: len %zu overlong %d \"%.*s\"; expected len %zu overlong %d "
		       "\"%.*s\"\n",
		       __FILE__, lineno, i, s->line[i].len, (int)s->line[i].overlong,
		       (int)(s->line[i].len > 60 ? 60 : s->line[i].len), s->line[i].data, len,
		       (int)overlong, (int)(len > 60 ? 60 : len), data);
	}
}

#define LINE(s, i, text) check_line(&(s), i, text, strlen(text), false, __LINE__)
#define LINE_N(s, i, data, len, ovl) check_line(&(s), i, data, len, ovl, __LINE__)

static void test_one_line(void)
{
	struct linebuf lb;
	struct seen s;

	reset(&lb, &s);
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
	feed(&lb, &s, "INSTANCE \"VI_1\" MASTER 100\n");
	CHECK_INT_EQ(s.n, 1);
	LINE(s, 0, "INSTANCE \"VI_1\" MASTER 100");
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
	CHECK_INT_EQ(s.bad_len, 0);
}

/* One line arriving a byte at a time: nothing until its newline. */
static void test_byte_by_byte(void)
{
	const char *text = "INSTANCE \"VI 1\" BACKUP 100\n";
	size_t len = strlen(text);
	struct linebuf lb;
	struct seen s;

	reset(&lb, &s);
	for (size_t i = 0; i < len; i++) {
		feed_bytes(&lb, &s, text + i, 1);
		if (i + 1 < len) {
			CHECK_INT_EQ(s.n, 0);
			CHECK_INT_EQ(linebuf_pending(&lb), i + 1);
		}
	}
	CHECK_INT_EQ(s.n, 1);
	LINE(s, 0, "INSTANCE \"VI 1\" BACKUP 100");
	CHECK_INT_EQ(linebuf_pending(&lb), 0);

	/* And several lines, byte by byte. */
	text = "a\nbc\n\ndef\n";
	reset(&lb, &s);
	for (size_t i = 0; i < strlen(text); i++)
		feed_bytes(&lb, &s, text + i, 1);
	CHECK_INT_EQ(s.n, 4);
	LINE(s, 0, "a");
	LINE(s, 1, "bc");
	LINE(s, 2, "");
	LINE(s, 3, "def");
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
}

/* A burst: several lines in one read, in order. */
static void test_several_in_one_feed(void)
{
	struct linebuf lb;
	struct seen s;

	reset(&lb, &s);
	feed(&lb, &s,
	     "INSTANCE \"VI_1\" BACKUP 100\n"
	     "GROUP \"G_1\" BACKUP 0\n"
	     "VS FWM 3 UP\n"
	     "INSTANCE \"VI_1\" MASTER 100\n");
	CHECK_INT_EQ(s.n, 4);
	LINE(s, 0, "INSTANCE \"VI_1\" BACKUP 100");
	LINE(s, 1, "GROUP \"G_1\" BACKUP 0");
	LINE(s, 2, "VS FWM 3 UP");
	LINE(s, 3, "INSTANCE \"VI_1\" MASTER 100");
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
}

/* Reads that cut lines anywhere. */
static void test_split_reads(void)
{
	struct linebuf lb;
	struct seen s;

	reset(&lb, &s);
	feed(&lb, &s, "INSTANCE \"VI");
	CHECK_INT_EQ(s.n, 0);
	CHECK_INT_EQ(linebuf_pending(&lb), 12);
	feed(&lb, &s, "_1\" MASTER 100\nGROUP \"G\" ");
	CHECK_INT_EQ(s.n, 1);
	LINE(s, 0, "INSTANCE \"VI_1\" MASTER 100");
	CHECK_INT_EQ(linebuf_pending(&lb), 10);
	feed(&lb, &s, "STOP 0");
	CHECK_INT_EQ(s.n, 1);
	CHECK_INT_EQ(linebuf_pending(&lb), 16);
	feed(&lb, &s, "\n");
	CHECK_INT_EQ(s.n, 2);
	LINE(s, 1, "GROUP \"G\" STOP 0");
	CHECK_INT_EQ(linebuf_pending(&lb), 0);

	/* Newline at the very start of a read. */
	reset(&lb, &s);
	feed(&lb, &s, "abc");
	feed(&lb, &s, "\ndef");
	feed(&lb, &s, "\n");
	CHECK_INT_EQ(s.n, 2);
	LINE(s, 0, "abc");
	LINE(s, 1, "def");
}

static void test_empty_lines(void)
{
	struct linebuf lb;
	struct seen s;

	reset(&lb, &s);
	feed(&lb, &s, "\n\n\n");
	CHECK_INT_EQ(s.n, 3);
	LINE(s, 0, "");
	LINE(s, 1, "");
	LINE(s, 2, "");

	reset(&lb, &s);
	feed(&lb, &s, "a\n\nb\n");
	feed(&lb, &s, "\n");
	CHECK_INT_EQ(s.n, 4);
	LINE(s, 0, "a");
	LINE(s, 1, "");
	LINE(s, 2, "b");
	LINE(s, 3, "");
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
}

/* The end of a read without a newline waits for the rest. */
static void test_trailing_partial(void)
{
	struct linebuf lb;
	struct seen s;

	reset(&lb, &s);
	feed(&lb, &s, "a\nbcd");
	CHECK_INT_EQ(s.n, 1);
	LINE(s, 0, "a");
	CHECK_INT_EQ(linebuf_pending(&lb), 3);

	/* An empty read changes nothing. */
	linebuf_feed(&lb, "", 0, collect, &s);
	linebuf_feed(&lb, "\n", 0, collect, &s);
	CHECK_INT_EQ(s.n, 1);
	CHECK_INT_EQ(linebuf_pending(&lb), 3);

	feed(&lb, &s, "e");
	CHECK_INT_EQ(linebuf_pending(&lb), 4);
	feed(&lb, &s, "\nxy");
	CHECK_INT_EQ(s.n, 2);
	LINE(s, 1, "bcde");
	CHECK_INT_EQ(linebuf_pending(&lb), 2);

	/* linebuf_init drops it. */
	linebuf_init(&lb);
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
	feed(&lb, &s, "z\n");
	CHECK_INT_EQ(s.n, 3);
	LINE(s, 2, "z");
}

/* Bytes are passed through as they are: NUL, CR, high bytes. */
static void test_binary(void)
{
	struct linebuf lb;
	struct seen s;

	reset(&lb, &s);
	feed_bytes(&lb, &s, "a\0b\r\n\0\n\xff\r\n", 10);
	CHECK_INT_EQ(s.n, 3);
	LINE_N(s, 0, "a\0b\r", 4, false);
	LINE_N(s, 1, "\0", 1, false);
	LINE_N(s, 2, "\xff\r", 2, false);
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
}

/* Fills buf with len bytes of a recognisable pattern. */
static void pattern(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('!' + (i * 7 + seed) % 90);
}

/* A line of exactly LINEBUF_SIZE bytes fits, however it arrives. */
static void test_exactly_full(void)
{
	char data[LINEBUF_SIZE + 16];
	struct linebuf lb;
	struct seen s;

	pattern(data, LINEBUF_SIZE, 1);

	/* All at once, with the next line. */
	reset(&lb, &s);
	memcpy(data + LINEBUF_SIZE, "\nok\n", 4);
	feed_bytes(&lb, &s, data, LINEBUF_SIZE + 4);
	CHECK_INT_EQ(s.n, 2);
	LINE_N(s, 0, data, LINEBUF_SIZE, false);
	LINE(s, 1, "ok");
	CHECK_INT_EQ(linebuf_pending(&lb), 0);

	/* 512 bytes, then the newline alone: full buffer, still pending. */
	reset(&lb, &s);
	feed_bytes(&lb, &s, data, LINEBUF_SIZE);
	CHECK_INT_EQ(s.n, 0);
	CHECK_INT_EQ(linebuf_pending(&lb), LINEBUF_SIZE);
	feed(&lb, &s, "\n");
	CHECK_INT_EQ(s.n, 1);
	LINE_N(s, 0, data, LINEBUF_SIZE, false);
	CHECK_INT_EQ(linebuf_pending(&lb), 0);

	/* 511, then the last byte with the newline. */
	reset(&lb, &s);
	feed_bytes(&lb, &s, data, LINEBUF_SIZE - 1);
	CHECK_INT_EQ(linebuf_pending(&lb), LINEBUF_SIZE - 1);
	feed_bytes(&lb, &s, data + LINEBUF_SIZE - 1, 2);
	CHECK_INT_EQ(s.n, 1);
	LINE_N(s, 0, data, LINEBUF_SIZE, false);

	/* Byte by byte. */
	reset(&lb, &s);
	for (size_t i = 0; i < LINEBUF_SIZE + 4; i++)
		feed_bytes(&lb, &s, data + i, 1);
	CHECK_INT_EQ(s.n, 2);
	LINE_N(s, 0, data, LINEBUF_SIZE, false);
	LINE(s, 1, "ok");

	/* After a partial line, a full one: the buffer starts over. */
	reset(&lb, &s);
	feed(&lb, &s, "x\n");
	feed_bytes(&lb, &s, data, LINEBUF_SIZE + 1);
	CHECK_INT_EQ(s.n, 2);
	LINE(s, 0, "x");
	LINE_N(s, 1, data, LINEBUF_SIZE, false);
	CHECK_INT_EQ(s.bad_len, 0);
}

/* LINEBUF_SIZE + 1 bytes: reported once, truncated, rest skipped. */
static void test_one_too_long(void)
{
	char data[LINEBUF_SIZE + 64];
	size_t n;
	struct linebuf lb;
	struct seen s;
	const char *next = "\nINSTANCE \"VI_1\" MASTER 1\n";

	pattern(data, LINEBUF_SIZE + 1, 2);
	memcpy(data + LINEBUF_SIZE + 1, next, strlen(next));
	n = LINEBUF_SIZE + 1 + strlen(next);

	/* All in one read. */
	reset(&lb, &s);
	feed_bytes(&lb, &s, data, n);
	CHECK_INT_EQ(s.n, 2);
	LINE_N(s, 0, data, LINEBUF_SIZE, true);
	LINE(s, 1, "INSTANCE \"VI_1\" MASTER 1");
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
	CHECK_INT_EQ(s.bad_len, 0);

	/* Byte by byte: reported when the 513th byte comes, once. */
	reset(&lb, &s);
	for (size_t i = 0; i < n; i++) {
		feed_bytes(&lb, &s, data + i, 1);
		if (i < LINEBUF_SIZE)
			CHECK_INT_EQ(s.n, 0);
		else if (i < n - 1)
			CHECK_INT_EQ(s.n, 1);
		if (i == LINEBUF_SIZE)
			CHECK_INT_EQ(linebuf_pending(&lb), 0);
	}
	CHECK_INT_EQ(s.n, 2);
	LINE_N(s, 0, data, LINEBUF_SIZE, true);
	LINE(s, 1, "INSTANCE \"VI_1\" MASTER 1");

	/* The first 512 bytes, then the 513th with the newline and the next line. */
	reset(&lb, &s);
	feed_bytes(&lb, &s, data, LINEBUF_SIZE);
	CHECK_INT_EQ(s.n, 0);
	feed_bytes(&lb, &s, data + LINEBUF_SIZE, n - LINEBUF_SIZE);
	CHECK_INT_EQ(s.n, 2);
	LINE_N(s, 0, data, LINEBUF_SIZE, true);
	LINE(s, 1, "INSTANCE \"VI_1\" MASTER 1");

	/* The long line's tail and the next line's head in one read. */
	reset(&lb, &s);
	feed_bytes(&lb, &s, data, LINEBUF_SIZE + 1);
	CHECK_INT_EQ(s.n, 1);
	CHECK_INT_EQ(linebuf_pending(&lb), 0);
	feed(&lb, &s, "\nGROUP \"G");
	CHECK_INT_EQ(s.n, 1);
	CHECK_INT_EQ(linebuf_pending(&lb), 8);
	feed(&lb, &s, "\" STOP 0\n");
	CHECK_INT_EQ(s.n, 2);
	LINE_N(s, 0, data, LINEBUF_SIZE, true);
	LINE(s, 1, "GROUP \"G\" STOP 0");
}

/* A very long line over many reads: one report, nothing from its tail. */
static void test_long_over_many_feeds(void)
{
	static char data[20000];
	struct linebuf lb;
	struct seen s;
	const size_t sizes[] = { 1, 7, 100, 511, 512, 513, 4096 };

	pattern(data, sizeof(data), 3);
	/* The tail holds newline-free text that looks like lines. */
	memcpy(data + 15000, "INSTANCE \"VI_1\" MASTER 100", 26);

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t step = sizes[k];

		reset(&lb, &s);
		feed(&lb, &s, "before\n");
		for (size_t off = 0; off < sizeof(data); off += step) {
			size_t len = sizeof(data) - off < step ? sizeof(data) - off : step;

			feed_bytes(&lb, &s, data + off, len);
			CHECK(linebuf_pending(&lb) <= LINEBUF_SIZE);
		}
		CHECK_INT_EQ(s.n, 2);
		/* Nothing is held while the rest is skipped. */
		CHECK_INT_EQ(linebuf_pending(&lb), 0);
		feed(&lb, &s, "\nafter\n");
		CHECK_INT_EQ(s.n, 3);
		LINE(s, 0, "before");
		LINE_N(s, 1, data, LINEBUF_SIZE, true);
		LINE(s, 2, "after");
		CHECK_INT_EQ(linebuf_pending(&lb), 0);
		CHECK_INT_EQ(s.bad_len, 0);
	}

	/* Two long lines in a row, each reported once. */
	reset(&lb, &s);
	feed_bytes(&lb, &s, data, 700);
	feed(&lb, &s, "\n");
	feed_bytes(&lb, &s, data + 1000, 3000);
	feed(&lb, &s, "\nend\n");
	CHECK_INT_EQ(s.n, 3);
	LINE_N(s, 0, data, LINEBUF_SIZE, true);
	LINE_N(s, 1, data + 1000, LINEBUF_SIZE, true);
	LINE(s, 2, "end");

	/* A partial line that grows too long across reads. */
	reset(&lb, &s);
	feed_bytes(&lb, &s, data, 300);
	feed_bytes(&lb, &s, data + 300, 300);
	CHECK_INT_EQ(s.n, 1);
	LINE_N(s, 0, data, LINEBUF_SIZE, true);
	feed(&lb, &s, "still the long line\nok\n");
	CHECK_INT_EQ(s.n, 2);
	LINE(s, 1, "ok");
}

/*
 * Random streams cut into random reads, against a model of the rules: a
 * line of L bytes comes out as its min(L, LINEBUF_SIZE) first bytes,
 * overlong when L > LINEBUF_SIZE; a line still open at the end is only
 * reported if it is already too long.
 */
static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

struct model {
	const char *data;
	size_t size;
	size_t pos; /* start of the next expected line */
	int errors;
	int lines;
};

static void model_cb(const char *line, size_t len, bool overlong, void *user)
{
	struct model *m = user;
	const char *nl = memchr(m->data + m->pos, '\n', m->size - m->pos);
	size_t full = nl ? (size_t)(nl - (m->data + m->pos)) : m->size - m->pos;
	size_t want = full > LINEBUF_SIZE ? LINEBUF_SIZE : full;

	m->lines++;
	if (len != want || overlong != (full > LINEBUF_SIZE) || (!nl && full <= LINEBUF_SIZE) ||
	    memcmp(line, m->data + m->pos, len) != 0) {
		if (m->errors++ < 5)
			printf("%s: model: line at %zu: got len %zu overlong %d, expected len %zu "
			       "overlong %d%s\n",
			       __FILE__, m->pos, len, (int)overlong, want, (int)(full > LINEBUF_SIZE),
			       !nl && full <= LINEBUF_SIZE ? " (not yet terminated)" : "");
	}
	m->pos = nl ? (size_t)(nl - m->data) + 1 : m->size;
}

static void test_random_streams(void)
{
	static char data[8192];
	const size_t lens[] = { 0, 1, 2, 30, 511, 512, 513, 514, 1023, 1024, 1025, 3000 };

	for (int round = 0; round < 300; round++) {
		size_t size = 0;
		struct linebuf lb;
		struct model m = { data, 0, 0, 0, 0 };

		while (size < sizeof(data) - 1) {
			size_t len = lens[rng() % (sizeof(lens) / sizeof(lens[0]))];

			if (rng() % 2)
				len = rng() % 600;
			if (len > sizeof(data) - 1 - size)
				len = sizeof(data) - 1 - size;
			for (size_t i = 0; i < len; i++) {
				data[size + i] = (char)(rng() % 256);
				if (data[size + i] == '\n')
					data[size + i] = 'N';
			}
			size += len;
			data[size++] = '\n';
		}
		/* Sometimes end inside a line: a short one, or an over-long one. */
		if (round % 3 == 1) {
			size -= 1 + rng() % 200;
		} else if (round % 3 == 2) {
			size--;
			for (size_t i = size - 700; i < size; i++)
				if (data[i] == '\n')
					data[i] = 'n';
		}
		m.size = size;

		linebuf_init(&lb);
		for (size_t off = 0; off < size;) {
			size_t step;

			switch (rng() % 4) {
			case 0:
				step = 1 + rng() % 4;
				break;
			case 1:
				step = 1 + rng() % 64;
				break;
			case 2:
				step = 1 + rng() % 1024;
				break;
			default:
				step = 1 + rng() % 8192;
				break;
			}
			if (step > size - off)
				step = size - off;
			linebuf_feed(&lb, data + off, step, model_cb, &m);
			off += step;
			checks++;
			if (linebuf_pending(&lb) > LINEBUF_SIZE) {
				failures++;
				printf("%s: round %d: pending %zu\n", __FILE__, round,
				       linebuf_pending(&lb));
			}
		}
		/* Whatever was not reported is the open line, and it fits. */
		checks++;
		if (m.errors || memchr(data + m.pos, '\n', size - m.pos) ||
		    size - m.pos > LINEBUF_SIZE || linebuf_pending(&lb) != size - m.pos) {
			failures++;
			printf("%s: round %d: %d model errors, %d lines, %zu bytes unreported, "
			       "pending %zu\n",
			       __FILE__, round, m.errors, m.lines, size - m.pos, linebuf_pending(&lb));
		}
	}
}

int main(void)
{
	test_one_line();
	test_byte_by_byte();
	test_several_in_one_feed();
	test_split_reads();
	test_empty_lines();
	test_trailing_partial();
	test_binary();
	test_exactly_full();
	test_one_too_long();
	test_long_over_many_feeds();
	test_random_streams();
	CHECK_DONE();
}
