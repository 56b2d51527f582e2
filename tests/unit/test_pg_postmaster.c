/* pg_postmaster: a child that plays the postmaster, in a directory of its own. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "pg_postmaster.h"

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
	struct pg_postmaster pm;
	char path[128];
	pid_t child = spawn_postmaster();
	pid_t opener;
	int status = -1;

	snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
	unlink(path);
	CHECK_INT_EQ(mkfifo(path, 0600), 0);
	opener = fork();
	if (opener == 0) {
		alarm(3); /* a blocked open ends the child here, and the check below fails */
		pg_postmaster_init(&pm);
		if (pg_postmaster_open(&pm, child) < 0 || pg_postmaster_has_pidfile(&pm) ||
		    !strstr(pm.pidfile_why, "not a regular file"))
			_exit(2);
		_exit(0);
	}
	waitpid(opener, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(path);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
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
	snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
	unlink(path);
	rmdir(dir);
	CHECK_DONE();
}
