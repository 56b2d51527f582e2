"""pgtrackd's HTTP listener ([http]) against real PostgreSQL 15 servers:
the Patroni-compatible endpoints for a primary, a standby, a lagging
standby, a stale and a conflicting primary, a down server and a module
track; ?lag= and ?replication_state=; HEAD and OPTIONS; the allow-list;
malformed and oversized requests; a reload that moves the listener;
`pgtrackd --status`; and the probes' cadence while a client floods the
listener.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_http.py
"""

import http.client
import json
import os
import re
import socket
import threading
import time

import pytest

from kit.daemons import render_sections
from kit.ports import PortReservation
from kit.rawhttp import exchange
from kit.trackd import FAST_GLOBAL, default_binary, run_binary
from kit.waiting import wait_until
from modules_rig import built, find_build_dir

ENDPOINTS = ("/primary", "/read-write", "/replica", "/read-only", "/health", "/liveness",
             "/readiness")


def module_path(name):
    """A module of tests/modules, in the build directory of the pgtrackd under test."""
    return built(find_build_dir(default_binary()), "tests/modules/test_report_%s.so" % name)


def write(t, tracks, http_opts):
    """tracks: {name: options}, each with its file in t's track directory."""
    sections = {"global": dict(FAST_GLOBAL), "http": http_opts}
    for name, opts in tracks.items():
        o = {"file": t.path(name)}
        o.update(opts)
        sections["track " + name] = o
    return t.write_config({}, raw=render_sections(sections))


def request(port, path, method="GET", host="127.0.0.1", timeout=5):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read(), r
    finally:
        c.close()


def code(port, path, method="GET"):
    return request(port, path, method)[0]


def pg_track(srv, peers=(), **over):
    opts = srv.track_options(legacy_values=False, **over)
    for name, p in peers:
        opts["peer." + name] = "%s %d" % (p.sockdir, p.port)
    return opts


def codes(port, track):
    return {e: code(port, "/track/%s%s" % (track, e)) for e in ENDPOINTS}


def expect(port, track, primary, replica, read_only, health, readiness):
    want = {"/primary": primary, "/read-write": primary, "/replica": replica,
            "/read-only": read_only, "/health": health, "/liveness": 200,
            "/readiness": readiness}
    got = None

    def same():
        nonlocal got
        got = codes(port, track)
        return got == want
    wait_until(same, 10, describe=lambda: "track %s: %r, expected %r" % (track, got, want))


def wait_state(port, track, state, timeout=15):
    seen = []

    def reached():
        _, body, _ = request(port, "/track/%s/health" % track)
        seen.append(json.loads(body)["state"])
        return seen[-1] == state
    wait_until(reached, timeout, describe=lambda: "track %s states %s" % (track, seen[-5:]))


@pytest.fixture
def port():
    p = PortReservation()
    yield p.port
    p.release()


def test_endpoints_by_state(servers, trackd, port):
    """Every endpoint of every track: primary, standby, lagging, stale,
    conflict, down and a module's ok; the unprefixed set is the default
    track's."""
    p = servers.primary("p")
    r = servers.replica(p, "r")
    x = servers.primary("x")            # x and y: primaries of one system on timeline 1
    y = servers.primary("y")
    gone = PortReservation()
    t = trackd.new()
    try:
        write(t, {"p": pg_track(p, [("r", r)]), "s": pg_track(r, [("p", p)]),
                  "x": pg_track(x, [("y", y)]),
                  "d": pg_track(p, port=str(gone.port), host="127.0.0.1"),
                  "m": {"module": module_path("ok"), "interval": "200ms"}},
              {"listen": "127.0.0.1:%d" % port, "default_track": "p"})
        t.start()
        for name, state in (("p", "primary"), ("s", "standby"), ("x", "conflict"),
                            ("d", "down"), ("m", "ok")):
            wait_state(port, name, state)
        expect(port, "p", 200, 503, 200, 200, 200)
        expect(port, "s", 503, 200, 200, 200, 200)
        expect(port, "x", 503, 503, 503, 200, 503)
        expect(port, "d", 503, 503, 503, 503, 503)
        expect(port, "m", 503, 503, 503, 200, 200)
        # the unprefixed endpoints answer for default_track p
        assert {e: code(port, e) for e in ("/",) + ENDPOINTS} == {
            "/": 200, "/primary": 200, "/read-write": 200, "/replica": 503,
            "/read-only": 200, "/health": 200, "/liveness": 200, "/readiness": 200}
        status, body, resp = request(port, "/replica")
        assert resp.getheader("Content-Type") == "application/json"
        assert json.loads(body) == {"track": "p", "state": "primary", "role": "primary",
                                    "reason": "state primary, not standby"}
        assert json.loads(request(port, "/track/s/replica")[1]) == {
            "track": "s", "state": "standby", "role": "replica"}
        assert code(port, "/track/nosuch/primary") == 404
        assert code(port, "/track/p/nosuch") == 404
        assert code(port, "/nosuch") == 404

        # lagging: replay paused on the standby
        r.sql("SELECT pg_wal_replay_pause()")
        try:
            wait_state(port, "s", "lagging")
            expect(port, "s", 503, 503, 503, 200, 503)
        finally:
            r.sql("SELECT pg_wal_replay_resume()")
        wait_state(port, "s", "standby")

        # stale: the standby is promoted to timeline 2 while p still runs
        r.promote()
        wait_state(port, "p", "stale")
        expect(port, "p", 503, 503, 503, 200, 503)
        expect(port, "s", 200, 503, 200, 200, 200)
        assert t.alive()
    finally:
        gone.release()


def test_lag_and_replication_state(cluster, trackd, port):
    t = trackd.new()
    write(t, {"s": pg_track(cluster.replica, [("p", cluster.primary)])},
          {"listen": "127.0.0.1:%d" % port})
    t.start()
    wait_state(port, "s", "standby")
    # the fact lag_bytes is known for a standby that hears its primary
    wait_until(lambda: code(port, "/replica?lag=1GB") == 200, 10)
    for lag in ("16MB", "1024kB", "1048576", "1GB"):
        assert code(port, "/replica?lag=" + lag) == 200, lag
    assert code(port, "/read-only?lag=16MB") == 200
    assert code(port, "/replica?lag=lots") == 400
    assert code(port, "/replica?replication_state=streaming") == 200
    assert code(port, "/replica?replication_state=catchup") == 503
    assert code(port, "/replica?lag=16MB&replication_state=streaming") == 200

    # a backlog above lag=: replay held by recovery_min_apply_delay while WAL streams in
    cluster.replica.sql("ALTER SYSTEM SET recovery_min_apply_delay = '5s'")
    cluster.replica.sql("SELECT pg_reload_conf()")
    try:
        time.sleep(0.3)
        cluster.primary.sql("CREATE TABLE http_lag (g int, pad text)")
        cluster.primary.sql("INSERT INTO http_lag SELECT g, repeat('y', 1000) "
                            "FROM generate_series(1, 5000) g")
        wait_until(lambda: code(port, "/replica?lag=1MB") == 503, 5)
        body = json.loads(request(port, "/replica?lag=1MB")[1])
        assert re.fullmatch(r"lag \d+ bytes, above lag=1MB", body["reason"]), body
        assert code(port, "/replica?lag=1GB") == 200
    finally:
        cluster.replica.sql("ALTER SYSTEM RESET recovery_min_apply_delay")
        cluster.replica.sql("SELECT pg_reload_conf()")
        cluster.primary.sql("DROP TABLE IF EXISTS http_lag")
    wait_until(lambda: code(port, "/replica?lag=1MB") == 200, 20)


def module_daemon(trackd, port, **http_opts):
    t = trackd.new()
    opts = {"listen": "127.0.0.1:%d" % port}
    opts.update(http_opts)
    write(t, {"a": {"module": module_path("primary"), "interval": "200ms"}}, opts)
    t.start()
    wait_until(lambda: t.read("a") == "54\n", 10, describe=t.describe)
    return t


def test_head_options_and_methods(trackd, port):
    module_daemon(trackd, port)
    status, body, resp = request(port, "/primary", "HEAD")
    assert (status, body) == (200, b"")
    status, body, resp = request(port, "/replica", "OPTIONS")
    assert (status, body) == (503, b"")
    assert resp.getheader("Allow") == "GET, HEAD, OPTIONS"
    assert request(port, "/primary", "OPTIONS")[0] == 200
    assert code(port, "/primary", "POST") == 405
    assert code(port, "/primary", "DELETE") == 405


def raw(port, data, timeout=5, src=None):
    """Sends data, returns everything that came back before the server closed."""
    return exchange(port, data, src=src, timeout=timeout)


GET = b"GET /primary HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def test_allow_list(trackd, port):
    module_daemon(trackd, port, allow="127.0.0.2/32")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        request(port, "/primary")
    assert raw(port, GET) == b""
    assert raw(port, GET, src="127.0.0.2").startswith(b"HTTP/1.1 200 ")


def test_malformed_and_oversized(trackd, port):
    t = module_daemon(trackd, port, timeout="1s")
    # libmicrohttpd closes on a request line it cannot read, or answers 400
    for junk in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n"):
        got = raw(port, junk)
        assert got == b"" or got.startswith(b"HTTP/1.1 400 "), (junk, got[:80])
    assert raw(port, b"GET /primary HTTP/1.1\r\nHost: t\r\nBad header\r\n\r\n"
               ).startswith(b"HTTP/1.1 400 ")
    # binary junk it waits on: closed at the timeout, unanswered
    t0 = time.monotonic()
    assert raw(port, b"\x00\x01\x02 / HTTP/1.1\r\n\r\n", timeout=10) == b""
    assert time.monotonic() - t0 < 5
    assert raw(port, b"GET /primary HTTP/9.9\r\nHost: t\r\n\r\n")[:12] in (
        b"HTTP/1.1 505", b"HTTP/1.1 400")
    assert raw(port, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: t\r\n\r\n").startswith(
        b"HTTP/1.1 414 ")
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(300))
    assert raw(port, b"GET /primary HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n").startswith(
        b"HTTP/1.1 431 ")
    assert raw(port, b"POST /primary HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
               ).startswith(b"HTTP/1.1 405 ")
    assert raw(port, b"GET /primary HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
               ).startswith(b"HTTP/1.1 413 ")
    assert code(port, "/primary") == 200
    assert t.alive()


def test_reload_moves_the_listener(trackd, port):
    t = module_daemon(trackd, port)
    other = PortReservation()
    blocker = socket.socket()
    try:
        # a new port: the old one closes, the new one answers
        write(t, {"a": {"module": module_path("primary"), "interval": "200ms"}},
              {"listen": "127.0.0.1:%d" % other.port})
        start = t.log_size()
        t.send_signal(1)
        t.wait_for_log(r"info: HTTP listener on 127\.0\.0\.1:%d \(default track a\)$"
                       % other.port, 5, start)
        assert code(other.port, "/primary") == 200
        with pytest.raises(ConnectionRefusedError):
            code(port, "/primary")
        # a port taken by someone else: the running listener is kept
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", port))
        blocker.listen(1)
        write(t, {"a": {"module": module_path("primary"), "interval": "200ms"}},
              {"listen": "127.0.0.1:%d" % port})
        start = t.log_size()
        t.send_signal(1)
        t.wait_for_log(r"error: cannot start the new HTTP listener \(\[http\] changed\): "
                       r"127\.0\.0\.1:%d: Address already in use; the running one is kept$"
                       % port, 5, start)
        assert code(other.port, "/primary") == 200
        # the same address, another allow-list: the socket is handed over, no bind error
        write(t, {"a": {"module": module_path("primary"), "interval": "200ms"}},
              {"listen": "127.0.0.1:%d" % other.port, "allow": "127.0.0.2"})
        start = t.log_size()
        t.send_signal(1)
        t.wait_for_log(r"info: HTTP listener on 127\.0\.0\.1:%d" % other.port, 5, start)
        assert raw(other.port, GET) == b""
        assert raw(other.port, GET, src="127.0.0.2").startswith(b"HTTP/1.1 200 ")
        assert t.alive()
    finally:
        blocker.close()
        other.release()


def test_bind_failure_at_start(trackd, port, pgtrackd_bin):
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        t = trackd.new()
        write(t, {"a": {"module": module_path("primary")}}, {"listen": "127.0.0.1:%d" % port})
        r = run_binary(pgtrackd_bin, "-f", t.conf, "-l", timeout=10)
        assert r.returncode == 1
        assert ("error: cannot start the HTTP listener ([http] listen): 127.0.0.1:%d: "
                "Address already in use" % port) in r.stderr
        assert t.read("a") is None       # no track file touched
    finally:
        blocker.close()


def test_status_command(trackd, port, pgtrackd_bin):
    t = module_daemon(trackd, port)
    r = run_binary(pgtrackd_bin, "--status", "-f", t.conf)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["TRACK", "STATE", "VALUE"], r.stdout
    assert re.match(r"a\s+primary\s+54\s", lines[1]), r.stdout
    r = run_binary(pgtrackd_bin, "--status", "--json", "-f", t.conf)
    assert r.returncode == 0, r.stderr
    assert "tracks" in json.loads(r.stdout)


def test_status_command_without_daemon(trackd, port, pgtrackd_bin):
    t = module_daemon(trackd, port, allow="127.0.0.2")
    r = run_binary(pgtrackd_bin, "--status", "-f", t.conf)
    assert r.returncode == 4
    assert ("pgtrackd: no status: 127.0.0.1:%d closed the connection unanswered (is this "
            "host outside [http] allow, or the listener full?)" % port) in r.stderr, r.stderr
    t.stop()
    r = run_binary(pgtrackd_bin, "--status", "-f", t.conf)
    assert r.returncode == 4
    assert "pgtrackd: no status: cannot connect to 127.0.0.1:%d: Connection refused" % port \
        in r.stderr
    # no listener configured
    write(t, {"a": {"module": module_path("primary")}}, {})
    r = run_binary(pgtrackd_bin, "--status", "-f", t.conf)
    assert r.returncode == 3
    assert "the HTTP listener is off in %s ([http] listen is not set)" % t.conf in r.stderr


def peer_lines(t, start):
    return [float(m.group(1)) for m in re.finditer(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:(\d\d\.\d{3}) pgtrackd: debug: track \"p\": peer r: ",
        t.log()[start:], re.M)]


def test_probe_cadence_under_flood(cluster, trackd, port):
    """The primary's track asks its peer every 200 ms (one debug line per
    answer): as many answers per second while 4 clients hammer the
    listener as before.  Generous bound: at least half."""
    t = trackd.new()
    write(t, {"p": pg_track(cluster.primary, [("r", cluster.replica)])},
          {"listen": "127.0.0.1:%d" % port})
    t.start()
    wait_state(port, "p", "primary")
    start = t.log_size()
    time.sleep(3)
    before = len(peer_lines(t, start))
    stop = time.monotonic() + 3
    counts = []

    def flood():
        n = 0
        while time.monotonic() < stop:
            try:
                raw(port, GET, timeout=2)
                n += 1
            except OSError:
                pass
        counts.append(n)
    threads = [threading.Thread(target=flood) for _ in range(4)]
    start = t.log_size()
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    during = len(peer_lines(t, start))
    print("peer answers in 3 s: %d before, %d while %d requests were served"
          % (before, during, sum(counts)))
    assert before >= 5
    assert sum(counts) > 100
    assert during >= before / 2


def test_live_metrics_and_status(servers, trackd, port):
    """/metrics from a running primary and standby passes `promtool check
    metrics`, with the series the issue names; /status is JSON with the
    state, value, reason, peers and lag of each track."""
    import shutil
    import subprocess
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool not found: apt-get install prometheus (tests/install-deps)")
    p = servers.primary("p")
    r = servers.replica(p, "r")
    t = trackd.new()
    write(t, {"p": pg_track(p, [("r", r)]), "s": pg_track(r, [("p", p)])},
          {"listen": "127.0.0.1:%d" % port, "default_track": "p"})
    t.start()
    wait_state(port, "p", "primary")
    wait_state(port, "s", "standby")

    status, body, resp = request(port, "/metrics")
    assert status == 200 and resp.getheader("Content-Type").startswith("text/plain"), resp.getheaders()
    text = body.decode()
    chk = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=30)
    assert chk.returncode == 0, chk.stdout + chk.stderr + "\n" + text
    for series in ('pgtrackd_up 1', 'pgtrackd_track_state{track="p",state="primary"} 1',
                   'pgtrackd_track_state{track="s",state="standby"} 1',
                   'pgtrackd_replication_is_replica{track="s"} 1',
                   'pgtrackd_peer_up{track="s",peer="p"} 1'):
        assert series in text, "%s not in:\n%s" % (series, text)
    for name in ("pgtrackd_track_value", "pgtrackd_probe_duration_seconds",
                 "pgtrackd_state_changes_total", "pgtrackd_replication_lag_bytes",
                 "pgtrackd_replication_lag_seconds", "pgtrackd_track_file_rewrites_total"):
        assert re.search(r"(?m)^%s\{" % name, text), "%s missing:\n%s" % (name, text)

    status, body, _ = request(port, "/status")
    assert status == 200
    doc = json.loads(body)
    tracks = {tr["name"]: tr for tr in doc["tracks"]}
    assert tracks["p"]["state"] == "primary" and tracks["s"]["state"] == "standby", doc
    assert tracks["p"]["value"] == 54, doc
    assert doc["version"] and doc["uptime_seconds"] >= 0, doc
