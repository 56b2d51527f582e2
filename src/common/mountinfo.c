#include "mountinfo.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* Field `n` (0-based, space-separated) of the line at p, its length in *len; NULL if none. */
static const char *field(const char *p, const char *eol, int n, size_t *len)
{
	for (int i = 0; i < n; i++) {
		p = memchr(p, ' ', (size_t)(eol - p));
		if (!p)
			return NULL;
		p++;
	}
	const char *end = memchr(p, ' ', (size_t)(eol - p));

	*len = (size_t)((end ? end : eol) - p);
	return p;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static bool unescape(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			c = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

static bool holds(const char *mount_point, const char *path)
{
	size_t n = strlen(mount_point);

	if (strcmp(mount_point, "/") == 0)
		return true;
	return strncmp(path, mount_point, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The filesystem type: the field after the " - " that ends the optional fields. */
static const char *type_of(const char *line, const char *eol, size_t *len)
{
	const char *p = field(line, eol, 6, len);

	while (p && !(*len == 1 && *p == '-'))
		p = field(p, eol, 1, len);
	return p ? field(p, eol, 1, len) : NULL;
}

int mountinfo_fstype(const char *text, const char *path, char *type, size_t size)
{
	size_t best = 0;
	bool found = false;
	char mp[PATH_MAX];

	if (path[0] != '/')
		return -EINVAL;
	for (const char *line = text; *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = 0, tlen = 0;

		if (!eol)
			eol = line + strlen(line);
		const char *m = field(line, eol, 4, &len);
		const char *t = type_of(line, eol, &tlen);

		if (m && t && tlen > 0 && unescape(m, len, mp, sizeof(mp)) && holds(mp, path) &&
		    strlen(mp) >= best) {
			best = strlen(mp);
			found = true;
			if (tlen >= size)
				tlen = size - 1;
			memcpy(type, t, tlen);
			type[tlen] = '\0';
		}
		line = *eol ? eol + 1 : eol;
	}
	return found ? 0 : -ENOENT;
}

bool fstype_may_block(const char *type)
{
	static const char *const blocking[] = {
		"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "ceph", "9p", "afs", "gpfs",
		"lustre", "glusterfs", "ocfs2", "gfs2", "fuse", "fuseblk", "beegfs", "orangefs",
	};

	if (strncmp(type, "fuse.", 5) == 0)
		return true;
	for (size_t i = 0; i < sizeof(blocking) / sizeof(blocking[0]); i++)
		if (strcmp(type, blocking[i]) == 0)
			return true;
	return false;
}
