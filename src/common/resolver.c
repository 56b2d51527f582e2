#include "resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

/* c-ares opens at most a UDP and a TCP socket per name server (3 at most). */
#define MAX_SOCKETS 8

struct sock_watch {
	ev_io io;
	struct resolver *r;
	bool used;
};

struct resolver {
	struct ev_loop *loop;
	ares_channel channel;
	ev_timer timer;
	struct sock_watch socks[MAX_SOCKETS];
	resolver_done_fn done;
	void *arg;
	bool finished;   /* the answer is in result, to be delivered */
	bool destroying; /* callbacks from ares_destroy are ignored */
	struct resolver_result result;
};

bool resolver_is_name(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (!host[0] || host[0] == '/' || host[0] == '@')
		return false;
	return inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1;
}

bool resolver_valid_name(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= 253 && name[0] != '-' && name[0] != '.' && !strstr(name, "..") &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789_.-") == n &&
	       strspn(name, "0123456789.") != n;
}

bool resolver_valid_host_list(const char *list)
{
	char entry[256];

	for (;;) {
		size_t len = strcspn(list, ",");

		if (len >= sizeof(entry))
			return false;
		memcpy(entry, list, len);
		entry[len] = '\0';
		if (!entry[0] || (resolver_is_name(entry) && !resolver_valid_name(entry)))
			return false;
		if (!list[len])
			return true;
		list += len + 1;
	}
}

/* c-ares' sockets must not leak into the hooks pgtrack-notify runs. */
static int configure_socket(ares_socket_t fd, int type, void *data)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags >= 0)
		fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	return 0;
}

static void after_process(struct resolver *r);

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sock_watch *s = container_of(w, struct sock_watch, io);
	struct resolver *r = s->r;
	int fd = w->fd;

	ares_process_fd(r->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
			(revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	after_process(r);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resolver *r = container_of(w, struct resolver, timer);

	if (!r->finished)
		ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	after_process(r);
}

/*
 * c-ares opens, changes or (readable = writable = 0) closes a socket.  A
 * socket closed and another opened with the same number is re-registered
 * with ev_io_set, which libev needs to notice the new file.
 */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct sock_watch *s = NULL;
	int events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	for (int i = 0; i < MAX_SOCKETS && !s; i++)
		if (r->socks[i].used && r->socks[i].io.fd == fd)
			s = &r->socks[i];
	for (int i = 0; i < MAX_SOCKETS && !s && events; i++)
		if (!r->socks[i].used)
			s = &r->socks[i];
	if (!s)
		return; /* not watched: c-ares' timeouts still end the query */
	ev_io_stop(r->loop, &s->io);
	s->used = events != 0;
	if (!events)
		return;
	ev_io_set(&s->io, fd, events);
	ev_io_start(r->loop, &s->io);
}

static void add_address(struct resolver_result *res, const struct sockaddr *sa)
{
	char buf[RESOLVER_ADDR_SIZE];
	const void *src;

	if (sa->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else
		return;
	if (!inet_ntop(sa->sa_family, src, buf, sizeof(buf)) || res->n == RESOLVER_MAX_ADDRS)
		return;
	for (int i = 0; i < res->n; i++)
		if (strcmp(res->addr[i], buf) == 0)
			return;
	memcpy(res->addr[res->n++], buf, sizeof(buf));
}

/* Runs inside c-ares: only records the answer; after_process delivers it. */
static void addrinfo_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct resolver *r = arg;

	if (r->destroying) {
		ares_freeaddrinfo(ai);
		return;
	}
	r->finished = true;
	if (status == ARES_SUCCESS && ai)
		for (struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next)
			if (n->ai_addr)
				add_address(&r->result, n->ai_addr);
	if (status != ARES_SUCCESS)
		snprintf(r->result.error, sizeof(r->result.error), "%s", ares_strerror(status));
	else if (r->result.n == 0)
		snprintf(r->result.error, sizeof(r->result.error), "no address");
	ares_freeaddrinfo(ai);
}

static void teardown(struct resolver *r)
{
	r->destroying = true;
	if (r->channel)
		ares_destroy(r->channel); /* closes the sockets: sock_state_cb stops their watchers */
	for (int i = 0; i < MAX_SOCKETS; i++)
		ev_io_stop(r->loop, &r->socks[i].io);
	ev_timer_stop(r->loop, &r->timer);
	ares_library_cleanup();
	free(r);
}

static void after_process(struct resolver *r)
{
	struct timeval tv;

	if (r->finished) {
		struct resolver_result result = r->result;
		resolver_done_fn done = r->done;
		void *arg = r->arg;

		teardown(r);
		done(arg, &result);
		return;
	}
	ev_timer_stop(r->loop, &r->timer);
	if (ares_timeout(r->channel, NULL, &tv)) {
		ev_timer_set(&r->timer, (double)tv.tv_sec + (double)tv.tv_usec / 1e6, 0.0);
		ev_timer_start(r->loop, &r->timer);
	}
}

int resolver_create(struct ev_loop *loop, const char *name, resolver_done_fn done, void *arg,
		    struct resolver **out)
{
	struct ares_options opts = { 0 };
	struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC };
	struct resolver *r;
	int status;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->done = done;
	r->arg = arg;
	ev_init(&r->timer, timer_cb);
	for (int i = 0; i < MAX_SOCKETS; i++) {
		ev_init(&r->socks[i].io, io_cb);
		r->socks[i].r = r;
	}
	status = ares_library_init(ARES_LIB_INIT_ALL);
	if (status != ARES_SUCCESS)
		goto free_r;
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = r;
	status = ares_init_options(&r->channel, &opts, ARES_OPT_SOCK_STATE_CB);
	if (status != ARES_SUCCESS)
		goto cleanup_library;
	ares_set_socket_configure_callback(r->channel, configure_socket, NULL);

	/* May answer at once (/etc/hosts): then the timer delivers it from the loop. */
	ares_getaddrinfo(r->channel, name, NULL, &hints, addrinfo_cb, r);
	if (r->finished) {
		ev_timer_set(&r->timer, 0.0, 0.0);
		ev_timer_start(loop, &r->timer);
	} else {
		after_process(r);
	}
	*out = r;
	return 0;

cleanup_library:
	r->channel = NULL;
	ares_library_cleanup();
free_r:
	free(r);
	return status == ARES_ENOMEM ? -ENOMEM : -EIO;
}

void resolver_destroy(struct resolver *r)
{
	if (r)
		teardown(r);
}
