#include "linebuf.h"

#include <string.h>

void linebuf_init(struct linebuf *lb)
{
	lb->len = 0;
	lb->discarding = false;
}

size_t linebuf_pending(const struct linebuf *lb)
{
	return lb->len;
}

void linebuf_feed(struct linebuf *lb, const char *data, size_t len, linebuf_cb cb, void *user)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t chunk = nl ? (size_t)(nl - data) : len;

		if (lb->discarding) {
			if (nl)
				lb->discarding = false;
		} else if (lb->len + chunk > sizeof(lb->buf)) {
			size_t room = sizeof(lb->buf) - lb->len;

			memcpy(lb->buf + lb->len, data, room);
			cb(lb->buf, sizeof(lb->buf), true, user);
			lb->len = 0;
			lb->discarding = !nl;
		} else {
			memcpy(lb->buf + lb->len, data, chunk);
			lb->len += chunk;
			if (nl) {
				cb(lb->buf, lb->len, false, user);
				lb->len = 0;
			}
		}
		if (!nl)
			break;
		chunk++;
		data += chunk;
		len -= chunk;
	}
}
