/*
 * notify_metrics: /metrics in the Prometheus text format (promtext).
 * Part of notify_expose.h; README's table lists every family.
 */
#include <stddef.h>
#include <string.h>

#include "notify_expose.h"
#include "promtext.h"

#define P NOTIFY_METRIC_PREFIX

/* The VRRP states of the followed name, one series each ("unknown": not reported yet). */
static const char *const vrrp_states[] = { "MASTER", "BACKUP", "FAULT", "STOP", "DELETED" };
/* What pgtrack-notify tells pgbouncer. */
static const char *const bouncer_modes[] = { "serve", "hold", "fence", "unknown" };

static void lower(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < size; i++)
		out[i] = (char)((in[i] >= 'A' && in[i] <= 'Z') ? in[i] - 'A' + 'a' : in[i]);
	out[i] = '\0';
}

static void process_metrics(struct promtext *p, const struct notify_view *v)
{
	promtext_family(p, P "up", PROMTEXT_GAUGE,
			"1: pgtrack-notify runs and answers (its event loop turns).");
	promtext_sample(p, 1.0, NULL);
	promtext_family(p, P "build_info", PROMTEXT_GAUGE,
			"Always 1; the version of pgtrack-notify in a label.");
	promtext_sample(p, 1.0, "version", v->version, NULL);
	promtext_family(p, P "start_time_seconds", PROMTEXT_GAUGE,
			"When pgtrack-notify started, in seconds since the epoch.");
	promtext_sample(p, v->started.wall, NULL);
}

static void vrrp_metrics(struct promtext *p, const struct notify_view *v)
{
	bool known = false;
	char name[16];

	promtext_family(p, P "vrrp_state", PROMTEXT_GAUGE,
			"The followed VRRP instance or group's state as keepalived last reported it "
			"(or inferred from the VIP at start): 1 for the current state, 0 for the others.");
	for (size_t i = 0; i < sizeof(vrrp_states) / sizeof(vrrp_states[0]); i++) {
		bool on = v->state && strcmp(v->state, vrrp_states[i]) == 0;

		known |= on;
		lower(vrrp_states[i], name, sizeof(name));
		promtext_sample(p, on ? 1.0 : 0.0, "state", name, NULL);
	}
	promtext_sample(p, known ? 0.0 : 1.0, "state", "unknown", NULL);
	promtext_family(p, P "vrrp_state_changes_total", PROMTEXT_COUNTER,
			"Transitions of the followed VRRP instance or group that keepalived reported.");
	promtext_sample(p, (double)v->state_changes, NULL);
	promtext_family(p, P "fifo_lines_total", PROMTEXT_COUNTER,
			"Lines read from keepalived's notify FIFO, by result: applied (about the "
			"followed name), other (another instance or group), ignored (LVS or empty), "
			"malformed.");
	for (int r = 0; r < NOTIFY_LINE_RESULTS; r++)
		promtext_sample(p, (double)v->lines[r], "result", notify_line_result_name(r), NULL);
	promtext_family(p, P "fifo_open", PROMTEXT_GAUGE,
			"1 while the notify FIFO is open and its path still names it.");
	promtext_sample(p, v->fifo_open && v->fifo_present ? 1.0 : 0.0, NULL);
	promtext_family(p, P "hold_seconds", PROMTEXT_GAUGE,
			"How long the current hold (MASTER, clients waiting in pgbouncer until the "
			"local PostgreSQL is primary) has lasted; 0 when there is none.");
	promtext_sample(p, v->holding && notify_when_known(v->hold_since)
			   ? v->now.mono - v->hold_since.mono : 0.0, NULL);
}

static void bouncer_metrics(struct promtext *p, const struct notify_view *v)
{
	const struct notify_bouncer_stats *s = v->bouncer;

	promtext_family(p, P "bouncer_up", PROMTEXT_GAUGE,
			"1 when the last attempt to reach pgbouncer's admin console worked; 0 when "
			"it failed or before the first (made once a VRRP state is known).");
	promtext_sample(p, s->contacted && s->reachable ? 1.0 : 0.0, NULL);
	promtext_family(p, P "bouncer_mode", PROMTEXT_GAUGE,
			"What pgtrack-notify makes pgbouncer do: 1 for the current mode.");
	for (size_t i = 0; i < sizeof(bouncer_modes) / sizeof(bouncer_modes[0]); i++)
		promtext_sample(p, strcmp(v->bouncer_mode, bouncer_modes[i]) == 0 ? 1.0 : 0.0,
				"mode", bouncer_modes[i], NULL);
	promtext_family(p, P "database_mode", PROMTEXT_GAUGE,
			"Each database as pgbouncer's SHOW DATABASES last showed it: 1 for its "
			"mode (serving, paused, disabled, fenced, missing), 0 for the others.");
	for (size_t i = 0; i < s->n_dbs; i++) {
		for (int m = NOTIFY_DB_SERVING; m < NOTIFY_DB_MODES; m++)
			promtext_sample(p, s->dbs[i].mode == (enum notify_db_mode)m ? 1.0 : 0.0,
					"database", s->dbs[i].name, "mode", notify_db_mode_name(m),
					NULL);
	}
	promtext_family(p, P "actions_total", PROMTEXT_COUNTER,
			"Admin commands sent to pgbouncer and databases file rewrites, by action "
			"and result (ok, failed).");
	for (int a = 0; a < NOTIFY_ACTIONS; a++) {
		if (a == NOTIFY_ACTION_OTHER && !s->actions[a][0] && !s->actions[a][1])
			continue; /* never sent: every command has its action */
		promtext_sample(p, (double)s->actions[a][1], "action", notify_action_name(a),
				"result", "ok", NULL);
		promtext_sample(p, (double)s->actions[a][0], "action", notify_action_name(a),
				"result", "failed", NULL);
	}
	promtext_family(p, P "reconcile_repairs_total", PROMTEXT_COUNTER,
			"Runs that found pgbouncer's databases away from the mode already applied "
			"(something undid it, or pgbouncer restarted) and repaired them.");
	promtext_sample(p, (double)s->repairs, NULL);
}

int notify_metrics_text(const struct notify_view *v, char **out, size_t *len)
{
	struct promtext p;

	promtext_init(&p);
	process_metrics(&p, v);
	vrrp_metrics(&p, v);
	bouncer_metrics(&p, v);
	return promtext_take(&p, out, len);
}
