#include "mountinfo.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

struct mount_entry {
	long id, parent;
	char *point;
	char type[64];
};

static bool parse_line(const char *line, const char *eol, struct mount_entry *e)
{
	char buf[PATH_MAX];
	size_t len = 0, tlen = 0;
	const char *m = field(line, eol, 4, &len);
	const char *t = type_of(line, eol, &tlen);
	char *end;

	if (!m || !t || tlen == 0 || !unescape(m, len, buf, sizeof(buf)))
		return false;
	e->id = strtol(line, &end, 10);
	if (*end != ' ')
		return false;
	e->parent = strtol(end + 1, &end, 10);
	if (*end != ' ' || !(e->point = strdup(buf)))
		return false;
	if (tlen >= sizeof(e->type))
		tlen = sizeof(e->type) - 1;
	memcpy(e->type, t, tlen);
	e->type[tlen] = '\0';
	return true;
}

static bool is_ancestor(const struct mount_entry *v, size_t n, size_t of, long id)
{
	long at = v[of].parent;

	for (size_t hops = 0; hops < n; hops++) {
		size_t k;

		if (at == id)
			return true;
		for (k = 0; k < n && v[k].id != at; k++)
			;
		if (k == n || v[k].parent == at)
			return false;
		at = v[k].parent;
	}
	return false;
}

/* Mounted over: a later mount on its mount point or on a directory above it, not its ancestor. */
static bool hidden(const struct mount_entry *v, size_t n, size_t i)
{
	for (size_t j = i + 1; j < n; j++)
		if (holds(v[j].point, v[i].point) && !is_ancestor(v, n, i, v[j].id))
			return true;
	return false;
}

static int visible_mount(const struct mount_entry *v, size_t n, const char *path)
{
	int best = -1;

	for (size_t i = 0; i < n; i++)
		if (holds(v[i].point, path) && !hidden(v, n, i) &&
		    (best < 0 || strlen(v[i].point) >= strlen(v[best].point)))
			best = (int)i;
	return best;
}

int mountinfo_fstype(const char *text, const char *path, char *type, size_t size)
{
	struct mount_entry *v = NULL;
	size_t n = 0, cap = 0;
	int r = -ENOENT;

	if (path[0] != '/')
		return -EINVAL;
	for (const char *line = text; *line;) {
		const char *eol = strchr(line, '\n');

		if (!eol)
			eol = line + strlen(line);
		if (n == cap) {
			struct mount_entry *more = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));

			if (!more) {
				r = -ENOMEM;
				goto out;
			}
			v = more;
		}
		if (parse_line(line, eol, &v[n]))
			n++;
		line = *eol ? eol + 1 : eol;
	}
	int best = visible_mount(v, n, path);

	if (best >= 0) {
		snprintf(type, size, "%s", v[best].type);
		r = 0;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(v[i].point);
	free(v);
	return r;
}
