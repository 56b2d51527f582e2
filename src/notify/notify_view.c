/*
 * notify_view: answers /status and /metrics from the running notifier:
 * a snapshot (notify_view) taken per request, rendered by notify_expose.
 * Everything is read at request time, through the notifier, never
 * through a pointer kept from an older configuration.
 */
#include <errno.h>
#include <stdlib.h>

#include "build_config.h"
#include "notifier.h"
#include "notify_expose.h"
#include "promtext.h"

static void fill(const struct notifier *n, struct notify_view *v)
{
	const struct notify_config *c = n->config;
	const struct follow *f = &n->follow;

	*v = (struct notify_view){
		.version = PGTRACKD_VERSION,
		.now = notify_when_now(),
		.started = n->started,
		.kind = c->notify.instance[0] ? "instance" : "group",
		.name = c->notify.instance[0] ? c->notify.instance : c->notify.group,
		.state = f->state_known ? vrrp_state_name(f->state) : NULL,
		.priority = f->priority,
		.inferred = f->state_known && f->inferred,
		.state_since = f->state_known ? n->state_since : (struct notify_when){ 0 },
		.state_changes = n->state_changes,
		.fifo_path = fifo_reader_path(n->fifo),
		.fifo_open = true, /* a reader always holds its FIFO open */
		.fifo_present = fifo_reader_present(n->fifo),
		.hold_configured = c->hold,
		.holding = f->hold_started && !f->hold_expired,
		.hold_expired = f->hold_started && f->hold_expired,
		.hold_since = n->hold_since,
		.hold_timeout_s = (double)c->local.hold_timeout_ms / 1000.0,
		.hold_method = !c->hold ? NULL : c->gate ? "gate" : "pause",
		.local_target = c->hold ? n->local.target : NULL,
		.local_role = localpg_role_name(n->local.role),
		.bouncer_target = n->bouncer.target,
		.bouncer_mode = bouncer_mode_name(n->bouncer.mode),
		.bouncer_reason = n->bouncer.reason,
		.bouncer = &n->bouncer.stats,
	};
	for (int r = 0; r < NOTIFY_LINE_RESULTS; r++)
		v->lines[r] = n->lines[r];
}

static int status_cb(void *arg, const char *path, const struct httpd_request *req,
		     struct httpd_reply *reply)
{
	struct notify_view v;
	int r;

	fill(arg, &v);
	r = notify_status_json(&v, &reply->body, &reply->len);
	if (r < 0)
		return r;
	reply->status = 200;
	reply->content_type = "application/json";
	return 0;
}

static int metrics_cb(void *arg, const char *path, const struct httpd_request *req,
		      struct httpd_reply *reply)
{
	struct notify_view v;
	int r;

	fill(arg, &v);
	r = notify_metrics_text(&v, &reply->body, &reply->len);
	if (r < 0)
		return r;
	reply->status = 200;
	reply->content_type = PROMTEXT_CONTENT_TYPE;
	return 0;
}

void notifier_routes(struct notifier *n, struct httpd_route routes[NOTIFY_HTTP_ROUTES])
{
	routes[0] = (struct httpd_route){ .path = "/status", .handler = status_cb, .arg = n };
	routes[1] = (struct httpd_route){ .path = "/metrics", .handler = metrics_cb, .arg = n };
}
