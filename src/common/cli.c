#include "cli.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <ev.h>

#include "build_config.h"
#include "log.h"

int cli_parse(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "check", no_argument, NULL, 't' },
		{ "foreground", no_argument, NULL, 'n' },
		{ "log-console", no_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "write-stopped", no_argument, NULL, 'W' },
		{ "status", no_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'J' },
		{ 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "f:tnlvVh", options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			cli->config = optarg;
			break;
		case 't':
			cli->check = true;
			break;
		case 'n':
			break; /* never detaches anyway */
		case 'l':
			cli->console = true;
			break;
		case 'v':
			cli->verbose = true;
			break;
		case 'V':
			printf("%s %s (libpq %d, libev %d.%d)\n", cli->program, PGTRACKD_VERSION,
			       PQlibVersion(), ev_version_major(), ev_version_minor());
			return 0;
		case 'h':
			cli->usage(stdout);
			return 0;
		case 'W':
			if (!cli->allow_write_stopped) {
				fprintf(stderr, "%s: unrecognized option '--write-stopped'\n",
					cli->program);
				cli->usage(stderr);
				return 2;
			}
			cli->write_stopped = true;
			break;
		case 'S':
		case 'J':
			if (!cli->allow_status) {
				fprintf(stderr, "%s: unrecognized option '%s'\n", cli->program,
					opt == 'S' ? "--status" : "--json");
				cli->usage(stderr);
				return 2;
			}
			*(opt == 'S' ? &cli->status : &cli->json) = true;
			break;
		default:
			cli->usage(stderr);
			return 2;
		}
	}
	if (cli->json && !cli->status) {
		fprintf(stderr, "%s: --json goes with --status\n", cli->program);
		cli->usage(stderr);
		return 2;
	}
	if (argc - optind > cli->max_args) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", cli->program,
			argv[optind + cli->max_args]);
		cli->usage(stderr);
		return 2;
	}
	cli->args = argv + optind;
	cli->n_args = argc - optind;
	return -1;
}

void cli_print_errors(const struct conf_errors *errs, bool to_log)
{
	for (size_t i = 0; i < errs->count; i++) {
		if (to_log)
			log_error("%s", errs->lines[i]);
		else
			fprintf(stderr, "%s\n", errs->lines[i]);
	}
	if (errs->oom) {
		if (to_log)
			log_error("out of memory while reading the configuration");
		else
			fprintf(stderr, "out of memory while reading the configuration\n");
	}
}

int cli_config_loaded(const struct cli *cli, bool loaded, struct conf_errors *errs)
{
	if (!loaded) {
		/* In syslog for the record, and on the terminal for whoever started us. */
		if (!cli->check && !cli->console)
			cli_print_errors(errs, true);
		cli_print_errors(errs, false);
	}
	conf_errors_finish(errs);
	if (!loaded)
		return 1;
	if (cli->check) {
		printf("configuration OK\n");
		return 0;
	}
	return -1;
}

bool cli_config_reloaded(bool loaded, struct conf_errors *errs)
{
	if (!loaded) {
		cli_print_errors(errs, true);
		log_error("configuration reload failed, keeping the running configuration");
	}
	conf_errors_finish(errs);
	return loaded;
}
