/*
 * promtool.h: `promtool check metrics` on a text, for the unit tests of the
 * Prometheus output.  meson passes PROMTOOL (Debian's prometheus package);
 * without it the tests skip this check and say so.
 */
#ifndef PGTRACK_TEST_PROMTOOL_H
#define PGTRACK_TEST_PROMTOOL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* $PROMTOOL, or NULL when unset or empty. */
static inline const char *promtool_path(void)
{
	const char *p = getenv("PROMTOOL");

	return p && *p ? p : NULL;
}

/* promtool's exit status on text; 0 without promtool; -1 if it could not be run. */
static inline int promtool_check(const char *text)
{
	const char *promtool = promtool_path();
	char cmd[512];
	FILE *f;
	int st;

	if (!promtool)
		return 0;
	snprintf(cmd, sizeof(cmd), "'%s' check metrics", promtool);
	f = popen(cmd, "w");
	if (!f)
		return -1;
	fputs(text, f);
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
