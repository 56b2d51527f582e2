#include "pg_postmaster.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "mountinfo.h"
#include "netfs.h"

/* PostgreSQL's pidfile.h: the line of the postmaster's status. */
#define PM_STATUS_LINE 8

void pg_postmaster_init(struct pg_postmaster *pm)
{
	*pm = (struct pg_postmaster){ .stat_fd = -1, .pidfile_fd = -1 };
}

void pg_postmaster_close(struct pg_postmaster *pm)
{
	if (pm->stat_fd >= 0)
		close(pm->stat_fd);
	if (pm->pidfile_fd >= 0)
		close(pm->pidfile_fd);
	pg_postmaster_init(pm);
}

/* The whole small file from its start, NUL-terminated; its length or -errno. */
static ssize_t read_all(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

/* Line `line` (1-based) of buf into out, or "" when there is none. */
static void nth_line(const char *buf, int line, char *out, size_t size)
{
	const char *p = buf, *end;

	for (int i = 1; i < line && p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	out[0] = '\0';
	if (!p)
		return;
	end = strchr(p, '\n');
	if (!end)
		return; /* a line being written: not yet */
	snprintf(out, size, "%.*s", (int)(end - p), p);
}

/*
 * Why the file at fd must not be read in the event loop every probe, or
 * NULL: anything but a regular file, or one on a filesystem whose server
 * can hang (a read there can block).
 */
static const char *unfit_for_the_loop(int fd)
{
	struct stat st;
	struct statfs sfs;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return "not a regular file";
	if (fstatfs(fd, &sfs) < 0)
		return "its filesystem cannot be told";
	return netfs_magic((unsigned long)sfs.f_type) ? NETFS_REASON : NULL;
}

/* /proc/PID/mountinfo, NUL-terminated, in a buffer to free; NULL if unreadable. */
static char *read_mountinfo(int pid)
{
	const size_t limit = 16u << 20;
	char path[48];
	size_t size = 64u << 10, len = 0;
	char *buf = malloc(size);
	ssize_t n = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	while (buf && fd >= 0 && (n = read(fd, buf + len, size - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == size) {
			char *more = size < limit ? realloc(buf, size * 2) : NULL;

			if (!more) {
				n = -1;
				break;
			}
			buf = more;
			size *= 2;
		}
	}
	if (fd >= 0)
		close(fd);
	if (!buf || fd < 0 || n < 0) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/*
 * Why the postmaster's working directory (its data directory) must not
 * even be looked up from the event loop, or NULL.  Opening a file there is
 * a lookup on its filesystem, which over NFS or FUSE can wait on a server
 * that hangs; so the filesystem is told from procfs alone first: the
 * directory's path (the cwd link, read, not followed) against the
 * postmaster's own mount table.  Its root must be the one we see as "/",
 * so that both name the same paths.
 */
static const char *cwd_unfit(int pid)
{
	static const char deleted[] = " (deleted)";
	char link[48], root[8], cwd[PATH_MAX], type[64];
	const char *why = NULL;
	ssize_t n;

	/* Unreadable (not root, not the server's user): the reason open() would give. */
	snprintf(link, sizeof(link), "/proc/%d/root", pid);
	n = readlink(link, root, sizeof(root));
	if (n < 0)
		return strerror(errno);
	if (n != 1 || root[0] != '/')
		return "its root directory is not ours (chroot or container?)";
	snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
	n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n < 0)
		return strerror(errno);
	cwd[n] = '\0';
	if (cwd[0] != '/' || ((size_t)n >= sizeof(deleted) - 1 &&
			      strcmp(cwd + n - (sizeof(deleted) - 1), deleted) == 0))
		return "its working directory is gone or out of reach";

	char *mounts = read_mountinfo(pid);

	if (!mounts || mountinfo_fstype(mounts, cwd, type, sizeof(type)) < 0)
		why = "its working directory's filesystem cannot be told";
	else if (netfs_type(type))
		why = NETFS_REASON;
	free(mounts);
	return why;
}

static void open_pidfile(struct pg_postmaster *pm, int pid)
{
	char path[64], buf[1024], first[32];
	int fd;

	const char *unfit;

	unfit = cwd_unfit(pid);
	if (unfit) {
		snprintf(pm->pidfile_why, sizeof(pm->pidfile_why), "%s", unfit);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/cwd/postmaster.pid", pid);
	/* O_NONBLOCK: a FIFO put there must not hold the open up. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(pm->pidfile_why, sizeof(pm->pidfile_why), "%s", strerror(errno));
		return;
	}
	unfit = unfit_for_the_loop(fd);
	if (unfit) {
		snprintf(pm->pidfile_why, sizeof(pm->pidfile_why), "%s", unfit);
		close(fd);
		return;
	}
	ssize_t n = read_all(fd, buf, sizeof(buf));

	if (n < 0) {
		snprintf(pm->pidfile_why, sizeof(pm->pidfile_why), "%s", strerror((int)-n));
		close(fd);
		return;
	}
	nth_line(buf, 1, first, sizeof(first));
	if (atoi(first) != pid) {
		snprintf(pm->pidfile_why, sizeof(pm->pidfile_why),
			 "it names pid %.20s, not %d: another PID namespace?", first, pid);
		close(fd);
		return;
	}
	pm->pidfile_fd = fd;
}

int pg_postmaster_open(struct pg_postmaster *pm, int pid)
{
	char path[48];
	bool stopped;
	enum pg_pm_status status;
	int r;

	pg_postmaster_close(pm);
	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	pm->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm->stat_fd < 0) {
		r = -errno;
		pg_postmaster_close(pm);
		return r;
	}
	pm->pid = pid;
	r = pg_postmaster_look(pm, &stopped, &status);
	if (r < 0) {
		pg_postmaster_close(pm);
		return r;
	}
	open_pidfile(pm, pid);
	return 0;
}

static enum pg_pm_status read_status(const struct pg_postmaster *pm)
{
	char buf[1024], line[32];
	size_t n;

	if (pm->pidfile_fd < 0 || read_all(pm->pidfile_fd, buf, sizeof(buf)) < 0)
		return PG_PM_UNKNOWN;
	nth_line(buf, PM_STATUS_LINE, line, sizeof(line));
	n = strlen(line);
	while (n > 0 && line[n - 1] == ' ')
		line[--n] = '\0';
	if (strcmp(line, "stopping") == 0)
		return PG_PM_STOPPING;
	if (strcmp(line, "ready") == 0)
		return PG_PM_READY;
	if (strcmp(line, "standby") == 0)
		return PG_PM_STANDBY;
	if (strcmp(line, "starting") == 0)
		return PG_PM_STARTING;
	return PG_PM_UNKNOWN;
}

int pg_postmaster_look(const struct pg_postmaster *pm, bool *stopped, enum pg_pm_status *status)
{
	char buf[512];
	const char *p;
	ssize_t n;

	if (pm->stat_fd < 0)
		return -EBADF;
	n = read_all(pm->stat_fd, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* "PID (COMM) S ...": COMM may hold anything, ')' included: the last one ends it. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	*stopped = p[2] == 'T' || p[2] == 't';
	*status = read_status(pm);
	return 0;
}

const char *pg_pm_status_str(enum pg_pm_status s)
{
	switch (s) {
	case PG_PM_STARTING:
		return "starting";
	case PG_PM_READY:
		return "ready";
	case PG_PM_STANDBY:
		return "standby";
	case PG_PM_STOPPING:
		return "stopping";
	case PG_PM_UNKNOWN:
		break;
	}
	return "unknown";
}
