/*
 * module_loader: finds, vets and loads probe modules with dlopen.
 *
 * Refuses, naming the path and the reason: a module file or any directory
 * above it that is writable by group or others (a world-writable
 * directory with the sticky bit, like /tmp, is accepted: nobody else can
 * replace what is in it) or not owned by root or by the user pgtrackd
 * runs as, a file without the entry point, and a module built for another
 * ABI version.  The vetted file is opened once and that descriptor is
 * what dlopen(RTLD_NOW | RTLD_LOCAL) loads.
 */
#ifndef PGTRACKD_MODULE_LOADER_H
#define PGTRACKD_MODULE_LOADER_H

#include <stddef.h>

#include <pgtrackd/module.h>

struct loaded_module {
	void *handle;
	const struct pgtrackd_module *ops;
	char path[];
};

/* NULL with a sentence in why. */
struct loaded_module *module_load(const char *path, char *why, size_t why_size);
/* dlclose; accepts NULL. */
void module_unload(struct loaded_module *m);

#endif
