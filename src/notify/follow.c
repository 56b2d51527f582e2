#include "follow.h"

#include <stdio.h>
#include <string.h>

void follow_init(struct follow *f, const struct follow_settings *s)
{
	*f = (struct follow){ .settings = *s };
}

const char *follow_kind_name(const struct follow *f)
{
	return f->settings.kind == VRRP_GROUP ? "group" : "instance";
}

static bool follows(const struct follow *f, const struct vrrp_event *ev)
{
	return ev->kind == f->settings.kind && strcmp(ev->name, f->settings.name) == 0;
}

enum follow_line follow_line(struct follow *f, const struct vrrp_event *ev)
{
	bool changed;

	if (!follows(f, ev))
		return FOLLOW_LINE_OTHER;
	f->followed_seen = true;
	if (!vrrp_state_is_transition(ev->state))
		return FOLLOW_LINE_REPORT;
	changed = !f->state_known || f->state != ev->state;
	f->inferred = false;
	f->changed |= changed;
	f->state_known = true;
	f->state = ev->state;
	f->priority = ev->priority;
	return changed ? FOLLOW_LINE_CHANGED : FOLLOW_LINE_SAME;
}

bool follow_take_change(struct follow *f)
{
	bool changed = f->changed;

	f->changed = false;
	return changed;
}

bool follow_note_other(struct follow *f, const struct vrrp_event *ev)
{
	char name[FOLLOW_OTHER_SIZE];

	if (f->followed_seen || f->unseen_warned)
		return false;
	snprintf(name, sizeof(name), "%s \"%s\"", ev->kind == VRRP_GROUP ? "group" : "instance",
		 ev->name);
	for (int i = 0; i < f->n_others; i++)
		if (strcmp(f->others[i], name) == 0)
			return true;
	if (f->n_others < FOLLOW_OTHERS_MAX)
		snprintf(f->others[f->n_others++], sizeof(f->others[0]), "%s", name);
	return true;
}

bool follow_unseen_warning(struct follow *f, char *list, size_t size)
{
	size_t used = 0;

	if (size)
		list[0] = '\0';
	if (f->followed_seen || f->unseen_warned)
		return false;
	for (int i = 0; i < f->n_others && used < size; i++) {
		int n = snprintf(list + used, size - used, "%s%s", i ? ", " : "", f->others[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	f->unseen_warned = true;
	return true;
}

void follow_infer(struct follow *f, bool vip_here)
{
	f->state_known = true;
	f->inferred = true;
	f->state = vip_here ? VRRP_MASTER : VRRP_BACKUP;
	/* Inferred, not a transition: no hook. */
	f->hook_state = f->state;
	f->hook_known = true;
}

void follow_hold_expired(struct follow *f)
{
	f->hold_expired = true;
}

static void set_mode(struct follow_decision *d, enum follow_mode mode, const char *reason)
{
	d->mode = mode;
	snprintf(d->reason, sizeof(d->reason), "%s", reason);
}

static const char *master_reason(const struct follow *f)
{
	return f->inferred ? "MASTER (VIP here)" : "MASTER";
}

/* MASTER, not primary (yet): hold, or fence once hold_timeout has passed. */
static void decide_hold(struct follow *f, const struct follow_pg *pg, bool fresh,
			struct follow_decision *d)
{
	const char *what = pg->role == FOLLOW_PG_STANDBY ? "still a standby" : "unreachable";

	if (f->served && pg->role == FOLLOW_PG_STANDBY)
		d->notes |= FOLLOW_NOTE_STANDBY_AGAIN;
	f->served = false;
	if (!f->hold_started) {
		f->hold_started = true;
		f->hold_expired = false;
		f->hold_logged = false;
		d->hold_timer = FOLLOW_ON;
	}
	/* Said once the session has answered in this spell: a standby seen while BACKUP may be old. */
	if (!f->hold_logged && fresh) {
		f->hold_logged = true;
		d->notes |= FOLLOW_NOTE_HOLDING;
	}
	d->mode = f->hold_expired ? FOLLOW_FENCE : FOLLOW_HOLD;
	if (f->hold_expired)
		snprintf(d->reason, sizeof(d->reason),
			 "MASTER, but the local PostgreSQL is %s after hold_timeout", what);
	else if (!fresh)
		snprintf(d->reason, sizeof(d->reason),
			 "MASTER, asking the local PostgreSQL whether it is primary");
	else
		snprintf(d->reason, sizeof(d->reason), "MASTER, the local PostgreSQL is %s",
			 pg->role == FOLLOW_PG_STANDBY ? "not primary yet" : "unreachable");
}

/*
 * BACKUP holds (clients wait: the VIP may be arriving) or, with
 * backup_clients = refuse, fences; FAULT and STOP fence.  Leaving MASTER
 * cuts the clients a hold kept.  On MASTER, with [postgres], serve once the local
 * PostgreSQL has said primary, hold (paused, clients waiting) until then,
 * fence when hold_timeout passes.
 */
void follow_decide(struct follow *f, const struct follow_pg *pg, struct follow_decision *d)
{
	*d = (struct follow_decision){ .mode = FOLLOW_LEAVE };
	if (!f->state_known)
		return;
	if (f->state != VRRP_MASTER) {
		bool wait = f->state == VRRP_BACKUP && f->settings.backup_waits;

		d->hold_timer = d->watch = FOLLOW_OFF;
		d->cut = f->decided_master;
		f->decided_master = false;
		f->hold_started = f->hold_expired = f->served = false;
		set_mode(d, wait ? FOLLOW_HOLD : FOLLOW_FENCE,
			 f->inferred ? "BACKUP (VIP elsewhere)" : vrrp_state_name(f->state));
		return;
	}
	f->decided_master = true;
	if (!f->settings.hold) {
		set_mode(d, FOLLOW_SERVE, master_reason(f));
		return;
	}
	/*
	 * Refused for good ([postgres] names a role or database that cannot
	 * log in): no answer will come, and holding would take a healthy
	 * primary out of service; serve as without [postgres], loudly.
	 */
	if (pg->role == FOLLOW_PG_UNKNOWN && pg->refused) {
		if (!f->refused_logged)
			d->notes |= FOLLOW_NOTE_REFUSED;
		f->refused_logged = true;
		d->hold_timer = FOLLOW_OFF;
		f->hold_started = f->hold_expired = false;
		set_mode(d, FOLLOW_SERVE, master_reason(f));
		return;
	}
	f->refused_logged = false;
	/* Once primary in this spell, a lost probe session changes nothing; a standby does. */
	if (pg->role == FOLLOW_PG_PRIMARY || (f->served && pg->role == FOLLOW_PG_UNKNOWN)) {
		if (f->hold_started && f->hold_logged && !f->served)
			d->notes |= FOLLOW_NOTE_PRIMARY |
				    (f->hold_expired ? FOLLOW_NOTE_AFTER_TIMEOUT : 0);
		d->hold_timer = d->watch = FOLLOW_OFF;
		f->served = true;
		f->hold_started = f->hold_expired = false;
		set_mode(d, FOLLOW_SERVE, master_reason(f));
		return;
	}
	d->watch = FOLLOW_ON;
	/* Restarted on a MASTER: leave pgbouncer alone until the first answer. */
	if (f->inferred && !pg->answered)
		return;
	/* A watch that begins now has no answer of its own yet. */
	decide_hold(f, pg, pg->watching && pg->fresh, d);
}

bool follow_hook_due(struct follow *f)
{
	if (!f->state_known || (f->hook_known && f->hook_state == f->state))
		return false;
	f->hook_state = f->state;
	f->hook_known = true;
	return true;
}

unsigned follow_reconfigure(struct follow *f, const struct follow_settings *s)
{
	unsigned r = 0;

	if (s->kind != f->settings.kind || strcmp(s->name, f->settings.name) != 0) {
		r |= FOLLOW_RENAMED;
		f->state_known = false;
		f->hook_known = false;
		f->followed_seen = f->unseen_warned = false;
		f->n_others = 0;
	}
	if (s->hold != f->settings.hold || s->hold_timeout_ms != f->settings.hold_timeout_ms) {
		r |= FOLLOW_HOLD_RESET;
		f->hold_started = f->hold_expired = false;
	}
	f->settings = *s;
	return r;
}
