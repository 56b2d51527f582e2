#include "track_file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "atomic_file.h"
#include "duration.h"
#include "monotime.h"
#include "track_log.h"
#include "util.h"

/* keepalived runs as root and only reads; others may look. */
#define TRACK_FILE_MODE 0644

/*
 * Whoever else may rename, replace or create files in the directory sets
 * our value: the configuration check (start, reload, -t) refuses such a
 * directory.  At run time the same finding is only warned about: a
 * directory opened up later (a RuntimeDirectoryMode drop-in, tmpfiles)
 * must not freeze the last value, and refusing to write would protect
 * nothing, since whoever may write the directory can replace the file
 * anyway.  A symlink or a non-directory along the path is still refused.
 */
#define TRACK_DIR_CHECKS (ATOMIC_FILE_PRIVATE_DIR | ATOMIC_FILE_OWNED_DIR)
/* A track file is runtime state, rewritten at every start: see ATOMIC_FILE_NO_SYNC. */
#define TRACK_DIR_CHECKS_RUNTIME (TRACK_DIR_CHECKS | ATOMIC_FILE_CHECKS_WARN_ONLY | ATOMIC_FILE_NO_SYNC)

/* What in the directory can change the file: entries come, go, are written or chmod'ed. */
#define WATCH_MASK                                                                          \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_ATTRIB |       \
	 IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW |      \
	 IN_EXCL_UNLINK)

/* After a restore, changes reported within this are left to the check interval. */
#define RESTORE_GAP_S 0.2

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void soon_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void changes_cb(struct ev_loop *loop, ev_io *w, int revents);

void track_file_init(struct track_file *f, struct ev_loop *loop, const char *track_name,
		     const char *path, int64_t check_interval_ms)
{
	*f = (struct track_file){ .loop = loop, .track_name = track_name };
	ratelimit_init(&f->restore_log, TRACK_FILE_DEFAULT_REMINDER, TRACK_FILE_RESTORE_BURST);
	ratelimit_init(&f->dir_log, TRACK_FILE_DEFAULT_REMINDER, 1);
	snprintf(f->path, sizeof(f->path), "%s", path);
	ev_timer_init(&f->check, check_cb, 0.0, (double)check_interval_ms / 1000.0);
	ev_io_init(&f->changes, changes_cb, -1, EV_READ);
	ev_timer_init(&f->soon, soon_cb, 0.0, 0.0);
}

static void unwatch(struct track_file *f)
{
	if (f->changes.fd < 0)
		return;
	ev_io_stop(f->loop, &f->changes);
	close(f->changes.fd);
	ev_io_set(&f->changes, -1, EV_READ);
}

/*
 * Watches the file's directory (a new inotify instance, so that a
 * directory replaced since is simply watched anew).  Failing that, the
 * check interval alone: said once.
 */
static void watch(struct track_file *f)
{
	char dir[CONF_STR_SIZE];
	const char *slash = strrchr(f->path, '/');
	int fd, err;

	unwatch(f);
	snprintf(dir, sizeof(dir), "%.*s", slash && slash != f->path ? (int)(slash - f->path) : 1,
		 slash ? f->path : ".");
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd >= 0 && inotify_add_watch(fd, dir, WATCH_MASK) >= 0) {
		ev_io_set(&f->changes, fd, EV_READ);
		ev_io_start(f->loop, &f->changes);
		f->watch_failed = false;
		return;
	}
	err = errno;
	if (fd >= 0)
		close(fd);
	/* A missing directory is the write's error to report; it is watched once it is back. */
	if (!f->watch_failed && err != ENOENT && err != ENOTDIR) {
		char every[32];

		duration_format((int64_t)(f->check.repeat * 1000.0 + 0.5), every, sizeof(every));
		track_log_named(f->track_name, PGTRACKD_LOG_NOTICE,
				"cannot watch %s for changes (%s); reading %s back every %s only",
				dir, strerror(err), f->path, every);
	}
	f->watch_failed = err != ENOENT && err != ENOTDIR;
}

void track_file_finish(struct track_file *f)
{
	ev_timer_stop(f->loop, &f->check);
	ev_timer_stop(f->loop, &f->soon);
	unwatch(f);
}

void track_file_set_check_interval(struct track_file *f, int64_t check_interval_ms)
{
	f->check.repeat = (double)check_interval_ms / 1000.0;
	if (ev_is_active(&f->check))
		ev_timer_again(f->loop, &f->check);
}

/* Once, then at most every reminder period while the directory stays so. */
static void warn_dir(struct track_file *f, const char *why)
{
	unsigned long held_back;
	char more[96] = "";

	f->dir_warned = true;
	if (!ratelimit_allow(&f->dir_log, monotime_now(), &held_back))
		return;
	if (held_back)
		snprintf(more, sizeof(more), " (%lu more writes since the last warning)", held_back);
	track_log_named(f->track_name, PGTRACKD_LOG_WARNING, "%s; wrote %d to %s anyway (start and "
			"reload refuse this directory)%s", why, f->value, f->path, more);
}

static int write_now(struct track_file *f)
{
	char why[CONF_STR_SIZE + 160];
	int r = atomic_file_write(f->path, f->text, strlen(f->text), TRACK_FILE_MODE,
				  TRACK_DIR_CHECKS_RUNTIME, why, sizeof(why));

	if (r < 0) {
		if (f->failed_errno != -r) {
			char every[32];

			duration_format((int64_t)(f->check.repeat * 1000.0 + 0.5), every, sizeof(every));
			track_log_named(f->track_name, PGTRACKD_LOG_ERROR,
					"cannot write %d to %s: %s; retrying every %s", f->value,
					f->path, why, every);
		}
		f->failed_errno = -r;
		return r;
	}
	if (f->failed_errno)
		track_log_named(f->track_name, PGTRACKD_LOG_NOTICE,
				"wrote %d to %s again after the earlier failure (%s)", f->value,
				f->path, strerror(f->failed_errno));
	f->failed_errno = 0;
	if (r > 0) {
		warn_dir(f, why);
	} else if (f->dir_warned) {
		const char *slash = strrchr(f->path, '/');

		track_log_named(f->track_name, PGTRACKD_LOG_NOTICE,
				"directory %.*s passes the checks again",
				slash ? (int)(slash == f->path ? 1 : slash - f->path) : 1,
				slash ? f->path : ".");
		f->dir_warned = false;
		ratelimit_init(&f->dir_log, f->dir_log.interval, 1);
	}
	return 0;
}

int track_file_write(struct track_file *f, int value)
{
	f->value = value;
	f->has_value = true;
	snprintf(f->text, sizeof(f->text), "%d\n", value);
	if (!ev_is_active(&f->check))
		ev_timer_again(f->loop, &f->check);
	if (f->changes.fd < 0)
		watch(f);
	return write_now(f);
}

static void check_now(struct track_file *f)
{
	unsigned long held_back;
	int r;

	if (!f->has_value)
		return;
	if (f->failed_errno) {
		if (write_now(f) == 0 && f->changes.fd < 0)
			watch(f); /* the directory is back */
		return;
	}
	r = atomic_file_compare(f->path, f->text, strlen(f->text));
	if (r == 0)
		return;
	if (r == -ELOOP || r == -ENOTDIR) {
		/* A symlink or a file along the path: write_now says which, once. */
	} else if (ratelimit_allow(&f->restore_log, monotime_now(), &held_back)) {
		/* Something that keeps rewriting the file must not flood the log. */
		char more[96] = "";

		if (held_back)
			snprintf(more, sizeof(more), " (restored %lu more times since the last "
				 "warning)", held_back);
		if (r < 0)
			track_log_named(f->track_name, PGTRACKD_LOG_WARNING,
					"%s was removed or cannot be read (%s); restoring %d%s",
					f->path, strerror(-r), f->value, more);
		else
			track_log_named(f->track_name, PGTRACKD_LOG_WARNING,
					"%s was changed behind our back; restoring %d%s", f->path,
					f->value, more);
	}
	if (write_now(f) == 0)
		f->rewrites++;
	f->last_restore = monotime_now();
}

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	check_now(container_of(w, struct track_file, check));
}

static void soon_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	check_now(container_of(w, struct track_file, soon));
}

/*
 * Something happened in the directory: if it concerns our file (or the
 * directory itself went, or events were lost), check at once.  Our own
 * writes show up too (a rename onto the name): their check finds our value.
 */
static void changes_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct track_file *f = container_of(w, struct track_file, changes);
	const char *slash = strrchr(f->path, '/');
	const char *name = slash ? slash + 1 : f->path;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false, rewatch = false;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW))
				rewatch = true;
			else if (ev->len && strcmp(ev->name, name) == 0)
				ours = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		rewatch = true;
	if (rewatch)
		watch(f);
	/*
	 * Another writer that puts its own value back at once (a second
	 * pgtrackd on the same file) must not make this a busy loop: a change
	 * right after a restore is checked RESTORE_GAP_S after it.
	 */
	double wait = f->last_restore + RESTORE_GAP_S - monotime_now();

	if (!rewatch && ours && wait > 0.0) {
		if (!ev_is_active(&f->soon)) {
			ev_timer_set(&f->soon, wait, 0.0);
			ev_timer_start(f->loop, &f->soon);
		}
		return;
	}
	if (ours || rewatch)
		check_now(f);
}

void track_file_set_reminder(struct track_file *f, int64_t reminder_ms)
{
	f->restore_log.interval = duration_seconds(reminder_ms);
	f->dir_log.interval = duration_seconds(reminder_ms);
}

int track_file_write_once(const char *path, int value, char *why, size_t size)
{
	char text[16];

	snprintf(text, sizeof(text), "%d\n", value);
	return atomic_file_write(path, text, strlen(text), TRACK_FILE_MODE, TRACK_DIR_CHECKS_RUNTIME,
				 why, size);
}

int track_file_check_path(const char *path, char *why, size_t size)
{
	const char *name;
	int fd = atomic_file_open_dir(path, TRACK_DIR_CHECKS, &name, why, size);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

bool track_file_same_path(const char *a, const char *b)
{
	return atomic_file_same_path(a, b);
}
