#include "log.h"
#include "log_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "pgtrack";
static bool log_console = true;
static bool log_journal;
static bool log_verbose;
static int log_facility = LOG_DAEMON;
static const char *syslog_socket = _PATH_LOG;
static struct log_sink err_out = { .fd = -1 };    /* stderr: the journal or the console */
static struct log_sink syslog_out = { .fd = -1 };
static bool log_waits;                   /* before the event loop: see log_set_wait */
static struct timespec log_wait_deadline;
static struct {
	int fd;                 /* our own opening of the pipe on stderr, or -1 */
	bool tried;             /* opening the pipe at dev/ino was tried (fd -1: it failed) */
	dev_t dev;
	ino_t ino;
} err_pipe = { .fd = -1 };

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

/* snprintf's n for a line that must end with a newline, even when cut. */
static size_t line_length(char *buf, size_t size, int n)
{
	if (n < 0)
		return 0;
	if ((size_t)n >= size) {
		buf[size - 2] = '\n';
		return size - 1;
	}
	return (size_t)n;
}

/* journald reads the priority from the "<N>" prefix and stamps the line itself. */
static size_t journal_format(char *buf, size_t size, int priority, const char *text)
{
	return line_length(buf, size, snprintf(buf, size, "<%d>%s: %s\n", priority,
					       level_name(priority), text));
}

static size_t console_format(char *buf, size_t size, int priority, const char *text)
{
	struct timespec now;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	return line_length(buf, size, snprintf(buf, size, "%s.%03ld %s: %s: %s\n", stamp,
					       now.tv_nsec / 1000000L, log_ident,
					       level_name(priority), text));
}

static size_t journal_note(char *buf, size_t size, unsigned long dropped)
{
	char text[128];

	snprintf(text, sizeof(text), "%lu log lines dropped: the journal did not take them in time",
		 dropped);
	return journal_format(buf, size, LOG_WARNING, text);
}

static size_t console_note(char *buf, size_t size, unsigned long dropped)
{
	char text[128];

	snprintf(text, sizeof(text),
		 "%lu log lines dropped: standard error did not take them in time", dropped);
	return console_format(buf, size, LOG_WARNING, text);
}

/*
 * The console's descriptor.  A pipe on stderr (a supervisor's, a
 * container runtime's) gets a file description of our own, opened
 * non-blocking through /proc: a reader that stalls costs lines, not the
 * event loop, and the shared description stays blocking for whoever else
 * writes to it.  Opened again when stderr is another file than before.
 * Where that opening fails (no /proc mounted), the shared pipe is written
 * only while poll() says it has room (*room_first).  A terminal or a file
 * is written as it is, which may wait.
 */
static int console_fd(bool *room_first)
{
	struct stat st;

	*room_first = false;
	if (fstat(STDERR_FILENO, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		if (err_pipe.fd >= 0)
			close(err_pipe.fd);
		err_pipe.fd = -1;
		err_pipe.tried = false;
		return STDERR_FILENO;
	}
	if (!err_pipe.tried || err_pipe.dev != st.st_dev || err_pipe.ino != st.st_ino) {
		if (err_pipe.fd >= 0)
			close(err_pipe.fd);
		err_pipe.fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		err_pipe.tried = true;
		err_pipe.dev = st.st_dev;
		err_pipe.ino = st.st_ino;
	}
	*room_first = err_pipe.fd < 0;
	return err_pipe.fd >= 0 ? err_pipe.fd : STDERR_FILENO;
}

/* A syslog(3) line: "<PRI>Mmm dd hh:mm:ss ident[pid]: text". */
static size_t syslog_format(char *buf, size_t size, int priority, const char *text)
{
	time_t now = time(NULL);
	struct tm tm;
	char stamp[32];
	int n;

	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	n = snprintf(buf, size, "<%d>%s %s[%ld]: %s", priority | log_facility, stamp, log_ident,
		     (long)getpid(), text);
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

static size_t syslog_note(char *buf, size_t size, unsigned long dropped)
{
	char text[128];

	snprintf(text, sizeof(text), "%lu log lines dropped: syslog did not take them in time",
		 dropped);
	return syslog_format(buf, size, LOG_WARNING, text);
}

void log_use_syslog_socket(const char *path)
{
	syslog_socket = path;
}

void log_init(const char *ident, bool console, int facility)
{
	signal(SIGPIPE, SIG_IGN); /* a log reader that went costs lines, not the process */
	log_ident = ident;
	log_journal = stderr_is_journal();
	log_console = console || log_journal;
	log_facility = facility;
	log_sink_finish(&syslog_out);
	log_sink_init_fd(&err_out, STDERR_FILENO, log_journal ? journal_note : console_note);
	if (!log_console)
		log_sink_init_path(&syslog_out, syslog_socket, syslog_note); /* else at the first line */
}

void log_set_wait(int ms)
{
	log_waits = ms > 0;
	clock_gettime(CLOCK_MONOTONIC, &log_wait_deadline);
	log_wait_deadline.tv_sec += ms / 1000;
	log_wait_deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (log_wait_deadline.tv_nsec >= 1000000000L) {
		log_wait_deadline.tv_sec++;
		log_wait_deadline.tv_nsec -= 1000000000L;
	}
}

bool log_to_journal(void)
{
	return log_journal;
}

void log_set_facility(int facility)
{
	log_facility = facility;
}

void log_set_verbose(bool verbose)
{
	log_verbose = verbose;
}

bool log_debug_enabled(void)
{
	return log_verbose;
}

PRINTF_LIKE(3, 0)
static void vlog(int priority, const char *errstr, const char *fmt, va_list ap)
{
	char msg[2048], text[sizeof(msg) + 256], line[sizeof(text) + 128];
	struct log_sink *sink = log_console ? &err_out : &syslog_out;
	size_t len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(text, sizeof(text), "%s%s%s", msg, errstr ? ": " : "", errstr ? errstr : "");
	if (!log_console)
		len = syslog_format(line, sizeof(line), priority, text);
	else if (log_journal)
		len = journal_format(line, sizeof(line), priority, text);
	else
		len = console_format(line, sizeof(line), priority, text);
	if (log_console && !log_journal) {
		bool room_first;
		int fd = console_fd(&room_first);

		log_sink_set_fd(&err_out, fd, room_first);
	}
	if (log_waits)
		log_sink_wait_room(sink, &log_wait_deadline);
	log_sink_write(sink, line, len);
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
