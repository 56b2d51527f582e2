#include "promtext.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_CAP 4096

static const char *const type_names[] = {
	[PROMTEXT_COUNTER] = "counter",
	[PROMTEXT_GAUGE] = "gauge",
	[PROMTEXT_HISTOGRAM] = "histogram",
	[PROMTEXT_SUMMARY] = "summary",
	[PROMTEXT_UNTYPED] = "untyped",
};

void promtext_init(struct promtext *p)
{
	memset(p, 0, sizeof(*p));
}

void promtext_free(struct promtext *p)
{
	free(p->buf);
	promtext_init(p);
}

static void fail(struct promtext *p, int err)
{
	if (!p->err)
		p->err = err;
}

/* Room for n more bytes and a NUL. */
static bool reserve(struct promtext *p, size_t n)
{
	size_t cap = p->cap ? p->cap : INITIAL_CAP;
	char *buf;

	if (p->err)
		return false;
	if (n > ((size_t)-1) / 4 - p->len) {
		fail(p, -ENOMEM);
		return false;
	}
	if (p->len + n + 1 <= p->cap)
		return true;
	while (cap < p->len + n + 1)
		cap *= 2;
	buf = realloc(p->buf, cap);
	if (!buf) {
		fail(p, -ENOMEM);
		return false;
	}
	p->buf = buf;
	p->cap = cap;
	return true;
}

static void put(struct promtext *p, const char *s, size_t n)
{
	if (!reserve(p, n))
		return;
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void puts_(struct promtext *p, const char *s)
{
	put(p, s, strlen(s));
}

/* Escapes backslash and newline, and with quotes the double quote too. */
static void put_escaped(struct promtext *p, const char *s, bool quotes)
{
	for (const char *run = s;; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quotes)
			esc = "\\\"";
		else if (*s != '\0')
			continue;
		put(p, run, (size_t)(s - run));
		if (!esc)
			return;
		puts_(p, esc);
		run = s + 1;
	}
}

bool promtext_valid_name(const char *name, bool label)
{
	if (!name || !*name || (label && strncmp(name, "__", 2) == 0))
		return false;
	for (const char *c = name; *c; c++) {
		bool alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
			     (*c == ':' && !label);

		if (!alpha && !(c != name && *c >= '0' && *c <= '9'))
			return false;
	}
	return true;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Whether a TYPE line for name was written already. */
static bool family_seen(const struct promtext *p, const char *name)
{
	size_t n = strlen(name);

	for (const char *at = p->buf; at && (at = strstr(at, "# TYPE ")) != NULL; at += 7) {
		if ((at == p->buf || at[-1] == '\n') && strncmp(at + 7, name, n) == 0 &&
		    at[7 + n] == ' ')
			return true;
	}
	return false;
}

void promtext_family(struct promtext *p, const char *name, enum promtext_type type,
		     const char *help)
{
	if (p->err)
		return;
	if (!promtext_valid_name(name, false) || strlen(name) >= sizeof(p->family) ||
	    (unsigned int)type >= sizeof(type_names) / sizeof(type_names[0]) ||
	    (type == PROMTEXT_COUNTER) != ends_with(name, "_total") || family_seen(p, name)) {
		fail(p, -EINVAL);
		return;
	}
	strcpy(p->family, name);
	puts_(p, "# HELP ");
	puts_(p, name);
	puts_(p, " ");
	put_escaped(p, help ? help : "", false);
	puts_(p, "\n# TYPE ");
	puts_(p, name);
	puts_(p, " ");
	puts_(p, type_names[type]);
	puts_(p, "\n");
}

void promtext_format_double(double v, char *out, size_t size)
{
	if (isnan(v)) {
		snprintf(out, size, "NaN");
	} else if (isinf(v)) {
		snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
	} else {
		snprintf(out, size, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, size, "%.17g", v);
	}
}

static void put_labels(struct promtext *p, va_list ap)
{
	const char *name = va_arg(ap, const char *);
	bool first = true;

	for (; name; name = va_arg(ap, const char *)) {
		const char *value = va_arg(ap, const char *);

		if (!promtext_valid_name(name, true) || !value) {
			fail(p, -EINVAL);
			return;
		}
		puts_(p, first ? "{" : ",");
		puts_(p, name);
		puts_(p, "=\"");
		put_escaped(p, value, true);
		puts_(p, "\"");
		first = false;
	}
	if (!first)
		puts_(p, "}");
}

static void put_sample(struct promtext *p, const char *suffix, double value, va_list ap)
{
	char num[32];

	if (p->err)
		return;
	if (!p->family[0] || (*suffix && !promtext_valid_name(suffix, false))) {
		fail(p, -EINVAL);
		return;
	}
	puts_(p, p->family);
	puts_(p, suffix);
	put_labels(p, ap);
	promtext_format_double(value, num, sizeof(num));
	puts_(p, " ");
	puts_(p, num);
	puts_(p, "\n");
}

void promtext_sample(struct promtext *p, double value, ...)
{
	va_list ap;

	va_start(ap, value);
	put_sample(p, "", value, ap);
	va_end(ap);
}

void promtext_sample_suffix(struct promtext *p, const char *suffix, double value, ...)
{
	va_list ap;

	va_start(ap, value);
	put_sample(p, suffix, value, ap);
	va_end(ap);
}

int promtext_take(struct promtext *p, char **text, size_t *len)
{
	int err = p->err;

	*text = NULL;
	*len = 0;
	if (!err && !p->buf)
		reserve(p, 0);
	err = p->err;
	if (err) {
		promtext_free(p);
		return err;
	}
	p->buf[p->len] = '\0';
	*text = p->buf;
	*len = p->len;
	promtext_init(p);
	return 0;
}
