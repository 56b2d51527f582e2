/*
 * log: the one place where pgtrackd's programs say what happened.
 *
 * Lines go to the journal when systemd connected stderr to it, else to
 * syslog (with the facility chosen at log_init) or, on the
 * console, to stderr with a timestamp.  Every call preserves errno.
 * Neither the journal, nor syslog, nor a pipe on stderr is ever waited
 * for (log_sink.h): a stalled reader costs lines, counted and reported,
 * never the event loop.  A terminal or a file on stderr is written as is.
 * log_init ignores SIGPIPE: a reader that went costs lines, not the
 * process (child processes must restore it, as hooks.c does).
 * fatalx() exits; use it only before the event loop runs.  Before the loop
 * runs, lines may wait a bounded time for room (log_set_wait).
 */
#ifndef PGTRACK_LOG_H
#define PGTRACK_LOG_H

#include <stdbool.h>

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

void log_init(const char *ident, bool console, int facility);
/* The syslog socket log_init connects to (tests); _PATH_LOG, /dev/log, by default. */
void log_use_syslog_socket(const char *path);
void log_set_verbose(bool verbose);
/* Whether log_debug prints: callers skip formatting what would be dropped. */
bool log_debug_enabled(void);
void log_set_facility(int facility);
/*
 * Whether log_init found stderr connected to the journal ($JOURNAL_STREAM):
 * lines then go there, "<N>" priority first, whatever -l says, so that
 * journalctl -p filters them.
 */
bool log_to_journal(void);

/*
 * Until the event loop runs nothing is waiting on pgtrackd but the
 * operator, and the lines of a start that fails (its configuration's
 * errors, fatalx's reason) are the ones that must arrive: from now on,
 * until ms milliseconds have passed, a line waits for a stalled reader to
 * take it.  0 (the loop starts): never wait.
 */
void log_set_wait(int ms);
#define LOG_WAIT_BEFORE_LOOP_MS 1000

/* log_warn appends ": strerror(errno)"; the x variants do not. */
void log_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_warnx(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_notice(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_info(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_debug(const char *fmt, ...) PRINTF_LIKE(1, 2);
_Noreturn void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* The facilities a configuration may name, NULL-terminated (a CONF_CHOICE list). */
extern const char *const log_facility_names[];

/* Facility by name ("daemon", "local0".."local7"); -1 if unknown. */
int log_facility_from_name(const char *name);

#endif
