#include "track_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "duration.h"
#include "log.h"
#include "monotime.h"
#include "util.h"

/* keepalived runs as root and only reads; others may look. */
#define TRACK_FILE_MODE 0644

/* Whoever else may rename or replace files in the directory sets our value. */
#define TRACK_DIR_CHECKS (ATOMIC_FILE_PRIVATE_DIR | ATOMIC_FILE_OWNED_DIR)

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents);

void track_file_init(struct track_file *f, struct ev_loop *loop, const char *track_name,
		     const char *path, int64_t check_interval_ms)
{
	*f = (struct track_file){ .loop = loop, .track_name = track_name };
	ratelimit_init(&f->restore_log, TRACK_FILE_DEFAULT_REMINDER, TRACK_FILE_RESTORE_BURST);
	snprintf(f->path, sizeof(f->path), "%s", path);
	ev_timer_init(&f->check, check_cb, 0.0, (double)check_interval_ms / 1000.0);
}

void track_file_finish(struct track_file *f)
{
	ev_timer_stop(f->loop, &f->check);
}

void track_file_set_check_interval(struct track_file *f, int64_t check_interval_ms)
{
	f->check.repeat = (double)check_interval_ms / 1000.0;
	if (ev_is_active(&f->check))
		ev_timer_again(f->loop, &f->check);
}

static int write_now(struct track_file *f)
{
	char why[CONF_STR_SIZE + 160];
	int r = atomic_file_write(f->path, f->text, strlen(f->text), TRACK_FILE_MODE,
				  TRACK_DIR_CHECKS, why, sizeof(why));

	if (r < 0) {
		if (f->failed_errno != -r) {
			char every[32];

			duration_format((int64_t)(f->check.repeat * 1000.0 + 0.5), every, sizeof(every));
			log_error("track \"%s\": cannot write %d to %s: %s; retrying every %s",
				  f->track_name, f->value, f->path, why, every);
		}
		f->failed_errno = -r;
		return r;
	}
	if (f->failed_errno)
		log_notice("track \"%s\": wrote %d to %s again after the earlier failure (%s)",
			   f->track_name, f->value, f->path, strerror(f->failed_errno));
	f->failed_errno = 0;
	return 0;
}

int track_file_write(struct track_file *f, int value)
{
	f->value = value;
	f->has_value = true;
	snprintf(f->text, sizeof(f->text), "%d\n", value);
	if (!ev_is_active(&f->check))
		ev_timer_again(f->loop, &f->check);
	return write_now(f);
}

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct track_file *f = container_of(w, struct track_file, check);
	unsigned long held_back;
	int r;

	if (!f->has_value)
		return;
	if (f->failed_errno) {
		write_now(f);
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
			log_warnx("track \"%s\": %s was removed or cannot be read (%s); restoring "
				  "%d%s", f->track_name, f->path, strerror(-r), f->value, more);
		else
			log_warnx("track \"%s\": %s was changed behind our back; restoring %d%s",
				  f->track_name, f->path, f->value, more);
	}
	write_now(f);
}

void track_file_set_reminder(struct track_file *f, int64_t reminder_ms)
{
	f->restore_log.interval = (double)reminder_ms / 1000.0;
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
