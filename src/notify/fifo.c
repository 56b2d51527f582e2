#include "fifo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "linebuf.h"
#include "log.h"
#include "util.h"

struct fifo_reader {
	struct ev_loop *loop;
	const struct fifo_handler *handler;
	void *user;
	char path[CONF_STR_SIZE];
	uid_t owner;
	int fd;
	dev_t dev;
	ino_t ino;
	ev_io io;
	ev_stat watch;
	struct linebuf lines;
	bool missing_logged;
	int reopen_errno_logged;
};

/* Bounded work per wakeup: other watchers get their turn. */
#define READS_PER_WAKEUP 32

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void watch_cb(struct ev_loop *loop, ev_stat *w, int revents);

static int open_checked(const char *path, uid_t owner, bool create, struct stat *st,
			char *why, size_t why_size)
{
	int fd;

	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkfifo(path, 0600) < 0 && errno != EEXIST) {
			int r = -errno;

			snprintf(why, why_size, "cannot create FIFO %s: %s", path, strerror(errno));
			return r;
		}
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		int r = -errno;

		snprintf(why, why_size, "cannot open FIFO %s: %s%s", path, strerror(errno),
			 errno == ELOOP ? " (it is a symbolic link)" : "");
		return r;
	}
	if (fstat(fd, st) < 0) {
		int r = -errno;

		snprintf(why, why_size, "cannot stat FIFO %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	if (!S_ISFIFO(st->st_mode)) {
		snprintf(why, why_size, "%s is not a FIFO", path);
		close(fd);
		return -EINVAL;
	}
	if (st->st_uid != owner && st->st_uid != geteuid()) {
		snprintf(why, why_size,
			 "FIFO %s is owned by uid %u, expected uid %u (fifo_owner) or our own %u",
			 path, (unsigned)st->st_uid, (unsigned)owner, (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, why_size,
			 "FIFO %s is writable by %s (mode %04o): anyone who can write it can "
			 "claim MASTER; refusing it",
			 path, (st->st_mode & S_IWOTH) ? "others" : "its group",
			 (unsigned)(st->st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	return fd;
}

static void feed_cb(const char *line, size_t len, bool overlong, void *user)
{
	struct fifo_reader *f = user;

	f->handler->line(f->user, line, len, overlong);
}

/* Reads what fd holds; false when more may be waiting (the bound was hit). */
static bool read_available(struct fifo_reader *f, int fd)
{
	char buf[16384];

	for (int i = 0; i < READS_PER_WAKEUP; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			linebuf_feed(&f->lines, buf, (size_t)n, feed_cb, f);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			log_warn("FIFO %s: read failed", f->path);
		return true;
	}
	return false;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fifo_reader *f = container_of(w, struct fifo_reader, io);

	read_available(f, f->fd);
	f->handler->drained(f->user);
}

static void start_io(struct fifo_reader *f)
{
	ev_io_set(&f->io, f->fd, EV_READ);
	ev_io_start(f->loop, &f->io);
}

static void switch_to(struct fifo_reader *f, int fd, const struct stat *st)
{
	int old = f->fd;

	ev_io_stop(f->loop, &f->io);
	/* What keepalived wrote before it replaced the FIFO comes first. */
	if (old >= 0) {
		for (int i = 0; i < 64 && !read_available(f, old); i++)
			;
		close(old);
	}
	f->fd = fd;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	start_io(f);
	f->handler->drained(f->user);
}

static void watch_cb(struct ev_loop *loop, ev_stat *w, int revents)
{
	struct fifo_reader *f = container_of(w, struct fifo_reader, watch);
	struct stat st;
	char why[512];
	int fd;

	if (lstat(f->path, &st) < 0) {
		if (!f->missing_logged)
			log_warnx("FIFO %s was removed; still reading the one we hold and waiting "
				  "for keepalived to create it again", f->path);
		f->missing_logged = true;
		return;
	}
	f->missing_logged = false;
	if (st.st_dev == f->dev && st.st_ino == f->ino)
		return;
	fd = open_checked(f->path, f->owner, false, &st, why, sizeof(why));
	if (fd < 0) {
		if (f->reopen_errno_logged != fd)
			log_error("%s; still reading the FIFO we hold", why);
		f->reopen_errno_logged = fd;
		return;
	}
	f->reopen_errno_logged = 0;
	log_info("FIFO %s was replaced (keepalived reload?): reading the new one", f->path);
	switch_to(f, fd, &st);
}

struct fifo_reader *fifo_reader_create(struct ev_loop *loop, const char *path, uid_t owner,
				       const struct fifo_handler *handler, void *user, int *err,
				       char *why, size_t why_size)
{
	struct fifo_reader *f;
	struct stat st;
	int fd;

	f = calloc(1, sizeof(*f));
	if (!f) {
		*err = -ENOMEM;
		snprintf(why, why_size, "cannot read FIFO %s: %s", path, strerror(ENOMEM));
		return NULL;
	}
	fd = open_checked(path, owner, true, &st, why, why_size);
	if (fd < 0) {
		*err = fd;
		free(f);
		return NULL;
	}
	*f = (struct fifo_reader){ .loop = loop, .handler = handler, .user = user, .owner = owner,
				   .fd = fd, .dev = st.st_dev, .ino = st.st_ino };
	snprintf(f->path, sizeof(f->path), "%s", path);
	linebuf_init(&f->lines);
	ev_init(&f->io, io_cb);
	start_io(f);
	ev_stat_init(&f->watch, watch_cb, f->path, 1.0);
	ev_stat_start(loop, &f->watch);
	*err = 0;
	return f;
}

void fifo_reader_drain(struct fifo_reader *f)
{
	for (int i = 0; i < 64 && !read_available(f, f->fd); i++)
		;
	f->handler->drained(f->user);
}

void fifo_reader_destroy(struct fifo_reader *f)
{
	if (!f)
		return;
	ev_io_stop(f->loop, &f->io);
	ev_stat_stop(f->loop, &f->watch);
	close(f->fd);
	free(f);
}

const char *fifo_reader_path(const struct fifo_reader *f)
{
	return f->path;
}

bool fifo_reader_present(const struct fifo_reader *f)
{
	return !f->missing_logged;
}
