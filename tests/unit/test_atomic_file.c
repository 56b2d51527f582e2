/* atomic_file (src/common/atomic_file.h): replace by rename, compare. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "check.h"
#include "testutil.h"

static char dir[256];

/* As pgtrackd writes a track file: every directory check on. */
static int awrite(const char *path, const void *data, size_t len, mode_t mode)
{
	char why[512];

	return atomic_file_write(path, data, len, mode,
				 ATOMIC_FILE_PRIVATE_DIR | ATOMIC_FILE_OWNED_DIR, why, sizeof(why));
}

static void path_in(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static void test_write_new(void)
{
	char path[4200], buf[64];
	struct stat st;

	path_in(path, sizeof(path), "new");
	CHECK_INT_EQ(awrite(path, "-254\n", 5, 0644), 0);
	CHECK_INT_EQ(read_text(path, buf, sizeof(buf)), 5);
	CHECK_STR_EQ(buf, "-254\n");
	CHECK_INT_EQ(stat(path, &st), 0);
	CHECK_INT_EQ(st.st_mode & 07777, 0644);
	CHECK(S_ISREG(st.st_mode));
	/* Only the target: no temp file left behind. */
	CHECK_INT_EQ(count_entries(dir), 1);
	unlink(path);
}

static void test_mode_ignores_umask(void)
{
	char path[4200];
	struct stat st;
	mode_t old = umask(077);

	path_in(path, sizeof(path), "mode");
	CHECK_INT_EQ(awrite(path, "1\n", 2, 0644), 0);
	CHECK_INT_EQ(stat(path, &st), 0);
	CHECK_INT_EQ(st.st_mode & 07777, 0644);

	/* Rewriting applies the new mode. */
	CHECK_INT_EQ(awrite(path, "2\n", 2, 0600), 0);
	CHECK_INT_EQ(stat(path, &st), 0);
	CHECK_INT_EQ(st.st_mode & 07777, 0600);
	umask(old);
	unlink(path);
	CHECK_INT_EQ(count_entries(dir), 0);
}

static void test_replace_by_rename(void)
{
	char path[4200], buf[64];
	struct stat before, after;
	int fd;

	path_in(path, sizeof(path), "track");
	CHECK_INT_EQ(write_text(path, "100\n"), 0);
	CHECK_INT_EQ(stat(path, &before), 0);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);

	CHECK_INT_EQ(awrite(path, "-254\n", 5, 0644), 0);
	CHECK_INT_EQ(stat(path, &after), 0);
	/* A new inode under the old name... */
	CHECK(before.st_ino != after.st_ino);
	CHECK_INT_EQ(read_text(path, buf, sizeof(buf)), 5);
	CHECK_STR_EQ(buf, "-254\n");
	/* ...while the old file, still open, keeps its old content. */
	if (fd >= 0) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

		CHECK_INT_EQ(n, 4);
		buf[n > 0 ? n : 0] = '\0';
		CHECK_STR_EQ(buf, "100\n");
		close(fd);
	}
	CHECK_INT_EQ(count_entries(dir), 1);

	/* Longer then shorter content: no leftovers of the longer one. */
	CHECK_INT_EQ(awrite(path, "123456789\n", 10, 0644), 0);
	CHECK_INT_EQ(awrite(path, "7\n", 2, 0644), 0);
	CHECK_INT_EQ(read_text(path, buf, sizeof(buf)), 2);
	CHECK_STR_EQ(buf, "7\n");

	/* Empty content. */
	CHECK_INT_EQ(awrite(path, "", 0, 0644), 0);
	CHECK_INT_EQ(read_text(path, buf, sizeof(buf)), 0);
	CHECK_INT_EQ(count_entries(dir), 1);
	unlink(path);
}

static void test_binary_content(void)
{
	static const char data[] = { 'a', '\0', 'b', '\n', '\0' };
	char path[4200], buf[16];
	int fd;

	path_in(path, sizeof(path), "bin");
	CHECK_INT_EQ(awrite(path, data, sizeof(data), 0644), 0);
	fd = open(path, O_RDONLY);
	CHECK_INT_EQ(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(data));
	CHECK(memcmp(buf, data, sizeof(data)) == 0);
	close(fd);
	CHECK_INT_EQ(atomic_file_compare(path, data, sizeof(data)), 0);
	CHECK_INT_EQ(atomic_file_compare(path, data, 3), 1);
	unlink(path);
}

static void test_missing_directory(void)
{
	char path[4300], sub[4200];

	path_in(sub, sizeof(sub), "gone");
	snprintf(path, sizeof(path), "%s/track", sub);
	CHECK_INT_EQ(awrite(path, "0\n", 2, 0644), -ENOENT);
	CHECK_INT_EQ(count_entries(dir), 0);
	CHECK(access(sub, F_OK) < 0);

	/* A target that names a directory. */
	CHECK_INT_EQ(mkdir(sub, 0755), 0);
	CHECK_INT_EQ(awrite(sub, "0\n", 2, 0644), -EISDIR);
	CHECK_INT_EQ(count_entries(sub), 0);
	CHECK_INT_EQ(count_entries(dir), 1);
	/* A path ending in a slash has no file name. */
	snprintf(path, sizeof(path), "%s/", sub);
	CHECK_INT_EQ(awrite(path, "0\n", 2, 0644), -EISDIR);
	CHECK_INT_EQ(count_entries(sub), 0);
	rmdir(sub);
}

static void test_relative_path(void)
{
	char cwd[4096], buf[16];

	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_INT_EQ(chdir(dir), 0);
	CHECK_INT_EQ(awrite("rel", "5\n", 2, 0644), 0);
	CHECK_INT_EQ(read_text("rel", buf, sizeof(buf)), 2);
	CHECK_STR_EQ(buf, "5\n");
	CHECK_INT_EQ(atomic_file_compare("rel", "5\n", 2), 0);
	CHECK_INT_EQ(count_entries("."), 1);
	unlink("rel");
	CHECK_INT_EQ(chdir(cwd), 0);
}

static void test_compare(void)
{
	char path[4200], link_path[4200];
	char big[10000];

	path_in(path, sizeof(path), "cmp");
	CHECK_INT_EQ(atomic_file_compare(path, "100\n", 4), -ENOENT);
	CHECK_INT_EQ(count_entries(dir), 0);

	CHECK_INT_EQ(write_text(path, "100\n"), 0);
	CHECK_INT_EQ(atomic_file_compare(path, "100\n", 4), 0);
	CHECK_INT_EQ(atomic_file_compare(path, "101\n", 4), 1);
	CHECK_INT_EQ(atomic_file_compare(path, "100", 3), 1);    /* file is longer */
	CHECK_INT_EQ(atomic_file_compare(path, "100\n\n", 5), 1); /* file is shorter */
	CHECK_INT_EQ(atomic_file_compare(path, "", 0), 1);

	CHECK_INT_EQ(write_text(path, "100\ntrailing garbage\n"), 0);
	CHECK_INT_EQ(atomic_file_compare(path, "100\n", 4), 1);

	CHECK_INT_EQ(write_text(path, ""), 0);
	CHECK_INT_EQ(atomic_file_compare(path, "", 0), 0);
	CHECK_INT_EQ(atomic_file_compare(path, "0\n", 2), 1);

	/* Content longer than any read buffer: equal, different at the end, shorter, longer. */
	memset(big, '1', sizeof(big));
	CHECK_INT_EQ(awrite(path, big, sizeof(big), 0644), 0);
	CHECK_INT_EQ(atomic_file_compare(path, big, sizeof(big)), 0);
	CHECK_INT_EQ(atomic_file_compare(path, big, sizeof(big) - 1), 1);
	big[sizeof(big) - 1] = '2';
	CHECK_INT_EQ(atomic_file_compare(path, big, sizeof(big)), 1);
	CHECK_INT_EQ(write_text(path, "1"), 0);
	CHECK_INT_EQ(atomic_file_compare(path, big, sizeof(big)), 1);

	/* A symlink at the last component is not followed. */
	CHECK_INT_EQ(write_text(path, "100\n"), 0);
	path_in(link_path, sizeof(link_path), "cmp.link");
	CHECK_INT_EQ(symlink(path, link_path), 0);
	CHECK_INT_EQ(atomic_file_compare(link_path, "100\n", 4), -ELOOP);
	unlink(link_path);

	/* A directory cannot be read as a file. */
	CHECK_INT_EQ(atomic_file_compare(dir, "100\n", 4), -EISDIR);
	unlink(path);
}

static void test_write_replaces_symlink(void)
{
	char path[4200], target[4200], buf[16];
	struct stat st;

	/* rename() replaces the link itself, never writes through it. */
	path_in(target, sizeof(target), "elsewhere");
	path_in(path, sizeof(path), "link");
	CHECK_INT_EQ(write_text(target, "keep\n"), 0);
	CHECK_INT_EQ(symlink(target, path), 0);
	CHECK_INT_EQ(awrite(path, "9\n", 2, 0644), 0);
	CHECK_INT_EQ(lstat(path, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_INT_EQ(read_text(target, buf, sizeof(buf)), 5);
	CHECK_STR_EQ(buf, "keep\n");
	CHECK_INT_EQ(count_entries(dir), 2);
	unlink(path);
	unlink(target);
}

static void test_symlinked_directory_not_followed(void)
{
	char real[4200], link_path[4200], path[4300], in_real[4300], why[512];
	const char *name;

	/* A directory of the path swapped for a symlink: nothing lands in its target. */
	path_in(real, sizeof(real), "real");
	path_in(link_path, sizeof(link_path), "sub");
	CHECK_INT_EQ(mkdir(real, 0755), 0);
	CHECK_INT_EQ(symlink(real, link_path), 0);
	snprintf(path, sizeof(path), "%s/track", link_path);
	snprintf(in_real, sizeof(in_real), "%s/track", real);

	CHECK_INT_EQ(atomic_file_write(path, "1\n", 2, 0644, 0, why, sizeof(why)), -ELOOP);
	CHECK(strstr(why, link_path) != NULL);
	CHECK(strstr(why, "is a symbolic link") != NULL);
	CHECK_INT_EQ(count_entries(real), 0);

	/* Reading does not follow it either, even with a file behind it. */
	CHECK_INT_EQ(write_text(in_real, "1\n"), 0);
	CHECK_INT_EQ(atomic_file_compare(path, "1\n", 2), -ELOOP);
	CHECK_INT_EQ(atomic_file_open_dir(path, 0, &name, NULL, 0), -ELOOP);
	unlink(in_real);
	unlink(link_path);

	/* A file where a directory should be. */
	CHECK_INT_EQ(write_text(link_path, "x\n"), 0);
	CHECK_INT_EQ(atomic_file_write(path, "1\n", 2, 0644, 0, why, sizeof(why)), -ENOTDIR);
	CHECK(strstr(why, "is not a directory") != NULL);
	unlink(link_path);

	/* The same directory reached without the link is fine; "." and ".." are walked. */
	snprintf(path, sizeof(path), "%s/./../%s//track", real, strrchr(real, '/') + 1);
	CHECK_INT_EQ(awrite(path, "2\n", 2, 0644), 0);
	CHECK_INT_EQ(atomic_file_compare(in_real, "2\n", 2), 0);
	CHECK_INT_EQ(count_entries(real), 1);
	unlink(in_real);
	rmdir(real);
}

/*
 * Warn only (defect 9B): written all the same, 1 and the finding in why; a
 * clean directory gives 0 and leaves why alone.  sub/track holds "2\n".
 */
static void test_directory_checks_warn_only(const char *sub, const char *path)
{
	char why[512];

	CHECK_INT_EQ(chmod(sub, 0777), 0);
	CHECK_INT_EQ(atomic_file_write(path, "4\n", 2, 0644, ATOMIC_FILE_PRIVATE_DIR |
				       ATOMIC_FILE_OWNED_DIR | ATOMIC_FILE_CHECKS_WARN_ONLY, why,
				       sizeof(why)), 1);
	CHECK(strstr(why, "writable by group or others (mode 0777)") != NULL);
	CHECK_INT_EQ(atomic_file_compare(path, "4\n", 2), 0);
	CHECK_INT_EQ(count_entries(sub), 1);
	if (geteuid() == 0) {
		CHECK_INT_EQ(chmod(sub, 0755), 0);
		CHECK_INT_EQ(chown(sub, 65534, 65534), 0);
		CHECK_INT_EQ(atomic_file_write(path, "5\n", 2, 0644, ATOMIC_FILE_OWNED_DIR |
					       ATOMIC_FILE_CHECKS_WARN_ONLY, why, sizeof(why)), 1);
		CHECK(strstr(why, "owned by uid 65534") != NULL);
		CHECK_INT_EQ(atomic_file_compare(path, "5\n", 2), 0);
		CHECK_INT_EQ(chown(sub, 0, 0), 0);
	}
	CHECK_INT_EQ(chmod(sub, 0755), 0);
	snprintf(why, sizeof(why), "untouched");
	CHECK_INT_EQ(atomic_file_write(path, "6\n", 2, 0644, ATOMIC_FILE_PRIVATE_DIR |
				       ATOMIC_FILE_OWNED_DIR | ATOMIC_FILE_CHECKS_WARN_ONLY, why,
				       sizeof(why)), 0);
	CHECK_STR_EQ(why, "untouched");
	/* A symlink along the path is still refused. */
	{
		char link_path[4300], via[4400];

		path_in(link_path, sizeof(link_path), "dlink");
		CHECK_INT_EQ(symlink(sub, link_path), 0);
		snprintf(via, sizeof(via), "%s/track", link_path);
		CHECK_INT_EQ(atomic_file_write(via, "7\n", 2, 0644, ATOMIC_FILE_PRIVATE_DIR |
					       ATOMIC_FILE_OWNED_DIR | ATOMIC_FILE_CHECKS_WARN_ONLY,
					       why, sizeof(why)), -ELOOP);
		CHECK_INT_EQ(atomic_file_compare(path, "6\n", 2), 0);
		unlink(link_path);
	}
}

static void test_directory_checks(void)
{
	char sub[4200], path[4300], why[512];
	const char *name;
	int fd;

	path_in(sub, sizeof(sub), "d");
	snprintf(path, sizeof(path), "%s/track", sub);
	CHECK_INT_EQ(mkdir(sub, 0755), 0);

	fd = atomic_file_open_dir(path, ATOMIC_FILE_PRIVATE_DIR | ATOMIC_FILE_OWNED_DIR, &name,
				  why, sizeof(why));
	CHECK(fd >= 0);
	CHECK_STR_EQ(name, "track");
	if (fd >= 0)
		close(fd);

	/* Writable by group or others: refused, sticky or not. */
	CHECK_INT_EQ(chmod(sub, 0777), 0);
	CHECK_INT_EQ(awrite(path, "1\n", 2, 0644), -EPERM);
	CHECK_INT_EQ(atomic_file_write(path, "1\n", 2, 0644, ATOMIC_FILE_PRIVATE_DIR, why,
				       sizeof(why)), -EPERM);
	CHECK(strstr(why, "writable by group or others (mode 0777)") != NULL);
	CHECK(strstr(why, sub) != NULL);
	CHECK_INT_EQ(count_entries(sub), 0);
	CHECK_INT_EQ(chmod(sub, 0770), 0);
	CHECK_INT_EQ(awrite(path, "1\n", 2, 0644), -EPERM);
	/* Without the flag, the caller does not mind. */
	CHECK_INT_EQ(atomic_file_write(path, "1\n", 2, 0644, 0, NULL, 0), 0);
	/* Sticky: another user could have created the file first (defect 9A). */
	CHECK_INT_EQ(chmod(sub, 01777), 0);
	CHECK_INT_EQ(atomic_file_write(path, "2\n", 2, 0644, ATOMIC_FILE_PRIVATE_DIR, why,
				       sizeof(why)), -EPERM);
	CHECK(strstr(why, "writable by group or others (mode 1777)") != NULL);
	CHECK_INT_EQ(chmod(sub, 01770), 0);
	CHECK_INT_EQ(awrite(path, "2\n", 2, 0644), -EPERM);
	CHECK_INT_EQ(atomic_file_compare(path, "1\n", 2), 0);
	/* Sticky and private is fine. */
	CHECK_INT_EQ(chmod(sub, 01755), 0);
	CHECK_INT_EQ(awrite(path, "2\n", 2, 0644), 0);
	CHECK_INT_EQ(atomic_file_compare(path, "2\n", 2), 0);
	CHECK_INT_EQ(chmod(sub, 0755), 0);

	/* Owned by someone else (root can hand it over). */
	if (geteuid() == 0) {
		CHECK_INT_EQ(chown(sub, 65534, 65534), 0);
		CHECK_INT_EQ(awrite(path, "3\n", 2, 0644), -EPERM);
		CHECK_INT_EQ(atomic_file_write(path, "3\n", 2, 0644, ATOMIC_FILE_OWNED_DIR, why,
					       sizeof(why)), -EPERM);
		CHECK(strstr(why, "owned by uid 65534") != NULL);
		CHECK_INT_EQ(atomic_file_compare(path, "2\n", 2), 0);
		CHECK_INT_EQ(chown(sub, 0, 0), 0);
	}

	test_directory_checks_warn_only(sub, path);

	/* No file name: a directory. */
	snprintf(path, sizeof(path), "%s/.", sub);
	CHECK_INT_EQ(awrite(path, "1\n", 2, 0644), -EISDIR);
	snprintf(path, sizeof(path), "%s/..", sub);
	CHECK_INT_EQ(atomic_file_open_dir(path, 0, &name, NULL, 0), -EISDIR);

	snprintf(path, sizeof(path), "%s/track", sub);
	unlink(path);
	CHECK_INT_EQ(count_entries(sub), 0);
	rmdir(sub);
}

static void test_same_path(void)
{
	char d[4200], link_path[4200], a[4300], b[4300];

	path_in(d, sizeof(d), "x");
	CHECK_INT_EQ(mkdir(d, 0755), 0);
	snprintf(a, sizeof(a), "%s/t", d);
	CHECK(atomic_file_same_path(a, a));
	snprintf(b, sizeof(b), "%s//t", d);
	CHECK(atomic_file_same_path(a, b));
	snprintf(b, sizeof(b), "%s/./t", d);
	CHECK(atomic_file_same_path(a, b));
	snprintf(b, sizeof(b), "%s/../x/t", d);
	CHECK(atomic_file_same_path(a, b));
	path_in(link_path, sizeof(link_path), "alias");
	CHECK_INT_EQ(symlink(d, link_path), 0);
	snprintf(b, sizeof(b), "%s/t", link_path);
	CHECK(atomic_file_same_path(a, b));
	snprintf(b, sizeof(b), "%s/u", d);
	CHECK(!atomic_file_same_path(a, b));
	snprintf(b, sizeof(b), "%s/t", dir);
	CHECK(!atomic_file_same_path(a, b));
	unlink(link_path);
	rmdir(d);

	/* Directories that do not exist yet: the folded paths. */
	CHECK(atomic_file_same_path("/nonexistent/a/t", "/nonexistent//a/./t"));
	CHECK(atomic_file_same_path("/nonexistent/a/t", "/nonexistent/b/../a/t"));
	CHECK(atomic_file_same_path("/nonexistent/a/t", "/../nonexistent/a/t"));
	CHECK(!atomic_file_same_path("/nonexistent/a/t", "/nonexistent/a/u"));
	CHECK(!atomic_file_same_path("/nonexistent/a/t", "/nonexistent/t"));
	CHECK(!atomic_file_same_path("/nonexistent/a/t", "/nonexistent/a/b/../../t"));
}

int main(void)
{
	scratch_create(dir, sizeof(dir));
	test_write_new();
	test_mode_ignores_umask();
	test_replace_by_rename();
	test_binary_content();
	test_missing_directory();
	test_relative_path();
	test_compare();
	test_write_replaces_symlink();
	test_symlinked_directory_not_followed();
	test_directory_checks();
	test_same_path();
	CHECK_INT_EQ(count_entries(dir), 0);
	scratch_remove(dir);
	CHECK_DONE();
}
