#include "trackd_expose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "promtext.h"
#include "track.h"

/* The label of each failure class (include/pgtrackd/module.h), by enum pgtrackd_failure. */
static const char *const failure_labels[PGTRACKD_FAILURE_N] = {
	[PGTRACKD_FAILURE_OTHER] = "other",
	[PGTRACKD_FAILURE_REFUSED] = "refused",
	[PGTRACKD_FAILURE_TIMEOUT] = "timeout",
	[PGTRACKD_FAILURE_AUTH] = "auth",
	[PGTRACKD_FAILURE_STARTING] = "starting",
	[PGTRACKD_FAILURE_TOO_MANY] = "too_many_connections",
	[PGTRACKD_FAILURE_QUERY] = "query",
	[PGTRACKD_FAILURE_LOST] = "lost",
	[PGTRACKD_FAILURE_NOT_ACCEPTING] = "not_accepting",
	[PGTRACKD_FAILURE_EXITED] = "exited",
};

/* A track's state answers from a live server: not down, unknown or stopped. */
static bool track_up(const struct track *t)
{
	enum track_state s = t->verdict.state;

	return s != TRACK_DOWN && s != TRACK_UNKNOWN && s != TRACK_STOPPED;
}

/* The wall clock of a loop time, from the daemon's start in both clocks. */
static double wall_of(const struct trackd_view *v, double loop_time)
{
	return v->started_wall + (loop_time - v->started);
}

/* ISO 8601 in UTC with milliseconds: 2026-12-04T22:25:44.985Z */
static void iso8601(double wall, char *buf, size_t size)
{
	time_t secs = (time_t)wall; /* after the epoch: truncation is floor */
	int ms = (int)((wall - (double)secs) * 1000.0);
	struct tm tm;
	char date[32];

	if (ms > 999)
		ms = 999;
	if (!gmtime_r(&secs, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, "%s.%03dZ", date, ms);
}

/* ---- /status ---------------------------------------------------------- */

/* Builds one document; the first allocation that fails makes it fail as a whole. */
struct doc {
	bool failed;
};

static void add(struct doc *d, struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val) {
		d->failed = true;
		return;
	}
	if (!obj || json_object_object_add(obj, key, val) < 0) {
		d->failed = true;
		json_object_put(val);
	}
}

static void add_text(struct doc *d, struct json_object *obj, const char *key, const char *text)
{
	add(d, obj, key, jsonutil_string(text));
}

static void add_time(struct doc *d, struct json_object *obj, const char *key, double wall)
{
	char buf[48];

	iso8601(wall, buf, sizeof(buf));
	add_text(d, obj, key, buf);
}

/* A fact of the probe's, shared with the facts' object (a reference), under key. */
static void add_fact(struct doc *d, struct json_object *obj, const char *key,
		     const struct json_object *facts, const char *fact)
{
	struct json_object *v;

	if (facts && json_object_object_get_ex(facts, fact, &v) && v)
		add(d, obj, key, json_object_get(v));
}

static struct json_object *status_failures(struct doc *d, const struct track *t, double now)
{
	struct json_object *o = json_object_new_object(), *by = json_object_new_object();

	for (int i = 0; i < PGTRACKD_FAILURE_N; i++)
		add(d, by, failure_labels[i], json_object_new_int64((int64_t)t->stats.failures[i]));
	add(d, o, "by_reason", by);
	if (t->stats.last_failure[0]) {
		add_text(d, o, "last", t->stats.last_failure);
		add(d, o, "last_seconds_ago",
		    track_facts_double(now - t->stats.last_failure_at));
	}
	return o;
}

/* Replication figures of a standby, as the probe described them; NULL for none. */
static struct json_object *status_lag(struct doc *d, const struct json_object *facts)
{
	struct json_object *o, *v;

	if (!facts || !json_object_object_get_ex(facts, "in_recovery", &v) ||
	    !json_object_get_int(v))
		return NULL;
	o = json_object_new_object();
	add_fact(d, o, "bytes", facts, "lag_bytes");
	add_fact(d, o, "receive_bytes", facts, "receive_lag_bytes");
	add_fact(d, o, "seconds", facts, "lag_seconds");
	add_fact(d, o, "replication_state", facts, "replication_state");
	return o;
}

static void status_probe(struct doc *d, struct json_object *o, const struct track *t)
{
	const struct json_object *facts = track_facts_get(t);
	struct json_object *lag;

	add_text(d, o, "probe", t->probe_ops && t->probe_ops->name ? t->probe_ops->name : "");
	if (t->settings.module[0])
		add_text(d, o, "module", t->settings.module);
	add_fact(d, o, "probe_latency_seconds", facts, "probe_latency_seconds");
	add_fact(d, o, "in_recovery", facts, "in_recovery");
	add_fact(d, o, "timeline", facts, "timeline");
	lag = status_lag(d, facts);
	if (lag)
		add(d, o, "lag", lag);
	add_fact(d, o, "peers", facts, "peers");
	if (facts)
		add(d, o, "facts", json_object_get((struct json_object *)facts));
}

static struct json_object *status_track(struct doc *d, const struct trackd_view *v,
					const struct track *t, double now)
{
	struct json_object *o = json_object_new_object();

	add_text(d, o, "name", t->settings.name);
	add_text(d, o, "state", track_state_name(t->verdict.state));
	if (t->file.has_value)
		add(d, o, "value", json_object_new_int(t->file.value));
	else if (!o || json_object_object_add(o, "value", NULL) < 0) /* null */
		d->failed = true;
	add_text(d, o, "reason", t->stats.reason);
	add_time(d, o, "since", wall_of(v, t->stats.since));
	add(d, o, "since_seconds_ago", track_facts_double(now - t->stats.since));
	if (t->stats.first_verdict > 0.0)
		add(d, o, "first_verdict_seconds",
		    track_facts_double(t->stats.first_verdict - t->stats.created));
	add(d, o, "state_changes", json_object_new_int64((int64_t)t->stats.state_changes));
	add(d, o, "failures", status_failures(d, t, now));
	add_text(d, o, "file", t->file.path);
	add(d, o, "file_rewrites", json_object_new_int64((int64_t)t->file.rewrites));
	if (t->verdict.state == TRACK_STANDBY)
		add(d, o, "rank", json_object_new_int(t->rank));
	status_probe(d, o, t);
	return o;
}

int trackd_status_json(const struct trackd_view *v, double now, char **out, size_t *len)
{
	struct doc d = { .failed = false };
	struct json_object *root = json_object_new_object(), *tracks = json_object_new_array();
	const char *text;
	size_t n;

	add_text(&d, root, "version", v->version ? v->version : "");
	add_time(&d, root, "started", v->started_wall);
	add(&d, root, "uptime_seconds", track_facts_double(now - v->started));
	for (size_t i = 0; i < v->n_tracks && tracks; i++) {
		struct json_object *t = status_track(&d, v, v->tracks[i], now);

		if (!t || json_object_array_add(tracks, t) < 0) {
			json_object_put(t);
			d.failed = true;
		}
	}
	add(&d, root, "tracks", tracks);
	text = d.failed ? NULL : json_object_to_json_string_length(root, JSONUTIL_FLAGS, &n);
	*out = text ? malloc(n + 1) : NULL;
	if (*out) {
		memcpy(*out, text, n + 1);
		*len = n;
	}
	json_object_put(root);
	return *out ? 0 : -ENOMEM;
}

/* ---- /metrics --------------------------------------------------------- */

static bool fact_double(const struct track *t, const char *key, double *out)
{
	return track_fact_double(t, key, out) == 0;
}

static void metrics_daemon(struct promtext *p, const struct trackd_view *v)
{
	promtext_family(p, "pgtrackd_build_info", PROMTEXT_GAUGE,
			"Always 1; the version of pgtrackd in a label.");
	promtext_sample(p, 1.0, "version", v->version ? v->version : "", NULL);
	promtext_family(p, "pgtrackd_start_time_seconds", PROMTEXT_GAUGE,
			"When pgtrackd started, in seconds since the epoch.");
	promtext_sample(p, v->started_wall, NULL);
}

static void metrics_states(struct promtext *p, const struct trackd_view *v)
{
	promtext_family(p, "pgtrackd_up", PROMTEXT_GAUGE,
			"1 if the track's probe gets answers (its state is not down, unknown or "
			"stopped).");
	for (size_t i = 0; i < v->n_tracks; i++)
		promtext_sample(p, track_up(v->tracks[i]), "track", v->tracks[i]->settings.name,
				NULL);
	promtext_family(p, "pgtrackd_track_state", PROMTEXT_GAUGE,
			"The track's state: 1 for the current one, 0 for the others.");
	for (size_t i = 0; i < v->n_tracks; i++)
		for (int s = 0; s < TRACK_N_STATES; s++)
			promtext_sample(p, v->tracks[i]->verdict.state == (enum track_state)s,
					"track", v->tracks[i]->settings.name, "state",
					track_state_name((enum track_state)s), NULL);
	promtext_family(p, "pgtrackd_track_value", PROMTEXT_GAUGE,
			"The value last written to the track's keepalived track_file.");
	for (size_t i = 0; i < v->n_tracks; i++)
		if (v->tracks[i]->file.has_value)
			promtext_sample(p, v->tracks[i]->file.value, "track",
					v->tracks[i]->settings.name, NULL);
}

static void metrics_times(struct promtext *p, const struct trackd_view *v)
{
	promtext_family(p, "pgtrackd_state_since_timestamp_seconds", PROMTEXT_GAUGE,
			"When the track entered its current state, in seconds since the epoch.");
	for (size_t i = 0; i < v->n_tracks; i++)
		promtext_sample(p, wall_of(v, v->tracks[i]->stats.since), "track",
				v->tracks[i]->settings.name, NULL);
	promtext_family(p, "pgtrackd_first_verdict_seconds", PROMTEXT_GAUGE,
			"Seconds from the track's start to its first verdict.");
	for (size_t i = 0; i < v->n_tracks; i++) {
		const struct track_stats *s = &v->tracks[i]->stats;

		if (s->first_verdict > 0.0)
			promtext_sample(p, s->first_verdict - s->created, "track",
					v->tracks[i]->settings.name, NULL);
	}
	promtext_family(p, "pgtrackd_probe_duration_seconds", PROMTEXT_GAUGE,
			"The round trip of the track's last probe.");
	for (size_t i = 0; i < v->n_tracks; i++) {
		double d;

		if (fact_double(v->tracks[i], "probe_latency_seconds", &d))
			promtext_sample(p, d, "track", v->tracks[i]->settings.name, NULL);
	}
}

static void metrics_counters(struct promtext *p, const struct trackd_view *v)
{
	promtext_family(p, "pgtrackd_probe_failures_total", PROMTEXT_COUNTER,
			"Failed probes, by the class of the failure.");
	for (size_t i = 0; i < v->n_tracks; i++)
		for (int c = 0; c < PGTRACKD_FAILURE_N; c++)
			promtext_sample(p, (double)v->tracks[i]->stats.failures[c], "track",
					v->tracks[i]->settings.name, "reason", failure_labels[c],
					NULL);
	promtext_family(p, "pgtrackd_state_changes_total", PROMTEXT_COUNTER,
			"Changes of the track's state.");
	for (size_t i = 0; i < v->n_tracks; i++)
		promtext_sample(p, (double)v->tracks[i]->stats.state_changes, "track",
				v->tracks[i]->settings.name, NULL);
	promtext_family(p, "pgtrackd_accept_probe_failures_total", PROMTEXT_COUNTER,
			"Accept probes (fresh connections, pings) that failed.");
	for (size_t i = 0; i < v->n_tracks; i++) {
		double n;

		if (fact_double(v->tracks[i], "accept_failures", &n))
			promtext_sample(p, n, "track", v->tracks[i]->settings.name, NULL);
	}
	promtext_family(p, "pgtrackd_track_file_rewrites_total", PROMTEXT_COUNTER,
			"Times the track's value was put back after something else changed or "
			"removed its file.");
	for (size_t i = 0; i < v->n_tracks; i++)
		promtext_sample(p, (double)v->tracks[i]->file.rewrites, "track",
				v->tracks[i]->settings.name, NULL);
}

/* One gauge family of a numeric fact, a sample for each track that describes it. */
static void metrics_fact(struct promtext *p, const struct trackd_view *v, const char *name,
			 const char *help, const char *fact)
{
	promtext_family(p, name, PROMTEXT_GAUGE, help);
	for (size_t i = 0; i < v->n_tracks; i++) {
		double x;

		if (fact_double(v->tracks[i], fact, &x))
			promtext_sample(p, x, "track", v->tracks[i]->settings.name, NULL);
	}
}

static void metrics_replication(struct promtext *p, const struct trackd_view *v)
{
	metrics_fact(p, v, "pgtrackd_replication_is_replica",
		     "1 if the server is in recovery (a standby), 0 if it is a primary.",
		     "in_recovery");
	/* As postgres_exporter's pg_replication_lag_seconds: 0 on a primary. */
	promtext_family(p, "pgtrackd_replication_lag_seconds", PROMTEXT_GAUGE,
			"How long a standby's replay has been behind the primary; 0 on a primary.");
	for (size_t i = 0; i < v->n_tracks; i++) {
		double lag, replica;

		if (!fact_double(v->tracks[i], "in_recovery", &replica))
			continue;
		if (replica == 0.0)
			lag = 0.0;
		else if (!fact_double(v->tracks[i], "lag_seconds", &lag))
			continue;
		promtext_sample(p, lag, "track", v->tracks[i]->settings.name, NULL);
	}
	metrics_fact(p, v, "pgtrackd_replication_lag_bytes",
		     "Bytes a standby's replay is behind the newest primary position it knows.",
		     "lag_bytes");
	metrics_fact(p, v, "pgtrackd_replication_receive_lag_bytes",
		     "Bytes a standby's received WAL is behind the primary's.",
		     "receive_lag_bytes");
	metrics_fact(p, v, "pgtrackd_timeline", "The server's timeline (a primary's).",
		     "timeline");
	metrics_fact(p, v, "pgtrackd_sync_relaxed",
		     "With sync_standby_names: 1 if synchronous_standby_names is empty (relaxed), "
		     "0 if not.", "sync_relaxed");
	metrics_fact(p, v, "pgtrackd_sync_waiting_commits",
		     "With sync_standby_names: backends waiting for a synchronous standby.",
		     "sync_waiting_commits");
}

/* pgtrackd_peer_up: a sample per peer each track's probe describes. */
static void metrics_peers(struct promtext *p, const struct trackd_view *v)
{
	promtext_family(p, "pgtrackd_peer_up", PROMTEXT_GAUGE,
			"1 if the peer answered the track's last poll, 0 if it failed or was "
			"not heard yet.");
	for (size_t i = 0; i < v->n_tracks; i++) {
		const struct json_object *facts = track_facts_get(v->tracks[i]);
		struct json_object *peers, *peer, *name, *up;

		if (!facts || !json_object_object_get_ex(facts, "peers", &peers) ||
		    !json_object_is_type(peers, json_type_array))
			continue;
		for (size_t j = 0; j < json_object_array_length(peers); j++) {
			peer = json_object_array_get_idx(peers, j);
			if (!json_object_object_get_ex(peer, "name", &name) ||
			    !json_object_is_type(name, json_type_string))
				continue;
			promtext_sample(p, json_object_object_get_ex(peer, "reachable", &up) &&
					   json_object_get_int(up) ? 1.0 : 0.0,
					"track", v->tracks[i]->settings.name, "peer",
					json_object_get_string(name), NULL);
		}
	}
}

int trackd_metrics_text(const struct trackd_view *v, double now, char **out, size_t *len)
{
	struct promtext p;
	int r;

	(void)now; /* every figure is a state or a time stamp: none depends on it */
	promtext_init(&p);
	metrics_daemon(&p, v);
	metrics_states(&p, v);
	metrics_times(&p, v);
	metrics_counters(&p, v);
	metrics_replication(&p, v);
	metrics_peers(&p, v);
	r = promtext_take(&p, out, len);
	/* The names are ours and fixed: only memory can fail here. */
	return r == 0 ? 0 : -ENOMEM;
}
