/*
 * atomic_file: replace a small file so that a reader (keepalived's inotify
 * watch) sees either the old or the new content, never a torn one.
 *
 * The directory is reached by a walk from / (or the working directory, for
 * a relative path) that opens one component at a time with O_NOFOLLOW and
 * refuses a symlink anywhere in the path: whoever can rename a directory
 * along the way cannot send a root writer elsewhere.  Everything after that
 * is relative to the directory's fd: temp file created O_EXCL|O_NOFOLLOW,
 * write loop, fsync, renameat over the target, fsync the directory.  The
 * target is never unlinked; on error the temp file is removed and the old
 * content stays.
 */
#ifndef PGTRACK_ATOMIC_FILE_H
#define PGTRACK_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Checks of the directory that holds the file (flags below). */
enum {
	/*
	 * Refuse a directory that group or others may write to, sticky or
	 * not: in a sticky directory (/tmp) another user may create the file
	 * first, and then we can neither replace nor remove it.
	 */
	ATOMIC_FILE_PRIVATE_DIR = 1 << 0,
	/* Refuse a directory owned by neither root nor the effective user. */
	ATOMIC_FILE_OWNED_DIR = 1 << 1,
	/*
	 * atomic_file_write only: a directory that fails the two checks above
	 * is written all the same, and the write returns 1 instead of 0 with
	 * why saying what the checks found.  The walk still refuses a symlink
	 * or a non-directory along the path (that would redirect the write).
	 */
	ATOMIC_FILE_CHECKS_WARN_ONLY = 1 << 2,
	/*
	 * atomic_file_write only: no fsync of the file or its directory.  For
	 * runtime state that is rewritten at every start (a track file): the
	 * rename alone makes the new text whole for readers, and an fsync on a
	 * busy disk would hold it back from them, in the caller's event loop.
	 */
	ATOMIC_FILE_NO_SYNC = 1 << 3,
};

/*
 * Opens (O_RDONLY|O_DIRECTORY) the directory holding path's last component
 * as described above and checks it against flags.  *name points at the last
 * component inside path.  An fd, or -errno: -ELOOP (a component is a
 * symlink), -ENOTDIR (one is not a directory), -ENOENT (one is missing),
 * -EPERM (the directory fails a flags check), -EISDIR (path ends in "/",
 * "." or ".."), -ENAMETOOLONG.  When why is not NULL it gets a phrase
 * naming the component at fault ("/run/x is a symbolic link, ...").
 */
int atomic_file_open_dir(const char *path, unsigned flags, const char **name, char *why,
			 size_t why_size);

/*
 * Replaces path with data; 0 or -errno, with why (may be NULL) as above
 * (strerror alone when no component is at fault, followed by what the
 * checks found, in parentheses, under ATOMIC_FILE_CHECKS_WARN_ONLY).  1
 * when written although the directory failed the checks, under
 * ATOMIC_FILE_CHECKS_WARN_ONLY.  mode is applied to the new file (umask
 * does not apply).
 */
int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode,
		      unsigned flags, char *why, size_t why_size);

/*
 * Whether the file at path holds exactly data.  Stops reading at the first
 * difference; follows no symlink anywhere in path (directory checks are the
 * writer's).  0 (equal), 1 (different), or -errno (missing, unreadable).
 */
int atomic_file_compare(const char *path, const void *data, size_t len);

/*
 * Whether a and b name the same file: the same directory (device and inode,
 * following symlinks) and the same last component; when either directory
 * cannot be reached, the same path once "//", "/./" and "DIR/.." are
 * folded.
 */
bool atomic_file_same_path(const char *a, const char *b);

#endif
