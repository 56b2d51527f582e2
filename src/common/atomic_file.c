#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Temp names tried before giving up on EEXIST. */
#define TMP_ATTEMPTS 100

static void say(char *why, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void say(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!why || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
}

/* Why a component could not be opened as a directory; -errno. */
static int explain_component(int parent, const char *comp, const char *prefix, int err,
			     char *why, size_t size)
{
	struct stat st;

	if ((err == ELOOP || err == ENOTDIR) &&
	    fstatat(parent, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode)) {
			say(why, size, "%s is a symbolic link, which is not followed; "
				       "name the real directory instead", prefix);
			return -ELOOP;
		}
		if (!S_ISDIR(st.st_mode)) {
			say(why, size, "%s is not a directory", prefix);
			return -ENOTDIR;
		}
	}
	say(why, size, "%s: %s", prefix, strerror(err));
	return -err;
}

static int vet_dir(int fd, const char *dir, unsigned flags, char *why, size_t size)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		say(why, size, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	if ((flags & ATOMIC_FILE_OWNED_DIR) && st.st_uid != 0 && st.st_uid != geteuid()) {
		say(why, size, "directory %s is owned by uid %u, neither root nor this process's "
			       "user (uid %u)", dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	/*
	 * Sticky is no excuse (/tmp): another user may create the file before
	 * us, and then we can neither replace nor remove it.
	 */
	if ((flags & ATOMIC_FILE_PRIVATE_DIR) && (st.st_mode & (S_IWGRP | S_IWOTH))) {
		say(why, size, "directory %s is writable by group or others (mode %04o)%s", dir,
		    (unsigned)(st.st_mode & 07777),
		    (st.st_mode & S_ISVTX) ? ", sticky or not: another user may create the file "
					     "first" : "");
		return -EPERM;
	}
	return 0;
}

/*
 * The walk of atomic_file_open_dir without the checks; prefix (PATH_MAX)
 * gets the directory's name for messages.
 */
static int walk_to_dir(const char *path, const char **name, char *prefix, char *why,
		       size_t why_size)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dir_len = slash ? (size_t)(slash - path) : 0;
	size_t pos = 0;
	int fd, r;

	*name = base;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		say(why, why_size, "%s names a directory, not a file", path);
		return -EISDIR;
	}
	if (strlen(path) >= PATH_MAX) {
		say(why, why_size, "%s", strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		say(why, why_size, "%s", strerror(-r));
		return r;
	}
	while (pos < dir_len) {
		size_t n = strcspn(path + pos, "/");
		char comp[NAME_MAX + 1];
		int next;

		if (pos + n > dir_len)
			n = dir_len - pos;
		if (n == 0) {
			pos++;
			continue;
		}
		memcpy(prefix, path, pos + n);
		prefix[pos + n] = '\0';
		if (n > NAME_MAX) {
			say(why, why_size, "%s: %s", prefix, strerror(ENAMETOOLONG));
			r = -ENAMETOOLONG;
			goto close_fd;
		}
		memcpy(comp, path + pos, n);
		comp[n] = '\0';
		next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = explain_component(fd, comp, prefix, errno, why, why_size);
			goto close_fd;
		}
		close(fd);
		fd = next;
		pos += n;
	}

	/* The directory itself, reopened readable for fsync (O_PATH is not). */
	if (dir_len == 0)
		snprintf(prefix, PATH_MAX, "%s", path[0] == '/' ? "/" : ".");
	else
		snprintf(prefix, PATH_MAX, "%.*s", (int)dir_len, path);
	{
		int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0) {
			r = -errno;
			say(why, why_size, "%s: %s", prefix, strerror(-r));
			goto close_fd;
		}
		close(fd);
		fd = dfd;
	}
	return fd;

close_fd:
	close(fd);
	return r;
}

int atomic_file_open_dir(const char *path, unsigned flags, const char **name, char *why,
			 size_t why_size)
{
	char prefix[PATH_MAX];
	int fd = walk_to_dir(path, name, prefix, why, why_size);
	int r;

	if (fd < 0)
		return fd;
	r = vet_dir(fd, prefix, flags, why, why_size);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Fills the six X of a mkstemp-style template. */
static void fill_random(char *x)
{
	static const char chars[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	static uint64_t counter;
	unsigned char bytes[6];

	if (getrandom(bytes, sizeof(bytes), GRND_NONBLOCK) != (ssize_t)sizeof(bytes)) {
		struct timespec ts;
		uint64_t v;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20) ^ (++counter * 0x9e3779b97f4a7c15u);
		for (size_t i = 0; i < sizeof(bytes); i++, v >>= 8)
			bytes[i] = (unsigned char)v;
	}
	for (size_t i = 0; i < sizeof(bytes); i++)
		x[i] = chars[bytes[i] % (sizeof(chars) - 1)];
}

/* Creates ".NAME.XXXXXX" in dfd; fd or -errno, the name in tmp. */
static int create_tmp(int dfd, const char *name, char *tmp, size_t size)
{
	int n = snprintf(tmp, size, ".%s.XXXXXX", name);

	/* A dot name that keepalived's basename match never takes for the track. */
	if (n < 0 || (size_t)n >= size || n > NAME_MAX)
		return -ENAMETOOLONG;
	for (int i = 0; i < TMP_ATTEMPTS; i++) {
		int fd;

		fill_random(tmp + n - 6);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode,
		      unsigned flags, char *why, size_t why_size)
{
	char tmp[NAME_MAX + 2], prefix[PATH_MAX], policy[PATH_MAX + 160] = "";
	const char *name;
	int dfd, fd, r;

	dfd = walk_to_dir(path, &name, prefix, why, why_size);
	if (dfd < 0)
		return dfd;
	r = vet_dir(dfd, prefix, flags, policy, sizeof(policy));
	if (r < 0 && (r != -EPERM || !(flags & ATOMIC_FILE_CHECKS_WARN_ONLY))) {
		say(why, why_size, "%s", policy);
		close(dfd);
		return r;
	}
	fd = create_tmp(dfd, name, tmp, sizeof(tmp));
	if (fd < 0) {
		r = fd;
		goto close_dir;
	}
	r = write_all(fd, data, len);
	if (r < 0)
		goto unlink_tmp;
	if (fchmod(fd, mode) < 0 || (!(flags & ATOMIC_FILE_NO_SYNC) && fsync(fd) < 0)) {
		r = -errno;
		goto unlink_tmp;
	}
	r = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (r < 0)
		goto unlink_tmp;
	if (renameat(dfd, tmp, dfd, name) < 0) {
		r = -errno;
		goto unlink_tmp;
	}
	if (!(flags & ATOMIC_FILE_NO_SYNC) && fsync(dfd) < 0 && errno != EINVAL)
		r = -errno;
	goto close_dir;

unlink_tmp:
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, tmp, 0);
close_dir:
	close(dfd);
	/* The checks' finding explains an EPERM (a squatted file in a sticky directory). */
	if (r < 0 && policy[0])
		say(why, why_size, "%s (%s)", strerror(-r), policy);
	else if (r < 0)
		say(why, why_size, "%s", strerror(-r));
	else if (policy[0])
		say(why, why_size, "%s", policy);
	return r < 0 ? r : policy[0] ? 1 : 0;
}

int atomic_file_compare(const char *path, const void *data, size_t len)
{
	const char *want = data;
	const char *name;
	char buf[4096];
	size_t off = 0;
	int dfd, fd, r = 0;

	dfd = atomic_file_open_dir(path, 0, &name, NULL, 0);
	if (dfd < 0)
		return dfd;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	close(dfd);
	if (fd < 0)
		return r;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0) {
			r = off == len ? 0 : 1;
			break;
		}
		if ((size_t)n > len - off || memcmp(buf, want + off, (size_t)n) != 0) {
			r = 1;
			break;
		}
		off += (size_t)n;
	}
	close(fd);
	return r;
}

/* Whether the last component of out[root..len) is "..". */
static bool ends_in_dotdot(const char *out, size_t root, size_t len)
{
	size_t start = len;

	while (start > root && out[start - 1] != '/')
		start--;
	return len - start == 2 && out[start] == '.' && out[start + 1] == '.';
}

/* path with "//", "/./" and "DIR/.." folded, into out; false if too long. */
static bool fold_path(const char *path, char *out, size_t size)
{
	size_t root = path[0] == '/' ? 1 : 0;
	size_t len = root;
	const char *p = path;

	if (size < 2)
		return false;
	out[0] = '/';
	out[len] = '\0';
	while (*p) {
		size_t n = strcspn(p, "/");
		bool dotdot = n == 2 && p[0] == '.' && p[1] == '.';

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* "//" and "/./" */
		} else if (dotdot && len > root && !ends_in_dotdot(out, root, len)) {
			while (len > root && out[len - 1] != '/')
				len--;
			if (len > root)
				len--;
		} else if (dotdot && root) {
			/* "/.." is "/" */
		} else {
			bool sep = len > root;

			if (len + sep + n >= size)
				return false;
			if (sep)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		out[len] = '\0';
		p += n;
		while (*p == '/')
			p++;
	}
	return true;
}

static bool dir_of(const char *path, struct stat *st, const char **name)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	*name = slash ? slash + 1 : path;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return false;
	return stat(dir, st) == 0 && S_ISDIR(st->st_mode);
}

bool atomic_file_same_path(const char *a, const char *b)
{
	char fa[PATH_MAX], fb[PATH_MAX];
	struct stat sa, sb;
	const char *na, *nb;

	if (dir_of(a, &sa, &na) && dir_of(b, &sb, &nb))
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino && strcmp(na, nb) == 0;
	if (!fold_path(a, fa, sizeof(fa)) || !fold_path(b, fb, sizeof(fb)))
		return strcmp(a, b) == 0;
	return strcmp(fa, fb) == 0;
}
