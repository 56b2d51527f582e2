/*
 * track_log: a line about a track, prefixed with its name
 * ('track "NAME": ...'), at one of the module ABI's levels.
 */
#ifndef PGTRACKD_TRACK_LOG_H
#define PGTRACKD_TRACK_LOG_H

#include <stdarg.h>

#include <pgtrackd/module.h>

#include "log.h"

void track_log_named(const char *name, enum pgtrackd_log_level level, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
void track_vlog_named(const char *name, enum pgtrackd_log_level level, const char *fmt,
		      va_list ap) PRINTF_LIKE(3, 0);

#endif
