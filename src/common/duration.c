#include "duration.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit {
	const char *suffix;
	int64_t factor;
};

/* Digits followed by one of the units' suffixes. */
static int parse_scaled(const char *text, const struct unit *units, size_t n_units,
			int64_t *out)
{
	const char *p = text;
	int64_t value = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (value > (INT64_MAX - (*p - '0')) / 10)
			return -ERANGE;
		value = value * 10 + (*p - '0');
	}
	for (size_t i = 0; i < n_units; i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (value > INT64_MAX / units[i].factor)
			return -ERANGE;
		*out = value * units[i].factor;
		return 0;
	}
	return -EINVAL;
}

int duration_parse(const char *text, int64_t *ms)
{
	static const struct unit units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "", 1000 },
	};

	return parse_scaled(text, units, sizeof(units) / sizeof(units[0]), ms);
}

void duration_format(int64_t ms, char *buf, size_t size)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, size, "%" PRId64 "h", ms / 3600000);
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, size, "%" PRId64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, size, "%" PRId64 "s", ms / 1000);
	else
		snprintf(buf, size, "%" PRId64 "ms", ms);
}

int size_parse(const char *text, int64_t *bytes)
{
	static const struct unit units[] = {
		{ "", 1 },
		{ "B", 1 },
		{ "kB", INT64_C(1) << 10 },
		{ "MB", INT64_C(1) << 20 },
		{ "GB", INT64_C(1) << 30 },
		{ "TB", INT64_C(1) << 40 },
	};

	return parse_scaled(text, units, sizeof(units) / sizeof(units[0]), bytes);
}
