/*
 * status_cmd: `pgtrackd --status [--json]`, asking the running daemon's
 * HTTP listener ([http] listen in its configuration) for GET /status and
 * printing a table of its tracks, or the JSON document as it came.
 *
 * A command, not the daemon: the one request blocks, bounded by a
 * timeout.  It goes to the first listen address (a wildcard 0.0.0.0 or
 * [::] is asked on loopback), numeric, so nothing is resolved.
 */
#ifndef PGTRACKD_STATUS_CMD_H
#define PGTRACKD_STATUS_CMD_H

#include <stdbool.h>

#include "trackd_config.h"

/* Exit statuses, besides 0 (answered) and 1 (the configuration cannot be read). */
#define STATUS_CMD_OFF 3	/* the configuration has no listener */
#define STATUS_CMD_NO_ANSWER 4	/* the daemon did not answer, or not with a status */

/* Prints the status (json: the raw document); returns the exit status. */
int status_cmd_run(const struct trackd_config *config, bool json, double timeout);

#endif
