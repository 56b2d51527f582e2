/*
 * pgtrack-notify's /status and /metrics rendering (notify_status.c,
 * notify_metrics.c) and the records behind them (notify_stats.c), from
 * hand-made views.  With PROMTOOL set (meson does, when Debian's
 * prometheus package is installed) every /metrics text is also checked by
 * `promtool check metrics`.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "check.h"
#include "promtool.h"
#include "notify_expose.h"

static struct notify_bouncer_stats stats; /* large: not on the stack */

static void test_stats(void)
{
	struct notify_when at = { .wall = 1.0, .mono = 1.0 };
	char what[32];

	CHECK_INT_EQ(notify_action_of("RESUME appdb"), NOTIFY_ACTION_RESUME);
	CHECK_INT_EQ(notify_action_of("KILL \"a b\""), NOTIFY_ACTION_KILL);
	CHECK_INT_EQ(notify_action_of("RELOAD"), NOTIFY_ACTION_RELOAD);
	CHECK_INT_EQ(notify_action_of("disable x"), NOTIFY_ACTION_DISABLE);
	CHECK_INT_EQ(notify_action_of("SHOW DATABASES"), NOTIFY_ACTION_OTHER);
	CHECK_INT_EQ(notify_action_of("ENABLED x"), NOTIFY_ACTION_OTHER);
	CHECK_INT_EQ(notify_db_mode_of(false, false), NOTIFY_DB_SERVING);
	CHECK_INT_EQ(notify_db_mode_of(true, false), NOTIFY_DB_PAUSED);
	CHECK_INT_EQ(notify_db_mode_of(false, true), NOTIFY_DB_DISABLED);
	CHECK_INT_EQ(notify_db_mode_of(true, true), NOTIFY_DB_FENCED);

	memset(&stats, 0, sizeof(stats));
	CHECK(notify_stats_last(&stats, 0) == NULL);
	for (int i = 0; i < 20; i++) {
		snprintf(what, sizeof(what), "KILL db%d", i);
		notify_stats_action(&stats, at, NOTIFY_ACTION_KILL, what, i % 2 == 0,
				    i % 2 ? "boom" : "ignored when ok");
	}
	CHECK_INT_EQ(stats.actions[NOTIFY_ACTION_KILL][1], 10);
	CHECK_INT_EQ(stats.actions[NOTIFY_ACTION_KILL][0], 10);
	/* The ring keeps the newest NOTIFY_LAST_ACTIONS, newest first. */
	CHECK_STR_EQ(notify_stats_last(&stats, 0)->what, "KILL db19");
	CHECK_STR_EQ(notify_stats_last(&stats, 0)->error, "boom");
	CHECK_STR_EQ(notify_stats_last(&stats, 1)->error, "");
	CHECK_STR_EQ(notify_stats_last(&stats, NOTIFY_LAST_ACTIONS - 1)->what, "KILL db4");
	CHECK(notify_stats_last(&stats, NOTIFY_LAST_ACTIONS) == NULL);

	notify_stats_reach(&stats, at, "refused");
	CHECK(!stats.contacted && !stats.reachable);
	notify_stats_reach(&stats, at, NULL);
	CHECK(stats.contacted && stats.reachable);
	CHECK_STR_EQ(stats.last_error, "refused"); /* the last error stays */

	notify_stats_dbs_begin(&stats, at);
	for (int i = 0; i < NOTIFY_DBS_SHOWN + 44; i++)
		notify_stats_db(&stats, "db", NOTIFY_DB_SERVING);
	CHECK_INT_EQ(stats.n_dbs, NOTIFY_DBS_SHOWN);
	CHECK_INT_EQ(stats.dbs_not_shown, 44);
	notify_stats_dbs_begin(&stats, at);
	CHECK_INT_EQ(stats.n_dbs + stats.dbs_not_shown, 0);
}

static void test_format_time(void)
{
	char out[40];

	notify_format_time(1718000000.25, out, sizeof(out));
	CHECK_STR_EQ(out, "2024-06-10T06:13:20.250Z");
	notify_format_time(0.0, out, sizeof(out));
	CHECK_STR_EQ(out, "1970-01-01T00:00:00.000Z");
}

/* Before keepalived said anything, pgbouncer never asked. */
static void empty_view(struct notify_view *v)
{
	memset(&stats, 0, sizeof(stats));
	*v = (struct notify_view){
		.version = "9.9.9",
		.now = { .wall = 1718000010.0, .mono = 110.0 },
		.started = { .wall = 1718000000.0, .mono = 100.0 },
		.kind = "instance", .name = "VI_1",
		.fifo_path = "/run/keepalived/notify.fifo", .fifo_open = true, .fifo_present = true,
		.bouncer_target = "/run/postgresql:6432", .bouncer_mode = "unknown",
		.bouncer_reason = "unknown", .bouncer = &stats,
	};
}

/* MASTER, held for 2.5 s; every database mode; a failed action with a hostile error text. */
static void full_view(struct notify_view *v)
{
	struct notify_when at = { .wall = 1718000005.0, .mono = 105.0 };

	empty_view(v);
	v->state = "MASTER";
	v->priority = 150;
	v->state_since = at;
	v->state_changes = 3;
	v->lines[NOTIFY_LINE_APPLIED] = 7;
	v->lines[NOTIFY_LINE_OTHER] = 2;
	v->lines[NOTIFY_LINE_MALFORMED] = 3;
	v->hold_configured = v->holding = true;
	v->hold_since = (struct notify_when){ .wall = 1718000007.5, .mono = 107.5 };
	v->hold_timeout_s = 30.0;
	v->hold_method = "gate";
	v->local_target = "/run/postgresql:5432";
	v->local_role = "standby";
	v->bouncer_mode = "hold";
	v->bouncer_reason = "MASTER, the local PostgreSQL is not primary yet";
	notify_stats_reach(&stats, at, "connection refused");
	notify_stats_reach(&stats, at, NULL);
	notify_stats_action(&stats, at, NOTIFY_ACTION_KILL, "KILL appdb", true, NULL);
	notify_stats_action(&stats, at, NOTIFY_ACTION_RESUME, "RESUME appdb", false,
			    "ERROR: \"quoted\"\n\xff\xfe latin1 \xe9t\xe9");
	stats.repairs = 2;
	notify_stats_dbs_begin(&stats, at);
	notify_stats_db(&stats, "appdb", NOTIFY_DB_FENCED);
	notify_stats_db(&stats, "served", NOTIFY_DB_SERVING);
	notify_stats_db(&stats, "held", NOTIFY_DB_PAUSED);
	notify_stats_db(&stats, "off", NOTIFY_DB_DISABLED);
	notify_stats_db(&stats, "we\"ird\\db", NOTIFY_DB_MISSING);
}

static struct json_object *get(struct json_object *o, const char *path)
{
	char key[64];

	while (o && *path) {
		size_t n = strcspn(path, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(key));
		else if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path += n + (path[n] == '.');
	}
	return o;
}

static const char *get_str(struct json_object *o, const char *path)
{
	o = get(o, path);
	return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static long long get_int(struct json_object *o, const char *path)
{
	o = get(o, path);
	return o ? (long long)json_object_get_int64(o) : -1;
}

static bool is_null(struct json_object *root, const char *path)
{
	struct json_object *o = root;
	const char *dot = strrchr(path, '.');
	char parent[64];

	snprintf(parent, sizeof(parent), "%.*s", dot ? (int)(dot - path) : 0, path);
	o = dot ? get(root, parent) : root;
	return o && json_object_object_get_ex(o, dot ? dot + 1 : path, &o) && o == NULL;
}

static struct json_object *render_status(const struct notify_view *v)
{
	char *text;
	size_t len;
	struct json_object *root;

	CHECK_INT_EQ(notify_status_json(v, &text, &len), 0);
	CHECK_INT_EQ(strlen(text), len);
	CHECK(len > 0 && text[len - 1] == '\n');
	root = json_tokener_parse(text);
	CHECK(root != NULL);
	if (!root)
		printf("not JSON: %s\n", text);
	free(text);
	return root;
}

static void test_status_empty(void)
{
	struct notify_view v;
	struct json_object *root;

	empty_view(&v);
	root = render_status(&v);
	CHECK_STR_EQ(get_str(root, "version"), "9.9.9");
	CHECK_STR_EQ(get_str(root, "started"), "2024-06-10T06:13:20.000Z");
	CHECK(json_object_get_double(get(root, "uptime_seconds")) == 10.0);
	CHECK(is_null(root, "vrrp.state"));
	CHECK(is_null(root, "vrrp.priority"));
	CHECK(is_null(root, "vrrp.since"));
	CHECK_STR_EQ(get_str(root, "fifo.path"), "/run/keepalived/notify.fifo");
	CHECK_INT_EQ(get_int(root, "fifo.lines.malformed"), 0);
	CHECK(is_null(root, "hold.since"));
	CHECK(is_null(root, "hold.timeout_seconds"));
	CHECK(is_null(root, "hold.method"));
	CHECK(is_null(root, "pgbouncer.reachable"));
	CHECK(is_null(root, "pgbouncer.last_error"));
	CHECK_INT_EQ(json_object_array_length(get(root, "pgbouncer.databases")), 0);
	CHECK_INT_EQ(json_object_array_length(get(root, "pgbouncer.last_actions")), 0);
	CHECK(get(root, "pgbouncer.actions_total.other") == NULL);
	json_object_put(root);
}

static void test_status_full(void)
{
	struct notify_view v;
	struct json_object *root;
	const char *error;

	full_view(&v);
	root = render_status(&v);
	CHECK_STR_EQ(get_str(root, "vrrp.state"), "MASTER");
	CHECK_INT_EQ(get_int(root, "vrrp.priority"), 150);
	CHECK_INT_EQ(get_int(root, "vrrp.state_changes"), 3);
	CHECK_STR_EQ(get_str(root, "vrrp.since"), "2024-06-10T06:13:25.000Z");
	CHECK(json_object_get_double(get(root, "vrrp.for_seconds")) == 5.0);
	CHECK_INT_EQ(get_int(root, "fifo.lines.applied"), 7);
	CHECK_INT_EQ(get_int(root, "fifo.lines.other"), 2);
	CHECK_INT_EQ(get_int(root, "fifo.lines.malformed"), 3);
	CHECK(json_object_get_boolean(get(root, "hold.active")));
	CHECK(json_object_get_double(get(root, "hold.for_seconds")) == 2.5);
	CHECK(json_object_get_double(get(root, "hold.timeout_seconds")) == 30.0);
	CHECK_STR_EQ(get_str(root, "hold.method"), "gate");
	CHECK_STR_EQ(get_str(root, "hold.local_role"), "standby");
	CHECK_STR_EQ(get_str(root, "pgbouncer.mode"), "hold");
	CHECK(json_object_get_boolean(get(root, "pgbouncer.reachable")));
	CHECK_STR_EQ(get_str(root, "pgbouncer.last_error"), "connection refused");
	CHECK_STR_EQ(get_str(root, "pgbouncer.databases.0.mode"), "fenced");
	CHECK_STR_EQ(get_str(root, "pgbouncer.databases.2.name"), "held");
	CHECK_STR_EQ(get_str(root, "pgbouncer.databases.2.mode"), "paused");
	CHECK_STR_EQ(get_str(root, "pgbouncer.databases.4.name"), "we\"ird\\db");
	CHECK_STR_EQ(get_str(root, "pgbouncer.databases.4.mode"), "missing");
	CHECK_INT_EQ(get_int(root, "pgbouncer.reconcile_repairs"), 2);
	CHECK_INT_EQ(get_int(root, "pgbouncer.actions_total.resume.failed"), 1);
	CHECK_INT_EQ(get_int(root, "pgbouncer.actions_total.kill.ok"), 1);
	/* Newest first; the error's bytes that are not UTF-8 replaced, the rest kept. */
	CHECK_STR_EQ(get_str(root, "pgbouncer.last_actions.0.action"), "RESUME appdb");
	CHECK_STR_EQ(get_str(root, "pgbouncer.last_actions.0.result"), "failed");
	error = get_str(root, "pgbouncer.last_actions.0.error");
	CHECK_STR_EQ(error, "ERROR: \"quoted\"\n\xef\xbf\xbd\xef\xbf\xbd latin1 \xef\xbf\xbdt\xef\xbf\xbd");
	CHECK(is_null(root, "pgbouncer.last_actions.1.error"));
	json_object_put(root);
}

static char *render_metrics(const struct notify_view *v)
{
	char *text = NULL;
	size_t len;

	CHECK_INT_EQ(notify_metrics_text(v, &text, &len), 0);
	CHECK(text != NULL && strlen(text) == len);
	CHECK_INT_EQ(promtool_check(text ? text : ""), 0);
	return text;
}

#define HAS(text, line) CHECK(strstr(text, "\n" line "\n") != NULL)

static void test_metrics(void)
{
	struct notify_view v;
	char *text;

	empty_view(&v);
	text = render_metrics(&v);
	HAS(text, "pgtrack_notify_vrrp_state{state=\"unknown\"} 1");
	HAS(text, "pgtrack_notify_vrrp_state{state=\"master\"} 0");
	HAS(text, "pgtrack_notify_bouncer_up 0");
	HAS(text, "pgtrack_notify_build_info{version=\"9.9.9\"} 1");
	HAS(text, "pgtrack_notify_start_time_seconds 1718000000");
	CHECK(strstr(text, "pgtrack_notify_database_mode{") == NULL);
	free(text);

	full_view(&v);
	text = render_metrics(&v);
	HAS(text, "pgtrack_notify_vrrp_state{state=\"master\"} 1");
	HAS(text, "pgtrack_notify_vrrp_state{state=\"unknown\"} 0");
	HAS(text, "pgtrack_notify_vrrp_state_changes_total 3");
	HAS(text, "pgtrack_notify_fifo_lines_total{result=\"malformed\"} 3");
	HAS(text, "pgtrack_notify_fifo_lines_total{result=\"other\"} 2");
	HAS(text, "pgtrack_notify_hold_seconds 2.5");
	HAS(text, "pgtrack_notify_bouncer_up 1");
	HAS(text, "pgtrack_notify_bouncer_mode{mode=\"hold\"} 1");
	HAS(text, "pgtrack_notify_database_mode{database=\"appdb\",mode=\"fenced\"} 1");
	HAS(text, "pgtrack_notify_database_mode{database=\"appdb\",mode=\"serving\"} 0");
	HAS(text, "pgtrack_notify_database_mode{database=\"held\",mode=\"paused\"} 1");
	HAS(text, "pgtrack_notify_database_mode{database=\"we\\\"ird\\\\db\",mode=\"missing\"} 1");
	HAS(text, "pgtrack_notify_actions_total{action=\"resume\",result=\"failed\"} 1");
	HAS(text, "pgtrack_notify_actions_total{action=\"kill\",result=\"ok\"} 1");
	HAS(text, "pgtrack_notify_reconcile_repairs_total 2");
	CHECK(strstr(text, "action=\"other\"") == NULL);
	free(text);
}

/* promtool can fail: a check that cannot fail proves nothing. */
static void test_promtool_refuses(void)
{
	if (!getenv("PROMTOOL") || !*getenv("PROMTOOL")) {
		printf("PROMTOOL not set: promtool checks skipped\n");
		return;
	}
	CHECK(promtool_check("# HELP pgtrack_notify_x_total y\n# TYPE pgtrack_notify_x_total gauge\n"
			     "pgtrack_notify_x_total 1\n") > 0);
}

int main(void)
{
	test_stats();
	test_format_time();
	test_status_empty();
	test_status_full();
	test_metrics();
	test_promtool_refuses();
	CHECK_DONE();
}
