#include "module_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool trusted_owner(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == geteuid();
}

static bool writable_by_others(const struct stat *st)
{
	return st->st_mode & (S_IWGRP | S_IWOTH);
}

/* Checks the open module file and every directory above its real path. */
static int vet(const char *real, int fd, char *why, size_t size)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	if (fstat(fd, &st) < 0) {
		snprintf(why, size, "%s: %s", real, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, size, "%s: not a regular file", real);
		return -EINVAL;
	}
	if (!trusted_owner(&st)) {
		snprintf(why, size, "%s: refused: owned by uid %u, not by root or by the user "
				    "pgtrackd runs as (uid %u)",
			 real, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (writable_by_others(&st)) {
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
		if (!trusted_owner(&st)) {
			snprintf(why, size, "%s: refused: directory %s is owned by uid %u, not by root "
					    "or by the user pgtrackd runs as (uid %u)",
				 real, dir, (unsigned)st.st_uid, (unsigned)geteuid());
			return -EPERM;
		}
		/* A sticky directory (/tmp) lets nobody else replace what is in it. */
		if (writable_by_others(&st) && !(st.st_mode & S_ISVTX)) {
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
	char by_fd[64];
	void *handle;
	int fd;

	if (!realpath(path, real)) {
		snprintf(why, size, "module %s: %s", path, strerror(errno));
		return NULL;
	}
	/*
	 * Vet the file we opened and load that very file through /proc: nobody
	 * can swap it between the checks and dlopen, and a module rebuilt at
	 * the same path (a new inode) is loaded anew instead of glibc handing
	 * back the copy it already has under that name.
	 */
	fd = open(real, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, size, "module %s: %s", path, strerror(errno));
		return NULL;
	}
	if (vet(real, fd, why, size) < 0) {
		char detail[PATH_MAX + 200];

		close(fd);
		snprintf(detail, sizeof(detail), "%s", why);
		snprintf(why, size, "module %s", detail);
		return NULL;
	}
	snprintf(by_fd, sizeof(by_fd), "/proc/self/fd/%d", fd);
	handle = dlopen(by_fd, RTLD_NOW | RTLD_LOCAL);
	close(fd);
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
