#include "module_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Symbolic links followed on the way to one module, as the kernel's ELOOP. */
#define MAX_SYMLINKS 40

/*
 * One module file as glibc knows it.  glibc finds an object it already has
 * by the name given to dlopen (or by st_dev/st_ino), so the name
 * /proc/self/fd/N must stay bound to this very file for as long as glibc
 * may have an object by it: fd is held open until glibc let go of it.
 */
struct module_object {
	struct module_object *next;
	dev_t dev;
	ino_t ino;
	int fd;         /* the vetted file */
	unsigned refs;  /* loaded_modules using handle */
	void *handle;   /* NULL once refs dropped to 0 (a resident object) */
	char name[32];  /* /proc/self/fd/<fd>, the name glibc knows it by */
};

static struct module_object *objects;

static bool trusted_owner(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == geteuid();
}

static bool writable_by_others(const struct stat *st)
{
	return st->st_mode & (S_IWGRP | S_IWOTH);
}

static int refuse_owner(const char *path, const char *what, const char *name,
			const struct stat *st, char *why, size_t size)
{
	snprintf(why, size, "module %s: refused: %s%s%sowned by uid %u, not by root or by the "
			    "user pgtrackd runs as (uid %u)",
		 path, what, name, *name ? " is " : "", (unsigned)st->st_uid, (unsigned)geteuid());
	return -EPERM;
}

static int refuse_mode(const char *path, const char *what, const char *name,
		       const struct stat *st, char *why, size_t size)
{
	snprintf(why, size, "module %s: refused: %s%s%swritable by group or others (mode %04o)",
		 path, what, name, *name ? " is " : "", (unsigned)(st->st_mode & 07777));
	return -EPERM;
}

static int fail(const char *path, int err, char *why, size_t size)
{
	snprintf(why, size, "module %s: %s", path, strerror(err));
	return -err;
}

/* A directory on the way: ours or root's, and nobody else can change what is in it. */
static int vet_directory(const char *path, const char *name, int fd, char *why, size_t size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fail(path, errno, why, size);
	if (!trusted_owner(&st))
		return refuse_owner(path, "directory ", name, &st, why, size);
	/* A sticky directory (/tmp) lets nobody else replace what is in it. */
	if (writable_by_others(&st) && !(st.st_mode & S_ISVTX))
		return refuse_mode(path, "directory ", name, &st, why, size);
	return 0;
}

/* The file itself; named only if the configured path is not its name. */
static int vet_file(const char *path, const char *name, const struct stat *st, char *why,
		    size_t size)
{
	bool same = strcmp(path, name) == 0;

	if (!S_ISREG(st->st_mode)) {
		if (same)
			snprintf(why, size, "module %s: not a regular file", path);
		else
			snprintf(why, size, "module %s: %s is not a regular file", path, name);
		return -EINVAL;
	}
	if (!trusted_owner(st))
		return refuse_owner(path, same ? "" : "file ", same ? "" : name, st, why, size);
	if (writable_by_others(st))
		return refuse_mode(path, same ? "" : "file ", same ? "" : name, st, why, size);
	return 0;
}

static int open_root(const char *path, char *why, size_t size)
{
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail(path, errno, why, size);
	if (vet_directory(path, "/", fd, why, size) < 0) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* dir/comp into buf; "/" has no trailing slash to add. */
static int join(char *buf, size_t size, const char *dir, const char *comp, size_t len)
{
	int n = snprintf(buf, size, "%s%s%.*s", dir, strcmp(dir, "/") == 0 ? "" : "/", (int)len,
			 comp);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Where a walk of a module's path is: the directory vetted last, and what is left. */
struct walk {
	const char *path; /* as configured, for messages */
	char *why;
	size_t size;
	char rest[PATH_MAX];  /* the components still to walk */
	char cur[PATH_MAX];   /* the directory dirfd is, without a symlink */
	char next[PATH_MAX];  /* cur/comp */
	char comp[NAME_MAX + 1];
	int dirfd;
	int links;            /* symlinks followed */
};

/* "..": the directory above cur, vetted. */
static int walk_up(struct walk *w)
{
	char *slash = strrchr(w->cur, '/');
	int nfd = openat(w->dirfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (nfd < 0)
		return fail(w->path, errno, w->why, w->size);
	close(w->dirfd);
	w->dirfd = nfd;
	/* cur holds no symlink: its parent is the directory above */
	if (slash == w->cur)
		slash[1] = '\0';
	else
		*slash = '\0';
	return vet_directory(w->path, w->cur, w->dirfd, w->why, w->size);
}

/* A symlink: vetted by its owner, then its target goes before what was left. */
static int walk_symlink(struct walk *w, const struct stat *st, bool last)
{
	char target[PATH_MAX];
	ssize_t n;

	/* Its mode means nothing; its owner and directory do. */
	if (!trusted_owner(st))
		return refuse_owner(w->path, "symlink ", w->next, st, w->why, w->size);
	if (++w->links > MAX_SYMLINKS)
		return fail(w->path, ELOOP, w->why, w->size);
	n = readlinkat(w->dirfd, w->comp, target, sizeof(target));
	if (n < 0 || (size_t)n == sizeof(target))
		return fail(w->path, n < 0 ? errno : ENAMETOOLONG, w->why, w->size);
	if (n == 0)
		return fail(w->path, ENOENT, w->why, w->size);
	/* the target, then what was left after the link */
	if ((size_t)n + 1 + strlen(w->rest) >= sizeof(w->rest))
		return fail(w->path, ENAMETOOLONG, w->why, w->size);
	memmove(w->rest + n + 1, w->rest, strlen(w->rest) + 1);
	memcpy(w->rest, target, n);
	w->rest[n] = '/';
	if (last)
		w->rest[n] = '\0';
	if (target[0] == '/') {
		close(w->dirfd);
		strcpy(w->cur, "/");
		w->dirfd = open_root(w->path, w->why, w->size);
		if (w->dirfd < 0)
			return w->dirfd;
	}
	return 0;
}

/* The last component: the module file, opened and vetted; its descriptor. */
static int walk_file(struct walk *w, struct stat *st)
{
	int fd, r;

	if (!S_ISREG(st->st_mode))
		return vet_file(w->path, w->next, st, w->why, w->size); /* refuses it */
	/* O_NONBLOCK: should it have become a FIFO, do not wait on it */
	fd = openat(w->dirfd, w->comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) < 0) {
		r = fail(w->path, errno, w->why, w->size);
		if (fd >= 0)
			close(fd);
		return r;
	}
	r = vet_file(w->path, w->next, st, w->why, w->size);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* A directory on the way: entered, and vetted. */
static int walk_into(struct walk *w, const struct stat *st)
{
	int nfd;

	if (!S_ISDIR(st->st_mode))
		return fail(w->path, ENOTDIR, w->why, w->size);
	nfd = openat(w->dirfd, w->comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (nfd < 0)
		return fail(w->path, errno, w->why, w->size);
	close(w->dirfd);
	w->dirfd = nfd;
	strcpy(w->cur, w->next);
	return vet_directory(w->path, w->cur, w->dirfd, w->why, w->size);
}

/*
 * The next component of w->rest into w->comp; *last: nothing follows.
 * 1 for a component, 0 when the path ends on a directory, or -errno.
 */
static int walk_next(struct walk *w, bool *last)
{
	const char *p;
	size_t len;

	for (p = w->rest; *p == '/'; p++)
		;
	if (!*p) {
		if (strcmp(w->cur, w->path) == 0)
			snprintf(w->why, w->size, "module %s: not a regular file", w->path);
		else
			snprintf(w->why, w->size, "module %s: %s is not a regular file", w->path,
				 w->cur);
		return -EINVAL;
	}
	len = strcspn(p, "/");
	if (len > NAME_MAX)
		return fail(w->path, ENAMETOOLONG, w->why, w->size);
	memcpy(w->comp, p, len);
	w->comp[len] = '\0';
	p += len;
	*last = !p[strspn(p, "/")];
	memmove(w->rest, p, strlen(p) + 1);
	return 1;
}

/* One step of the walk: 0 to go on, a descriptor of the module file, or -errno. */
static int walk_step(struct walk *w, struct stat *st)
{
	bool last = false;
	int r = walk_next(w, &last);

	if (r < 0)
		return r;
	if (strcmp(w->comp, ".") == 0)
		return 0;
	if (strcmp(w->comp, "..") == 0)
		return walk_up(w);
	r = join(w->next, sizeof(w->next), w->cur, w->comp, strlen(w->comp));
	if (r < 0 || fstatat(w->dirfd, w->comp, st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(w->path, r < 0 ? -r : errno, w->why, w->size);
	if (S_ISLNK(st->st_mode))
		return walk_symlink(w, st, last);
	if (last) {
		r = walk_file(w, st);
		/* 0 is a descriptor here, not "go on": never stdin for a daemon, but say so */
		return r == 0 ? INT_MAX : r;
	}
	return walk_into(w, st);
}

/*
 * Walks path from / one component at a time, as OpenSSH's safe_path does
 * but through symlinks too: every directory walked through and every
 * symlink met must be root's or ours, no directory writable by others
 * unless sticky, and each symlink's target is walked the same way.  Each
 * step goes through a descriptor of the directory just vetted (openat with
 * O_NOFOLLOW), so nothing can be swapped in between; the module file is
 * opened last, vetted with fstat, and its descriptor returned.
 */
static int open_vetted(const char *path, struct stat *st, char *why, size_t size)
{
	static struct walk w; /* large: not on the stack */
	int r;

	if (path[0] != '/') {
		snprintf(why, size, "module %s: not an absolute path", path);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(w.rest))
		return fail(path, ENAMETOOLONG, why, size);
	w = (struct walk){ .path = path, .why = why, .size = size, .cur = "/" };
	strcpy(w.rest, path);
	w.dirfd = open_root(path, why, size);
	if (w.dirfd < 0)
		return w.dirfd;
	do
		r = walk_step(&w, st);
	while (r == 0);
	/* walk_symlink may have failed to reopen / */
	if (w.dirfd >= 0)
		close(w.dirfd);
	return r == INT_MAX ? 0 : r;
}

/* The name glibc filed handle under. */
static const char *object_name(void *handle)
{
	struct link_map *map;

	if (dlinfo(handle, RTLD_DI_LINKMAP, &map) < 0 || !map->l_name)
		return "";
	return map->l_name;
}

static void object_release(struct module_object *o)
{
	struct module_object **pp;
	void *still;

	if (--o->refs > 0)
		return;
	dlclose(o->handle);
	o->handle = NULL;
	/*
	 * An object glibc keeps (one marked nodelete) stays known by its name:
	 * keep that name bound to this file, and use it again for this file.
	 */
	still = dlopen(o->name, RTLD_LAZY | RTLD_NOLOAD);
	if (still) {
		dlclose(still);
		return;
	}
	for (pp = &objects; *pp != o; pp = &(*pp)->next)
		;
	*pp = o->next;
	close(o->fd);
	free(o);
}

/* The handle of the file open on fd (which this takes), loaded once per file. */
static struct module_object *object_get(const char *path, int fd, const struct stat *st,
					char *why, size_t size)
{
	struct module_object *o;
	void *handle;

	for (o = objects; o; o = o->next)
		if (o->dev == st->st_dev && o->ino == st->st_ino)
			break;
	if (o) {
		/* the same file: o->fd keeps its name bound, this one is not needed */
		close(fd);
		if (!o->handle) {
			o->handle = dlopen(o->name, RTLD_NOW | RTLD_LOCAL);
			if (!o->handle) {
				snprintf(why, size, "module %s: cannot load: %s", path, dlerror());
				return NULL;
			}
		}
		o->refs++;
		return o;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(why, size, "module %s: out of memory", path);
		goto close_fd;
	}
	o->dev = st->st_dev;
	o->ino = st->st_ino;
	o->fd = fd;
	snprintf(o->name, sizeof(o->name), "/proc/self/fd/%d", fd);
	/*
	 * Nothing of ours goes by this name (each of our objects holds its
	 * descriptor open) and we have no object of this file: anything glibc
	 * already has under it is not the file vetted.  Refuse rather than
	 * run it.
	 */
	handle = dlopen(o->name, RTLD_LAZY | RTLD_NOLOAD);
	if (handle) {
		snprintf(why, size, "module %s: refused: the dynamic loader already has an object "
				    "named %s or loaded from the same file (%s), not loaded by "
				    "pgtrackd",
			 path, o->name, object_name(handle));
		dlclose(handle);
		goto free_object;
	}
	handle = dlopen(o->name, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		snprintf(why, size, "module %s: cannot load: %s", path, dlerror());
		goto free_object;
	}
	if (strcmp(object_name(handle), o->name) != 0) {
		snprintf(why, size, "module %s: refused: the dynamic loader handed back %s, not "
				    "the file vetted (%s)",
			 path, object_name(handle), o->name);
		dlclose(handle);
		goto free_object;
	}
	o->handle = handle;
	o->refs = 1;
	o->next = objects;
	objects = o;
	return o;

free_object:
	free(o);
close_fd:
	close(fd);
	return NULL;
}

struct loaded_module *module_load(const char *path, char *why, size_t size)
{
	const struct pgtrackd_module *(*entry)(void);
	const struct pgtrackd_module *ops;
	struct module_object *object;
	struct loaded_module *m;
	struct stat st;
	int fd;

	/*
	 * Vet the configured path and load the very file vetted, through its
	 * descriptor: nobody can swap it between the checks and dlopen, and a
	 * module rebuilt at the same path (a new inode) is loaded anew.
	 */
	fd = open_vetted(path, &st, why, size);
	if (fd < 0)
		return NULL;
	object = object_get(path, fd, &st, why, size);
	if (!object)
		return NULL;
	*(void **)(&entry) = dlsym(object->handle, PGTRACKD_MODULE_ENTRY_NAME);
	if (!entry) {
		snprintf(why, size, "module %s: no %s symbol: not a pgtrackd module", path,
			 PGTRACKD_MODULE_ENTRY_NAME);
		goto release;
	}
	ops = entry();
	if (!ops) {
		snprintf(why, size, "module %s: %s returned nothing", path,
			 PGTRACKD_MODULE_ENTRY_NAME);
		goto release;
	}
	/* Versions only ever added members at the end: the older ones still load. */
	if (ops->abi_version < PGTRACKD_MODULE_ABI_VERSION_MIN ||
	    ops->abi_version > PGTRACKD_MODULE_ABI_VERSION) {
		snprintf(why, size, "module %s: built for module ABI version %u, this pgtrackd "
				    "speaks versions %u to %u",
			 path, ops->abi_version, PGTRACKD_MODULE_ABI_VERSION_MIN,
			 PGTRACKD_MODULE_ABI_VERSION);
		goto release;
	}
	if (!ops->init || !ops->start || !ops->stop || !ops->destroy) {
		snprintf(why, size, "module %s: incomplete: init, start, stop and destroy are "
				    "required", path);
		goto release;
	}
	m = malloc(sizeof(*m) + strlen(path) + 1);
	if (!m) {
		snprintf(why, size, "module %s: out of memory", path);
		goto release;
	}
	m->object = object;
	m->ops = ops;
	m->refs = 1;
	strcpy(m->path, path);
	return m;

release:
	object_release(object);
	return NULL;
}

struct loaded_module *module_ref(struct loaded_module *m)
{
	m->refs++;
	return m;
}

void module_unload(struct loaded_module *m)
{
	if (!m || --m->refs > 0)
		return;
	object_release(m->object);
	free(m);
}
