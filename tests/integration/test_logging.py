"""pgtrackd never waits for whoever reads its log: the syslog daemon, or a
pipe on its standard error.

Without -l and outside the journal, pgtrackd logs to the syslog daemon's
socket, /dev/log. A syslog daemon that stops reading (restarting, stalled
on its disk) fills its queue (net.unix.max_dgram_qlen datagrams); syslog(3)
then blocks in send(), and pgtrackd with it: a crash after that was never
written to the track file. The test gives pgtrackd a /dev/log of its own in
a private mount namespace: a socket that reads nothing.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_logging.py
"""

import fcntl
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

PRIMARY = 54

# In a private mount namespace: a /dev of our own (the devices pgtrackd and
# libpq may open, and /dev/log bound to the test's socket), then pgtrackd.
PRIVATE_DEV = r"""
set -e
mount --make-rprivate /
mount -t tmpfs -o mode=755,size=1m pgtrackd-test-dev /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/urandom c 1 9
touch /dev/log
mount --bind "$1" /dev/log
shift
exec "$@"
"""


def datagrams(sock):
    """Everything queued on sock, without waiting."""
    out = []
    while True:
        try:
            out.append(sock.recv(65536, socket.MSG_DONTWAIT).decode(errors="replace"))
        except BlockingIOError:
            return out


def private_mounts_possible():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--mount", "true"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=10).returncode == 0


@pytest.mark.skipif(not private_mounts_possible(),
                    reason="needs root and a private mount namespace (unshare --mount) for /dev/log")
def test_a_syslog_that_reads_nothing_does_not_hold_pgtrackd(servers, trackd, workdir):
    pg = servers.primary()
    path = os.path.join(workdir, "dev-log")
    syslogd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        syslogd.bind(path)
        t = trackd.new()
        t.write_config({"p": pg.track_options(legacy_values=False)})
        t.wrapper = ["unshare", "--mount", "sh", "-c", PRIVATE_DEV, "sh", path]
        t.spawn([t.binary, "-f", t.conf, "-n", "-v"])     # syslog: no -l
        t.wait_for_value("p", PRIMARY, 10)
        # -v logs every probe (5 a second): the queue is full within seconds
        time.sleep(3)
        assert t.alive(), t.describe()

        pg.kill9()
        t.wait_for_value("p", -254, 10)

        # what the stalled daemon holds: syslog(3)'s format, the facility daemon
        held = datagrams(syslogd)
        assert 0 < len(held) < 64, held
        pid_re = r"\w{3} [ \d]\d \d\d:\d\d:\d\d pgtrackd\[%d\]: " % t.pid
        assert all(re.match(r"<\d+>" + pid_re, d) for d in held), held
        assert any(re.match(r"<30>" + pid_re + r"pgtrackd .* starting", d) for d in held), held
        # read again: the count of the lines that found no room (the
        # crash's among them) comes first, then the lines logged after it
        deadline = time.monotonic() + 10
        later = []
        while time.monotonic() < deadline and len(later) < 2:
            time.sleep(0.1)
            later += datagrams(syslogd)
        assert len(later) >= 2, later
        assert re.match(r"<28>" + pid_re + r"\d+ log lines dropped: syslog did not take them "
                        r"in time$", later[0]), later[:3]
        assert all(re.match(r"<\d+>" + pid_re, d) for d in later), later
        assert t.alive(), t.describe()
    finally:
        syslogd.close()


def test_a_stderr_that_nobody_reads_does_not_hold_pgtrackd(servers, trackd):
    """pgtrackd -l under a supervisor (a container runtime, runit) whose
    reader stalls: stderr is a pipe that fills. A write to it waited
    there, and the loop with it."""
    pg = servers.primary()
    t = trackd.new()
    t.write_config({"p": pg.track_options(legacy_values=False)})
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        # full before pgtrackd starts: its first line finds no room
        size = fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, 4096)
        filler = b"x" * (size - 1) + b"\n"
        assert os.write(wfd, filler) == size
        proc = subprocess.Popen([t.binary, "-f", t.conf, "-n", "-l", "-v"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=wfd, cwd=t.base)
        os.close(wfd)
        wfd = -1
        try:
            t.proc = proc
            t.wait_for_value("p", PRIMARY, 10)
            pg.kill9()
            t.wait_for_value("p", -254, 10)
            os.set_blocking(rfd, False)
            held = b""
            while True:
                try:
                    chunk = os.read(rfd, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                held += chunk
            assert held == filler, held[-300:]
            later = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and later.count(b"\n") < 2:
                time.sleep(0.1)
                try:
                    later += os.read(rfd, 65536)
                except BlockingIOError:
                    pass
            assert re.match(rb"^[0-9T:.-]{23} pgtrackd: warning: \d+ log lines dropped: standard error "
                            rb"did not take them in time\n", later), later[:300]
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:   # held in a write: the old behaviour
                proc.kill()
                proc.wait(10)
            t.proc = None
    finally:
        if wfd >= 0:
            os.close(wfd)
        os.close(rfd)
