/*
 * dbfile: the databases that a pgbouncer databases file (the text of
 * databases_template, or its fenced copy) defines, read the way pgbouncer
 * 1.18 reads them, and whether SHOW DATABASES shows them.
 *
 * pgbouncer answers RELOAD with success even when it rejected the new
 * file and kept its old databases; comparing SHOW DATABASES with the file
 * is the only way to tell.  Only what SHOW DATABASES shows of a line is
 * compared: host, port and dbname.
 *
 * Pure code: no I/O, no loop, no log.
 */
#ifndef PGTRACK_DBFILE_H
#define PGTRACK_DBFILE_H

#include <stdbool.h>
#include <stddef.h>

/* pgbouncer's port when a line sets none. */
#define DBFILE_DEFAULT_PORT 5432

struct dbfile_entry {
	const char *name;
	const char *host;   /* NULL when the line sets none (SHOW DATABASES: NULL) */
	int port;           /* DBFILE_DEFAULT_PORT when the line sets none */
	const char *dbname; /* NULL when the line sets none: the name (the fallback: each its own) */
	int line;           /* in the file, from 1 */
	const char *bad;    /* why pgbouncer refuses the line (and so the whole file), or NULL */
	bool connect_query; /* the line sets its own connect_query */
};

struct dbfile {
	int n;
	struct dbfile_entry *entry; /* the [databases] lines but "*", the last one of a name */
	bool has_fallback;
	struct dbfile_entry fallback; /* the "*" line, if any (pgbouncer checks it only when used) */
	int bad_line;   /* a line that makes pgbouncer refuse the file (not a database line), or 0 */
	const char *bad;
	bool has_include; /* an %include line: lines this text does not show */
	int n_lines;
	size_t *value_end; /* each [databases] line's ("*" and repeated names too): past its value */
	char *storage;
};

/* Reads text; 0, or -ENOMEM (f is then empty).  dbfile_finish accepts an empty f. */
int dbfile_parse(struct dbfile *f, const char *text, size_t len);
void dbfile_finish(struct dbfile *f);

/* s, or "(unset)" when NULL: for a log line's host=, port=, dbname=. */
const char *dbfile_or_unset(const char *s);

/* One row of SHOW DATABASES; host NULL when SQL NULL. */
struct dbfile_row {
	const char *name;
	const char *host;
	const char *port;
	const char *database;
};

/*
 * Whether rows (SHOW DATABASES) have what f says: every database of f
 * present with f's host, port and dbname; and no database that is not in
 * f (so made from the fallback "*") going to stale_dbname unless f's
 * fallback sends it there.  If not, why gets the first difference, for a
 * log line ("database "appdb" has host=... port=... dbname=..., the file
 * says ...").
 */
bool dbfile_matches(const struct dbfile *f, const struct dbfile_row *rows, int n,
		    const char *stale_dbname, char *why, size_t size);

#endif
