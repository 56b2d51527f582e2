/*
 * pgconn's insides, shared by its three files and by nothing else:
 * pgconn.c (the connection and its queries on the loop), pgconn_hosts.c
 * (the host list: names resolved, one deadline per address) and
 * pgconn_error.c (libpq's messages classified).
 */
#ifndef PGTRACK_PGCONN_INTERNAL_H
#define PGTRACK_PGCONN_INTERNAL_H

#include "pgconn.h"

/* pgconn.c */
void pgconn_start_deadline(struct pgconn *c, int64_t timeout_ms);
void pgconn_start_libpq(struct pgconn *c, const char *const *keywords, const char *const *values);
/*
 * keywords/values copied into kw/val (size entries, the NULL terminator
 * included), with passfile, user and the TLS files' paths added where
 * libpq would look them up in the password database, and gssencmode=disable
 * (pgconn_osdefaults.c).  The number of entries.
 */
size_t pgconn_os_defaults(const char *const *keywords, const char *const *values,
			  const char **kw, const char **val, size_t size);
/* Closes the connection and reports f now / from the loop. */
void pgconn_fail(struct pgconn *c, const struct pgconn_failure *f);
void pgconn_fail_later(struct pgconn *c, const struct pgconn_failure *f);

/* pgconn_error.c: the first line of src, into dst. */
void pgconn_first_line(char *dst, size_t size, const char *src);

/* pgconn_hosts.c */
/* A parameter as libpq sees it: the caller's non-empty value, else the environment's. */
const char *pgconn_param(const char *const *keywords, const char *const *values,
			 const char *key, const char *env);
/* Whether a host list has an entry to look up. */
bool pgconn_hosts_any_name(const char *list);
/* Copies the parameters and the host and port lists; 0 or -errno. */
int pgconn_hosts_copy(struct pgconn *c, const char *const *keywords, const char *const *values,
		      const char *host, const char *port);
/* Resolves the entries, then starts libpq on the addresses. */
void pgconn_hosts_resolve(struct pgconn *c);
/* The deadline passed: starts again on the addresses after the current one.  True if so. */
bool pgconn_hosts_connect_next(struct pgconn *c);

#endif
