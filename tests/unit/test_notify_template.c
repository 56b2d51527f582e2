/*
 * notify_template_fenced (src/notify/notify_config.h): the databases file
 * off MASTER is the template with its fallback database "*" sent to a
 * database that does not exist, every other byte kept.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "notify_config.h"

static void fenced(const char *in, const char *want, bool want_found)
{
	size_t len = strlen(in);
	char *out = malloc(len + 16 * sizeof(NOTIFY_FENCED_DBNAME) + 2);
	bool found = !want_found;
	size_t n = notify_template_fenced(in, len, out, &found);

	CHECK_INT_EQ(n, strlen(want));
	CHECK_STR_EQ(out, want);
	CHECK_INT_EQ(found, want_found);
	free(out);
}

int main(void)
{
	fenced("", "", false);
	fenced("appdb = host=db\n", "appdb = host=db\n", false);
	fenced("; * = host=x\nappdb = host=db", "; * = host=x\nappdb = host=db", false);
	fenced("* = host=127.0.0.1 port=5432\n",
	       "* = host=127.0.0.1 port=5432 dbname=pgtrack_notify_fenced\n", true);
	/* no newline at the end, CRLF, blanks before and after the key */
	fenced("a = host=x\n  *\t= host=y", "a = host=x\n  *\t= host=y dbname=pgtrack_notify_fenced\n",
	       true);
	fenced("*= host=y\r\nb = host=z\r\n", "*= host=y dbname=pgtrack_notify_fenced\nb = host=z\r\n",
	       true);
	/* a name that starts with "*" but is not the fallback, and a value with "*" */
	fenced("*x = host=y\nc = host=* \n", "*x = host=y\nc = host=* \n", false);
	CHECK_DONE();
}
