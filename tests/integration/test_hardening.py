"""Defects found by a hostile review of pgtrackd (issue 9), each reproduced
against a real PostgreSQL 15: an accept probe that switched itself off, a
smart shutdown that pgtrackd held up, a connection storm that failed over a
healthy primary.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_hardening.py
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import pytest

from kit.postgres import PG_USER, pg_ids
from kit.procs import wait_pid_gone
from kit.pgserver import backend_pids, wait_backends
from kit.trackd import FileWatch, change_re, changes


# --------------------------------------------------------------------------
# the accept probe must never switch itself off


def assert_hang_is_seen(t, pg):
    """The accept probe is armed: a postmaster hung now is seen (down, with
    the accept probe's reason), and the track comes back after SIGCONT."""
    t.wait_for_value("p", 100, 10)
    time.sleep(1.5)                     # a few accept intervals: the probe must be armed again
    start = t.log_size()
    pg.sigstop()
    try:
        t.wait_for_value("p", -254, 10)
        line = t.wait_for_log(change_re("p", "primary", "down", -254, path=t.path("p")), 2, start)
        assert "not accepting new connections" in line, line
    finally:
        pg.sigcont()
    t.wait_for_value("p", 100, 10)


def test_accept_probe_survives_session_loss_while_in_flight(servers, trackd):
    """The review's reproducer: the session fails while an accept connection
    is in flight (stuck in a stopped postmaster's backlog).  Today's code
    closed that connection and nothing scheduled the accept probe again, so
    a later hang of the postmaster was never seen."""
    pg = servers.primary()
    t = trackd.start({"p": pg.track_options(application_name="pgtrackd-it-acc", interval="200ms",
                                            accept_interval="500ms", connect_timeout="3s")})
    t.wait_for_value("p", 100, 10)
    backend = wait_backends(pg, "pgtrackd-it-acc")[0]

    pg.sigstop()
    try:
        time.sleep(0.8)                 # an accept probe now waits on the stopped postmaster
        os.kill(backend, signal.SIGTERM)
        t.wait_for_log(r'track "p": probe failed .*connection lost', 5)
    finally:
        pg.sigcont()
    assert_hang_is_seen(t, pg)


def test_accept_probe_survives_query_timeout_while_in_flight(servers, trackd):
    """The same hole through a probe query that times out while an accept
    connection is in flight: the hung backend and the stopped postmaster."""
    pg = servers.primary()
    t = trackd.start({"p": pg.track_options(application_name="pgtrackd-it-acc2", interval="200ms",
                                            timeout="600ms", accept_interval="300ms",
                                            connect_timeout="3s", fall="1")})
    t.wait_for_value("p", 100, 10)
    backend = wait_backends(pg, "pgtrackd-it-acc2")[0]
    pg.sigstop()
    os.kill(backend, signal.SIGSTOP)
    try:
        t.wait_for_log(r'track "p": probe failed .*timed out', 5)
    finally:
        os.kill(backend, signal.SIGCONT)
        pg.sigcont()
    assert_hang_is_seen(t, pg)


def test_accept_probe_survives_reload_while_in_flight(servers, trackd):
    """A reload that changes the track while an accept probe is in flight."""
    pg = servers.primary()
    opts = pg.track_options(interval="200ms", accept_interval="300ms", connect_timeout="3s")
    t = trackd.start({"p": opts})
    t.wait_for_value("p", 100, 10)
    pg.sigstop()
    try:
        time.sleep(0.5)
        t.write_config({"p": dict(opts, rise="3")})
        start = t.log_size()
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"configuration reloaded", 5, start)
    finally:
        pg.sigcont()
    assert_hang_is_seen(t, pg)


# --------------------------------------------------------------------------
# smart shutdown


def wait_backends_n(pg, appname, n, timeout=10):
    deadline = time.monotonic() + timeout
    while len(backend_pids(pg, appname)) != n:
        assert time.monotonic() < deadline, backend_pids(pg, appname)
        time.sleep(0.05)


@pytest.mark.parametrize("sync", [False, True], ids=["probe", "sync_policy"])
def test_smart_shutdown_is_not_held_up(servers, trackd, sync):
    """pg_ctl stop -m smart waits for every session to end.  While another
    client still holds the server, the track goes down with the server's
    own reason (57P03, shutting down); pgtrackd lets go of its session, so
    the server exits as soon as that client leaves.  With sync_standby_names,
    the synchronous replication policy's session too."""
    pg = servers.primary()
    opts = {"accept_interval": "500ms"}
    if sync:
        opts["sync_standby_names"] = "ANY 1 (*)"
    t = trackd.start({"p": pg.track_options(**opts)})
    if sync:      # its session is open
        wait_backends_n(pg, "pgtrackd", 2)
    t.wait_for_value("p", 100, 10)
    start = t.log_size()

    client = pg.connect()
    try:
        r = pg.pg_ctl("-W", "-m", "smart", "stop", check=False)
        assert r.returncode == 0, r.stdout
        t.wait_for_value("p", -254, 5)
        line = t.wait_for_log(change_re("p", "primary", "down", -254, path=t.path("p")), 2, start)
        assert "shutting down" in line, line
        assert client.execute("SELECT 1").fetchall() == [(1,)]   # still serving it
    finally:
        client.close()
    t0 = time.monotonic()
    assert wait_pid_gone(pg.pid, 20), "smart shutdown still held up 20 s after the last " \
        "client left:\n" + t.log()[start:]
    took = time.monotonic() - t0
    pg.pid = None
    assert took < 10, "smart shutdown took %.1fs after the last client left" % took
    t.wait_for_log(r'track "p": .*shutting down.*closing our session', 1, start)

    # and back once it accepts again
    pg.start()
    t.wait_for_value("p", 100, 10)


def _smart_stop_is_seen(pg, t, start, within):
    """pg_ctl stop -m smart while a client holds the server: the track is
    down with the server's reason within `within` s, pgtrackd lets go of
    its session, the server exits once the client leaves."""
    client = pg.connect()
    try:
        r = pg.pg_ctl("-W", "-m", "smart", "stop", check=False)
        assert r.returncode == 0, r.stdout
        t0 = time.monotonic()
        t.wait_for_value("p", -254, within + 5)
        took = time.monotonic() - t0
        line = t.wait_for_log(change_re("p", "primary", "down", -254, path=t.path("p")), 2, start)
        assert "shutting down" in line, line
        assert client.execute("SELECT 1").fetchall() == [(1,)]   # still serving it
    finally:
        client.close()
    assert wait_pid_gone(pg.pid, 20), "smart shutdown held up:\n" + t.log()[start:]
    pg.pid = None
    t.wait_for_log(r'track "p": .*shutting down.*closing our session', 1, start)
    assert took < within, "smart shutdown seen after %.2f s" % took
    pg.start()
    t.wait_for_value("p", 100, 10)


def test_smart_shutdown_is_seen_in_postmaster_pid(servers, trackd):
    """A local postmaster's postmaster.pid (in its data directory, its
    cwd) says "stopping" from the moment a shutdown begins: the light
    accept probe reads it every accept_interval, so a smart shutdown is
    seen within about a second at the default timings (the track is down
    at the session's next failed reconnect: 1-2 s; the bound is generous
    for a loaded machine), without waiting
    for a full connection (here one an hour).  Over TCP as well: there the
    postmaster is the parent of the session's backend.  (Before: only the
    full connection saw it, within accept_full_interval.)"""
    pg = servers.primary()
    t = trackd.start({"p": default_track(pg, accept_full_interval="1h")})
    t.wait_for_value("p", 100, 10)
    t.wait_for_log(r'track "p": postmaster pid %d, its state and postmaster.pid status '
                   r'read every accept probe' % pg.pid, 5)
    time.sleep(1.3)
    _smart_stop_is_seen(pg, t, t.log_size(), 3.5)
    # over TCP
    t.write_config({"p": default_track(pg, host="", hostaddr="127.0.0.1",
                                       accept_full_interval="1h")})
    start = t.log_size()
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(r'track "p": postmaster pid %d, its state and postmaster.pid status '
                   r'read every accept probe' % pg.pid, 5, start)
    t.wait_for_value("p", 100, 10)
    time.sleep(1.6)
    _smart_stop_is_seen(pg, t, t.log_size(), 3.5)


def test_smart_shutdown_without_postmaster_pid(servers, trackd):
    """pgtrackd as a user that may not look into the postmaster's data
    directory (neither root nor postgres), over TCP: its postmaster is found
    (the parent of the session's backend) but postmaster.pid is not readable,
    so, as before, the full connection sees the smart shutdown (here one a
    second); the state check in /proc still runs."""
    pg = servers.primary()
    nobody = pwd.getpwnam("nobody")
    t = trackd.new()
    os.chmod(t.base, 0o755)
    os.chown(t.trackdir, nobody.pw_uid, nobody.pw_gid)
    t.wrapper = ["setpriv", "--reuid", str(nobody.pw_uid), "--regid", str(nobody.pw_gid),
                 "--clear-groups", "--"]
    # over TCP: the server's socket directory is not open to nobody
    t.write_config({"p": default_track(pg, host="", hostaddr="127.0.0.1",
                                       accept_full_interval="1s")})
    os.chmod(t.conf, 0o644)
    t.start()
    t.wait_for_value("p", 100, 10)
    t.wait_for_log(r'track "p": postmaster pid %d: postmaster.pid not readable \(Permission '
                   r'denied\); a shutdown is seen by the full connection' % pg.pid, 5)
    time.sleep(1.3)
    _smart_stop_is_seen(pg, t, t.log_size(), 5.0)


# --------------------------------------------------------------------------
# a connection storm must not fail over a healthy primary


def test_too_many_connections_keeps_the_primary(servers, trackd):
    """max_connections = 6 with 2 reserved for superusers, pgtrackd as an
    ordinary role, three idle clients: the accept probe is turned away with
    53300.  The postmaster answered, so it is alive; the open session proves
    the role: the track stays at the primary value throughout."""
    pg = servers.primary(start=False)
    with open(os.path.join(pg.datadir, "postgresql.conf"), "a") as f:
        f.write("max_connections = 6\nsuperuser_reserved_connections = 2\n")
    pg.start()
    pg.sql("CREATE ROLE pgtrackd_plain LOGIN")
    t = trackd.start({"p": pg.track_options(user="pgtrackd_plain", interval="200ms",
                                            accept_interval="300ms")})
    t.wait_for_value("p", 100, 10)
    start = t.log_size()

    watch = FileWatch(t, "p")
    clients = []
    try:
        for _ in range(3):
            clients.append(pg.connect(user=PG_USER))
        t.wait_for_log(r'pgtrackd: warning: track "p": .*too many connections', 5, start)
        time.sleep(4.0)                               # a dozen accept probes
    finally:
        for c in clients:
            c.close()
        watch.stop()
        values = watch.ints("p")
    assert values == [100], "the track left the primary value during the storm: %r\n%s" % (
        values, t.log()[start:])
    assert [c[:2] for c in changes(t, "p")] == [("unknown", "primary")]
    warnings = [l for l in t.log()[start:].splitlines()
                if "warning" in l and "too many connections" in l]
    assert len(warnings) == 1, "one warning per episode, got:\n" + "\n".join(warnings)
    # the episode ends: said once
    t.wait_for_log(r'track "p": the server accepts new connections again', 5, start)


def test_too_many_connections_for_the_session_holds_the_state(servers, trackd):
    """The session is lost and cannot get its slot back (its role's
    connection limit is taken meanwhile): the server answered, so it is
    alive, and the last verdict stands instead of going down; the session
    is opened again when a slot frees up."""
    pg = servers.primary()
    pg.sql("CREATE ROLE pgtrackd_plain2 LOGIN CONNECTION LIMIT 1")
    t = trackd.start({"p": pg.track_options(user="pgtrackd_plain2", interval="200ms",
                                            accept_interval="300ms",
                                            application_name="pgtrackd-it-storm")})
    t.wait_for_value("p", 100, 10)
    backend = wait_backends(pg, "pgtrackd-it-storm")[0]
    start = t.log_size()
    watch = FileWatch(t, "p")
    hog = None
    # pgtrackd is held still while its backend goes and the slot is taken
    t.send_signal(signal.SIGSTOP)
    try:
        pg.sql("SELECT pg_terminate_backend(%d)" % backend)
        assert wait_pid_gone(backend, 5)
        hog = pg.connect(user="pgtrackd_plain2")
    finally:
        t.send_signal(signal.SIGCONT)
    try:
        t.wait_for_log(r'pgtrackd: warning: track "p": cannot open a session: too many '
                       r'connections', 5, start)
        time.sleep(2.0)                 # ten intervals: fall = 2 would long have gone down
    finally:
        if hog:
            hog.close()
    wait_backends(pg, "pgtrackd-it-storm", not_in=[backend], timeout=5)[0]
    t.wait_for_log(r'track "p": session open again after too many connections', 5, start)
    time.sleep(0.6)
    watch.stop()
    values = watch.ints("p")
    assert values == [100], "the track left the primary value: %r\n%s" % (values, t.log()[start:])
    warnings = [l for l in t.log()[start:].splitlines() if "cannot open a session" in l]
    assert len(warnings) == 1, "one warning per episode, got:\n" + "\n".join(warnings)


# --------------------------------------------------------------------------
# no log line that repeats for as long as something lasts


def test_track_file_fight_does_not_flood_the_log(cluster, trackd):
    """Something that keeps rewriting a track file (a second writer, a
    script) is restored every check, but warned about at most five times a
    reminder_interval, with a count of the restores held back."""
    t = trackd.start({"p": cluster.primary.track_options()})
    t.wait_for_value("p", 100, 10)
    path = t.path("p")
    start = t.log_size()
    deadline = time.monotonic() + 4.0           # file_check_interval is 200ms: ~20 restores
    while time.monotonic() < deadline:
        with open(path, "w") as f:
            f.write("5\n")
        time.sleep(0.05)
    t.wait_for_value("p", 100, 3)
    lines = [l for l in t.log()[start:].splitlines()
             if "was changed behind our back" in l or "was removed" in l]
    assert 1 <= len(lines) <= 5, "%d restore warnings in 4 s:\n%s" % (len(lines), "\n".join(lines))


def test_peer_session_does_not_hold_up_a_peers_smart_shutdown(servers, trackd):
    """pgtrackd asks its peers over sessions of their own; a session kept
    for good would hold up a smart shutdown of the peer forever.  Every
    accept_interval a successor is opened; the peer turns it away (57P03)
    and the old session is let go."""
    pg = servers.primary("P")
    rep = servers.replica(pg, "R")
    opts = pg.track_options(accept_interval="1s")
    opts["peer.r"] = "%s %d" % (rep.sockdir, rep.port)
    t = trackd.start({"p": opts})
    t.wait_for_value("p", 100, 10)
    t.wait_for_log(r'track "p": peer r: in recovery', 5)
    start = t.log_size()

    r = rep.pg_ctl("-W", "-m", "smart", "stop", check=False)
    assert r.returncode == 0, r.stdout
    assert wait_pid_gone(rep.pid, 15), "the peer's smart shutdown is held up:\n" + t.log()[start:]
    rep.pid = None
    t.wait_for_log(r'track "p": peer r (is shutting down or starting up|gives no answer)', 5, start)
    time.sleep(0.5)
    assert t.read("p") == "100\n"


def test_crowded_out_primary_still_turns_stale(servers, trackd):
    """While the session cannot get a slot back, the last verdict stands;
    the guard still asks the peers, so a peer promoted meanwhile makes this
    old primary stale, as it would with its session."""
    pg = servers.primary("P")
    rep = servers.replica(pg, "R")
    pg.sql("CREATE ROLE pgtrackd_plain3 LOGIN CONNECTION LIMIT 1")
    rep.wait_replayed(pg.sql("SELECT pg_current_wal_lsn()::text")[0][0])
    opts = pg.track_options(user="pgtrackd_plain3", application_name="pgtrackd-it-stale",
                            value_down="-240")
    opts["peer.r"] = "%s %d" % (rep.sockdir, rep.port)
    t = trackd.start({"p": opts})
    t.wait_for_value("p", 100, 10)
    backend = wait_backends(pg, "pgtrackd-it-stale")[0]
    start = t.log_size()
    hog = None
    t.send_signal(signal.SIGSTOP)
    try:
        pg.sql("SELECT pg_terminate_backend(%d)" % backend)
        assert wait_pid_gone(backend, 5)
        hog = pg.connect(user="pgtrackd_plain3")
    finally:
        t.send_signal(signal.SIGCONT)
    try:
        t.wait_for_log(r'track "p": cannot open a session: too many connections', 5, start)
        time.sleep(0.5)
        assert t.read("p") == "100\n"
        rep.promote()
        t.wait_for_value("p", -254, 10)                 # value_stale, not value_down
        t.wait_for_log(r'"p": primary -> stale, value -254 .*\(stale primary: peer r is '
                       r'primary on timeline 2', 2, start)
    finally:
        if hog:
            hog.close()


def test_crowded_out_after_an_unseen_restart_is_a_failure(servers, trackd):
    """The server restarts as a standby while pgtrackd is stalled, and is
    full when pgtrackd comes back: its last answer (primary) no longer
    tells the role, so 53300 is a failure like any other, never a held
    primary value."""
    pg = servers.primary()
    pg.sql("CREATE ROLE pgtrackd_plain4 LOGIN CONNECTION LIMIT 1")
    t = trackd.start({"p": pg.track_options(user="pgtrackd_plain4")})
    t.wait_for_value("p", 100, 10)
    start = t.log_size()
    hog = None
    t.send_signal(signal.SIGSTOP)
    try:
        pg.stop("fast")
        with open(os.path.join(pg.datadir, "standby.signal"), "w"):
            pass
        os.chown(os.path.join(pg.datadir, "standby.signal"), *pg_ids())
        pg.start()
        assert pg.in_recovery()
        hog = pg.connect(user="pgtrackd_plain4")
        time.sleep(2.0)                           # stalled for longer than the probes' pace
    finally:
        t.send_signal(signal.SIGCONT)
    try:
        t.wait_for_value("p", -254, 5)
        assert "cannot open a session" not in t.log()[start:], t.log()[start:]
    finally:
        if hog:
            hog.close()
    t.wait_for_value("p", 0, 10)                  # a standby now


def test_peer_at_max_connections_keeps_its_session(servers, trackd):
    """A peer that is full (53300) when its session is renewed keeps the
    session it has: a new primary at max_connections must not blind the
    stale-primary guard of an old primary."""
    pg = servers.primary("P")
    rep = servers.replica(pg, "R")
    pg.sql("CREATE ROLE pgtrackd_peer LOGIN CONNECTION LIMIT 2")
    rep.wait_replayed(pg.sql("SELECT pg_current_wal_lsn()::text")[0][0])
    opts = pg.track_options(user="pgtrackd_peer", accept_interval="500ms")
    opts["peer.r"] = "%s %d" % (rep.sockdir, rep.port)
    t = trackd.start({"p": opts})
    t.wait_for_value("p", 100, 10)
    t.wait_for_log(r'track "p": peer r: in recovery', 5)
    # R's slots for the role: pgtrackd's peer session + the hog = the limit
    hog = rep.connect(user="pgtrackd_peer")
    start = t.log_size()
    try:
        time.sleep(4.0)                             # renewals every 5 x 500ms, turned away
        text = t.log()[start:]
        assert "peer r gives no answer" not in text, text
        assert "keeping the session, a new one failed (too many connections" in text, text
        t.wait_for_log(r'track "p": peer r: in recovery', 2, t.log_size())
    finally:
        hog.close()


# --------------------------------------------------------------------------
# issue 10, item 6: the accept probe is a ping, a hang is seen in a second


DEFAULT_TIMINGS = {"interval": "1s", "timeout": "1s", "connect_timeout": "2s",
                   "rise": "2", "fall": "2"}


def default_track(pg, **over):
    """A track at pgtrackd's default timings: accept_interval and
    accept_full_interval unset."""
    opts = pg.track_options(**DEFAULT_TIMINGS)
    del opts["accept_interval"]
    del opts["accept_full_interval"]
    opts.update(over)
    return opts


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_hung_postmaster_is_seen_at_default_timings(servers, trackd, via):
    """At the default timings (interval 1s, accept_interval unset, fall 2) a
    SIGSTOPped postmaster is down within about 2 s: twice, at two phases of
    the timers.  The postmaster's state is read from /proc: its PID from
    SO_PEERCRED over a unix socket, over TCP the parent of the session's
    backend (named by its process title); no fork.  (Before: over TCP a
    ping went unanswered; before that a full connection every 5 s with a
    2 s deadline, 2-8 s.)"""
    pg = servers.primary()
    over = {"host": "", "hostaddr": "127.0.0.1"} if via == "tcp" else {}
    reason = "connection failed: the postmaster (pid %d) is stopped" % pg.pid
    t = trackd.start({"p": default_track(pg, **over)})
    t.wait_for_value("p", 100, 10)
    took = []
    for pause in (1.3, 1.75):
        time.sleep(pause)
        start = t.log_size()
        t0 = time.monotonic()
        pg.sigstop()
        try:
            t.wait_for_value("p", -254, 10)
            took.append(time.monotonic() - t0)
            line = t.wait_for_log(change_re("p", "primary", "down", -254, path=t.path("p")), 2, start)
            assert "(not accepting new connections: %s)" % reason in line, line
        finally:
            pg.sigcont()
        t.wait_for_value("p", 100, 10)
        # said once it is over (by the full connection if one was caught in the hang)
        t.wait_for_log(r'track "p": the (postmaster runs and answers|server accepts new '
                       r'connections) again', 2, start)
    # ~1-2 s by design; the bound is generous for a loaded machine
    assert max(took) < 3.5, "hang seen after %s s" % ["%.2f" % x for x in took]


def _server_lines_by_pid(pg, offset):
    """{pid: [message]} of the server log after offset."""
    by_pid = {}
    for line in pg.log()[offset:].splitlines():
        m = re.match(r"^\S+ \S+ \S+ \[(\d+)\] (.*)$", line)
        if m:
            by_pid.setdefault(int(m.group(1)), []).append(m.group(2))
    return by_pid


def _enable_ssl(pg):
    """ssl = on with a throwaway self-signed certificate (restart needed)."""
    key = os.path.join(pg.datadir, "server.key")
    crt = os.path.join(pg.datadir, "server.crt")
    subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj",
                    "/CN=localhost", "-keyout", key, "-out", crt], check=True,
                   capture_output=True, timeout=60)
    uid, gid = pwd.getpwnam(PG_USER).pw_uid, pwd.getpwnam(PG_USER).pw_gid
    for p in (key, crt):
        os.chown(p, uid, gid)
    os.chmod(key, 0o600)
    with open(os.path.join(pg.datadir, "postgresql.conf"), "a") as f:
        f.write("ssl = on\n")


def test_ping_leaves_no_log_line(servers, trackd):
    """The ping makes the server fork a child that answers one byte and
    finds EOF: with log_connections = on that child logs "connection
    received" and nothing else (no "incomplete startup packet", no "could
    not accept SSL connection" over TCP with ssl = on); the pings are the
    connections that are never authorized.  A postmaster pgtrackd can see
    in /proc gets no ping at all (a look at its state instead): here
    pgtrackd runs in a PID namespace of its own, with its own /proc, as in
    a container, so it pings over both the unix socket and TCP."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    pg = servers.primary(start=False)
    _enable_ssl(pg)
    pg.start()
    offset = len(pg.log())
    t = trackd.new()
    t.wrapper = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"]
    t.write_config({
        "u": pg.track_options(interval="200ms", accept_interval="100ms"),
        "t": pg.track_options(host="", hostaddr="127.0.0.1", sslmode="require",
                              interval="200ms", accept_interval="100ms"),
    })
    t.start()
    t.wait_for_value("u", 100, 10)
    t.wait_for_value("t", 100, 10)
    time.sleep(3.0)
    time.sleep(0.3)                                  # the last children have exited
    by_pid = _server_lines_by_pid(pg, offset)
    pings = {"[local]": 0, "127.0.0.1": 0}
    for pid, msgs in by_pid.items():
        received = [m for m in msgs if "connection received:" in m]
        if not received or any("connection authorized" in m for m in msgs):
            continue
        # a ping's child: exactly one line
        assert len(msgs) == 1, "the server logged more for a ping (pid %d):\n%s" % (
            pid, "\n".join(msgs))
        for where in pings:
            if "host=%s" % where in received[0]:
                pings[where] += 1
    assert pings["127.0.0.1"] >= 10 and pings["[local]"] >= 10, \
        "too few pings (connections received, never authorized): %r" % pings
    # and the full connections still come, one every accept_full_interval, on each
    authorized = "\n".join(m for msgs in by_pid.values() for m in msgs
                           if "connection authorized" in m)
    assert authorized.count("application_name=pgtrackd") >= 4, authorized
    whole = pg.log()[offset:]
    for bad in ("incomplete startup packet", "could not accept SSL connection",
                "could not receive data from client", "unsupported frontend protocol"):
        assert bad not in whole, bad + " in the server log:\n" + whole[-3000:]
