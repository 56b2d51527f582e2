/*
 * module_loader: finds, vets and loads probe modules with dlopen.
 *
 * The configured path is walked from / one component at a time, through
 * every symlink and its target: every directory on the way must be owned
 * by root or by the user pgtrackd runs as and not writable by group or
 * others (a world-writable directory with the sticky bit, like /tmp, is
 * accepted: nobody else can replace what is in it), every symlink must be
 * owned by root or by that user, and so must the module file, not
 * writable by group or others.  A refusal names the path configured, the
 * component and the reason.  The file so reached is opened without
 * following a symlink and that descriptor is what
 * dlopen(RTLD_NOW | RTLD_LOCAL) loads, as /proc/self/fd/N.
 *
 * The descriptor stays open for as long as glibc has the object, so that
 * no other file is ever known to glibc by the same name: one file loaded
 * twice (two tracks, or a track and the configuration check) shares one
 * handle, two files never do.  A file without the entry point, or built
 * for an ABI version outside PGTRACKD_MODULE_ABI_VERSION_MIN to
 * PGTRACKD_MODULE_ABI_VERSION, is refused too.  A module built for an
 * older version keeps its meaning: only members added later are not read
 * from it (module_describe, track.c).
 */
#ifndef PGTRACKD_MODULE_LOADER_H
#define PGTRACKD_MODULE_LOADER_H

#include <stddef.h>

#include <pgtrackd/module.h>

struct module_object;

struct loaded_module {
	struct module_object *object; /* the file, shared by its loaded_modules */
	const struct pgtrackd_module *ops;
	unsigned refs; /* the configuration's, and each track's running it */
	char path[]; /* as configured */
};

/* Its describe callback if it was built for an ABI that has one (3 and later), else NULL. */
static inline void (*module_describe(const struct pgtrackd_module *ops))(void *,
									 const struct pgtrackd_facts *)
{
	return ops->abi_version >= 3 ? ops->describe : NULL;
}

/* NULL with a sentence in why. */
struct loaded_module *module_load(const char *path, char *why, size_t why_size);
/* One more user of m (a track running the module its configuration loaded); returns m. */
struct loaded_module *module_ref(struct loaded_module *m);
/* Drops a user; the last unloads the file once nothing else uses it; accepts NULL. */
void module_unload(struct loaded_module *m);

#endif
