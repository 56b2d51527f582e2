#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "pgtrack";
static bool log_console = true;
static bool log_journal;
static bool log_verbose;

/* $JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected to stderr. */
static bool stderr_is_journal(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!stream || sscanf(stream, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, bool console, int facility)
{
	log_ident = ident;
	log_journal = stderr_is_journal();
	log_console = console || log_journal;
	if (!log_console)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

bool log_to_journal(void)
{
	return log_journal;
}

void log_set_facility(int facility)
{
	if (log_console)
		return;
	closelog();
	openlog(log_ident, LOG_PID | LOG_NDELAY, facility);
}

void log_set_verbose(bool verbose)
{
	log_verbose = verbose;
}

bool log_debug_enabled(void)
{
	return log_verbose;
}


static const char *level_name(int priority)
{
	switch (priority) {
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/*
 * The journal's stream, written without waiting: a stalled journald (a
 * restart, a slow disk) must not stop the event loop once the socket's
 * buffer is full.  A line goes whole or not at all; the unsent tail of a
 * line the socket took in part goes first next time, and lines that found
 * no room are counted and reported once the journal takes lines again.
 * send() with MSG_DONTWAIT leaves the descriptor blocking for whoever
 * shares it (a hook's child process).
 */
static struct {
	char pending[4096];
	size_t pending_len;
	unsigned long dropped;
} journal_out;

/* Bytes of buf written, without waiting (a stream other than a socket: waiting). */
static size_t send_some(const char *buf, size_t len)
{
	size_t sent = 0;

	while (sent < len) {
		ssize_t n = send(STDERR_FILENO, buf + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(STDERR_FILENO, buf + sent, len - sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	return sent;
}

/* false: nothing of buf went; a part that did leaves the rest pending */
static bool journal_put(const char *buf, size_t len)
{
	size_t sent = send_some(buf, len);

	if (sent == 0)
		return false;
	if (sent < len) {
		memcpy(journal_out.pending, buf + sent, len - sent);
		journal_out.pending_len = len - sent;
	}
	return true;
}

static bool journal_flush_pending(void)
{
	size_t sent = send_some(journal_out.pending, journal_out.pending_len);

	journal_out.pending_len -= sent;
	memmove(journal_out.pending, journal_out.pending + sent, journal_out.pending_len);
	return journal_out.pending_len == 0;
}

static void journal_line(const char *line, size_t len)
{
	if (journal_out.pending_len && !journal_flush_pending()) {
		journal_out.dropped++;
		return;
	}
	if (journal_out.dropped) {
		char note[160];
		int n = snprintf(note, sizeof(note),
				 "<%d>warning: %lu log lines dropped: the journal did not take them in time\n",
				 LOG_WARNING, journal_out.dropped);

		if (!journal_put(note, (size_t)n)) {
			journal_out.dropped++;
			return;
		}
		journal_out.dropped = 0;
		if (journal_out.pending_len) {
			/* the note's tail waits: this line has no room behind it */
			journal_out.dropped = 1;
			return;
		}
	}
	if (!journal_put(line, len))
		journal_out.dropped++;
}

PRINTF_LIKE(3, 0)
static void vlog(int priority, const char *errstr, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!log_console) {
		if (errstr)
			syslog(priority, "%s: %s", msg, errstr);
		else
			syslog(priority, "%s", msg);
		return;
	}

	if (log_journal) {
		/* journald reads the priority from the "<N>" prefix and stamps the line itself. */
		char line[sizeof(msg) + 256];
		int n = snprintf(line, sizeof(line), "<%d>%s: %s%s%s\n", priority, level_name(priority),
				 msg, errstr ? ": " : "", errstr ? errstr : "");

		if (n >= (int)sizeof(line)) {
			line[sizeof(line) - 2] = '\n';
			n = (int)sizeof(line) - 1;
		}
		if (n > 0)
			journal_line(line, (size_t)n);
		return;
	}

	struct timespec now;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s: %s: %s%s%s\n", stamp, now.tv_nsec / 1000000L,
		log_ident, level_name(priority), msg, errstr ? ": " : "",
		errstr ? errstr : "");
	fflush(stderr);
}

#define LOG_BODY(priority, errstr)                                             \
	do {                                                                   \
		int saved_errno = errno;                                       \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(priority, errstr, fmt, ap);                               \
		va_end(ap);                                                    \
		errno = saved_errno;                                           \
	} while (0)

void log_error(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, NULL);
}

void log_warn(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, strerror(errno));
}

void log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, NULL);
}

void log_notice(const char *fmt, ...)
{
	LOG_BODY(LOG_NOTICE, NULL);
}

void log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, NULL);
}

void log_debug(const char *fmt, ...)
{
	if (!log_verbose)
		return;
	LOG_BODY(LOG_DEBUG, NULL);
}

void fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, NULL);
	exit(1);
}

const char *const log_facility_names[] = {
	"daemon", "user", "local0", "local1", "local2",
	"local3", "local4", "local5", "local6", "local7", NULL,
};

static const int facility_codes[] = {
	LOG_DAEMON, LOG_USER, LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2,
	LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7,
};

int log_facility_from_name(const char *name)
{
	for (size_t i = 0; log_facility_names[i]; i++)
		if (strcasecmp(name, log_facility_names[i]) == 0)
			return facility_codes[i];
	return -1;
}
