"""The probe query is prepared once per session and then only executed
over the extended protocol (the server neither parses nor plans it again); a pooler that drops the
statement between transactions gets the query in full instead, after one
failed probe and a warning.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_probe_statement.py
"""
import re
import time

from kit.pgbouncer import Bouncer
from kit.trackd import changes
from kit.waiting import wait_until

PRIMARY = 54                                  # value_primary, the default


def test_probe_executes_its_prepared_statement(servers, trackd):
    """The first probe prepares (simple protocol); every later one is a
    Bind/Execute of that statement over the extended protocol, which the
    server logs as "execute pgtrackd_probe", never as a statement: neither
    the query again nor an EXECUTE command (a utility statement to parse)."""
    pg = servers.primary()
    db = "pgtrackd_it_logged"
    pg.sql("DROP DATABASE IF EXISTS %s" % db)
    pg.sql("CREATE DATABASE %s" % db)
    pg.sql("ALTER DATABASE %s SET log_statement = 'all'" % db)
    try:
        start = len(pg.log())
        t = trackd.start({"p": pg.track_options(legacy_values=False, dbname=db,
                                                application_name="pgtrackd-it-prep")})
        t.wait_for_value("p", PRIMARY, 10)
        wait_until(lambda: pg.log()[start:].count("execute pgtrackd_probe") >= 3, 10,
                   describe=lambda: "the server's log since pgtrackd started:\n" + pg.log()[start:])
        logged = pg.log()[start:]
        prepared = re.findall(r"statement: PREPARE pgtrackd_probe AS", logged)
        assert len(prepared) == 1, logged
        assert "statement: EXECUTE" not in logged, logged
        assert "statement: SELECT pg_is_in_recovery()" not in logged, logged
        t.stop()
    finally:
        pg.sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)


def test_pooler_that_drops_the_statement_gets_full_queries(servers, trackd):
    """pgbouncer in transaction mode, resetting every server connection
    with DISCARD ALL: the second probe's EXECUTE finds no statement (26000).
    One failure (fall = 2: the track stays primary), one warning, then full
    queries that keep working."""
    pg = servers.primary()
    b = Bouncer(pg, settings={"pool_mode": "transaction", "server_reset_query": "DISCARD ALL",
                              "server_reset_query_always": "1",
                              "ignore_startup_parameters": "options"})
    try:
        b.start()
        opts = pg.track_options(legacy_values=False, host="127.0.0.1", port=str(b.port),
                                dbname="appdb", accept_interval="0")
        t = trackd.start({"p": opts})
        t.wait_for_value("p", PRIMARY, 10)
        line = t.wait_for_log(r'warning: track "p": the server no longer knows the probe\'s '
                              r'prepared statement', 10)
        assert "26000" in line or "does not exist" in line, line
        start = t.log_size()
        time.sleep(2.0)                  # ten probes at interval 200 ms, all full queries
        assert t.read("p") == "%d\n" % PRIMARY
        assert [c[:2] for c in changes(t, "p")] == [("unknown", "primary")], changes(t, "p")
        assert "prepared statement" not in t.log()[start:], t.log()[start:]
    finally:
        b.destroy()
