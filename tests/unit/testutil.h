/*
 * testutil: a scratch directory per test and small file helpers.
 */
#ifndef PGTRACK_TEST_UTIL_H
#define PGTRACK_TEST_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); exits on failure. */
static inline void scratch_create(char *dir, size_t size)
{
	const char *base = getenv("TMPDIR");

	if (!base || !*base)
		base = "/tmp";
	snprintf(dir, size, "%s/pgtrack-unit.XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(2);
	}
}

static inline int scratch_rm_one(const char *path, const struct stat *st, int flag,
				 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0)
		perror(path);
	return 0;
}

/* Removes dir and everything below it. */
static inline void scratch_remove(const char *dir)
{
	nftw(dir, scratch_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes len bytes to path (created 0644 or truncated); 0 or -1. */
static inline int write_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static inline int write_text(const char *path, const char *text)
{
	return write_bytes(path, text, strlen(text));
}

/* Reads up to size - 1 bytes of path into buf, NUL-terminated; length or -1. */
static inline ssize_t read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0) {
		buf[0] = '\0';
		return -1;
	}
	while (got < size - 1) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

/* Number of directory entries other than . and .. ; -1 if dir cannot be read. */
static inline int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

/*
 * Sends stderr to a file while the code under test logs, so that its log
 * lines can be checked.  capture_end() restores stderr and returns what was
 * written (malloc'ed, caller frees).
 */
struct capture {
	int saved_fd;
	char path[4096];
};

static inline void capture_begin(struct capture *c, const char *dir)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/stderr.capture", dir);
	fflush(stderr);
	c->saved_fd = dup(STDERR_FILENO);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (c->saved_fd < 0 || fd < 0) {
		perror("capture_begin");
		exit(2);
	}
	dup2(fd, STDERR_FILENO);
	close(fd);
}

static inline char *capture_end(struct capture *c)
{
	char *buf = malloc(65536);

	fflush(stderr);
	dup2(c->saved_fd, STDERR_FILENO);
	close(c->saved_fd);
	if (!buf)
		exit(2);
	read_text(c->path, buf, 65536);
	unlink(c->path);
	/* Shows the captured lines in the test log too. */
	fputs(buf, stderr);
	return buf;
}

/* Number of (non-overlapping) occurrences of needle in haystack. */
static inline int count_substr(const char *haystack, const char *needle)
{
	int n = 0;
	size_t len = strlen(needle);

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + len, needle))
		n++;
	return n;
}

/* Whether text matches the extended regular expression re (REG_NEWLINE: ^ and $ per line). */
static inline bool regex_matches(const char *text, const char *re)
{
	regex_t rx;
	bool ok;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE) != 0) {
		printf("bad regex %s\n", re);
		return false;
	}
	ok = regexec(&rx, text, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

/* All that the non-blocking read end fd holds now, appended to out (at most size - 1 bytes kept). */
static inline size_t read_available(int fd, char *out, size_t have, size_t size)
{
	ssize_t n;

	while (have + 1 < size && (n = read(fd, out + have, size - 1 - have)) > 0)
		have += (size_t)n;
	out[have] = '\0';
	return have;
}


#endif
