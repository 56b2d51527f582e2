/*
 * maintenance: a pgtrackd probe module that drains a node on request.
 *
 * While the flag file exists, the track reports "maintenance" (its value,
 * value_maintenance, defaults to -254: FAULT, so keepalived moves the VIP
 * away and keeps it away); without it, "ok" (value_ok, default 0).  Give
 * it a track and a track_file of its own and track that file from the
 * vrrp_instance too: keepalived adds the two files' values.
 *
 *     [track drain]
 *     file = /run/pgtrackd/drain
 *     module = /usr/lib/pgtrackd/modules/maintenance.so
 *     flag = /etc/pgtrackd/maintenance
 *
 *     touch /etc/pgtrackd/maintenance     # drain this node
 *     rm /etc/pgtrackd/maintenance        # back in service
 *
 * The flag is watched with libev's ev_stat, which uses inotify: a change
 * is seen at once, with a slow stat() as a fallback (check_interval).  The
 * state is also reported once per track interval, changed or not: a probe
 * that stops reporting is a hung one to pgtrackd's watchdog.  /status
 * shows the flag's path and whether it is present (describe).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pgtrackd/module.h>

struct maintenance {
	const struct pgtrackd_host *host;
	char *flag;
	ev_stat watch;
	ev_timer every;  /* the report of each interval */
	int reported; /* -1 nothing yet, 0 ok, 1 maintenance */
};

static int check_key(const char *key, const char *value, char *error, size_t size)
{
	if (strcmp(key, "flag") == 0) {
		if (value[0] != '/') {
			snprintf(error, size, "must be an absolute path");
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "check_interval") == 0) {
		char *end;
		double seconds = strtod(value, &end);

		/* Written so that NaN fails too. */
		if (end == value || *end != '\0' || !(seconds >= 0.1 && seconds <= 3600)) {
			snprintf(error, size, "expected seconds between 0.1 and 3600");
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

static int check_section(const struct pgtrackd_dict *config, char *error, size_t size)
{
	if (!pgtrackd_dict_get(config, "flag")) {
		snprintf(error, size, "missing required key \"flag\"");
		return -EINVAL;
	}
	return 0;
}

static void report(struct maintenance *m)
{
	int present = m->watch.attr.st_nlink > 0;

	/* Every check is reported; the line tells only about changes. */
	if (present != m->reported)
		m->host->log(m->host, PGTRACKD_LOG_INFO, "maintenance flag %s %s", m->flag,
			     present ? "present: draining this node" : "absent: in service");
	m->reported = present;
	m->host->report(m->host, present ? PGTRACKD_STATE_MAINTENANCE : PGTRACKD_STATE_OK,
			present ? "maintenance flag present" : "no maintenance flag");
}

static void changed(struct ev_loop *loop, ev_stat *w, int revents)
{
	report(w->data);
}

static void interval_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	report(w->data);
}

static int init(const struct pgtrackd_host *host, const struct pgtrackd_dict *config,
		void **state)
{
	const char *interval = pgtrackd_dict_get(config, "check_interval");
	struct maintenance *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->host = host;
	m->reported = -1;
	m->flag = strdup(pgtrackd_dict_get(config, "flag"));
	if (!m->flag) {
		free(m);
		return -ENOMEM;
	}
	ev_stat_init(&m->watch, changed, m->flag, interval ? strtod(interval, NULL) : 1.0);
	m->watch.data = m;
	ev_timer_init(&m->every, interval_cb, (double)host->interval_ms / 1000.0,
		      (double)host->interval_ms / 1000.0);
	m->every.data = m;
	*state = m;
	return 0;
}

static int start(void *state)
{
	struct maintenance *m = state;

	ev_stat_start(m->host->loop, &m->watch);
	ev_timer_start(m->host->loop, &m->every);
	/* ev_stat_start has filled in the current attributes. */
	report(m);
	return 0;
}

static void stop(void *state)
{
	struct maintenance *m = state;

	ev_stat_stop(m->host->loop, &m->watch);
	ev_timer_stop(m->host->loop, &m->every);
}

static void destroy(void *state)
{
	struct maintenance *m = state;

	if (!m)
		return;
	stop(m);
	free(m->flag);
	free(m);
}

/*
 * What /status shows of the track besides its state (module ABI 3): the
 * flag's path and whether it was there at the last check.  Called only
 * when someone asks, never per check.
 */
static void describe(void *state, const struct pgtrackd_facts *out)
{
	const struct maintenance *m = state;

	out->put_text(out, "flag", m->flag);
	if (m->reported >= 0)
		out->put_int(out, "flag_present", m->reported);
}

static const struct pgtrackd_module module = {
	.abi_version = PGTRACKD_MODULE_ABI_VERSION,
	.name = "maintenance",
	.check_key = check_key,
	.check_section = check_section,
	.init = init,
	.start = start,
	.stop = stop,
	.destroy = destroy,
	.describe = describe,
};

PGTRACKD_MODULE_EXPORT const struct pgtrackd_module *pgtrackd_module_entry(void)
{
	return &module;
}
