#include "conf.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "duration.h"

struct conf_parser {
	const char *path;
	FILE *file;
	int line;
	char *buf;
	size_t buf_size;
	const struct conf_callbacks *cb;
	void *user;
	struct conf_errors *errs;
	/* inih truncates section names; keep the whole one. */
	char section[CONF_STR_SIZE];
};

PRINTF_LIKE(2, 0)
static void errors_vadd(struct conf_errors *errs, const char *fmt, va_list ap)
{
	char *line;

	if (errs->count == errs->alloc) {
		size_t alloc = errs->alloc ? errs->alloc * 2 : 8;
		char **lines = realloc(errs->lines, alloc * sizeof(*lines));

		if (!lines) {
			errs->oom = true;
			return;
		}
		errs->lines = lines;
		errs->alloc = alloc;
	}
	if (vasprintf(&line, fmt, ap) < 0) {
		errs->oom = true;
		return;
	}
	errs->lines[errs->count++] = line;
}

void conf_errors_add(struct conf_errors *errs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_vadd(errs, fmt, ap);
	va_end(ap);
}

void conf_errors_finish(struct conf_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		free(errs->lines[i]);
	free(errs->lines);
	*errs = (struct conf_errors){ 0 };
}

const char *conf_path(const struct conf_parser *p)
{
	return p->path;
}

int conf_line(const struct conf_parser *p)
{
	return p->line;
}

PRINTF_LIKE(4, 0)
static void error_in(struct conf_parser *p, const char *file, int line, const char *fmt,
		     va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	conf_errors_add(p->errs, "%s:%d: %s", file, line, msg);
}

PRINTF_LIKE(3, 0)
static void error_at(struct conf_parser *p, int line, const char *fmt, va_list ap)
{
	error_in(p, p->path, line, fmt, ap);
}

void conf_error_in(struct conf_parser *p, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_in(p, file, line, fmt, ap);
	va_end(ap);
}

void conf_error(struct conf_parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_at(p, p->line, fmt, ap);
	va_end(ap);
}

void conf_error_at(struct conf_parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_at(p, line, fmt, ap);
	va_end(ap);
}

static char *skip_space(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * Checks one line before inih sees it.  Returns the text to hand to inih:
 * the line without leading blanks (so inih never takes an indented key for
 * a multi-line continuation), or "" for a line already reported.
 */
static const char *vet_line(struct conf_parser *p, char *line, size_t len)
{
	char *text, *end;

	if (strlen(line) != len) {
		conf_error(p, "line contains a NUL byte");
		return "";
	}
	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len > CONF_MAX_LINE) {
		conf_error(p, "line is longer than %d bytes", CONF_MAX_LINE);
		return "";
	}

	/* inih skips a UTF-8 byte order mark, but only after we looked. */
	if (p->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	text = skip_space(line);
	if (*text == '\0' || *text == ';' || *text == '#')
		return text;
	if (*text == '[') {
		end = strchr(text, ']');
		if (!end) {
			conf_error(p, "syntax error: section header without ']'");
			return "";
		}
		*end = '\0';
		snprintf(p->section, sizeof(p->section), "%s", text + 1);
		if (p->cb->section)
			p->cb->section(p, text + 1, p->user);
		*end = ']';
		return text;
	}
	if (!strchr(text, '=')) {
		conf_error(p, "syntax error: expected KEY = VALUE");
		return "";
	}
	return text;
}

static char *reader(char *str, int num, void *stream)
{
	struct conf_parser *p = stream;
	ssize_t len;
	const char *text;

	len = getline(&p->buf, &p->buf_size, p->file);
	if (len < 0)
		return NULL;
	p->line++;
	text = vet_line(p, p->buf, (size_t)len);
	/* inih's buffer is num bytes; vet_line has bounded the line below that. */
	snprintf(str, (size_t)num, "%s\n", text);
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct conf_parser *p = user;

	(void)section;
	p->cb->key(p, p->section, name, value, p->user);
	return 1;
}

/* One file of the tree: its lines and sections start afresh.  false if it cannot be opened. */
static bool parse_one(struct conf_parser *p, const char *path)
{
	int r;

	p->path = path;
	p->line = 0;
	p->section[0] = '\0';
	p->file = fopen(path, "re");
	if (!p->file) {
		conf_errors_add(p->errs, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	r = ini_parse_stream(reader, p, handler, p);
	if (r > 0)
		conf_error_at(p, r, "syntax error");
	else if (r < 0)
		conf_errors_add(p->errs, "%s: out of memory while parsing", path);
	if (ferror(p->file))
		conf_errors_add(p->errs, "%s: read error: %s", path, strerror(errno));
	if (p->cb->file_end)
		p->cb->file_end(p, p->user);
	fclose(p->file);
	p->file = NULL;
	return true;
}

static int conf_d_entry(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return d->d_name[0] != '.' && len > 5 && strcmp(d->d_name + len - 5, ".conf") == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every NAME.conf of dir, in name order; a missing dir has none. */
static void parse_dir(struct conf_parser *p, const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, conf_d_entry, by_name);

	if (n < 0) {
		if (errno != ENOENT)
			conf_errors_add(p->errs, "%s: cannot read the directory: %s", dir,
					strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		char *path = NULL;
		struct stat st;

		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0) {
			p->errs->oom = true;
			path = NULL;
		} else if (stat(path, &st) < 0) {
			conf_errors_add(p->errs, "%s: cannot open: %s", path, strerror(errno));
		} else if (!S_ISREG(st.st_mode)) {
			conf_errors_add(p->errs, "%s: not a regular file", path);
		} else {
			parse_one(p, path);
		}
		free(path);
		free(names[i]);
	}
	free(names);
}

bool conf_parse_tree(const char *path, const char *dir, const struct conf_callbacks *cb,
		     void *user, struct conf_errors *errs)
{
	struct conf_parser p = {
		.cb = cb, .user = user, .errs = errs,
	};

	if (!parse_one(&p, path)) {
		free(p.buf);
		return false;
	}
	if (dir)
		parse_dir(&p, dir);
	p.path = path;
	p.line = 0;
	if (cb->end)
		cb->end(&p, user);
	free(p.buf);
	if (errs->oom)
		return false;
	return errs->count == 0;
}

bool conf_parse_file(const char *path, const struct conf_callbacks *cb, void *user,
		     struct conf_errors *errs)
{
	return conf_parse_tree(path, NULL, cb, user, errs);
}

static void *field(void *target, const struct conf_key *k)
{
	return (char *)target + k->offset;
}

static int set_string(const struct conf_key *k, void *target, const char *value,
		      char *why, size_t why_size)
{
	if (k->type == CONF_PATH && value[0] != '/') {
		snprintf(why, why_size, "must be an absolute path");
		return -EINVAL;
	}
	if (strlen(value) >= CONF_STR_SIZE) {
		snprintf(why, why_size, "too long");
		return -EINVAL;
	}
	if (k->max > 0 && (int64_t)strlen(value) > k->max) {
		snprintf(why, why_size, "longer than %lld bytes", (long long)k->max);
		return -EINVAL;
	}
	snprintf(field(target, k), CONF_STR_SIZE, "%s", value);
	return 0;
}

static int set_choice(const struct conf_key *k, void *target, const char *value,
		      char *why, size_t why_size)
{
	char list[256] = "";

	for (const char *const *c = k->choices; *c; c++) {
		if (strcmp(*c, value) == 0) {
			snprintf(field(target, k), CONF_STR_SIZE, "%s", value);
			return 0;
		}
		if (list[0])
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
		strncat(list, *c, sizeof(list) - strlen(list) - 1);
	}
	snprintf(why, why_size, "expected one of %s", list);
	return -EINVAL;
}

static int set_int(const struct conf_key *k, void *target, const char *value,
		   char *why, size_t why_size)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (end == value || *end != '\0' || errno == ERANGE) {
		snprintf(why, why_size, "expected an integer");
		return -EINVAL;
	}
	if (v < k->min || v > k->max) {
		snprintf(why, why_size, "must be between %lld and %lld",
			 (long long)k->min, (long long)k->max);
		return -ERANGE;
	}
	*(int *)field(target, k) = (int)v;
	return 0;
}

static int set_size(const struct conf_key *k, void *target, const char *value,
		    char *why, size_t why_size)
{
	int64_t bytes;

	if (size_parse(value, &bytes) < 0) {
		snprintf(why, why_size, "expected a size like 8192, 64kB, 16MB or 1GB");
		return -EINVAL;
	}
	if (bytes < k->min || bytes > k->max) {
		snprintf(why, why_size, "must be between %lld and %lld bytes",
			 (long long)k->min, (long long)k->max);
		return -ERANGE;
	}
	*(int64_t *)field(target, k) = bytes;
	return 0;
}

static int set_duration(const struct conf_key *k, void *target, const char *value,
			char *why, size_t why_size)
{
	int64_t ms;
	char lo[32], hi[32];

	if (duration_parse(value, &ms) < 0) {
		snprintf(why, why_size, "expected a duration like 250ms or 2s");
		return -EINVAL;
	}
	if (ms == 0 && (k->flags & CONF_ZERO_OK)) {
		*(int64_t *)field(target, k) = 0;
		return 0;
	}
	if (ms < k->min || ms > k->max) {
		duration_format(k->min, lo, sizeof(lo));
		duration_format(k->max, hi, sizeof(hi));
		snprintf(why, why_size, "must be between %s and %s%s", lo, hi,
			 (k->flags & CONF_ZERO_OK) ? ", or 0 to disable" : "");
		return -ERANGE;
	}
	*(int64_t *)field(target, k) = ms;
	return 0;
}

static int set_value(const struct conf_key *k, void *target, const char *value,
		     char *why, size_t why_size)
{
	switch (k->type) {
	case CONF_PATH:
	case CONF_STRING:
		return set_string(k, target, value, why, why_size);
	case CONF_CHOICE:
		return set_choice(k, target, value, why, why_size);
	case CONF_INT:
		return set_int(k, target, value, why, why_size);
	case CONF_SIZE:
		return set_size(k, target, value, why, why_size);
	case CONF_DURATION:
		return set_duration(k, target, value, why, why_size);
	}
	snprintf(why, why_size, "unsupported key type");
	return -EINVAL;
}

void conf_defaults(const struct conf_key *table, void *target)
{
	char why[128];

	for (const struct conf_key *k = table; k->name; k++) {
		if (k->default_value)
			set_value(k, target, k->default_value, why, sizeof(why));
	}
}

bool conf_set(struct conf_parser *p, const struct conf_key *table, void *target,
	      uint64_t *seen, const char *key, const char *value)
{
	for (const struct conf_key *k = table; k->name; k++) {
		uint64_t bit = UINT64_C(1) << (k - table);
		char why[300];

		if (strcmp(k->name, key) != 0)
			continue;
		if (*seen & bit) {
			conf_error(p, "duplicate key \"%s\"", key);
			return true;
		}
		*seen |= bit;
		if (set_value(k, target, value, why, sizeof(why)) < 0)
			conf_error(p, "invalid value \"%s\" for %s: %s", value, key, why);
		return true;
	}
	return false;
}

int conf_set_value(const struct conf_key *table, void *target, const char *key,
		   const char *value, char *why, size_t why_size)
{
	for (const struct conf_key *k = table; k->name; k++)
		if (strcmp(k->name, key) == 0)
			return set_value(k, target, value, why, why_size);
	return -ENOENT;
}

bool conf_was_set(const struct conf_key *table, uint64_t seen, const char *name)
{
	for (const struct conf_key *k = table; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return seen & (UINT64_C(1) << (k - table));
	return false;
}

bool conf_valid_name(const char *name, size_t len, size_t max)
{
	return len > 0 && len <= max &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789_.-") >= len;
}

void conf_check_required(struct conf_parser *p, const struct conf_key *table,
			 uint64_t seen, int line, const char *what)
{
	for (const struct conf_key *k = table; k->name; k++) {
		if ((k->flags & CONF_REQUIRED) && !(seen & (UINT64_C(1) << (k - table))))
			conf_error_at(p, line, "%s: missing required key \"%s\"", what, k->name);
	}
}
