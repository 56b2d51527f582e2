/*
 * jsonutil: what json-c (0.16) lacks for /status.
 *
 * json-c escapes quotes, backslashes and control characters, but copies
 * bytes that are not UTF-8 as they are, and JSON must be UTF-8 (RFC 8259):
 * a libpq error text in a server's LATIN1 locale would make the whole
 * document unreadable to a strict parser.  Serialize with JSONUTIL_FLAGS:
 * without JSON_C_TO_STRING_NOSLASHESCAPE every '/' in a socket path comes
 * out as "\/".
 */
#ifndef PGTRACK_JSONUTIL_H
#define PGTRACK_JSONUTIL_H

#include <stddef.h>

#include <json-c/json.h>

#define JSONUTIL_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A JSON string of text, each invalid UTF-8 sequence replaced by U+FFFD; NULL on ENOMEM. */
struct json_object *jsonutil_string(const char *text);
/* The length of the valid UTF-8 sequence at s (1-4), or 0 if s starts an invalid one. */
size_t jsonutil_utf8_len(const unsigned char *s);

#endif
