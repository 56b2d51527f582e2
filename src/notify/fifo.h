/*
 * fifo: reads keepalived's notify FIFO the way keepalived opens it.
 *
 * O_RDWR|O_NONBLOCK: we are a writer too, so there is never an EOF storm
 * and open never blocks.  The FIFO must be a FIFO, owned by the expected
 * user or by us, and writable by nobody else: whoever can write it can
 * claim MASTER.  The path is watched: when keepalived deletes and
 * recreates it on reload, the new FIFO is opened and the old one drained
 * before it is closed, so no line is lost.
 */
#ifndef PGTRACK_FIFO_H
#define PGTRACK_FIFO_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "conf.h"
#include "linebuf.h"

struct fifo_reader;

struct fifo_handler {
	/* One complete line, without its newline. */
	void (*line)(struct fifo_reader *f, const char *line, size_t len, bool overlong);
	/* Everything readable has been read: act on what the lines said. */
	void (*drained)(struct fifo_reader *f);
};

struct fifo_reader {
	struct ev_loop *loop;
	const struct fifo_handler *handler;
	char path[CONF_STR_SIZE];
	uid_t owner;
	int fd;
	dev_t dev;
	ino_t ino;
	ev_io io;
	ev_stat watch;
	struct linebuf lines;
	bool missing_logged;
	int reopen_errno_logged;
};

/*
 * Opens path (creating it 0600 if missing) and starts reading.  0, or
 * -errno with a sentence for the operator in why.
 */
int fifo_reader_start(struct fifo_reader *f, struct ev_loop *loop, const char *path,
		      uid_t owner, const struct fifo_handler *handler, char *why, size_t why_size);
/* Reads and acts on whatever is waiting, e.g. before switching FIFOs. */
void fifo_reader_drain(struct fifo_reader *f);
void fifo_reader_stop(struct fifo_reader *f);

#endif
