#include "vrrp_event.h"

#include <string.h>

static const struct {
	const char *name;
	enum vrrp_state state;
} states[] = {
	{ "MASTER", VRRP_MASTER },
	{ "BACKUP", VRRP_BACKUP },
	{ "FAULT", VRRP_FAULT },
	{ "STOP", VRRP_STOP },
	{ "DELETED", VRRP_DELETED },
	{ "MASTER_RX_LOWER_PRI", VRRP_MASTER_RX_LOWER_PRI },
	{ "MASTER_PRIORITY", VRRP_MASTER_PRIORITY },
	{ "BACKUP_PRIORITY", VRRP_BACKUP_PRIORITY },
	{ "{UNKNOWN}", VRRP_UNKNOWN_STATE },
};

const char *vrrp_state_name(enum vrrp_state state)
{
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (states[i].state == state)
			return states[i].name;
	return "?";
}

const char *vrrp_kind_name(enum vrrp_kind kind)
{
	return kind == VRRP_GROUP ? "GROUP" : "INSTANCE";
}

bool vrrp_state_is_transition(enum vrrp_state state)
{
	switch (state) {
	case VRRP_MASTER:
	case VRRP_BACKUP:
	case VRRP_FAULT:
	case VRRP_STOP:
	case VRRP_DELETED:
		return true;
	default:
		return false;
	}
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

static bool parse_state(const char *s, size_t len, enum vrrp_state *state)
{
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (strlen(states[i].name) == len && memcmp(states[i].name, s, len) == 0) {
			*state = states[i].state;
			return true;
		}
	}
	return false;
}

static bool parse_priority(const char *s, size_t len, int *priority)
{
	int value = 0;

	if (len == 0 || len > 3)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		value = value * 10 + (s[i] - '0');
	}
	if (value > 255)
		return false;
	*priority = value;
	return true;
}

enum vrrp_parse_result vrrp_event_parse(const char *line, size_t len, struct vrrp_event *ev,
					const char **why)
{
	const char *open, *close, *p, *end = line + len;
	const char *state, *prio;
	size_t name_len;

	*why = NULL;
	if (memchr(line, '\0', len)) {
		*why = "NUL byte in line";
		return VRRP_PARSE_ERROR;
	}
	if (len > 0 && line[len - 1] == '\r')
		end--;
	if (line == end)
		return VRRP_PARSE_IGNORED;
	if (starts_with(line, len, "VS ") || starts_with(line, len, "RS "))
		return VRRP_PARSE_IGNORED;

	if (starts_with(line, len, "INSTANCE \"")) {
		ev->kind = VRRP_INSTANCE;
		open = line + 9;
	} else if (starts_with(line, len, "GROUP \"")) {
		ev->kind = VRRP_GROUP;
		open = line + 6;
	} else {
		*why = "not an INSTANCE, GROUP, VS or RS line";
		return VRRP_PARSE_ERROR;
	}

	/* The name ends at the last quote: names never hold one, but be lenient. */
	close = NULL;
	for (p = end - 1; p > open; p--) {
		if (*p == '"') {
			close = p;
			break;
		}
	}
	if (!close) {
		*why = "name without closing quote";
		return VRRP_PARSE_ERROR;
	}
	name_len = (size_t)(close - open - 1);
	if (name_len == 0 || name_len > VRRP_NAME_MAX) {
		*why = name_len ? "name too long" : "empty name";
		return VRRP_PARSE_ERROR;
	}
	memcpy(ev->name, open + 1, name_len);
	ev->name[name_len] = '\0';

	if (close + 1 >= end || close[1] != ' ') {
		*why = "no state after the name";
		return VRRP_PARSE_ERROR;
	}
	state = close + 2;
	prio = memchr(state, ' ', (size_t)(end - state));
	if (!prio) {
		*why = "no priority after the state";
		return VRRP_PARSE_ERROR;
	}
	if (!parse_state(state, (size_t)(prio - state), &ev->state)) {
		*why = "unknown state";
		return VRRP_PARSE_ERROR;
	}
	prio++;
	if (!parse_priority(prio, (size_t)(end - prio), &ev->priority)) {
		*why = "priority is not a number from 0 to 255";
		return VRRP_PARSE_ERROR;
	}
	return VRRP_PARSE_OK;
}
