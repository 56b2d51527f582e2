"""No password-database lookup on pgtrackd's reconnects: libpq 15 calls
getpwuid() (NSS: /etc/passwd here, LDAP or sssd elsewhere) inside
PQconnectStartParams for the ~/.pgpass and the user it is not given, a
blocking call in the event loop on every connect, the reconnect after a
crash included. pgtrackd looks them up once (src/common/pgconn_osdefaults.c).
Checked with strace: a track reconnecting ten times a second for 2 s."""

import os
import re
import shutil
import subprocess

import pytest

from kit.ports import free_port
from kit.trackd import FAST_TRACK, render_config


def test_reconnects_do_not_read_the_password_database(pgtrackd_bin, workdir):
    if not shutil.which("strace"):
        pytest.fail("strace is not installed (tests/install-deps installs it)", pytrace=False)
    port = free_port()      # nothing listens: every probe is a refused reconnect
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write(render_config({"main": dict(FAST_TRACK, file=os.path.join(workdir, "main"),
                                            host="127.0.0.1", port=str(port), interval="100ms",
                                            accept_interval="0")},
                              {"realtime_priority": "0"}))
    trace = os.path.join(workdir, "strace.txt")
    p = subprocess.run(["timeout", "-s", "INT", "2", "strace", "-f", "-o", trace,
                        "-e", "trace=openat,open,connect", pgtrackd_bin, "-f", conf, "-l"],
                       capture_output=True, text=True, timeout=30)
    text = open(trace).read()
    connects = len(re.findall(r'connect\(\d+, \{sa_family=AF_INET, sin_port=htons\(%d\)' % port, text))
    passwd = len(re.findall(r'open(at)?\(.*"/etc/passwd"', text))
    assert connects >= 10, "pgtrackd reconnected %d times in 2 s:\n%s" % (connects, p.stderr[-2000:])
    assert passwd <= 1, ("%d reads of /etc/passwd for %d connects: libpq looks up the user on every "
                         "connect" % (passwd, connects))
