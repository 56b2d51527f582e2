/*
 * follow: which mode pgbouncer should be in, from what keepalived said
 * about the followed VRRP instance or sync group.
 *
 * Pure code: no I/O, no clock, no loop, no log.  Input: the parsed FIFO
 * lines, the VIP's presence at start, the hold timer's expiry, and (for
 * the hold) what the local PostgreSQL last said.  Output: a decision,
 * which main applies (the mode for pgbouncer, the hold timer, the local
 * PostgreSQL watch) and logs (its notes).
 *
 * A burst of lines read in one go is acted on where it ended: lines
 * only record the state; follow_take_change says whether it moved since
 * the last burst, and follow_decide says what to do about it.
 */
#ifndef PGTRACK_FOLLOW_H
#define PGTRACK_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrrp_event.h"

struct follow_settings {
	enum vrrp_kind kind;
	char name[VRRP_NAME_MAX + 1];
	bool hold;               /* [postgres]: hold on MASTER until it is primary */
	bool backup_waits;       /* [pgbouncer] backup_clients = wait: BACKUP holds, not fences */
	int64_t hold_timeout_ms; /* only compared: a change resets the hold */
};

/* What the local PostgreSQL said, as localpg knows it. */
enum follow_pg_role {
	FOLLOW_PG_UNKNOWN, /* not asked yet, or unreachable */
	FOLLOW_PG_PRIMARY,
	FOLLOW_PG_STANDBY,
};

struct follow_pg {
	enum follow_pg_role role;
	bool refused;  /* refused for good: no answer will come */
	bool answered; /* answered or failed since the start */
	bool watching; /* polled (a hold) */
	bool fresh;    /* answered since watching began */
};

enum follow_mode {
	FOLLOW_LEAVE, /* leave pgbouncer as it is */
	FOLLOW_SERVE,
	FOLLOW_FENCE,
	FOLLOW_HOLD,  /* enabled but paused: clients wait */
};

enum follow_switch {
	FOLLOW_KEEP,
	FOLLOW_ON,  /* timer: (re)start with hold_timeout; watch: poll */
	FOLLOW_OFF,
};

/* What main logs about a decision (bits). */
enum follow_note {
	FOLLOW_NOTE_REFUSED = 1 << 0,       /* cannot ask: serving without the hold */
	FOLLOW_NOTE_PRIMARY = 1 << 1,       /* the hold ends: primary */
	FOLLOW_NOTE_AFTER_TIMEOUT = 1 << 2, /* ... after hold_timeout fenced */
	FOLLOW_NOTE_STANDBY_AGAIN = 1 << 3, /* primary, then a standby on the same MASTER */
	FOLLOW_NOTE_HOLDING = 1 << 4,       /* the hold begins (said once per spell) */
};

struct follow_decision {
	enum follow_mode mode;
	char reason[96];             /* for pgbouncer's log lines */
	enum follow_switch hold_timer;
	enum follow_switch watch;    /* the local PostgreSQL */
	bool cut;                    /* leaving MASTER: disconnect clients a hold kept waiting */
	unsigned notes;
};

#define FOLLOW_OTHERS_MAX 8
#define FOLLOW_OTHER_SIZE (VRRP_NAME_MAX + 16)

struct follow {
	struct follow_settings settings;

	bool state_known;
	bool inferred;         /* state from the VIP at start, no line yet */
	enum vrrp_state state; /* last transition of the followed name */
	int priority;          /* as that transition's line gave it */
	bool changed;          /* since the last follow_take_change */

	bool hook_known;
	enum vrrp_state hook_state; /* of the last hook started */

	bool hold_started;     /* this MASTER spell has held */
	bool hold_expired;
	bool hold_logged;
	bool refused_logged;   /* the "cannot ask" error of this MASTER spell */
	bool served;           /* this MASTER spell has seen the local primary */
	bool decided_master;   /* the last decision was about a MASTER */

	/* Names keepalived reported while never naming the followed one. */
	bool followed_seen;
	bool unseen_warned;
	int n_others;
	char others[FOLLOW_OTHERS_MAX][FOLLOW_OTHER_SIZE];
};

enum follow_line {
	FOLLOW_LINE_OTHER,      /* about another name: see follow_note_other */
	FOLLOW_LINE_SAME,       /* a transition to the state already known */
	FOLLOW_LINE_CHANGED,    /* a transition to another state */
	FOLLOW_LINE_REPORT,     /* not a transition (priority, two masters, unknown) */
};

void follow_init(struct follow *f, const struct follow_settings *s);
/* "instance" or "group", for log lines. */
const char *follow_kind_name(const struct follow *f);

/* A parsed line; a transition of the followed name records its state. */
enum follow_line follow_line(struct follow *f, const struct vrrp_event *ev);
/* Whether the state moved since the last call; clears it. */
bool follow_take_change(struct follow *f);
/*
 * A line about another name, before the followed one was ever named:
 * true when the caller should arm the "never reported" timer.
 */
bool follow_note_other(struct follow *f, const struct vrrp_event *ev);
/* The names to warn about when that timer fires ("" if none is due); warns once. */
bool follow_unseen_warning(struct follow *f, char *list, size_t size);

/* At start, before any line: the VIP here means MASTER, elsewhere BACKUP; no hook. */
void follow_infer(struct follow *f, bool vip_here);
/* The hold timer fired. */
void follow_hold_expired(struct follow *f);

/* What to do now; updates the hold state. */
void follow_decide(struct follow *f, const struct follow_pg *pg, struct follow_decision *d);
/* Whether the state's hook is due (a transition the hooks have not seen); marks it. */
bool follow_hook_due(struct follow *f);

/* Bits returned by follow_reconfigure. */
#define FOLLOW_RENAMED 1u    /* another name: its state is unknown again */
#define FOLLOW_HOLD_RESET 2u /* hold or hold_timeout changed: stop the hold timer */
unsigned follow_reconfigure(struct follow *f, const struct follow_settings *s);

#endif
