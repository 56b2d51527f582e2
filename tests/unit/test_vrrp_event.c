/*
 * vrrp_event (src/notify/vrrp_event.h): one line of keepalived's notify
 * FIFO.  Formats: shared notes keepalived.md §2.3.
 *
 * Every line is copied into a heap buffer of exactly its length, without a
 * terminating NUL, so that valgrind (or ASan) catches a read past len.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "check.h"
#include "vrrp_event.h"

/* A struct vrrp_event full of junk, to see what the parser sets. */
static void ev_poison(struct vrrp_event *ev)
{
	memset(ev, 0x5a, sizeof(*ev));
}

static enum vrrp_parse_result parse(const char *line, size_t len, struct vrrp_event *ev,
				    const char **why)
{
	char *copy = malloc(len ? len : 1);
	enum vrrp_parse_result r;

	if (!copy)
		exit(2);
	memcpy(copy, line, len);
	*why = "(untouched)";
	r = vrrp_event_parse(copy, len, ev, why);
	free(copy);
	return r;
}

/* Prints a line with its unprintable bytes escaped. */
static void print_line(const char *line, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	putchar('"');
}

static void fail_line(int lineno, const char *line, size_t len)
{
	failures++;
	printf("%s:%d: ", __FILE__, lineno);
	print_line(line, len);
	printf(": ");
}

static void check_ok(const char *line, size_t len, enum vrrp_kind kind, const char *name,
		     enum vrrp_state state, int priority, int lineno)
{
	struct vrrp_event ev;
	const char *why;
	enum vrrp_parse_result r;

	ev_poison(&ev);
	r = parse(line, len, &ev, &why);
	checks++;
	if (r != VRRP_PARSE_OK) {
		fail_line(lineno, line, len);
		printf("result %d (%s), expected OK\n", (int)r, why ? why : "why NULL");
		return;
	}
	if (why != NULL) {
		fail_line(lineno, line, len);
		printf("OK but why = \"%s\", expected NULL\n", why);
	}
	if (ev.kind != kind || ev.state != state || ev.priority != priority) {
		fail_line(lineno, line, len);
		printf("kind %d state %d priority %d, expected %d %d %d\n", (int)ev.kind,
		       (int)ev.state, ev.priority, (int)kind, (int)state, priority);
	}
	if (memchr(ev.name, '\0', sizeof(ev.name)) == NULL) {
		fail_line(lineno, line, len);
		printf("name not NUL-terminated\n");
	} else if (strcmp(ev.name, name) != 0) {
		fail_line(lineno, line, len);
		printf("name \"%s\", expected \"%s\"\n", ev.name, name);
	}
}

static void check_ignored(const char *line, size_t len, int lineno)
{
	struct vrrp_event ev;
	const char *why;
	enum vrrp_parse_result r;

	ev_poison(&ev);
	r = parse(line, len, &ev, &why);
	checks++;
	if (r != VRRP_PARSE_IGNORED || why != NULL) {
		fail_line(lineno, line, len);
		printf("result %d, why %s%s%s; expected IGNORED, why NULL\n", (int)r,
		       why ? "\"" : "", why ? why : "NULL", why ? "\"" : "");
	}
}

/*
 * An error, with a reason that mentions `about` (a word of the expected
 * reason, so that the test does not pin the exact wording).
 */
static void check_error(const char *line, size_t len, const char *about, int lineno)
{
	struct vrrp_event ev;
	const char *why;
	enum vrrp_parse_result r;

	ev_poison(&ev);
	r = parse(line, len, &ev, &why);
	checks++;
	if (r != VRRP_PARSE_ERROR) {
		fail_line(lineno, line, len);
		printf("result %d, expected ERROR (%s)\n", (int)r, about);
		return;
	}
	if (why == NULL || *why == '\0' || strcmp(why, "(untouched)") == 0) {
		fail_line(lineno, line, len);
		printf("ERROR without a reason (why %s)\n", why ? why : "NULL");
		return;
	}
	if (strstr(why, about) == NULL) {
		fail_line(lineno, line, len);
		printf("reason \"%s\" does not mention \"%s\"\n", why, about);
	}
}

/* For string literals, which may hold NUL bytes. */
#define OK(lit, kind, name, state, prio) \
	check_ok(lit, sizeof(lit) - 1, kind, name, state, prio, __LINE__)
#define IGNORED(lit) check_ignored(lit, sizeof(lit) - 1, __LINE__)
#define ERR(lit, about) check_error(lit, sizeof(lit) - 1, about, __LINE__)

/* For built lines. */
#define OK_S(s, kind, name, state, prio) check_ok(s, strlen(s), kind, name, state, prio, __LINE__)
#define ERR_S(s, about) check_error(s, strlen(s), about, __LINE__)

#define I VRRP_INSTANCE
#define G VRRP_GROUP

static const struct {
	const char *text;
	enum vrrp_state state;
	bool transition;
} all_states[] = {
	{ "MASTER", VRRP_MASTER, true },
	{ "BACKUP", VRRP_BACKUP, true },
	{ "FAULT", VRRP_FAULT, true },
	{ "STOP", VRRP_STOP, true },
	{ "DELETED", VRRP_DELETED, true },
	{ "MASTER_RX_LOWER_PRI", VRRP_MASTER_RX_LOWER_PRI, false },
	{ "MASTER_PRIORITY", VRRP_MASTER_PRIORITY, false },
	{ "BACKUP_PRIORITY", VRRP_BACKUP_PRIORITY, false },
	{ "{UNKNOWN}", VRRP_UNKNOWN_STATE, false },
};
#define N_STATES (sizeof(all_states) / sizeof(all_states[0]))

/* The lines seen from keepalived 2.2.7 (notes §2.3). */
static void test_real_lines(void)
{
	OK("INSTANCE \"VI_1\" MASTER_PRIORITY 160", I, "VI_1", VRRP_MASTER_PRIORITY, 160);
	OK("INSTANCE \"VI_1\" FAULT 150", I, "VI_1", VRRP_FAULT, 150);
	OK("INSTANCE \"VI_2\" MASTER_RX_LOWER_PRI 150", I, "VI_2", VRRP_MASTER_RX_LOWER_PRI, 150);
	OK("GROUP \"G_B\" STOP 0", G, "G_B", VRRP_STOP, 0);
	OK("INSTANCE \"VI_PG\" BACKUP 100", I, "VI_PG", VRRP_BACKUP, 100);
	OK("INSTANCE \"VI_PG\" MASTER 100", I, "VI_PG", VRRP_MASTER, 100);
	OK("GROUP \"G_PG\" MASTER 0", G, "G_PG", VRRP_MASTER, 0);
}

/* INSTANCE and GROUP with every state keepalived writes, and "{UNKNOWN}". */
static void test_every_state(void)
{
	char line[128];

	for (size_t i = 0; i < N_STATES; i++) {
		snprintf(line, sizeof(line), "INSTANCE \"VI_1\" %s 100", all_states[i].text);
		OK_S(line, I, "VI_1", all_states[i].state, 100);
		snprintf(line, sizeof(line), "GROUP \"G_1\" %s 0", all_states[i].text);
		OK_S(line, G, "G_1", all_states[i].state, 0);
		snprintf(line, sizeof(line), "GROUP \"G 1\" %s 255\r", all_states[i].text);
		OK_S(line, G, "G 1", all_states[i].state, 255);
	}
}

/* States are case-sensitive and must match a whole word. */
static void test_bad_states(void)
{
	ERR("INSTANCE \"VI_1\" master 100", "state");
	ERR("INSTANCE \"VI_1\" Master 100", "state");
	ERR("GROUP \"G_1\" backup 0", "state");
	ERR("INSTANCE \"VI_1\" MASTERX 100", "state");
	ERR("INSTANCE \"VI_1\" MASTE 100", "state");
	ERR("INSTANCE \"VI_1\" MASTER_ 100", "state");
	ERR("INSTANCE \"VI_1\" UNKNOWN 100", "state");
	ERR("INSTANCE \"VI_1\" {unknown} 100", "state");
	ERR("INSTANCE \"VI_1\" {UNKNOWN 100", "state");
	ERR("INSTANCE \"VI_1\" INIT 100", "state");
	ERR("INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI_ 100", "state");
	ERR("INSTANCE \"VI_1\" MASTER\r 100", "state");
	/* Two blanks: an empty state. */
	ERR("INSTANCE \"VI_1\"  MASTER 100", "state");
	/* A tab is not the separator. */
	ERR("INSTANCE \"VI_1\" MASTER\t100", "priority");
}

/* Every priority 0..255; 256, -1 and "" are rejected. */
static void test_priorities(void)
{
	char line[64];

	for (int p = 0; p <= 255; p++) {
		snprintf(line, sizeof(line), "INSTANCE \"VI_1\" BACKUP %d", p);
		OK_S(line, I, "VI_1", VRRP_BACKUP, p);
		snprintf(line, sizeof(line), "GROUP \"G\" FAULT %d\r", p);
		OK_S(line, G, "G", VRRP_FAULT, p);
	}
	ERR("INSTANCE \"VI_1\" MASTER 256", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 300", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 999", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 1000", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 4294967396", "priority");
	ERR("INSTANCE \"VI_1\" MASTER -1", "priority");
	ERR("INSTANCE \"VI_1\" MASTER -0", "priority");
	ERR("INSTANCE \"VI_1\" MASTER +1", "priority");
	ERR("GROUP \"G\" STOP -1", "priority");
	ERR("GROUP \"G\" STOP 256", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 0x10", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 1e2", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 25a", "priority");
	ERR("INSTANCE \"VI_1\" MASTER a", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 1.5", "priority");
	/* "" : the separator is there, the number is not. */
	ERR("INSTANCE \"VI_1\" MASTER ", "priority");
	ERR("INSTANCE \"VI_1\" MASTER \r", "priority");
	ERR("GROUP \"G\" STOP ", "priority");
	/* Two blanks before the number. */
	ERR("INSTANCE \"VI_1\" MASTER  100", "priority");
}

/* Nothing after the state. */
static void test_missing_priority(void)
{
	ERR("INSTANCE \"VI_1\" MASTER", "priority");
	ERR("INSTANCE \"VI_1\" MASTER\r", "priority");
	ERR("GROUP \"G_1\" STOP", "priority");
	ERR("INSTANCE \"VI_1\" {UNKNOWN}", "priority");
	/* Nothing after the name, or just a blank. */
	ERR("INSTANCE \"VI_1\"", "state");
	ERR("INSTANCE \"VI_1\"\r", "state");
	ERR("GROUP \"G_1\"", "state");
	ERR("INSTANCE \"VI_1\" ", "priority");
}

/* Anything after the priority makes the line an error. */
static void test_trailing_text(void)
{
	ERR("INSTANCE \"VI_1\" MASTER 100 ", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 100 extra", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 1 x", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 100 200", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 100x", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 100\t", "priority");
	ERR("GROUP \"G_1\" STOP 0 0", "priority");
	/* Only one trailing CR is stripped. */
	ERR("INSTANCE \"VI_1\" MASTER 100\r\r", "priority");
	ERR("INSTANCE \"VI_1\" MASTER 100\n", "priority");
	/* A quote after the priority becomes the end of the name. */
	ERR("INSTANCE \"VI_1\" MASTER 100\"", "state");
}

/* The trailing CR of a CRLF line is dropped. */
static void test_crlf(void)
{
	OK("INSTANCE \"VI_1\" MASTER 100\r", I, "VI_1", VRRP_MASTER, 100);
	OK("GROUP \"G_1\" STOP 0\r", G, "G_1", VRRP_STOP, 0);
	OK("INSTANCE \"VI_1\" {UNKNOWN} 7\r", I, "VI_1", VRRP_UNKNOWN_STATE, 7);
	/* A CR elsewhere is part of the text. */
	OK("INSTANCE \"VI\r1\" MASTER 100", I, "VI\r1", VRRP_MASTER, 100);
	ERR("INSTANCE \"VI_1\" MASTER 1\r0", "priority");
	ERR("\rINSTANCE \"VI_1\" MASTER 100", "INSTANCE");
}

static void test_names(void)
{
	/* Blanks inside and around. */
	OK("INSTANCE \"VI 1\" MASTER 100", I, "VI 1", VRRP_MASTER, 100);
	OK("INSTANCE \"  my instance  \" BACKUP 50", I, "  my instance  ", VRRP_BACKUP, 50);
	OK("GROUP \"sync group PG\" FAULT 0", G, "sync group PG", VRRP_FAULT, 0);
	OK("INSTANCE \" \" MASTER 1", I, " ", VRRP_MASTER, 1);
	OK("INSTANCE \"a\" MASTER 1", I, "a", VRRP_MASTER, 1);
	/* Names that look like the rest of a line. */
	OK("INSTANCE \"VI 1 MASTER 100\" BACKUP 100", I, "VI 1 MASTER 100", VRRP_BACKUP, 100);
	OK("INSTANCE \"INSTANCE\" MASTER 1", I, "INSTANCE", VRRP_MASTER, 1);
	OK("GROUP \"VS \" MASTER 1", G, "VS ", VRRP_MASTER, 1);
	/* Bytes beyond ASCII, tabs. */
	OK("INSTANCE \"caf\xc3\xa9\" MASTER 1", I, "caf\xc3\xa9", VRRP_MASTER, 1);
	OK("INSTANCE \"\xff\xfe\" MASTER 1", I, "\xff\xfe", VRRP_MASTER, 1);
	OK("INSTANCE \"a\tb\" MASTER 1", I, "a\tb", VRRP_MASTER, 1);

	/* A quote inside: lenient, the name ends at the last quote. */
	OK("INSTANCE \"a\"b\" MASTER 100", I, "a\"b", VRRP_MASTER, 100);
	OK("INSTANCE \"\"\" MASTER 100", I, "\"", VRRP_MASTER, 100);
	OK("INSTANCE \"\"x\"\" BACKUP 1", I, "\"x\"", VRRP_BACKUP, 1);
	OK("GROUP \"a\" MASTER 1 \"b\" STOP 0", G, "a\" MASTER 1 \"b", VRRP_STOP, 0);
	OK("INSTANCE \"a\"b\" MASTER 100\r", I, "a\"b", VRRP_MASTER, 100);

	/* Empty. */
	ERR("INSTANCE \"\" MASTER 100", "empty");
	ERR("GROUP \"\" STOP 0", "empty");
	ERR("INSTANCE \"\" MASTER 100\r", "empty");

	/* No closing quote. */
	ERR("INSTANCE \"VI_1 MASTER 100", "quote");
	ERR("INSTANCE \"", "quote");
	ERR("INSTANCE \"\r", "quote");
	ERR("GROUP \"G", "quote");
	/* A quote then nothing. */
	ERR("INSTANCE \"\"", "name");
	/* No blank after the closing quote. */
	ERR("INSTANCE \"VI_1\"MASTER 100", "state");
	ERR("INSTANCE \"VI_1\"\tMASTER 100", "state");
}

/* VRRP_NAME_MAX bytes fit, one more does not. */
static void test_name_length(void)
{
	char name[VRRP_NAME_MAX + 2];
	char line[VRRP_NAME_MAX + 64];

	memset(name, 'n', sizeof(name));
	name[0] = 'A';
	name[VRRP_NAME_MAX - 1] = 'Z';

	name[VRRP_NAME_MAX] = '\0';
	snprintf(line, sizeof(line), "INSTANCE \"%s\" MASTER 100", name);
	OK_S(line, I, name, VRRP_MASTER, 100);
	snprintf(line, sizeof(line), "GROUP \"%s\" STOP 0\r", name);
	OK_S(line, G, name, VRRP_STOP, 0);

	/* 128 bytes with blanks and quotes inside. */
	memset(name, ' ', VRRP_NAME_MAX);
	name[5] = '"';
	name[VRRP_NAME_MAX - 1] = '"';
	snprintf(line, sizeof(line), "INSTANCE \"%s\" BACKUP 1", name);
	OK_S(line, I, name, VRRP_BACKUP, 1);

	memset(name, 'n', sizeof(name));
	name[VRRP_NAME_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "INSTANCE \"%s\" MASTER 100", name);
	ERR_S(line, "long");
	snprintf(line, sizeof(line), "GROUP \"%s\" STOP 0\r", name);
	ERR_S(line, "long");

	/* Much longer. */
	{
		char big[600];

		memset(big, 'x', sizeof(big));
		memcpy(big, "INSTANCE \"", 10);
		memcpy(big + sizeof(big) - 12, "\" MASTER 10", 11);
		big[sizeof(big) - 1] = '\0';
		ERR_S(big, "long");
	}
}

/* A long name must not leave bytes behind for the next, shorter one. */
static void test_event_reuse(void)
{
	struct vrrp_event ev;
	const char *why;
	const char *l1 = "INSTANCE \"a long instance name\" MASTER 100";
	const char *l2 = "GROUP \"G\" BACKUP 0";

	ev_poison(&ev);
	CHECK_INT_EQ(vrrp_event_parse(l1, strlen(l1), &ev, &why), VRRP_PARSE_OK);
	CHECK_INT_EQ(vrrp_event_parse(l2, strlen(l2), &ev, &why), VRRP_PARSE_OK);
	CHECK_STR_EQ(ev.name, "G");
	CHECK_INT_EQ(ev.kind, VRRP_GROUP);
	CHECK_INT_EQ(ev.state, VRRP_BACKUP);
	CHECK_INT_EQ(ev.priority, 0);
	CHECK(why == NULL);
}

/* Only len bytes count, whatever follows them. */
static void test_len_respected(void)
{
	const char *full = "INSTANCE \"VI_1\" MASTER 100";
	struct vrrp_event ev;
	const char *why;

	/* "... MASTER 10" */
	CHECK_INT_EQ(vrrp_event_parse(full, strlen(full) - 1, &ev, &why), VRRP_PARSE_OK);
	CHECK_INT_EQ(ev.priority, 10);
	/* "... MASTER " */
	CHECK_INT_EQ(vrrp_event_parse(full, strlen(full) - 3, &ev, &why), VRRP_PARSE_ERROR);
	CHECK(why != NULL);
	/* "INSTANCE \"VI_1" */
	CHECK_INT_EQ(vrrp_event_parse(full, 14, &ev, &why), VRRP_PARSE_ERROR);
	CHECK(why != NULL);
	/* "" */
	CHECK_INT_EQ(vrrp_event_parse(full, 0, &ev, &why), VRRP_PARSE_IGNORED);
	CHECK(why == NULL);
}

/* LVS lines (checker) are not ours. */
static void test_lvs_ignored(void)
{
	IGNORED("VS [192.0.2.1]:tcp:80 UP");
	IGNORED("VS [192.0.2.1]:udp:53 DOWN");
	IGNORED("VS [2001:db8::1]:sctp:5060 UP");
	IGNORED("VS FWM 3 UP");
	IGNORED("VS FWM 3 DOWN\r");
	IGNORED("VS [web_group]:80 UP");
	IGNORED("RS [10.0.0.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN");
	IGNORED("RS [10.0.0.2]:tcp:80 FWM 3 UP");
	IGNORED("RS [10.0.0.2]:none:0 [grp]:80 UP\r");
	/* Whatever follows "VS " / "RS ". */
	IGNORED("VS ");
	IGNORED("RS \"x\" MASTER 100");
	/* Not LVS lines. */
	ERR("vs [192.0.2.1]:tcp:80 UP", "INSTANCE");
	ERR("VSX 1", "INSTANCE");
	ERR(" VS FWM 3 UP", "INSTANCE");
	ERR("VS\tFWM 3 UP", "INSTANCE");
}

static void test_empty_ignored(void)
{
	IGNORED("");
	IGNORED("\r");
}

static void test_garbage(void)
{
	ERR("hello", "INSTANCE");
	ERR(" ", "INSTANCE");
	ERR("\r\r", "INSTANCE");
	ERR("INSTANCE", "INSTANCE");
	ERR("INSTANCE ", "INSTANCE");
	ERR("GROUP", "INSTANCE");
	ERR("INSTANCE VI_1 MASTER 100", "INSTANCE");
	ERR("instance \"VI_1\" MASTER 100", "INSTANCE");
	ERR("Instance \"VI_1\" MASTER 100", "INSTANCE");
	ERR("group \"G\" STOP 0", "INSTANCE");
	ERR(" INSTANCE \"VI_1\" MASTER 100", "INSTANCE");
	ERR("INSTANCE  \"VI_1\" MASTER 100", "INSTANCE");
	ERR("INSTANCE\t\"VI_1\" MASTER 100", "INSTANCE");
	ERR("INSTANCE 'VI_1' MASTER 100", "INSTANCE");
	ERR("INSTANCES \"VI_1\" MASTER 100", "INSTANCE");
	ERR("GROUPS \"G\" STOP 0", "INSTANCE");
	ERR("VRRP \"VI_1\" MASTER 100", "INSTANCE");
	ERR("\"VI_1\" MASTER 100", "INSTANCE");
	ERR("MASTER", "INSTANCE");
	ERR("\xff\xfe\xfd", "INSTANCE");
	ERR("\x1b[31mINSTANCE \"VI_1\" MASTER 100", "INSTANCE");
	ERR("\xef\xbb\xbfINSTANCE \"VI_1\" MASTER 100", "INSTANCE");
}

/* A NUL byte anywhere is an error, even where the rest would be ignored. */
static void test_nul(void)
{
	ERR("\0", "NUL");
	ERR("\0\0\0", "NUL");
	ERR("INSTANCE \"VI\0_1\" MASTER 100", "NUL");
	ERR("\0INSTANCE \"VI_1\" MASTER 100", "NUL");
	ERR("INSTANCE \"VI_1\" MASTER 100\0", "NUL");
	ERR("INSTANCE \"VI_1\" MASTER 100\0\r", "NUL");
	ERR("INSTANCE \"VI_1\" MAS\0TER 100", "NUL");
	ERR("INSTANCE \"VI_1\" MASTER 1\0" "00", "NUL");
	ERR("GROUP \"G\" STOP 0\0", "NUL");
	ERR("VS FWM 3 UP\0", "NUL");
	ERR("RS \0", "NUL");
	ERR("\0\r", "NUL");
}

static void test_names_of_values(void)
{
	for (size_t i = 0; i < N_STATES; i++) {
		CHECK_STR_EQ(vrrp_state_name(all_states[i].state), all_states[i].text);
		CHECK_INT_EQ(vrrp_state_is_transition(all_states[i].state), all_states[i].transition);
	}
	CHECK_STR_EQ(vrrp_state_name((enum vrrp_state)99), "?");
	CHECK_STR_EQ(vrrp_kind_name(VRRP_INSTANCE), "INSTANCE");
	CHECK_STR_EQ(vrrp_kind_name(VRRP_GROUP), "GROUP");
}

int main(void)
{
	test_real_lines();
	test_every_state();
	test_bad_states();
	test_priorities();
	test_missing_priority();
	test_trailing_text();
	test_crlf();
	test_names();
	test_name_length();
	test_event_reuse();
	test_len_respected();
	test_lvs_ignored();
	test_empty_ignored();
	test_garbage();
	test_nul();
	test_names_of_values();
	CHECK_DONE();
}
