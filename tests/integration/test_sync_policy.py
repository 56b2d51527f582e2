"""sync_standby_names: pgtrackd turns synchronous replication on while a
standby streams caught up, relaxes it when a commit has waited
sync_relax_after for a standby that is gone or hung, keeps it relaxed until
the standby is back past where it relaxed, and keeps a standby's setting
empty so that its promotion does not wait (pgtrackd.conf(5))."""

import json
import os
import signal
import threading
import time

from guard_rig import PRIMARY, STANDBY, abc_tracks, three_nodes, wait_caught_up
from kit.trackd import assert_check_errors
from test_http import port, request, write  # noqa: F401  (port: a fixture)

NAMES = "ANY 1 (*)"
ON = r'notice: track "p": synchronous replication on: 1 standby\(s\) streaming'
RELAXED = r'warning: track "p": synchronous replication relaxed: 1 commit\(s\) waited'


def setting(srv):
    return srv.sql("SHOW synchronous_standby_names")[0][0]


def wait_setting(srv, value, timeout=10):
    deadline = time.monotonic() + timeout
    while setting(srv) != value:
        assert time.monotonic() < deadline, "%s: synchronous_standby_names %r, not %r" % (
            srv.name, setting(srv), value)
        time.sleep(0.05)


class Commit:
    """One INSERT in a thread: how long it took, or its error."""

    def __init__(self, srv):
        self.took = None
        self.error = None
        self._thread = threading.Thread(target=self._run, args=(srv,), daemon=True)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self, srv):
        try:
            with srv.connect() as conn:
                # the test servers commit with synchronous_commit = off (tests/kit/postgres.py)
                conn.execute("SET synchronous_commit = on")
                conn.execute("INSERT INTO sync_writes VALUES (now())")
            self.took = time.monotonic() - self._started
        except Exception as e:
            self.error = e

    def wait(self, timeout):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the commit still waits after %.0fs" % timeout
        assert self.error is None, self.error
        return self.took


def tracks(cluster_primary, replica, **over):
    opts = dict(sync_standby_names=NAMES, sync_relax_after="1s")
    opts.update(over)
    return {"p": cluster_primary.track_options(legacy_values=False, **opts),
            "r": replica.track_options(legacy_values=False, **opts)}


def sync_state(primary):
    return [r[0] for r in primary.sql("SELECT sync_state FROM pg_stat_replication")]


def sync_facts(port, names=None, timeout=5):
    """The p track's sync facts in /status, and its sync series in /metrics;
    with names, once the facts (the last poll, once a second) show them."""
    deadline = time.monotonic() + timeout
    while True:
        facts, series = _sync_facts(port)
        if names is None or facts.get("sync_standby_names") == names:
            return facts, series
        assert time.monotonic() < deadline, facts
        time.sleep(0.1)


def _sync_facts(port):
    status, body, _ = request(port, "/status")
    assert status == 200
    facts = {tr["name"]: tr for tr in json.loads(body)["tracks"]}["p"]["facts"]
    status, body, _ = request(port, "/metrics")
    assert status == 200
    series = [l for l in body.decode().splitlines() if l.startswith("pgtrackd_sync_")]
    return {k: v for k, v in facts.items() if k.startswith("sync_")}, series


def test_on_relaxed_on_again(servers, trackd, port):
    p = servers.primary("p")
    r = servers.replica(p, "r")
    p.sql("CREATE TABLE sync_writes (at timestamptz)")
    r.sql("ALTER SYSTEM SET synchronous_standby_names = 'n9'")
    r.sql("SELECT pg_reload_conf()")
    t = trackd.new()
    write(t, tracks(p, r), {"listen": "127.0.0.1:%d" % port, "default_track": "p"})
    t.start()
    t.wait_for_value("p", PRIMARY, 10)
    t.wait_for_value("r", STANDBY, 10)

    # on: the standby streams caught up; commits wait for it
    t.wait_for_log(ON, 10)
    wait_setting(p, NAMES)
    assert sync_state(p) == ["quorum"]
    assert Commit(p).wait(10) < 5
    facts, series = sync_facts(port, NAMES)
    assert facts["sync_relaxed"] == 0, facts
    assert facts["sync_streaming_standbys"] == 1 and facts["sync_policy_failing"] == 0, facts
    assert 'pgtrackd_sync_relaxed{track="p"} 0' in series, series
    # the standby's own value is taken away: its promotion starts relaxed
    t.wait_for_log(r'info: track "r": standby: synchronous_standby_names set to \'\' '
                   r'\(was \'n9\'\): a promotion here acknowledges its first commits at '
                   r'once and turns synchronous once a standby follows it', 10)
    wait_setting(r, "")
    deadline = time.monotonic() + 5      # the standby's facts: its next poll
    while 'pgtrackd_sync_relaxed{track="r"} 1' not in sync_facts(port)[1]:
        assert time.monotonic() < deadline, sync_facts(port)
        time.sleep(0.1)

    # the standby stops: the commit waits sync_relax_after, then goes through
    at = t.log_size()
    r.stop("fast")
    took = Commit(p).wait(20)
    assert took >= 0.9, took
    line = t.wait_for_log(RELAXED, 5, start=at)
    assert "commits acknowledged meanwhile are on this node only" in line
    wait_setting(p, "")
    assert t.read("p") == "%d\n" % PRIMARY     # the primary's verdict never moved
    assert Commit(p).wait(10) < 5              # relaxed: nothing waits
    facts, series = sync_facts(port, "")
    assert facts["sync_relaxed"] == 1, facts
    assert facts["sync_waiting_commits"] == 0, facts
    assert 'pgtrackd_sync_relaxed{track="p"} 1' in series, series

    # back: on again once it is past where the primary relaxed
    at = t.log_size()
    r.start()
    t.wait_for_log(ON, 15, start=at)
    wait_setting(p, NAMES)
    wait_caught_up(p, r)
    assert sync_state(p) == ["quorum"]
    # each change was logged once
    assert len([l for l in t.log_lines() if "synchronous replication relaxed" in l]) == 1


def test_hung_standby_relaxes_and_stays_relaxed(servers, trackd):
    """A WAL receiver that stops answering (SIGSTOP): its walsender still says
    streaming, its flushed position is close; commits wait, the primary relaxes,
    and stays relaxed until the standby has flushed what was committed."""
    p = servers.primary("p")
    r = servers.replica(p, "r")
    p.sql("CREATE TABLE sync_writes (at timestamptz)")
    t = trackd.start(tracks(p, r))
    t.wait_for_log(ON, 10)
    wait_setting(p, NAMES)
    receiver = r.sql("SELECT pid FROM pg_stat_wal_receiver")[0][0]
    at = t.log_size()
    os.kill(receiver, signal.SIGSTOP)
    try:
        took = Commit(p).wait(20)
        assert took >= 0.9, took
        t.wait_for_log(RELAXED, 5, start=at)
        wait_setting(p, "")
        assert [s for (s,) in p.sql("SELECT state FROM pg_stat_replication")] == ["streaming"]
        time.sleep(2.0)                        # ten polls: not on again, it has not flushed
        assert setting(p) == ""
        assert not [l for l in t.lines_since(at) if "synchronous replication on" in l]
    finally:
        os.kill(receiver, signal.SIGCONT)
    t.wait_for_log(ON, 15, start=at)
    wait_setting(p, NAMES)


def test_promotion_starts_relaxed(servers, trackd):
    """The standby's setting is empty, so the new primary commits at once;
    synchronous again once the old primary follows it."""
    p = servers.primary("p")
    r = servers.replica(p, "r")
    p.sql("CREATE TABLE sync_writes (at timestamptz)")
    t = trackd.start(tracks(p, r))
    t.wait_for_log(ON, 10)
    wait_setting(r, "")
    wait_caught_up(p, r)
    p.stop("immediate")
    r.promote()
    assert setting(r) == ""
    assert Commit(r).wait(10) < 5
    # the old primary comes back as a standby of the new one: its own setting
    # (strict, it was the primary) goes, and the new primary goes synchronous
    p.rebuild_as_replica_of(r)
    wait_setting(p, "")
    t.wait_for_log(r'notice: track "r": synchronous replication on', 15)
    wait_setting(r, NAMES)


def test_without_the_grant_it_says_what_to_grant(servers, trackd):
    """A role that may read the statistics but not ALTER SYSTEM: a clear
    warning naming the grants, the verdict unharmed; once granted, it works."""
    p = servers.primary("p")
    r = servers.replica(p, "r")
    p.sql("CREATE ROLE mon LOGIN IN ROLE pg_monitor")
    wait_caught_up(p, r)
    opts = dict(sync_standby_names=NAMES, user="mon")
    t = trackd.start({"p": p.track_options(legacy_values=False, **opts)})
    t.wait_for_value("p", PRIMARY, 10)
    t.wait_for_log(r'warning: track "p": synchronous replication policy: ALTER SYSTEM SET '
                   r'synchronous_standby_names failed \(query failed: permission denied to set '
                   r'parameter "synchronous_standby_names"\); the '
                   r'role needs GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names and '
                   r'GRANT EXECUTE ON FUNCTION pg_reload_conf\(\); synchronous_standby_names stays '
                   r'as it is, tried again in 1s', 10)
    assert setting(p) == ""
    assert t.read("p") == "%d\n" % PRIMARY
    p.sql("GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names TO mon")
    p.sql("GRANT EXECUTE ON FUNCTION pg_reload_conf() TO mon")
    t.wait_for_log(ON, 10)
    wait_setting(p, NAMES)
    # the failure was logged once, and tried again at a backoff (1, 2, 4 s ...), not every poll
    assert len([l for l in t.log_lines() if "policy: ALTER SYSTEM" in l]) == 1
    assert p.log().count('permission denied to set parameter "synchronous_standby_names"') <= 4


def test_role_without_statistics_is_told(servers, trackd):
    p = servers.primary("p")
    p.sql("CREATE ROLE plain LOGIN")
    t = trackd.start({"p": p.track_options(legacy_values=False, sync_standby_names=NAMES,
                                           user="plain")})
    t.wait_for_value("p", PRIMARY, 10)
    t.wait_for_log(r'warning: track "p": synchronous replication policy: this role cannot '
                   r'see other sessions\' waits nor the standbys\' positions \(grant it '
                   r'pg_read_all_stats or pg_monitor\)', 10)


def test_bad_names_refused(pgtrackd_bin, workdir):
    assert_check_errors(pgtrackd_bin, workdir, "sync",
                        "[track p]\nfile = %s/p\nsync_standby_names = n2'\n" % workdir,
                        [(3, 'invalid value "n2\'" for sync_standby_names: the syntax of '
                             'PostgreSQL\'s synchronous_standby_names, with only A-Z a-z 0-9 _ . '
                             '- * , ( ) " and spaces')])


def test_overridden_setting_is_warned_about_not_fought(servers, trackd):
    """A command-line -c overrides postgresql.auto.conf: pgtrackd's change never
    shows. It says so, once, and tries again at a backoff, not every poll."""
    p = servers.primary("p")
    r = servers.replica(p, "r")
    wait_caught_up(p, r)
    p.pg_ctl("-w", "-t", "60", "-m", "fast", "-o", "-c synchronous_standby_names=n7", "restart")
    p.pid = p._read_pid()
    wait_setting(p, "n7")
    t = trackd.start({"p": p.track_options(legacy_values=False, sync_standby_names=NAMES)})
    t.wait_for_value("p", PRIMARY, 10)
    t.wait_for_log(r'warning: track "p": synchronous replication policy: the server shows '
                   r'\'n7\' \d+\.\ds after pgtrackd set \'ANY 1 \(\*\)\' and reloaded: a setting '
                   r'that overrides postgresql.auto.conf \(a command-line -c, ALTER ROLE or '
                   r'ALTER DATABASE ... SET\)\?; synchronous_standby_names stays as it is, tried '
                   r'again in 1s', 10)
    reloads = p.log().count("received SIGHUP")
    time.sleep(20.0)
    assert setting(p) == "n7"
    assert len([l for l in t.log_lines() if "policy: the server shows" in l]) == 1
    # each try (ALTER SYSTEM succeeds, the reload shows nothing) waits the settling
    # time (2 s), then 1, 2, 4, 8 ... s: 3 in these 20 s (every 3 s, 6 or more, if
    # the successful ALTER SYSTEM reset the backoff), not one every poll
    assert 1 <= p.log().count("received SIGHUP") - reloads <= 4


def test_acknowledged_commit_survives_the_crash(servers, trackd):
    """The loss asynchronous replication allows: the standby's WAL receiver
    stalls, the primary acknowledges a commit, the primary crashes, the
    standby is promoted without it. Strict, the commit waits for the standby
    instead (less than sync_relax_after here), and the promoted standby has it."""
    p = servers.primary("p")
    r = servers.replica(p, "r")
    p.sql("CREATE TABLE sync_writes (at timestamptz)")
    t = trackd.start(tracks(p, r, sync_relax_after="30s"))
    t.wait_for_log(ON, 10)
    wait_setting(p, NAMES)
    wait_caught_up(p, r)
    receiver = r.sql("SELECT pid FROM pg_stat_wal_receiver")[0][0]
    os.kill(receiver, signal.SIGSTOP)
    try:
        commit = Commit(p)
        time.sleep(1.0)
        assert commit.took is None and commit.error is None   # waits for the standby
    finally:
        os.kill(receiver, signal.SIGCONT)
    commit.wait(20)
    p.kill9()
    r.promote()
    assert r.sql("SELECT count(*) FROM sync_writes")[0][0] == 1


def test_three_nodes_promotion_starts_relaxed(servers, trackd):
    """Three nodes, sync_promotion = relaxed (the default): both standbys are
    relaxed, so B's first commit after its promotion is acknowledged at once,
    before C follows it; B turns synchronous once C streams from it."""
    n = three_nodes(servers)
    n.a.sql("CREATE TABLE sync_writes (at timestamptz)")
    t = trackd.start(abc_tracks(n, sync_standby_names=NAMES, sync_relax_after="3s"))
    wait_setting(n.a, NAMES)
    wait_setting(n.b, "")
    wait_setting(n.c, "")
    wait_caught_up(n.a, n.b, n.c)

    n.a.stop("immediate")
    n.b.promote()
    assert setting(n.b) == ""
    assert Commit(n.b).wait(10) < 3
    at = t.log_size()
    n.c.repoint(n.b)
    t.wait_for_log(r'notice: track "b": synchronous replication on: 1 standby\(s\) streaming',
                   15, start=at)
    wait_setting(n.b, NAMES)
    assert Commit(n.b).wait(10) < 3
    wait_caught_up(n.b, n.c)
    assert n.c.sql("SELECT count(*) FROM sync_writes")[0][0] == 2
    assert setting(n.c) == ""


def test_standbys_keep_strict_while_another_follows(servers, trackd):
    """sync_promotion = follower, three nodes with peers: each standby keeps
    the names for its promotion while the other standby answers (it would
    follow); the one left alone relaxes. Promoted, B's first commit waits for
    C to follow it."""
    n = three_nodes(servers)
    n.a.sql("CREATE TABLE sync_writes (at timestamptz)")
    t = trackd.start(abc_tracks(n, sync_standby_names=NAMES, sync_relax_after="3s",
                                sync_promotion="follower"))
    wait_setting(n.a, NAMES)
    wait_setting(n.b, NAMES)
    wait_setting(n.c, NAMES)
    t.wait_for_log(r'info: track "b": standby: synchronous_standby_names set to \'ANY 1 \(\*\)\' '
                   r'\(was \'\'\): other standbys answer among the peers, so a promotion here '
                   r'waits for one of them to follow', 10)
    # C goes: B is the only standby left, and relaxes for its own promotion once
    # C has been gone sync_relax_after (a peer that comes and goes changes nothing)
    at = t.log_size()
    n.c.stop("fast")
    time.sleep(1.0)
    assert setting(n.b) == NAMES
    wait_setting(n.b, "")
    t.wait_for_log(r'info: track "b": standby: synchronous_standby_names set to \'\' \(was '
                   r'\'ANY 1 \(\*\)\'\): no other standby answers among the peers', 10, start=at)
    n.c.start()
    wait_setting(n.b, NAMES)
    wait_caught_up(n.a, n.b, n.c)

    # the failover: B is promoted strict; its first commit waits for C to follow
    n.a.stop("immediate")
    n.b.promote()
    assert setting(n.b) == NAMES
    commit = Commit(n.b)
    time.sleep(1.0)
    assert commit.took is None and commit.error is None
    n.c.repoint(n.b)
    commit.wait(20)
    deadline = time.monotonic() + 10
    while [s for (s,) in n.b.sql("SELECT sync_state FROM pg_stat_replication")] != ["quorum"]:
        assert time.monotonic() < deadline, n.b.sql("SELECT * FROM pg_stat_replication")
        time.sleep(0.1)
