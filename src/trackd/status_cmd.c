#include "status_cmd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "httpd.h"
#include "monotime.h"

#define MAX_ANSWER (8 * 1024 * 1024)

/* A wildcard address is asked on loopback. */
static void to_loopback(struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			s6->sin6_addr = in6addr_loopback;
	}
}

/* Waits for events on fd until deadline; 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		double left = deadline - monotime_now();
		struct pollfd p = { .fd = fd, .events = events };
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)(left * 1000) + 1);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_to(const struct sockaddr_storage *ss, socklen_t len, double deadline)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err = 0, r;
	socklen_t elen = sizeof(err);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)ss, len) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto fail;
	}
	r = wait_fd(fd, POLLOUT, deadline);
	if (r < 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
		r = err ? -err : -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}

/* One GET; the whole answer (NUL-terminated) in *out.  0 or -errno. */
static int http_get(int fd, const char *path, double deadline, char **out, size_t *len)
{
	char req[256], *buf = NULL;
	size_t n = 0, cap = 0;
	int r;

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: pgtrackd\r\n"
		 "Connection: close\r\n\r\n", path);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		return errno ? -errno : -EIO;
	for (;;) {
		ssize_t got;

		if (n + 4096 + 1 > cap) {
			char *more = cap >= MAX_ANSWER ? NULL : realloc(buf, cap ? cap * 2 : 65536);

			if (!more) {
				r = cap >= MAX_ANSWER ? -EFBIG : -ENOMEM;
				goto fail;
			}
			buf = more;
			cap = cap ? cap * 2 : 65536;
		}
		r = wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			goto fail;
		got = recv(fd, buf + n, cap - n - 1, 0);
		if (got == 0)
			break;
		if (got < 0 && errno != EAGAIN && errno != EINTR) {
			r = -errno;
			goto fail;
		}
		if (got > 0)
			n += (size_t)got;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	return r;
}

/* The member key of o, or of o's "facts" object; NULL when absent. */
static struct json_object *member(struct json_object *o, const char *key)
{
	struct json_object *v = NULL, *facts = NULL;

	if (json_object_object_get_ex(o, key, &v))
		return v;
	if (json_object_object_get_ex(o, "facts", &facts) &&
	    json_object_object_get_ex(facts, key, &v))
		return v;
	return NULL;
}

static void cell(struct json_object *o, const char *const *keys, char *buf, size_t size)
{
	snprintf(buf, size, "-");
	for (; *keys; keys++) {
		struct json_object *v = member(o, *keys);

		if (!v || json_object_is_type(v, json_type_null))
			continue;
		snprintf(buf, size, "%s", json_object_get_string(v));
		return;
	}
}

/* since: seconds since the epoch, shown in local time; a text as it is. */
static void since_cell(struct json_object *o, char *buf, size_t size)
{
	static const char *const keys[] = { "since", "state_since", "since_wall", NULL };

	for (const char *const *k = keys; *k; k++) {
		struct json_object *v = member(o, *k);
		struct tm tm;
		time_t t;

		if (!v || json_object_is_type(v, json_type_null))
			continue;
		if (!json_object_is_type(v, json_type_double) &&
		    !json_object_is_type(v, json_type_int)) {
			snprintf(buf, size, "%s", json_object_get_string(v));
			return;
		}
		t = (time_t)json_object_get_double(v);
		if (localtime_r(&t, &tm) && strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
			return;
	}
	snprintf(buf, size, "-");
}

static void print_row(const char *name, struct json_object *t)
{
	static const char *const state[] = { "state", NULL }, *const value[] = { "value", NULL },
		*const reason[] = { "reason", NULL },
		*const lag[] = { "lag_bytes", "behind_bytes", NULL };
	char s[64], v[32], since[64], why[512], l[32];

	cell(t, state, s, sizeof(s));
	cell(t, value, v, sizeof(v));
	since_cell(t, since, sizeof(since));
	cell(t, reason, why, sizeof(why));
	cell(t, lag, l, sizeof(l));
	printf("%-16s %-12s %6s  %-19s  %12s  %s\n", name, s, v, since, l, why);
}

/* The table; false if doc has no tracks. */
static bool print_table(struct json_object *doc)
{
	struct json_object *tracks = NULL, *name;

	if (!json_object_object_get_ex(doc, "tracks", &tracks))
		return false;
	printf("%-16s %-12s %6s  %-19s  %12s  %s\n", "TRACK", "STATE", "VALUE", "SINCE",
	       "LAG (bytes)", "REASON");
	if (json_object_is_type(tracks, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(tracks); i++) {
			struct json_object *t = json_object_array_get_idx(tracks, i);

			name = member(t, "name");
			print_row(name ? json_object_get_string(name) : "?", t);
		}
		return true;
	}
	if (!json_object_is_type(tracks, json_type_object))
		return false;
	json_object_object_foreach(tracks, key, t)
		print_row(key, t);
	return true;
}

static int ask(const char *addr, char **answer, size_t *len, double timeout, char *why,
	       size_t size)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	double deadline = monotime_now() + timeout;
	int fd, r;

	httpd_parse_listen(addr, &ss, &sl);
	to_loopback(&ss);
	fd = connect_to(&ss, sl, deadline);
	if (fd < 0) {
		snprintf(why, size, "cannot connect to %s: %s (is pgtrackd running?)", addr,
			 strerror(-fd));
		return fd;
	}
	r = http_get(fd, "/status", deadline, answer, len);
	close(fd);
	if (r == -ETIMEDOUT)
		snprintf(why, size, "%s did not answer within %.0fs", addr, timeout);
	else if (r == -ECONNRESET)
		snprintf(why, size, "%s closed the connection unanswered (is this host outside "
			 "[http] allow, or the listener full?)", addr);
	else if (r < 0)
		snprintf(why, size, "%s: %s", addr, strerror(-r));
	return r;
}

int status_cmd_run(const struct trackd_config *config, bool json, double timeout)
{
	const struct http_settings *h = &config->http;
	char why[512], *answer = NULL, *body;
	struct json_object *doc;
	size_t len = 0;
	int code = 0;

	if (h->n_listen == 0) {
		fprintf(stderr, "pgtrackd: the HTTP listener is off in %s ([http] listen is not "
			"set): there is no running daemon to ask\n", config->path);
		return STATUS_CMD_OFF;
	}
	if (strcmp(strrchr(h->listen[0], ':'), ":0") == 0) {
		fprintf(stderr, "pgtrackd: [http] listen = %s in %s: port 0 is picked at start, "
			"the status cannot be asked\n", h->listen[0], config->path);
		return STATUS_CMD_OFF;
	}
	if (ask(h->listen[0], &answer, &len, timeout, why, sizeof(why)) < 0) {
		fprintf(stderr, "pgtrackd: no status: %s\n", why);
		return STATUS_CMD_NO_ANSWER;
	}
	body = strstr(answer, "\r\n\r\n");
	if (len == 0)
		fprintf(stderr, "pgtrackd: no status: %s closed the connection unanswered (is "
			"this host outside [http] allow, or the listener full?)\n", h->listen[0]);
	else if (sscanf(answer, "HTTP/1.%*d %d", &code) != 1 || code != 200 || !body)
		fprintf(stderr, "pgtrackd: no status: %s answered \"%.*s\"\n", h->listen[0],
			(int)strcspn(answer, "\r\n"), answer);
	if (len == 0 || code != 200 || !body) {
		free(answer);
		return STATUS_CMD_NO_ANSWER;
	}
	body += 4;
	doc = json_tokener_parse(body);
	if (!doc || (!json && !print_table(doc))) {
		fprintf(stderr, "pgtrackd: %s answered /status with no status document\n",
			h->listen[0]);
		code = STATUS_CMD_NO_ANSWER;
	} else {
		if (json)
			fputs(body, stdout);
		code = 0;
	}
	json_object_put(doc);
	free(answer);
	return code;
}
