"""No password-database lookup on pgtrackd's reconnects: libpq 15 calls
getpwuid() (NSS: /etc/passwd here, LDAP or sssd elsewhere) inside
PQconnectStartParams for the ~/.pgpass and the user it is not given, a
blocking call in the event loop on every connect, the reconnect after a
crash included, and again for the TLS files of a connection that
negotiates TLS (sslmode prefer, the default, against a server with ssl on).
pgtrackd looks them up once (src/common/pgconn_osdefaults.c). Checked with
strace: a track reconnecting ten times a second for 2 s."""

import os
import re
import shutil
import socket
import subprocess
import threading

import pytest

from kit.ports import free_port
from kit.trackd import FAST_TRACK, render_config


def trace_reconnects(pgtrackd_bin, workdir, port):
    """pgtrackd on a track probing 127.0.0.1:port every 100 ms, for 2 s
    under strace, without $HOME (a daemon's environment: libpq then finds
    the home directory in the password database): (connects to the port,
    opens of /etc/passwd, accesses to Kerberos files, stderr)."""
    if not shutil.which("strace"):
        pytest.fail("strace is not installed (tests/install-deps installs it)", pytrace=False)
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write(render_config({"main": dict(FAST_TRACK, file=os.path.join(workdir, "main"),
                                            host="127.0.0.1", port=str(port), interval="100ms",
                                            accept_interval="0")},
                              {"realtime_priority": "0"}))
    trace = os.path.join(workdir, "strace.txt")
    p = subprocess.run(["timeout", "-s", "INT", "2", "strace", "-f", "-o", trace,
                        "-e", "trace=openat,open,connect,stat,newfstatat", pgtrackd_bin, "-f", conf, "-l"],
                       capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if k != "HOME"})
    text = open(trace).read()
    connects = len(re.findall(r'connect\(\d+, \{sa_family=AF_INET, sin_port=htons\(%d\)' % port, text))
    passwd = len(re.findall(r'open(at)?\(.*"/etc/passwd"', text))
    krb5 = len(re.findall(r'"(/etc/krb5\.conf|/etc/gss/mech[^"]*|/tmp/krb5cc_\d+|/etc/krb5/user/[^"]*)"', text))
    return connects, passwd, krb5, p.stderr


def test_reconnects_do_not_read_the_password_database(pgtrackd_bin, workdir):
    port = free_port()      # nothing listens: every probe is a refused reconnect
    connects, passwd, krb5, stderr = trace_reconnects(pgtrackd_bin, workdir, port)
    assert connects >= 10, "pgtrackd reconnected %d times in 2 s:\n%s" % (connects, stderr[-2000:])
    assert passwd <= 1, ("%d reads of /etc/passwd for %d connects: libpq looks up the user on every "
                         "connect" % (passwd, connects))


class TlsWillingServer:
    """Answers every SSLRequest with 'S' (as a server with ssl = on does),
    which makes libpq set up TLS, then closes; any other opening is closed."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.tls_offered = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    if conn.recv(8) == b"\x00\x00\x00\x08\x04\xd2\x16\x2f":
                        conn.sendall(b"S")
                        self.tls_offered += 1
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


def test_tls_reconnects_do_not_read_the_password_database(pgtrackd_bin, workdir):
    srv = TlsWillingServer()
    try:
        connects, passwd, krb5, stderr = trace_reconnects(pgtrackd_bin, workdir, srv.port)
    finally:
        srv.stop()
    assert srv.tls_offered >= 10, ("TLS offered %d times in 2 s (%d connects):\n%s"
                                   % (srv.tls_offered, connects, stderr[-2000:]))
    assert passwd <= 1, ("%d reads of /etc/passwd for %d TLS negotiations: libpq looks up the home "
                         "directory for its TLS files on every connect" % (passwd, srv.tls_offered))
    # gssencmode prefer (libpq's default) asks GSSAPI for credentials before
    # every TCP connection: krb5.conf, the credential cache, a client keytab
    assert krb5 == 0, ("%d accesses to Kerberos files for %d connects: libpq probes for GSSAPI "
                       "encryption on every connect" % (krb5, connects))
