/* pg_log: the probe's log lines go through its host, which names the track. */
#ifndef PGTRACKD_PG_LOG_H
#define PGTRACKD_PG_LOG_H

#include <pgtrackd/module.h>

#define pg_log(host, level, ...) (host)->log((host), PGTRACKD_LOG_##level, __VA_ARGS__)

#endif
