"""labkit: the pgtrackd lab, N PostgreSQL nodes in network namespaces.

    import labkit
    with labkit.Lab(nodes=3) as lab:        # up() ... down(), also on errors
        w = lab.writer()                    # client writing through VIP:6432
        lab.kill_postmaster(lab.primary)    # the lab promotes a replica 1 s later
        lab.wait_for(lambda: lab.vip_holder() is lab.primary, 30)
        w.stop()

What it builds, as root (see README.md beside this file):

- network namespaces PREFIX-n1 .. PREFIX-nN (one per node), PREFIX-br
  holding a bridge br0, and PREFIX-cl for the client, PREFIX = pgtl-<6 hex>
  unique per lab; every namespace has lo up and IPv6 off. One veth pair per
  node (eth0 in the node, nK on the bridge) and one for the client. The
  addresses (SUBNET.0/24, VIP SUBNET.100, client SUBNET.200) exist only in
  these namespaces; the root namespace gets neither an address nor a route,
  and every packet to them is sent from a lab namespace.
- per node, in /tmp/pgtrack-lab-<id>/nK: PostgreSQL 15 (node 1 primary,
  the others pg_basebackup -R replicas of it, database appdb with table
  lab_writes), pgbouncer 1.18 on *:6432, pgtrack-notify, pgtrackd (peers =
  the other nodes) and keepalived 2.2.7 (unicast VRRP, instance VI_PG,
  priority 200, the VIP, track_file fed by pgtrackd, notify_fifo read by
  pgtrack-notify). pgtrackd runs on its default values with node = nK and
  base_priority = 200: primary 254, standbys 253 down by WAL rank.
- node 1 has the HIGHEST address: a BACKUP of equal priority does not
  preempt, but when two nodes of equal priority both claim MASTER (a
  keepalived restart, a healed split) VRRP keeps node 1: an old primary
  restarted as a primary would win then, were it not for the stale-primary
  guard putting it in FAULT.

Lab(mode="classic") builds the classic configuration instead, for the
benchmark (bench/failover): no pgtrackd and no pgtrack-notify; keepalived
runs two vrrp_scripts every 5 s (pg_isready, weight -75; a psql check that
pg_is_in_recovery() is false, weight -50) and notify_master /
notify_backup scripts that install the databases file and restart
pgbouncer (MASTER) or stop it (BACKUP).

Every process is started by this module, recorded with its PID and start
time in the state file /run/pgtrackd-lab/<id>.json, and stopped by PID;
namespaces are then emptied with `ip netns pids` and deleted. cleanup()
does the same for labs whose owner process is gone.
"""

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PGBOUNCER = os.environ.get("PGBOUNCER", "/usr/sbin/pgbouncer")
KEEPALIVED = os.environ.get("KEEPALIVED", "/usr/sbin/keepalived")
PYTHON = "/usr/bin/python3"
STATE_DIR = Path(os.environ.get("PGTRACKD_LAB_STATE", "/run/pgtrackd-lab"))
BASE_DIR = Path("/tmp")
DIR_PREFIX = "pgtrack-lab-"
NS_PREFIX = "pgtl-"
NS_RE = re.compile(r"^pgtl-([0-9a-f]{6})-(br|cl|n\d+)$")
SUBNET = "10.213.0"
PREFIXLEN = 24
VIP = SUBNET + ".100"
CLIENT_IP = SUBNET + ".200"
VRID = 51
# keepalived base priority of the pgtrackd configuration, and pgtrackd's base_priority
BASE_PRIORITY = 200
INSTANCE = "VI_PG"
LIFELINE_IF = "pgtrackd0"
PG_PORT = 5432
BOUNCER_PORT = 6432
APPDB = "appdb"
PG_USER = "postgres"
ADMIN_USER = "pgtrack_notify"
VALUE_DOWN = -254
VALUE_PRIMARY = 54       # pgtrackd's defaults on BASE_PRIORITY: 254
VALUE_STANDBY = 53       # the most advanced standby (253); RANK_STEP less per rank
RANK_STEP = 10           # pgtrackd's rank_step default
MAX_NODES = 9
MODES = ("pgtrackd", "classic")
CLASSIC_INTERVAL = 5            # vrrp_script interval of the classic configuration, seconds
CLASSIC_WEIGHT_ISREADY = -75
CLASSIC_WEIGHT_ROLE = -50


class LabError(Exception):
    pass


def default_build():
    return Path(os.environ.get("PGTRACKD_BUILD", REPO / "build"))


# ---------------------------------------------------------------------------
# small helpers

def run(argv, timeout=60, check=True, input=None):
    """Run a command, capture its output (text). Raises LabError on failure."""
    try:
        p = subprocess.run([str(a) for a in argv], input=input, capture_output=True, text=True,
                           timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LabError("timed out after %ss: %s" % (timeout, " ".join(map(str, argv))))
    if check and p.returncode != 0:
        raise LabError("%s failed (exit %d): %s" % (" ".join(map(str, argv)), p.returncode,
                                                     (p.stderr or p.stdout).strip()[-2000:]))
    return p


def proc_stat(pid):
    """(state, starttime) of a process from /proc/PID/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[19])


def pid_alive(pid, start=None):
    """True if PID runs (a zombie does not) and, if given, started at start."""
    if not pid:
        return False
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start is None or st[1] == start


def signal_pid(pid, sig, start=None):
    """Send sig to pid only if it is still the process we started."""
    if not pid_alive(pid, start):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def netns_pids(ns):
    p = run(["ip", "netns", "pids", ns], check=False, timeout=10)
    return [int(x) for x in p.stdout.split()] if p.returncode == 0 else []


def netns_list():
    p = run(["ip", "netns", "list"], check=False, timeout=10)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip(), 0)
    except (OSError, ValueError):
        return None


def parse_local(stamp, fmt="%Y-%m-%dT%H:%M:%S.%f"):
    return datetime.datetime.strptime(stamp, fmt).timestamp()


def parse_utc(stamp):
    """'2026-11-26 02:53:57.123 UTC' (PostgreSQL %m, pgbouncer)."""
    d = datetime.datetime.strptime(stamp[:23], "%Y-%m-%d %H:%M:%S.%f")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until true (returns its value) or raise LabError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # keep polling, report the last error
            last = e
        if time.monotonic() >= deadline:
            raise LabError("%s not reached within %.1fs%s" % (what, timeout,
                                                              " (last error: %s)" % last if last else ""))
        time.sleep(interval)


def write_text(path, text, mode=0o644, owner=None):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp-lab")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    if owner:
        shutil.chown(tmp, owner, owner)
    os.replace(tmp, path)


def _stderr_log(msg):
    sys.stderr.write("%s  %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# events

class EventLog:
    """Timestamped events from the daemons' logs, the VIP monitors and the
    lab's own actions. Each event is a dict with t (wall clock, seconds),
    node, src, kind, text and kind-specific fields."""

    def __init__(self):
        self._lock = threading.Lock()
        self._events = []

    def add(self, t, node, src, kind, text, **fields):
        ev = dict(t=t, node=node, src=src, kind=kind, text=text, **fields)
        with self._lock:
            self._events.append(ev)
        return ev

    def added(self, start=0):
        """Events in the order they were recorded, from index start on
        (for followers: pass the previous length)."""
        with self._lock:
            return list(self._events[start:])

    def all(self, since=None, **match):
        with self._lock:
            evs = list(self._events)
        evs.sort(key=lambda e: e["t"])
        return [e for e in evs if (since is None or e["t"] >= since)
                and all(e.get(k) == v for k, v in match.items())]

    def first(self, since=None, pred=None, **match):
        for e in self.all(since, **match):
            if pred is None or pred(e):
                return e
        return None


TRACKD_RE = re.compile(r"^(\S+) pgtrackd: (\w+): (.*)$")
PROBE_FAIL_RE = re.compile(r'track "[^"]+": probe failed \((\d+) of (\d+)\): (.*)$')
TRACK_CHANGE_RE = re.compile(r'track "[^"]+": (\w+) -> (\w+), value (-?\d+) (written to|NOT YET written to) '
                             r'\S+ \((.*)\)$')
NOTIFY_RE = re.compile(r"^(\S+) pgtrack-notify: (\w+): (.*)$")
VRRP_RE = re.compile(r'VRRP (?:instance|group) "[^"]+": (\S+) -> (\S+) \(priority (\d+)\)')
BOUNCER_RE = re.compile(r"pgbouncer: (serving|fenced) databases (.*) \(this node is (.*)\)$")
KA_RE = re.compile(r"^\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}: (.*)$")
KA_STATE_RE = re.compile(r"\(" + INSTANCE + r"\) Entering (\w+) STATE", re.I)
PGLOG_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \w+) \[\d+\] (.*)$")
PG_INTERESTING = ("ready to accept", "received promote request", "selected new timeline",
                  "archive recovery complete", "started streaming WAL", "terminating walreceiver",
                  "redo done", "new target timeline", "database system was interrupted",
                  "database system was not properly shut down", "shutting down", "is shut down",
                  "could not connect to the primary", "fetching timeline history")
ADDR_RE = re.compile(r"^\[(\S+)\] (Deleted )?\d+: \S+\s+inet (\S+)/")


def parse_trackd(line, node, now):
    m = TRACKD_RE.match(line)
    if not m:
        return None
    t = parse_local(m.group(1))
    c = TRACK_CHANGE_RE.search(m.group(3))
    if c:
        return dict(t=t, node=node, src="pgtrackd", kind="track", text=m.group(3),
                    old=c.group(1), new=c.group(2), value=int(c.group(3)),
                    written=c.group(4) == "written to", reason=c.group(5))
    f = PROBE_FAIL_RE.search(m.group(3))
    if f:
        return dict(t=t, node=node, src="pgtrackd", kind="probe_failed", text=m.group(3),
                    n=int(f.group(1)), fall=int(f.group(2)), reason=f.group(3))
    if m.group(2) == "debug":       # every probe with -v: not kept
        return None
    return dict(t=t, node=node, src="pgtrackd", kind=m.group(2), text=m.group(3))


def parse_notify(line, node, now):
    m = NOTIFY_RE.match(line)
    if not m:
        return None
    t = parse_local(m.group(1))
    msg = m.group(3)
    v = VRRP_RE.search(msg)
    if v:
        return dict(t=t, node=node, src="notify", kind="vrrp", text=msg, old=v.group(1),
                    new=v.group(2), priority=int(v.group(3)))
    b = BOUNCER_RE.search(msg)
    if b:
        return dict(t=t, node=node, src="notify", kind="bouncer", text=msg, mode=b.group(1),
                    vrrp=b.group(3))
    if "two masters" in msg:
        return dict(t=t, node=node, src="notify", kind="two_masters", text=msg)
    return dict(t=t, node=node, src="notify", kind=m.group(2), text=msg)


def parse_keepalived(line, node, now):
    m = KA_RE.match(line)
    msg = m.group(1) if m else line
    s = KA_STATE_RE.search(msg)
    if s:   # keepalived stamps whole seconds: use the time the line was read
        return dict(t=now, node=node, src="keepalived", kind="ka_state", text=msg,
                    state=s.group(1).upper())
    return dict(t=now, node=node, src="keepalived", kind="ka", text=msg)


REPMGR_RE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(\w+)\] (.*)$")


def parse_repmgrd(line, node, now):
    """repmgrd stamps whole seconds: use the time the line was read."""
    m = REPMGR_RE.match(line)
    if not m or m.group(1) == "DEBUG":
        return None
    return dict(t=now, node=node, src="repmgr", kind=m.group(1).lower(), text=m.group(2))


def parse_pglog(line, node, now):
    m = PGLOG_RE.match(line)
    if not m or not any(k in m.group(2) for k in PG_INTERESTING):
        return None
    return dict(t=parse_utc(m.group(1)), node=node, src="postgres", kind="pg", text=m.group(2))


CLASSIC_RE = re.compile(r"^(\d+\.\d+) classic-notify: (\w+): (.*)$")


def parse_classic(line, node, now):
    """The classic notify script's log (mode classic): its own timestamps."""
    m = CLASSIC_RE.match(line)
    if not m:
        return None
    t, state, msg = float(m.group(1)), m.group(2), m.group(3)
    if msg.startswith("pgbouncer started") or msg.startswith("pgbouncer stopped"):
        return dict(t=t, node=node, src="classic", kind="bouncer", text="%s: %s" % (state, msg),
                    mode="serving" if "started" in msg else "fenced", vrrp=state)
    return dict(t=t, node=node, src="classic", kind="notify", text="%s: %s" % (state, msg), vrrp=state)


class Tailer(threading.Thread):
    """Follows log files (every 10 ms) and turns their lines into events."""

    def __init__(self, events):
        super().__init__(daemon=True, name="lab-tailer")
        self.events = events
        self._files = {}
        self._values = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def watch(self, path, parser, node):
        path = str(path)
        with self._lock:
            if path not in self._files:
                try:
                    off = os.path.getsize(path)
                except OSError:
                    off = 0
                self._files[path] = dict(parser=parser, node=node, off=off, buf=b"")

    def watch_value(self, path, node):
        """Emit a "track_seen" event whenever the integer in path changes."""
        with self._lock:
            self._values[str(path)] = {"node": node, "value": read_int(path)}

    def poll_once(self):
        with self._lock:
            values = list(self._values.items())
        for path, v in values:
            now = time.time()
            cur = read_int(path)
            if cur != v["value"]:
                v["value"] = cur
                self.events.add(now, v["node"], "file", "track_seen",
                                "track file = %s (seen by the lab)" % cur, value=cur)
        with self._lock:
            items = list(self._files.items())
        for path, f in items:
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            if size < f["off"]:
                f["off"] = 0
            if size == f["off"]:
                continue
            with open(path, "rb") as fh:
                fh.seek(f["off"])
                data = fh.read(size - f["off"])
            f["off"] += len(data)
            now = time.time()
            lines = (f["buf"] + data).split(b"\n")
            f["buf"] = lines.pop()
            for raw in lines:
                line = raw.decode(errors="replace").rstrip("\r")
                try:
                    ev = f["parser"](line, f["node"], now)
                except ValueError:
                    ev = None
                if ev:
                    self.events.add(**ev)

    def run(self):
        while not self._halt.is_set():
            try:
                self.poll_once()
            except Exception as e:  # never let the tailer die silently
                _stderr_log("lab: tailer: %r" % e)
            self._halt.wait(0.01)

    def stop(self):
        self._halt.set()
        if self.is_alive():
            self.join(2)
        self.poll_once()


class AddrMonitor:
    """`ip -ts -n NS monitor address dev eth0`: VIP added/removed events,
    stamped by ip itself."""

    def __init__(self, node, events):
        self.node = node
        self.events = events
        self.proc = subprocess.Popen(["ip", "-ts", "-n", node.ns, "monitor", "address", "dev", "eth0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        self.thread = threading.Thread(target=self._read, daemon=True, name="lab-mon-" + node.name)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            m = ADDR_RE.match(line)
            if m and m.group(3) == VIP:
                kind = "vip_del" if m.group(2) else "vip_add"
                self.events.add(parse_local(m.group(1)), self.node.name, "vip", kind,
                                "VIP %s %s %s" % (VIP, "removed from" if m.group(2) else "added on",
                                                  self.node.name))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
        self.thread.join(2)


# ---------------------------------------------------------------------------
# processes

class Proc:
    """A daemon the lab started: PID, start time (against PID reuse) and,
    when this process started it, its Popen (to reap it)."""

    def __init__(self, key, pid, popen=None):
        self.key = key
        self.pid = pid
        st = proc_stat(pid)
        self.start = st[1] if st else None
        self.popen = popen

    def alive(self):
        if self.popen is not None:
            self.popen.poll()       # reap, so that a dead child is not a zombie
        return pid_alive(self.pid, self.start)

    def signal(self, sig):
        return signal_pid(self.pid, sig, self.start)

    def wait_gone(self, timeout):
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def to_json(self):
        return {"pid": self.pid, "start": self.start}


# ---------------------------------------------------------------------------
# nodes

class Node:
    def __init__(self, lab, k):
        self.lab = lab
        self.k = k
        self.name = "n%d" % k
        self.ns = "%s-%s" % (lab.prefix, self.name)
        self.ip = node_ip(k, lab.n)
        self.dir = lab.dir / self.name
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.track_dir = self.dir / "track"
        self.track_file = self.track_dir / "main"
        self.fifo = self.dir / "notify.fifo"
        self.bouncer_dir = self.dir / "pgbouncer"

    def __repr__(self):
        return "<Node %s %s>" % (self.name, self.ip)

    # -- plumbing ------------------------------------------------------------

    def peers(self):
        return [n for n in self.lab.nodes if n is not self]

    def exec_argv(self, argv, user=None):
        cmd = ["ip", "netns", "exec", self.ns]
        if user:
            cmd += ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups"]
        return cmd + [str(a) for a in argv]

    def run(self, argv, user=None, timeout=120, check=True):
        return run(self.exec_argv(argv, user), timeout=timeout, check=check)

    def proc(self, what):
        return self.lab.procs.get("%s/%s" % (self.name, what))

    # -- PostgreSQL ------------------------------------------------------------

    def pg(self, query, params=None, dbname="postgres", timeout=5):
        """Run SQL on this node's PostgreSQL over its unix socket (a file in
        the node directory: no packet involved). Returns the rows."""
        import psycopg
        with psycopg.connect(host=str(self.sock), port=PG_PORT, dbname=dbname, user=PG_USER,
                             connect_timeout=max(2, int(timeout)), autocommit=True,
                             application_name="labkit") as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def pg_ready(self):
        try:
            self.pg("SELECT 1", timeout=2)
            return True
        except Exception:
            return False

    def in_recovery(self):
        return self.pg("SELECT pg_is_in_recovery()")[0][0]

    def postmaster_pid(self):
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def postmaster(self):
        """The running postmaster as a Proc: the one the lab started, or one
        started behind its back (repmgr standby follow restarts PostgreSQL
        with pg_ctl); None if none runs."""
        p = self.proc("postgres")
        if p is not None and p.alive():
            return p
        pid = self.postmaster_pid()
        if pid_alive(pid) and pid in netns_pids(self.ns):
            return Proc("%s/postmaster" % self.name, pid)
        return None

    def postmaster_alive(self):
        return self.postmaster() is not None

    def write_node_conf(self, sync=None):
        sync = self.lab.sync if sync is None else sync
        text = ("# node-specific settings, written by labkit\n"
                "listen_addresses = '%s'\n"
                "unix_socket_directories = '%s'\n"
                "cluster_name = '%s'\n" % (self.ip, self.sock, self.name))
        if sync:
            text += "synchronous_standby_names = 'ANY 1 (*)'\n"
        write_text(self.data / "node.conf", text, 0o600, PG_USER)

    def start_postgres(self, timeout=60):
        """Start the postmaster (as it is: primary, or standby if
        standby.signal exists) and wait until it accepts connections."""
        if self.postmaster_alive():
            raise LabError("%s: PostgreSQL already runs" % self.name)
        # a postmaster killed with -9 that the kernel has not reaped yet
        # (a zombie) would make the new one refuse to start
        old = self.postmaster_pid()
        if old:
            wait_for(lambda: not pid_alive(old), 15, what="%s: old postmaster %d gone" % (self.name, old))
        log = self.dir / "postgresql.log"
        self.lab.spawn(self, "postgres", [PG_BIN / "postgres", "-D", self.data], log, user=PG_USER)
        self.lab.tailer.watch(log, parse_pglog, self.name)
        self.lab.event(self, "pg_start", "PostgreSQL started on %s" % self.name)
        wait_for(lambda: self.pg_ready() or self._died("postgres", log), timeout, 0.1,
                 "%s: PostgreSQL accepting connections" % self.name)

    def _died(self, what, log):
        p = self.proc(what)
        if p is not None and not p.alive():
            tail = ""
            try:
                tail = Path(log).read_text(errors="replace")[-2000:]
            except OSError:
                pass
            raise LabError("%s: %s exited during start-up; end of %s:\n%s" % (self.name, what, log, tail))
        return False

    def kill_postmaster(self):
        """kill -9 of the postmaster; returns the wall-clock time of the kill."""
        p = self.postmaster()
        if p is None:
            raise LabError("%s: no running postmaster to kill" % self.name)
        t = time.time()
        p.signal(signal.SIGKILL)
        self.lab.crash_times[self.name] = t
        self.lab.event(self, "crash", "kill -9 of the postmaster of %s (PID %d)" % (self.name, p.pid), t=t)
        p.wait_gone(10)
        return t

    def stop_postgres(self, mode="fast", timeout=60):
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        p = self.postmaster()
        if p is not None:
            p.signal(sig)
            if not p.wait_gone(timeout):
                p.signal(signal.SIGKILL)
                p.wait_gone(10)
        self.lab.event(self, "pg_stop", "PostgreSQL on %s stopped (%s)" % (self.name, mode))

    def start_repmgrd(self):
        rdir = self.dir / "repmgr"
        rdir.mkdir(mode=0o755, exist_ok=True)
        shutil.chown(rdir, PG_USER, PG_USER)
        log = rdir / "repmgrd.log"
        self.lab.tailer.watch(log, parse_repmgrd, self.name)
        self.lab.spawn(self, "repmgrd", [PG_BIN / "repmgrd", "-f", self.dir / "repmgr.conf",
                                         "--daemonize=false"], self.dir / "repmgrd.out", user=PG_USER)
        wait_for(lambda: (log.exists() and "monitoring" in log.read_text(errors="replace"))
                 or self._died("repmgrd", log),
                 30, 0.1, "%s: repmgrd monitoring" % self.name)

    # -- pgbouncer, pgtrack-notify, pgtrackd, keepalived --------------------------------

    def start_pgbouncer(self):
        self.lab.spawn(self, "pgbouncer", [PGBOUNCER, self.bouncer_dir / "pgbouncer.ini"],
                       self.bouncer_dir / "pgbouncer.log", user=PG_USER)
        wait_for(lambda: self.bouncer_databases() is not None or self._died("pgbouncer", self.bouncer_dir / "pgbouncer.log"),
                 20, 0.1, "%s: pgbouncer admin console" % self.name)

    def bouncer_databases(self):
        """{name: row} from SHOW DATABASES on the admin console (unix socket)."""
        import psycopg
        try:
            with psycopg.connect(host=str(self.sock), port=BOUNCER_PORT, dbname="pgbouncer",
                                 user=ADMIN_USER, autocommit=True, connect_timeout=2) as conn:
                cur = conn.execute("SHOW DATABASES", prepare=False)
                names = [d.name for d in cur.description]
                return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
        except Exception:
            return None

    def bouncer_serving(self):
        """True if appdb is enabled and not paused, False if fenced, None if unknown."""
        dbs = self.bouncer_databases()
        if dbs is None or APPDB not in dbs:
            return None
        r = dbs[APPDB]
        return int(r.get("disabled", 0)) == 0 and int(r.get("paused", 0)) == 0

    def start_notify(self):
        log = self.dir / "pgtrack-notify.log"
        self.lab.spawn(self, "pgtrack-notify", [self.lab.notify_bin, "-f", self.dir / "pgtrack-notify.conf", "-l"], log)
        self.lab.tailer.watch(log, parse_notify, self.name)
        wait_for(lambda: self.fifo.exists() or self._died("pgtrack-notify", log), 10,
                 what="%s: notify FIFO" % self.name)

    def start_trackd(self):
        log = self.dir / "pgtrackd.log"
        argv = [PYTHON, HERE / "lifeline.py", LIFELINE_IF,
                self.lab.trackd_bin, "-f", self.dir / "pgtrackd.conf", "-l", "-v"]
        self.lab.spawn(self, "pgtrackd", argv, log)
        self.lab.tailer.watch(log, parse_trackd, self.name)
        self.lab.tailer.watch_value(self.track_file, self.name)
        self.lab.event(self, "trackd_start", "pgtrackd started on %s" % self.name)

    def kill_trackd(self, sig=signal.SIGKILL):
        p = self.proc("pgtrackd")
        if p is None or not p.alive():
            raise LabError("%s: pgtrackd does not run" % self.name)
        t = time.time()
        p.signal(sig)
        self.lab.event(self, "trackd_kill", "signal %d to pgtrackd on %s" % (sig, self.name), t=t)
        p.wait_gone(10)
        return t

    def track_value(self):
        return read_int(self.track_file)

    def start_keepalived(self):
        log = self.dir / "keepalived.log"
        argv = [KEEPALIVED, "-n", "-l", "-D", "-f", self.dir / "keepalived.conf",
                "-p", self.dir / "keepalived.pid", "-r", self.dir / "keepalived-vrrp.pid",
                "-c", self.dir / "keepalived-checkers.pid"]
        self.lab.spawn(self, "keepalived", argv, log)
        self.lab.tailer.watch(log, parse_keepalived, self.name)
        self.lab.event(self, "ka_start", "keepalived started on %s" % self.name)

    def stop_keepalived(self, timeout=10):
        p = self.proc("keepalived")
        if p is not None and p.alive():
            p.signal(signal.SIGTERM)
            if not p.wait_gone(timeout):
                p.signal(signal.SIGKILL)
                p.wait_gone(5)
        # its VRRP child, if the parent was killed hard
        for name in ("keepalived-vrrp.pid", "keepalived-checkers.pid"):
            try:
                pid = int((self.dir / name).read_text().strip())
            except (OSError, ValueError):
                continue
            if pid in netns_pids(self.ns):
                signal_pid(pid, signal.SIGKILL)
        self.lab.event(self, "ka_stop", "keepalived stopped on %s" % self.name)

    def restart_keepalived(self):
        self.stop_keepalived()
        self.start_keepalived()

    def has_vip(self):
        p = run(["ip", "-n", self.ns, "-4", "-o", "addr", "show", "dev", "eth0"], check=False, timeout=10)
        return (" %s/" % VIP) in p.stdout

    # -- links -------------------------------------------------------------------

    def veth_down(self):
        """Take the bridge end of this node's veth down: the node loses carrier."""
        run(["ip", "-n", self.lab.br_ns, "link", "set", self.name, "down"])
        self.lab.event(self, "veth_down", "veth of %s down (bridge side)" % self.name)

    def veth_up(self):
        run(["ip", "-n", self.lab.br_ns, "link", "set", self.name, "up"])
        self.lab.event(self, "veth_up", "veth of %s up" % self.name)

    def isolate(self):
        """Detach the node's port from the bridge: its link stays up, but no
        packet reaches the other nodes or the client (a partition)."""
        run(["ip", "-n", self.lab.br_ns, "link", "set", self.name, "nomaster"])
        self.lab.event(self, "isolate", "%s cut off from the bridge" % self.name)

    def rejoin(self):
        run(["ip", "-n", self.lab.br_ns, "link", "set", self.name, "master", "br0"])
        self.lab.event(self, "rejoin", "%s attached to the bridge again" % self.name)


def node_ip(k, n):
    """Node 1 gets the highest address (see the module docstring)."""
    return "%s.%d" % (SUBNET, 10 + n + 1 - k)


# ---------------------------------------------------------------------------
# configuration files

def postgresql_conf_extra(repmgr=False):
    return ("shared_preload_libraries = 'repmgr'\n" if repmgr else "") + """
# ---- labkit ----
port = %d
wal_level = replica
hot_standby = on
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
wal_retrieve_retry_interval = '200ms'
shared_buffers = '32MB'
max_connections = 60
synchronous_commit = on
logging_collector = off
log_line_prefix = '%%m [%%p] '
log_timezone = 'UTC'
include_if_exists = 'node.conf'
""" % PG_PORT


PG_HBA = """# labkit: trust inside the lab subnet only
local   all           all                 trust
local   replication   all                 trust
host    all           all   %s.0/%d   trust
host    replication   all   %s.0/%d   trust
""" % (SUBNET, PREFIXLEN, SUBNET, PREFIXLEN)


def pgbouncer_ini(node, logfile=False):
    return """;; labkit: pgbouncer for %(name)s, fenced by pgtrack-notify unless MASTER
[databases]
%%include %(bdir)s/databases.ini

[pgbouncer]
listen_addr = *
listen_port = %(bport)d
unix_socket_dir = %(sock)s
pidfile = %(bdir)s/pgbouncer.pid
auth_type = trust
auth_file = %(bdir)s/userlist.txt
admin_users = %(admin)s
pool_mode = transaction
max_client_conn = 300
default_pool_size = 20
; a client that logged in during pgtrack-notify's hold waits this long after RESUME
server_login_retry = 0.05
ignore_startup_parameters = extra_float_digits
""" % dict(name=node.name, bdir=node.bouncer_dir, sock=node.sock, bport=BOUNCER_PORT, admin=ADMIN_USER) + \
        ("logfile = %s/pgbouncer.log\n" % node.bouncer_dir if logfile else "")


def databases_template(node):
    return ("; Written by pgtrack-notify from %s/databases.tmpl.\n"
            "%s = host=%s port=%d dbname=%s\n" % (node.dir, APPDB, node.sock, PG_PORT, APPDB))


def notify_conf(node):
    return """; labkit: pgtrack-notify for %(name)s
[notify]
fifo = %(fifo)s
fifo_owner = root
instance = %(inst)s
vip = %(vip)s
reconcile_interval = 2s

[pgbouncer]
host = %(sock)s
port = %(bport)d
user = %(admin)s
connect_timeout = 1s
command_timeout = 2s
databases = %(db)s
databases_file = %(bdir)s/databases.ini
databases_template = %(dir)s/databases.tmpl
retry_max = 1s

[postgres]
host = %(sock)s
port = %(pgport)d
user = %(pguser)s
dbname = postgres
hold_poll = 20ms
hold_timeout = 30s
""" % dict(name=node.name, fifo=node.fifo, inst=INSTANCE, vip=VIP, sock=node.sock, bport=BOUNCER_PORT,
           admin=ADMIN_USER, db=APPDB, bdir=node.bouncer_dir, dir=node.dir, pgport=PG_PORT,
           pguser=PG_USER)


def trackd_conf(node, interval):
    peers = "".join("peer.%s = %s\n" % (p.name, p.ip) for p in node.peers())
    return """; labkit: pgtrackd for %(name)s
[global]
file_check_interval = 200ms

[track main]
file = %(file)s
host = %(sock)s
port = %(port)d
dbname = postgres
user = %(user)s
application_name = pgtrackd
; the default values (primary 54, standby 53 minus its WAL rank) on keepalived's base
base_priority = %(base)d
node = %(name)s
connect_timeout = 1s
interval = %(interval)dms
timeout = 1s
rise = 2
fall = 2
accept_interval = 1s
%(peers)s""" % dict(name=node.name, file=node.track_file, sock=node.sock, port=PG_PORT, user=PG_USER,
                    interval=interval, peers=peers, base=BASE_PRIORITY)


def repmgr_conf(node):
    conf = node.dir / "repmgr.conf"
    return """# labkit: repmgr for %(name)s
node_id=%(k)d
node_name='%(name)s'
conninfo='host=%(ip)s port=%(port)d user=repmgr dbname=repmgr connect_timeout=2'
data_directory='%(data)s'
pg_bindir='%(bindir)s'
use_replication_slots=false
failover='automatic'
promote_command='%(bindir)s/repmgr standby promote -f %(conf)s --log-to-file'
follow_command='%(bindir)s/repmgr standby follow -f %(conf)s --log-to-file --upstream-node-id=%%n'
service_restart_command='%(bindir)s/pg_ctl -D %(data)s -l %(dir)s/postgresql.log -w -t 60 -m fast restart'
monitor_interval_secs=1
reconnect_attempts=2
reconnect_interval=1
primary_notification_timeout=10
standby_reconnect_timeout=60
log_level='INFO'
log_file='%(dir)s/repmgr/repmgrd.log'
repmgrd_pid_file='%(dir)s/repmgr/repmgrd.pid'
""" % dict(name=node.name, k=node.k, ip=node.ip, port=PG_PORT, data=node.data, bindir=PG_BIN, conf=conf,
           dir=node.dir)


def keepalived_conf(node):
    peers = "".join("        %s\n" % p.ip for p in node.peers())
    return """# labkit: keepalived for %(name)s (lab %(id)s)
global_defs {
    # script_user first: see examples/keepalived-notify.conf
    script_user root
    enable_script_security
    notify_fifo %(fifo)s
    router_id %(ns)s
    # pgtrackd0 (below) disappears whenever pgtrackd dies
    dynamic_interfaces
}

track_file pgtrackd_main {
    file %(track)s
    weight 1
}

# In production, a dead pgtrackd is caught by
#     vrrp_track_process pgtrackd_running { process pgtrackd weight 0 }
# (examples/keepalived-3node.conf). That needs the kernel's process-events
# connector, which exists only in the initial network namespace: in this
# lab keepalived would never see pgtrackd exit. Instead pgtrackd runs
# holding the TAP interface %(lifeline)s (examples/lab/lifeline.py), which
# the kernel deletes the moment pgtrackd dies: same effect, dead tracker =
# FAULT, nothing forked.

vrrp_instance %(inst)s {
    state BACKUP
    interface eth0
    virtual_router_id %(vrid)d
    # pgtrackd's layout: primary 254, standbys 253 down (pgtrackd(8))
    priority %(base)d
    advert_int 1
    unicast_src_ip %(ip)s
    unicast_peer {
%(peers)s    }
    virtual_ipaddress {
        %(vip)s/%(plen)d dev eth0
    }
    track_file {
        pgtrackd_main
    }
    track_interface {
        %(lifeline)s
    }
}
""" % dict(name=node.name, id=node.lab.id, fifo=node.fifo, ns=node.ns, track=node.track_file,
           lifeline=LIFELINE_IF, inst=INSTANCE, vrid=VRID, ip=node.ip, peers=peers, vip=VIP,
           plen=PREFIXLEN, base=BASE_PRIORITY)


# -- mode classic: keepalived's shell checks and notify scripts, no pgtrackd ----------------

def classic_keepalived_conf(node):
    peers = "".join("        %s\n" % p.ip for p in node.peers())
    return """# labkit: keepalived for %(name)s (lab %(id)s), the CLASSIC configuration:
# shell checks every %(iv)d s and notify scripts, no pgtrackd, no pgtrack-notify
global_defs {
    script_user root
    enable_script_security
    router_id %(ns)s
}

vrrp_script chk_pg_isready {
    script "%(bindir)s/pg_isready -h %(sock)s -p %(port)d -U %(user)s -q"
    interval %(iv)d
    weight %(w1)d
}

# fails unless psql -tAc 'SELECT pg_is_in_recovery()' prints f
vrrp_script chk_pg_primary {
    script "%(dir)s/chk_pg_primary.sh"
    interval %(iv)d
    weight %(w2)d
}

vrrp_instance %(inst)s {
    state BACKUP
    interface eth0
    virtual_router_id %(vrid)d
    priority 100
    advert_int 1
    unicast_src_ip %(ip)s
    unicast_peer {
%(peers)s    }
    virtual_ipaddress {
        %(vip)s/%(plen)d dev eth0
    }
    track_script {
        chk_pg_isready
        chk_pg_primary
    }
    notify_master "%(dir)s/notify_pgbouncer.sh MASTER"
    notify_backup "%(dir)s/notify_pgbouncer.sh BACKUP"
}
""" % dict(name=node.name, id=node.lab.id, ns=node.ns, iv=CLASSIC_INTERVAL, bindir=PG_BIN, sock=node.sock,
           port=PG_PORT, user=PG_USER, w1=CLASSIC_WEIGHT_ISREADY, w2=CLASSIC_WEIGHT_ROLE, dir=node.dir,
           inst=INSTANCE, vrid=VRID, ip=node.ip, peers=peers, vip=VIP, plen=PREFIXLEN)


def classic_role_check(node):
    return """#!/bin/sh
# labkit, mode classic: keepalived vrrp_script, succeeds only on a primary
r=$(%(bindir)s/psql -X -h %(sock)s -p %(port)d -U %(user)s -d postgres -tAc 'SELECT pg_is_in_recovery()' 2>/dev/null)
[ "$r" = f ]
""" % dict(bindir=PG_BIN, sock=node.sock, port=PG_PORT, user=PG_USER)


def classic_notify_script(node):
    return """#!/bin/bash
# labkit, mode classic: keepalived notify script for pgbouncer, the classic way.
#   notify_master "$0 MASTER": install the databases file, restart pgbouncer
#   notify_backup "$0 BACKUP": stop pgbouncer
# stop = SIGINT to the PID in pgbouncer's pidfile and wait for the exit (as
# systemctl stop with Debian's unit, KillSignal=SIGINT, TimeoutStopSec=90s);
# start = as postgres, daemonized.

STATE=$1
PIDFILE=%(bdir)s/pgbouncer.pid
CONF=%(bdir)s/pgbouncer.ini
DBFILE=%(bdir)s/databases.ini
TEMPLATE=%(dir)s/databases.tmpl
LOG=%(dir)s/notify-classic.log

log() {
    echo "$(date +%%s.%%N) classic-notify: $STATE: $*" >> "$LOG"
}

# running PID: a process that exists and is not a zombie
running() {
    local line st
    { read -r line < "/proc/$1/stat"; } 2>/dev/null || return 1
    st=${line##*) }
    [ "${st%%%% *}" != Z ]
}

stop_pgbouncer() {
    local pid i
    [ -r "$PIDFILE" ] || return 0
    read -r pid < "$PIDFILE" || return 0
    running "$pid" || return 0
    kill -INT "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 9000; i++)); do
        if ! running "$pid"; then
            log "pgbouncer stopped (PID $pid)"
            return 0
        fi
        sleep 0.01
    done
    kill -KILL "$pid" 2>/dev/null
    log "pgbouncer stopped (PID $pid, SIGKILL after 90 s)"
}

start_pgbouncer() {
    if runuser -u %(user)s -- %(pgbouncer)s -d -q "$CONF"; then
        log "pgbouncer started"
    else
        log "pgbouncer failed to start"
    fi
}

log "notify script started"
case "$STATE" in
    MASTER)
        cp "$TEMPLATE" "$DBFILE.new" && chmod 644 "$DBFILE.new" && mv -f "$DBFILE.new" "$DBFILE"
        log "databases file installed"
        stop_pgbouncer
        start_pgbouncer
        ;;
    BACKUP|FAULT|STOP)
        stop_pgbouncer
        ;;
esac
""" % dict(bdir=node.bouncer_dir, dir=node.dir, user=PG_USER, pgbouncer=PGBOUNCER)


# ---------------------------------------------------------------------------
# the lab

class Lab:
    """N nodes, a bridge namespace and a client namespace. See the module
    docstring. Use as a context manager, or call up() and down()."""

    def __init__(self, nodes=3, promote="manual", promote_delay=1.0, build=None, sync=None,
                 interval_ms=200, log=None, keep=False, mode="pgtrackd"):
        if not 2 <= nodes <= MAX_NODES:
            raise LabError("nodes must be between 2 and %d" % MAX_NODES)
        if promote not in ("manual", "repmgr", "none"):
            raise LabError("promote must be manual, repmgr or none")
        if mode not in MODES:
            raise LabError("mode must be one of %s" % ", ".join(MODES))
        if mode == "classic" and promote == "repmgr":
            raise LabError("mode classic supports promote manual or none")
        self.mode = mode
        self.classic = mode == "classic"
        self.n = nodes
        self.promote_mode = promote
        self.promote_delay = float(promote_delay)
        self.sync = nodes >= 3 if sync is None else bool(sync)
        self.interval_ms = int(interval_ms)
        self.log = log or _stderr_log
        self.keep = keep
        build = Path(build) if build else default_build()
        self.trackd_bin = Path(os.environ.get("PGTRACKD", build / "src/trackd/pgtrackd"))
        self.notify_bin = Path(os.environ.get("PGTRACK_NOTIFY", build / "src/notify/pgtrack-notify"))
        self.id = os.urandom(3).hex()
        self.prefix = NS_PREFIX + self.id
        self.dir = BASE_DIR / (DIR_PREFIX + self.id)
        self.state_file = STATE_DIR / (self.id + ".json")
        self.br_ns = self.prefix + "-br"
        self.cl_ns = self.prefix + "-cl"
        self.nodes = [Node(self, k) for k in range(1, nodes + 1)]
        self.namespaces = [self.br_ns, self.cl_ns] + [n.ns for n in self.nodes]
        self.procs = {}
        self.events = EventLog()
        self.tailer = Tailer(self.events)
        self.monitors = []
        self.writers = []
        self.primary = None
        self.crash_times = {}
        self.auto_promote = promote == "manual"
        self.repmgr = promote == "repmgr"
        self._next_seq = 1
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._promoter = None
        self._created = False
        self._detached = False
        self._down = False
        self.created = time.time()

    # -- context manager -------------------------------------------------------

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        if not self.keep:
            self.down()
        else:
            self.detach()
        return False

    def node(self, name_or_k):
        if isinstance(name_or_k, Node):
            return name_or_k
        if isinstance(name_or_k, int):
            return self.nodes[name_or_k - 1]
        for n in self.nodes:
            if n.name == name_or_k:
                return n
        raise LabError("no node %r" % (name_or_k,))

    # -- bookkeeping -------------------------------------------------------------

    def event(self, node, kind, text, t=None, **fields):
        return self.events.add(time.time() if t is None else t, node.name if node else None,
                               "lab", kind, text, **fields)

    def state(self):
        me = proc_stat(os.getpid())
        return {
            "id": self.id, "prefix": self.prefix, "namespaces": self.namespaces, "mode": self.mode,
            "dir": str(self.dir), "created": self.created, "keep": self.keep,
            "owner": None if self.keep and self._detached else {"pid": os.getpid(), "start": me[1] if me else None},
            "nodes": {n.name: {"ns": n.ns, "ip": n.ip, "dir": str(n.dir)} for n in self.nodes},
            "client": {"ns": self.cl_ns, "ip": CLIENT_IP}, "vip": VIP,
            "primary": self.primary.name if self.primary else None,
            "procs": {k: p.to_json() for k, p in self.procs.items()},
        }

    def save_state(self):
        with self._lock:
            STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_text(self.state_file, json.dumps(self.state(), indent=1) + "\n", 0o600)

    def spawn(self, node, what, argv, log, user=None):
        """Start a daemon inside node's namespace (ip netns exec execs it:
        the PID is the daemon's), its output appended to log."""
        key = "%s/%s" % (node.name, what)
        old = self.procs.get(key)
        if old is not None and old.alive():
            raise LabError("%s already runs (PID %d)" % (key, old.pid))
        cmd = node.exec_argv(argv, user)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "TZ": os.environ.get("TZ", "")}
        if not env["TZ"]:
            del env["TZ"]
        with open(log, "ab") as logf:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env,
                                     cwd=str(node.dir), close_fds=True)
        p = Proc(key, popen.pid, popen)
        with self._lock:
            self.procs[key] = p
            self.save_state()
        return p

    # -- up ------------------------------------------------------------------------

    def _preflight(self):
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, PostgreSQL as postgres)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise LabError("psycopg cannot be imported by %s: run the lab with %s (Debian's python3-psycopg)"
                           % (sys.executable, PYTHON))
        progs = [PG_BIN / "postgres", PG_BIN / "initdb", PG_BIN / "pg_basebackup", Path(PGBOUNCER),
                 Path(KEEPALIVED)]
        if self.classic:
            progs += [PG_BIN / "pg_isready", PG_BIN / "psql"]
        else:
            progs = [self.trackd_bin, self.notify_bin] + progs
        if self.repmgr:
            progs += [PG_BIN / "repmgr", PG_BIN / "repmgrd"]
        missing = [str(p) for p in progs if not os.access(p, os.X_OK)]
        if missing:
            raise LabError("missing programs: %s (tests/install-deps; ninja -C build)" % ", ".join(missing))
        for tool in ("ip", "setpriv") + (("runuser",) if self.classic else ()):
            if not shutil.which(tool):
                raise LabError("%s not found" % tool)
        if not self.classic and not os.path.exists("/dev/net/tun"):
            raise LabError("/dev/net/tun is missing (needed for the pgtrackd lifeline)")
        if os.environ.get("PGTRACKD_LAB_SKIP_SUBNET_CHECK") != "1":
            r = run(["ip", "-4", "-o", "addr", "show"], check=False, timeout=10).stdout + \
                run(["ip", "-4", "route", "show"], check=False, timeout=10).stdout
            if (SUBNET + ".") in r:
                raise LabError("the root namespace already has an address or route in %s.0/%d: "
                               "refusing to build a lab that would shadow it" % (SUBNET, PREFIXLEN))

    def up(self):
        self._preflight()
        t0 = time.monotonic()
        self.log("lab %s: %d nodes, namespaces %s-*, directory %s" % (self.id, self.n, self.prefix, self.dir))
        self._created = True
        self.save_state()          # before anything exists, so cleanup finds it
        self.dir.mkdir(mode=0o755)
        self.tailer.start()
        self._network()
        self._postgres()
        self._daemons()
        self.log("lab %s: up in %.1fs; VIP %s on %s" % (self.id, time.monotonic() - t0, VIP, self.primary.name))
        if self.auto_promote:
            self._promoter = threading.Thread(target=self._promote_loop, daemon=True, name="lab-promoter")
            self._promoter.start()
        elif self.repmgr:
            self._promoter = threading.Thread(target=self._follow_loop, daemon=True, name="lab-follower")
            self._promoter.start()
        return self

    def _network(self):
        self.log("network: namespaces, bridge br0 in %s, veth pairs, %s.0/%d" % (self.br_ns, SUBNET, PREFIXLEN))
        for ns in self.namespaces:
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"])
        br = self.br_ns
        run(["ip", "-n", br, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", br, "link", "set", "br0", "up"])
        ends = [(n.name, n.ns, n.ip) for n in self.nodes] + [("cl", self.cl_ns, CLIENT_IP)]
        for port, ns, ip in ends:
            run(["ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "-n", br, "link", "set", port, "master", "br0"])
            run(["ip", "-n", br, "link", "set", port, "up"])
            run(["ip", "-n", ns, "addr", "add", "%s/%d" % (ip, PREFIXLEN), "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def _postgres(self):
        for n in self.nodes:
            n.dir.mkdir(mode=0o755)
            for d in (n.sock, n.bouncer_dir):
                d.mkdir(mode=0o755)
                shutil.chown(d, PG_USER, PG_USER)
            n.track_dir.mkdir(mode=0o755)
        p = self.nodes[0]
        self.log("postgres: initdb %s (primary, %s)" % (p.name, p.ip))
        p.data.mkdir(mode=0o700)
        shutil.chown(p.data, PG_USER, PG_USER)
        p.run([PG_BIN / "initdb", "-D", p.data, "-A", "trust", "-U", PG_USER, "-N"], user=PG_USER)
        with open(p.data / "postgresql.conf", "a") as f:
            f.write(postgresql_conf_extra(self.repmgr))
        write_text(p.data / "pg_hba.conf", PG_HBA, 0o600, PG_USER)
        p.write_node_conf(sync=False)
        p.start_postgres()
        p.pg("CREATE DATABASE " + APPDB)
        p.pg("CREATE TABLE lab_writes (seq bigint PRIMARY KEY, node text NOT NULL, "
             "at timestamptz NOT NULL DEFAULT clock_timestamp())", dbname=APPDB)
        if self.repmgr:
            p.pg("CREATE USER repmgr SUPERUSER")
            p.pg("CREATE DATABASE repmgr OWNER repmgr")
        self.primary = p
        for n in self.nodes[1:]:
            self.log("postgres: pg_basebackup -R of %s from %s over the lab network" % (n.name, p.name))
            n.data.mkdir(mode=0o700)
            shutil.chown(n.data, PG_USER, PG_USER)
            n.run([PG_BIN / "pg_basebackup", "-h", p.ip, "-p", PG_PORT, "-U", PG_USER, "-D", n.data,
                   "-R", "-X", "stream", "-c", "fast", "-N"], user=PG_USER, timeout=300)
            n.write_node_conf(sync=False)
            n.start_postgres()
        names = sorted(n.name for n in self.nodes[1:])
        wait_for(lambda: sorted(r[0] for r in p.pg("SELECT application_name FROM pg_stat_replication "
                                                   "WHERE state = 'streaming'")) == names,
                 30, 0.1, "replicas streaming from %s" % p.name)
        if self.sync:
            self.log("postgres: synchronous replication, synchronous_standby_names = 'ANY 1 (*)' on every node")
            for n in self.nodes:
                n.write_node_conf(sync=True)
                n.pg("SELECT pg_reload_conf()")
            wait_for(lambda: p.pg("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'")[0][0]
                     == self.n - 1, 15, 0.1, "quorum standbys")
        if self.repmgr:
            self._repmgr_setup()
        self.save_state()

    def _repmgr_setup(self):
        self.log("repmgr: register the nodes, start repmgrd (automatic failover) on each")
        for n in self.nodes:
            write_text(n.dir / "repmgr.conf", repmgr_conf(n), 0o644)
        p = self.nodes[0]
        p.run([PG_BIN / "repmgr", "-f", p.dir / "repmgr.conf", "primary", "register"], user=PG_USER)
        # standby register reads repmgr.nodes on the standby itself: wait
        # until each has replayed the primary's registration (a busy machine
        # was seen to lag behind it)
        lsn = p.pg("SELECT pg_current_wal_lsn()::text")[0][0]
        for n in self.nodes[1:]:
            wait_for(lambda: n.pg("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0],
                     30, 0.05, "%s replaying the primary's repmgr registration" % n.name)
            n.run([PG_BIN / "repmgr", "-f", n.dir / "repmgr.conf", "standby", "register"], user=PG_USER)
        for n in self.nodes:
            n.start_repmgrd()

    def _daemons(self):
        if self.classic:
            return self._daemons_classic()
        for n in self.nodes:
            write_text(n.bouncer_dir / "pgbouncer.ini", pgbouncer_ini(n), 0o644, PG_USER)
            write_text(n.bouncer_dir / "userlist.txt", '"%s" ""\n"%s" ""\n' % (PG_USER, ADMIN_USER), 0o640, PG_USER)
            write_text(n.dir / "databases.tmpl", databases_template(n))
            write_text(n.bouncer_dir / "databases.ini", databases_template(n), 0o644, PG_USER)
            write_text(n.dir / "pgtrack-notify.conf", notify_conf(n))
            write_text(n.dir / "pgtrackd.conf", trackd_conf(n, self.interval_ms))
            write_text(n.dir / "keepalived.conf", keepalived_conf(n))
            run([self.trackd_bin, "-t", "-f", n.dir / "pgtrackd.conf"])
            run([self.notify_bin, "-t", "-f", n.dir / "pgtrack-notify.conf"])
        self.log("daemons: pgbouncer, pgtrack-notify, pgtrackd on every node")
        for n in self.nodes:
            n.start_pgbouncer()
            n.start_notify()
            n.start_trackd()
        lowest = VALUE_STANDBY - (len(self.nodes) - 2) * RANK_STEP
        for n in self.nodes:
            if n is self.primary:
                wait_for(lambda: n.track_value() == VALUE_PRIMARY, 20, 0.05,
                         "%s: track file = %d" % (n.name, VALUE_PRIMARY))
            else:
                wait_for(lambda: lowest <= (n.track_value() or -999) <= VALUE_STANDBY, 20, 0.05,
                         "%s: track file = a standby rank, %d..%d" % (n.name, lowest, VALUE_STANDBY))
        self.monitors = [AddrMonitor(n, self.events) for n in self.nodes]
        self.log("daemons: keepalived on every node (unicast VRRP, %s, VIP %s)" % (INSTANCE, VIP))
        for n in self.nodes:
            n.start_keepalived()
        p = self.primary
        wait_for(lambda: self.vip_holders() == [p], 30, 0.1, "VIP on %s" % p.name)
        wait_for(lambda: p.bouncer_serving() is True and
                 all(n.bouncer_serving() is False for n in p.peers()),
                 30, 0.1, "pgbouncer serving on %s only" % p.name)
        r = wait_for(lambda: self.client_sql("SELECT current_setting('cluster_name')"), 20, 0.2,
                     "a query through %s:%d" % (VIP, BOUNCER_PORT))
        if r[0][0] != p.name:
            raise LabError("the VIP reached %s, expected %s" % (r[0][0], p.name))
        self.save_state()

    def _daemons_classic(self):
        """Mode classic: keepalived with the shell checks and the notify
        script, which starts pgbouncer (daemonized) on the MASTER only."""
        for n in self.nodes:
            write_text(n.bouncer_dir / "pgbouncer.ini", pgbouncer_ini(n, logfile=True), 0o644, PG_USER)
            write_text(n.bouncer_dir / "userlist.txt", '"%s" ""\n"%s" ""\n' % (PG_USER, ADMIN_USER), 0o640, PG_USER)
            write_text(n.dir / "databases.tmpl", databases_template(n))
            write_text(n.bouncer_dir / "databases.ini", databases_template(n), 0o644, PG_USER)
            write_text(n.dir / "chk_pg_primary.sh", classic_role_check(n), 0o755)
            write_text(n.dir / "notify_pgbouncer.sh", classic_notify_script(n), 0o755)
            write_text(n.dir / "keepalived.conf", classic_keepalived_conf(n))
            (n.dir / "notify-classic.log").touch()
            self.tailer.watch(n.dir / "notify-classic.log", parse_classic, n.name)
        self.monitors = [AddrMonitor(n, self.events) for n in self.nodes]
        self.log("daemons: keepalived on every node, classic configuration (vrrp_scripts every %d s, "
                 "notify scripts restarting pgbouncer; VIP %s)" % (CLASSIC_INTERVAL, VIP))
        for n in self.nodes:
            n.start_keepalived()
        p = self.primary
        wait_for(lambda: self.vip_holders() == [p], 30, 0.1, "VIP on %s" % p.name)
        wait_for(lambda: p.bouncer_serving() is True and
                 all(n.bouncer_serving() is None for n in p.peers()),
                 30, 0.1, "pgbouncer running on %s only" % p.name)
        r = wait_for(lambda: self.client_sql("SELECT current_setting('cluster_name')"), 20, 0.2,
                     "a query through %s:%d" % (VIP, BOUNCER_PORT))
        if r[0][0] != p.name:
            raise LabError("the VIP reached %s, expected %s" % (r[0][0], p.name))
        self.save_state()

    # -- observation ---------------------------------------------------------------------

    def vip_holders(self):
        return [n for n in self.nodes if n.has_vip()]

    def vip_holder(self):
        """The node holding the VIP, None if none does; LabError if several."""
        h = self.vip_holders()
        if len(h) > 1:
            raise LabError("several nodes hold the VIP: %s" % ", ".join(n.name for n in h))
        return h[0] if h else None

    def track_values(self):
        return {n.name: n.track_value() for n in self.nodes}

    def status(self):
        """A snapshot: per node PostgreSQL role, track value, VIP, pgbouncer."""
        out = {}
        for n in self.nodes:
            role = None
            if n.postmaster_alive():
                try:
                    role = "standby" if n.in_recovery() else "primary"
                except Exception:
                    role = "unreachable"
            else:
                role = "down"
            out[n.name] = {"ip": n.ip, "postgres": role, "track": n.track_value(), "vip": n.has_vip(),
                           "pgbouncer": {True: "serving", False: "fenced", None: "unknown"}[n.bouncer_serving()]}
        return out

    def wait_for(self, pred, timeout, interval=0.05, what="condition"):
        return wait_for(pred, timeout, interval, what)

    # -- the client namespace ----------------------------------------------------------------

    def client_argv(self, *args):
        return ["ip", "netns", "exec", self.cl_ns, PYTHON, str(HERE / "lab_client.py")] + [str(a) for a in args]

    def client_sql(self, query, timeout=15, host=VIP, port=BOUNCER_PORT):
        """Run one statement through VIP:6432 (or host:port, a lab address)
        from the client namespace; returns the rows, raises LabError with
        the error text."""
        p = run(self.client_argv("sql", "--host", host, "--port", port, "--query", query),
                timeout=timeout, check=False)
        for line in p.stdout.splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("ev") == "sql":
                if r["ok"]:
                    return r["rows"]
                raise LabError("through the VIP: %s" % r["err"])
        raise LabError("lab_client sql gave no answer (exit %d): %s" % (p.returncode, p.stderr.strip()[-500:]))

    def writer(self, interval=0.1, connect_timeout=2):
        """Start a client writing through VIP:6432, one INSERT per interval;
        each attempt waits at most connect_timeout seconds to connect."""
        w = Writer(self, interval, self._next_seq, connect_timeout)
        self._next_seq += 10000000      # a block of its own for each writer
        self.writers.append(w)
        return w

    def verify_writes(self, seqs, node=None):
        """The acknowledged sequence numbers missing on node (default: the
        current primary)."""
        node = node or self.primary
        seqs = sorted(set(seqs))
        rows = node.pg("SELECT seq FROM lab_writes WHERE seq = ANY(%s)", (seqs,), dbname=APPDB, timeout=10)
        present = {r[0] for r in rows}
        return [s for s in seqs if s not in present]

    # -- promotion ---------------------------------------------------------------------------------

    def _promote_loop(self):
        handled = set()
        while not self._stop.is_set():
            p = self.primary
            try:
                # mode classic has no track file: the postmaster alone
                if p is not None and (p.name, p.postmaster_pid()) not in handled \
                        and (self.classic or p.track_value() == VALUE_DOWN) and not p.postmaster_alive():
                    key = (p.name, p.postmaster_pid())
                    handled.add(key)
                    t = time.time()
                    self.event(p, "detect", "the lab sees %s down (%sno postmaster)"
                               % (p.name, "" if self.classic else "track file %d, " % VALUE_DOWN), t=t)
                    crash = self.crash_times.get(p.name)
                    base = crash if crash is not None and t - crash < 10 else t
                    if self._stop.wait(max(0.0, base + self.promote_delay - time.time())):
                        return
                    if self.auto_promote and self.primary is p:
                        try:
                            self.promote_best(old=p)
                        except Exception as e:
                            self.event(None, "promote_failed", "promotion failed: %s" % e)
                            self.log("lab: promotion failed: %s" % e)
            except Exception as e:  # keep watching
                self.log("lab: promoter: %s" % e)
            self._stop.wait(0.01)

    def _follow_loop(self):
        """repmgr mode: repmgrd promotes; the lab only notices which node
        became the primary (its pgtrackd writes VALUE_PRIMARY and it is not in
        recovery) once the one it knew is down."""
        while not self._stop.is_set():
            try:
                p = self.primary
                if p is not None and p.track_value() == VALUE_DOWN and not p.postmaster_alive():
                    for n in self.nodes:
                        if n is not p and n.track_value() == VALUE_PRIMARY and n.postmaster_alive() \
                                and not n.in_recovery():
                            self.primary = n
                            self.event(n, "new_primary", "the lab sees %s as the new primary" % n.name)
                            self.save_state()
                            break
            except Exception as e:  # keep watching
                self.log("lab: follower: %s" % e)
            self._stop.wait(0.05)

    def candidates(self, old=None):
        """Running standbys with their WAL positions, best first: highest
        received (or replayed) LSN, then the VIP holder, then lowest node."""
        holder = None
        try:
            holder = self.vip_holder()
        except LabError:
            pass
        out = []
        for n in self.nodes:
            if n is old or not n.postmaster_alive():
                continue
            try:
                rec, recv, replay = n.pg("SELECT pg_is_in_recovery(), "
                                         "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint, "
                                         "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")[0]
            except Exception:
                continue
            if rec:
                out.append({"node": n, "receive": recv, "replay": replay,
                            "lsn": max(recv or 0, replay or 0), "vip": n is holder})
        out.sort(key=lambda c: (-c["lsn"], not c["vip"], c["node"].k))
        return out

    def promote_best(self, old=None):
        cands = self.candidates(old)
        if not cands:
            raise LabError("no running standby to promote")
        return self.promote(cands[0]["node"], cands)

    def promote(self, node, cands=None):
        """pg_promote() on node, then point every other running standby at it."""
        node = self.node(node)
        detail = ", ".join("%s lsn %d%s" % (c["node"].name, c["lsn"], " (VIP)" if c["vip"] else "")
                           for c in cands) if cands else ""
        self.event(node, "promote_start", "pg_promote() on %s%s" % (node.name, " [%s]" % detail if detail else ""))
        ok = node.pg("SELECT pg_promote(true, 30)", timeout=35)[0][0]
        if not ok:
            raise LabError("pg_promote() on %s returned false" % node.name)
        self.event(node, "promote_done", "%s promoted" % node.name)
        old, self.primary = self.primary, node
        for n in self.nodes:
            if n is node or n is old or not n.postmaster_alive():
                continue
            try:
                if not n.in_recovery():
                    continue
                conninfo = "host=%s port=%d user=%s application_name=%s" % (node.ip, PG_PORT, PG_USER, n.name)
                n.pg("ALTER SYSTEM SET primary_conninfo = %s" % quote_literal(conninfo))
                n.pg("SELECT pg_reload_conf()")
                self.event(n, "repoint", "%s now follows %s" % (n.name, node.name))
            except Exception as e:
                self.event(n, "repoint_failed", "could not re-point %s: %s" % (n.name, e))
        self.save_state()
        return node

    def restart_as_primary(self, node):
        """Start a node's PostgreSQL as it is: a dead old primary comes back
        as a primary on its old timeline (the stale-primary case)."""
        node = self.node(node)
        if (node.data / "standby.signal").exists():
            raise LabError("%s has standby.signal: it would start as a standby" % node.name)
        self.event(node, "restart_primary", "%s restarted as a primary" % node.name)
        node.start_postgres()

    def rebuild_standby(self, node):
        """Throw away node's data directory and clone it again from the
        current primary (pg_basebackup -R over the lab network)."""
        node = self.node(node)
        if node is self.primary:
            raise LabError("%s is the primary" % node.name)
        if node.postmaster_alive():
            node.stop_postgres("immediate")
        shutil.rmtree(node.data)
        node.data.mkdir(mode=0o700)
        shutil.chown(node.data, PG_USER, PG_USER)
        node.run([PG_BIN / "pg_basebackup", "-h", self.primary.ip, "-p", PG_PORT, "-U", PG_USER,
                  "-D", node.data, "-R", "-X", "stream", "-c", "fast", "-N"], user=PG_USER, timeout=300)
        node.write_node_conf()
        node.start_postgres()
        self.event(node, "rebuilt", "%s rebuilt as a standby of %s" % (node.name, self.primary.name))

    # -- teardown ------------------------------------------------------------------------------------

    def _stop_threads(self):
        self._stop.set()
        for w in self.writers:
            try:
                w.stop()
            except Exception as e:
                self.log("lab: writer: %s" % e)
        if self._promoter is not None:
            self._promoter.join(5)
        for m in self.monitors:
            m.stop()
        self.monitors = []
        if self.tailer.is_alive():
            self.tailer.stop()

    def detach(self):
        """Leave the lab running (lab up --keep): stop this process's
        threads and monitors; `lab down ID` or cleanup removes it later."""
        self._stop_threads()
        self._detached = True
        self.save_state()
        self.log("lab %s left running: examples/lab/lab down %s" % (self.id, self.id))

    def down(self):
        if self._down or not self._created:
            return
        self._down = True
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) \
            if threading.current_thread() is threading.main_thread() else None
        try:
            self._stop_threads()
            teardown(self.state(), self.log, popens={p.pid: p.popen for p in self.procs.values()})
        finally:
            if old_int is not None:
                signal.signal(signal.SIGINT, old_int)


def quote_literal(s):
    return "'" + s.replace("'", "''") + "'"


class Writer:
    """lab_client.py write in the client namespace; attempts are collected
    as dicts: seq, t0, t1, ok, node or err."""

    def __init__(self, lab, interval, start_seq, connect_timeout=2):
        self.lab = lab
        self.attempts = []
        self.end = None
        self._lock = threading.Lock()
        self.started = threading.Event()
        self.proc = subprocess.Popen(lab.client_argv("write", "--host", VIP, "--port", BOUNCER_PORT,
                                                     "--interval", interval, "--start-seq", start_seq,
                                                     "--connect-timeout", connect_timeout,
                                                     # every attempt held for a whole connect_timeout
                                                     # still fits: none is skipped by the client itself
                                                     "--max-inflight",
                                                     int(connect_timeout / interval) + 20),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.thread = threading.Thread(target=self._read, daemon=True, name="lab-writer")
        self.thread.start()
        if not self.started.wait(10):
            self.stop()
            raise LabError("the client did not start: %s" % self.proc.stderr.read()[-500:])

    def _read(self):
        for line in self.proc.stdout:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("ev") == "start":
                self.started.set()
            elif r.get("ev") == "attempt":
                with self._lock:
                    self.attempts.append(r)
            elif r.get("ev") == "end":
                self.end = r

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.thread.join(5)

    def snapshot(self):
        with self._lock:
            return sorted(self.attempts, key=lambda a: a["seq"])

    def acked(self):
        return [a["seq"] for a in self.snapshot() if a["ok"]]

    def first_ok_after(self, t):
        """The first acknowledged attempt started at or after t."""
        oks = [a for a in self.snapshot() if a["ok"] and a["t0"] >= t]
        return min(oks, key=lambda a: a["t1"]) if oks else None

    def failed_between(self, t_from, t_to):
        return [a for a in self.snapshot() if not a["ok"] and t_from <= a["t0"] <= t_to]


# ---------------------------------------------------------------------------
# teardown and cleanup (also for labs of other, dead processes)

STOP_ORDER = ("keepalived", "repmgrd", "pgtrack-notify", "pgtrackd", "pgbouncer", "postgres")


def teardown(state, log=_stderr_log, popens=None):
    """Stop a lab's processes by PID, empty and delete its namespaces,
    remove its directory and state file. Every step runs even if an earlier
    one failed; returns the list of problems."""
    popens = popens or {}
    problems = []
    procs = state.get("procs", {})

    def reap():
        for pop in popens.values():
            if pop is not None:
                pop.poll()

    def live(items):
        reap()
        return [(k, v) for k, v in items if pid_alive(v["pid"], v.get("start"))]

    # 1. the recorded daemons, keepalived first so that it withdraws the VIP
    for what in STOP_ORDER:
        items = [(k, v) for k, v in procs.items() if k.endswith("/" + what)]
        sig = signal.SIGQUIT if what == "postgres" else signal.SIGTERM  # postgres: immediate shutdown
        for k, v in live(items):
            signal_pid(v["pid"], sig, v.get("start"))
        if what == "keepalived":
            deadline = time.monotonic() + 3
            while live(items) and time.monotonic() < deadline:
                time.sleep(0.05)
    # a postmaster started behind our back (repmgr standby follow): immediate shutdown
    for name, n in state.get("nodes", {}).items():
        try:
            pid = int((Path(n["dir"]) / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, KeyError):
            continue
        st = proc_stat(pid)
        if st and pid_alive(pid) and pid in netns_pids(n["ns"]):
            signal_pid(pid, signal.SIGQUIT, st[1])
            procs = dict(procs, **{"%s/postmaster" % name: {"pid": pid, "start": st[1]}})
    others = [(k, v) for k, v in procs.items() if not any(k.endswith("/" + w) for w in STOP_ORDER)]
    for k, v in live(others):
        signal_pid(v["pid"], signal.SIGTERM, v.get("start"))
    deadline = time.monotonic() + 5
    while live(list(procs.items())) and time.monotonic() < deadline:
        time.sleep(0.05)
    for k, v in live(list(procs.items())):
        signal_pid(v["pid"], signal.SIGKILL, v.get("start"))
        problems.append("%s (PID %d) needed SIGKILL" % (k, v["pid"]))
    # 2. whatever else still runs in the lab's namespaces (postgres backends,
    #    monitors, a crashed run's leftovers): by PID, from ip netns pids
    existing = set(netns_list())
    namespaces = [ns for ns in state.get("namespaces", []) if ns in existing]
    for attempt in range(50):
        pids = [pid for ns in namespaces for pid in netns_pids(ns) if pid != os.getpid()]
        reap()
        pids = [pid for pid in pids if pid_alive(pid)]
        if not pids:
            break
        for pid in pids:
            signal_pid(pid, signal.SIGKILL)
        time.sleep(0.1)
    else:
        problems.append("processes still in the lab namespaces: %s" % pids)
    # 3. namespaces
    for ns in namespaces:
        p = run(["ip", "netns", "del", ns], check=False, timeout=20)
        if p.returncode != 0:
            problems.append("ip netns del %s: %s" % (ns, p.stderr.strip()))
    # 4. directory and state file
    d = state.get("dir")
    if d and Path(d).parent == BASE_DIR and Path(d).name.startswith(DIR_PREFIX):
        shutil.rmtree(d, ignore_errors=True)
        if Path(d).exists():
            problems.append("could not remove %s" % d)
    sf = STATE_DIR / ("%s.json" % state["id"])
    try:
        sf.unlink()
    except FileNotFoundError:
        pass
    if problems:
        log("lab %s: teardown: %s" % (state["id"], "; ".join(problems)))
    else:
        log("lab %s: torn down" % state["id"])
    return problems


def load_states():
    out = []
    if STATE_DIR.is_dir():
        for f in sorted(STATE_DIR.glob("*.json")):
            try:
                out.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
    return out


def owner_alive(state):
    o = state.get("owner")
    return bool(o) and pid_alive(o.get("pid"), o.get("start"))


def down_by_id(lab_id, log=_stderr_log):
    f = STATE_DIR / ("%s.json" % lab_id)
    if not f.exists():
        raise LabError("no lab %s (no %s)" % (lab_id, f))
    return teardown(json.loads(f.read_text()), log)


def cleanup(log=_stderr_log, include_kept=False):
    """Remove the leftovers of labs whose owner process is gone: from their
    state files, then namespaces named pgtl-<6 hex>-* and directories
    /tmp/pgtrack-lab-<6 hex> that no state file explains. Labs whose owner
    still runs are left alone, and so are labs left with --keep unless
    include_kept. Returns the ids removed."""
    removed = []
    known = set()
    for st in load_states():
        known.add(st["id"])
        if owner_alive(st):
            log("lab %s: owner PID %d still runs, leaving it" % (st["id"], st["owner"]["pid"]))
            continue
        if st.get("keep") and not st.get("owner") and not include_kept:
            log("lab %s was left with --keep: 'lab down %s' removes it (or --cleanup --all)" % (st["id"], st["id"]))
            continue
        teardown(st, log)
        removed.append(st["id"])
    orphans = {}
    for ns in netns_list():
        m = NS_RE.match(ns)
        if m and m.group(1) not in known:
            orphans.setdefault(m.group(1), []).append(ns)
    if BASE_DIR.is_dir():
        for d in BASE_DIR.glob(DIR_PREFIX + "*"):
            i = d.name[len(DIR_PREFIX):]
            if re.fullmatch(r"[0-9a-f]{6}", i) and i not in known:
                orphans.setdefault(i, [])
    for i, nss in sorted(orphans.items()):
        log("lab %s: no state file; removing namespaces %s and %s" % (i, " ".join(nss) or "(none)",
                                                                     BASE_DIR / (DIR_PREFIX + i)))
        teardown({"id": i, "namespaces": nss, "dir": str(BASE_DIR / (DIR_PREFIX + i)), "procs": {}}, log)
        removed.append(i)
    return removed


def install_signal_handlers():
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt, so that the
    caller's finally/with tears the lab down."""
    def handler(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    # also when started with SIGINT ignored (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
