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
#include "fifo.h"
#include "hooks.h"
#include "local_address.h"
#include "localpg.h"
#include "log.h"
#include "mainloop.h"
#include "monotime.h"
#include "notify_config.h"
#include "ratelimit.h"
#include "util.h"
#include "vrrp_event.h"

#define DEFAULT_CONFIG PGTRACKD_SYSCONFDIR "/pgtrack-notify/pgtrack-notify.conf"

struct notifier {
	struct ev_loop *loop;
	struct notify_config *config;
	const char *fifo_arg; /* script mode: the FIFO keepalived appended */
	struct fifo_reader fifo;
	struct bouncer bouncer;
	struct hooks hooks;
	struct localpg local;

	bool state_known;
	bool inferred;            /* state from vip at start, no line yet */
	bool hold_started;        /* this MASTER spell has held */
	bool hold_expired;
	bool hold_logged;
	bool refused_logged;      /* the "cannot ask" error of this MASTER spell */
	bool served;              /* this MASTER spell has seen the local primary */
	ev_timer hold_timer;

	/* Names keepalived reported while never naming the followed one. */
	bool followed_seen;
	bool unseen_warned;
	int n_others;
	char others[8][144];
	ev_timer unseen_timer;

	enum vrrp_state state;    /* last transition of the followed name */
	int priority;             /* as that transition's line gave it */
	bool state_changed;       /* since the last drain */
	bool hook_due;
	enum vrrp_state hook_state; /* of the last hook that was started */
	bool hook_state_known;

	struct ratelimit bad_lines;
	struct ratelimit two_masters;
	unsigned long lines_seen;

	bool stopping;
	struct mainloop_signals signals;
	ev_timer grace;
};

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

static bool follows(const struct notify_config *c, const struct vrrp_event *ev)
{
	if (c->notify.instance[0])
		return ev->kind == VRRP_INSTANCE && strcmp(ev->name, c->notify.instance) == 0;
	return ev->kind == VRRP_GROUP && strcmp(ev->name, c->notify.group) == 0;
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
			  n->fifo.path, suppressed);
	log_warnx("FIFO %s: skipped a bad line (%s): \"%s%s\"", n->fifo.path, why, shown,
		  len > k ? "..." : "");
}

/* How long keepalived may talk about other names only before the warning. */
#define UNSEEN_AFTER 5.0

/* A line about another instance or group: remembered for the warning below. */
static void note_other(struct notifier *n, const struct vrrp_event *ev)
{
	char name[144];

	if (n->followed_seen || n->unseen_warned)
		return;
	snprintf(name, sizeof(name), "%s \"%s\"", ev->kind == VRRP_GROUP ? "group" : "instance",
		 ev->name);
	for (int i = 0; i < n->n_others; i++)
		if (strcmp(n->others[i], name) == 0)
			goto armed;
	if (n->n_others < (int)(sizeof(n->others) / sizeof(n->others[0])))
		snprintf(n->others[n->n_others++], sizeof(n->others[0]), "%s", name);
armed:
	if (!ev_is_active(&n->unseen_timer)) {
		ev_timer_set(&n->unseen_timer, UNSEEN_AFTER, 0.0);
		ev_timer_start(n->loop, &n->unseen_timer);
	}
}

static void unseen_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct notifier *n = container_of(w, struct notifier, unseen_timer);
	char list[8 * 146] = "";

	if (n->followed_seen || n->unseen_warned)
		return;
	for (int i = 0; i < n->n_others; i++) {
		if (i)
			strcat(list, ", ");
		strcat(list, n->others[i]);
	}
	n->unseen_warned = true;
	log_warnx("keepalived has reported %s but never %s \"%s\" (%.0fs after the first of "
		  "them): check [notify] %s against keepalived.conf; pgbouncer stays as it is "
		  "until \"%s\" is reported", list, followed_kind(n->config),
		  followed_name(n->config), UNSEEN_AFTER, followed_kind(n->config),
		  followed_name(n->config));
}

static void on_line(struct fifo_reader *f, const char *line, size_t len, bool overlong)
{
	struct notifier *n = container_of(f, struct notifier, fifo);
	struct vrrp_event ev;
	const char *why;

	n->lines_seen++;
	if (overlong) {
		bad_line(n, "longer than 512 bytes", line, len);
		return;
	}
	switch (vrrp_event_parse(line, len, &ev, &why)) {
	case VRRP_PARSE_IGNORED:
		return;
	case VRRP_PARSE_ERROR:
		bad_line(n, why, line, len);
		return;
	case VRRP_PARSE_OK:
		break;
	}
	if (!follows(n->config, &ev)) {
		note_other(n, &ev);
		log_debug("FIFO: %s \"%s\" %s %d (not followed)", vrrp_kind_name(ev.kind), ev.name,
			  vrrp_state_name(ev.state), ev.priority);
		return;
	}
	n->followed_seen = true;
	ev_timer_stop(n->loop, &n->unseen_timer);
	if (vrrp_state_is_transition(ev.state)) {
		n->inferred = false;
		if (!n->state_known || n->state != ev.state)
			log_info("VRRP %s \"%s\": %s -> %s (priority %d)", followed_kind(n->config),
				 ev.name, n->state_known ? vrrp_state_name(n->state) : "unknown",
				 vrrp_state_name(ev.state), ev.priority);
		n->state_changed |= !n->state_known || n->state != ev.state;
		n->state_known = true;
		n->state = ev.state;
		n->priority = ev.priority;
		return;
	}
	switch (ev.state) {
	case VRRP_MASTER_RX_LOWER_PRI: {
		unsigned long suppressed;

		if (ratelimit_allow(&n->two_masters, monotime_now(), &suppressed))
			log_warnx("two masters: %s \"%s\" received an advert of lower priority while "
				  "MASTER (another node also claims the VIP)%s",
				  followed_kind(n->config), ev.name,
				  suppressed ? "; repeated since the last warning" : "");
		break;
	}
	case VRRP_UNKNOWN_STATE:
		log_warnx("VRRP %s \"%s\" reports an unknown state; keeping %s",
			  followed_kind(n->config), ev.name,
			  n->state_known ? vrrp_state_name(n->state) : "no state");
		break;
	default:
		log_debug("VRRP %s \"%s\": %s %d", followed_kind(n->config), ev.name,
			  vrrp_state_name(ev.state), ev.priority);
		break;
	}
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

/*
 * What pgbouncer should do: fence unless MASTER; on MASTER, with
 * [postgres], serve once the local PostgreSQL has said primary, hold
 * (paused, clients waiting) until then, fence when hold_timeout passes.
 */
static void decide(struct notifier *n)
{
	const struct notify_config *c = n->config;
	struct localpg *lp = &n->local;
	char reason[96];

	if (!n->state_known)
		return;
	if (n->state != VRRP_MASTER) {
		ev_timer_stop(n->loop, &n->hold_timer);
		n->hold_started = n->hold_expired = n->served = false;
		localpg_watch(lp, false);
		bouncer_set_mode(&n->bouncer, BOUNCER_FENCE,
				 n->inferred ? "BACKUP (VIP elsewhere)" : vrrp_state_name(n->state));
		return;
	}
	if (!c->hold) {
		bouncer_set_mode(&n->bouncer, BOUNCER_SERVE,
				 n->inferred ? "MASTER (VIP here)" : "MASTER");
		return;
	}
	/*
	 * Refused for good ([postgres] names a role or database that cannot
	 * log in): no answer will come, and holding would take a healthy
	 * primary out of service; serve as without [postgres], loudly.
	 */
	if (lp->role == LOCALPG_UNKNOWN && lp->refused) {
		if (!n->refused_logged)
			log_error("cannot ask the local PostgreSQL at %s whether it is primary (%s): "
				  "serving on MASTER without the hold; fix [postgres]", lp->target,
				  lp->last_error);
		n->refused_logged = true;
		ev_timer_stop(n->loop, &n->hold_timer);
		n->hold_started = n->hold_expired = false;
		bouncer_set_mode(&n->bouncer, BOUNCER_SERVE,
				 n->inferred ? "MASTER (VIP here)" : "MASTER");
		return;
	}
	n->refused_logged = false;
	/* Once primary in this spell, a lost probe session changes nothing; a standby does. */
	if (lp->role == LOCALPG_PRIMARY || (n->served && lp->role == LOCALPG_UNKNOWN)) {
		if (n->hold_started && n->hold_logged && !n->served)
			log_info("local PostgreSQL at %s is primary: serving%s", lp->target,
				 n->hold_expired ? " (after the hold timed out)" : ", ending the hold");
		ev_timer_stop(n->loop, &n->hold_timer);
		n->served = true;
		n->hold_started = n->hold_expired = false;
		localpg_watch(lp, false);
		bouncer_set_mode(&n->bouncer, BOUNCER_SERVE,
				 n->inferred ? "MASTER (VIP here)" : "MASTER");
		return;
	}
	localpg_watch(lp, true);
	/* Restarted on a MASTER: leave pgbouncer alone until the first answer. */
	if (n->inferred && !lp->answered)
		return;
	if (n->served && lp->role == LOCALPG_STANDBY)
		log_error("local PostgreSQL at %s is a standby again while this node is MASTER: "
			  "holding its clients until it is primary", lp->target);
	n->served = false;
	if (!n->hold_started) {
		n->hold_started = true;
		n->hold_expired = false;
		n->hold_logged = false;
		ev_timer_stop(n->loop, &n->hold_timer);
		ev_timer_set(&n->hold_timer, (double)c->local.hold_timeout_ms / 1000.0, 0.0);
		ev_timer_start(n->loop, &n->hold_timer);
	}
	/* Said once the session has answered in this spell: a standby seen while BACKUP may be old. */
	if (!n->hold_logged && lp->fresh) {
		n->hold_logged = true;
		log_info("this node is MASTER but the local PostgreSQL at %s is %s: holding clients "
			 "in pgbouncer until it is primary, for at most %.1fs", lp->target,
			 lp->role == LOCALPG_STANDBY ? "still a standby" : "not answering",
			 (double)c->local.hold_timeout_ms / 1000.0);
	}
	if (n->hold_expired) {
		snprintf(reason, sizeof(reason), "MASTER, but the local PostgreSQL is %s after hold_timeout",
			 lp->role == LOCALPG_STANDBY ? "still a standby" : "unreachable");
		bouncer_set_mode(&n->bouncer, BOUNCER_FENCE, reason);
		return;
	}
	if (!lp->fresh)
		snprintf(reason, sizeof(reason), "MASTER, asking the local PostgreSQL whether it is primary");
	else
		snprintf(reason, sizeof(reason), "MASTER, the local PostgreSQL is %s",
			 lp->role == LOCALPG_STANDBY ? "not primary yet" : "unreachable");
	bouncer_set_mode(&n->bouncer, BOUNCER_HOLD, reason);
}

static void hold_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct notifier *n = container_of(w, struct notifier, hold_timer);

	n->hold_expired = true;
	log_error("local PostgreSQL at %s is still %s %.1fs (hold_timeout) after this node became "
		  "MASTER: fencing pgbouncer (waiting clients are disconnected, new ones refused); "
		  "it serves as soon as the local PostgreSQL is primary",
		  n->local.target, n->local.role == LOCALPG_STANDBY ? "a standby" : "unreachable",
		  (double)n->config->local.hold_timeout_ms / 1000.0);
	decide(n);
}

static void on_local_changed(struct localpg *lp)
{
	struct notifier *n = container_of(lp, struct notifier, local);

	log_debug("local PostgreSQL at %s: %s", lp->target, localpg_role_name(lp->role));
	decide(n);
}

/* The burst is read: act on where it ended. */
static void apply_state(struct notifier *n)
{
	if (!n->state_known)
		return;
	decide(n);
	if (!n->hook_state_known || n->hook_state != n->state) {
		n->hook_state = n->state;
		n->hook_state_known = true;

		struct hook_context context = { .priority = n->priority };

		snprintf(context.kind, sizeof(context.kind), "%s",
			 n->config->notify.instance[0] ? "INSTANCE" : "GROUP");
		snprintf(context.name, sizeof(context.name), "%s", followed_name(n->config));
		snprintf(context.state, sizeof(context.state), "%s", vrrp_state_name(n->state));
		hooks_run(&n->hooks, hook_of(n->state), &context);
	}
}

static void on_drained(struct fifo_reader *f)
{
	struct notifier *n = container_of(f, struct notifier, fifo);

	if (!n->state_changed)
		return;
	n->state_changed = false;
	apply_state(n);
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
	n->state_known = true;
	n->inferred = true;
	n->state = r ? VRRP_MASTER : VRRP_BACKUP;
	/* Inferred, not a transition: no hook. */
	n->hook_state = n->state;
	n->hook_state_known = true;
	decide(n);
}

static void reload(struct notifier *n)
{
	struct conf_errors errs = { 0 };
	struct notify_config *config, *old = n->config;
	char why[512];

	log_info("reloading %s", old->path);
	config = notify_config_load(old->path, n->fifo_arg, &errs);
	if (!cli_config_reloaded(config != NULL, &errs))
		return;

	if (strcmp(config->notify.fifo, old->notify.fifo) != 0 || config->fifo_uid != old->fifo_uid) {
		struct fifo_reader fresh;

		if (fifo_reader_start(&fresh, n->loop, config->notify.fifo, config->fifo_uid,
				      &fifo_handler, why, sizeof(why)) < 0) {
			log_error("%s; configuration reload failed, keeping the running configuration",
				  why);
			notify_config_destroy(config);
			return;
		}
		/* Lines already in the old FIFO still count. */
		fifo_reader_drain(&n->fifo);
		fifo_reader_stop(&n->fifo);
		/* The watchers hold their own addresses: move by re-starting in place. */
		fifo_reader_stop(&fresh);
		if (fifo_reader_start(&n->fifo, n->loop, config->notify.fifo, config->fifo_uid,
				      &fifo_handler, why, sizeof(why)) < 0)
			log_error("%s", why);
	}
	if (strcmp(followed_name(config), followed_name(old)) != 0 ||
	    strcmp(followed_kind(config), followed_kind(old)) != 0) {
		log_info("now following %s \"%s\": its state is unknown until keepalived reports it",
			 followed_kind(config), followed_name(config));
		n->state_known = false;
		n->hook_state_known = false;
		n->followed_seen = n->unseen_warned = false;
		n->n_others = 0;
	}
	log_set_facility(log_facility_from_name(config->notify.syslog_facility));
	n->config = config;
	hooks_set_config(&n->hooks, config);
	bouncer_set_config(&n->bouncer, config);
	localpg_set_config(&n->local, config);
	if (config->hold != old->hold || config->local.hold_timeout_ms != old->local.hold_timeout_ms) {
		ev_timer_stop(n->loop, &n->hold_timer);
		n->hold_started = n->hold_expired = false;
	}
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
		reload(n);
		return;
	}
	if (n->stopping)
		return;
	n->stopping = true;
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

int main(int argc, char **argv)
{
	struct cli cli = {
		.program = "pgtrack-notify", .config = DEFAULT_CONFIG, .max_args = 1, .usage = usage,
	};
	struct conf_errors errs = { 0 };
	struct notifier n = { 0 };
	char why[512];
	int r;

	r = cli_parse(&cli, argc, argv);
	if (r >= 0)
		return r;
	if (cli.n_args == 1)
		n.fifo_arg = cli.args[0];

	log_init("pgtrack-notify", cli.console || cli.check, LOG_DAEMON);
	log_set_verbose(cli.verbose);

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

	if (fifo_reader_start(&n.fifo, n.loop, n.config->notify.fifo, n.config->fifo_uid,
			      &fifo_handler, why, sizeof(why)) < 0) {
		log_error("%s", why);
		if (!cli.console)
			fprintf(stderr, "pgtrack-notify: %s\n", why);
		notify_config_destroy(n.config);
		return 1;
	}
	mainloop_watch_signals(n.loop, &n.signals, signal_cb, &n);
	bouncer_init(&n.bouncer, n.loop, n.config);
	hooks_init(&n.hooks, n.loop, n.config);
	localpg_init(&n.local, n.loop, n.config, on_local_changed);
	ev_init(&n.hold_timer, hold_timeout_cb);
	ev_init(&n.unseen_timer, unseen_cb);

	log_info("pgtrack-notify %s starting: following %s \"%s\" on %s%s, pgbouncer at %s",
		 PGTRACKD_VERSION, followed_kind(n.config), followed_name(n.config),
		 n.config->notify.fifo, n.fifo_arg ? " (as notify_fifo_script)" : "",
		 n.bouncer.target);
	if (n.config->hold)
		log_info("on MASTER, clients are held in pgbouncer until the local PostgreSQL at %s "
			 "is primary (hold_timeout %.1fs)", n.local.target,
			 (double)n.config->local.hold_timeout_ms / 1000.0);
	else
		log_notice("no [postgres] section: on MASTER pgbouncer serves at once, even while "
			   "the local PostgreSQL is still a standby");
	localpg_start(&n.local);
	infer_state(&n);
	bouncer_start(&n.bouncer);

	ev_run(n.loop, 0);

	hooks_finish(&n.hooks);
	ev_timer_stop(n.loop, &n.hold_timer);
	ev_timer_stop(n.loop, &n.unseen_timer);
	localpg_finish(&n.local);
	bouncer_finish(&n.bouncer);
	fifo_reader_stop(&n.fifo);
	notify_config_destroy(n.config);
	ev_loop_destroy(n.loop);
	log_info("pgtrack-notify stopped after %lu FIFO lines", n.lines_seen);
	return 0;
}
