"""bench/notify's client: the PostgreSQL v3 protocol over TCP, no libpq (a
poll every 2 ms must not cost the machine more than the things it
measures), through pgbouncer to appdb: when is it refused, when served."""

import collections
import os
import socket
import struct
import time

from kit.bench import BenchError, stats_of
from kit.postgres import PG_USER
from notify_rig import APPDB


PROTO_V3 = 196608


STARTUP = struct.pack("!I", PROTO_V3) + b"".join(
    k + b"\0" + v + b"\0" for k, v in ((b"user", PG_USER.encode()), (b"database", APPDB.encode()),
                                       (b"application_name", b"bench-notify-probe"))) + b"\0"


STARTUP = struct.pack("!I", len(STARTUP) + 4) + STARTUP


QUERY = b"SELECT 1\0"


QUERY = b"Q" + struct.pack("!I", len(QUERY) + 4) + QUERY


TERMINATE = b"X" + struct.pack("!I", 4)


class ProbeFail(Exception):
    def __init__(self, kind, detail):
        super().__init__(detail)
        self.kind = kind          # refused | error | closed | timeout
        self.detail = detail
        self.stage = "login"      # login: before ReadyForQuery; query: logged in, then failed


class _Conn:
    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = b""

    def _fill(self, n):
        while len(self.buf) < n:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise ProbeFail("timeout", "no answer within the attempt's timeout")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise ProbeFail("timeout", "no answer within the attempt's timeout")
            except ConnectionResetError:
                raise ProbeFail("closed", "connection reset by pgbouncer")
            if not chunk:
                raise ProbeFail("closed", "connection closed by pgbouncer without an error message")
            self.buf += chunk

    def message(self):
        self._fill(5)
        typ = self.buf[0:1]
        (ln,) = struct.unpack("!I", self.buf[1:5])
        self._fill(1 + ln)
        body = self.buf[5:1 + ln]
        self.buf = self.buf[1 + ln:]
        return typ, body


def _error_text(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode(errors="replace")
    return "%s: %s" % (fields.get(b"C", "?"), fields.get(b"M", "?"))


def probe_once(port, timeout):
    """One client: connect to pgbouncer on 127.0.0.1:port (or to a unix
    socket path) as postgres to appdb, SELECT 1, terminate.  Returns None on
    success, raises ProbeFail."""
    stage = ["login"]
    try:
        return _probe(port, timeout, stage)
    except ProbeFail as e:
        e.stage = stage[0]
        raise


def _probe(port, timeout, stage):
    deadline = time.monotonic() + timeout
    unix = isinstance(port, str)
    sock = socket.socket(socket.AF_UNIX if unix else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if not unix:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        try:
            sock.connect(port if unix else ("127.0.0.1", port))
        except (ConnectionRefusedError, FileNotFoundError):
            raise ProbeFail("refused", "connection refused (nothing listens on the port)")
        except socket.timeout:
            raise ProbeFail("timeout", "TCP connect timed out")
        except ConnectionResetError:
            raise ProbeFail("closed", "connection reset during TCP connect")
        try:
            sock.sendall(STARTUP)
        except (BrokenPipeError, ConnectionResetError):
            raise ProbeFail("closed", "connection reset while sending the startup packet")
        c = _Conn(sock, deadline)
        while True:                             # login
            typ, body = c.message()
            if typ == b"E":
                raise ProbeFail("error", _error_text(body))
            if typ == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                raise ProbeFail("error", "pgbouncer asked for a password (auth is not trust?)")
            if typ == b"Z":
                break
        stage[0] = "query"
        try:
            sock.sendall(QUERY)
        except (BrokenPipeError, ConnectionResetError):
            raise ProbeFail("closed", "connection reset while sending the query")
        got = None
        while True:
            typ, body = c.message()
            if typ == b"E":
                raise ProbeFail("error", _error_text(body))
            if typ == b"D":
                (n,) = struct.unpack("!H", body[:2])
                (ln,) = struct.unpack("!i", body[2:6])
                got = body[6:6 + ln] if n == 1 and ln >= 0 else None
            if typ == b"Z":
                break
        if got != b"1":
            raise ProbeFail("error", "SELECT 1 returned %r" % (got,))
        try:
            sock.sendall(TERMINATE)
        except OSError:
            pass
        return None
    finally:
        sock.close()


class Prober:
    """Connect + SELECT 1 through a pgbouncer, at most once every interval."""

    def __init__(self, port, interval_s):
        self.port = port
        self.interval = interval_s
        self.durations = []       # seconds per attempt (resolution of the figures)

    def _attempts(self, t0, deadline, attempt_timeout, on_tick):
        next_start = t0
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if next_start > now:
                time.sleep(next_start - now)
            start = time.monotonic()
            next_start = start + self.interval
            try:
                probe_once(self.port, min(attempt_timeout, max(0.05, deadline - start)))
                fail = None
            except ProbeFail as e:
                fail = e
            end = time.monotonic()
            self.durations.append(end - start)
            if on_tick:
                on_tick()
            yield start, end, fail

    def until_refused(self, t0, timeout, attempt_timeout, on_tick=None):
        """After an event at t0: poll until a new client is refused, i.e. an
        attempt fails before it is logged in (an error instead of
        ReadyForQuery, connection refused, closed or reset).  Returns a dict
        (ms = from t0 to the end of that attempt).  An attempt that logged in
        and was then cut (the fence's KILL) is counted, not taken."""
        r = {"ms": None, "attempts": 0, "served_after_event": 0, "cut_after_login": 0,
             "timeouts": 0, "how": None, "last_ok_ms": None}
        for start, end, fail in self._attempts(t0, t0 + timeout, attempt_timeout, on_tick):
            r["attempts"] += 1
            if fail is None:
                r["served_after_event"] += 1
                r["last_ok_ms"] = (end - t0) * 1000.0
                continue
            if fail.kind == "timeout":
                r["timeouts"] += 1       # neither served nor refused: keep polling
                continue
            if fail.stage == "query":
                # logged in (before the fence), then cut: not a refusal of a new client
                r["cut_after_login"] += 1
                r["cut_how"] = "%s: %s" % (fail.kind, fail.detail)
                continue
            r["ms"] = (end - t0) * 1000.0
            r["attempt_started_ms"] = (start - t0) * 1000.0
            r["how"] = "%s: %s" % (fail.kind, fail.detail)
            return r
        return r

    def until_served(self, t0, timeout, attempt_timeout, on_tick=None):
        """After an event at t0: poll until SELECT 1 succeeds; count failures."""
        r = {"ms": None, "attempts": 0, "failed": 0, "timeouts": 0, "fail_kinds": {}}
        kinds = collections.Counter()
        for start, end, fail in self._attempts(t0, t0 + timeout, attempt_timeout, on_tick):
            r["attempts"] += 1
            if fail is None:
                r["ms"] = (end - t0) * 1000.0
                r["attempt_started_ms"] = (start - t0) * 1000.0
                break
            r["failed"] += 1
            if fail.kind == "timeout":
                r["timeouts"] += 1
            kinds["%s%s: %s" % (fail.kind, " (after login)" if fail.stage == "query" else "",
                                fail.detail)] += 1
        r["fail_kinds"] = dict(kinds)
        return r

    def works(self, timeout=10.0):
        """Block until one attempt succeeds (bounded); raises BenchError."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                probe_once(self.port, 2.0)
                return True
            except ProbeFail as e:
                last = e
            time.sleep(0.02)
        raise BenchError("no SELECT 1 through pgbouncer on port %d within %.0fs (last: %s)"
                         % (self.port, timeout, last))


def pg_direct(pg, n=20):
    """Reference: connect + SELECT 1 + terminate straight to PostgreSQL over
    its unix socket, n times (each a new backend, as the first client after a
    MASTER needs: KILL and a restart both drop pgbouncer's server
    connections).  Stats in ms."""
    path = os.path.join(pg.sockdir, ".s.PGSQL.%d" % pg.port)
    probe_once(path, 10.0)          # warm-up
    xs = []
    for _ in range(n):
        t = time.monotonic()
        probe_once(path, 10.0)
        xs.append((time.monotonic() - t) * 1000.0)
        time.sleep(0.01)
    return stats_of(xs)
