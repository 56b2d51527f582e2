/*
 * resolver: one asynchronous host name lookup (c-ares) on a libev loop.
 *
 * libpq resolves a bare host= name with a blocking getaddrinfo; pgconn
 * resolves it here first and hands libpq the addresses as hostaddr.
 *
 * Each lookup has a c-ares channel of its own, created when it starts and
 * destroyed when it ends: the channel reads resolv.conf, nsswitch.conf
 * ("files" = /etc/hosts, "dns") and /etc/hosts afresh, so every reconnect
 * sees what the system says now, and a lookup that is destroyed closes its
 * sockets with it, so nothing of it outlives the connection attempt that
 * asked (no fd of ours is left registered when libpq's socket takes the
 * same number).  The channel's sockets are watched with ev_io, c-ares'
 * retransmission timeouts run on an ev_timer; c-ares' own limits (timeout
 * and attempts from resolv.conf) apply, and the caller's deadline on top.
 *
 * The result is delivered once, from the loop (never from inside
 * resolver_create), after the lookup has freed itself: the callback may do
 * anything.  resolver_destroy cancels a pending lookup without a callback.
 */
#ifndef PGTRACK_RESOLVER_H
#define PGTRACK_RESOLVER_H

#include <ev.h>
#include <stdbool.h>

#define RESOLVER_MAX_ADDRS 8
#define RESOLVER_ADDR_SIZE 46 /* INET6_ADDRSTRLEN */

struct resolver_result {
	int n;              /* 0 on failure */
	char addr[RESOLVER_MAX_ADDRS][RESOLVER_ADDR_SIZE]; /* numeric, in the resolver's order */
	char error[128];    /* "" on success */
};

struct resolver;
typedef void (*resolver_done_fn)(void *arg, const struct resolver_result *result);

/* Starts looking up name (IPv4 and IPv6).  0, -ENOMEM, or -EIO if c-ares cannot start. */
int resolver_create(struct ev_loop *loop, const char *name, resolver_done_fn done, void *arg,
		    struct resolver **out);
/* Cancels the lookup if it is still pending; no callback follows.  Accepts NULL. */
void resolver_destroy(struct resolver *r);

/*
 * Whether one libpq host entry is a name to look up: not empty, not a unix
 * socket directory (/...) or abstract socket (@...), not a numeric address.
 */
bool resolver_is_name(const char *host);

/*
 * A host name as DNS and /etc/hosts spell it: letters, digits, '-', '_' and
 * dots, no empty label, at most 253 characters.  Digits and dots alone are
 * a mistyped address (192.0.2), not a name.
 */
bool resolver_valid_name(const char *name);

/*
 * Whether each entry of a comma-separated libpq host list is a socket
 * directory, an abstract socket, a numeric address or a valid name.
 */
bool resolver_valid_host_list(const char *list);

#endif
