/*
 * conf: INI files read through Debian's libinih, with what inih lacks:
 * the line number of every key and section, all errors collected as
 * "path:line: message", over-long and NUL-bearing lines reported instead
 * of silently split, and a table-driven way to turn values into typed,
 * bounded fields.
 */
#ifndef PGTRACK_CONF_H
#define PGTRACK_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* Longest line inih's Debian build reads whole (INI_MAX_LINE 200 minus CR, LF, NUL). */
#define CONF_MAX_LINE 197
/* Longest value a string field holds, terminator included. */
#define CONF_STR_SIZE (CONF_MAX_LINE + 1)

struct conf_errors {
	char **lines;
	size_t count;
	size_t alloc;
	bool oom;
};

void conf_errors_add(struct conf_errors *errs, const char *fmt, ...) PRINTF_LIKE(2, 3);
void conf_errors_finish(struct conf_errors *errs);

struct conf_parser;

struct conf_callbacks {
	/* A section header; name as written between the brackets. */
	void (*section)(struct conf_parser *p, const char *name, void *user);
	/* A key in the current section ("" before any section header). */
	void (*key)(struct conf_parser *p, const char *section, const char *key,
		    const char *value, void *user);
	/* After the last line of each file (optional): a section ends with its file. */
	void (*file_end)(struct conf_parser *p, void *user);
	/* After the last line, while errors can still be recorded. */
	void (*end)(struct conf_parser *p, void *user);
};

/* Parses path; every problem lands in errs.  Returns errs->count == 0. */
bool conf_parse_file(const char *path, const struct conf_callbacks *cb, void *user,
		     struct conf_errors *errs);

/*
 * Parses path, then every DIR/NAME.conf (regular files, NAME not starting
 * with '.') in byte order of their names, as if they followed path; dir
 * may be missing.  conf_path() names the file being read.
 */
bool conf_parse_tree(const char *path, const char *dir, const struct conf_callbacks *cb,
		     void *user, struct conf_errors *errs);

const char *conf_path(const struct conf_parser *p);
int conf_line(const struct conf_parser *p);
/* Records "path:line: message" for the current line. */
void conf_error(struct conf_parser *p, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Records "path:line: message" for another line (e.g. a section header). */
void conf_error_at(struct conf_parser *p, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Records "file:line: message" for a line of another file of the tree. */
void conf_error_in(struct conf_parser *p, const char *file, int line, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

enum conf_type {
	CONF_STRING,   /* char[CONF_STR_SIZE] */
	CONF_PATH,     /* char[CONF_STR_SIZE], absolute */
	CONF_INT,      /* int, within [min, max] */
	CONF_DURATION, /* int64_t milliseconds, within [min, max], or 0 with CONF_ZERO_OK */
	CONF_CHOICE,   /* char[CONF_STR_SIZE], one of choices */
	CONF_SIZE,     /* int64_t bytes ("16MB"), within [min, max] */
};

enum {
	CONF_REQUIRED = 1 << 0,
	CONF_ZERO_OK = 1 << 1,
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;
	int64_t min, max;
	const char *default_value; /* NULL: empty string / 0 */
	const char *const *choices; /* NULL-terminated, for CONF_CHOICE */
	unsigned flags;
};

/* A table is terminated by an entry with name == NULL; at most 64 keys. */

/* Fills target with every key's default. */
void conf_defaults(const struct conf_key *table, void *target);

/*
 * Sets key in target from value.  Returns false if the table has no such
 * key (the caller reports it); bad values and duplicates (tracked in *seen)
 * are reported through p.
 */
bool conf_set(struct conf_parser *p, const struct conf_key *table, void *target,
	      uint64_t *seen, const char *key, const char *value);

/*
 * Sets key in target from value, without a parser: 0, -ENOENT if the
 * table has no such key, or -EINVAL or -ERANGE with a sentence in why.
 */
int conf_set_value(const struct conf_key *table, void *target, const char *key,
		   const char *value, char *why, size_t why_size);

/* Whether key name of table is marked in seen (as conf_set marks it). */
bool conf_was_set(const struct conf_key *table, uint64_t seen, const char *name);

/*
 * A name a section, track, peer or database may have: 1..max characters
 * from [A-Za-z0-9_.-].  len is the name's length (names need not end there).
 */
bool conf_valid_name(const char *name, size_t len, size_t max);

/* Reports every CONF_REQUIRED key missing from *seen, at line, for what. */
void conf_check_required(struct conf_parser *p, const struct conf_key *table,
			 uint64_t seen, int line, const char *what);

#endif
