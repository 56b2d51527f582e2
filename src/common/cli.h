/*
 * cli: the command line both programs share (-f -t -n -l -v -V -h), and
 * the way they print configuration errors.
 */
#ifndef PGTRACK_CLI_H
#define PGTRACK_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"

struct cli {
	const char *program;
	const char *config;  /* -f, or the default */
	bool check;          /* -t */
	bool console;        /* -l */
	bool verbose;        /* -v */
	bool allow_write_stopped; /* the program takes --write-stopped */
	bool write_stopped;  /* --write-stopped */
	bool allow_status;   /* the program takes --status and --json */
	bool status;         /* --status */
	bool json;           /* --json */
	int max_args;        /* operands allowed after the options */
	char **args;         /* the operands */
	int n_args;
	void (*usage)(FILE *out);
};

/*
 * Parses argv into cli.  Returns -1 to go on, or the exit status for
 * -V and -h (0) and for usage errors (2), after printing what they ask.
 */
int cli_parse(struct cli *cli, int argc, char **argv);

/* Every error, to the log or to stderr; -t and a console run print to stderr. */
void cli_print_errors(const struct conf_errors *errs, bool to_log);

/*
 * After the configuration is loaded (loaded false: it failed, with errs):
 * prints every error to the terminal, and to syslog too unless -t or -l;
 * for -t, "configuration OK".  Finishes errs.  Returns -1 when the daemon
 * should go on, or its exit status.
 */
int cli_config_loaded(const struct cli *cli, bool loaded, struct conf_errors *errs);

/*
 * The same on SIGHUP: a failed reload's errors go to the log with the
 * running configuration kept.  Finishes errs.  Returns loaded.
 */
bool cli_config_reloaded(bool loaded, struct conf_errors *errs);

#endif
