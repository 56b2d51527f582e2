"""pgtrack-notify's [http] listener: /status and /metrics against a real
pgbouncer 1.18, driven by lines written to the notify FIFO; HEAD and
OPTIONS, the allow-list, malformed requests, promtool on the live output,
the listener's lifecycle (bind failure at start, reloads) and -t.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_notify_http.py
"""

import json
import os
import shutil
import signal
import socket
import subprocess

import pytest

from kit.fifo import inst
from kit.notify import Notify, run_notify
from kit.ports import PortReservation
from kit.rawhttp import exchange
from kit.waiting import wait_until
from notify_rig import VI
from notify_rig import notify_bin, pg, rig, standby_rig  # noqa: F401  (fixtures)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


# --------------------------------------------------------------------------
# helpers


def request(port, method="GET", path="/status", host="127.0.0.1", src=None, raw=None,
            timeout=5):
    """One HTTP/1.1 request on its own connection (Connection: close):
    (status, {header: value}, body bytes); status None when the server
    closed the connection without an answer."""
    if raw is None:
        raw = ("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               % (method, path, host)).encode()
    data = exchange(port, raw, host=host, src=src, timeout=timeout)
    if not data:
        return None, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def status(port):
    code, headers, body = request(port, path="/status")
    assert code == 200, (code, body)
    assert headers["content-type"] == "application/json"
    return json.loads(body.decode("utf-8"))


def metrics(port):
    code, headers, body = request(port, path="/metrics")
    assert code == 200, (code, body)
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return body.decode("utf-8")


def sample(text, series):
    """The value of one series ("name{labels}") in an exposition, or None."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def promtool_check(text):
    if not os.path.exists(PROMTOOL):
        pytest.fail("promtool not found: apt-get install prometheus (tests/install-deps)")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode()


class Http:
    """A reserved port for the listener, and the [http] section."""

    def __init__(self):
        self.res = PortReservation()
        self.port = self.res.port

    def section(self, **over):
        s = {"listen": "127.0.0.1:%d" % self.port}
        s.update(over)
        return {k: v for k, v in s.items() if v is not None}


@pytest.fixture
def http():
    h = Http()
    yield h
    h.res.release()


def start_with_http(rig, http_section, **kw):
    sections = rig.sections(notify={"reconcile_interval": "1s"}, **kw)
    sections["http"] = http_section
    rig.notify.write_config(sections)
    rig.notify.start()
    rig.wait_fifo_open()
    return rig.notify


def reload(rig, http_section):
    """Rewrite [http] and SIGHUP; the log offset before it."""
    sections = rig.sections(notify={"reconcile_interval": "1s"})
    if http_section is not None:
        sections["http"] = http_section
    off = rig.notify.log_size()
    rig.notify.write_config(sections)
    os.kill(rig.notify.pid, signal.SIGHUP)
    rig.notify.wait_for_log(r"configuration reload(ed| failed)", 10, start=off)
    return off


def wait_status(port, pred, what, timeout=10):
    last = {}

    def check():
        last["s"] = status(port)
        return pred(last["s"])
    wait_until(check, timeout, what=what, describe=lambda: json.dumps(last.get("s"), indent=1))
    return last["s"]


def db_mode(st, name="appdb"):
    return {d["name"]: d["mode"] for d in st["pgbouncer"]["databases"]}.get(name)


# --------------------------------------------------------------------------
# 1. /status and /metrics follow the FIFO and pgbouncer


def test_status_and_metrics_follow_fifo_and_pgbouncer(rig, http):
    start_with_http(rig, http.section())
    st = status(http.port)
    assert st["vrrp"]["state"] is None and st["vrrp"]["name"] == VI, st
    assert st["fifo"] == {"path": rig.fifo_path, "open": True, "present": True,
                          "lines": {"applied": 0, "other": 0, "ignored": 0, "malformed": 0}}, st
    assert st["pgbouncer"]["reachable"] is None, st
    m = metrics(http.port)
    assert sample(m, 'pgtrack_notify_vrrp_state{state="unknown"}') == 1, m
    assert sample(m, "pgtrack_notify_bouncer_up") == 0, m

    # garbage, an over-long line, another instance, an LVS line, then BACKUP
    rig.fifo.write("GARBAGE LINE\n" + "x" * 600 + "\n" + inst("VI_OTHER", "MASTER")
                   + "VS 10.0.0.1 80 weight 1 up\n" + inst(VI, "BACKUP", 90))
    rig.wait_held()                      # a BACKUP holds (backup_clients = wait)
    st = wait_status(http.port, lambda s: db_mode(s) == "paused", "appdb paused in /status")
    assert st["vrrp"]["state"] == "BACKUP" and st["vrrp"]["priority"] == 90, st
    assert st["vrrp"]["state_changes"] == 1 and st["vrrp"]["since"], st
    assert st["fifo"]["lines"] == {"applied": 1, "other": 1, "ignored": 1, "malformed": 2}, st
    b = st["pgbouncer"]
    assert (b["mode"], b["reachable"]) == ("hold", True), b
    assert b["actions_total"]["kill"]["ok"] >= 1, b
    assert [a for a in b["last_actions"] if a["action"] == "KILL appdb" and a["result"] == "ok"], b

    rig.fifo.write(inst(VI, "MASTER", 150))
    rig.wait_serving()
    st = wait_status(http.port, lambda s: db_mode(s) == "serving", "appdb serving in /status")
    assert (st["vrrp"]["state"], st["vrrp"]["state_changes"]) == ("MASTER", 2), st
    assert st["fifo"]["lines"]["applied"] == 2, st
    b = st["pgbouncer"]
    assert b["actions_total"]["resume"]["ok"] >= 1, b
    # the databases file was rewritten from the template (once, at the first run)
    assert b["actions_total"]["rewrite"] == {"ok": 1, "failed": 0}, b
    assert b["last_actions"][0]["action"] in ("ENABLE appdb", "RESUME appdb"), b

    m = metrics(http.port)
    assert sample(m, 'pgtrack_notify_vrrp_state{state="master"}') == 1, m
    assert sample(m, 'pgtrack_notify_vrrp_state{state="backup"}') == 0, m
    assert sample(m, "pgtrack_notify_vrrp_state_changes_total") == 2, m
    assert sample(m, 'pgtrack_notify_fifo_lines_total{result="malformed"}') == 2, m
    assert sample(m, 'pgtrack_notify_fifo_lines_total{result="other"}') == 1, m
    assert sample(m, 'pgtrack_notify_database_mode{database="appdb",mode="serving"}') == 1, m
    assert sample(m, 'pgtrack_notify_database_mode{database="appdb",mode="fenced"}') == 0, m
    assert sample(m, 'pgtrack_notify_actions_total{action="kill",result="ok"}') >= 1, m
    assert sample(m, "pgtrack_notify_bouncer_up") == 1, m
    assert sample(m, 'pgtrack_notify_bouncer_mode{mode="serve"}') == 1, m
    assert sample(m, "pgtrack_notify_reconcile_repairs_total") == 0, m
    rc, out = promtool_check(m)
    assert rc == 0, out

    # someone disables appdb behind our back: the periodic reconcile repairs it
    rig.bouncer.admin("DISABLE appdb")
    st = wait_status(http.port, lambda s: s["pgbouncer"]["reconcile_repairs"] >= 1,
                     "a reconcile repair counted")
    rig.wait_serving()
    m = metrics(http.port)
    assert sample(m, "pgtrack_notify_reconcile_repairs_total") >= 1, m


def test_bouncer_down_shows_in_status_and_metrics(rig, http):
    start_with_http(rig, http.section())
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_serving()
    rig.bouncer.stop()
    st = wait_status(http.port, lambda s: s["pgbouncer"]["reachable"] is False,
                     "pgbouncer unreachable in /status")
    assert st["pgbouncer"]["last_error"] and st["pgbouncer"]["last_error_at"], st
    m = metrics(http.port)
    assert sample(m, "pgtrack_notify_bouncer_up") == 0, m
    rig.bouncer.start()
    wait_status(http.port, lambda s: s["pgbouncer"]["reachable"] is True,
                "pgbouncer reachable again in /status")


def test_hold_shows_in_status_and_metrics(standby_rig, http):
    """MASTER while the local PostgreSQL is a standby: the hold, since when,
    its timeout, appdb paused; after the promotion no hold, appdb serving."""
    rig = standby_rig
    rig.start_bouncer(server_login_retry="0.05")
    rig.make_fifo()
    start_with_http(rig, http.section(), postgres=rig.postgres_section(hold_timeout="30s"))
    st = status(http.port)
    assert st["hold"]["configured"] and not st["hold"]["active"], st
    assert st["hold"]["since"] is None and st["hold"]["timeout_seconds"] == 30.0, st
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_flags(1, 0)                 # held: enabled, paused
    st = wait_status(http.port, lambda s: db_mode(s) == "paused", "appdb paused in /status")
    h = st["hold"]
    assert h["active"] and not h["expired"] and h["since"], h
    assert h["local_role"] == "standby" and h["local_postgres"], h
    assert st["pgbouncer"]["mode"] == "hold", st
    m = metrics(http.port)
    assert sample(m, "pgtrack_notify_hold_seconds") > 0, m
    assert sample(m, 'pgtrack_notify_bouncer_mode{mode="hold"}') == 1, m
    assert sample(m, 'pgtrack_notify_database_mode{database="appdb",mode="paused"}') == 1, m
    rig.pg.promote()
    rig.wait_serving()
    st = wait_status(http.port, lambda s: db_mode(s) == "serving", "appdb serving in /status")
    assert not st["hold"]["active"] and st["hold"]["since"] is None, st
    assert st["hold"]["local_role"] == "primary", st
    assert sample(metrics(http.port), "pgtrack_notify_hold_seconds") == 0


# --------------------------------------------------------------------------
# 2. methods, errors, the allow-list


def test_head_options_and_bad_requests(rig, http):
    start_with_http(rig, http.section())
    code, headers, body = request(http.port, "HEAD", "/status")
    assert (code, body) == (200, b""), (code, headers, body)
    assert headers["content-type"] == "application/json"
    code, headers, body = request(http.port, "OPTIONS", "/metrics")
    assert (code, body) == (200, b""), (code, headers, body)
    assert headers["allow"] == "GET, HEAD, OPTIONS"
    code, headers, _ = request(http.port, "POST", "/status")
    assert code == 405 and headers["allow"] == "GET, HEAD, OPTIONS"
    assert request(http.port, "GET", "/nothing")[0] == 404
    assert request(http.port, "GET", "/status/")[0] == 404
    # not HTTP at all; a request line without a version; headers past the memory limit
    assert request(http.port, raw=b"\x16\x03\x01 hello\r\n\r\n")[0] in (None, 400)
    assert request(http.port, raw=b"GET\r\n\r\n")[0] in (None, 400)
    big = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"
    assert request(http.port, raw=big)[0] in (None, 400, 413, 414, 431)
    # and it still answers
    assert status(http.port)["vrrp"]["name"] == VI
    assert rig.notify.alive()


def test_allow_list_refuses_other_clients(rig, http):
    start_with_http(rig, http.section(listen="127.0.0.1:%d" % http.port, allow="127.0.0.2/32"))
    code, _, body = request(http.port, src="127.0.0.1")
    assert code is None and body == b"", "a client outside allow was answered: %r" % (code,)
    # the same request from the allowed address is answered
    assert request(http.port, src="127.0.0.2")[0] == 200
    assert rig.notify.alive()


# --------------------------------------------------------------------------
# 3. lifecycle


def test_bind_failure_at_start_exits_with_the_reason(rig, http):
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", http.port))
    blocker.listen(1)
    try:
        n = start_notify_expecting_exit(rig, http.section())
        assert n == 1
        log = rig.notify.log()
        assert ("HTTP listener for /status and /metrics: 127.0.0.1:%d: Address already in use; "
                "exiting" % http.port) in log, log
    finally:
        blocker.close()


def test_script_mode_copies_overlapping_on_keepalived_reload(rig, http):
    """keepalived's reload SIGTERMs its notify_fifo_script and starts a new
    copy; the two overlap for up to a second, the old one reading STOP lines
    for stop_grace.  The new copy must not exit because the old one still
    holds the port (keepalived would not restart it, and pgbouncer would be
    left unmanaged): it retries, and the old one lets the port go at
    SIGTERM, not at its exit."""
    sections = rig.sections(fifo=False, notify={"stop_grace": "3s"})
    sections["http"] = http.section()
    old = rig.notify
    old.write_config(sections)
    old.start(rig.fifo_path)
    rig.wait_fifo_open()
    wait_until(lambda: request(http.port)[0] == 200, 10, tolerate=(OSError,))
    rig.apply("MASTER", True)
    base = os.path.join(rig.dir, "second")
    os.mkdir(base, 0o700)
    new = Notify(rig.binary, base)
    try:
        new.write_config(sections)
        new.start(rig.fifo_path)          # the new copy first: the harder order
        new.wait_for_log(r"warning: HTTP listener for /status and /metrics: 127\.0\.0\.1:%d: "
                         r"Address already in use; retrying" % http.port)
        assert new.alive(), new.describe("the new copy exited")
        os.kill(old.pid, signal.SIGTERM)
        new.wait_for_log(r"info: HTTP listener on 127\.0\.0\.1:%d" % http.port, 5)
        assert old.alive(), "the old copy let the port go only at its exit"
        assert request(http.port)[0] == 200
        assert old.proc.wait(10) == 0
        rig.fifo.write(inst(VI, "MASTER", 120))    # the new copy alone reads the FIFO now
        assert new.alive(), new.describe("the new copy exited")
        wait_status(http.port, lambda s: s["vrrp"]["priority"] == 120, "the new copy answers")
    finally:
        new.close()


def start_notify_expecting_exit(rig, http_section):
    sections = rig.sections()
    sections["http"] = http_section
    rig.notify.write_config(sections)
    rig.notify.start()
    try:
        return rig.notify.proc.wait(10)
    except subprocess.TimeoutExpired:
        raise AssertionError(rig.notify.describe("pgtrack-notify kept running"))


def test_reload_moves_keeps_or_stops_the_listener(rig, http):
    other, busy = PortReservation(), PortReservation()
    blocker = socket.socket()
    try:
        start_with_http(rig, http.section())
        rig.fifo.write(inst(VI, "MASTER"))
        rig.wait_serving()
        assert status(http.port)["vrrp"]["state"] == "MASTER"
        # another port: the new listener serves, the old port is closed
        off = reload(rig, http.section(listen="127.0.0.1:%d" % other.port))
        rig.notify.wait_for_log(r"HTTP listener: \[http\] changed, now on 127\.0\.0\.1:%d"
                                % other.port, start=off)
        assert status(other.port)["vrrp"]["state"] == "MASTER"
        with pytest.raises(ConnectionRefusedError):
            request(http.port)
        # a port that is taken: the running listener stays, the reason is logged
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", busy.port))
        blocker.listen(1)
        off = reload(rig, http.section(listen="127.0.0.1:%d" % busy.port))
        rig.notify.wait_for_log(
            r"error: HTTP listener: \[http\] changed, but 127\.0\.0\.1:%d: Address already in "
            r"use; keeping the listener on 127\.0\.0\.1:%d" % (busy.port, other.port), start=off)
        assert status(other.port)["vrrp"]["state"] == "MASTER"
        # the same address with another allow-list: rebuilt in place, the new list applies
        off = reload(rig, http.section(listen="127.0.0.1:%d" % other.port, allow="127.0.0.2"))
        rig.notify.wait_for_log(r"HTTP listener: \[http\] changed, now on 127\.0\.0\.1:%d for "
                                r"clients from 127\.0\.0\.2/32" % other.port, start=off)
        assert request(other.port, src="127.0.0.1")[0] is None
        assert request(other.port, src="127.0.0.2")[0] == 200
        # unchanged: nothing happens to it
        off = reload(rig, http.section(listen="127.0.0.1:%d" % other.port, allow="127.0.0.2"))
        assert "HTTP listener" not in rig.notify.log_since(off)
        # [http] removed: the listener stops
        off = reload(rig, None)
        rig.notify.wait_for_log(r"HTTP listener stopped: \[http\] was removed", start=off)
        with pytest.raises(ConnectionRefusedError):
            request(other.port, src="127.0.0.2")
        assert rig.notify.alive()
    finally:
        blocker.close()
        other.release()
        busy.release()


def test_requests_and_reloads_under_valgrind(rig, http):
    """No invalid access and no definite leak through requests of every kind,
    a reload that moves the listener, one that fails, and the exit."""
    if not shutil.which("valgrind"):
        pytest.fail("valgrind is not installed (tests/install-deps installs it)", pytrace=False)
    vglog = os.path.join(rig.dir, "valgrind.log")
    rig.notify.wrapper = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                          "--error-exitcode=99", "--log-file=" + vglog]
    other = PortReservation()
    blocker = socket.socket()
    try:
        start_with_http(rig, http.section())
        wait_until(lambda: request(http.port)[0] == 200, 30, tolerate=(OSError,))
        rig.fifo.write("junk\n" + inst(VI, "BACKUP"))
        wait_status(http.port, lambda s: db_mode(s) == "paused", "appdb held", timeout=30)
        for method, path in (("GET", "/metrics"), ("HEAD", "/status"), ("OPTIONS", "/status"),
                             ("POST", "/status"), ("GET", "/nothing")):
            assert request(http.port, method, path, timeout=30)[0] is not None
        request(http.port, raw=b"GET\r\n\r\n", timeout=30)
        reload(rig, http.section(listen="127.0.0.1:%d" % other.port))
        wait_until(lambda: request(other.port)[0] == 200, 30, tolerate=(OSError,))
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", http.port))
        blocker.listen(1)
        off = reload(rig, http.section())
        rig.notify.wait_for_log(r"Address already in use; keeping the listener", 30, start=off)
        assert metrics(other.port)
        rc = rig.notify.stop(signal.SIGTERM, 60)
        assert rc == 0, "valgrind exit %r:\n%s" % (rc, open(vglog).read()[-4000:])
    finally:
        blocker.close()
        other.release()


def test_check_reports_http_errors_with_lines(rig, http):
    sections = rig.sections()
    sections["http"] = {"listen": "localhost:9188, 127.0.0.1:99999", "allow": "10.1.2.3/8",
                        "timeout": "1500ms", "max_connections": "0"}
    rig.notify.write_config(sections)
    r = run_notify(rig.binary, "-t", "-f", rig.notify.conf)
    assert r.returncode == 1, r.stderr
    lines = open(rig.notify.conf).read().splitlines()
    at = {k: "%s:%d:" % (rig.notify.conf, lines.index(l) + 1)
          for l in lines for k in ("listen", "allow", "timeout", "max_connections")
          if l.startswith(k + " =")}
    err = r.stderr
    assert at["listen"] + ' [http] listen: "localhost:9188" is not a numeric address:port' in err, err
    assert at["listen"] + ' [http] listen: "127.0.0.1:99999" is not a numeric address:port' in err, err
    assert at["allow"] + ' [http] allow: "10.1.2.3/8" is not a network' in err, err
    assert at["timeout"] + " [http] timeout: whole seconds only" in err, err
    assert at["max_connections"] in err, err
    # and a good one passes
    sections["http"] = http.section(allow="127.0.0.1, ::1, 10.0.0.0/8", timeout="5s")
    rig.notify.write_config(sections)
    r = run_notify(rig.binary, "-t", "-f", rig.notify.conf)
    assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr
