/*
 * bouncer_plan: which admin commands bring pgbouncer's databases where
 * the run's mode wants them, from SHOW DATABASES; and the databases file
 * that goes with the mode.  Part of bouncer (bouncer_internal.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "bouncer_internal.h"
#include "dbfile.h"
#include "duration.h"
#include "log.h"
#include "notify_config.h"

void bouncer_queue(struct bouncer *b, const char *command, const char *db)
{
	bool quote = db && db[strspn(db, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					  "0123456789_")] != '\0';

	if (b->n_commands == BOUNCER_MAX_COMMANDS)
		return;
	snprintf(b->commands[b->n_commands++], BOUNCER_COMMAND_SIZE, "%s%s%s%s%s", command,
		 db ? " " : "", quote ? "\"" : "", db ? db : "", quote ? "\"" : "");
}

/*
 * Makes the databases file what this mode wants (the template on MASTER;
 * otherwise the template with its fallback "*" sent to a database that
 * does not exist, see notify_config.h) and queues a RELOAD when it had to
 * be rewritten.
 */
bool bouncer_queue_file(struct bouncer *b)
{
	const struct notify_config *c = b->config;
	const char *path = c->bouncer.databases_file;
	bool serve = b->run_mode == BOUNCER_SERVE;
	const char *text = serve ? c->template_text : c->fenced_text;
	size_t len = serve ? c->template_len : c->fenced_len;
	int r;

	b->file_known = false;
	if (!text)
		return false;
	r = atomic_file_compare(path, text, len);
	if (r == 0) {
		b->file_known = true;
		return false;
	}

	char why[PATH_MAX + 128];

	/*
	 * No symlink anywhere in the path (a root pgtrack-notify must not be
	 * sent elsewhere); the directory's owner and mode are pgbouncer's
	 * business: whoever may write there can edit the file anyway.  Not
	 * synced: rewritten from the template at every start, and a fallback
	 * template rewrites it on the way to MASTER (an fsync there held the
	 * serving RELOAD back in the event loop).
	 */
	r = atomic_file_write(path, text, len, 0644, ATOMIC_FILE_NO_SYNC, why, sizeof(why));
	bouncer_count(b, NOTIFY_ACTION_REWRITE, path, r < 0 ? why : NULL);
	if (r < 0) {
		char more[64];

		if (bouncer_may_log(b, BOUNCER_LOG_REWRITE, more, sizeof(more)))
			log_error("pgbouncer: cannot rewrite the databases file %s: %s; "
				  "pgbouncer keeps its current databases%s", path, why, more);
		return false;
	}
	b->file_known = true;
	log_info("pgbouncer: rewrote %s from %s%s", path, c->bouncer.databases_template,
		 text == c->fenced_text && c->fenced_len != c->template_len
			 ? ", its fallback database \"*\" fenced (" NOTIFY_FENCED_DBNAME ")" : "");
	bouncer_queue(b, "RELOAD", NULL);
	return true;
}

void bouncer_reload_answered(struct bouncer *b)
{
	b->reload_sent = true;
	if (b->reload_retry)
		log_debug("pgbouncer: RELOAD (again: pgbouncer differs from the databases file)");
	else
		log_info("pgbouncer: RELOAD");
}

/* The next run's SHOW DATABASES still compares. */
void bouncer_reload_unverified(struct bouncer *b, const char *error)
{
	char text[1024];

	if (!b->reload_sent)
		return;
	b->reload_sent = false;
	b->reload_retry = false;
	snprintf(text, sizeof(text), "not verified: %s", error);
	bouncer_count(b, NOTIFY_ACTION_RELOAD, "RELOAD", text);
}

void bouncer_check_file(struct bouncer *b, const PGresult *res)
{
	const struct notify_config *c = b->config;
	const struct dbfile *want = b->run_mode == BOUNCER_SERVE ? &c->template_dbs : &c->fenced_dbs;
	int name = PQfnumber(res, "name"), host = PQfnumber(res, "host");
	int port = PQfnumber(res, "port"), database = PQfnumber(res, "database");
	int n = PQntuples(res);
	bool sent = b->reload_sent;
	struct dbfile_row *rows;
	char why[512];
	char more[64];
	bool ok;

	b->reload_sent = false;
	b->reload_retry = false;
	if (!b->file_known || name < 0 || host < 0 || port < 0 || database < 0) {
		/* No file of ours to compare with (or pgbouncer older than 1.8). */
		if (sent)
			bouncer_count(b, NOTIFY_ACTION_RELOAD, "RELOAD", NULL);
		return;
	}
	rows = calloc(n > 0 ? (size_t)n : 1, sizeof(*rows));
	if (!rows) {
		if (sent)
			bouncer_count(b, NOTIFY_ACTION_RELOAD, "RELOAD",
				      "not verified: out of memory for SHOW DATABASES");
		return;
	}
	for (int r = 0; r < n; r++) {
		rows[r] = (struct dbfile_row){
			.name = PQgetvalue(res, r, name),
			.host = PQgetisnull(res, r, host) ? NULL : PQgetvalue(res, r, host),
			.port = PQgetisnull(res, r, port) ? NULL : PQgetvalue(res, r, port),
			.database = PQgetisnull(res, r, database) ? NULL : PQgetvalue(res, r, database),
		};
	}
	ok = dbfile_matches(want, rows, n, NOTIFY_FENCED_DB, why, sizeof(why));
	free(rows);
	if (ok) {
		if (sent)
			bouncer_count(b, NOTIFY_ACTION_RELOAD, "RELOAD", NULL);
		if (b->file_differs)
			bouncer_log(b, LOG_INFO, " now has what the databases file %s says",
				    c->bouncer.databases_file);
		b->file_differs = false;
		b->reload_due = false;
		b->reload_now = false;
		/* A new difference is news: logged at once. */
		ratelimit_init(&b->repeat_log[BOUNCER_LOG_RELOAD], BOUNCER_REPEAT_EVERY, 1);
		return;
	}
	if (sent)
		bouncer_count(b, NOTIFY_ACTION_RELOAD, "RELOAD", why);
	if (!sent && !b->reload_due) {
		/* Found without a RELOAD of ours (at start, say): one right away. */
		b->reload_now = true;
		b->rerun = true;
	}
	b->reload_due = true;
	b->file_differs = true;
	if (bouncer_may_log(b, BOUNCER_LOG_RELOAD, more, sizeof(more)))
		bouncer_log(b, LOG_ERR, " does not have what the databases file %s says: %s; it kept "
			    "its old configuration%s (pgbouncer's log says why it refused the file); "
			    "%s every %gs until it matches, the rest of the plan goes on with the "
			    "databases it has%s", c->bouncer.databases_file, why,
			    sent ? " although it answered RELOAD" : "",
			    sent ? "RELOAD counted as failed, sent again" : "sending RELOAD now and",
			    duration_seconds(c->notify.reconcile_interval_ms), more);
}

/* Queues what database db needs to be where run_mode wants it. */
static void plan_db(struct bouncer *b, const char *db, bool paused, bool disabled, bool log_drift)
{
	int before = b->n_commands;
	const char *was = "";

	switch (b->run_mode) {
	case BOUNCER_SERVE:
		/*
		 * RESUME first: a client let in by ENABLE while the database
		 * is still paused gets a server connection that pgbouncer
		 * closes at once, counts as a failed login and then waits
		 * server_login_retry (15 s) before trying again.
		 */
		if (paused)
			bouncer_queue(b, "RESUME", db);
		if (disabled)
			bouncer_queue(b, "ENABLE", db);
		was = disabled ? "not serving (disabled)" : "not serving (paused)";
		break;
	case BOUNCER_HOLD:
		/*
		 * KILL (which pauses) before ENABLE: the clients of a server
		 * that is not primary are cut, new ones wait for RESUME.
		 */
		if (!paused || b->kill_paused)
			bouncer_queue(b, "KILL", db);
		if (disabled)
			bouncer_queue(b, "ENABLE", db);
		was = !paused ? "not held (not paused)" : "not held (disabled)";
		break;
	case BOUNCER_FENCE:
		/* DISABLE first: clients cut by KILL must not get back in. */
		if (!disabled)
			bouncer_queue(b, "DISABLE", db);
		if (!paused || b->kill_paused)
			bouncer_queue(b, "KILL", db);
		was = !disabled ? "not fenced (enabled)" : "not fenced (not paused)";
		break;
	case BOUNCER_UNKNOWN:
		break;
	}
	char more[64];

	if (log_drift && b->n_commands > before && bouncer_may_log(b, BOUNCER_LOG_DRIFT, more, sizeof(more)))
		log_warnx("pgbouncer: database %s is %s although this node is %s; repairing%s", db,
			  was, b->reason, more);
}

static void note_held(struct bouncer *b, const char *db)
{
	if (b->run_mode != BOUNCER_HOLD || b->n_held_dbs == BOUNCER_MAX_LISTED ||
	    strlen(db) > NOTIFY_DBNAME_MAX)
		return;
	snprintf(b->held_dbs[b->n_held_dbs++], sizeof(b->held_dbs[0]), "%s", db);
}

void bouncer_queue_global_resume(struct bouncer *b)
{
	/*
	 * A global PAUSE would hold every database; undo one not ours when
	 * becoming MASTER (a hold did already: one round trip less after a
	 * promotion), and ours (the hold's, see bouncer.h) when serving or
	 * fencing (pgbouncer refuses KILL under it; DISABLE keeps clients out).
	 */
	if (b->paused_globally ? b->run_mode != BOUNCER_HOLD
			       : b->announce && (b->run_mode == BOUNCER_HOLD ||
						 (b->run_mode == BOUNCER_SERVE && !b->hold_applied)))
		bouncer_queue(b, "RESUME", NULL);
}

void bouncer_note_global(struct bouncer *b, const char *cmd)
{
	if (strcmp(cmd, "PAUSE") == 0)
		b->paused_globally = true;
	else if (strcmp(cmd, "RESUME") == 0)
		b->paused_globally = false;
}

bool bouncer_is_benign(const char *cmd, const char *message)
{
	/* A PAUSE of a paused pooler, or a RESUME of what is not paused: already where we want it. */
	if (strcmp(cmd, "PAUSE") == 0)
		return strstr(message, "already suspended/paused") != NULL;
	return strstr(message, "is not paused") != NULL; /* "pooler is not paused" too */
}

/* Every database SHOW DATABASES lists, but the console, is one pgtrack-notify manages. */
static bool only_ours(const struct bouncer *b, const PGresult *res, int name_col)
{
	if (b->config->all_databases)
		return true;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *db = PQgetvalue(res, r, name_col);
		bool ours = strcmp(db, "pgbouncer") == 0;

		for (int i = 0; !ours && i < b->config->n_databases; i++)
			ours = strcmp(db, b->config->database[i]) == 0;
		if (!ours)
			return false;
	}
	return true;
}

/* A hold: the global PAUSE last (see bouncer.h), once the databases are paused and KILLed. */
static void plan_global_pause(struct bouncer *b, const PGresult *res, int name_col)
{
	if (b->run_mode != BOUNCER_HOLD)
		return;
	b->pause_all_ok = only_ours(b, res, name_col);
	if (b->pause_all_ok && !b->paused_globally)
		bouncer_queue(b, "PAUSE", NULL);
}

void bouncer_queue_held_resume(struct bouncer *b)
{
	for (int i = 0; i < b->n_held_dbs; i++)
		bouncer_queue(b, "RESUME", b->held_dbs[i]);
}

int bouncer_plan(struct bouncer *b, const PGresult *res, bool log_drift)
{
	int name_col = PQfnumber(res, "name");
	int paused_col = PQfnumber(res, "paused");
	int disabled_col = PQfnumber(res, "disabled");

	if (name_col < 0 || paused_col < 0 || disabled_col < 0) {
		bouncer_log(b, LOG_ERR, ": SHOW DATABASES has no name, paused and disabled "
			    "columns (pgbouncer older than 1.8?)");
		return -1;
	}
	b->n_commands = 0;
	b->next_command = 0;
	if (b->run_mode == BOUNCER_HOLD)
		b->n_held_dbs = 0;
	notify_stats_dbs_begin(&b->stats, notify_when_now());
	if (b->config->all_databases) {
		/* Every database pgbouncer lists, auto-created ones included, but its console. */
		for (int r = 0; r < PQntuples(res); r++) {
			const char *db = PQgetvalue(res, r, name_col);

			if (strcmp(db, "pgbouncer") == 0 || strchr(db, '"') || !db[0])
				continue;
			notify_stats_db(&b->stats, db, notify_db_mode_of(
				atoi(PQgetvalue(res, r, paused_col)) != 0,
				atoi(PQgetvalue(res, r, disabled_col)) != 0));
			plan_db(b, db, atoi(PQgetvalue(res, r, paused_col)) != 0,
				atoi(PQgetvalue(res, r, disabled_col)) != 0, log_drift);
			note_held(b, db);
		}
		plan_global_pause(b, res, name_col);
		return b->n_commands;
	}
	for (int i = 0; i < b->config->n_databases; i++) {
		const char *db = b->config->database[i];
		int row = -1;

		for (int r = 0; r < PQntuples(res); r++) {
			if (strcmp(PQgetvalue(res, r, name_col), db) == 0) {
				row = r;
				break;
			}
		}
		if (row < 0) {
			/* A database pgbouncer does not know is fenced by nature. */
			char more[64];

			notify_stats_db(&b->stats, db, NOTIFY_DB_MISSING);
			if (b->run_mode != BOUNCER_FENCE &&
			    bouncer_may_log(b, BOUNCER_LOG_MISSING_DB, more, sizeof(more)))
				bouncer_log(b, LOG_ERR, " has no database \"%s\": check its "
					    "[databases] section%s%s", db,
					    b->config->template_text ? " and databases_template" : "",
					    more);
			continue;
		}
		notify_stats_db(&b->stats, db, notify_db_mode_of(
			atoi(PQgetvalue(res, row, paused_col)) != 0,
			atoi(PQgetvalue(res, row, disabled_col)) != 0));
		plan_db(b, db, atoi(PQgetvalue(res, row, paused_col)) != 0,
			atoi(PQgetvalue(res, row, disabled_col)) != 0, log_drift);
		note_held(b, db);
	}
	plan_global_pause(b, res, name_col);
	return b->n_commands;
}
