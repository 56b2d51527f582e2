"""The guard through a failover (the old primary comes back stale), two
primaries on one timeline (conflict), the peer configuration errors, and
standbys ranked by WAL position."""

import os
import time

import pytest

from guard_rig import (PRIMARY, STANDBY, RANK_STEP, STALE, CONFLICT, DOWN, CONFLICT_ERROR, node_track,
                       rank_changes, lines_since, wait_standby, wait_caught_up, Abc, three_nodes,
                       abc_tracks, WriteLoop, break_replication, wait_receiver)
from kit.ports import PortReservation
from kit.trackd import FileWatch, assert_check_errors, change_re, changes, run_binary
from guard_rig import abc  # noqa: F401  (fixtures)


def _fail_over_to_b(t, n):
    """Failover: A dies, B is promoted, C follows B (the top rank once B
    answers as a primary) and streams timeline 2 from it."""
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

    _fail_over_to_b(t, n)

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
    assert_check_errors(pgtrackd_bin, workdir, case, text, expected)


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
