/*
 * mountinfo: which filesystem holds a path, told from the text of
 * /proc/PID/mountinfo (procfs) without a lookup on that filesystem, which
 * on NFS or FUSE can block on a server or daemon that hangs.
 */
#ifndef PGTRACK_MOUNTINFO_H
#define PGTRACK_MOUNTINFO_H

#include <stddef.h>

/*
 * The type (e.g. "ext4", "nfs4", "fuse.sshfs") of the mount that holds
 * the absolute path `path`, from `text` in the format of
 * /proc/PID/mountinfo (proc(5)): of the mounts whose mount point is a
 * prefix of path, the longest that is not hidden, i.e. that no mount
 * listed after it covers (one on the same point or on a directory above
 * it that is not its ancestor by parent ID).  0, or -ENOENT when no line
 * matches, -EINVAL for a relative path, -ENOMEM.
 */
int mountinfo_fstype(const char *text, const char *path, char *type, size_t size);

#endif
