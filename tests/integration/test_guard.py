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

import re
import signal
import time

from guard_rig import (PRIMARY, STANDBY, RANK_STEP, LOWEST, LAGGING, RANKED, node_track, rank_changes,
                       lines_since, wait_standby, wait_caught_up, abc_tracks, C_STANDBY, WriteLoop,
                       break_replication, restore_replication, wait_receiver, RECEIVER_DOWN)
from kit.pgserver import PgServer
from kit.ports import PortReservation, SilentListener
from kit.trackd import FileWatch, change_re, changes
from guard_rig import abc  # noqa: F401  (fixtures)


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
        # back to standby, ranked; C may rank first for a poll right after
        # the resume (seen once in CI: the two standbys' positions, sampled
        # at different moments, apart by more than rank_tolerance just
        # after the burst; ranks change while WAL flows, pgtrackd(8)), then
        # it is second
        first = changes(t, "c", resume_at)[0]
        assert first[:3] in (("lagging", "standby", C_STANDBY), ("lagging", "standby", STANDBY)), first
        assert re.fullmatch(RANKED, first[3]), first
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
        # down_for > receiver_grace, printed to 0.1 s: 2.04 reads "2.0"
        assert m and 2.0 <= float(m.group(1)) < 3.5, line
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
