/*
 * pg_answer: how every PostgreSQL probe (the local server's and the
 * peers') connects, the probe query it sends, and its answer.
 *
 * One round trip: role; on a primary the live timeline (the control file's
 * checkpoint timeline lags after a promotion) and the WAL position flushed
 * (what a standby can have received); on a standby the positions received
 * and replayed, how far replay is behind what was received, whether replay
 * is paused and whether a WAL receiver runs and streams.  The system
 * identifier cannot change while a session lasts: it is asked for once per
 * session (PG_QUERY_FIRST).  No control-file read but that first one.
 */
#ifndef PGTRACKD_PG_ANSWER_H
#define PGTRACKD_PG_ANSWER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "pg_settings.h"
#include "pgconn.h"

/*
 * The track's connection settings, aimed at host/hostaddr and port (0:
 * libpq's default), with statement_timeout set to the track's timeout so
 * the server gives up on a probe we have given up on.
 */
void pg_probe_params(const struct pg_settings *s, const char *host, const char *hostaddr,
		     int port, struct pgconn_params *out);

/* A WAL position in bytes as PostgreSQL writes an LSN: the two halves of "%X/%X". */
#define PG_LSN_PARTS(lsn) (unsigned)((uint64_t)(lsn) >> 32), (unsigned)((uint64_t)(lsn) & 0xffffffffu)

#define PG_QUERY                                                                              \
	"SELECT pg_is_in_recovery(),"                                                         \
	" CASE WHEN pg_is_in_recovery() THEN NULL"                                            \
	" ELSE ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::int END,"    \
	" CASE WHEN pg_is_in_recovery()"                                                      \
	" THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) END,"     \
	" CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,"                  \
	" CASE WHEN pg_is_in_recovery()"                                                      \
	" AND pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"                           \
	" THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END,"              \
	" pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"        \
	" ELSE pg_current_wal_flush_lsn() END, '0/0')::int8,"                                 \
	" CASE WHEN pg_is_in_recovery()"                                                      \
	" THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::int8 END,"                  \
	" CASE WHEN pg_is_in_recovery()"                                                      \
	" THEN (SELECT coalesce(status, '?') FROM pg_stat_wal_receiver) END"
#define PG_QUERY_FIRST PG_QUERY ", (SELECT system_identifier FROM pg_control_system())"

/*
 * The session prepares PG_QUERY (SQL PREPARE, in the same simple query as
 * its first probe) and then only executes it over the extended protocol
 * (pgconn_query_prepared: Bind, Execute, Sync, one round trip): the server
 * neither parses nor plans it again, nor parses an EXECUTE command and
 * runs it as a utility statement.  Server CPU at one probe a second (the
 * bench VM, schedstat, 45 rounds in turn): 0.41 ms a simple-protocol
 * EXECUTE, 0.36 ms over the extended protocol, 0.32 ms a bare SELECT 1.
 */
#define PG_STATEMENT "pgtrackd_probe"
#define PG_PREPARE "PREPARE " PG_STATEMENT " AS " PG_QUERY "; "

/* The standby's WAL receiver, from pg_stat_wal_receiver. */
enum pg_receiver {
	PG_RECEIVER_NONE,       /* no receiver runs (or not a standby) */
	PG_RECEIVER_STREAMING,  /* status streaming */
	PG_RECEIVER_OTHER,      /* starting, waiting, restarting, stopping, stopped */
	PG_RECEIVER_HIDDEN,     /* one runs; its status needs pg_read_all_stats */
};

struct pg_answer {
	bool valid;
	bool in_recovery;
	long timeline;          /* primary only; 0 otherwise */
	int64_t lag_bytes;      /* standby: received but not replayed; -1 unknown */
	double lag_seconds;     /* standby with a backlog: age of the last replayed commit; -1 none */
	bool replay_paused;
	/* WAL positions in bytes, -1 unknown */
	int64_t lsn;            /* primary: flushed (pg_current_wal_flush_lsn); standby: replayed */
	int64_t receive_lsn;    /* standby: received by streaming; -1 nothing received */
	enum pg_receiver receiver;
	char receiver_status[16]; /* as reported, "" without a receiver, "?" hidden */
	char system_identifier[24];
	double at;              /* monotime_now() when it arrived */
};

/*
 * Fills a from the probe query's result.  a->system_identifier is kept
 * when the result has none (PG_QUERY after PG_QUERY_FIRST).  false if the
 * result is not an answer to the probe query.
 */
bool pg_answer_parse(const PGresult *res, struct pg_answer *a);

#endif
