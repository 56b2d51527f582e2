#include "netfs.h"

#include <string.h>

#include "util.h"

static const struct {
	const char *type;
	unsigned long magic;
} netfs[] = {
	{ "nfs", 0x6969UL },        { "nfs4", 0x6969UL },
	{ "cifs", 0xff534d42UL },   { "smb3", 0xfe534d42UL },
	{ "smbfs", 0x517bUL },      { "ncpfs", 0x564cUL },
	{ "ceph", 0x00c36400UL },   { "9p", 0x01021997UL },
	{ "afs", 0x5346414fUL },    { "afs", 0x6b414653UL }, /* OpenAFS, kAFS */
	{ "gpfs", 0x47504653UL },   { "lustre", 0x0bd00bd0UL },
	{ "ocfs2", 0x7461636fUL },  { "gfs2", 0x01161970UL },
	{ "beegfs", 0x19830326UL }, { "orangefs", 0x20030528UL },
	{ "fuse", 0x65735546UL },   { "fuseblk", 0x65735546UL },
	{ "glusterfs", 0x65735546UL }, /* a FUSE filesystem */
};

bool netfs_type(const char *type)
{
	if (strncmp(type, "fuse.", 5) == 0) /* fuse.sshfs, fuse.glusterfs, ... */
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(netfs); i++)
		if (strcmp(type, netfs[i].type) == 0)
			return true;
	return false;
}

bool netfs_magic(unsigned long magic)
{
	for (size_t i = 0; i < ARRAY_SIZE(netfs); i++)
		if (magic == netfs[i].magic)
			return true;
	return false;
}
