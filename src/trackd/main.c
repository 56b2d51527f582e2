/*
 * pgtrackd: PostgreSQL health and role into keepalived track files.
 *
 * main: command line, signals, loading and reloading the configuration.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <syslog.h>

#include <ev.h>
#include <libpq-fe.h>

#include "build_config.h"
#include "cli.h"
#include "duration.h"
#include "log.h"
#include "mainloop.h"
#include "realtime.h"
#include "sdnotify.h"
#include "track.h"
#include "track_file.h"
#include "status_cmd.h"
#include "trackd_config.h"
#include "trackd_http.h"
#include "trackd_service.h"

#define DEFAULT_CONFIG PGTRACKD_SYSCONFDIR "/pgtrackd/pgtrackd.conf"
#define STATUS_TIMEOUT 5.0 /* seconds --status waits for the daemon */

struct daemon {
	struct ev_loop *loop;
	struct trackd_config *config;
	struct track_list tracks;
	struct mainloop_signals signals;
	struct trackd_service service;
	struct trackd_http http;
	int rt_priority; /* [global] realtime_priority last applied, -1 before the first */
	int64_t rt_limit_ms;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pgtrackd [OPTION]...\n"
		"Watch PostgreSQL servers and write their health and role into keepalived\n"
		"track_file files.\n"
		"\n"
		"  -f, --config FILE   configuration file (default %s)\n"
		"  -t, --check         check the configuration and exit: 0 if it is valid,\n"
		"                      1 after printing every error as FILE:LINE: message\n"
		"  -n, --foreground    stay in the foreground (pgtrackd never detaches itself;\n"
		"                      accepted for compatibility with init scripts)\n"
		"  -l, --log-console   log to standard error instead of syslog\n"
		"  -v, --verbose       log every probe, not only state changes\n"
		"      --write-stopped write every track's value_stopped into its file and\n"
		"                      exit: 0 if every file was written, 1 otherwise (for\n"
		"                      ExecStopPost=, after pgtrackd died in any way)\n"
		"      --status        ask the running pgtrackd (its [http] listener) for its\n"
		"                      tracks' status and print it as a table; exit 0 if it\n"
		"                      answered, 3 if [http] listen is not set, 4 if it did\n"
		"                      not answer\n"
		"      --json          with --status: print the JSON document as it came\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"Signals: SIGHUP reloads the configuration (a bad file is refused and the\n"
		"running one kept); SIGTERM and SIGINT write every track's stopped value and\n"
		"exit.\n"
		"\n"
		"See pgtrackd(8) and pgtrackd.conf(5).\n",
		DEFAULT_CONFIG);
}

static struct track *find_track(struct daemon *d, const char *name)
{
	struct track *t;

	LIST_FOREACH(t, &d->tracks, link)
		if (strcmp(t->settings.name, name) == 0)
			return t;
	return NULL;
}

static const struct track_settings *find_settings(const struct trackd_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_tracks; i++)
		if (strcmp(c->tracks[i].name, name) == 0)
			return &c->tracks[i];
	return NULL;
}

static void log_started(const struct track_settings *s)
{
	const char *host = track_probe_key(s, "host"), *hostaddr = track_probe_key(s, "hostaddr");

	if (s->module[0])
		track_log_named(s->name, PGTRACKD_LOG_INFO, "probing with module %s, writing %s",
				s->module, s->file);
	else
		track_log_named(s->name, PGTRACKD_LOG_INFO, "watching %s, writing %s",
				host && host[0] ? host :
				(hostaddr && hostaddr[0] ? hostaddr : "the default server"), s->file);
}

/*
 * [global] realtime_priority: the event loop on SCHED_RR, so that a crash's
 * value is written while the crash's exiting backends still queue for the
 * CPU.  Said when it changes; a refusal is a warning, never fatal.
 */
static void apply_scheduling(struct daemon *d, const struct global_settings *g)
{
	int64_t limit_ms = g->realtime_limit_ms;
	char why[256], limit[32];
	int was, r;

	if (g->realtime_priority == d->rt_priority && g->realtime_limit_ms == d->rt_limit_ms)
		return;
	d->rt_priority = g->realtime_priority;
	d->rt_limit_ms = g->realtime_limit_ms;
	was = realtime_current();
	r = realtime_apply(g->realtime_priority, &limit_ms, why, sizeof(why));
	if (r < 0 && g->realtime_priority > 0 && was > 0) {
		log_warnx("realtime_priority = %d: %s; keeping SCHED_RR priority %d",
			  g->realtime_priority, why, was);
		return;
	}
	if (r < 0 && g->realtime_priority > 0) {
		log_warnx("realtime_priority = %d: %s; running on normal scheduling, where the "
			  "value of a crash may wait for a CPU behind the crash's exiting backends",
			  g->realtime_priority, why);
		return;
	}
	if (r < 0) {
		log_warnx("realtime_priority = 0: %s", why);
		return;
	}
	if (g->realtime_priority == 0) {
		if (was > 0)
			log_info("normal scheduling (realtime_priority = 0)");
		return;
	}
	duration_format(limit_ms, limit, sizeof(limit));
	log_info("real-time scheduling: SCHED_RR priority %d, killed by the kernel after %s of "
		 "CPU without sleeping (RLIMIT_RTTIME%s)", g->realtime_priority, limit,
		 limit_ms < g->realtime_limit_ms ? ", lowered by an inherited hard limit" : "");
}

/* Brings the running tracks in line with config; the old config is freed. */
static int apply_config(struct daemon *d, struct trackd_config *config)
{
	int64_t check_ms = config->global.file_check_interval_ms;
	struct track *t, *next;
	int failures = 0;

	log_set_facility(log_facility_from_name(config->global.syslog_facility));
	apply_scheduling(d, &config->global);

	/* Removed tracks first, so that a file moving between tracks is not fought over. */
	for (t = LIST_FIRST(&d->tracks); t; t = next) {
		next = LIST_NEXT(t, link);
		if (find_settings(config, t->settings.name))
			continue;
		track_stop(t, "removed from the configuration");
		LIST_REMOVE(t, link);
		track_destroy(t);
	}
	for (size_t i = 0; i < config->n_tracks; i++) {
		const struct track_settings *s = &config->tracks[i];
		struct loaded_module *module = s->module[0] ? config_module(config, s->module) : NULL;

		t = find_track(d, s->name);
		if (t && track_settings_equal(&t->settings, s)) {
			track_file_set_check_interval(&t->file, check_ms);
			continue;
		}
		if (t) {
			track_log(t, PGTRACKD_LOG_INFO, "settings changed, reconnecting (state %s kept)",
				  track_state_name(t->verdict.state));
			if (track_reconfigure(t, s, module, check_ms) < 0) {
				track_log(t, PGTRACKD_LOG_ERROR,
					  "cannot apply the new settings (see above)");
				failures++;
			}
			continue;
		}
		t = track_create(d->loop, s, module, check_ms);
		if (!t) {
			/* track_create wrote the unknown value before the probe failed to start. */
			track_log_named(s->name, PGTRACKD_LOG_ERROR, "cannot start (see above); its "
					"file keeps the unknown value %d if it could be written",
					s->values[TRACK_UNKNOWN]);
			failures++;
			continue;
		}
		LIST_INSERT_HEAD(&d->tracks, t, link);
		track_set_observer(t, trackd_service_changed, &d->service);
		log_started(s);
	}
	config_destroy(d->config);
	d->config = config;
	return failures ? -ENOMEM : 0;
}

/*
 * The listener to match [http]: at start a failure is fatal (the caller
 * exits before any track file is written); on reload it is logged and
 * the running listener kept.
 */
static int apply_http(struct daemon *d, const struct http_settings *s, bool starting)
{
	bool was_on = d->http.httpd != NULL;
	bool changed = !config_http_listener_equal(&d->http.settings, s);
	char err[512], where[HTTP_MAX_LISTEN * HTTP_ADDR_MAX];
	int r = trackd_http_apply(&d->http, s, err, sizeof(err));

	if (r < 0) {
		if (starting)
			log_error("cannot start the HTTP listener ([http] listen): %s", err);
		else
			log_error("cannot start the new HTTP listener ([http] changed): %s; the "
				  "running one is kept%s", err, was_on ? "" : " (none)");
		return r;
	}
	trackd_http_describe(&d->http, where, sizeof(where));
	if (d->http.httpd && (starting || changed))
		log_info("HTTP listener on %s (default track %s)", where, d->http.default_track);
	else if (!d->http.httpd && was_on)
		log_info("HTTP listener stopped ([http] listen removed)");
	return 0;
}

static void reload(struct daemon *d)
{
	struct conf_errors errs = { 0 };
	struct trackd_config *config;

	log_info("reloading %s", d->config->path);
	config = config_load(d->config->path, &errs);
	if (!cli_config_reloaded(config != NULL, &errs))
		return;
	apply_config(d, config);
	apply_http(d, &config->http, false);
	log_info("configuration reloaded: %zu track(s)", config->n_tracks);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;

	if (w->signum == SIGHUP) {
		trackd_service_reloading(&d->service);
		reload(d);
		trackd_service_reloaded(&d->service);
		return;
	}
	trackd_service_stopping(&d->service);
	log_info("received %s, writing stopped values and exiting",
		 w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
	ev_break(loop, EVBREAK_ALL);
}

static void shutdown_tracks(struct daemon *d)
{
	struct track *t;

	while ((t = LIST_FIRST(&d->tracks))) {
		track_stop(t, "pgtrackd stopping");
		LIST_REMOVE(t, link);
		track_destroy(t);
	}
}

/*
 * --write-stopped: what pgtrackd writes when it stops, for whatever ended
 * it without that (SIGKILL, a crash, systemd's watchdog).
 */
static int write_stopped(const struct trackd_config *config)
{
	int failures = 0;

	for (size_t i = 0; i < config->n_tracks; i++) {
		const struct track_settings *s = &config->tracks[i];
		int value = s->values[TRACK_STOPPED];
		char why[CONF_STR_SIZE + 160];
		int r = track_file_write_once(s->file, value, why, sizeof(why));

		if (r < 0) {
			track_log_named(s->name, PGTRACKD_LOG_ERROR, "cannot write the stopped "
					"value %d to %s: %s", value, s->file, why);
			failures++;
			continue;
		}
		if (r > 0)
			track_log_named(s->name, PGTRACKD_LOG_WARNING, "%s", why);
		track_log_named(s->name, PGTRACKD_LOG_INFO, "stopped value %d written to %s "
				"(--write-stopped)", value, s->file);
	}
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct cli cli = {
		.program = "pgtrackd", .config = DEFAULT_CONFIG, .max_args = 0, .usage = usage,
		.allow_write_stopped = true, .allow_status = true,
	};
	struct conf_errors errs = { 0 };
	struct daemon d = { .rt_priority = -1 };
	int r;

	r = cli_parse(&cli, argc, argv);
	if (r >= 0)
		return r;

	/* -t reports on the terminal, whatever -l says. */
	log_init("pgtrackd", cli.console || cli.check || cli.write_stopped || cli.status,
		 LOG_DAEMON);
	log_set_verbose(cli.verbose);
	log_set_wait(LOG_WAIT_BEFORE_LOOP_MS);

	d.config = config_load(cli.config, &errs);
	if (cli.status && !d.config)
		fprintf(stderr, "pgtrackd: cannot read %s to find the HTTP listener:\n",
			cli.config);
	if (cli.status && d.config) {
		conf_errors_finish(&errs);
		r = status_cmd_run(d.config, cli.json, STATUS_TIMEOUT);
		config_destroy(d.config);
		return r;
	}
	r = cli_config_loaded(&cli, d.config != NULL, &errs);
	if (r >= 0) {
		config_destroy(d.config);
		return r;
	}
	if (cli.write_stopped) {
		r = write_stopped(d.config);
		config_destroy(d.config);
		return r;
	}
	r = sdnotify_init();
	if (r < 0)
		log_error("cannot talk to systemd ($NOTIFY_SOCKET): %s; not notifying it", strerror(-r));

	d.loop = mainloop_new();
	if (!d.loop)
		fatalx("cannot initialise the event loop");
	LIST_INIT(&d.tracks);
	trackd_http_init(&d.http, d.loop, &d.tracks);
	mainloop_watch_signals(d.loop, &d.signals, signal_cb, &d);

	struct trackd_config *config = d.config;

	d.config = NULL;
	log_info("pgtrackd %s starting with %s", PGTRACKD_VERSION, config->path);
	if (apply_http(&d, &config->http, true) < 0)
		fatalx("cannot serve HTTP as configured; exiting");
	if (apply_config(&d, config) < 0)
		fatalx("cannot start every track");
	trackd_service_start(&d.service, d.loop, &d.tracks, d.config->global.ready_timeout_ms);

	log_set_wait(0);
	ev_run(d.loop, 0);

	trackd_http_finish(&d.http);
	trackd_service_finish(&d.service);
	shutdown_tracks(&d);
	config_destroy(d.config);
	ev_loop_destroy(d.loop);
	log_info("pgtrackd stopped");
	return 0;
}
