"""sync_standby_names: pgtrackd turns synchronous replication on while a
standby streams caught up, relaxes it when a commit has waited
sync_relax_after for a standby that is gone or hung, keeps it relaxed until
the standby is back past where it relaxed, and keeps a standby's setting
empty so that its promotion does not wait (pgtrackd.conf(5))."""

import os
import signal
import threading
import time

from guard_rig import PRIMARY, STANDBY, wait_caught_up
from kit.trackd import assert_check_errors

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
    opts = dict(sync_standby_names=NAMES, sync_relax_after="1s", **over)
    return {"p": cluster_primary.track_options(legacy_values=False, **opts),
            "r": replica.track_options(legacy_values=False, **opts)}


def sync_state(primary):
    return [r[0] for r in primary.sql("SELECT sync_state FROM pg_stat_replication")]


def test_on_relaxed_on_again(servers, trackd):
    p = servers.primary("p")
    r = servers.replica(p, "r")
    p.sql("CREATE TABLE sync_writes (at timestamptz)")
    r.sql("ALTER SYSTEM SET synchronous_standby_names = 'n9'")
    r.sql("SELECT pg_reload_conf()")
    t = trackd.start(tracks(p, r))
    t.wait_for_value("p", PRIMARY, 10)
    t.wait_for_value("r", STANDBY, 10)

    # on: the standby streams caught up; commits wait for it
    t.wait_for_log(ON, 10)
    wait_setting(p, NAMES)
    assert sync_state(p) == ["quorum"]
    assert Commit(p).wait(10) < 5
    # the standby's own value is taken away: its promotion would wait for nobody
    t.wait_for_log(r'info: track "r": standby: synchronous_standby_names set to \'\' '
                   r'\(was \'n9\'\)', 10)
    wait_setting(r, "")

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
    time.sleep(4.0)
    assert setting(p) == "n7"
    assert len([l for l in t.log_lines() if "policy: the server shows" in l]) == 1
    # ALTER SYSTEM itself succeeded each time: at most a try every 1, 2, 4 s, not every poll
    assert 1 <= p.log().count("received SIGHUP") <= 4
