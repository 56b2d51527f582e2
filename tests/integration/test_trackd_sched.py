"""pgtrackd's real-time scheduling (pgtrackd(8), SCHEDULING): by default its
event loop is on SCHED_RR 40 (reset on fork) with RLIMIT_RTTIME 1 s; 0 is
normal scheduling, and a SIGHUP switches either way; not root, it gets what
RLIMIT_RTPRIO allows (systemd's LimitRTPRIO=), and where that is refused it
says why and runs on (or keeps) the scheduling it has: it does not fail."""

import os
import signal
import stat
import subprocess

import pytest

from kit.ports import free_port
from kit.trackd import FAST_TRACK, Trackd

SCHED_RESET_ON_FORK = 0x40000000
NOBODY = 65534


def policy(pid):
    """(policy without the reset-on-fork flag, reset on fork, priority)."""
    p = os.sched_getscheduler(pid)
    return p & ~SCHED_RESET_ON_FORK, bool(p & SCHED_RESET_ON_FORK), os.sched_getparam(pid).sched_priority


def rttime(pid):
    """RLIMIT_RTTIME of pid (soft, hard), from /proc: prlimit(2) on another
    user's process needs CAP_SYS_RESOURCE."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max realtime timeout"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no RLIMIT_RTTIME in /proc/%d/limits" % pid)


def nothing_listens():
    # the track only has to run: a closed port on loopback, down at once
    return dict(FAST_TRACK, host="127.0.0.1", port=str(free_port()), accept_interval="0")


def test_realtime_by_default_and_switched_by_sighup(pgtrackd_bin, workdir):
    t = Trackd(pgtrackd_bin, workdir)
    track = nothing_listens()
    try:
        t.write_config({"main": track})
        t.start()
        t.wait_for_log(r"info: real-time scheduling: SCHED_RR priority 40, killed by the kernel "
                       r"after 1s of CPU without sleeping \(RLIMIT_RTTIME\)$")
        assert policy(t.pid) == (os.SCHED_RR, True, 40)
        assert rttime(t.pid) == (1000000, 1000000)

        start = t.log_size()
        t.write_config({"main": track}, {"realtime_priority": "0"})
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"configuration reloaded", 10, start)
        assert policy(t.pid) == (os.SCHED_OTHER, False, 0), t.describe()
        assert any(l.endswith("info: normal scheduling (realtime_priority = 0)")
                   for l in t.lines_since(start)), t.describe()

        start = t.log_size()
        t.write_config({"main": track}, {"realtime_priority": "20", "realtime_limit": "300ms"})
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"real-time scheduling: SCHED_RR priority 20, killed by the kernel after "
                       r"300ms", 10, start)
        assert policy(t.pid) == (os.SCHED_RR, True, 20)
        assert rttime(t.pid) == (300000, 300000)

        # an unchanged [global] on reload: nothing said again
        start = t.log_size()
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"configuration reloaded", 10, start)
        assert not [l for l in t.lines_since(start) if "scheduling" in l], t.describe()
        assert t.stop() == 0, t.describe()
    finally:
        t.stop()


def as_nobody(t, rtprio):
    """t runs as nobody with RLIMIT_RTPRIO rtprio, its files open to it."""
    os.chmod(t.base, 0o755)
    os.chown(t.trackdir, NOBODY, NOBODY)
    t.wrapper = ["prlimit", "--rtprio=%d:%d" % (rtprio, rtprio), "setpriv", "--reuid=%d" % NOBODY,
                 "--regid=%d" % NOBODY, "--clear-groups", "--"]


def write_config(t, track, priority):
    t.write_config({"main": track}, {"realtime_priority": str(priority)})
    os.chmod(t.conf, os.stat(t.conf).st_mode | stat.S_IROTH)


REFUSED = ("running on normal scheduling, where the value of a crash may wait for a CPU behind "
           "the crash's exiting backends")


def test_refused_is_a_warning_not_a_failure(pgtrackd_bin, workdir):
    """Not root and RLIMIT_RTPRIO 0 (a unit of one's own without LimitRTPRIO=):
    the reason, normal scheduling, and the track runs."""
    t = Trackd(pgtrackd_bin, workdir)
    as_nobody(t, 0)
    try:
        write_config(t, nothing_listens(), 40)
        t.start()
        line = t.wait_for_log(r"warning: realtime_priority = 40: ")
        assert line.endswith("pgtrackd: warning: realtime_priority = 40: not permitted: "
                             "RLIMIT_RTPRIO is 0, below 40 (systemd: LimitRTPRIO=40) and no "
                             "CAP_SYS_NICE; " + REFUSED), line
        t.wait_for_log(r'track "main": unknown -> down, value ')
        assert policy(t.pid) == (os.SCHED_OTHER, False, 0)
        assert rttime(t.pid) == (1000000, 1000000)
        assert t.alive(), t.describe()
        assert t.stop() == 0, t.describe()
    finally:
        t.stop()


def test_unprivileged_within_rlimit_rtprio(pgtrackd_bin, workdir):
    """As the systemd unit runs it: not root, RLIMIT_RTPRIO 40 (LimitRTPRIO=40).
    Beyond it: a warning, normal scheduling; within it: SCHED_RR; beyond it
    again on reload: a warning, SCHED_RR kept. Raising RLIMIT_RTPRIO needs
    CAP_SYS_RESOURCE, which root lacks in some containers: skipped there."""
    if subprocess.run(["prlimit", "--rtprio=40:40", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot raise RLIMIT_RTPRIO here (root without CAP_SYS_RESOURCE)")
    t = Trackd(pgtrackd_bin, workdir)
    as_nobody(t, 40)
    track = nothing_listens()
    try:
        write_config(t, track, 60)
        t.start()
        line = t.wait_for_log(r"warning: realtime_priority = 60: ")
        assert line.endswith("RLIMIT_RTPRIO is 40, below 60 (systemd: LimitRTPRIO=60) and no "
                             "CAP_SYS_NICE; " + REFUSED), line
        assert policy(t.pid) == (os.SCHED_OTHER, False, 0)

        start = t.log_size()
        write_config(t, track, 40)
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"info: real-time scheduling: SCHED_RR priority 40", 10, start)
        assert policy(t.pid) == (os.SCHED_RR, True, 40)

        start = t.log_size()
        write_config(t, track, 60)
        t.send_signal(signal.SIGHUP)
        line = t.wait_for_log(r"warning: realtime_priority = 60: ", 10, start)
        assert line.endswith("; keeping SCHED_RR priority 40"), line
        assert policy(t.pid) == (os.SCHED_RR, True, 40)
        assert t.stop() == 0, t.describe()
    finally:
        t.stop()
