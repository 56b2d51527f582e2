#include "module_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether st may stand in the path of code we load. */
static const char *unsafe(const struct stat *st, bool is_dir)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return is_dir ? NULL : "owner";
	if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
		return NULL;
	if (is_dir && (st->st_mode & S_ISVTX))
		return NULL;
	return "writable";
}

static int vet(const char *real, char *why, size_t size)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *bad;
	char *slash;

	if (stat(real, &st) < 0) {
		snprintf(why, size, "%s: %s", real, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, size, "%s: not a regular file", real);
		return -EINVAL;
	}
	bad = unsafe(&st, false);
	if (bad && strcmp(bad, "owner") == 0) {
		snprintf(why, size, "%s: refused: owned by uid %u, not by root or by the user "
				    "pgtrackd runs as (uid %u)",
			 real, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (bad) {
		snprintf(why, size, "%s: refused: writable by group or others (mode %04o)", real,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	snprintf(dir, sizeof(dir), "%s", real);
	while ((slash = strrchr(dir, '/'))) {
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(dir, &st) < 0) {
			snprintf(why, size, "%s: directory %s: %s", real, dir, strerror(errno));
			return -errno;
		}
		if (unsafe(&st, true)) {
			snprintf(why, size, "%s: refused: directory %s is writable by group or others "
					    "(mode %04o)",
				 real, dir, (unsigned)(st.st_mode & 07777));
			return -EPERM;
		}
		if (strcmp(dir, "/") == 0)
			break;
	}
	return 0;
}

struct loaded_module *module_load(const char *path, char *why, size_t size)
{
	const struct pgtrackd_module *(*entry)(void);
	const struct pgtrackd_module *ops;
	struct loaded_module *m;
	char real[PATH_MAX];
	void *handle;

	if (!realpath(path, real)) {
		snprintf(why, size, "module %s: %s", path, strerror(errno));
		return NULL;
	}
	if (vet(real, why, size) < 0) {
		char detail[PATH_MAX + 200];

		snprintf(detail, sizeof(detail), "%s", why);
		snprintf(why, size, "module %s", detail);
		return NULL;
	}
	handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		snprintf(why, size, "module %s: cannot load: %s", path, dlerror());
		return NULL;
	}
	*(void **)(&entry) = dlsym(handle, PGTRACKD_MODULE_ENTRY_NAME);
	if (!entry) {
		snprintf(why, size, "module %s: no %s symbol: not a pgtrackd module", path,
			 PGTRACKD_MODULE_ENTRY_NAME);
		goto close_handle;
	}
	ops = entry();
	if (!ops) {
		snprintf(why, size, "module %s: %s returned nothing", path,
			 PGTRACKD_MODULE_ENTRY_NAME);
		goto close_handle;
	}
	if (ops->abi_version != PGTRACKD_MODULE_ABI_VERSION) {
		snprintf(why, size, "module %s: built for module ABI version %u, this pgtrackd "
				    "speaks version %u",
			 path, ops->abi_version, PGTRACKD_MODULE_ABI_VERSION);
		goto close_handle;
	}
	if (!ops->init || !ops->start || !ops->stop || !ops->destroy) {
		snprintf(why, size, "module %s: incomplete: init, start, stop and destroy are "
				    "required", path);
		goto close_handle;
	}
	m = malloc(sizeof(*m) + strlen(path) + 1);
	if (!m) {
		snprintf(why, size, "module %s: out of memory", path);
		goto close_handle;
	}
	m->handle = handle;
	m->ops = ops;
	strcpy(m->path, path);
	return m;

close_handle:
	dlclose(handle);
	return NULL;
}

void module_unload(struct loaded_module *m)
{
	if (!m)
		return;
	dlclose(m->handle);
	free(m);
}
