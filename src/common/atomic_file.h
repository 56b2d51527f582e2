/*
 * atomic_file: replace a small file so that a reader (keepalived's inotify
 * watch) sees either the old or the new content, never a torn one.
 *
 * Temp file in the same directory, write loop, fsync, rename over the
 * target, fsync the directory.  The target is never unlinked; on error the
 * temp file is removed and the old content stays.
 */
#ifndef PGTRACK_ATOMIC_FILE_H
#define PGTRACK_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* 0 or -errno.  mode is applied to the new file (umask does not apply). */
int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Whether the file at path holds exactly data.  Stops reading at the first
 * difference; does not follow a symlink at the last component.  0 (equal),
 * 1 (different), or -errno (missing, unreadable).
 */
int atomic_file_compare(const char *path, const void *data, size_t len);

#endif
