/*
 * netfs: the filesystems on which an open or a read can wait on something
 * other than the local kernel and disks (a server, a cluster, a FUSE
 * daemon), told by type name (mountinfo) or by magic number (fstatfs).
 * One table for both, so that the check before an open and the one after
 * it agree.
 */
#ifndef PGTRACK_NETFS_H
#define PGTRACK_NETFS_H

#include <stdbool.h>

/* The reason to give for a file on such a filesystem. */
#define NETFS_REASON "on a network or FUSE filesystem, where a read can block"

/* By type as in /proc/PID/mountinfo: "nfs4", "cifs", "fuse.sshfs", ... */
bool netfs_type(const char *type);

/* By statfs(2)'s f_type. */
bool netfs_magic(unsigned long magic);

#endif
