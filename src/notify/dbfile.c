#include "dbfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The file, as libusual's ini reader in pgbouncer 1.18 takes it: blank
 * space and empty lines skipped, "%include" lines, ';' and '#' comments,
 * "[section]" headers, then "key = value" with the key made of
 * A-Z a-z 0-9 _ . - * and the value up to the end of the line, trailing
 * blanks cut.  Anything else stops the load: pgbouncer keeps its old
 * configuration.  The file's first lines belong to the section of the
 * %include line, [databases] in any sensible pgbouncer.ini.
 *
 * A value is a connection string as pgbouncer's loader.c reads it:
 * key=value pairs separated by spaces (only spaces), a value possibly
 * single-quoted with '' for a quote, no empty value.
 */

static bool key_char(char c)
{
	return c && (isalnum((unsigned char)c) || strchr("_.-*", c));
}

static char *skip_spaces(char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/* A key=value pair at p, cut in place; NULL on a syntax error, *key "" at the end. */
static char *next_pair(char *p, char **key, char **value)
{
	char *end;

	p = skip_spaces(p);
	*key = *value = p;
	if (!*p)
		return p;
	while (*p && *p != '=' && *p != ' ')
		p++;
	end = p;
	p = skip_spaces(p);
	if (*p != '=' || end == *key)
		return NULL;
	*end = '\0';
	p = skip_spaces(p + 1);
	if (*p == '\'') {
		char *d = ++p;

		*value = p;
		for (;;) {
			if (!*p)
				return NULL;
			if (*p == '\'') {
				if (p[1] != '\'')
					break;
				p++;
			}
			*d++ = *p++;
		}
		*d = '\0';
		p++; /* past the closing quote */
	} else {
		*value = p;
		while (*p && *p != ' ')
			p++;
	}
	if (*p)
		*p++ = '\0'; /* pgbouncer cuts (and skips) the character after the value */
	if (!**value)
		return NULL;
	return skip_spaces(p);
}

/* Fills e from the connection string s (cut in place); false if pgbouncer would refuse it. */
static bool read_connstr(struct dbfile_entry *e, char *s)
{
	char *key, *value;

	e->host = NULL;
	e->port = DBFILE_DEFAULT_PORT;
	e->dbname = NULL;
	while (*s) {
		s = next_pair(s, &key, &value);
		if (!s) {
			e->bad = "syntax error in its connection string";
			return false;
		}
		if (!*key)
			break;
		if (strcmp(key, "dbname") == 0) {
			e->dbname = value;
		} else if (strcmp(key, "host") == 0) {
			e->host = value;
		} else if (strcmp(key, "connect_query") == 0) {
			e->connect_query = true;
		} else if (strcmp(key, "port") == 0) {
			e->port = atoi(value);
			if (e->port == 0) {
				e->bad = "invalid port";
				return false;
			}
		}
		/* Other keys are not shown by SHOW DATABASES's host, port, database. */
	}
	return true;
}

static void add_entry(struct dbfile *f, char *name, char *connstr, int line)
{
	struct dbfile_entry e = { .name = name, .line = line };

	if (strcmp(name, "*") == 0) {
		/* pgbouncer keeps the text and reads it only to create a database. */
		read_connstr(&e, connstr);
		e.bad = NULL;
		f->fallback = e;
		f->has_fallback = true;
		return;
	}
	if (strcmp(name, "pgbouncer") == 0)
		e.bad = "the name pgbouncer is its admin console's";
	else
		read_connstr(&e, connstr);
	/* A name defined again: the last line wins, as in pgbouncer. */
	for (int i = 0; i < f->n; i++) {
		if (strcmp(f->entry[i].name, name) == 0) {
			f->entry[i] = e;
			return;
		}
	}
	f->entry[f->n++] = e;
}

/* "key = value" at p: the key's and value's extent; past the value, or NULL without "=". */
static char *key_value(char *p, size_t *klen, char **value, size_t *vlen)
{
	char *key = p;

	while (key_char(*p))
		p++;
	*klen = (size_t)(p - key);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=')
		return NULL;
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	*value = p;
	p += strcspn(p, "\n");
	*vlen = (size_t)(p - *value);
	while (*vlen > 0 && isspace((unsigned char)(*value)[*vlen - 1]))
		(*vlen)--;
	return p;
}

int dbfile_parse(struct dbfile *f, const char *text, size_t len)
{
	size_t lines = 1;
	char *src, *out, *p;
	bool databases = true;
	int lineno = 1;

	*f = (struct dbfile){ 0 };
	len = strnlen(text, len); /* pgbouncer reads a file as a C string */
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	/* The text, then each line's name and value copied (and cut) once. */
	f->storage = malloc(2 * (len + 1) + 2 * lines);
	f->entry = calloc(lines, sizeof(*f->entry));
	f->value_end = calloc(lines, sizeof(*f->value_end));
	if (!f->storage || !f->entry || !f->value_end) {
		dbfile_finish(f);
		return -ENOMEM;
	}
	src = f->storage;
	memcpy(src, text, len);
	src[len] = '\0';
	out = src + len + 1;
	p = src;
	while (*p) {
		char *key, *value;
		size_t klen, vlen;

		while (*p && isspace((unsigned char)*p))
			lineno += *p++ == '\n';
		if (!*p)
			break;
		if (strncmp(p, "%include", 8) == 0 && (p[8] == ' ' || p[8] == '\t')) {
			/* Not followed: its lines are not compared. */
			f->has_include = true;
			p += strcspn(p, "\n");
			continue;
		}
		if (*p == '#' || *p == ';') {
			p += strcspn(p, "\n");
			continue;
		}
		if (*p == '[') {
			size_t n = strcspn(++p, "]\n");

			if (p[n] != ']') {
				f->bad_line = lineno;
				f->bad = "a section header without \"]\"";
				break;
			}
			databases = n == 9 && strncmp(p, "databases", 9) == 0;
			p += n + 1;
			continue;
		}
		p = key_value(key = p, &klen, &value, &vlen);
		if (!p) {
			f->bad_line = lineno;
			f->bad = "not \"name = connection string\"";
			break;
		}
		if (!databases)
			continue;
		f->value_end[f->n_lines++] = (size_t)(value - src) + vlen;
		memcpy(out, key, klen);
		out[klen] = '\0';
		key = out;
		out += klen + 1;
		memcpy(out, value, vlen);
		out[vlen] = '\0';
		value = out;
		out += vlen + 1;
		add_entry(f, key, value, lineno);
	}
	return 0;
}

void dbfile_finish(struct dbfile *f)
{
	free(f->entry);
	free(f->value_end);
	free(f->storage);
	*f = (struct dbfile){ 0 };
}

static const struct dbfile_row *find_row(const struct dbfile_row *rows, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		if (rows[i].name && strcmp(rows[i].name, name) == 0)
			return &rows[i];
	}
	return NULL;
}

static bool in_file(const struct dbfile *f, const char *name)
{
	for (int i = 0; i < f->n; i++) {
		if (strcmp(f->entry[i].name, name) == 0)
			return true;
	}
	return false;
}

const char *dbfile_or_unset(const char *s)
{
	return s ? s : "(unset)";
}

bool dbfile_matches(const struct dbfile *f, const struct dbfile_row *rows, int n,
		    const char *stale_dbname, char *why, size_t size)
{
	why[0] = '\0';
	if (f->bad_line) {
		snprintf(why, size, "line %d of the file is %s, which makes pgbouncer refuse the "
			 "whole file", f->bad_line, f->bad);
		return false;
	}
	for (int i = 0; i < f->n; i++) {
		const struct dbfile_entry *e = &f->entry[i];
		const char *dbname = e->dbname ? e->dbname : e->name;
		const struct dbfile_row *r;

		if (e->bad) {
			snprintf(why, size, "line %d of the file (database \"%s\") has %s, which makes "
				 "pgbouncer refuse the whole file", e->line, e->name, e->bad);
			return false;
		}
		r = find_row(rows, n, e->name);
		if (!r) {
			snprintf(why, size, "database \"%s\" is missing, the file says host=%s port=%d "
				 "dbname=%s", e->name, dbfile_or_unset(e->host), e->port, dbname);
			return false;
		}
		if ((!e->host != !r->host) || (e->host && strcmp(e->host, r->host) != 0) ||
		    !r->port || atoi(r->port) != e->port || !r->database ||
		    strcmp(r->database, dbname) != 0) {
			snprintf(why, size, "database \"%s\" has host=%s port=%s dbname=%s, the file "
				 "says host=%s port=%d dbname=%s", e->name, dbfile_or_unset(r->host),
				 dbfile_or_unset(r->port), dbfile_or_unset(r->database),
				 dbfile_or_unset(e->host), e->port,
				 dbname);
			return false;
		}
	}
	/*
	 * A RELOAD that pgbouncer takes makes every database it created from
	 * the fallback again from the new "*" line; one that still goes
	 * where the old "*" line sent it shows a RELOAD rejected.
	 */
	if (stale_dbname && f->has_fallback &&
	    !(f->fallback.dbname && strcmp(f->fallback.dbname, stale_dbname) == 0)) {
		for (int i = 0; i < n; i++) {
			const struct dbfile_row *r = &rows[i];

			if (!r->name || !r->database || strcmp(r->database, stale_dbname) != 0 ||
			    strcmp(r->name, "pgbouncer") == 0 || in_file(f, r->name))
				continue;
			snprintf(why, size, "database \"%s\" (made from the fallback \"*\") has "
				 "dbname=%s, the file's \"*\" line (%d) says host=%s port=%d dbname=%s",
				 r->name, stale_dbname, f->fallback.line, dbfile_or_unset(f->fallback.host),
				 f->fallback.port, f->fallback.dbname ? f->fallback.dbname : r->name);
			return false;
		}
	}
	return true;
}
