"""pgtrack-notify checks that pgbouncer took the databases file it wrote.

pgbouncer 1.18 answers RELOAD with success even when it rejected the new
configuration and kept its old databases (here: its ini gets an invalid
value for a known key after it started).  pgtrack-notify compares SHOW
DATABASES with the file, logs the difference once, counts the RELOAD as
failed in /status and /metrics, sends RELOAD again at the reconcile pace,
goes on with the rest of its plan, and logs once when pgbouncer matches.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_notify_reload.py
"""

import os
import re
import signal
import time

import pytest

from kit.fifo import inst
from kit.files import write_file
from kit.pgbouncer import databases_ini
from kit.waiting import wait_until
from notify_rig import VI
from notify_rig import notify_bin, pg, rig  # noqa: F401  (fixtures)
from test_notify_http import Http, metrics, sample, start_with_http, status

MISMATCH_RE = (r'error: pgbouncer at \S+ does not have what the databases file %s says: '
               r'database "appdb" has host=127\.0\.0\.1 port=\d+ dbname=postgres, the file says '
               r'host=127\.0\.0\.1 port=\d+ dbname=appdb; .*kept its old configuration')
MATCHED_RE = r"info: pgbouncer at \S+ now has what the databases file %s says"


@pytest.fixture
def http():
    h = Http()
    yield h
    h.res.release()


def break_ini(b):
    """An invalid value for a known key: pgbouncer 1.18 rejects the whole
    file at its next RELOAD (and still answers RELOAD)."""
    b.settings["default_pool_size"] = "plenty"
    b.write_config(b.sockdir)


def repair_ini(b):
    b.settings.pop("default_pool_size", None)
    b.write_config(b.sockdir)


def reloads(port):
    a = status(port)["pgbouncer"]["actions_total"]["reload"]
    return a["ok"], a["failed"]


def test_rejected_reload_at_start_is_an_error_retried_until_it_matches(rig, http):
    b = rig.bouncer
    # fenced, as on a BACKUP: serving needs RESUME and ENABLE, which must go
    # out although pgbouncer kept its old databases
    b.admin("DISABLE appdb", "KILL appdb")
    break_ini(b)
    fname = re.escape(b.databases_file)
    n = start_with_http(rig, http.section())
    rig.fifo.write(inst(VI, "MASTER"))
    line = n.wait_for_log(MISMATCH_RE % fname, 10)
    assert "pgbouncer's log" in line and "RELOAD" in line, line
    # the rest of the plan went out: appdb (still the old one) serves
    rig.wait_flags(0, 0)
    assert b.db()["database"] == "postgres"
    wait_until(lambda: reloads(http.port)[1] >= 1, 5, describe=lambda: status(http.port))
    m = metrics(http.port)
    assert sample(m, 'pgtrack_notify_actions_total{action="reload",result="failed"}') >= 1, m
    assert "config file loading failed" in b.log()

    # the reconcile (every second) sends RELOAD again, without a line each time
    off = n.log_size()
    failed = reloads(http.port)[1]
    time.sleep(3.5)
    assert reloads(http.port)[1] >= failed + 2, status(http.port)
    lines = n.lines_since(off)
    assert not [l for l in lines if re.search(MISMATCH_RE % fname, l)], "\n".join(lines)
    assert not [l for l in lines if re.search(r"(info|notice|warning|error): .*RELOAD", l)], \
        "a line at every reconcile:\n" + "\n".join(lines)

    # repaired: the next reconcile's RELOAD is taken, said once
    ok = reloads(http.port)[0]
    off = n.log_size()
    repair_ini(b)
    n.wait_for_log(MATCHED_RE % fname, 5, start=off)
    assert (b.db()["database"], b.db()["pool_size"]) == ("appdb", 7)
    assert reloads(http.port)[0] >= ok + 1
    rig.wait_serving()
    failed = reloads(http.port)[1]
    time.sleep(2.5)
    lines = n.lines_since(off)
    assert len([l for l in lines if re.search(MATCHED_RE % fname, l)]) == 1, "\n".join(lines)
    assert reloads(http.port)[1] == failed, "RELOAD still sent after pgbouncer matched"
    assert not [l for l in lines if "RELOAD" in l and "debug:" not in l], "\n".join(lines)


def test_rejected_reload_after_sighup_is_reported(rig, http):
    b = rig.bouncer
    n = start_with_http(rig, http.section())
    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving() == "appdb"
    assert b.db()["pool_size"] == 7
    assert reloads(http.port)[1] == 0
    # a new template (another dbname) while pgbouncer's ini is broken
    break_ini(b)
    write_file(rig.template, databases_ini(rig.pg, "postgres", 5, comment="new template"), 0o644)
    off = n.log_size()
    os.kill(n.pid, signal.SIGHUP)
    line = n.wait_for_log(r'error: pgbouncer at \S+ does not have what the databases file %s says: '
                          r'database "appdb" has host=127\.0\.0\.1 port=\d+ dbname=appdb, the file '
                          r'says host=127\.0\.0\.1 port=\d+ dbname=postgres;'
                          % re.escape(b.databases_file), 10, start=off)
    assert "kept its old configuration" in line, line
    wait_until(lambda: reloads(http.port)[1] >= 1, 5, describe=lambda: status(http.port))
    assert b.db()["database"] == "appdb"
    repair_ini(b)
    n.wait_for_log(MATCHED_RE % re.escape(b.databases_file), 5, start=off)
    assert (b.db()["database"], b.db()["pool_size"]) == ("postgres", 5)
    assert rig.bouncer.client_works() == "postgres"


def test_rejected_reload_seen_through_databases_made_from_the_fenced_fallback(rig, http):
    """With a fallback "*", the fenced file and the template differ only in
    the "*" line, which SHOW DATABASES does not show; a database pgbouncer
    made from the fenced "*" and still going to its dbname after the
    MASTER's RELOAD shows that pgbouncer refused the file."""
    b = rig.bouncer
    text = ("; wildcard template\n[databases]\nappdb = host=127.0.0.1 port=%d dbname=appdb\n"
            "* = host=127.0.0.1 port=%d\n" % (rig.pg.port, rig.pg.port))
    write_file(rig.template, text, 0o644)
    n = start_with_http(rig, http.section(), pgbouncer={"databases": "*", "backup_clients": "refuse"})
    rig.apply("BACKUP", False)
    # pgbouncer makes "postgres" from the fenced fallback
    msg = b.client_refused(dbname="postgres")
    assert msg and 'database "pgtrack_notify_fenced" does not exist' in msg, msg
    assert b.db("postgres")["database"] == "pgtrack_notify_fenced"
    break_ini(b)
    off = n.log_size()
    rig.fifo.write(inst(VI, "MASTER"))
    line = n.wait_for_log(r'error: pgbouncer at \S+ does not have what the databases file %s says: '
                          r'database "postgres" \(made from the fallback "\*"\) has '
                          r'dbname=pgtrack_notify_fenced, the file\'s "\*" line \(4\) says '
                          r'host=127\.0\.0\.1 port=%d dbname=postgres; .*kept its old configuration'
                          % (re.escape(b.databases_file), rig.pg.port), 10, start=off)
    assert rig.wait_serving() == "appdb"
    wait_until(lambda: reloads(http.port)[1] >= 1, 5, describe=lambda: status(http.port))
    repair_ini(b)
    n.wait_for_log(MATCHED_RE % re.escape(b.databases_file), 5, start=off)
    assert b.client_works(dbname="postgres") == "postgres"


def test_file_already_in_place_but_not_taken_is_found_at_start(rig, http):
    """The databases file already says what the template says (written by
    an earlier run whose RELOAD pgbouncer refused), so there is nothing to
    rewrite at start: SHOW DATABASES still shows the difference, and a
    RELOAD goes out at once, then at every reconcile."""
    b = rig.bouncer
    break_ini(b)
    write_file(b.databases_file, rig.template_text, 0o644)
    n = start_with_http(rig, http.section())
    rig.fifo.write(inst(VI, "MASTER"))
    line = n.wait_for_log(MISMATCH_RE % re.escape(b.databases_file), 10)
    assert "sending RELOAD now" in line, line
    assert not [l for l in n.lines_since(0) if "rewrote" in l], n.describe()
    wait_until(lambda: reloads(http.port)[1] >= 1, 5, describe=lambda: status(http.port))
    rig.wait_serving()
    repair_ini(b)
    n.wait_for_log(MATCHED_RE % re.escape(b.databases_file), 5)
    assert (b.db()["database"], b.db()["pool_size"]) == ("appdb", 7)
