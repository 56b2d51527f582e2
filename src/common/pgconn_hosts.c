#include "pgconn_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver.h"

const char *pgconn_param(const char *const *keywords, const char *const *values,
			 const char *key, const char *env)
{
	for (int i = 0; keywords[i]; i++)
		if (strcmp(keywords[i], key) == 0 && values[i] && values[i][0])
			return values[i];
	return getenv(env);
}

static int count_entries(const char *list)
{
	int n = 1;

	for (const char *s = strchr(list, ','); s; s = strchr(s + 1, ','))
		n++;
	return n;
}

/* Copies entry i of a comma-separated list into buf; false if it does not fit. */
static bool nth_entry(const char *list, int i, char *buf, size_t size)
{
	size_t len;

	while (i-- > 0) {
		list = strchr(list, ',');
		if (!list)
			return false;
		list++;
	}
	len = strcspn(list, ",");
	if (len >= size)
		return false;
	memcpy(buf, list, len);
	buf[len] = '\0';
	return true;
}

/* Whether a host list has an entry to look up (one too long for a path or an address has). */
bool pgconn_hosts_any_name(const char *list)
{
	char entry[256];
	int n = count_entries(list);

	for (int i = 0; i < n; i++)
		if (!nth_entry(list, i, entry, sizeof(entry)) || resolver_is_name(entry))
			return true;
	return false;
}

/* The port list is expanded with the hosts when it has one entry per host. */
static bool port_is_list(const struct pgconn *c)
{
	return c->port && strchr(c->port, ',') && count_entries(c->port) == count_entries(c->host);
}

/* Adds a host entry for libpq; false when the lists are full. */
static bool add_host(struct pgconn *c, const char *host, const char *hostaddr, const char *port)
{
	size_t need_host = strlen(c->host_list) + strlen(host) + 2;
	size_t need_addr = strlen(c->hostaddr_list) + strlen(hostaddr) + 2;
	size_t need_port = strlen(c->port_list) + strlen(port) + 2;

	if (c->n_hosts == PGCONN_MAX_HOSTS || need_host > sizeof(c->host_list) ||
	    need_addr > sizeof(c->hostaddr_list) || need_port > sizeof(c->port_list))
		return false;
	if (c->n_hosts) {
		strcat(c->host_list, ",");
		strcat(c->hostaddr_list, ",");
		strcat(c->port_list, ",");
	}
	strcat(c->host_list, host);
	strcat(c->hostaddr_list, hostaddr);
	strcat(c->port_list, port);
	c->n_hosts++;
	return true;
}

/* Entries first.. of a built list, into dst (large enough: a tail of list). */
static void list_tail(char *dst, size_t size, const char *list, int first)
{
	const char *s = list;

	for (int i = 0; i < first && s; i++) {
		s = strchr(s, ',');
		if (s)
			s++;
	}
	snprintf(dst, size, "%s", s ? s : "");
}

/*
 * Every entry is resolved: hands libpq the names as host and the addresses
 * as hostaddr, from entry c->first on, with a deadline for the first of them.
 */
static void connect_resolved(struct pgconn *c)
{
	bool have_host = false, have_hostaddr = false, have_port = false;
	bool ports = port_is_list(c);
	int n = c->n_kw;

	list_tail(c->run_host, sizeof(c->run_host), c->host_list, c->first);
	list_tail(c->run_hostaddr, sizeof(c->run_hostaddr), c->hostaddr_list, c->first);
	list_tail(c->run_port, sizeof(c->run_port), c->port_list, c->first);
	for (int i = 0; i < n; i++) {
		if (strcmp(c->kw[i], "host") == 0) {
			c->val[i] = c->run_host;
			have_host = true;
		} else if (strcmp(c->kw[i], "hostaddr") == 0) {
			c->val[i] = c->run_hostaddr;
			have_hostaddr = true;
		} else if (strcmp(c->kw[i], "port") == 0 && ports) {
			c->val[i] = c->run_port;
			have_port = true;
		}
	}
	if (!have_host) {
		c->kw[n] = "host";
		c->val[n++] = c->run_host;
	}
	if (!have_hostaddr) {
		c->kw[n] = "hostaddr";
		c->val[n++] = c->run_hostaddr;
	}
	if (ports && !have_port) {
		c->kw[n] = "port";
		c->val[n++] = c->run_port;
	}
	c->kw[n] = NULL;
	c->val[n] = NULL;
	pgconn_start_deadline(c, c->timeout_ms);
	pgconn_start_libpq(c, c->kw, c->val);
}

/*
 * The entry libpq is on, by its host, address and port; -1 if none of
 * first.. matches (libpq has not picked one yet).
 */
static int current_entry(struct pgconn *c)
{
	const char *host = PQhost(c->conn), *addr = PQhostaddr(c->conn), *port = PQport(c->conn);
	char h[256], a[RESOLVER_ADDR_SIZE + 1], p[16];
	bool ports = port_is_list(c);

	if (!host || !addr || !port)
		return -1;
	for (int i = c->first; i < c->n_hosts; i++) {
		if (!nth_entry(c->host_list, i, h, sizeof(h)) ||
		    !nth_entry(c->hostaddr_list, i, a, sizeof(a)) ||
		    (ports && !nth_entry(c->port_list, i, p, sizeof(p))))
			continue;
		if (strcmp(h, host) == 0 && strcmp(a, addr) == 0 && (!ports || strcmp(p, port) == 0))
			return i;
	}
	return -1;
}

/* Adds entry i to the list of entries that timed out: "name (address)". */
static void note_timed_out(struct pgconn *c, int i)
{
	char h[256], a[RESOLVER_ADDR_SIZE + 1];
	size_t len = strlen(c->timed_out);

	if (!nth_entry(c->host_list, i, h, sizeof(h)) || !nth_entry(c->hostaddr_list, i, a, sizeof(a)))
		return;
	if (a[0] && strcmp(a, h) != 0)
		snprintf(c->timed_out + len, sizeof(c->timed_out) - len, "%s%.60s (%s)",
			 len ? ", " : "", h, a);
	else
		snprintf(c->timed_out + len, sizeof(c->timed_out) - len, "%s%.100s",
			 len ? ", " : "", h);
}

/*
 * The deadline passed while libpq was connecting: if it is on an address
 * that is not the last, starts again on the ones after it.  True if so.
 */
bool pgconn_hosts_connect_next(struct pgconn *c)
{
	int i;

	if (!c->copy || !c->conn || c->lookup || c->state != PGCONN_CONNECTING)
		return false;
	i = current_entry(c);
	if (i < 0)
		i = c->first;
	note_timed_out(c, i);
	if (i + 1 >= c->n_hosts)
		return false;
	ev_io_stop(c->loop, &c->io);
	c->io_fd = -1;
	c->io_events = 0;
	PQfinish(c->conn);
	c->conn = NULL;
	c->first = i + 1;
	connect_resolved(c);
	return true;
}

static void on_resolved(void *arg, const struct resolver_result *res);

/* Notes a host entry (or some of its addresses) left out: the lists are full. */
static void note_dropped(struct pgconn *c, const char *name, int addresses)
{
	size_t len = strlen(c->dropped);

	if (addresses)
		snprintf(c->dropped + len, sizeof(c->dropped) - len, "%s%.40s (%d address%s)",
			 len ? ", " : "", name, addresses, addresses == 1 ? "" : "es");
	else
		snprintf(c->dropped + len, sizeof(c->dropped) - len, "%s%.40s", len ? ", " : "", name);
}

/* Walks the host entries from c->index on: names are looked up, the others kept. */
void pgconn_hosts_resolve(struct pgconn *c)
{
	int n = count_entries(c->host);
	char port[16] = "";

	for (; c->index < n; c->index++) {
		const char *name = c->lookup_name;

		if (!nth_entry(c->host, c->index, c->lookup_name, sizeof(c->lookup_name))) {
			struct pgconn_failure f = { .kind = PGCONN_ERR_RESOLVE };

			snprintf(f.message, sizeof(f.message), "host name %.40s... too long", c->host);
			pgconn_fail_later(c, &f);
			return;
		}
		if (c->n_hosts == PGCONN_MAX_HOSTS) {
			note_dropped(c, name, 0);
			continue;
		}
		if (resolver_is_name(name)) {
			int r = resolver_create(c->loop, name, on_resolved, c, &c->lookup);

			if (r < 0) {
				struct pgconn_failure f = { .kind = PGCONN_ERR_RESOLVE };

				snprintf(f.message, sizeof(f.message), "%.160s: cannot start a lookup: %s",
					 name, strerror(-r));
				pgconn_fail_later(c, &f);
			}
			return;
		}
		if (port_is_list(c))
			nth_entry(c->port, c->index, port, sizeof(port));
		/* A numeric host is its own hostaddr; a socket directory has none. */
		if (!add_host(c, name, name[0] == '/' || name[0] == '@' ? "" : name, port))
			note_dropped(c, name, 0);
	}
	connect_resolved(c);
}

static void on_resolved(void *arg, const struct resolver_result *res)
{
	struct pgconn *c = arg;
	char port[16] = "";

	c->lookup = NULL;
	if (res->error[0]) {
		struct pgconn_failure f = { .kind = PGCONN_ERR_RESOLVE };

		snprintf(f.message, sizeof(f.message), "%.160s: %.80s", c->lookup_name, res->error);
		pgconn_fail(c, &f);
		return;
	}
	if (port_is_list(c))
		nth_entry(c->port, c->index, port, sizeof(port));
	for (int i = 0; i < res->n; i++) {
		if (!add_host(c, c->lookup_name, res->addr[i], port)) {
			note_dropped(c, c->lookup_name, res->n - i);
			break;
		}
	}
	c->index++;
	pgconn_hosts_resolve(c);
}

/*
 * Copies the caller's parameters (they may change before the lookups
 * end: a reload) and the host and port lists libpq would use.
 */
int pgconn_hosts_copy(struct pgconn *c, const char *const *keywords, const char *const *values,
		       const char *host, const char *port)
{
	size_t size = strlen(host) + 1 + (port ? strlen(port) + 1 : 0);
	char *p;
	int n = 0;

	for (int i = 0; keywords[i]; i++) {
		if (!values[i])
			continue;
		if (++n > PGCONN_MAX_PARAMS)
			return -E2BIG;
		size += strlen(keywords[i]) + strlen(values[i]) + 2;
	}
	p = c->copy = malloc(size);
	if (!p)
		return -ENOMEM;
	c->n_kw = 0;
	for (int i = 0; keywords[i]; i++) {
		if (!values[i])
			continue;
		c->kw[c->n_kw] = strcpy(p, keywords[i]);
		p += strlen(p) + 1;
		c->val[c->n_kw++] = strcpy(p, values[i]);
		p += strlen(p) + 1;
	}
	c->host = strcpy(p, host);
	p += strlen(p) + 1;
	c->port = port ? strcpy(p, port) : NULL;
	c->host_list[0] = c->hostaddr_list[0] = c->port_list[0] = '\0';
	c->n_hosts = 0;
	c->index = 0;
	c->first = 0;
	return 0;
}
