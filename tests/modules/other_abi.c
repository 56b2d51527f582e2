/* A module built for a module ABI version this pgtrackd does not speak. */
#include <stddef.h>

#include <pgtrackd/module.h>

static int init(const struct pgtrackd_host *host, const struct pgtrackd_dict *config,
		void **state)
{
	(void)host;
	*state = NULL;
	return 0;
}

static int start(void *state)
{
	(void)state;
	return 0;
}

static void stop(void *state)
{
	(void)state;
}

static const struct pgtrackd_module module = {
	.abi_version = PGTRACKD_MODULE_ABI_VERSION + 1,
	.name = "from-the-future",
	.init = init,
	.start = start,
	.stop = stop,
	.destroy = stop,
};

PGTRACKD_MODULE_EXPORT const struct pgtrackd_module *pgtrackd_module_entry(void)
{
	return &module;
}
