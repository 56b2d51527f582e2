/*
 * A module that reports one fixed state, for tests/integration/test_modules.py.
 *
 * Built three times (tests/modules/meson.build): test_report_primary.so
 * reports PRIMARY and knows the key "primary_reason", test_report_standby.so
 * reports STANDBY and knows "standby_reason", test_report_resident.so
 * (which glibc never unloads) reports PRIMARY and knows "resident_reason";
 * the key's value, if set, is
 * the reason of the report.  Its start logs "module NAME started (REASON)"
 * even when the state does not change.  Two different files with different code: a
 * track that runs the other file's code shows it at once.
 *
 * test_report_abi2.so is the primary one built for module ABI 2 (no
 * describe, REPORT_ABI=2): pgtrackd still loads and runs it.  The others
 * (ABI 3) describe two facts: "module" (REPORT_NAME) and "reports" (how
 * many reports so far).
 *
 * Its constructor appends "REPORT_NAME\n" to the file named by the
 * environment variable TRACKD_TEST_MODULE_MARKER, if set (not PG...: the
 * tests pass no PG* variable on): a test sees whether the module's code
 * ran at all (a refused module's must not).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pgtrackd/module.h>

#define REPORT_KEY REPORT_NAME "_reason"

#ifndef REPORT_ABI
#define REPORT_ABI PGTRACKD_MODULE_ABI_VERSION
#endif

struct report {
	const struct pgtrackd_host *host;
	char reason[200];
	int64_t reports;
};

__attribute__((constructor)) static void mark(void)
{
	const char *path = getenv("TRACKD_TEST_MODULE_MARKER");
	ssize_t n;
	int fd;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	n = write(fd, REPORT_NAME "\n", strlen(REPORT_NAME "\n"));
	(void)n; /* nothing to do about it in a constructor */
	close(fd);
}

static int check_key(const char *key, const char *value, char *error, size_t size)
{
	(void)value;
	(void)error;
	(void)size;
	return strcmp(key, REPORT_KEY) == 0 ? 0 : -ENOENT;
}

static int init(const struct pgtrackd_host *host, const struct pgtrackd_dict *config,
		void **state)
{
	const char *reason = pgtrackd_dict_get(config, REPORT_KEY);
	struct report *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->host = host;
	/* The dictionary lasts only for init: the reason is kept. */
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "test module " REPORT_NAME);
	*state = r;
	return 0;
}

static int start(void *state)
{
	struct report *r = state;
	const char *reason = r->reason;

	r->host->log(r->host, PGTRACKD_LOG_INFO, "module %s started (%s)", REPORT_NAME, reason);
	r->host->report(r->host, REPORT_STATE, reason);
	r->reports++;
	return 0;
}

#if REPORT_ABI >= 3
static void describe(void *state, const struct pgtrackd_facts *out)
{
	const struct report *r = state;

	out->put_text(out, "module", REPORT_NAME);
	out->put_int(out, "reports", r->reports);
}
#endif

static void stop(void *state)
{
	(void)state;
}

static void destroy(void *state)
{
	free(state);
}

static const struct pgtrackd_module module = {
	.abi_version = REPORT_ABI,
	.name = "report-" REPORT_NAME,
	.check_key = check_key,
	.init = init,
	.start = start,
	.stop = stop,
	.destroy = destroy,
#if REPORT_ABI >= 3
	.describe = describe,
#endif
};

PGTRACKD_MODULE_EXPORT const struct pgtrackd_module *pgtrackd_module_entry(void)
{
	return &module;
}
