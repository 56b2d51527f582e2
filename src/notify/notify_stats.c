#include "notify_stats.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct notify_when notify_when_now(void)
{
	struct timespec wall, mono;

	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	return (struct notify_when){
		.wall = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9,
		.mono = (double)mono.tv_sec + (double)mono.tv_nsec / 1e9,
	};
}

const char *notify_line_result_name(enum notify_line_result r)
{
	static const char *const names[] = { "applied", "other", "ignored", "malformed" };

	return r < NOTIFY_LINE_RESULTS ? names[r] : "?";
}

const char *notify_action_name(enum notify_action a)
{
	static const char *const names[] = {
		"reload", "resume", "enable", "disable", "kill", "pause", "rewrite", "other",
	};

	return a < NOTIFY_ACTIONS ? names[a] : "?";
}

enum notify_action notify_action_of(const char *command)
{
	size_t len = strcspn(command, " ");

	for (int a = 0; a < NOTIFY_ACTION_REWRITE; a++) {
		const char *name = notify_action_name(a);

		if (len == strlen(name) && strncasecmp(command, name, len) == 0)
			return a;
	}
	return NOTIFY_ACTION_OTHER;
}

const char *notify_db_mode_name(enum notify_db_mode m)
{
	static const char *const names[] = {
		"unknown", "serving", "paused", "disabled", "fenced", "missing",
	};

	return m < NOTIFY_DB_MODES ? names[m] : "?";
}

enum notify_db_mode notify_db_mode_of(bool paused, bool disabled)
{
	if (disabled)
		return paused ? NOTIFY_DB_FENCED : NOTIFY_DB_DISABLED;
	return paused ? NOTIFY_DB_PAUSED : NOTIFY_DB_SERVING;
}

void notify_stats_action(struct notify_bouncer_stats *s, struct notify_when at,
			 enum notify_action action, const char *what, bool ok, const char *error)
{
	struct notify_action_record *r = &s->last[s->n_last % NOTIFY_LAST_ACTIONS];

	if (action >= NOTIFY_ACTIONS)
		action = NOTIFY_ACTION_OTHER;
	s->actions[action][ok]++;
	s->n_last++;
	r->at = at;
	r->ok = ok;
	snprintf(r->what, sizeof(r->what), "%s", what);
	snprintf(r->error, sizeof(r->error), "%s", ok || !error ? "" : error);
}

const struct notify_action_record *notify_stats_last(const struct notify_bouncer_stats *s,
						     size_t i)
{
	size_t kept = s->n_last < NOTIFY_LAST_ACTIONS ? s->n_last : NOTIFY_LAST_ACTIONS;

	if (i >= kept)
		return NULL;
	return &s->last[(s->n_last - 1 - i) % NOTIFY_LAST_ACTIONS];
}

void notify_stats_reach(struct notify_bouncer_stats *s, struct notify_when at, const char *error)
{
	s->reachable = error == NULL;
	if (!error) {
		s->contacted = true;
		return;
	}
	s->last_error_at = at;
	snprintf(s->last_error, sizeof(s->last_error), "%s", error);
}

void notify_stats_dbs_begin(struct notify_bouncer_stats *s, struct notify_when at)
{
	s->dbs_at = at;
	s->n_dbs = 0;
	s->dbs_not_shown = 0;
}

void notify_stats_db(struct notify_bouncer_stats *s, const char *name, enum notify_db_mode m)
{
	struct notify_db_seen *d;

	if (s->n_dbs == NOTIFY_DBS_SHOWN) {
		s->dbs_not_shown++;
		return;
	}
	d = &s->dbs[s->n_dbs++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->mode = m;
}
