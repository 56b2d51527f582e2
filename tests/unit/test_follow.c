/*
 * follow (src/notify/follow.h): pgtrack-notify's state machine, fed with
 * FIFO lines as keepalived writes them, without a loop or a pgbouncer.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "check.h"
#include "follow.h"

static const struct follow_pg no_pg = { .role = FOLLOW_PG_UNKNOWN };

static void start(struct follow *f, bool hold)
{
	struct follow_settings s = { .kind = VRRP_INSTANCE, .hold = hold, .hold_timeout_ms = 30000 };

	snprintf(s.name, sizeof(s.name), "VI_PG");
	follow_init(f, &s);
}

/* One FIFO line, parsed as pgtrack-notify parses it. */
static enum follow_line line(struct follow *f, const char *text)
{
	struct vrrp_event ev;
	const char *why;

	if (vrrp_event_parse(text, strlen(text), &ev, &why) != VRRP_PARSE_OK) {
		printf("cannot parse %s: %s\n", text, why);
		exit(2);
	}
	return follow_line(f, &ev);
}

/* A burst (one read) ends: what main does in on_drained. */
static bool drained(struct follow *f, const struct follow_pg *pg, struct follow_decision *d)
{
	*d = (struct follow_decision){ .mode = FOLLOW_LEAVE };
	if (!follow_take_change(f))
		return false;
	follow_decide(f, pg, d);
	return true;
}

/* A node with [postgres] becomes MASTER while its PostgreSQL is as pg says. */
static void become_master(struct follow *f, const struct follow_pg *pg, struct follow_decision *d)
{
	start(f, true);
	line(f, "INSTANCE \"VI_PG\" MASTER 100");
	CHECK(drained(f, pg, d));
}

static void test_unknown_until_reported(void)
{
	struct follow f;
	struct follow_decision d;

	start(&f, false);
	follow_decide(&f, &no_pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_LEAVE);
	CHECK(!follow_hook_due(&f));
	CHECK(!follow_take_change(&f));
	CHECK_STR_EQ(follow_kind_name(&f), "instance");
}

static void test_transitions(void)
{
	static const struct {
		const char *line;
		enum follow_mode mode;
		const char *reason;
	} steps[] = {
		{ "INSTANCE \"VI_PG\" MASTER 150", FOLLOW_SERVE, "MASTER" },
		{ "INSTANCE \"VI_PG\" BACKUP 100", FOLLOW_FENCE, "BACKUP" },
		{ "INSTANCE \"VI_PG\" FAULT 100", FOLLOW_FENCE, "FAULT" },
		{ "INSTANCE \"VI_PG\" STOP 100", FOLLOW_FENCE, "STOP" },
		{ "INSTANCE \"VI_PG\" DELETED 100", FOLLOW_FENCE, "DELETED" },
		{ "INSTANCE \"VI_PG\" MASTER 100", FOLLOW_SERVE, "MASTER" },
	};
	struct follow f;
	struct follow_decision d;

	start(&f, false);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		CHECK_INT_EQ(line(&f, steps[i].line), FOLLOW_LINE_CHANGED);
		CHECK(drained(&f, &no_pg, &d));
		CHECK_INT_EQ(d.mode, steps[i].mode);
		CHECK_STR_EQ(d.reason, steps[i].reason);
		CHECK_INT_EQ(d.notes, 0);
		CHECK(follow_hook_due(&f));
		CHECK(!follow_hook_due(&f));
	}
	CHECK_INT_EQ(f.priority, 100);
	/* Fencing stops any hold; serving without [postgres] leaves the watch alone. */
	line(&f, "INSTANCE \"VI_PG\" BACKUP 100");
	drained(&f, &no_pg, &d);
	CHECK_INT_EQ(d.hold_timer, FOLLOW_OFF);
	CHECK_INT_EQ(d.watch, FOLLOW_OFF);
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	drained(&f, &no_pg, &d);
	CHECK_INT_EQ(d.hold_timer, FOLLOW_KEEP);
	CHECK_INT_EQ(d.watch, FOLLOW_KEEP);
}

static void test_same_state_and_reports(void)
{
	struct follow f;
	struct follow_decision d;

	start(&f, false);
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	CHECK(drained(&f, &no_pg, &d));
	CHECK(follow_hook_due(&f));
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_PG\" MASTER 100"), FOLLOW_LINE_SAME);
	CHECK(!drained(&f, &no_pg, &d));
	/* Not transitions: the state stays. */
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_PG\" MASTER_RX_LOWER_PRI 100"), FOLLOW_LINE_REPORT);
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_PG\" MASTER_PRIORITY 90"), FOLLOW_LINE_REPORT);
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_PG\" {UNKNOWN} 100"), FOLLOW_LINE_REPORT);
	CHECK(!follow_take_change(&f));
	CHECK_INT_EQ(f.state, VRRP_MASTER);
	/* Another name, or a group of the same name, is not followed. */
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_OTHER\" BACKUP 100"), FOLLOW_LINE_OTHER);
	CHECK_INT_EQ(line(&f, "GROUP \"VI_PG\" BACKUP 100"), FOLLOW_LINE_OTHER);
	CHECK(!follow_take_change(&f));
	CHECK_INT_EQ(f.state, VRRP_MASTER);
}

static void test_group(void)
{
	struct follow_settings s = { .kind = VRRP_GROUP };
	struct follow f;
	struct follow_decision d;

	snprintf(s.name, sizeof(s.name), "G PG");
	follow_init(&f, &s);
	CHECK_STR_EQ(follow_kind_name(&f), "group");
	CHECK_INT_EQ(line(&f, "INSTANCE \"G PG\" MASTER 100"), FOLLOW_LINE_OTHER);
	CHECK_INT_EQ(line(&f, "GROUP \"G PG\" MASTER 100"), FOLLOW_LINE_CHANGED);
	drained(&f, &no_pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
}

/* A burst is acted on where it ended: nothing in between is applied. */
static void test_bursts(void)
{
	static const char *const burst[] = { "BACKUP", "MASTER", "BACKUP", "FAULT", "MASTER" };
	struct follow f;
	struct follow_decision d;
	char text[64];

	start(&f, false);
	line(&f, "INSTANCE \"VI_PG\" BACKUP 100");
	drained(&f, &no_pg, &d);
	CHECK(follow_hook_due(&f));
	for (size_t i = 0; i < sizeof(burst) / sizeof(burst[0]); i++) {
		snprintf(text, sizeof(text), "INSTANCE \"VI_PG\" %s 100", burst[i]);
		line(&f, text);
	}
	CHECK(drained(&f, &no_pg, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
	CHECK(follow_hook_due(&f));
	CHECK_INT_EQ(f.state, VRRP_MASTER);

	/* Away and back in one burst: decided again, but no hook for the same state. */
	line(&f, "INSTANCE \"VI_PG\" BACKUP 100");
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	CHECK(drained(&f, &no_pg, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
	CHECK(!follow_hook_due(&f));
	/* The next burst without a change does nothing. */
	CHECK(!drained(&f, &no_pg, &d));
}

/* Script mode: after SIGTERM keepalived's STOP lines are still followed. */
static void test_stop_after_sigterm(void)
{
	struct follow f;
	struct follow_decision d;

	start(&f, true);
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	drained(&f, &(struct follow_pg){ .role = FOLLOW_PG_PRIMARY }, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
	follow_hook_due(&f);
	/* keepalived stopping writes STOP for each instance and group. */
	line(&f, "INSTANCE \"VI_PG\" STOP 100");
	CHECK_INT_EQ(line(&f, "GROUP \"G_OTHER\" STOP 0"), FOLLOW_LINE_OTHER);
	CHECK(drained(&f, &(struct follow_pg){ .role = FOLLOW_PG_PRIMARY }, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_FENCE);
	CHECK_STR_EQ(d.reason, "STOP");
	CHECK_INT_EQ(d.watch, FOLLOW_OFF);
	CHECK(follow_hook_due(&f));
	CHECK_INT_EQ(f.state, VRRP_STOP);
}

static void test_vip_fallback_at_start(void)
{
	struct follow f;
	struct follow_decision d;

	start(&f, false);
	follow_infer(&f, true);
	follow_decide(&f, &no_pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
	CHECK_STR_EQ(d.reason, "MASTER (VIP here)");
	CHECK(!follow_hook_due(&f)); /* inferred, not a transition */
	/* keepalived confirms: no change, no hook; the reason is keepalived's now. */
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_PG\" MASTER 100"), FOLLOW_LINE_SAME);
	CHECK(!drained(&f, &no_pg, &d));
	follow_decide(&f, &no_pg, &d);
	CHECK_STR_EQ(d.reason, "MASTER");
	CHECK(!follow_hook_due(&f));

	start(&f, false);
	follow_infer(&f, false);
	follow_decide(&f, &no_pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_FENCE);
	CHECK_STR_EQ(d.reason, "BACKUP (VIP elsewhere)");
	CHECK(!follow_hook_due(&f));
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_PG\" MASTER 100"), FOLLOW_LINE_CHANGED);
	CHECK(drained(&f, &no_pg, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
	CHECK_STR_EQ(d.reason, "MASTER");
	CHECK(follow_hook_due(&f));
}

/* Restarted on a MASTER with [postgres]: pgbouncer is left alone until the first answer. */
static void test_vip_fallback_with_hold(void)
{
	struct follow f;
	struct follow_decision d;

	start(&f, true);
	follow_infer(&f, true);
	follow_decide(&f, &no_pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_LEAVE);
	CHECK_INT_EQ(d.watch, FOLLOW_ON);
	CHECK_INT_EQ(d.hold_timer, FOLLOW_KEEP);
	follow_decide(&f, &(struct follow_pg){ .role = FOLLOW_PG_PRIMARY, .answered = true }, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
	CHECK_STR_EQ(d.reason, "MASTER (VIP here)");
	CHECK_INT_EQ(d.notes, 0);
}

static void test_reload(void)
{
	struct follow_settings s = { .kind = VRRP_INSTANCE, .hold = false, .hold_timeout_ms = 30000 };
	struct follow f;
	struct follow_decision d;

	start(&f, false);
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	drained(&f, &no_pg, &d);
	follow_hook_due(&f);
	snprintf(s.name, sizeof(s.name), "VI_PG");
	CHECK_INT_EQ(follow_reconfigure(&f, &s), 0);
	follow_decide(&f, &no_pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);

	/* Another name: unknown until reported; the old name is just another one. */
	snprintf(s.name, sizeof(s.name), "VI_NEW");
	CHECK_INT_EQ(follow_reconfigure(&f, &s), FOLLOW_RENAMED);
	follow_decide(&f, &no_pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_LEAVE);
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_PG\" BACKUP 100"), FOLLOW_LINE_OTHER);
	CHECK(follow_note_other(&f, &(struct vrrp_event){ .kind = VRRP_INSTANCE, .name = "VI_PG" }));
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_NEW\" MASTER 100"), FOLLOW_LINE_CHANGED);
	CHECK(drained(&f, &no_pg, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
	CHECK(follow_hook_due(&f)); /* the new name's first transition has its hook */

	/* The kind alone also renames. */
	s.kind = VRRP_GROUP;
	CHECK_INT_EQ(follow_reconfigure(&f, &s), FOLLOW_RENAMED);

	/* [postgres] added or hold_timeout changed: the hold starts over. */
	s.hold = true;
	CHECK_INT_EQ(follow_reconfigure(&f, &s), FOLLOW_HOLD_RESET);
	s.hold_timeout_ms = 5000;
	CHECK_INT_EQ(follow_reconfigure(&f, &s), FOLLOW_HOLD_RESET);
}

static void test_reload_resets_a_hold(void)
{
	struct follow_settings s;
	struct follow f;
	struct follow_decision d;
	struct follow_pg standby = { .role = FOLLOW_PG_STANDBY, .answered = true,
				     .watching = true, .fresh = true };

	become_master(&f, &standby, &d);
	CHECK_INT_EQ(d.hold_timer, FOLLOW_ON);
	follow_hold_expired(&f);
	follow_decide(&f, &standby, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_FENCE);
	s = f.settings;
	s.hold_timeout_ms = 60000;
	CHECK_INT_EQ(follow_reconfigure(&f, &s), FOLLOW_HOLD_RESET);
	follow_decide(&f, &standby, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_HOLD);
	CHECK_INT_EQ(d.hold_timer, FOLLOW_ON);
}

static void check_hold(const struct follow_decision *d, enum follow_mode mode, const char *reason,
		       enum follow_switch timer, enum follow_switch watch, unsigned notes)
{
	CHECK_INT_EQ(d->mode, mode);
	CHECK_STR_EQ(d->reason, reason);
	CHECK_INT_EQ(d->hold_timer, timer);
	CHECK_INT_EQ(d->watch, watch);
	CHECK_INT_EQ(d->notes, notes);
}

/* MASTER while the local PostgreSQL is still a standby: paused until it is primary. */
static void test_hold_until_promotion(void)
{
	struct follow f;
	struct follow_decision d;
	struct follow_pg pg = { .role = FOLLOW_PG_STANDBY, .answered = true };

	start(&f, true);
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	/* The watch begins now: what it knew is from before (BACKUP), so it asks. */
	CHECK(drained(&f, &pg, &d));
	check_hold(&d, FOLLOW_HOLD, "MASTER, asking the local PostgreSQL whether it is primary",
		   FOLLOW_ON, FOLLOW_ON, 0);
	CHECK(follow_hook_due(&f));
	pg.watching = true;
	pg.fresh = true;
	follow_decide(&f, &pg, &d);
	check_hold(&d, FOLLOW_HOLD, "MASTER, the local PostgreSQL is not primary yet", FOLLOW_KEEP,
		   FOLLOW_ON, FOLLOW_NOTE_HOLDING);
	follow_decide(&f, &pg, &d); /* said once */
	CHECK_INT_EQ(d.notes, 0);
	pg.role = FOLLOW_PG_PRIMARY;
	follow_decide(&f, &pg, &d);
	check_hold(&d, FOLLOW_SERVE, "MASTER", FOLLOW_OFF, FOLLOW_OFF, FOLLOW_NOTE_PRIMARY);
	/* A lost probe session after the promotion changes nothing. */
	pg = (struct follow_pg){ .role = FOLLOW_PG_UNKNOWN, .answered = true };
	follow_decide(&f, &pg, &d);
	check_hold(&d, FOLLOW_SERVE, "MASTER", FOLLOW_OFF, FOLLOW_OFF, 0);
	/* A standby again on the same MASTER: held again, loudly. */
	pg = (struct follow_pg){ .role = FOLLOW_PG_STANDBY, .answered = true, .watching = true,
				 .fresh = true };
	follow_decide(&f, &pg, &d);
	check_hold(&d, FOLLOW_HOLD, "MASTER, the local PostgreSQL is not primary yet", FOLLOW_ON,
		   FOLLOW_ON, FOLLOW_NOTE_STANDBY_AGAIN | FOLLOW_NOTE_HOLDING);
	/* Losing the VIP during the hold fences at once. */
	line(&f, "INSTANCE \"VI_PG\" BACKUP 100");
	drained(&f, &pg, &d);
	check_hold(&d, FOLLOW_FENCE, "BACKUP", FOLLOW_OFF, FOLLOW_OFF, 0);
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	drained(&f, &pg, &d);
	CHECK_INT_EQ(d.hold_timer, FOLLOW_ON); /* a new spell, a new hold_timeout */
}

static void test_hold_timeout(void)
{
	struct follow f;
	struct follow_decision d;
	struct follow_pg pg = { .role = FOLLOW_PG_STANDBY, .answered = true, .watching = true,
				.fresh = true };

	become_master(&f, &pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_HOLD);
	follow_hold_expired(&f);
	follow_decide(&f, &pg, &d);
	check_hold(&d, FOLLOW_FENCE, "MASTER, but the local PostgreSQL is still a standby after "
		   "hold_timeout", FOLLOW_KEEP, FOLLOW_ON, 0);
	pg.role = FOLLOW_PG_UNKNOWN;
	follow_decide(&f, &pg, &d);
	CHECK_STR_EQ(d.reason, "MASTER, but the local PostgreSQL is unreachable after hold_timeout");
	pg.role = FOLLOW_PG_PRIMARY;
	follow_decide(&f, &pg, &d);
	check_hold(&d, FOLLOW_SERVE, "MASTER", FOLLOW_OFF, FOLLOW_OFF,
		   FOLLOW_NOTE_PRIMARY | FOLLOW_NOTE_AFTER_TIMEOUT);
}

static void test_hold_unreachable_and_refused(void)
{
	struct follow f;
	struct follow_decision d;
	struct follow_pg pg = { .role = FOLLOW_PG_UNKNOWN, .answered = true, .watching = true,
				.fresh = true };

	become_master(&f, &pg, &d);
	check_hold(&d, FOLLOW_HOLD, "MASTER, the local PostgreSQL is unreachable", FOLLOW_ON,
		   FOLLOW_ON, FOLLOW_NOTE_HOLDING);
	/* Refused for good: serve without the hold, said once per spell. */
	pg.refused = true;
	follow_decide(&f, &pg, &d);
	check_hold(&d, FOLLOW_SERVE, "MASTER", FOLLOW_OFF, FOLLOW_KEEP, FOLLOW_NOTE_REFUSED);
	follow_decide(&f, &pg, &d);
	CHECK_INT_EQ(d.notes, 0);
	pg.refused = false;
	follow_decide(&f, &pg, &d);
	CHECK_INT_EQ(d.mode, FOLLOW_HOLD);
	pg.refused = true;
	follow_decide(&f, &pg, &d);
	CHECK_INT_EQ(d.notes, FOLLOW_NOTE_REFUSED);
}

/* Promoted while BACKUP: MASTER serves at once, without a hold or its log lines. */
static void test_primary_before_master(void)
{
	struct follow f;
	struct follow_decision d;
	struct follow_pg pg = { .role = FOLLOW_PG_PRIMARY, .answered = true };

	start(&f, true);
	line(&f, "INSTANCE \"VI_PG\" BACKUP 100");
	drained(&f, &pg, &d);
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	drained(&f, &pg, &d);
	check_hold(&d, FOLLOW_SERVE, "MASTER", FOLLOW_OFF, FOLLOW_OFF, 0);
}

static void test_unseen_warning(void)
{
	struct follow f;
	char list[FOLLOW_OTHERS_MAX * (FOLLOW_OTHER_SIZE + 2)];
	char name[32];

	start(&f, false);
	CHECK(follow_note_other(&f, &(struct vrrp_event){ .kind = VRRP_INSTANCE, .name = "VI_1" }));
	CHECK(follow_note_other(&f, &(struct vrrp_event){ .kind = VRRP_GROUP, .name = "G_1" }));
	CHECK(follow_note_other(&f, &(struct vrrp_event){ .kind = VRRP_INSTANCE, .name = "VI_1" }));
	for (int i = 0; i < 20; i++) {
		struct vrrp_event ev = { .kind = VRRP_INSTANCE };

		snprintf(name, sizeof(name), "X%d", i);
		snprintf(ev.name, sizeof(ev.name), "%s", name);
		follow_note_other(&f, &ev);
	}
	CHECK_INT_EQ(f.n_others, FOLLOW_OTHERS_MAX);
	CHECK(follow_unseen_warning(&f, list, sizeof(list)));
	CHECK(strncmp(list, "instance \"VI_1\", group \"G_1\", instance \"X0\"", 42) == 0);
	/* Warned once. */
	CHECK(!follow_unseen_warning(&f, list, sizeof(list)));
	CHECK(!follow_note_other(&f, &(struct vrrp_event){ .kind = VRRP_INSTANCE, .name = "VI_2" }));

	/* Once the followed name is reported, never. */
	start(&f, false);
	CHECK(follow_note_other(&f, &(struct vrrp_event){ .kind = VRRP_INSTANCE, .name = "VI_1" }));
	CHECK_INT_EQ(line(&f, "INSTANCE \"VI_PG\" MASTER_PRIORITY 100"), FOLLOW_LINE_REPORT);
	CHECK(!follow_unseen_warning(&f, list, sizeof(list)));
	CHECK(!follow_note_other(&f, &(struct vrrp_event){ .kind = VRRP_INSTANCE, .name = "VI_1" }));
}

/* backup_clients = wait: a BACKUP holds its clients; FAULT and STOP still refuse. */
static void test_backup_waits(void)
{
	struct follow f;
	struct follow_decision d;
	struct follow_settings s = { .kind = VRRP_INSTANCE, .hold = true, .backup_waits = true,
				     .hold_timeout_ms = 30000 };
	struct follow_pg pg = { .role = FOLLOW_PG_STANDBY, .answered = true };

	snprintf(s.name, sizeof(s.name), "VI_PG");
	follow_init(&f, &s);
	line(&f, "INSTANCE \"VI_PG\" BACKUP 100");
	CHECK(drained(&f, &pg, &d));
	check_hold(&d, FOLLOW_HOLD, "BACKUP", FOLLOW_OFF, FOLLOW_OFF, 0);
	CHECK(!d.cut);
	line(&f, "INSTANCE \"VI_PG\" FAULT 100");
	CHECK(drained(&f, &pg, &d));
	check_hold(&d, FOLLOW_FENCE, "FAULT", FOLLOW_OFF, FOLLOW_OFF, 0);
	CHECK(!d.cut);
	line(&f, "INSTANCE \"VI_PG\" BACKUP 100");
	CHECK(drained(&f, &pg, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_HOLD);
	/* MASTER while a standby: the MASTER's hold; the clients that waited on BACKUP stay. */
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	CHECK(drained(&f, &pg, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_HOLD);
	CHECK(!d.cut);
	/* Losing the VIP during that hold: still a hold, but its clients are cut. */
	line(&f, "INSTANCE \"VI_PG\" BACKUP 100");
	CHECK(drained(&f, &pg, &d));
	check_hold(&d, FOLLOW_HOLD, "BACKUP", FOLLOW_OFF, FOLLOW_OFF, 0);
	CHECK(d.cut);
	follow_decide(&f, &pg, &d); /* decided again (a reload, the watch): no second cut */
	CHECK(!d.cut);
	/* Serving, then STOP: fenced and cut. */
	pg.role = FOLLOW_PG_PRIMARY;
	line(&f, "INSTANCE \"VI_PG\" MASTER 100");
	CHECK(drained(&f, &pg, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_SERVE);
	line(&f, "INSTANCE \"VI_PG\" STOP 100");
	CHECK(drained(&f, &pg, &d));
	CHECK_INT_EQ(d.mode, FOLLOW_FENCE);
	CHECK(d.cut);
	/* At start, the VIP elsewhere: a BACKUP, which waits. */
	follow_init(&f, &s);
	follow_infer(&f, false);
	follow_decide(&f, &pg, &d);
	check_hold(&d, FOLLOW_HOLD, "BACKUP (VIP elsewhere)", FOLLOW_OFF, FOLLOW_OFF, 0);
}

int main(void)
{
	test_unknown_until_reported();
	test_transitions();
	test_same_state_and_reports();
	test_group();
	test_bursts();
	test_stop_after_sigterm();
	test_vip_fallback_at_start();
	test_vip_fallback_with_hold();
	test_reload();
	test_reload_resets_a_hold();
	test_hold_until_promotion();
	test_hold_timeout();
	test_hold_unreachable_and_refused();
	test_primary_before_master();
	test_unseen_warning();
	test_backup_waits();
	CHECK_DONE();
}
