#include "jsonutil.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
size_t jsonutil_utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return cont(s[1]) ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		unsigned char lo = s[0] == 0xe0 ? 0xa0 : 0x80;
		unsigned char hi = s[0] == 0xed ? 0x9f : 0xbf;

		return s[1] >= lo && s[1] <= hi && cont(s[2]) ? 3 : 0;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		unsigned char lo = s[0] == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = s[0] == 0xf4 ? 0x8f : 0xbf;

		return s[1] >= lo && s[1] <= hi && cont(s[2]) && cont(s[3]) ? 4 : 0;
	}
	return 0;
}

struct json_object *jsonutil_string(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	struct json_object *o;
	size_t n = strlen(text), out = 0;
	char *buf;

	/* Each bad byte (1 byte) becomes U+FFFD (3 bytes). */
	if (n > INT_MAX / 3)
		return NULL;
	buf = malloc(n * 3 + 1);
	if (!buf)
		return NULL;
	while (*s) {
		size_t len = jsonutil_utf8_len(s);

		if (len) {
			memcpy(buf + out, s, len);
			out += len;
			s += len;
		} else {
			memcpy(buf + out, "\xef\xbf\xbd", 3);
			out += 3;
			s++;
		}
	}
	o = json_object_new_string_len(buf, (int)out);
	free(buf);
	return o;
}
