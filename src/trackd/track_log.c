#include "track_log.h"

#include <stdio.h>

void track_vlog_named(const char *name, enum pgtrackd_log_level level, const char *fmt,
		      va_list ap)
{
	char line[2048];

	/* The probes say something at debug level every interval. */
	if (level >= PGTRACKD_LOG_DEBUG && !log_debug_enabled())
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	switch (level) {
	case PGTRACKD_LOG_ERROR:
		log_error("track \"%s\": %s", name, line);
		break;
	case PGTRACKD_LOG_WARNING:
		log_warnx("track \"%s\": %s", name, line);
		break;
	case PGTRACKD_LOG_NOTICE:
		log_notice("track \"%s\": %s", name, line);
		break;
	case PGTRACKD_LOG_INFO:
		log_info("track \"%s\": %s", name, line);
		break;
	default:
		log_debug("track \"%s\": %s", name, line);
		break;
	}
}

void track_log_named(const char *name, enum pgtrackd_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	track_vlog_named(name, level, fmt, ap);
	va_end(ap);
}
