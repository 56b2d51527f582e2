/*
 * track_file (src/trackd/track_file.h) on a real libev loop: writes,
 * restores after an outside change, retries a failed write.
 *
 * The loop is driven with ev_run(EVRUN_ONCE) under wall-clock bounds, so
 * a broken timer fails a check instead of hanging the test.
 */
#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "testutil.h"
#include "track_file.h"

static char dir[256];
static struct ev_loop *loop;

/*
 * This executable's fsync and fdatasync replace libc's for the code under
 * test: a track file is runtime state, and an fsync of it held the value
 * back from keepalived for 20-30 ms in the lab (on the failover's path),
 * in the event loop.
 */
static int syncs;

int fsync(int fd)
{
	(void)fd;
	syncs++;
	return 0;
}

int fdatasync(int fd)
{
	(void)fd;
	syncs++;
	return 0;
}

static bool file_is(const char *path, const char *text)
{
	char buf[64];

	return read_text(path, buf, sizeof(buf)) >= 0 && strcmp(buf, text) == 0;
}

/* Runs the loop until path holds text or timeout seconds pass; elapsed seconds or -1. */
static double run_until_file_is(const char *path, const char *text, double timeout)
{
	double start = ev_time();

	while (!file_is(path, text)) {
		if (ev_time() - start > timeout)
			return -1;
		ev_run(loop, EVRUN_ONCE);
	}
	return ev_time() - start;
}

/* Runs the loop for about seconds. */
static void run_for(double seconds)
{
	double end = ev_time() + seconds;

	while (ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
}

static void path_in(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

/*
 * The "retrying every ..." part of a write failure line names the check
 * interval: accepts "0.25s" or "250ms" style for interval_ms.
 */
static bool retry_text_ok(const char *log, int64_t interval_ms)
{
	const char *p = strstr(log, "; retrying every ");
	char got[32], as_ms[32], as_s[32];
	size_t n;

	if (!p)
		return false;
	p += strlen("; retrying every ");
	n = strcspn(p, "\n");
	if (n >= sizeof(got))
		return false;
	memcpy(got, p, n);
	got[n] = '\0';
	snprintf(as_ms, sizeof(as_ms), "%lldms", (long long)interval_ms);
	snprintf(as_s, sizeof(as_s), "%gs", (double)interval_ms / 1000.0);
	if (strcmp(got, as_ms) != 0 && strcmp(got, as_s) != 0) {
		printf("retry interval in the log: \"%s\", expected \"%s\" or \"%s\"\n", got, as_ms,
		       as_s);
		return false;
	}
	return true;
}

static void test_write(void)
{
	struct track_file f;
	char path[4200], buf[64];
	struct stat st;

	path_in(path, sizeof(path), "w");
	track_file_init(&f, loop, "t", path, 50);
	CHECK_STR_EQ(f.path, path);
	CHECK(!f.has_value);
	CHECK(!ev_is_active(&f.check));
	CHECK_INT_EQ(access(path, F_OK), -1); /* nothing written before the first value */

	CHECK_INT_EQ(track_file_write(&f, 100), 0);
	CHECK_INT_EQ(read_text(path, buf, sizeof(buf)), 4);
	CHECK_STR_EQ(buf, "100\n");
	CHECK(f.has_value);
	CHECK_INT_EQ(f.value, 100);
	CHECK_INT_EQ(f.failed_errno, 0);
	CHECK(ev_is_active(&f.check));
	CHECK_INT_EQ(stat(path, &st), 0);
	CHECK_INT_EQ(st.st_mode & 07777, 0644);

	CHECK_INT_EQ(track_file_write(&f, -254), 0);
	CHECK(file_is(path, "-254\n"));
	CHECK_INT_EQ(track_file_write(&f, 0), 0);
	CHECK(file_is(path, "0\n"));
	CHECK_INT_EQ(count_entries(dir), 1);
	CHECK_INT_EQ(f.rewrites, 0);

	track_file_set_check_interval(&f, 1000);
	CHECK(f.check.repeat == 1.0);
	CHECK(ev_is_active(&f.check));

	track_file_finish(&f);
	CHECK(!ev_is_active(&f.check));
	unlink(path);
}

static void test_writes_without_sync(void)
{
	struct track_file f;
	char path[4200], why[256];

	path_in(path, sizeof(path), "nosync");
	track_file_init(&f, loop, "t", path, 50);
	syncs = 0;
	CHECK_INT_EQ(track_file_write(&f, 54), 0);
	CHECK_INT_EQ(track_file_write(&f, -254), 0);
	CHECK_INT_EQ(track_file_write_once(path, -254, why, sizeof(why)), 0);
	CHECK(file_is(path, "-254\n"));
	CHECK_INT_EQ(syncs, 0);
	track_file_finish(&f);
	unlink(path);
}

static void test_unchanged_file_left_alone(void)
{
	struct track_file f;
	struct capture cap;
	char path[4200], *out;
	struct stat before, after;

	path_in(path, sizeof(path), "same");
	track_file_init(&f, loop, "t", path, 50);
	capture_begin(&cap, dir);
	CHECK_INT_EQ(track_file_write(&f, 100), 0);
	CHECK_INT_EQ(stat(path, &before), 0);
	run_for(0.2); /* about four checks */
	CHECK_INT_EQ(stat(path, &after), 0);
	out = capture_end(&cap);

	CHECK(before.st_ino == after.st_ino);
	CHECK(file_is(path, "100\n"));
	CHECK_STR_EQ(out, "");
	free(out);
	track_file_finish(&f);
	unlink(path);
}

static void test_restore(void)
{
	struct track_file f;
	struct capture cap;
	char path[4200], tmp[4200], expected[4400], *out;
	double elapsed;

	path_in(path, sizeof(path), "restore");
	track_file_init(&f, loop, "t", path, 50);
	capture_begin(&cap, dir);
	CHECK_INT_EQ(track_file_write(&f, 100), 0);

	/* echo 5 > file */
	CHECK_INT_EQ(write_text(path, "5\n"), 0);
	elapsed = run_until_file_is(path, "100\n", 0.5);
	CHECK(elapsed >= 0 && elapsed < 0.3);

	/* A file renamed over ours (keepalived's init_file ... overwrite). */
	path_in(tmp, sizeof(tmp), ".other.tmp");
	CHECK_INT_EQ(write_text(tmp, "0\n"), 0);
	CHECK_INT_EQ(rename(tmp, path), 0);
	elapsed = run_until_file_is(path, "100\n", 0.5);
	CHECK(elapsed >= 0 && elapsed < 0.3);

	/* The same number in another spelling is not our content. */
	CHECK_INT_EQ(write_text(path, "0100\n"), 0);
	elapsed = run_until_file_is(path, "100\n", 0.5);
	CHECK(elapsed >= 0 && elapsed < 0.3);

	/* Removed. */
	CHECK_INT_EQ(unlink(path), 0);
	elapsed = run_until_file_is(path, "100\n", 0.5);
	CHECK(elapsed >= 0 && elapsed < 0.3);
	out = capture_end(&cap);

	snprintf(expected, sizeof(expected),
		 "pgtrackd: warning: track \"t\": %s was changed behind our back; restoring 100\n",
		 path);
	CHECK_INT_EQ(count_substr(out, expected), 3);
	snprintf(expected, sizeof(expected),
		 "pgtrackd: warning: track \"t\": %s was removed or cannot be read (No such file "
		 "or directory); restoring 100\n",
		 path);
	CHECK_INT_EQ(count_substr(out, expected), 1);
	CHECK_INT_EQ(count_substr(out, "\n"), 4);
	free(out);
	/* each restore counted (pgtrackd_track_file_rewrites_total); our own writes are not */
	CHECK_INT_EQ(f.rewrites, 4);

	/* Only our file: no temp files left behind. */
	CHECK_INT_EQ(count_entries(dir), 1);

	/* Once finished, the file is no longer watched. */
	track_file_finish(&f);
	CHECK_INT_EQ(write_text(path, "5\n"), 0);
	usleep(120 * 1000);
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(file_is(path, "5\n"));
	unlink(path);
}

static void test_retry_after_missing_directory(void)
{
	struct track_file f;
	struct capture cap;
	char sub[4200], path[4300], expected[8800], *out;
	double elapsed;

	path_in(sub, sizeof(sub), "gone");
	snprintf(path, sizeof(path), "%s/track", sub);
	track_file_init(&f, loop, "t", path, 100);

	capture_begin(&cap, dir);
	CHECK_INT_EQ(track_file_write(&f, 5), -ENOENT);
	CHECK_INT_EQ(f.failed_errno, ENOENT);
	CHECK(ev_is_active(&f.check));
	run_for(0.35); /* three retries, all failing the same way */
	CHECK(access(sub, F_OK) < 0); /* the directory is not ours to create */

	/* Another errno is logged once more: the parent is now a file. */
	CHECK_INT_EQ(write_text(sub, "not a directory\n"), 0);
	run_for(0.25);
	CHECK_INT_EQ(f.failed_errno, ENOTDIR);
	CHECK_INT_EQ(unlink(sub), 0);

	CHECK_INT_EQ(mkdir(sub, 0755), 0);
	elapsed = run_until_file_is(path, "5\n", 0.5);
	CHECK(elapsed >= 0 && elapsed < 0.3);
	CHECK_INT_EQ(f.failed_errno, 0);
	out = capture_end(&cap);

	/* Each names the component at fault. */
	snprintf(expected, sizeof(expected),
		 "pgtrackd: error: track \"t\": cannot write 5 to %s: %s: No such file or "
		 "directory; retrying every ",
		 path, sub);
	CHECK_INT_EQ(count_substr(out, expected), 1);
	snprintf(expected, sizeof(expected),
		 "pgtrackd: error: track \"t\": cannot write 5 to %s: %s is not a directory; "
		 "retrying every ",
		 path, sub);
	CHECK_INT_EQ(count_substr(out, expected), 1);
	CHECK(retry_text_ok(out, 100));
	snprintf(expected, sizeof(expected),
		 "pgtrackd: notice: track \"t\": wrote 5 to %s again after the earlier failure "
		 "(Not a directory)\n",
		 path);
	CHECK_INT_EQ(count_substr(out, expected), 1);
	CHECK_INT_EQ(count_substr(out, "\n"), 3);
	free(out);

	CHECK_INT_EQ(count_entries(sub), 1);
	track_file_finish(&f);
	unlink(path);
	rmdir(sub);
}

static void test_retry_interval_in_message(void)
{
	struct track_file f;
	struct capture cap;
	char path[4200], *out;

	/* The log line names the interval the retries really use. */
	path_in(path, sizeof(path), "nodir/track");
	track_file_init(&f, loop, "t", path, 250);
	capture_begin(&cap, dir);
	CHECK_INT_EQ(track_file_write(&f, 1), -ENOENT);
	out = capture_end(&cap);
	CHECK(retry_text_ok(out, 250));
	free(out);
	track_file_finish(&f);
}

/*
 * A directory opened up behind our back (defect 9B): the value is still
 * written, with one warning per reminder period, and a notice once put
 * right.  Only the configuration check refuses such a directory.
 */
static void test_open_directory_still_written(void)
{
	struct track_file f;
	struct capture cap;
	char sub[4200], path[4300], expected[8800], *out;

	path_in(sub, sizeof(sub), "opened");
	snprintf(path, sizeof(path), "%s/track", sub);
	CHECK_INT_EQ(mkdir(sub, 0755), 0);
	track_file_init(&f, loop, "t", path, 1000);
	track_file_set_reminder(&f, 200);
	capture_begin(&cap, dir);
	CHECK_INT_EQ(track_file_write(&f, 100), 0);

	CHECK_INT_EQ(chmod(sub, 0777), 0);
	CHECK_INT_EQ(track_file_write(&f, -254), 0);
	CHECK(file_is(path, "-254\n"));
	CHECK_INT_EQ(f.failed_errno, 0);
	CHECK_INT_EQ(track_file_write(&f, 0), 0);       /* within the period: quiet */
	CHECK(file_is(path, "0\n"));
	usleep(250 * 1000);
	CHECK_INT_EQ(track_file_write(&f, 5), 0);       /* the next period: reminded */
	CHECK(file_is(path, "5\n"));

	CHECK_INT_EQ(chmod(sub, 0755), 0);
	CHECK_INT_EQ(track_file_write(&f, 6), 0);
	CHECK_INT_EQ(track_file_write(&f, 7), 0);
	CHECK(file_is(path, "7\n"));
	out = capture_end(&cap);

	snprintf(expected, sizeof(expected),
		 "pgtrackd: warning: track \"t\": directory %s is writable by group or others "
		 "(mode 0777); wrote -254 to %s anyway (start and reload refuse this directory)\n",
		 sub, path);
	CHECK_INT_EQ(count_substr(out, expected), 1);
	snprintf(expected, sizeof(expected),
		 "pgtrackd: warning: track \"t\": directory %s is writable by group or others "
		 "(mode 0777); wrote 5 to %s anyway (start and reload refuse this directory) "
		 "(1 more writes since the last warning)\n",
		 sub, path);
	CHECK_INT_EQ(count_substr(out, expected), 1);
	snprintf(expected, sizeof(expected),
		 "pgtrackd: notice: track \"t\": directory %s passes the checks again\n", sub);
	CHECK_INT_EQ(count_substr(out, expected), 1);
	CHECK_INT_EQ(count_substr(out, "\n"), 3);
	free(out);

	CHECK_INT_EQ(count_entries(sub), 1);
	track_file_finish(&f);
	unlink(path);
	rmdir(sub);
}

int main(void)
{
	double start;

	scratch_create(dir, sizeof(dir));
	log_init("pgtrackd", true, 0);
	loop = ev_loop_new(EVFLAG_AUTO);
	if (!loop) {
		printf("ev_loop_new failed\n");
		return 1;
	}
	start = ev_time();
	test_write();
	test_writes_without_sync();
	test_unchanged_file_left_alone();
	test_restore();
	test_retry_after_missing_directory();
	test_retry_interval_in_message();
	test_open_directory_still_written();
	CHECK(ev_time() - start < 2.5);
	ev_loop_destroy(loop);
	CHECK_INT_EQ(count_entries(dir), 0);
	scratch_remove(dir);
	CHECK_DONE();
}
