"""A real HAProxy 2.6 (Debian's) in front of pgtrackd's HTTP health API,
configured as Patroni users configure it (examples/haproxy/haproxy.cfg):

- the example configuration is valid and checks exactly as the tests do;
- writes through HAProxy's write frontend reach the primary; after
  pg_promote() of the replica and the old primary's stop, they reach the
  new primary within a few check intervals;
- reads go only to the standbys within the read backend's lag threshold
  (/replica?lag=16MB): a standby 16MB+ behind, which pgtrackd itself still
  calls a healthy standby, is out; back in once it catches up.

Every node has its own loopback address 127.0.0.x: PostgreSQL listens there
on its own port, pgtrackd's [http] listener on another, and HAProxy's
servers are `ADDRESS:PGPORT check port HTTPPORT`, as in production.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_haproxy.py
"""

import http.client
import os
import time

import psycopg
import pytest

from kit.daemons import render_sections
from kit.haproxy import (CHECK_INTERVAL, DEFAULT_SERVER, EXAMPLE, FALL, READ_CHECK, WRITE_CHECK,
                         HAProxy, Server, check_config, render_config)
from kit.ports import PortReservation
from kit.postgres import PG_USER
from kit.trackd import FAST_GLOBAL
from kit.waiting import wait_until

# pgtrackd's rise (2 probes of 200 ms), HAProxy's fall/rise at inter 1s,
# and slack for a loaded machine: only a hang exceeds it
FAILOVER_BOUND = 15.0
LAG_BYTES = 16 * 1024 * 1024
FIRST_ADDR = 141                # nodes at 127.0.0.141, .142, ...


class Node:
    """A PostgreSQL server on 127.0.0.x and the pgtrackd watching it, its
    HTTP listener on the same address."""

    def __init__(self, name, srv, addr):
        self.name = name
        self.srv = srv
        self.addr = addr
        self._http = PortReservation()
        self.http_port = self._http.port
        self.trackd = None

    def server(self):
        return Server(self.name, self.addr, self.srv.port, self.http_port)

    def status(self, path, method="OPTIONS"):
        c = http.client.HTTPConnection(self.addr, self.http_port, timeout=2)
        try:
            c.request(method, path)
            return c.getresponse().status
        finally:
            c.close()

    def wait_status(self, path, code, timeout=15):
        wait_until(lambda: self.status(path) == code, timeout, 0.05, tolerate=(OSError,),
                   what="%s: %s %d" % (self.name, path, code),
                   describe=lambda: self.trackd.describe())

    def release(self):
        self._http.release()


def listen_also_on(srv, addr):
    """PostgreSQL listens on addr too (appended last: it wins)."""
    with open(os.path.join(srv.datadir, "postgresql.conf"), "a") as f:
        f.write("listen_addresses = '127.0.0.1,%s'\n" % addr)


def start_trackd(trackd, node):
    t = trackd.new()
    track = {"file": t.path("main")}
    track.update(node.srv.track_options())
    t.write_config(None, raw=render_sections({
        "global": dict(FAST_GLOBAL),
        "track main": track,
        "http": {"listen": "%s:%d" % (node.addr, node.http_port)},
    }))
    t.start()
    node.trackd = t
    return t


@pytest.fixture
def cluster(servers, trackd):
    """make(n): a primary n1 and n-1 streaming replicas, each with its
    pgtrackd and HTTP listener; HAProxy in front of them (started by
    haproxy(nodes))."""
    made = {"nodes": [], "haproxy": None, "ports": []}

    def make(n):
        nodes = []
        for k in range(1, n + 1):
            addr = "127.0.0.%d" % (FIRST_ADDR + k - 1)
            name = "n%d" % k
            srv = servers.primary(name, start=False) if k == 1 else \
                servers.replica(nodes[0].srv, name, start=False)
            listen_also_on(srv, addr)
            srv.start()
            node = Node(name, srv, addr)
            nodes.append(node)
            made["nodes"].append(node)
        for node in nodes:
            start_trackd(trackd, node)
        return nodes

    def haproxy(write_nodes, read_nodes=None):
        w, r = PortReservation(), PortReservation()
        made["ports"] += [w, r]
        h = HAProxy()
        made["haproxy"] = h
        h.write_config(render_config([n.server() for n in write_nodes], "127.0.0.1:%d" % w.port,
                                     "127.0.0.1:%d" % r.port, h.sock,
                                     None if read_nodes is None else [n.server() for n in read_nodes]))
        h.write_port, h.read_port = w.port, r.port
        h.start()
        return h

    make.haproxy = haproxy
    try:
        yield make
    finally:
        if made["haproxy"] is not None:
            made["haproxy"].destroy()
        for p in made["ports"]:
            p.release()
        for node in made["nodes"]:
            node.release()


def through(port, query, connect_timeout=2):
    """One new connection to 127.0.0.1:port (HAProxy), one statement; the
    first row."""
    with psycopg.connect(host="127.0.0.1", port=port, user=PG_USER, dbname="postgres", autocommit=True,
                         connect_timeout=connect_timeout) as conn:
        return conn.execute(query).fetchone()


def write_through(h, seq):
    """INSERT through HAProxy's write frontend; the port of the PostgreSQL
    that stored it."""
    return through(h.write_port, "INSERT INTO routed (seq, port) VALUES (%d, inet_server_port()) "
                   "RETURNING port" % seq)[0]


def test_example_config_is_valid_and_checks_as_tested():
    r = check_config(EXAMPLE)
    assert r.returncode == 0, r.stderr or r.stdout
    with open(EXAMPLE) as f:
        lines = [l.split("#")[0].strip() for l in f]
    text = [l for l in lines if l]
    for backend, checks in (("pg_write", WRITE_CHECK), ("pg_read", READ_CHECK)):
        i = text.index("backend %s" % backend)
        end = next((j for j in range(i + 1, len(text)) if text[j].split()[0] in
                    ("backend", "frontend", "listen", "defaults", "global")), len(text))
        body = text[i + 1:end]
        for line in checks + (DEFAULT_SERVER,):
            assert line in body, "%s in %s lacks %r" % (EXAMPLE, backend, line)
        servers = [l for l in body if l.startswith("server ")]
        assert servers and all(l.endswith("check port 8008") for l in servers), servers


def test_writes_follow_the_primary_through_a_failover(cluster):
    p, r = cluster(2)
    p.wait_status("/primary", 200)
    r.wait_status("/primary", 503)
    h = cluster.haproxy([p, r])
    h.wait_up("pg_write", ["n1"])
    p.srv.sql("CREATE TABLE routed (seq int PRIMARY KEY, port int NOT NULL)")
    assert [write_through(h, i) for i in range(1, 6)] == [p.srv.port] * 5

    p.srv.stop("fast")
    r.srv.promote()
    t0 = time.monotonic()
    seq = iter(range(100, 100000))

    def write_reaches_new():
        return write_through(h, next(seq)) == r.srv.port
    wait_until(write_reaches_new, FAILOVER_BOUND, 0.05, tolerate=(psycopg.Error,),
               what="a write through HAProxy reaching the promoted %s" % r.name,
               describe=lambda: "servers: %s\n%s" % (h.servers("pg_write"), r.trackd.describe()))
    took = time.monotonic() - t0
    print("writes through HAProxy on the new primary %.2f s after its promotion" % took)
    h.wait_up("pg_write", ["n2"], timeout=2 * FALL * CHECK_INTERVAL + 5)
    assert [write_through(h, i) for i in range(200, 205)] == [r.srv.port] * 5
    stored = r.srv.sql("SELECT count(*) FROM routed WHERE port = %s", (r.srv.port,))[0][0]
    assert stored >= 6


def reads(h, n=12):
    """The ports of the PostgreSQL servers n new read connections reached."""
    return [through(h.read_port, "SELECT inet_server_port()")[0] for _ in range(n)]


def replay_behind(srv):
    return srv.sql("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())")[0][0]


def test_reads_only_to_the_standby_within_the_lag_threshold(cluster):
    p, near, far = cluster(3)
    h = cluster.haproxy([p, near, far])
    h.wait_up("pg_write", ["n1"])
    h.wait_up("pg_read", ["n2", "n3"])
    assert set(reads(h)) == {near.srv.port, far.srv.port}

    # far's replay stops at the next commit (applied an hour late) while its
    # receiver streams on: 40MB received, not replayed; pgtrackd itself
    # (max_lag, max_lag_time 0; not paused; streaming) still calls it a
    # healthy standby: only the read backend's ?lag=16MB takes it out
    far.srv.sql("ALTER SYSTEM SET recovery_min_apply_delay = '1h'")
    far.srv.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    p.srv.sql("CREATE TABLE mark (x int)")
    p.srv.sql("CREATE TABLE bulk AS SELECT repeat('x', 1000) AS pad FROM generate_series(1, 40000)")
    lsn = p.srv.sql("SELECT pg_current_wal_lsn()::text")[0][0]
    near.srv.wait_replayed(lsn)
    wait_until(lambda: replay_behind(far.srv) > 2 * LAG_BYTES, 20, 0.1,
               what="%s received 32MB more than it replayed" % far.name)
    far.wait_status("/replica?lag=16MB", 503)
    assert far.status("/replica") == 200, "pgtrackd calls %s lagging by its own keys" % far.name
    assert far.status("/replica?lag=1GB") == 200
    # near replayed it all; its pgtrackd says so at its next probes
    near.wait_status("/replica?lag=16MB", 200)
    h.wait_up("pg_read", ["n2"])
    assert set(reads(h)) == {near.srv.port}
    assert h.settled("pg_write") == (["n1"], ["n2", "n3"])

    far.srv.sql("ALTER SYSTEM SET recovery_min_apply_delay = 0")
    far.srv.sql("SELECT pg_reload_conf()")
    far.srv.wait_replayed(lsn, timeout=30)
    h.wait_up("pg_read", ["n2", "n3"], timeout=15)
    assert set(reads(h)) == {near.srv.port, far.srv.port}
