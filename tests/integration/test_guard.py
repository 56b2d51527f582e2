"""The stale-primary guard and the lag checks (see /work/spec-guard.md)
against real PostgreSQL 15 servers and one real pgtrackd per test.

Three servers of one cluster (primary A, replicas B and C), each with its
own track in ONE pgtrackd (tracks a, b, c), every track listing the other
two servers as peers over unix sockets. Every test reads the real track
files and the real log. Where the spec gives down and stale (or conflict)
the same value (-254), the failover tests set value_down = -240 so that the
file itself tells "down" from "stale"/"conflict"; the guard values stay the
spec's defaults.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_guard.py
"""

import os
import re
import signal
import threading
import time

import pytest

from conftest import ServerFactory
from kit.pgserver import PgServer
from kit.ports import PortReservation, SilentListener
from kit.trackd import FileWatch, change_re, changes, check, run_binary

PRIMARY = 54          # value_primary default (254 on base_priority 200)
STANDBY = 53          # value_standby default: the most advanced standby (rank 0)
RANK_STEP = 10        # rank_step default: value_standby falls this much per rank
LOWEST = STANDBY - 2 * RANK_STEP  # three nodes: the lowest rank, held until every peer was heard
STALE = -254          # value_stale default
CONFLICT = -254       # value_conflict default
LAGGING = -100        # value_lagging default
DOWN = -240           # value_down where it must differ from stale/conflict
RANKED = r"in recovery, rank \d of \d standbys by WAL position [0-9A-F]+/[0-9A-F]+"

CONFLICT_ERROR = ('pgtrackd: error: track "%s": conflict: peer %s is primary on timeline %d like '
                  'this server; neither may take writes until one is a standby. Stop or rebuild '
                  'one of them as a standby; until then this node stays at value_conflict')


# --------------------------------------------------------------------------
# helpers


def node_track(me, peers, **over):
    """Track options for server `me` with peer.NAME = SOCKDIR PORT for each (name, server),
    on pgtrackd's default values."""
    opts = me.track_options(legacy_values=False, **over)
    for name, srv in peers:
        opts["peer." + name] = "%s %d" % (srv.sockdir, srv.port)
    return opts


def rank_changes(t, name, start=0):
    """[(old rank, new rank, value, reason)] of the rank change lines of one track."""
    rx = re.compile(r'pgtrackd: info: track "%s": standby rank (\d+) -> (\d+), value (-?\d+) '
                    r'written to \S+ \((.*)\)$' % re.escape(name))
    out = []
    for line in t.log()[start:].splitlines():
        m = rx.search(line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)))
    return out


def lines_since(t, start, needle):
    return [l for l in t.log()[start:].splitlines() if needle in l]


def wait_standby(t, name, value, timeout=10):
    """The change line to standby (at whatever rank), then the value of the rank expected."""
    t.wait_for_log(r'pgtrackd: info: track "%s": \w+ -> standby, value \d+ written to ' % re.escape(name),
                   timeout)
    t.wait_for_value(name, value, 5)


def wait_caught_up(primary, *replicas):
    lsn = str(primary.sql("SELECT pg_current_wal_lsn()")[0][0])
    for r in replicas:
        r.wait_replayed(lsn)


class Abc:
    def __init__(self, a, b, c):
        self.a, self.b, self.c = a, b, c


def three_nodes(factory):
    a = factory.primary("A")
    b = factory.replica(a, "B")
    c = factory.replica(a, "C")
    return Abc(a, b, c)


def abc_tracks(n, names=("a", "b", "c"), **over):
    """Tracks a, b, c (or names) for servers n.a, n.b, n.c, each listing the other two."""
    srv = dict(zip(names, (n.a, n.b, n.c)))
    return {me: node_track(s, [(o, srv[o]) for o in names if o != me], node=me, **over)
            for me, s in srv.items()}


@pytest.fixture(scope="module")
def abc(pg_template):
    """A cluster shared by the tests that leave it as they found it."""
    f = ServerFactory(pg_template)
    try:
        yield three_nodes(f)
    finally:
        f.destroy()


# --------------------------------------------------------------------------
# 1. steady state


def test_steady_state_primary_and_standbys(abc, trackd):
    t = trackd.start(abc_tracks(abc))
    t.wait_for_value("a", PRIMARY, 10)
    # B and C stream the same WAL: a tie, which goes to the name first, b
    wait_standby(t, "b", STANDBY)
    wait_standby(t, "c", STANDBY - RANK_STEP)
    t.wait_for_log(change_re("a", "unknown", "primary", PRIMARY, "not in recovery"), 2)

    # the primary's track really asks its peers (debug line of every peer answer)
    sysid = abc.a.system_identifier()
    for peer in ("b", "c"):
        t.wait_for_log(r'pgtrackd: debug: track "a": peer %s: in recovery, timeline 0, '
                       r'system identifier %s, WAL position \d+$' % (peer, sysid), 5)
    # the standbys ask their peers too (for the primary's WAL position), and find A
    for me in ("b", "c"):
        t.wait_for_log(r'pgtrackd: debug: track "%s": peer a: not in recovery, timeline 1, '
                       r'system identifier %s, WAL position \d+$' % (me, sysid), 5)
        t.wait_for_log(r'pgtrackd: debug: track "%s": primary a: replay \d+ bytes behind, '
                       r'received \d+ bytes behind, replay behind for \d+\.\ds$' % me, 5)

    time.sleep(1.0)
    assert (t.read("a"), t.read("b"), t.read("c")) == (
        "%d\n" % PRIMARY, "%d\n" % STANDBY, "%d\n" % (STANDBY - RANK_STEP))
    # a standby starts at the lowest rank until it heard its peers, then takes its place:
    # one line per change, none per probe
    for name, state, value in (("a", "primary", PRIMARY), ("b", "standby", LOWEST),
                               ("c", "standby", LOWEST)):
        assert [c[:3] for c in changes(t, name)] == [("unknown", state, value)], t.log()
    assert [c[:3] for c in rank_changes(t, "b")] == [(2, 0, STANDBY)], t.log()
    assert [c[:3] for c in rank_changes(t, "c")] == [(2, 1, STANDBY - RANK_STEP)], t.log()
    for name, rank in (("b", 0), ("c", 1)):
        assert re.fullmatch(r"in recovery, rank %d of 2 standbys by WAL position [0-9A-F]+/[0-9A-F]+"
                            % rank, rank_changes(t, name)[0][3]), rank_changes(t, name)
    assert not rank_changes(t, "a")
    text = t.log()
    for bad in ("pgtrackd: warning:", "pgtrackd: error:", "stale", "conflict", "lagging"):
        assert bad not in text, "unexpected %r in the log:\n%s" % (bad, text[-3000:])
    # standbys do not run rounds (their verdict never waits for a peer)
    assert "did not answer in time" not in text, text[-3000:]


# --------------------------------------------------------------------------
# 4. peers that never answer, or refuse


def test_silent_and_refusing_peers_do_not_hold_up_the_primary(abc, trackd):
    silent = SilentListener()
    refused = PortReservation()          # nothing listens on it
    try:
        t0 = time.monotonic()
        t = trackd.start({
            "ax": abc.a.track_options(legacy_values=False, **{"peer.x": "127.0.0.1 %d" % silent.port}),
            "ay": abc.a.track_options(legacy_values=False, **{"peer.y": "127.0.0.1 %d" % refused.port}),
        })
        t.wait_for_value("ax", PRIMARY, 5)
        t.wait_for_value("ay", PRIMARY, 5)
        # the first round waits at most connect_timeout + timeout for a peer not yet out
        assert time.monotonic() - t0 < 3.5, "first verdict took %.1fs" % (time.monotonic() - t0)
        t.wait_for_log(r'pgtrackd: warning: track "ax": peer x gives no answer \(timed out', 5)
        t.wait_for_log(r'pgtrackd: warning: track "ay": peer y gives no answer \(connection refused', 5)

        time.sleep(0.5)
        start = t.log_size()
        w = FileWatch(t, ["ax", "ay"])
        time.sleep(2.0)
        w.stop()
        window = t.log()[start:]
        for name in ("ax", "ay"):
            assert w.values(name) == [PRIMARY], (name, w.values(name))
            probes = [l for l in window.splitlines()
                      if 'pgtrackd: debug: track "%s": not in recovery, timeline 1, ' % name in l]
            # interval 200ms: ~10 probes in 2 s; a probe held up by the peer would make 1 or 2
            assert len(probes) >= 5, "track %s: only %d probes in 2 s:\n%s" % (name, len(probes), window)

        # pgtrackd kept trying the silent peer (own deadline, new connections)
        assert len(silent.accepted) >= 2, len(silent.accepted)
        text = t.log()
        # once per outage, however many attempts failed
        assert len(re.findall(r'track "ax": peer x gives no answer', text)) == 1, text[-4000:]
        assert len(re.findall(r'track "ay": peer y gives no answer', text)) == 1, text[-4000:]
        assert not re.search(r"peer [xy] answers again", text), text[-4000:]
        assert [c[:3] for c in changes(t, "ax")] == [("unknown", "primary", PRIMARY)]
        assert [c[:3] for c in changes(t, "ay")] == [("unknown", "primary", PRIMARY)]
    finally:
        silent.close()
        refused.release()


# --------------------------------------------------------------------------
# 6. a peer of another cluster


def test_peer_of_another_cluster_is_ignored(abc, trackd, servers):
    f = PgServer.new_cluster("F")
    servers.servers.append(f)            # destroyed with the fixture
    f.start()
    ours, theirs = abc.a.system_identifier(), f.system_identifier()
    assert ours != theirs
    # F is a primary on timeline 1 like A: were it not ignored, this would be a conflict
    assert f.timeline() == abc.a.timeline() == 1

    t = trackd.start({"a": node_track(abc.a, [("f", f), ("b", abc.b)], node="a")})
    t.wait_for_value("a", PRIMARY, 5)
    warning = ('pgtrackd: warning: track "a": peer f belongs to another cluster (system identifier '
               '%s, ours %s); ignoring it' % (theirs, ours))
    t.wait_for_log(re.escape(warning) + "$", 5)
    w = FileWatch(t, ["a"])
    time.sleep(2.0)                       # ~10 more rounds
    w.stop()
    assert w.values("a") == [PRIMARY]
    text = t.log()
    assert len([l for l in text.splitlines() if "belongs to another cluster" in l]) == 1, text[-4000:]
    assert "conflict" not in text and "stale" not in text
    assert [c[:3] for c in changes(t, "a")] == [("unknown", "primary", PRIMARY)]


# --------------------------------------------------------------------------
# 5. lag


# C, a standby beside B: second (a tie goes to the name first; behind B, it is second anyway)
C_STANDBY = STANDBY - RANK_STEP


def test_replay_paused_is_lagging_until_resumed(abc, trackd):
    t = trackd.start({"c": node_track(abc.c, [("a", abc.a), ("b", abc.b)], node="c", max_lag="1MB")})
    wait_standby(t, "c", C_STANDBY)
    start = t.log_size()
    paused = False
    try:
        abc.c.sql("SELECT pg_wal_replay_pause()")
        paused = True
        t.wait_for_value("c", LAGGING, 3)
        t.wait_for_log(change_re("c", "standby", "lagging", LAGGING, "in recovery, replay paused"), 2, start)

        # ~55 MB of WAL while C receives but does not replay
        abc.a.sql("CREATE TABLE guard_lag AS SELECT g, repeat('x', 1000) AS pad "
                  "FROM generate_series(1, 50000) g")
        line = t.wait_for_log(r'pgtrackd: debug: track "c": in recovery, ([1-9]\d{6,}) bytes not '
                              r'replayed, .*, replay paused', 15, start)
        lag = int(re.search(r"in recovery, (\d+) bytes", line).group(1))
        assert lag > 1 << 20, line
        assert t.read("c") == "%d\n" % LAGGING

        resume_at = t.log_size()
        abc.c.sql("SELECT pg_wal_replay_resume()")
        paused = False
        took = t.wait_for_value("c", C_STANDBY, 15)
        t.wait_for_log(change_re("c", "lagging", "standby", C_STANDBY, reason_rx=RANKED), 2, resume_at)
        assert took < 10, "back to standby only after %.1fs" % took
    finally:
        if paused:
            abc.c.sql("SELECT pg_wal_replay_resume()")
        abc.a.sql("DROP TABLE IF EXISTS guard_lag")
        wait_caught_up(abc.a, abc.b, abc.c)


def test_backlog_over_max_lag_is_lagging(abc, trackd):
    """Not paused: received but not replayed beyond max_lag (recovery_min_apply_delay
    holds replay at the first commit while the next transaction's WAL streams in)."""
    c = abc.c
    t = trackd.start({"c": node_track(c, [("a", abc.a), ("b", abc.b)], node="c", max_lag="1MB")})
    wait_standby(t, "c", C_STANDBY)
    start = t.log_size()
    try:
        c.sql("ALTER SYSTEM SET recovery_min_apply_delay = '4s'")
        c.sql("SELECT pg_reload_conf()")
        time.sleep(0.3)
        abc.a.sql("CREATE TABLE guard_backlog (g int, pad text)")       # replay waits at its commit
        abc.a.sql("INSERT INTO guard_backlog SELECT g, repeat('y', 1000) FROM generate_series(1, 10000) g")
        line = t.wait_for_log(change_re("c", "standby", "lagging", LAGGING) , 4, start)
        # against A's flushed position, or what C received if that is newer than A's answer
        m = (re.search(r"\(in recovery, (\d+) bytes received but not replayed \(max_lag 1048576\)\)$", line)
             or re.search(r"\(in recovery, replay (\d+) bytes behind primary a, \d+ of them not received "
                          r"\(max_lag 1048576\)\)$", line))
        assert m and int(m.group(1)) > 1 << 20, line
        assert t.read("c") == "%d\n" % LAGGING
        t.wait_for_value("c", C_STANDBY, 15)
        t.wait_for_log(change_re("c", "lagging", "standby", C_STANDBY, reason_rx=RANKED), 2, start)
    finally:
        c.sql("ALTER SYSTEM RESET recovery_min_apply_delay")
        c.sql("SELECT pg_reload_conf()")
        abc.a.sql("DROP TABLE IF EXISTS guard_backlog")
        wait_caught_up(abc.a, abc.b, c)


class WriteLoop:
    """Small commits on a primary every 50 ms in a thread, for at most `limit` seconds."""

    def __init__(self, srv, limit=60.0):
        self.srv = srv
        self.limit = limit
        self.commits = 0
        self.error = None
        self._stop = threading.Event()
        srv.sql("CREATE TABLE IF NOT EXISTS guard_writes (at timestamptz, pad text)")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + self.limit
        try:
            with self.srv.connect() as conn:
                while not self._stop.is_set() and time.monotonic() < deadline:
                    conn.execute("INSERT INTO guard_writes VALUES (now(), repeat('w', 200))")
                    self.commits += 1
                    time.sleep(0.05)
        except Exception as e:             # reported by stop()
            self.error = e

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()
        self.srv.sql("DROP TABLE IF EXISTS guard_writes")


def break_replication(standby, port):
    """Point standby's primary_conninfo at a port nothing listens on; reload.
    Returns the setting to put back."""
    old = standby.sql("SHOW primary_conninfo")[0][0]
    assert old, "no primary_conninfo on %s" % standby.name
    standby.sql("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=%d user=postgres "
                "connect_timeout=2'" % port)
    standby.sql("SELECT pg_reload_conf()")
    return old


def restore_replication(standby, conninfo):
    standby.sql("ALTER SYSTEM SET primary_conninfo = '%s'" % conninfo.replace("'", "''"))
    standby.sql("SELECT pg_reload_conf()")


def wait_receiver(standby, streaming, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        n = standby.sql("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")[0][0]
        if (n == 1) == streaming:
            return
        assert time.monotonic() < deadline, "%s: WAL receiver streaming=%s for %ds" % (
            standby.name, not streaming, timeout)
        time.sleep(0.1)


RECEIVER_DOWN = (r"in recovery, WAL receiver not streaming for (\d+\.\d)s "
                 r"\((?:none running|status \w+); receiver_grace 2\.0s\)")


def test_receiver_down_is_lagging_until_restored(abc, trackd):
    """Issue 9: C's WAL receiver cannot reach A while A keeps writing. Received minus
    replayed stays 0, so today C stays standby; it must go lagging after receiver_grace."""
    t = trackd.start({"c": node_track(abc.c, [("a", abc.a), ("b", abc.b)], node="c", receiver_grace="2s")})
    wait_standby(t, "c", C_STANDBY)
    t.wait_for_log(r'pgtrackd: debug: track "c": primary a: replay', 5)
    refused = PortReservation()
    writes = WriteLoop(abc.a)
    w = FileWatch(t, ["c"])
    conninfo = None
    try:
        start = t.log_size()
        t_break = time.monotonic()
        conninfo = break_replication(abc.c, refused.port)
        wait_receiver(abc.c, streaming=False)
        t.wait_for_value("c", LAGGING, 2.0 + 3.0)
        line = t.wait_for_log(change_re("c", "standby", "lagging", LAGGING), 2, start)
        m = re.search(r"\(" + RECEIVER_DOWN + r"\)$", line)
        assert m and 2.0 < float(m.group(1)) < 3.5, line
        deadline = time.monotonic() + 2.0    # the watcher samples every 10 ms
        lagging_at = w.first_time("c", LAGGING, after=t_break)
        while lagging_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
            lagging_at = w.first_time("c", LAGGING, after=t_break)
        assert lagging_at is not None and lagging_at - t_break >= 2.0, \
            "lagging %.2fs after the break, before receiver_grace" % (lagging_at - t_break)
        # before it: standby values only (C may fall a rank behind B while A writes)
        vals = w.values_after("c", t_break)
        assert vals[-1] == LAGGING and all(STANDBY - 9 * RANK_STEP <= v <= STANDBY for v in vals[:-1]), vals
        # stays lagging while the receiver is down and the writes go on
        time.sleep(1.0)
        assert t.read("c") == "%d\n" % LAGGING
        assert writes.commits > 20 and writes.error is None, (writes.commits, writes.error)

        back = t.log_size()
        restore_replication(abc.c, conninfo)
        conninfo = None
        wait_receiver(abc.c, streaming=True)
        t.wait_for_value("c", C_STANDBY, 5)
        t.wait_for_log(change_re("c", "lagging", "standby", C_STANDBY, reason_rx=RANKED), 2, back)
        assert len([c for c in changes(t, "c", start)]) == 2, changes(t, "c", start)
    finally:
        w.stop()
        if conninfo:
            restore_replication(abc.c, conninfo)
        writes.stop()
        refused.release()
        wait_caught_up(abc.a, abc.b, abc.c)


def test_bytes_behind_primary_within_receiver_grace(abc, trackd):
    """max_lag counts from A's WAL position: C's receiver is down (still within its
    grace) and A writes 5 MB that C never receives."""
    t = trackd.start({"c": node_track(abc.c, [("a", abc.a), ("b", abc.b)],
                                      receiver_grace="60s", max_lag="1MB")})
    wait_standby(t, "c", C_STANDBY)
    t.wait_for_log(r'pgtrackd: debug: track "c": primary a: replay', 5)
    refused = PortReservation()
    conninfo = None
    try:
        start = t.log_size()
        conninfo = break_replication(abc.c, refused.port)
        wait_receiver(abc.c, streaming=False)
        time.sleep(0.5)
        assert t.read("c") == "%d\n" % C_STANDBY
        abc.a.sql("CREATE TABLE guard_behind AS SELECT g, repeat('z', 1000) AS pad "
                  "FROM generate_series(1, 5000) g")
        line = t.wait_for_log(change_re("c", "standby", "lagging", LAGGING), 5, start)
        m = re.search(r"\(in recovery, replay (\d+) bytes behind primary a, (\d+) of them not received "
                      r"\(max_lag 1048576\)\)$", line)
        assert m and int(m.group(1)) > 1 << 20 and int(m.group(2)) > 1 << 20, line
        assert t.read("c") == "%d\n" % LAGGING
        assert not lines_since(t, start, "WAL receiver not streaming"), t.log()[start:]

        back = t.log_size()
        restore_replication(abc.c, conninfo)
        conninfo = None
        t.wait_for_value("c", C_STANDBY, 10)
        t.wait_for_log(change_re("c", "lagging", "standby", C_STANDBY, reason_rx=RANKED), 2, back)
    finally:
        if conninfo:
            restore_replication(abc.c, conninfo)
        refused.release()
        abc.a.sql("DROP TABLE IF EXISTS guard_behind")
        wait_caught_up(abc.a, abc.b, abc.c)


def test_receiver_clock_survives_a_reload(abc, trackd):
    """A SIGHUP that changes the track's settings keeps the receiver's clock."""
    opts = node_track(abc.c, [("a", abc.a), ("b", abc.b)], node="c", receiver_grace="3s")
    t = trackd.start({"c": opts})
    wait_standby(t, "c", C_STANDBY)
    refused = PortReservation()
    conninfo = None
    try:
        start = t.log_size()
        conninfo = break_replication(abc.c, refused.port)
        wait_receiver(abc.c, streaming=False)
        t_break = time.monotonic()
        time.sleep(2.0)
        opts["max_lag"] = "1GB"                  # a changed track: a new probe, migrated
        t.write_config({"c": opts})
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"pgtrackd: info: .*reload", 3, start)
        line = t.wait_for_log(change_re("c", "standby", "lagging", LAGGING), 3, start)
        took = time.monotonic() - t_break
        m = re.search(r"\(in recovery, WAL receiver not streaming for (\d+\.\d)s", line)
        assert m and float(m.group(1)) < 4.5 and took < 4.5, (line, took)
    finally:
        if conninfo:
            restore_replication(abc.c, conninfo)
        refused.release()
        wait_caught_up(abc.a, abc.b, abc.c)


def test_plain_role_on_a_standby(abc, trackd):
    """A role with LOGIN only can run the probe query on a standby and its peers;
    the receiver's hidden status is said once, and counts as a running receiver."""
    abc.a.sql("DROP ROLE IF EXISTS guard_plain; CREATE ROLE guard_plain LOGIN")
    wait_caught_up(abc.a, abc.b, abc.c)
    try:
        t = trackd.start({"c": node_track(abc.c, [("a", abc.a), ("b", abc.b)], node="c", user="guard_plain",
                                          receiver_grace="1s")})
        wait_standby(t, "c", C_STANDBY)
        t.wait_for_log(r'pgtrackd: debug: track "c": in recovery, .* WAL receiver \?, ', 3)
        t.wait_for_log(r'pgtrackd: debug: track "c": primary a: replay \d+ bytes behind', 3)
        time.sleep(2.0)                  # longer than receiver_grace
        assert t.read("c") == "%d\n" % C_STANDBY
        hidden = ('pgtrackd: info: track "c": the WAL receiver\'s status is hidden from this role '
                  '(grant it pg_read_all_stats); receiver_grace can only tell whether a receiver runs')
        assert len([l for l in t.log().splitlines() if l.endswith(hidden)]) == 1, t.log()[-3000:]
        assert "pgtrackd: warning:" not in t.log(), t.log()[-3000:]
    finally:
        abc.a.sql("DROP ROLE IF EXISTS guard_plain")


def test_silent_peer_does_not_hold_up_a_standby(abc, trackd):
    """A standby asks its peers without waiting: a black-holed peer costs it nothing."""
    silent = SilentListener()
    try:
        t0 = time.monotonic()
        t = trackd.start({"c": node_track(abc.c, [("a", abc.a)], node="c",
                                          **{"peer.x": "127.0.0.1 %d" % silent.port})})
        # the lowest rank at once, the top (the only standby that answers) once x has failed
        wait_standby(t, "c", STANDBY, 5)
        assert time.monotonic() - t0 < 2.0, "first verdict took %.1fs" % (time.monotonic() - t0)
        t.wait_for_log(r'pgtrackd: warning: track "c": peer x gives no answer \(timed out', 5)
        start = t.log_size()
        time.sleep(2.0)
        window = t.log()[start:].splitlines()
        probes = [l for l in window if 'pgtrackd: debug: track "c": in recovery, ' in l]
        assert len(probes) >= 7, "only %d probes in 2 s" % len(probes)
        figures = [l for l in window if 'pgtrackd: debug: track "c": primary a: replay' in l]
        assert len(figures) >= 5, window
        assert [c[:3] for c in changes(t, "c")] == [("unknown", "standby", LOWEST)]
        assert [c[:3] for c in rank_changes(t, "c")] == [(2, 0, STANDBY)]
    finally:
        silent.close()


# --------------------------------------------------------------------------
# 2. failover: the old primary comes back as a primary


def test_failover_old_primary_restarted_is_stale_never_primary(servers, trackd):
    n = three_nodes(servers)
    tracks = abc_tracks(n, value_down=str(DOWN))
    # a1: A again, with rise 1: its first judgement is published, so only the
    # round (the wait for the peers' answers) keeps it from showing the primary's value
    tracks["a1"] = node_track(n.a, [("b", n.b), ("c", n.c)], node="a", value_down=str(DOWN),
                              rise="1")
    t = trackd.start(tracks)
    t.wait_for_value("a", PRIMARY, 10)
    t.wait_for_value("a1", PRIMARY, 10)
    wait_standby(t, "b", STANDBY)
    wait_standby(t, "c", STANDBY - RANK_STEP)
    wait_caught_up(n.a, n.b, n.c)         # so that C can follow B's new timeline

    # failover: A dies, B is promoted, C follows B
    n.a.stop("immediate")
    t.wait_for_value("a", DOWN, 5)
    t.wait_for_value("a1", DOWN, 5)
    n.b.promote()
    t.wait_for_value("b", PRIMARY, 5)
    assert n.b.timeline() == 2
    t.wait_for_log(change_re("b", "standby", "primary", PRIMARY, "not in recovery"), 2)
    at = t.log_size()
    n.c.repoint(n.b)
    assert n.c.in_recovery()
    # the only standby left: the top rank (by a change of rank once B answers as a
    # primary, maybe before the restart, or with the change of state if the restart
    # made c down)
    t.wait_for_value("c", STANDBY, 10)
    deadline = time.monotonic() + 10
    while n.c.sql("SELECT coalesce(max(received_tli), 0) FROM pg_stat_wal_receiver "
                  "WHERE status = 'streaming'")[0][0] != 2:
        assert time.monotonic() < deadline, "C does not stream timeline 2 from B"
        time.sleep(0.1)
    time.sleep(0.5)
    assert t.read("c") == "%d\n" % STANDBY

    # the old primary starts again as a primary
    before = t.log_size()
    w = FileWatch(t, ["a", "a1", "b", "c"])
    try:
        t_start = time.monotonic()
        n.a.start_as_primary()
        t_up = time.monotonic()
        assert not n.a.in_recovery() and n.a.timeline() == 1
        t.wait_for_value("a", STALE, 5)
        t.wait_for_value("a1", STALE, 5)
        # the watcher thread samples every 10 ms: give it time to see what the file says
        deadline = time.monotonic() + 2.0
        stale_at = w.first_time("a", STALE, after=t_start)
        while stale_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
            stale_at = w.first_time("a", STALE, after=t_start)
        assert stale_at is not None, "the file watcher never saw a's stale value"
        time.sleep(3.2)
    finally:
        w.stop()
    a_values = w.values_after("a", t_start)
    assert PRIMARY not in a_values, "a showed the primary's value after the old primary came back: %r" % a_values
    assert a_values == [DOWN, STALE], "a went %r, expected down then stale only" % a_values
    a1_values = w.values_after("a1", t_start)
    assert a1_values == [DOWN, STALE], "a1 (rise 1) went %r, expected down then stale only" % a1_values
    assert stale_at is not None and stale_at - t_up < 2.0, \
        "stale %.2fs after the server was up (pg_ctl start took %.2fs)" % (stale_at - t_up, t_up - t_start)
    # sticky: stale ever since (>= 3 s), and B keeps serving, C stays a standby
    assert time.monotonic() - stale_at >= 3.0
    assert w.values_after("a", stale_at) == [STALE]
    assert w.values_after("a1", stale_at) == [STALE]
    assert w.values_after("b", t_start) == [PRIMARY], w.values_after("b", t_start)
    assert w.values_after("c", t_start) == [STANDBY], w.values_after("c", t_start)
    a_changes = [c[:3] for c in changes(t, "a", before)]
    assert a_changes == [("down", "stale", STALE)], a_changes
    assert [c[:3] for c in changes(t, "a1", before)] == [("down", "stale", STALE)]
    assert [c for c in changes(t, "b", before)] == []
    # no conflict either side: timelines differ
    assert not lines_since(t, before, "conflict"), t.log()[before:]
    # the stale line names the peer and both timelines (the spec's reason)
    # (rise 2 on a: the change is published on the second stale judgement)
    want = "(stale primary: peer b is primary on timeline 2, this server on timeline 1)"
    for name in ("a1", "a"):
        stale_lines = [l for l in lines_since(t, before, 'track "%s": ' % name) if "-> stale" in l]
        assert len(stale_lines) == 1 and stale_lines[0].endswith(want), \
            "track %s: expected the change to stale to end with %r; got:\n%s" % (
                name, want, "\n".join(stale_lines))


# --------------------------------------------------------------------------
# 3. two primaries on one timeline


def test_two_primaries_same_timeline_conflict_sticky(servers, trackd):
    p = servers.primary("P")
    q = servers.replica(p, "Q")
    r = servers.replica(p, "R")
    n = Abc(p, q, r)
    t = trackd.start(abc_tracks(n, names=("p", "q", "r"), value_down=str(DOWN)),
                     {"reminder_interval": "1s"})
    t.wait_for_value("p", PRIMARY, 10)
    wait_standby(t, "q", STANDBY)
    wait_standby(t, "r", STANDBY - RANK_STEP)
    wait_caught_up(p, q, r)

    p.stop("immediate")                   # nothing else interferes
    t.wait_for_value("p", DOWN, 5)
    q.promote()
    r.promote()
    assert q.timeline() == r.timeline() == 2
    t.wait_for_value("q", CONFLICT, 5)
    t.wait_for_value("r", CONFLICT, 5)
    t.wait_for_log(change_re("q", r"\w+", "conflict", CONFLICT,
                             "conflict: peer r is primary on timeline 2 like this server; "
                             "neither may take writes until one is a standby"), 2)
    t.wait_for_log(change_re("r", r"\w+", "conflict", CONFLICT,
                             "conflict: peer q is primary on timeline 2 like this server; "
                             "neither may take writes until one is a standby"), 2)

    # the error is logged at the transition, then once every reminder_interval
    # (1 s here), not at every probe (interval 200ms: 12 in 2.5 s)
    start = t.log_size()
    time.sleep(2.5)
    for me, other in (("q", "r"), ("r", "q")):
        errs = [l for l in t.log()[start:].splitlines() if l.endswith(CONFLICT_ERROR % (me, other, 2))]
        assert 2 <= len(errs) <= 3, "track %s: %d conflict errors in 2.5 s (reminder_interval " \
            "1s, interval 200ms):\n%s" % (me, len(errs), t.log()[start:])
    assert (t.read("q"), t.read("r")) == ("%d\n" % CONFLICT, "%d\n" % CONFLICT)

    # R stops: r goes down, q stays at conflict (sticky while the peer is unreachable)
    stop_at = t.log_size()
    w = FileWatch(t, ["q"])
    try:
        t_stop = time.monotonic()
        r.stop("immediate")
        t.wait_for_value("r", DOWN, 5)
        time.sleep(3.5)                   # well past the freshness of r's last answer
    finally:
        w.stop()
    assert w.values_after("q", t_stop) == [CONFLICT], w.values_after("q", t_stop)
    assert [c[:3] for c in changes(t, "q", stop_at)] == []
    start = t.log_size()
    time.sleep(2.5)
    errs = [l for l in t.log()[start:].splitlines()
            if 'pgtrackd: error: track "q": conflict: peer r ' in l]
    assert 2 <= len(errs) <= 3, t.log()[start:]

    # R rebuilt as a standby of Q: the conflict ends, q is primary again
    before = t.log_size()
    r.rebuild_as_replica_of(q)
    assert r.in_recovery()
    t.wait_for_value("q", PRIMARY, 10)
    t.wait_for_log(change_re("q", "conflict", "primary", PRIMARY, "not in recovery"), 2, before)
    wait_standby(t, "r", STANDBY)          # P is down: the only standby
    quiet = t.log_size()
    time.sleep(1.0)
    assert not lines_since(t, quiet, "conflict"), t.log()[quiet:]
    assert (t.read("q"), t.read("r")) == ("%d\n" % PRIMARY, "%d\n" % STANDBY)


# --------------------------------------------------------------------------
# 7. configuration errors


HEAD = "[track a]\nfile = /nonexistent/a\n"          # lines 1-2
NINE = "".join("peer.p%d = 127.0.0.1 %d\n" % (i, 5400 + i) for i in range(1, 10))   # lines 3-11

PEER_ERRORS = {
    "peer_name_space": (HEAD + "peer.x y = 127.0.0.1\n",
                        [(3, 'invalid peer name "x y": use 1 to 32 of A-Z a-z 0-9 _ . -')]),
    "peer_name_empty": (HEAD + "peer. = 127.0.0.1\n",
                        [(3, 'invalid peer name "": use 1 to 32 of A-Z a-z 0-9 _ . -')]),
    "peer_name_33": (HEAD + "peer.%s = 127.0.0.1\n" % ("n" * 33),
                     [(3, 'invalid peer name "%s": use 1 to 32 of A-Z a-z 0-9 _ . -' % ("n" * 33))]),
    "peer_name_slash": (HEAD + "peer.b/c = 127.0.0.1\n",
                        [(3, 'invalid peer name "b/c": use 1 to 32 of A-Z a-z 0-9 _ . -')]),
    "duplicate_peer": (HEAD + "peer.b = 127.0.0.1 5432\nport = 5432\npeer.b = /tmp 5433\n",
                       [(5, 'duplicate key "peer.b"')]),
    "too_many_peers": (HEAD + NINE, [(11, "too many peers: at most 8 per track")]),
    "bad_host_name": (HEAD + "peer.b = db!example.com\n",
                      [(3, 'invalid value "db!example.com" for peer.b: the address must be a '
                           'numeric address, a host name or a unix socket directory')]),
    "mistyped_address_with_port": (HEAD + "peer.b = 192.0.2 5432\n",
                                   [(3, 'invalid value "192.0.2 5432" for peer.b: the address must '
                                        'be a numeric address, a host name or a unix socket '
                                        'directory')]),
    "port_99999": (HEAD + "peer.b = 127.0.0.1 99999\n",
                   [(3, 'invalid value "127.0.0.1 99999" for peer.b: port must be between 1 and 65535')]),
    "port_0": (HEAD + "peer.b = /run/postgresql 0\n",
               [(3, 'invalid value "/run/postgresql 0" for peer.b: port must be between 1 and 65535')]),
    "port_not_a_number": (HEAD + "peer.b = 127.0.0.1 54x\n",
                          [(3, 'invalid value "127.0.0.1 54x" for peer.b: port must be between 1 and 65535')]),
    "max_lag_word": (HEAD + "max_lag = x\n",
                     [(3, 'invalid value "x" for max_lag: expected a size like 8192, 64kB, 16MB or 1GB')]),
    "max_lag_unit": (HEAD + "max_lag = 16 parsecs\n",
                     [(3, 'invalid value "16 parsecs" for max_lag: expected a size like 8192, 64kB, '
                          '16MB or 1GB')]),
    "value_stale_range": (HEAD + "value_stale = 255\n",
                          [(3, 'invalid value "255" for value_stale: must be between -254 and 254')]),
    "receiver_grace_short": (HEAD + "receiver_grace = 500ms\n",
                             [(3, 'invalid value "500ms" for receiver_grace: must be between 1s and 24h, '
                                  'or 0 to disable')]),
    "value_lagging_range": (HEAD + "value_lagging = -300\n",
                            [(3, 'invalid value "-300" for value_lagging: must be between -254 and 254')]),
}


@pytest.mark.parametrize("case", sorted(PEER_ERRORS))
def test_bad_guard_config_exact_message(pgtrackd_bin, workdir, case):
    text, expected = PEER_ERRORS[case]
    conf = os.path.join(workdir, case + ".conf")
    with open(conf, "w") as f:
        f.write(text)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "configuration OK" not in r.stdout
    assert errs == ["%s:%d: %s" % (conf, n, m) for n, m in expected], r.stderr


def test_good_guard_config_passes_check(pgtrackd_bin, workdir):
    conf = os.path.join(workdir, "ok.conf")
    with open(conf, "w") as f:
        f.write(HEAD +
                "".join("peer.p%d = 127.0.0.1 %d\n" % (i, 5400 + i) for i in range(1, 6)) +
                "peer.%s = /var/run/postgresql\n" % ("N" * 32) +    # 32 characters, track's port
                "peer.v6 = ::1 5432\n"
                "peer.Node_2.x-y = db2.example   6432\n"               # 8 peers, by name
                "node = self\nrank_step = 5\n"                         # 8 ranks stay above 0
                "value_stale = -254\nvalue_conflict = -200\nvalue_lagging = -50\n"
                "max_lag = 16MB\nmax_lag_time = 24h\n"
                "[track b]\nfile = /nonexistent/b\nmax_lag = 8192\nmax_lag_time = 1s\n"
                "receiver_grace = 30s\n"
                "[track c]\nfile = /nonexistent/c\nmax_lag = 64kB\nmax_lag_time = 0\nreceiver_grace = 0\n"
                "[track d]\nfile = /nonexistent/d\nmax_lag = 1GB\npeer.b = 127.0.0.1\n")
    r = run_binary(pgtrackd_bin, "-t", "-f", conf)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")


# --------------------------------------------------------------------------
# 8. standbys ranked by WAL position


def test_ranks_hold_while_the_primary_writes(abc, trackd):
    """B and C stream the same WAL while A commits every 50 ms: each compares the
    other's answer with its own position at about the same time, so the
    positions tie (within rank_tolerance) and the tie goes to b by name, at every
    probe: no rank flaps, no line per probe."""
    t = trackd.start(abc_tracks(abc))
    wait_standby(t, "b", STANDBY)
    wait_standby(t, "c", STANDBY - RANK_STEP)
    time.sleep(0.5)                       # the rank's log line follows its file write
    start = t.log_size()
    writes = WriteLoop(abc.a)
    w = FileWatch(t, ["b", "c"])
    try:
        time.sleep(3.0)
    finally:
        w.stop()
        writes.stop()
    assert writes.commits > 30 and writes.error is None, (writes.commits, writes.error)
    assert w.values("b") == [STANDBY], w.values("b")
    assert w.values("c") == [STANDBY - RANK_STEP], w.values("c")
    assert rank_changes(t, "b", start) == [] and rank_changes(t, "c", start) == [], t.log()[start:]
    wait_caught_up(abc.a, abc.b, abc.c)


def test_most_advanced_standby_ranks_first_and_keeps_it_after_a_crash(servers, trackd):
    """B (first by name) is held behind: its WAL receiver cannot reach A while A
    writes 5 MB. C, the most advanced, takes the top standby value and b steps
    down, one line each. Then A is killed with SIGKILL: every position freezes,
    and neither standby changes its value again (the handover window of
    keepalived must not see a priority change)."""
    n = three_nodes(servers)
    t = trackd.start(abc_tracks(n, value_down=str(DOWN), receiver_grace="60s"))
    t.wait_for_value("a", PRIMARY, 10)
    wait_standby(t, "b", STANDBY)
    wait_standby(t, "c", STANDBY - RANK_STEP)
    wait_caught_up(n.a, n.b, n.c)

    refused = PortReservation()
    try:
        start = t.log_size()
        break_replication(n.b, refused.port)
        wait_receiver(n.b, streaming=False)
        n.a.sql("CREATE TABLE guard_rank AS SELECT g, repeat('r', 1000) AS pad "
                "FROM generate_series(1, 5000) g")
        n.c.wait_replayed(str(n.a.sql("SELECT pg_current_wal_lsn()")[0][0]))
        t.wait_for_value("c", STANDBY, 5)
        t.wait_for_value("b", STANDBY - RANK_STEP, 5)
        # the file is written just before the line is logged
        t.wait_for_log(r'track "c": standby rank 1 -> 0, value %d written' % STANDBY, 2, start)
        t.wait_for_log(r'track "b": standby rank 0 -> 1, value %d written' % (STANDBY - RANK_STEP), 2, start)
        assert [r[:3] for r in rank_changes(t, "c", start)] == [(1, 0, STANDBY)], t.log()[start:]
        assert [r[:3] for r in rank_changes(t, "b", start)] == [(0, 1, STANDBY - RANK_STEP)], t.log()[start:]
        assert changes(t, "b", start) == [] and changes(t, "c", start) == [], t.log()[start:]
        time.sleep(0.5)

        # the crash
        crash = t.log_size()
        w = FileWatch(t, ["b", "c"])
        try:
            t_crash = time.monotonic()
            n.a.kill9()
            t.wait_for_value("a", DOWN, 5)
            time.sleep(4.0)                # past the freshness of A's last answer
        finally:
            w.stop()
        assert w.values_after("c", t_crash) == [STANDBY], w.values_after("c", t_crash)
        assert w.values_after("b", t_crash) == [STANDBY - RANK_STEP], w.values_after("b", t_crash)
        assert rank_changes(t, "b", crash) == [] and rank_changes(t, "c", crash) == [], \
            t.log()[crash:]
        # the one a failover manager promotes (repmgr: the most advanced) is the one at
        # the top; promoted, it takes the primary's value, and b, the only standby left,
        # moves up to the top standby value, still below it
        n.c.promote()
        t.wait_for_value("c", PRIMARY, 5)
        t.wait_for_value("b", STANDBY, 5)
    finally:
        refused.release()
