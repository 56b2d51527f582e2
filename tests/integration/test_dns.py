"""Host names are resolved without blocking the event loop (issue 9, defect 3).

Each test runs the daemon inside a network namespace of its own whose
resolv.conf points at a black-holed name server: 10.213.9.53 lies on a veth
subnet inside the namespace where nothing answers, so every DNS query
vanishes and a blocking resolver (glibc's getaddrinfo, called by libpq for a
bare host=) would stall the loop for 10 s per attempt.  `ip netns exec`
bind-mounts /etc/netns/NAME/resolv.conf and /etc/netns/NAME/hosts over
/etc/, so the namespace also has a hosts file with a name of its own.  No
packet leaves the namespace; the root namespace gets no route to it.

PostgreSQL runs inside the namespace too (listening on 127.0.0.1 there and
on a unix socket, which works across namespaces).

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_dns.py
"""

import datetime
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from kit.fifo import Fifo, inst
from kit.notify import default_notify_binary, Notify
from kit.waiting import wait_until
from kit.pgserver import PgServer
from kit.trackd import LOG_LINE_RE, Trackd

BLACKHOLE_NS = "10.213.9.53"         # the name server nobody answers for
HOSTS_NAME = "pgtrackd-db.test"      # only in the namespace's /etc/hosts
DNS_NAME = "db.invalid.test"         # in no hosts file: needs DNS
SILENT_ADDR = "10.213.9.77"          # on bh0's subnet, a fixed neighbour: SYNs vanish
SILENT_ADDR6 = "2001:db8:213:9::77"  # the same over IPv6 (RFC 6724: sorted before 127.0.0.1)
TWO_ADDR_NAME = "pgtrackd-two.test"  # SILENT_ADDR6 first, then 127.0.0.1
_counter = itertools.count()


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, text=True, timeout=30, check=check)


class BlackholeNetns:
    """A network namespace with lo up, a black-holed name server and its own
    /etc/netns/NAME/{resolv.conf,hosts}.  cleanup() removes both, always."""

    def __init__(self):
        self.name = "pgtdns%d-%d" % (os.getpid(), next(_counter))
        self.etc = os.path.join("/etc/netns", self.name)
        try:
            ip("netns", "add", self.name)
            self.exec_ip("link", "set", "lo", "up")
            # nothing ever answers on the other end of the veth: ARP for the
            # name server goes unanswered and every query is silently lost
            self.exec_ip("link", "add", "bh0", "type", "veth", "peer", "name", "bh1")
            self.exec_ip("addr", "add", "10.213.9.1/24", "dev", "bh0")
            self.exec_ip("link", "set", "bh0", "up")
            self.exec_ip("link", "set", "bh1", "up")
            # a permanent neighbour entry: SYNs to SILENT_ADDR leave bh0 for a
            # MAC nobody has and bh1 (no address) drops them; no ARP failure,
            # no ICMP, no reset: a black-holed address
            self.exec_ip("neigh", "add", SILENT_ADDR, "lladdr", "02:00:00:00:09:77",
                         "dev", "bh0", "nud", "permanent")
            self.exec_ip("-6", "addr", "add", "2001:db8:213:9::1/64", "dev", "bh0", "nodad")
            self.exec_ip("-6", "neigh", "add", SILENT_ADDR6, "lladdr", "02:00:00:00:09:77",
                         "dev", "bh0", "nud", "permanent")
            os.makedirs(self.etc)
            with open(os.path.join(self.etc, "resolv.conf"), "w") as f:
                f.write("nameserver %s\noptions timeout:5 attempts:2\n" % BLACKHOLE_NS)
            with open(os.path.join(self.etc, "hosts"), "w") as f:
                f.write("127.0.0.1 localhost\n127.0.0.1 %s\n" % HOSTS_NAME)
                f.write("%s %s\n127.0.0.1 %s\n" % (SILENT_ADDR6, TWO_ADDR_NAME, TWO_ADDR_NAME))
        except Exception:
            self.cleanup()
            raise

    def exec_ip(self, *args):
        return ip("netns", "exec", self.name, "ip", *args)

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def cleanup(self):
        ip("netns", "del", self.name, check=False)
        shutil.rmtree(self.etc, ignore_errors=True)


@pytest.fixture
def netns():
    ns = BlackholeNetns()
    try:
        yield ns
    finally:
        ns.cleanup()


@pytest.fixture
def ns_pg(netns, pg_template):
    srv = PgServer.primary_from_template(pg_template, "dnspg")
    srv.wrapper = netns.prefix()          # the postmaster runs inside the namespace
    try:
        srv.start()
        yield srv
    finally:
        srv.destroy()


@pytest.fixture
def ns_trackd(pgtrackd_bin, netns):
    made = []

    def start(tracks):
        base = tempfile.mkdtemp(prefix="pgtrackd-it-dns-")
        t = Trackd(pgtrackd_bin, base)
        t.wrapper = netns.prefix()        # ip netns exec execs pgtrackd: same PID
        made.append(t)
        t.write_config(tracks)
        t.start()
        return t

    try:
        yield start
    finally:
        for t in made:
            try:
                t.close()
            finally:
                shutil.rmtree(t.base, ignore_errors=True)


def log_time(line):
    m = LOG_LINE_RE.match(line)
    assert m, line
    return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def probe_times(log, track):
    """Times of the healthy session's answers (one debug line per probe)."""
    rx = re.compile(r'debug: track "%s": not in recovery' % re.escape(track))
    return [log_time(line) for line in log.splitlines() if rx.search(line)]


def test_dns_name_does_not_stall_other_tracks(ns_pg, ns_trackd):
    """A track whose host needs a black-holed DNS goes down with a reason of
    its own; the unix-socket track in the same process keeps its value and
    its cadence, and SIGTERM is obeyed at once."""
    t = ns_trackd({
        "healthy": ns_pg.track_options(),
        "dns": ns_pg.track_options(host=DNS_NAME, port="5432"),
        "guarded": ns_pg.track_options(**{"peer.far": "%s 5432" % DNS_NAME}),
    })
    t.wait_for_value("healthy", 100, timeout=10)
    t.wait_for_log(r'track "dns": .* -> down, value -254 .*name resolution failed: %s'
                   % re.escape(DNS_NAME), timeout=6)
    # a peer in an outage does not hold the local verdict back
    t.wait_for_value("guarded", 100, timeout=6)
    t.wait_for_log(r'track "guarded": peer far gives no answer \(name resolution failed: %s'
                   % re.escape(DNS_NAME), timeout=6)

    # ~10 s of black-holed lookups: the healthy track never moves
    start = time.monotonic()
    t0 = time.time()
    seen = set()
    while time.monotonic() - start < 10:
        assert t.alive(), t._describe("pgtrackd exited")
        seen.add(t.read("healthy"))
        time.sleep(0.05)
    assert seen == {"100\n"}, t._describe("healthy track wrote %r" % sorted(seen, key=str))
    times = [x for x in probe_times(t.log(), "healthy") if x >= t0 - 1]
    assert len(times) >= 25, t._describe("only %d probes of the healthy track in 10 s" % len(times))
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < 1.0, t._describe("the healthy track was not probed for %.1fs" % max(gaps))
    assert t.read("dns") == "-254\n"
    assert "needs a DNS lookup" not in t.log()

    t0 = time.monotonic()
    t.send_signal(signal.SIGTERM)
    try:
        t.proc.wait(2.0)
    except subprocess.TimeoutExpired:
        pytest.fail(t._describe("pgtrackd still running 2 s after SIGTERM"))
    assert t.proc.returncode == 0, t._describe()
    assert time.monotonic() - t0 < 2.0


def test_hosts_file_name_reaches_primary(ns_pg, ns_trackd):
    """A name from /etc/hosts resolves without DNS (the name server is
    black-holed) and the track reaches primary over TCP; a peer given by
    name is asked too (it is the same server: its verdict is not the point)."""
    t = ns_trackd({
        "byname": ns_pg.track_options(host=HOSTS_NAME),
        "peered": ns_pg.track_options(**{"peer.self": "%s %d" % (HOSTS_NAME, ns_pg.port)}),
    })
    t.wait_for_value("byname", 100, timeout=10)
    t.wait_for_log(r'track "peered": peer self: not in recovery', timeout=10)
    assert "name resolution failed" not in t.log()
    # the TCP connection came from the namespace's loopback
    assert "connection authorized" in ns_pg.log()
    assert re.search(r"connection received: host=127\.0\.0\.1", ns_pg.log())


def test_black_holed_first_address_falls_through(ns_pg, ns_trackd):
    """A name whose first address drops SYNs (an AAAA record over a broken
    IPv6 path) and whose second works: connect_timeout applies to each
    address, as libpq's does, so the track reaches primary through the
    second within about one connect_timeout, and keeps reconnecting that way."""
    t = ns_trackd({
        "two": ns_pg.track_options(host=TWO_ADDR_NAME, connect_timeout="1s"),
    })
    took = t.wait_for_value("two", 100, timeout=6)
    assert took < 6
    assert "name resolution failed" not in t.log()
    assert re.search(r"connection received: host=127\.0\.0\.1", ns_pg.log())


def test_black_holed_only_address_names_it(ns_pg, ns_trackd):
    """When every address times out, the failure names what was tried."""
    t = ns_trackd({
        "silent": ns_pg.track_options(host="%s,%s" % (SILENT_ADDR, SILENT_ADDR),
                                      connect_timeout="500ms"),
    })
    t.wait_for_log(r'track "silent": .* -> down, .*timed out.*%s.*%s'
                   % (re.escape(SILENT_ADDR), re.escape(SILENT_ADDR)), timeout=8)


def test_peer_dns_name_is_accepted(pgtrackd_bin, workdir):
    """peer.NAME may be a host name now (it had to be numeric)."""
    conf = os.path.join(workdir, "t.conf")
    with open(conf, "w") as f:
        f.write("[track p]\nfile = %s/p\nhost = /tmp\npeer.db2 = db2.example 5432\n" % workdir)
    r = subprocess.run([pgtrackd_bin, "-t", "-f", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=20)
    assert r.returncode == 0, r.stdout
    assert "numeric" not in r.stdout


# --------------------------------------------------------------------------
# pgtrack-notify


def notify_check(workdir, host):
    conf = os.path.join(workdir, "n.conf")
    with open(conf, "w") as f:
        f.write("[notify]\nfifo = /run/keepalived/notify.fifo\ninstance = VI_PG\n"
                "[pgbouncer]\nhost = %s\ndatabases = appdb\n" % host)
    return conf, subprocess.run([default_notify_binary(), "-t", "-f", conf],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                timeout=20)


def test_notify_host_name_config(workdir):
    """[pgbouncer] host may be a name, quietly; a malformed one is an error."""
    for host in ("pgbouncer.example.com", "10.0.0.5", "/var/run/postgresql"):
        conf, r = notify_check(workdir, host)
        assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", ""), host
    conf, r = notify_check(workdir, "pg bouncer")
    assert r.returncode == 1, r.stdout
    assert ('%s:4: [pgbouncer] host: "pg bouncer" is not a socket directory, a numeric address '
            'or a host name' % conf) in r.stderr.splitlines(), r.stderr


@pytest.fixture
def ns_notify(netns):
    binary = default_notify_binary()
    base = tempfile.mkdtemp(prefix="pgtrack-it-dns-notify-")
    n = Notify(binary, base)
    fifo = Fifo(os.path.join(base, "notify.fifo"))
    try:
        yield n, fifo, base
    finally:
        try:
            n.close()
        finally:
            fifo.close()
            shutil.rmtree(base, ignore_errors=True)


def start_notify_in(netns, n):
    n.wrapper = netns.prefix()
    n.start()


def test_notify_bouncer_dns_name_does_not_stall(netns, ns_notify):
    """With [pgbouncer] host a black-holed name, FIFO lines are still handled
    at once, the failure names the resolution, and SIGTERM is obeyed."""
    n, fifo, base = ns_notify
    n.write_config({
        "notify": {"fifo": fifo.path, "instance": "VI_PG", "reconcile_interval": "10s"},
        "pgbouncer": {"host": "pgbouncer.invalid.test", "port": "6432", "user": "pgtadmin",
                      "connect_timeout": "1s", "command_timeout": "1s",
                      "databases": "appdb", "retry_max": "1s"},
    })
    start_notify_in(netns, n)
    n.wait_for_log(r"pgtrack-notify .* starting", timeout=10)

    fifo.write(inst("VI_PG", "MASTER"))
    n.wait_for_log(r'VRRP instance "VI_PG": unknown -> MASTER', timeout=2)
    n.wait_for_log(r"pgbouncer at pgbouncer\.invalid\.test:6432 .*name resolution failed",
                   timeout=3)
    # the loop is not stuck in a lookup: a later line is handled at once
    for state, before in (("BACKUP", "MASTER"), ("MASTER", "BACKUP")):
        time.sleep(0.3)
        offset = n.log_size()
        t0 = time.monotonic()
        fifo.write(inst("VI_PG", state))
        n.wait_for_log(r'VRRP instance "VI_PG": %s -> %s' % (before, state), timeout=5,
                       start=offset)
        took = time.monotonic() - t0
        assert took < 0.5, n.describe("the %s line was handled after %.1fs" % (state, took))

    t0 = time.monotonic()
    os.kill(n.pid, signal.SIGTERM)
    wait_until(lambda: not n.alive(), 2.0,
               describe=lambda: n.describe("still running 2 s after SIGTERM"))
    assert time.monotonic() - t0 < 2.0
