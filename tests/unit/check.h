/*
 * check: the few assertions the unit tests need.
 *
 * A failed check prints file:line, the expression and the values, counts
 * the failure and carries on, so one run shows every problem.  A test's
 * main() ends with CHECK_DONE(), which returns 1 if anything failed.
 */
#ifndef PGTRACK_TEST_CHECK_H
#define PGTRACK_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int failures;
static int checks;

#define CHECK(cond)                                                             \
	do {                                                                    \
		checks++;                                                       \
		if (!(cond)) {                                                  \
			failures++;                                             \
			printf("%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
			       #cond);                                          \
			fflush(stdout);                                         \
		}                                                               \
	} while (0)

#define CHECK_INT_EQ(actual, expected)                                          \
	do {                                                                    \
		long long check_a_ = (long long)(actual);                       \
		long long check_e_ = (long long)(expected);                     \
		checks++;                                                       \
		if (check_a_ != check_e_) {                                     \
			failures++;                                             \
			printf("%s:%d: %s == %s failed: got %lld, expected "    \
			       "%lld\n",                                        \
			       __FILE__, __LINE__, #actual, #expected, check_a_, \
			       check_e_);                                       \
			fflush(stdout);                                         \
		}                                                               \
	} while (0)

#define CHECK_STR_EQ(actual, expected)                                          \
	do {                                                                    \
		const char *check_a_ = (actual);                                \
		const char *check_e_ = (expected);                              \
		checks++;                                                       \
		if (!check_a_ || !check_e_ || strcmp(check_a_, check_e_) != 0) { \
			failures++;                                             \
			printf("%s:%d: %s == %s failed:\n  got      \"%s\"\n"   \
			       "  expected \"%s\"\n",                           \
			       __FILE__, __LINE__, #actual, #expected,          \
			       check_a_ ? check_a_ : "(null)",                  \
			       check_e_ ? check_e_ : "(null)");                 \
			fflush(stdout);                                         \
		}                                                               \
	} while (0)

#define CHECK_DONE()                                                            \
	do {                                                                    \
		printf("%d checks, %d failed\n", checks, failures);             \
		return failures ? 1 : 0;                                        \
	} while (0)

#endif
