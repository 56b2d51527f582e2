/*
 * JSON for /status (src/common/jsonutil.h, json-c): a libpq-style error
 * text with quotes, backslashes, newlines, control characters, a socket
 * path and bytes that are not UTF-8 comes out as valid, escaped JSON and
 * reads back as the same text (the bad bytes as U+FFFD).
 */
#include <stdlib.h>

#include "check.h"
#include "jsonutil.h"

static const char libpq_error[] =
	"connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: "
	"FATAL:  role \"o'brien\\x\" does not exist\n"
	"DETAIL:\ttab\r\x01\x1f\x7f end \xc3\xa9t\xc3\xa9 \xe9t\xe9 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80";

static const char expected_json[] =
	"{\"error\":\"connection to server on socket \\\"/var/run/postgresql/.s.PGSQL.5432\\\" "
	"failed: FATAL:  role \\\"o'brien\\\\x\\\" does not exist\\n"
	"DETAIL:\\ttab\\r\\u0001\\u001f\x7f end \xc3\xa9t\xc3\xa9 "
	"\xef\xbf\xbdt\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
	"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}";

static const char expected_back[] =
	"connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: "
	"FATAL:  role \"o'brien\\x\" does not exist\n"
	"DETAIL:\ttab\r\x01\x1f\x7f end \xc3\xa9t\xc3\xa9 \xef\xbf\xbdt\xef\xbf\xbd "
	"\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
	"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";

/* Every byte of s is part of valid UTF-8 and no control character is raw. */
static int valid_json_text(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		size_t len = jsonutil_utf8_len(u);

		if (len == 0 || *u < 0x20)
			return 0;
		u += len;
	}
	return 1;
}

static void test_escaping(void)
{
	struct json_object *o = json_object_new_object();
	struct json_object *back, *field;
	const char *text;

	CHECK(o != NULL);
	json_object_object_add(o, "error", jsonutil_string(libpq_error));
	text = json_object_to_json_string_ext(o, JSONUTIL_FLAGS);
	CHECK_STR_EQ(text, expected_json);
	CHECK(valid_json_text(text));

	back = json_tokener_parse(text);
	CHECK(back != NULL);
	CHECK(json_object_object_get_ex(back, "error", &field));
	CHECK_STR_EQ(json_object_get_string(field), expected_back);
	json_object_put(back);
	json_object_put(o);
}

static void test_utf8_len(void)
{
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"a"), 1);
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xc3\xa9"), 2);
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xe2\x82\xac"), 3);
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80"), 4);
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xc3"), 0);
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xc1\xbf"), 0);	/* overlong */
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xe0\x80\xaf"), 0);	/* overlong */
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xed\xa0\x80"), 0);	/* surrogate */
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xf4\x90\x80\x80"), 0);	/* > U+10FFFF */
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\xe2\x82"), 0);	/* cut short */
	CHECK_INT_EQ(jsonutil_utf8_len((const unsigned char *)"\x80"), 0);
}

/* Plain json-c leaves the bad byte raw: the reason jsonutil_string exists. */
static void test_json_c_alone(void)
{
	struct json_object *o = json_object_new_string("caf\xe9");

	CHECK(!valid_json_text(json_object_to_json_string_ext(o, JSONUTIL_FLAGS)));
	json_object_put(o);
	o = json_object_new_string("/run/postgresql");
	CHECK_STR_EQ(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		     "\"\\/run\\/postgresql\"");
	CHECK_STR_EQ(json_object_to_json_string_ext(o, JSONUTIL_FLAGS), "\"/run/postgresql\"");
	json_object_put(o);
}

int main(void)
{
	test_utf8_len();
	test_escaping();
	test_json_c_alone();
	CHECK_DONE();
}
