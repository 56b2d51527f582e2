#include "probe_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "monotime.h"
#include "pg_log.h"
#include "util.h"

struct first_problem {
	char *error;
	size_t size;
};

static void keep_first(void *ctx, int item, bool section, const char *message)
{
	struct first_problem *fp = ctx;

	if (!fp->error[0])
		snprintf(fp->error, fp->size, "%s", message);
}

/* The module ABI's checks; pgtrackd itself calls pg_settings_parse, for every problem's line. */
static int pg_check_key(const char *key, const char *value, char *error, size_t size)
{
	struct pgtrackd_dict_item item = { .key = key, .value = value };
	struct pgtrackd_dict config = { .items = &item, .n_items = 1 };
	struct first_problem fp = { .error = error, .size = size };
	struct pg_settings *s;
	int r;

	if (!pg_settings_is_key(key))
		return -ENOENT;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	error[0] = '\0';
	r = pg_settings_parse(s, &config, "?", 1000, 60000, keep_first, &fp) ? -EINVAL : 0;
	free(s);
	return r;
}

static int pg_check_section(const struct pgtrackd_dict *config, char *error, size_t size)
{
	struct first_problem fp = { .error = error, .size = size };
	struct pg_settings *s = malloc(sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	error[0] = '\0';
	r = pg_settings_parse(s, config, "?", 1000, 60000, keep_first, &fp) ? -EINVAL : 0;
	free(s);
	return r;
}

/* What the synchronous replication policy may do depends on the latest verdict. */
static enum pgtrackd_state sync_verdict(void *owner)
{
	const struct pg_probe *p = owner;

	return p->accept_failing ? PGTRACKD_STATE_FAIL : p->last_sample;
}

/*
 * Peers that answer as standbys of this cluster: they would follow a
 * promotion here, so a standby keeps the strict names for its promotion.
 * -1 until the local server and every peer have answered or failed once.
 */
static int sync_other_standbys(void *owner)
{
	const struct pg_probe *p = owner;
	double now = monotime_now();
	double max_age = pg_probe_peer_max_age(p);
	int n = 0;

	if (!p->local.valid || !p->local.system_identifier[0])
		return -1;
	for (int i = 0; i < p->settings.n_peers; i++)
		if (!p->peers[i].heard)
			return -1; /* not yet: deciding now would change it twice at start */
	for (int i = 0; i < p->settings.n_peers; i++) {
		const struct pg_answer *a = peer_fresh_answer(&p->peers[i], now, max_age);

		n += a && a->in_recovery &&
		     strcmp(a->system_identifier, p->local.system_identifier) == 0;
	}
	return n;
}

static int pg_init(const struct pgtrackd_host *host, const struct pgtrackd_dict *config,
		   void **state)
{
	struct pg_probe *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->host = host;
	p->latency = -1.0;
	if (pg_settings_parse(&p->settings, config, host->track_name, host->interval_ms,
			      host->reminder_interval_ms, NULL, NULL) > 0) {
		free(p);
		return -EINVAL; /* checked when the configuration was loaded */
	}
	pg_probe_params(&p->settings, p->settings.host, p->settings.hostaddr, p->settings.port,
			&p->params);
	/* The step of a rank applies at once: a reload that changed it rewrites the value. */
	host->set_rank(host, 0, p->settings.rank_step);
	p->hot_standby = -1;
	guard_init(&p->guard);
	for (int i = 0; i < p->settings.n_peers; i++)
		peer_init(&p->peers[i], host, &p->settings,
			  &p->settings.peers[i], pg_probe_peer_done, p);
	ev_init(&p->round_deadline, pg_probe_round_deadline_cb);
	sync_policy_init(&p->sync, host, &p->settings, &p->params, sync_verdict,
			 sync_other_standbys, p);
	pgconn_init(&p->session, host->loop, &pg_probe_session_handler);
	pgconn_init(&p->accept, host->loop, &pg_probe_accept_handler);
	pg_ping_init(&p->ping, host->loop, pg_probe_ping_done);
	pg_postmaster_init(&p->pm);
	postmaster_watch_init(&p->postmaster, host->loop, pg_probe_postmaster_exited);
	ev_timer_init(&p->tick, pg_probe_tick_cb, duration_seconds(p->settings.interval_ms),
		      duration_seconds(p->settings.interval_ms));
	ev_init(&p->accept_tick, pg_probe_accept_tick_cb);
	ratelimit_init(&p->conflict_log, duration_seconds(p->settings.reminder_interval_ms), 1);
	*state = p;
	return 0;
}

static int pg_start(void *state)
{
	struct pg_probe *p = state;

	p->running = true;
	p->accept_failing = false;
	p->ping_failing = false;
	p->last_full = 0.0;
	p->last_quick_reconnect = -1e18;
	p->last_sample = PGTRACKD_STATE_FAIL;
	p->exiting_pid = 0;
	ev_timer_again(p->host->loop, &p->tick);
	if (p->settings.sync_standby_names[0])
		sync_policy_start(&p->sync);
	if (p->settings.accept_interval_ms > 0) {
		p->accept_tick.repeat = duration_seconds(p->settings.accept_interval_ms);
		pg_probe_arm_accept_tick(p);
	}
	pg_probe_connect_session(p);
	return 0;
}

static void pg_stop(void *state)
{
	struct pg_probe *p = state;

	p->running = false;
	ev_timer_stop(p->host->loop, &p->tick);
	ev_timer_stop(p->host->loop, &p->accept_tick);
	pgconn_close(&p->session);
	sync_policy_stop(&p->sync);
	postmaster_watch_stop(&p->postmaster);
	pg_probe_stop_accept(p);
	pg_postmaster_close(&p->pm);
	pg_probe_cancel_round(p);
	for (int i = 0; i < p->settings.n_peers; i++)
		peer_stop(&p->peers[i]);
}

static void pg_destroy(void *state)
{
	struct pg_probe *p = state;

	if (!p)
		return;
	pg_stop(p);
	free(p);
}

static int peer_index(const struct pg_probe *p, const char *name)
{
	for (int i = 0; i < p->settings.n_peers; i++)
		if (strcmp(p->settings.peers[i].name, name) == 0)
			return i;
	return -1;
}

/* A standby's clocks survive a reload: the receiver's, and the primary's positions. */
static void migrate_standby(const struct pg_probe *old, struct pg_probe *p)
{
	const struct guard *o = &old->guard;
	struct guard *g = &p->guard;
	int peer = o->history_peer >= 0 ?
		peer_index(p, old->settings.peers[o->history_peer].name) : -1;

	g->standby_seen = o->standby_seen;
	g->last_standby = o->last_standby;
	g->receiver_down = o->receiver_down;
	g->receiver_down_since = o->receiver_down_since;
	/*
	 * The ranking too: the own positions, and the answers of the peers
	 * that kept their name and address, so that a reload does not move a
	 * standby's rank (and value) for an interval.
	 */
	memcpy(g->own, o->own, sizeof(g->own));
	g->n_own = o->n_own;
	for (int i = 0; i < p->settings.n_peers; i++) {
		const struct pg_peer_settings *now = &p->settings.peers[i];
		int j = peer_index(old, now->name);

		if (j < 0 || strcmp(old->settings.peers[j].host, now->host) != 0 ||
		    strcmp(old->settings.peers[j].hostaddr, now->hostaddr) != 0 ||
		    old->settings.peers[j].port != now->port || old->settings.port != p->settings.port)
			continue;
		p->peers[i].answer = old->peers[j].answer;
		p->peers[i].heard = old->peers[j].heard;
		p->peers[i].outage = old->peers[j].outage;
	}
	if (peer < 0)
		return;
	memcpy(g->history, o->history, sizeof(g->history));
	g->n_history = o->n_history;
	g->history_peer = peer;
	g->history_timeline = o->history_timeline;
	g->history_last_t = o->history_last_t;
	g->history_last_lsn = o->history_last_lsn;
}

/* The guard's sticky verdicts survive a reload; peers are matched by name. */
static void pg_migrate(void *old_state, void *new_state)
{
	const struct pg_probe *old = old_state;
	struct pg_probe *p = new_state;

	migrate_standby(old, p);
	p->accept_failures = old->accept_failures;
	/* A relaxed primary turns strict only once a standby is past where it relaxed. */
	p->sync.relax_lsn = old->sync.relax_lsn;
	p->guard.stale = old->guard.stale;
	if (!old->guard.conflict || old->guard.conflict_peer < 0)
		return;
	for (int i = 0; i < p->settings.n_peers; i++) {
		if (strcmp(p->settings.peers[i].name,
			   old->settings.peers[old->guard.conflict_peer].name) == 0) {
			p->guard.conflict = true;
			p->guard.conflict_peer = i;
			return;
		}
	}
	pg_log(p->host, INFO, "peer %s, in conflict with this server, was removed from the "
		 "configuration; the conflict is no longer tracked",
		 old->settings.peers[old->guard.conflict_peer].name);
}

const struct pgtrackd_module probe_postgres_module = {
	.abi_version = PGTRACKD_MODULE_ABI_VERSION,
	.name = "postgres",
	.check_key = pg_check_key,
	.check_section = pg_check_section,
	.init = pg_init,
	.start = pg_start,
	.stop = pg_stop,
	.destroy = pg_destroy,
	.migrate = pg_migrate,
	.describe = pg_probe_describe,
};
