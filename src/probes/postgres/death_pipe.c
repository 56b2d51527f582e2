#include "death_pipe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pg_ping.h"

#define MAX_PIPE_ENDS 64 /* per process; PostgreSQL's have a handful */

struct pipe_end {
	unsigned long inode;
	int fd;
	int accmode; /* O_RDONLY, O_WRONLY, O_RDWR */
};

struct pipe_ends {
	struct pipe_end end[MAX_PIPE_ENDS];
	int n;
};

/* The access mode of /proc/PID/fdinfo/NAME's "flags:" (octal); -errno. */
static int fd_accmode(int fdinfo_dir, const char *name)
{
	char buf[256];
	const char *flags;
	ssize_t len;
	int fd = openat(fdinfo_dir, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return len < 0 ? -errno : -EIO;
	buf[len] = '\0';
	flags = strstr(buf, "flags:");
	if (!flags)
		return -EIO;
	return (int)(strtoul(flags + 6, NULL, 8) & O_ACCMODE);
}

/* The pipe ends process pid holds; 0 or -errno. */
static int list_pipe_ends(int pid, struct pipe_ends *out)
{
	char path[48], link[64];
	struct dirent *de;
	DIR *dir;
	int info;

	out->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", pid);
	info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (info < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir) {
		int err = -errno;

		close(info);
		return err;
	}
	while ((de = readdir(dir)) && out->n < MAX_PIPE_ENDS) {
		struct pipe_end *e = &out->end[out->n];
		ssize_t len = readlinkat(dirfd(dir), de->d_name, link, sizeof(link) - 1);
		char *end;

		if (len <= 0)
			continue;
		link[len] = '\0';
		if (strncmp(link, "pipe:[", 6) != 0)
			continue;
		e->inode = strtoul(link + 6, &end, 10);
		e->fd = atoi(de->d_name);
		e->accmode = fd_accmode(info, de->d_name);
		if (*end == ']' && e->accmode >= 0)
			out->n++;
	}
	closedir(dir);
	close(info);
	return 0;
}

static bool holds(const struct pipe_ends *ends, unsigned long inode, int accmode)
{
	for (int i = 0; i < ends->n; i++)
		if (ends->end[i].inode == inode && ends->end[i].accmode == accmode)
			return true;
	return false;
}

int death_pipe_find(int pm_pid, int backend_pid, unsigned long *inode)
{
	struct pipe_ends pm, be;
	int found = -ENOENT, err;

	if (pm_pid <= 1 || backend_pid <= 1 || pg_ping_parent_pid(backend_pid) != pm_pid)
		return -ESRCH;
	err = list_pipe_ends(backend_pid, &be);
	if (err < 0)
		return err;
	err = list_pipe_ends(pm_pid, &pm);
	if (err < 0)
		return err;
	for (int i = 0; i < be.n; i++) {
		const struct pipe_end *e = &be.end[i];

		if (e->accmode != O_RDONLY || holds(&be, e->inode, O_WRONLY) || holds(&be, e->inode, O_RDWR) ||
		    !holds(&pm, e->inode, O_WRONLY))
			continue;
		for (int j = 0; j < pm.n; j++) {
			if (pm.end[j].inode != e->inode || pm.end[j].accmode != O_RDONLY)
				continue;
			if (found >= 0 && *inode != e->inode)
				return -ENOTUNIQ;
			found = pm.end[j].fd;
			*inode = e->inode;
		}
	}
	return found;
}

int death_pipe_hung_up(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	return (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

int death_pipe_take(int pidfd, int pm_fd, unsigned long inode)
{
#ifdef SYS_pidfd_getfd
	struct pollfd pfd;
	struct stat st;
	int fd, err = 0;

	fd = (int)syscall(SYS_pidfd_getfd, pidfd, pm_fd, 0);
	if (fd < 0)
		return -errno;
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || (unsigned long)st.st_ino != inode)
		err = -ESTALE;
	else if (poll(&pfd, 1, 0) < 0)
		err = -errno;
	else if (pfd.revents & (POLLHUP | POLLERR))
		err = -EPIPE;
	else if (pfd.revents & POLLIN)
		err = -EPROTO;
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
#else
	(void)pidfd;
	(void)pm_fd;
	(void)inode;
	return -ENOSYS;
#endif
}
