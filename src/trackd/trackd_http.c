#include "trackd_http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "build_config.h"
#include "jsonutil.h"
#include "trackd_expose.h"
#include "trackd_health.h"
#include "util.h"

#define JSON_TYPE "application/json"
#define TRACK_PREFIX "/track/"

static const struct track *find_track(const struct trackd_http *th, const char *name,
				      size_t len)
{
	const struct track *t;

	LIST_FOREACH(t, th->tracks, link)
		if (strlen(t->settings.name) == len && strncmp(t->settings.name, name, len) == 0)
			return t;
	return NULL;
}

/* What the probe last described of t (module ABI 3), for ?lag= and ?replication_state=. */
static void read_facts(const struct track *t, struct health_input *in)
{
	in->has_lag = track_fact_int(t, "lag_bytes", &in->lag_bytes) == 0;
	in->replication_state = track_fact_text(t, "replication_state");
}

static int reply_json(struct httpd_reply *reply, unsigned int status, struct json_object *o)
{
	const char *text = o ? json_object_to_json_string_ext(o, JSONUTIL_FLAGS) : NULL;
	char *body = NULL;
	int r = -ENOMEM;

	if (text && asprintf(&body, "%s\n", text) >= 0) {
		free(reply->body);
		reply->status = status;
		reply->content_type = JSON_TYPE;
		reply->body = body;
		reply->len = strlen(body);
		r = 0;
	}
	json_object_put(o);
	return r;
}

static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	return json_object_object_add(o, key, v) < 0 ? -ENOMEM : 0;
}

/* {"track": NAME, "state": STATE, "role": ROLE, "reason": WHY} */
static int health_body(struct httpd_reply *reply, unsigned int status, const char *track,
		       const struct health_input *in, const char *why)
{
	struct json_object *o = json_object_new_object();

	if (!o || add(o, "track", jsonutil_string(track)) < 0 ||
	    add(o, "state", json_object_new_string(track_state_name(in->state))) < 0 ||
	    add(o, "role", json_object_new_string(health_role(in->state))) < 0 ||
	    (why[0] && add(o, "reason", jsonutil_string(why)) < 0)) {
		json_object_put(o);
		return -ENOMEM;
	}
	return reply_json(reply, status, o);
}

/* endpoint of track t (NULL: the default track, not running). */
static int answer(const struct track *t, const char *name, enum health_endpoint e,
		  const struct httpd_request *req, struct httpd_reply *reply)
{
	struct health_input in = { .state = TRACK_UNKNOWN };
	struct health_query q = {
		.lag = httpd_arg(req, "lag"),
		.replication_state = httpd_arg(req, "replication_state"),
	};
	char why[256];
	unsigned int status;

	if (t) {
		in.state = t->verdict.state;
		in.verdict_written = t->verdict_written;
		read_facts(t, &in);
	}
	status = health_status(e, &in, &q, why, sizeof(why));
	if (!t && e != HEALTH_LIVENESS) {
		status = 503;
		snprintf(why, sizeof(why), "track not running");
	}
	if (!httpd_wants_body(req)) {
		reply->status = status;
		return 0;
	}
	return health_body(reply, status, name, &in, why);
}

static int on_health(void *arg, const char *path, const struct httpd_request *req,
		     struct httpd_reply *reply)
{
	const struct trackd_http *th = arg;
	const char *name = th->default_track;
	enum health_endpoint e;

	if (health_endpoint_of(path, &e) < 0)
		return httpd_reply_text(reply, 404, "text/plain; charset=utf-8", "not found\n");
	return answer(find_track(th, name, strlen(name)), name, e, req, reply);
}

/* /track/NAME, /track/NAME/ENDPOINT */
static int on_track(void *arg, const char *path, const struct httpd_request *req,
		    struct httpd_reply *reply)
{
	const struct trackd_http *th = arg;
	const char *name = path + strlen(TRACK_PREFIX), *rest = strchr(name, '/');
	size_t len = rest ? (size_t)(rest - name) : strlen(name);
	const struct track *t = find_track(th, name, len);
	enum health_endpoint e;

	if (!t)
		return httpd_reply_text(reply, 404, "text/plain; charset=utf-8",
					"no such track\n");
	if (health_endpoint_of(rest ? rest : "/", &e) < 0)
		return httpd_reply_text(reply, 404, "text/plain; charset=utf-8", "not found\n");
	return answer(t, t->settings.name, e, req, reply);
}

static int by_name(const void *a, const void *b)
{
	const struct track *const *x = a, *const *y = b;

	return strcmp((*x)->settings.name, (*y)->settings.name);
}

typedef int (*expose_fn)(const struct trackd_view *v, double now, char **out, size_t *len);

/* /status or /metrics over every running track, in the list's order. */
static int expose(const struct trackd_http *th, expose_fn fn, const char *type,
		  const struct httpd_request *req, struct httpd_reply *reply)
{
	struct trackd_view v = {
		.started = th->started, .started_wall = th->started_wall,
		.version = PGTRACKD_VERSION,
	};
	struct track **tracks;
	const struct track *t;
	size_t n = 0;
	int r;

	reply->status = 200;
	reply->content_type = type;
	if (!httpd_wants_body(req))
		return 0;
	LIST_FOREACH(t, th->tracks, link)
		n++;
	tracks = calloc(n ? n : 1, sizeof(*tracks));
	if (!tracks)
		return -ENOMEM;
	n = 0;
	LIST_FOREACH(t, th->tracks, link)
		tracks[n++] = (struct track *)t;
	qsort(tracks, n, sizeof(*tracks), by_name);
	v.tracks = tracks;
	v.n_tracks = n;
	r = fn(&v, ev_now(th->loop), &reply->body, &reply->len);
	free(tracks);
	return r;
}

static int on_status(void *arg, const char *path, const struct httpd_request *req,
		     struct httpd_reply *reply)
{
	return expose(arg, trackd_status_json, JSON_TYPE, req, reply);
}

static int on_metrics(void *arg, const char *path, const struct httpd_request *req,
		      struct httpd_reply *reply)
{
	return expose(arg, trackd_metrics_text, "text/plain; version=0.0.4; charset=utf-8", req,
		      reply);
}

#define HEALTH_ROUTE(p) { .path = p, .handler = on_health }

static int start(struct trackd_http *th, const struct http_settings *s, struct httpd **out,
		 char *err, size_t errlen)
{
	const char *listen[HTTP_MAX_LISTEN];
	struct httpd_route routes[] = {
		HEALTH_ROUTE("/"), HEALTH_ROUTE("/primary"), HEALTH_ROUTE("/read-write"),
		HEALTH_ROUTE("/replica"), HEALTH_ROUTE("/read-only"), HEALTH_ROUTE("/health"),
		HEALTH_ROUTE("/liveness"), HEALTH_ROUTE("/readiness"),
		{ .path = TRACK_PREFIX, .prefix = true, .handler = on_track },
		{ .path = "/status", .handler = on_status },
		{ .path = "/metrics", .handler = on_metrics },
	};
	struct httpd_config cfg = {
		.listen = listen, .n_listen = s->n_listen,
		.allow = s->allow, .n_allow = s->n_allow,
		.routes = routes, .n_routes = ARRAY_SIZE(routes),
		.max_connections = (unsigned int)s->max_connections,
		.timeout_s = (unsigned int)((s->timeout_ms + 999) / 1000),
		.inherit = th->httpd,
	};

	for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
		routes[i].arg = th;
	for (size_t i = 0; i < s->n_listen; i++)
		listen[i] = s->listen[i];
	return httpd_create(th->loop, &cfg, out, err, errlen);
}

void trackd_http_init(struct trackd_http *th, struct ev_loop *loop,
		      const struct track_list *tracks)
{
	memset(th, 0, sizeof(*th));
	th->loop = loop;
	th->tracks = tracks;
	th->started = ev_now(loop);
	th->started_wall = (double)time(NULL);
}

int trackd_http_apply(struct trackd_http *th, const struct http_settings *s, char *err,
		      size_t errlen)
{
	struct httpd *h = NULL;
	int r;

	snprintf(th->default_track, sizeof(th->default_track), "%s", s->default_track);
	if ((th->httpd || s->n_listen == 0) && config_http_listener_equal(&th->settings, s))
		return 0;
	if (s->n_listen > 0) {
		r = start(th, s, &h, err, errlen);
		if (r < 0)
			return r;
	}
	httpd_destroy(th->httpd);
	th->httpd = h;
	th->settings = *s;
	return 0;
}

void trackd_http_describe(const struct trackd_http *th, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; th->httpd && i < th->settings.n_listen; i++) {
		const char *a = th->settings.listen[i];
		const char *colon = strrchr(a, ':');
		size_t len = strlen(buf);

		snprintf(buf + len, size - len, "%s%.*s:%d", len ? " " : "", (int)(colon - a), a,
			 httpd_port(th->httpd, i));
	}
}

void trackd_http_finish(struct trackd_http *th)
{
	httpd_destroy(th->httpd);
	th->httpd = NULL;
}
