/*
 * vrrp_event: one line of keepalived's notify FIFO, parsed.
 *
 *   INSTANCE "<name>" <STATE> <priority>
 *   GROUP "<name>" <STATE> <priority>
 *   VS ... / RS ...            (LVS, ignored)
 *
 * Names are quoted without escapes and may hold spaces; the parser splits
 * on the first and last double quote.  Pure code: no I/O, no allocation.
 */
#ifndef PGTRACK_VRRP_EVENT_H
#define PGTRACK_VRRP_EVENT_H

#include <stdbool.h>
#include <stddef.h>

#define VRRP_NAME_MAX 128

enum vrrp_kind {
	VRRP_INSTANCE,
	VRRP_GROUP,
};

enum vrrp_state {
	VRRP_MASTER,
	VRRP_BACKUP,
	VRRP_FAULT,
	VRRP_STOP,
	VRRP_DELETED,
	VRRP_MASTER_RX_LOWER_PRI,
	VRRP_MASTER_PRIORITY,
	VRRP_BACKUP_PRIORITY,
	VRRP_UNKNOWN_STATE, /* keepalived's "{UNKNOWN}" */
};

struct vrrp_event {
	enum vrrp_kind kind;
	enum vrrp_state state;
	int priority;
	char name[VRRP_NAME_MAX + 1];
};

enum vrrp_parse_result {
	VRRP_PARSE_OK,
	VRRP_PARSE_IGNORED, /* VS/RS lines, empty lines */
	VRRP_PARSE_ERROR,
};

/*
 * Parses one line (without its newline; it may contain NUL bytes, which
 * make it an error).  On error, *why says what was wrong.
 */
enum vrrp_parse_result vrrp_event_parse(const char *line, size_t len, struct vrrp_event *ev,
					const char **why);

const char *vrrp_state_name(enum vrrp_state state);
const char *vrrp_kind_name(enum vrrp_kind kind);

/* Whether the state says who holds the VIP (not a priority report or a warning). */
bool vrrp_state_is_transition(enum vrrp_state state);

#endif
