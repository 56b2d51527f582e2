#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int split_path(const char *path, char *dir, size_t dir_size,
		      const char **base)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		if (dir_size < 2)
			return -ENAMETOOLONG;
		strcpy(dir, ".");
		*base = path;
	} else {
		size_t n = (size_t)(slash - path);

		if (n == 0)
			n = 1;
		if (n >= dir_size)
			return -ENAMETOOLONG;
		memcpy(dir, path, n);
		dir[n] = '\0';
		*base = slash + 1;
	}
	return **base ? 0 : -EISDIR;
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

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		r = -errno;
	close(fd);
	return r;
}

int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode)
{
	char dir[PATH_MAX];
	char tmp[PATH_MAX];
	const char *base;
	int fd, r;

	r = split_path(path, dir, sizeof(dir), &base);
	if (r < 0)
		return r;
	/* A dot name that keepalived's basename match never takes for the track. */
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;

	r = write_all(fd, data, len);
	if (r < 0)
		goto unlink_tmp;
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		r = -errno;
		goto unlink_tmp;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto unlink_tmp;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto unlink_tmp;
	}
	return fsync_dir(dir);

unlink_tmp:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

int atomic_file_compare(const char *path, const void *data, size_t len)
{
	const char *want = data;
	char buf[4096];
	size_t off = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
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
