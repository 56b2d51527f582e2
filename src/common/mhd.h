/*
 * mhd: libmicrohttpd, loaded when the first HTTP listener is created.
 *
 * The listener is off by default, and the daemons keep a small resident
 * set (bench/run's target is 8 MB for pgtrackd, which libpq's own
 * dependencies mostly fill): linked in, libmicrohttpd's pages (~120 kB
 * resident) would be paid by every process; loaded with dlopen, only where
 * [http] is configured.  The header is compiled against as usual; only the
 * calls go through this table.
 */
#ifndef PGTRACK_MHD_H
#define PGTRACK_MHD_H

#include <stddef.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* Debian 12's libmicrohttpd12 (0.9.75): the ABI the header above is for. */
#define MHD_LIBRARY "libmicrohttpd.so.12"

struct mhd_api {
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_run) *run;
	__typeof__(MHD_get_timeout) *get_timeout;
	__typeof__(MHD_get_daemon_info) *get_daemon_info;
	__typeof__(MHD_get_connection_info) *get_connection_info;
	__typeof__(MHD_lookup_connection_value) *lookup_connection_value;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_destroy_response) *destroy_response;
};

/*
 * The library's calls, loaded at the first call and kept for the life of
 * the process; NULL with a sentence in err when it cannot be loaded.
 */
const struct mhd_api *mhd_load(char *err, size_t errlen);

#endif
