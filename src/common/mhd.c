#include "mhd.h"

#include <dlfcn.h>
#include <stdio.h>

static struct mhd_api api;
static void *handle;

/* dlsym into a function pointer (POSIX guarantees the conversion works). */
#define LOAD(field, name)                                                                   \
	do {                                                                                \
		*(void **)(&api.field) = dlsym(handle, name);                               \
		if (!api.field) {                                                           \
			missing = name;                                                     \
			goto fail;                                                          \
		}                                                                           \
	} while (0)

const struct mhd_api *mhd_load(char *err, size_t errlen)
{
	const char *missing = NULL;

	if (handle)
		return &api;
	handle = dlopen(MHD_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		snprintf(err, errlen, "cannot load %s (libmicrohttpd12): %s", MHD_LIBRARY, dlerror());
		return NULL;
	}
	LOAD(start_daemon, "MHD_start_daemon");
	LOAD(stop_daemon, "MHD_stop_daemon");
	LOAD(run, "MHD_run");
	LOAD(get_timeout, "MHD_get_timeout");
	LOAD(get_daemon_info, "MHD_get_daemon_info");
	LOAD(get_connection_info, "MHD_get_connection_info");
	LOAD(lookup_connection_value, "MHD_lookup_connection_value");
	LOAD(create_response_from_buffer, "MHD_create_response_from_buffer");
	LOAD(add_response_header, "MHD_add_response_header");
	LOAD(queue_response, "MHD_queue_response");
	LOAD(destroy_response, "MHD_destroy_response");
	return &api;
fail:
	snprintf(err, errlen, "%s has no %s", MHD_LIBRARY, missing);
	dlclose(handle);
	handle = NULL;
	return NULL;
}
