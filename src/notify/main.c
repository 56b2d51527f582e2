/*
 * pgtrack-notify: keepalived's notify FIFO in, pgbouncer serving only on
 * the MASTER out.
 *
 * main: command line, signals, reloads, and following one VRRP instance or
 * sync group through the FIFO's lines.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <ev.h>
#include <libpq-fe.h>

#include "bouncer.h"
#include "build_config.h"
#include "cli.h"
#include "duration.h"
#include "fifo.h"
#include "follow.h"
#include "hooks.h"
#include "local_address.h"
#include "localpg.h"
#include "log.h"
#include "mainloop.h"
#include "monotime.h"
#include "notifier.h"
#include "notify_config.h"
#include "notify_http.h"
#include "notify_stats.h"
#include "ratelimit.h"
#include "sdnotify.h"
#include "util.h"
#include "vrrp_event.h"

#define DEFAULT_CONFIG PGTRACKD_SYSCONFDIR "/pgtrack-notify/pgtrack-notify.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pgtrack-notify [OPTION]... [FIFO]\n"
		"Follow one keepalived VRRP instance or sync group through keepalived's\n"
		"notify FIFO and make pgbouncer serve only while it is MASTER.\n"
		"\n"
		"  -f, --config FILE   configuration file (default %s)\n"
		"  -t, --check         check the configuration and exit: 0 if it is valid,\n"
		"                      1 after printing every error as FILE:LINE: message\n"
		"  -n, --foreground    stay in the foreground (never detaches; accepted for\n"
		"                      compatibility with init scripts)\n"
		"  -l, --log-console   log to standard error instead of syslog\n"
		"  -v, --verbose       log every line read and every admin command\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"FIFO, when given, replaces [notify] fifo: keepalived's notify_fifo_script\n"
		"appends it.  In that mode SIGTERM (which keepalived sends before its STOP\n"
		"lines) is followed by stop_grace of reading before the exit.\n"
		"\n"
		"Signals: SIGHUP reloads the configuration (a bad file is refused and the\n"
		"running one kept); SIGTERM and SIGINT exit, leaving pgbouncer as it is.\n"
		"\n"
		"See pgtrack-notify(8) and pgtrack-notify.conf(5).\n",
		DEFAULT_CONFIG);
}

static const char *followed_kind(const struct notify_config *c)
{
	return c->notify.instance[0] ? "instance" : "group";
}

static const char *followed_name(const struct notify_config *c)
{
	return c->notify.instance[0] ? c->notify.instance : c->notify.group;
}

static void follow_settings_of(const struct notify_config *c, struct follow_settings *s)
{
	*s = (struct follow_settings){
		.kind = c->notify.instance[0] ? VRRP_INSTANCE : VRRP_GROUP,
		.hold = c->hold,
		.backup_waits = c->backup_waits,
		.hold_timeout_ms = c->local.hold_timeout_ms,
	};
	/* Names are at most VRRP_NAME_MAX long (notify_config checks). */
	snprintf(s->name, sizeof(s->name), "%.*s", VRRP_NAME_MAX, followed_name(c));
}

static void bad_line(struct notifier *n, const char *why, const char *line, size_t len)
{
	unsigned long suppressed;
	char shown[121];
	size_t k = 0;

	if (!ratelimit_allow(&n->bad_lines, monotime_now(), &suppressed))
		return;
	for (size_t i = 0; i < len && k < sizeof(shown) - 1; i++)
		shown[k++] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
	shown[k] = '\0';
	if (suppressed)
		log_warnx("FIFO %s: %lu more bad lines were skipped without a log line",
			  fifo_reader_path(n->fifo), suppressed);
	log_warnx("FIFO %s: skipped a bad line (%s): \"%s%s\"", fifo_reader_path(n->fifo), why, shown,
		  len > k ? "..." : "");
}

/* How long keepalived may talk about other names only before the warning. */
#define UNSEEN_AFTER 5.0

static void unseen_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct notifier *n = container_of(w, struct notifier, unseen_timer);
	char list[FOLLOW_OTHERS_MAX * (FOLLOW_OTHER_SIZE + 2)];

	if (!follow_unseen_warning(&n->follow, list, sizeof(list)))
		return;
	log_warnx("keepalived has reported %s but never %s \"%s\" (%.0fs after the first of "
		  "them): check [notify] %s against keepalived.conf; pgbouncer stays as it is "
		  "until \"%s\" is reported", list, followed_kind(n->config),
		  followed_name(n->config), UNSEEN_AFTER, followed_kind(n->config),
		  followed_name(n->config));
}

/* A line about the followed name that reports no transition. */
static void on_report(struct notifier *n, const struct vrrp_event *ev)
{
	const struct follow *f = &n->follow;
	unsigned long suppressed;

	switch (ev->state) {
	case VRRP_MASTER_RX_LOWER_PRI:
		if (ratelimit_allow(&n->two_masters, monotime_now(), &suppressed))
			log_warnx("two masters: %s \"%s\" received an advert of lower priority while "
				  "MASTER (another node also claims the VIP)%s",
				  followed_kind(n->config), ev->name,
				  suppressed ? "; repeated since the last warning" : "");
		break;
	case VRRP_UNKNOWN_STATE:
		log_warnx("VRRP %s \"%s\" reports an unknown state; keeping %s",
			  followed_kind(n->config), ev->name,
			  f->state_known ? vrrp_state_name(f->state) : "no state");
		break;
	default:
		log_debug("VRRP %s \"%s\": %s %d", followed_kind(n->config), ev->name,
			  vrrp_state_name(ev->state), ev->priority);
		break;
	}
}

static void on_line(void *user, const char *line, size_t len, bool overlong)
{
	struct notifier *n = user;
	bool was_known = n->follow.state_known;
	enum vrrp_state was = n->follow.state;
	struct vrrp_event ev;
	enum follow_line r;
	const char *why;

	n->lines_seen++;
	if (overlong) {
		n->lines[NOTIFY_LINE_MALFORMED]++;
		bad_line(n, "longer than 512 bytes", line, len);
		return;
	}
	switch (vrrp_event_parse(line, len, &ev, &why)) {
	case VRRP_PARSE_IGNORED:
		n->lines[NOTIFY_LINE_IGNORED]++;
		return;
	case VRRP_PARSE_ERROR:
		n->lines[NOTIFY_LINE_MALFORMED]++;
		bad_line(n, why, line, len);
		return;
	case VRRP_PARSE_OK:
		break;
	}
	r = follow_line(&n->follow, &ev);
	n->lines[r == FOLLOW_LINE_OTHER ? NOTIFY_LINE_OTHER : NOTIFY_LINE_APPLIED]++;
	switch (r) {
	case FOLLOW_LINE_OTHER:
		if (follow_note_other(&n->follow, &ev) && !ev_is_active(&n->unseen_timer)) {
			ev_timer_set(&n->unseen_timer, UNSEEN_AFTER, 0.0);
			ev_timer_start(n->loop, &n->unseen_timer);
		}
		log_debug("FIFO: %s \"%s\" %s %d (not followed)", vrrp_kind_name(ev.kind), ev.name,
			  vrrp_state_name(ev.state), ev.priority);
		return;
	case FOLLOW_LINE_CHANGED:
		n->state_changes++;
		n->state_since = notify_when_now();
		log_info("VRRP %s \"%s\": %s -> %s (priority %d)", followed_kind(n->config),
			 ev.name, was_known ? vrrp_state_name(was) : "unknown",
			 vrrp_state_name(ev.state), ev.priority);
		break;
	case FOLLOW_LINE_SAME:
		break;
	case FOLLOW_LINE_REPORT:
		on_report(n, &ev);
		break;
	}
	ev_timer_stop(n->loop, &n->unseen_timer);
}

static enum hook_event hook_of(enum vrrp_state s)
{
	switch (s) {
	case VRRP_MASTER:
		return HOOK_MASTER;
	case VRRP_BACKUP:
		return HOOK_BACKUP;
	case VRRP_FAULT:
		return HOOK_FAULT;
	default:
		return HOOK_STOP;
	}
}

static void note_decision(struct notifier *n, unsigned notes)
{
	const struct localpg *lp = &n->local;

	if (notes & FOLLOW_NOTE_REFUSED)
		log_error("cannot ask the local PostgreSQL at %s whether it is primary (%s): "
			  "serving on MASTER without the hold; fix [postgres]", lp->target,
			  lp->last_error);
	if (notes & FOLLOW_NOTE_PRIMARY)
		log_info("local PostgreSQL at %s is primary: serving%s", lp->target,
			 notes & FOLLOW_NOTE_AFTER_TIMEOUT ? " (after the hold timed out)"
							   : ", ending the hold");
	if (notes & FOLLOW_NOTE_STANDBY_AGAIN)
		log_error("local PostgreSQL at %s is a standby again while this node is MASTER: "
			  "holding its clients until it is primary", lp->target);
	if (notes & FOLLOW_NOTE_HOLDING)
		log_info("this node is MASTER but the local PostgreSQL at %s is %s: holding clients "
			 "in pgbouncer until it is primary, for at most %.1fs", lp->target,
			 lp->role == LOCALPG_STANDBY ? "still a standby" : "not answering",
			 duration_seconds(n->config->local.hold_timeout_ms));
}

/* Asks follow what pgbouncer should do now, and does it. */
/* systemd's STATUS=: the followed state and what pgbouncer is told, when it changes. */
static void report_status_with(struct notifier *n, const char *prefix)
{
	char status[sizeof(n->status)];

	snprintf(status, sizeof(status), "%s %s: %s; pgbouncer: %s", followed_kind(n->config),
		 followed_name(n->config),
		 n->follow.state_known ? vrrp_state_name(n->follow.state) : "not reported yet",
		 bouncer_mode_name(n->bouncer.mode));
	if (!prefix[0] && strcmp(status, n->status) == 0)
		return;
	memcpy(n->status, status, sizeof(status));
	sdnotify_send("%sSTATUS=%s", prefix, status);
}

static void report_status(struct notifier *n)
{
	report_status_with(n, "");
}

static void decide(struct notifier *n)
{
	struct localpg *lp = &n->local;
	struct follow_pg pg = {
		.role = lp->role == LOCALPG_PRIMARY   ? FOLLOW_PG_PRIMARY
			: lp->role == LOCALPG_STANDBY ? FOLLOW_PG_STANDBY
						      : FOLLOW_PG_UNKNOWN,
		.refused = lp->refused,
		.answered = lp->answered,
		.watching = lp->watching,
		.fresh = lp->fresh,
	};
	struct follow_decision d;

	follow_decide(&n->follow, &pg, &d);
	if (d.hold_timer != FOLLOW_KEEP)
		ev_timer_stop(n->loop, &n->hold_timer);
	if (d.hold_timer == FOLLOW_ON) {
		n->hold_since = notify_when_now();
		ev_timer_set(&n->hold_timer, duration_seconds(n->config->local.hold_timeout_ms), 0.0);
		ev_timer_start(n->loop, &n->hold_timer);
	}
	if (d.watch != FOLLOW_KEEP)
		localpg_watch(lp, d.watch == FOLLOW_ON);
	note_decision(n, d.notes);
	if (d.cut)
		bouncer_cut_held(&n->bouncer);
	switch (d.mode) {
	case FOLLOW_LEAVE:
		break;
	case FOLLOW_SERVE:
		bouncer_set_mode(&n->bouncer, BOUNCER_SERVE, d.reason);
		break;
	case FOLLOW_FENCE:
		bouncer_set_mode(&n->bouncer, BOUNCER_FENCE, d.reason);
		break;
	case FOLLOW_HOLD:
		/* With the gate a MASTER holds by serving: the wait is inside PostgreSQL (gate.h). */
		if (n->config->gate && n->follow.state == VRRP_MASTER)
			bouncer_set_mode(&n->bouncer, BOUNCER_SERVE, "MASTER, clients held in the gate");
		else
			bouncer_set_mode(&n->bouncer, BOUNCER_HOLD, d.reason);
		break;
	}
	report_status(n);
}

static void hold_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct notifier *n = container_of(w, struct notifier, hold_timer);

	follow_hold_expired(&n->follow);
	log_error("local PostgreSQL at %s is still %s %.1fs (hold_timeout) after this node became "
		  "MASTER: fencing pgbouncer (waiting clients are disconnected, new ones refused); "
		  "it serves as soon as the local PostgreSQL is primary",
		  n->local.target, n->local.role == LOCALPG_STANDBY ? "a standby" : "unreachable",
		  duration_seconds(n->config->local.hold_timeout_ms));
	decide(n);
}

static void on_local_changed(struct localpg *lp)
{
	struct notifier *n = container_of(lp, struct notifier, local);

	log_debug("local PostgreSQL at %s: %s", lp->target, localpg_role_name(lp->role));
	decide(n);
}

/* The burst is read: act on where it ended. */
static void on_drained(void *user)
{
	struct notifier *n = user;
	struct follow *f = &n->follow;
	struct hook_context context = { .priority = f->priority };

	if (!follow_take_change(f) || !f->state_known)
		return;
	decide(n);
	if (!follow_hook_due(f))
		return;
	snprintf(context.kind, sizeof(context.kind), "%s",
		 n->config->notify.instance[0] ? "INSTANCE" : "GROUP");
	snprintf(context.name, sizeof(context.name), "%s", followed_name(n->config));
	snprintf(context.state, sizeof(context.state), "%s", vrrp_state_name(f->state));
	hooks_run(&n->hooks, hook_of(f->state), &context);
}

static const struct fifo_handler fifo_handler = {
	.line = on_line,
	.drained = on_drained,
};

/* At start, before keepalived has said anything: the VIP tells, if configured. */
static void infer_state(struct notifier *n)
{
	const char *vip = n->config->notify.vip;
	int r;

	if (!vip[0]) {
		log_notice("VRRP state of %s \"%s\" unknown until keepalived reports it; "
			   "leaving pgbouncer as it is", followed_kind(n->config),
			   followed_name(n->config));
		return;
	}
	r = local_address_present(vip);
	if (r < 0) {
		log_warnx("cannot list local addresses to look for %s: %s; leaving pgbouncer as it is",
			  vip, strerror(-r));
		return;
	}
	log_info("VRRP state of %s \"%s\" not reported yet; the VIP %s is %s, so taking it as %s",
		 followed_kind(n->config), followed_name(n->config), vip,
		 r ? "here" : "not here", r ? "MASTER" : "BACKUP");
	follow_infer(&n->follow, r > 0);
	n->state_since = notify_when_now();
	decide(n);
}

/*
 * A reload that names another FIFO (or owner): the new reader is opened
 * first, the old one drained and closed only once it is; false (the old
 * one kept, the reason in why) if the new one cannot be opened.
 */
static bool swap_fifo(struct notifier *n, const struct notify_config *config, char *why,
		      size_t why_size)
{
	struct fifo_reader *fresh;
	int r;

	fresh = fifo_reader_create(n->loop, config->notify.fifo, config->fifo_uid, &fifo_handler, n,
				   &r, why, why_size);
	if (!fresh)
		return false;
	/* Lines already in the old FIFO still count. */
	fifo_reader_drain(n->fifo);
	fifo_reader_destroy(n->fifo);
	n->fifo = fresh;
	return true;
}

static void reload(struct notifier *n)
{
	struct conf_errors errs = { 0 };
	struct notify_config *config, *old = n->config;
	struct follow_settings settings;
	unsigned changed;
	char why[512];

	log_info("reloading %s", old->path);
	config = notify_config_load(old->path, n->fifo_arg, &errs);
	if (!cli_config_reloaded(config != NULL, &errs))
		return;
	n->status[0] = '\0'; /* a renamed instance or group shows at once */

	if ((strcmp(config->notify.fifo, old->notify.fifo) != 0 || config->fifo_uid != old->fifo_uid) &&
	    !swap_fifo(n, config, why, sizeof(why))) {
		log_error("%s; configuration reload failed, keeping the running configuration", why);
		notify_config_destroy(config);
		return;
	}
	follow_settings_of(config, &settings);
	changed = follow_reconfigure(&n->follow, &settings);
	if (changed & FOLLOW_RENAMED)
		log_info("now following %s \"%s\": its state is unknown until keepalived reports it",
			 followed_kind(config), followed_name(config));
	if (changed & FOLLOW_HOLD_RESET)
		ev_timer_stop(n->loop, &n->hold_timer);
	log_set_facility(log_facility_from_name(config->notify.syslog_facility));
	n->config = config;
	notify_http_reconfigure(&n->http, &config->http, NOTIFY_HTTP_AT_RELOAD, why, sizeof(why));
	hooks_set_config(&n->hooks, config);
	bouncer_set_config(&n->bouncer, config);
	localpg_set_config(&n->local, config);
	if (config->hold && (config->gate != old->gate || strcmp(config->gate_why, old->gate_why)))
		notify_config_log_hold(n->config, n->local.target);
	notify_config_destroy(old);
	decide(n);
	log_info("configuration reloaded");
}

static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct notifier *n = w->data;

	if (w->signum == SIGHUP) {
		sdnotify_reloading();
		reload(n);
		report_status_with(n, "READY=1\n");
		return;
	}
	if (n->stopping)
		return;
	n->stopping = true;
	sdnotify_send("STOPPING=1");
	/* The port goes now: keepalived may already be starting our successor. */
	notify_http_finish(&n->http);
	if (n->fifo_arg && n->config->notify.stop_grace_ms > 0) {
		log_info("received %s: reading keepalived's STOP lines for %.1fs, then exiting",
			 strsignal(w->signum), (double)n->config->notify.stop_grace_ms / 1000.0);
		ev_timer_init(&n->grace, grace_cb,
			      (double)n->config->notify.stop_grace_ms / 1000.0, 0.0);
		ev_timer_start(loop, &n->grace);
		return;
	}
	log_info("received %s, exiting; pgbouncer is left as it is", strsignal(w->signum));
	ev_break(loop, EVBREAK_ALL);
}

/*
 * The watchdog's timer firing proves the loop turns; the bouncer's
 * reconcile timer must be live too, or pgbouncer would drift unwatched.
 */
static bool loop_alive(void *ctx, char *why, size_t size)
{
	struct notifier *n = ctx;

	if (!ev_is_active(&n->bouncer.reconcile)) {
		snprintf(why, size, "the pgbouncer reconcile timer is not running");
		return false;
	}
	return true;
}

/* Everything but the FIFO and the signals: the state at start, pgbouncer's first run. */
static void start(struct notifier *n)
{
	bouncer_init(&n->bouncer, n->loop, n->config);
	hooks_init(&n->hooks, n->loop, n->config);
	localpg_init(&n->local, n->loop, n->config, on_local_changed);
	ev_init(&n->hold_timer, hold_timeout_cb);
	ev_init(&n->unseen_timer, unseen_cb);

	log_info("pgtrack-notify %s starting: following %s \"%s\" on %s%s, pgbouncer at %s",
		 PGTRACKD_VERSION, followed_kind(n->config), followed_name(n->config),
		 n->config->notify.fifo, n->fifo_arg ? " (as notify_fifo_script)" : "",
		 n->bouncer.target);
	if (n->config->hold)
		notify_config_log_hold(n->config, n->local.target);
	else
		log_notice("no [postgres] section: on MASTER pgbouncer serves at once, even while "
			   "the local PostgreSQL is still a standby");
	localpg_start(&n->local);
	infer_state(n);
	bouncer_start(&n->bouncer);
	report_status_with(n, "READY=1\n");
	sdnotify_watchdog_start(&n->watchdog, n->loop, loop_alive, n);
}

int main(int argc, char **argv)
{
	struct cli cli = {
		.program = "pgtrack-notify", .config = DEFAULT_CONFIG, .max_args = 1, .usage = usage,
	};
	struct conf_errors errs = { 0 };
	struct notifier n = { 0 };
	struct httpd_route routes[NOTIFY_HTTP_ROUTES];
	struct follow_settings settings;
	char why[512];
	int r;

	n.started = notify_when_now();
	r = cli_parse(&cli, argc, argv);
	if (r >= 0)
		return r;
	if (cli.n_args == 1)
		n.fifo_arg = cli.args[0];

	log_init("pgtrack-notify", cli.console || cli.check, LOG_DAEMON);
	log_set_verbose(cli.verbose);
	log_set_wait(LOG_WAIT_BEFORE_LOOP_MS);
	r = sdnotify_init();
	if (r < 0)
		log_error("cannot talk to systemd ($NOTIFY_SOCKET): %s; not notifying it", strerror(-r));

	n.config = notify_config_load(cli.config, n.fifo_arg, &errs);
	r = cli_config_loaded(&cli, n.config != NULL, &errs);
	if (r >= 0) {
		notify_config_destroy(n.config);
		return r;
	}
	log_set_facility(log_facility_from_name(n.config->notify.syslog_facility));

	n.loop = mainloop_new();
	if (!n.loop)
		fatalx("cannot initialise the event loop");
	ratelimit_init(&n.bad_lines, 10.0, 5);
	ratelimit_init(&n.two_masters, 10.0, 1);

	follow_settings_of(n.config, &settings);
	follow_init(&n.follow, &settings);
	n.fifo = fifo_reader_create(n.loop, n.config->notify.fifo, n.config->fifo_uid,
				    &fifo_handler, &n, &r, why, sizeof(why));
	if (!n.fifo) {
		log_error("%s", why);
		if (!cli.console)
			fprintf(stderr, "pgtrack-notify: %s\n", why);
		notify_config_destroy(n.config);
		return 1;
	}
	notifier_routes(&n, routes);
	notify_http_init(&n.http, n.loop, routes);
	if (!notify_http_reconfigure(&n.http, &n.config->http, n.fifo_arg ? NOTIFY_HTTP_AT_START_SCRIPT
				     : NOTIFY_HTTP_AT_START, why, sizeof(why))) {
		if (!cli.console)
			fprintf(stderr, "pgtrack-notify: HTTP listener ([http]): %s\n", why);
		fifo_reader_destroy(n.fifo);
		notify_config_destroy(n.config);
		return 1;
	}
	mainloop_watch_signals(n.loop, &n.signals, signal_cb, &n);
	start(&n);

	log_set_wait(0);
	ev_run(n.loop, 0);

	sdnotify_watchdog_stop(&n.watchdog, n.loop);
	notify_http_finish(&n.http);
	hooks_finish(&n.hooks);
	ev_timer_stop(n.loop, &n.hold_timer);
	ev_timer_stop(n.loop, &n.unseen_timer);
	localpg_finish(&n.local);
	bouncer_finish(&n.bouncer);
	fifo_reader_destroy(n.fifo);
	notify_config_destroy(n.config);
	ev_loop_destroy(n.loop);
	log_info("pgtrack-notify stopped after %lu FIFO lines", n.lines_seen);
	return 0;
}
