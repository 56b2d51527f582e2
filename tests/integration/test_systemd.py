"""systemd's side of both daemons, without systemd as PID 1: the test plays
the service manager on a datagram socket ($NOTIFY_SOCKET, $WATCHDOG_USEC)
and checks what arrives and when; --write-stopped after a SIGKILL; journal
logging ($JOURNAL_STREAM)."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from kit.fifo import inst
from kit.ports import SilentListener
from kit.trackd import FAST_TRACK
from kit.waiting import wait_until
from modules_rig import built
from modules_rig import build_dir  # noqa: F401  (fixture)
from notify_rig import VI
from notify_rig import notify_bin, pg, rig  # noqa: F401  (fixtures)

PRIMARY = 54
WATCHDOG_USEC = 400000          # WATCHDOG=1 every 200 ms


class Manager:
    """The service manager's end of $NOTIFY_SOCKET: every datagram with its time."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.got = []           # (monotonic, {key: value}, raw)

    def env(self, watchdog=True):
        e = {"NOTIFY_SOCKET": self.path}
        if watchdog:
            e["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        return e

    def drain(self, seconds):
        """Reads for this long; a datagram's time is when it was read."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                raw = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in raw.split("\n") if "=" in line)
            self.got.append((time.monotonic(), fields, raw))

    def wait_for(self, key, value=None, timeout=10.0, after=0):
        """The first datagram from index after on with key (= value)."""
        def find():
            self.drain(0.05)
            for i, (_, f, _) in enumerate(self.got[after:], after):
                if key in f and (value is None or f[key] == value):
                    return [i]
            return None
        return wait_until(find, timeout, what="%s=%s" % (key, value or "*"),
                          describe=lambda: "datagrams so far: %r" % [g[2] for g in self.got])[0]

    def count(self, key, since, until):
        return sum(1 for t, f, _ in self.got if key in f and since <= t <= until)

    def close(self):
        self.sock.close()


@pytest.fixture
def manager(workdir):
    m = Manager(workdir)
    yield m
    m.close()


def test_pgtrackd_ready_status_watchdog_reload_stop(cluster, trackd, manager):
    t = trackd.new()
    t.write_config({"main": cluster.primary.track_options(legacy_values=False)})
    t.extra_env = manager.env()
    t.start()
    ready = manager.wait_for("READY", "1")
    # READY=1 only once the first verdict is in the file, and says so.
    assert t.read("main") == "%d\n" % PRIMARY
    assert manager.got[ready][1]["STATUS"] == "main: primary %d" % PRIMARY
    t.wait_for_log(r'track "main": unknown -> primary')

    # WATCHDOG=1 from the loop every half period.
    t0 = time.monotonic()
    manager.drain(2.0)
    pets = manager.count("WATCHDOG", t0, time.monotonic())
    assert 7 <= pets <= 13, pets

    # None while the process is stopped; again once it runs.
    t.send_signal(signal.SIGSTOP)
    manager.drain(0.1)
    stopped_at = time.monotonic()
    manager.drain(1.0)
    assert manager.count("WATCHDOG", stopped_at, time.monotonic()) == 0
    t.send_signal(signal.SIGCONT)
    manager.wait_for("WATCHDOG", "1", 5, after=len(manager.got))

    # SIGHUP: RELOADING=1 with the monotonic clock, then READY=1.
    mark = len(manager.got)
    t.send_signal(signal.SIGHUP)
    i = manager.wait_for("RELOADING", "1", 5, after=mark)
    usec = int(manager.got[i][1]["MONOTONIC_USEC"])
    assert abs(usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 5
    assert manager.wait_for("READY", "1", 5, after=i + 1) > i

    # SIGTERM: STOPPING=1, then the stopped value and the status saying so.
    mark = len(manager.got)
    assert t.stop() == 0
    manager.drain(0.3)
    keys = [k for _, f, _ in manager.got[mark:] for k in f if k != "WATCHDOG"]
    assert keys[0] == "STOPPING", keys
    assert any(f.get("STATUS") == "main: stopped -254" for _, f, _ in manager.got[mark:])
    assert t.read("main") == "-254\n"


def test_pgtrackd_ready_at_ready_timeout_names_the_track(trackd, manager, workdir):
    """A track whose verdict takes longer than ready_timeout: READY=1 all the
    same, with the track named in STATUS= and a warning."""
    silent = SilentListener()      # accepts, never answers: each probe times out after 1 s
    try:
        t = trackd.new()
        t.write_config({"slow": dict(FAST_TRACK, hostaddr="127.0.0.1", port=str(silent.port),
                                     fall="20", user="postgres", dbname="postgres")},
                       {"ready_timeout": "500ms"})
        t.extra_env = manager.env(watchdog=False)
        t.start()
        i = manager.wait_for("READY", "1", 5)
        status = manager.got[i][1]["STATUS"]
        assert status.startswith("no verdict yet for slow;"), status
        t.wait_for_log(r"warning: telling systemd pgtrackd is ready although no verdict is "
                       r"written yet for: slow \(ready_timeout 0\.5s\)")
        # read while the listener still holds the probe (its 1 s timeout):
        # once it closes, the first failure is a verdict at once
        assert t.read("slow") == "0\n", t.describe()
    finally:
        silent.close()


def test_pgtrackd_watchdog_withheld_while_a_probe_is_silent(trackd, manager, build_dir):
    """A probe that stops reporting is a hung one: no WATCHDOG=1, an error,
    so systemd would kill and restart pgtrackd. The test module reports
    once, at start, and never again."""
    so = built(build_dir, "tests/modules/test_report_primary.so")
    t = trackd.new()
    t.write_config({"quiet": {"module": so, "interval": "200ms"}})
    t.extra_env = manager.env()
    t.start()
    manager.wait_for("READY", "1")
    line = t.wait_for_log(r'error: not petting systemd\'s watchdog: track "quiet" has not '
                          r'reported for \d+\.\ds \(interval 0\.2s\)', 20)
    assert line
    manager.drain(0.3)      # what was sent before, still queued on the socket
    mark = time.monotonic()
    manager.drain(1.0)
    assert manager.count("WATCHDOG", mark, time.monotonic()) == 0
    assert t.alive()


def test_write_stopped_after_sigkill(cluster, trackd):
    t = trackd.new()
    t.write_config({"main": cluster.primary.track_options(legacy_values=False),
                    "gone": {"hostaddr": "127.0.0.1", "port": "1", "file": "/nonexistent-dir/x"}})
    t.start()
    t.wait_for_value("main", PRIMARY)
    t.send_signal(signal.SIGKILL)
    t.proc.wait(10)
    assert t.read("main") == "%d\n" % PRIMARY       # what a SIGKILL leaves
    r = subprocess.run([t.binary, "--write-stopped", "-f", t.conf], capture_output=True,
                       text=True, timeout=20)
    assert t.read("main") == "-254\n"
    # one file could not be written: exit 1, and each line says what happened
    assert r.returncode == 1, r.stderr
    assert re.search(r'info: track "main": stopped value -254 written to %s \(--write-stopped\)'
                     % re.escape(t.path("main")), r.stderr), r.stderr
    assert re.search(r'error: track "gone": cannot write the stopped value -254 to '
                     r'/nonexistent-dir/x: ', r.stderr), r.stderr


def test_journal_stream_gets_priorities(trackd):
    """stderr is the journal ($JOURNAL_STREAM names it): "<N>" priorities,
    no timestamps, whatever -l says."""
    t = trackd.new()
    t.write_config({"nothing": {"hostaddr": "127.0.0.1", "port": "1", "interval": "200ms"}})
    open(t.logpath, "a").close()
    st = os.stat(t.logpath)
    t.extra_env = {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}
    t.start()
    t.wait_for_log(r"^<6>info: track \"nothing\": unknown -> down")
    t.stop()
    lines = t.log_lines()
    assert lines and all(re.match(r"^<[3-7]>(error|warning|notice|info|debug): ", l) for l in lines), lines


def test_notify_ready_status_reload_stop(rig, manager):
    rig.notify.extra_env = manager.env()
    rig.start()
    ready = manager.wait_for("READY", "1")
    assert manager.got[ready][1]["STATUS"] == 'instance VI_PG: not reported yet; pgbouncer: ' \
        'unknown', manager.got[ready]
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_serving()
    manager.wait_for("STATUS", "instance VI_PG: MASTER; pgbouncer: serve")
    t0 = time.monotonic()
    manager.drain(1.0)
    assert 3 <= manager.count("WATCHDOG", t0, time.monotonic()) <= 7

    mark = len(manager.got)
    rig.notify.send_signal(signal.SIGHUP)
    i = manager.wait_for("RELOADING", "1", 5, after=mark)
    assert "MONOTONIC_USEC" in manager.got[i][1]
    manager.wait_for("READY", "1", 5, after=i + 1)

    mark = len(manager.got)
    rig.notify.stop()
    manager.drain(0.3)
    assert any("STOPPING" in f for _, f, _ in manager.got[mark:]), manager.got[mark:]


def test_conf_d_tracks_are_read_at_start_and_reload(cluster, trackd):
    """conf.d/NAME.conf next to the main file: a track dropped there is
    started by a reload, a broken one refuses the reload with its own
    path:line, and moving a track there does not restart its probe."""
    p_opts = cluster.primary.track_options(legacy_values=False, application_name="pgtrackd-p",
                                           accept_interval="0")
    t = trackd.new()
    t.write_config({"p": p_opts})
    conf_d = os.path.join(os.path.dirname(t.conf), "conf.d")
    os.mkdir(conf_d)
    t.start()
    t.wait_for_value("p", PRIMARY)
    session = "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgtrackd-p'"
    before = cluster.primary.sql(session)

    r_opts = dict(cluster.replica.track_options(legacy_values=False), file=t.path("r"))
    with open(os.path.join(conf_d, "20-r.conf"), "w") as f:
        f.write("[track r]\n" + "".join("%s = %s\n" % kv for kv in r_opts.items()))
    t.send_signal(signal.SIGHUP)
    t.wait_for_value("r", 53)

    bad = os.path.join(conf_d, "30-bad.conf")
    with open(bad, "w") as f:
        f.write("[track x]\nfile = %s\nnot_a_key = 1\n" % t.path("x"))
    off = t.log_size()
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(r"error: %s:3: unknown key \"not_a_key\" in section \[track x\]"
                   % re.escape(bad), 5, start=off)
    t.wait_for_log(r"configuration reload failed, keeping the running configuration", 5, start=off)
    os.unlink(bad)

    # p moves from the main file into conf.d: the same track, the same session
    with open(os.path.join(conf_d, "10-p.conf"), "w") as f:
        f.write("[track p]\nfile = %s\n" % t.path("p")
                + "".join("%s = %s\n" % kv for kv in p_opts.items()))
    with open(t.conf, "w") as f:
        f.write("[global]\nfile_check_interval = 200ms\n")
    off = t.log_size()
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(r"configuration reloaded: 2 track\(s\)", 5, start=off)
    assert "settings changed" not in t.log_since(off)
    assert cluster.primary.sql(session) == before
    assert t.read("p") == "%d\n" % PRIMARY
