/* pg_postmaster: a child that plays the postmaster, in a directory of its own. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "mountinfo.h"
#include "netfs.h"
#include "pg_postmaster.h"
#include "util.h"

static char dir[64];

/* postmaster.pid as PostgreSQL 15 writes it, with status line `status` (NULL: none yet). */
static void write_pidfile(int pid, const char *status, bool in_place)
{
	char path[128], buf[512];
	int n, fd;

	snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
	n = snprintf(buf, sizeof(buf), "%d\n%s\n1733360000\n5432\n/tmp\n*\n  5432001    131072\n%s",
		     pid, dir, status ? status : "");
	if (status)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\n");
	fd = open(path, O_WRONLY | O_CREAT | (in_place ? 0 : O_TRUNC), 0600);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, buf, (size_t)n, 0) == n);
	close(fd);
}

static pid_t spawn_postmaster(void)
{
	pid_t child = fork();

	if (child == 0) {
		if (chdir(dir) < 0)
			_exit(1);
		for (int i = 0; i < 100; i++)
			usleep(100000);
		_exit(0);
	}
	usleep(50000); /* in its directory */
	return child;
}

/*
 * pg_postmaster_open in a child (as user nobody if asked), bounded by an
 * alarm: whether it returned at once with no pid file, for the reason
 * expected_why.
 */
static bool refused_in_a_child(pid_t postmaster, const char *expected_why, bool as_nobody)
{
	pid_t opener = fork();
	int status = -1;

	if (opener == 0) {
		struct pg_postmaster pm;

		alarm(3); /* a blocked open ends the child here, and the check fails */
		if (as_nobody && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(0); /* not root: nothing to show */
		pg_postmaster_init(&pm);
		if (pg_postmaster_open(&pm, postmaster) < 0 || pg_postmaster_has_pidfile(&pm) ||
		    !strstr(pm.pidfile_why, expected_why)) {
			fprintf(stderr, "pidfile_why: %s\n", pm.pidfile_why);
			_exit(2);
		}
		_exit(0);
	}
	waitpid(opener, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_status_and_state(void)
{
	struct pg_postmaster pm;
	enum pg_pm_status status;
	bool stopped = true;
	pid_t child;

	pg_postmaster_init(&pm);
	pg_postmaster_close(&pm); /* safe at once */
	CHECK(!pg_postmaster_known(&pm));
	CHECK(pg_postmaster_look(&pm, &stopped, &status) < 0);

	child = spawn_postmaster();
	write_pidfile(child, NULL, false);
	CHECK_INT_EQ(pg_postmaster_open(&pm, child), 0);
	CHECK(pg_postmaster_known(&pm));
	CHECK(pg_postmaster_has_pidfile(&pm));
	CHECK_INT_EQ(pg_postmaster_look(&pm, &stopped, &status), 0);
	CHECK(!stopped);
	CHECK_INT_EQ(status, PG_PM_UNKNOWN); /* no status line yet */

	/* rewritten in place, as AddToDataDirLockFile does: the open descriptor sees it */
	write_pidfile(child, "ready   ", true);
	CHECK_INT_EQ(pg_postmaster_look(&pm, &stopped, &status), 0);
	CHECK_INT_EQ(status, PG_PM_READY);
	write_pidfile(child, "stopping", true);
	CHECK_INT_EQ(pg_postmaster_look(&pm, &stopped, &status), 0);
	CHECK_INT_EQ(status, PG_PM_STOPPING);
	CHECK(strcmp(pg_pm_status_str(status), "stopping") == 0);
	write_pidfile(child, "standby ", true);
	CHECK_INT_EQ(pg_postmaster_look(&pm, &stopped, &status), 0);
	CHECK_INT_EQ(status, PG_PM_STANDBY);

	kill(child, SIGSTOP);
	waitpid(child, NULL, WUNTRACED);
	CHECK_INT_EQ(pg_postmaster_look(&pm, &stopped, &status), 0);
	CHECK(stopped);
	kill(child, SIGCONT);
	waitpid(child, NULL, WCONTINUED);
	CHECK_INT_EQ(pg_postmaster_look(&pm, &stopped, &status), 0);
	CHECK(!stopped);

	/* gone: the state cannot be read any more, whoever gets the number next */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK(pg_postmaster_look(&pm, &stopped, &status) < 0);
	pg_postmaster_close(&pm);
	CHECK(!pg_postmaster_known(&pm));
}

static void test_pidfile_of_another(void)
{
	struct pg_postmaster pm;
	pid_t child = spawn_postmaster();

	/* another PID (namespace): the file does not count, the state does */
	pg_postmaster_init(&pm);
	write_pidfile(child + 100000, "stopping", false);
	CHECK_INT_EQ(pg_postmaster_open(&pm, child), 0);
	CHECK(!pg_postmaster_has_pidfile(&pm));
	CHECK(strstr(pm.pidfile_why, "another PID namespace") != NULL);

	/* not ours to look into (pgtrackd as its own user): the reason is the kernel's */
	CHECK(refused_in_a_child(child, strerror(EACCES), true));

	/* none at all */
	char path[128];

	snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
	unlink(path);
	CHECK_INT_EQ(pg_postmaster_open(&pm, child), 0);
	CHECK(!pg_postmaster_has_pidfile(&pm));
	CHECK(strstr(pm.pidfile_why, strerror(ENOENT)) != NULL);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK(pg_postmaster_open(&pm, child) < 0);
	CHECK(!pg_postmaster_known(&pm));
	CHECK(pg_postmaster_open(&pm, 0) < 0);
	pg_postmaster_close(&pm);
}

/*
 * Whoever may write in the data directory could put a FIFO where
 * postmaster.pid was: opening it must not block the loop, nor count.
 */
static void test_pidfile_not_a_file(void)
{
	char path[128];
	pid_t child = spawn_postmaster();

	snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
	unlink(path);
	CHECK_INT_EQ(mkfifo(path, 0600), 0);
	CHECK(refused_in_a_child(child, "not a regular file", false));
	unlink(path);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/*
 * A FUSE daemon that answers what mounting and entering the filesystem's
 * root take (INIT, GETATTR; ENOSYS to anything else, which the kernel
 * takes as "not implemented") until told on `entered` that the
 * "postmaster" is in, and then reads no more: the next request (the
 * LOOKUP of a file) waits, as on an NFS mount whose server hangs.
 * Unread, that wait is killable: an alarm ends it.
 */
static void reply(int fd, uint64_t unique, int error, const void *body, size_t len)
{
	char buf[sizeof(struct fuse_out_header) + 256];
	struct fuse_out_header h = { .len = (uint32_t)(sizeof(h) + len), .error = error,
				     .unique = unique };

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), body, len);
	if (write(fd, buf, h.len) < 0)
		_exit(3);
}

static void answer(int fd, const struct fuse_in_header *h)
{
	if (h->opcode == FUSE_INIT) {
		struct fuse_init_out out = { .major = FUSE_KERNEL_VERSION, .minor = 26,
					     .max_write = 4096, .max_background = 1 };

		reply(fd, h->unique, 0, &out, sizeof(out));
	} else if (h->opcode == FUSE_GETATTR) {
		struct fuse_attr_out out = { .attr_valid = 3600 };

		out.attr = (struct fuse_attr){ .ino = FUSE_ROOT_ID, .mode = S_IFDIR | 0755,
					       .nlink = 2 };
		reply(fd, h->unique, 0, &out, sizeof(out));
	} else if (h->opcode != FUSE_FORGET && h->opcode != FUSE_BATCH_FORGET) {
		reply(fd, h->unique, -ENOSYS, NULL, 0);
	}
}

static void serve_then_hang(int fd, int entered)
{
	static char req[FUSE_MIN_READ_BUFFER + 65536];
	struct pollfd fds[2] = { { .fd = fd, .events = POLLIN }, { .fd = entered, .events = POLLIN } };

	alarm(30); /* whatever happens, not for ever */
	while (poll(fds, 2, -1) >= 0 && !fds[1].revents) {
		struct fuse_in_header h;
		ssize_t n = read(fd, req, sizeof(req));

		if (n < (ssize_t)sizeof(h))
			_exit(0);
		memcpy(&h, req, sizeof(h));
		answer(fd, &h);
	}
	for (;;)
		pause();
}

/*
 * A "postmaster" in a mount namespace of its own whose working directory
 * is the root of such a FUSE mount; the daemon's PID in *daemon.  0 when
 * FUSE cannot be mounted here (not root, no /dev/fuse).
 */
static pid_t spawn_postmaster_on_hung_fuse(const char *mnt, pid_t *daemon)
{
	int ready[2], entered[2];
	pid_t pids[2] = { 0, 0 };
	pid_t child;

	CHECK(pipe(ready) == 0 && pipe(entered) == 0);
	child = fork();
	if (child == 0) {
		char opts[128];
		int fd;

		close(ready[0]);
		if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
		    (fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)) < 0)
			_exit(0);
		snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
		if (mount("pgtrack-test", mnt, "fuse", MS_NOSUID | MS_NODEV, opts) < 0)
			_exit(0);
		pids[1] = fork();
		if (pids[1] == 0)
			serve_then_hang(fd, entered[0]);
		close(fd);
		if (chdir(mnt) < 0 || write(entered[1], "", 1) != 1)
			_exit(1);
		pids[0] = getpid();
		if (write(ready[1], pids, sizeof(pids)) != (ssize_t)sizeof(pids))
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	close(entered[0]);
	close(entered[1]);
	struct pollfd pfd = { .fd = ready[0], .events = POLLIN };

	if (poll(&pfd, 1, 10000) != 1 || read(ready[0], pids, sizeof(pids)) != (ssize_t)sizeof(pids)) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		close(ready[0]);
		return 0;
	}
	close(ready[0]);
	*daemon = pids[1];
	return child;
}

/*
 * The data directory on a filesystem whose server hangs: told from procfs
 * before anything is opened there.  (Opening postmaster.pid first, then
 * checking the filesystem, blocked the loop in the open's lookup.)
 */
static void test_pidfile_on_a_hung_filesystem(void)
{
	char mnt[128];
	pid_t child, daemon = 0;

	snprintf(mnt, sizeof(mnt), "%s/fuse", dir);
	CHECK(mkdir(mnt, 0700) == 0);
	child = spawn_postmaster_on_hung_fuse(mnt, &daemon);
	if (!child) {
		printf("# skipped: a FUSE mount cannot be made and entered here (needs root and /dev/fuse)\n");
		rmdir(mnt);
		return;
	}
	CHECK(refused_in_a_child(child, "network or FUSE filesystem", false));
	kill(daemon, SIGKILL); /* the connection ends with it: nothing waits on it any more */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	rmdir(mnt);
}

static void test_mountinfo(void)
{
	static const char text[] =
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
		"30 22 0:26 / /var/lib/postgresql rw shared:5 master:2 - nfs4 srv:/pg rw,vers=4.2\n"
		"31 30 0:27 / /var/lib/postgresql/15/main/pg_wal rw - xfs /dev/sdb1 rw\n"
		"32 22 0:28 / /srv/with\\040space rw - fuse.sshfs host:/ rw\n"
		"33 22 0:29 / /var/lib/postgresql rw - tmpfs tmpfs rw\n"
		"34 22 0:30 / /opt rw\n"
		"35 33 0:31 / /var/lib/postgresql/16/main/pg_wal rw - xfs /dev/sdc1 rw\n";
	/* ext4 for the data directory, then NFS mounted over /var, which hides it */
	static const char over[] =
		"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
		"40 22 8:2 / /var/lib/postgresql rw - ext4 /dev/sda2 rw\n"
		"41 22 0:50 / /var rw - nfs srv:/var rw\n";
	static const struct {
		const char *text, *path, *type;
	} cases[] = {
		{ text, "/etc", "ext4" },
		{ text, "/var/lib/postgresql-old", "ext4" },
		/* mounted over: the last of equal mount points, and what was below it is hidden */
		{ text, "/var/lib/postgresql/15/main", "tmpfs" },
		{ text, "/var/lib/postgresql/15/main/pg_wal", "tmpfs" },
		/* a later mount on top of the visible one (its child) */
		{ text, "/var/lib/postgresql/16/main/pg_wal", "xfs" },
		{ over, "/var/lib/postgresql/15/main", "nfs" },
		{ text, "/srv/with space/data", "fuse.sshfs" },
		/* a line without its " - " part names no type */
		{ text, "/opt/x", "ext4" },
	};
	char type[32];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		CHECK_INT_EQ(mountinfo_fstype(cases[i].text, cases[i].path, type, sizeof(type)), 0);
		CHECK_STR_EQ(type, cases[i].type);
	}
	CHECK_INT_EQ(mountinfo_fstype(text, "relative", type, sizeof(type)), -EINVAL);
	CHECK_INT_EQ(mountinfo_fstype("", "/", type, sizeof(type)), -ENOENT);
}

/* The check before the open (type names) and the one after it (magic numbers) agree. */
static void test_netfs(void)
{
	static const char *const blocking[] = { "nfs", "nfs4", "cifs", "fuse", "fuse.sshfs", "ceph", "afs", "glusterfs" };
	static const char *const local[] = { "ext4", "xfs", "tmpfs", "btrfs", "overlay", "fusectl" };

	for (size_t i = 0; i < ARRAY_SIZE(blocking); i++)
		CHECK(netfs_type(blocking[i]));
	for (size_t i = 0; i < ARRAY_SIZE(local); i++)
		CHECK(!netfs_type(local[i]));
	CHECK(netfs_magic(0x6969UL) && netfs_magic(0x65735546UL) && netfs_magic(0xff534d42UL));
	CHECK(!netfs_magic(0xef53UL) && !netfs_magic(0x01021994UL)); /* ext4, tmpfs */
}

int main(void)
{
	char path[128];

	snprintf(dir, sizeof(dir), "/tmp/pg_postmaster-test-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	test_status_and_state();
	test_pidfile_of_another();
	test_pidfile_not_a_file();
	test_pidfile_on_a_hung_filesystem();
	test_mountinfo();
	test_netfs();
	snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
	unlink(path);
	rmdir(dir);
	CHECK_DONE();
}
