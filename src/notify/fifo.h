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
#include <stddef.h>
#include <sys/types.h>

struct fifo_reader;

struct fifo_handler {
	/* One complete line, without its newline. */
	void (*line)(void *user, const char *line, size_t len, bool overlong);
	/* Everything readable has been read: act on what the lines said. */
	void (*drained)(void *user);
};

/*
 * Opens path (creating it 0600 if missing) and starts reading; the
 * handler gets user.  NULL with *err = -errno and a sentence for the
 * operator in why.  A reload swaps readers: create the new one, drain
 * and destroy the old one only once the new one is open.
 */
struct fifo_reader *fifo_reader_create(struct ev_loop *loop, const char *path, uid_t owner,
				       const struct fifo_handler *handler, void *user, int *err,
				       char *why, size_t why_size);
/* Reads and acts on whatever is waiting, e.g. before switching FIFOs. */
void fifo_reader_drain(struct fifo_reader *f);
/* Stops reading and closes the FIFO; accepts NULL. */
void fifo_reader_destroy(struct fifo_reader *f);
const char *fifo_reader_path(const struct fifo_reader *f);
/* False while the path names no file (keepalived removed the FIFO we still read). */
bool fifo_reader_present(const struct fifo_reader *f);

#endif
