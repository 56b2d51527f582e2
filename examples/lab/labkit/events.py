"""The lab's events: the daemons' log lines parsed as they are written
(Tailer), the VIP seen coming and going (AddrMonitor), all in one EventLog."""

import datetime
import os
import re
import subprocess
import threading
import time

from labkit.layout import INSTANCE, read_int, stderr_log, VIP


def parse_local(stamp, fmt="%Y-%m-%dT%H:%M:%S.%f"):
    return datetime.datetime.strptime(stamp, fmt).timestamp()


def parse_utc(stamp):
    """'2026-11-26 02:53:57.123 UTC' (PostgreSQL %m, pgbouncer)."""
    d = datetime.datetime.strptime(stamp[:23], "%Y-%m-%d %H:%M:%S.%f")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


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


# "(N of FALL)", or a certain failure (the postmaster seen exiting): down at once
PROBE_FAIL_RE = re.compile(r'track "[^"]+": probe failed \((?:(\d+) of (\d+)|the server\'s process '
                           r'is gone: down at once, not after (\d+) failures)\): (.*)$')


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


HAPROXY_RE = re.compile(r"Server (\w+)/(\w+) is (UP|DOWN)\b")


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
        fall = int(f.group(2) or f.group(3))
        return dict(t=t, node=node, src="pgtrackd", kind="probe_failed", text=m.group(3),
                    n=int(f.group(1) or fall), fall=fall, certain=f.group(3) is not None,
                    reason=f.group(4))
    if m.group(2) == "debug":       # every probe with -v: not kept
        return None
    return dict(t=t, node=node, src="pgtrackd", kind=m.group(2), text=m.group(3))


def parse_haproxy(line, node, now):
    """HAProxy's warnings on standard error (-db) carry no time: the
    tailer's. Only a server going UP or DOWN is kept, as an event of that
    server's node."""
    m = HAPROXY_RE.search(line)
    if not m:
        return None
    return dict(t=now, node=m.group(2), src="haproxy", kind="server", backend=m.group(1),
                state=m.group(3), text="%s: %s %s" % (m.group(1), m.group(2), m.group(3)))


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
                stderr_log("lab: tailer: %r" % e)
            self._halt.wait(0.01)

    def stop(self):
        self._halt.set()
        if self.is_alive():
            self.join(2)
        self.poll_once()


# The VIP's watcher on SCHED_FIFO 49: its stamps are taken when it reads the
# kernel's message, and on normal scheduling that read waits for a CPU behind
# a crash's exiting backends (pgtrackd's write to the stamp: a median 13 ms
# on normal scheduling, 4 ms on this, in separate runs). Below keepalived's
# 50, so that it never delays keepalived's own work.
ADDR_MONITOR_RT_PRIORITY = 49


class AddrMonitor:
    """`ip -ts -n NS monitor address dev eth0`: VIP added/removed events,
    stamped by ip itself, on real-time scheduling."""

    def __init__(self, node, events):
        self.node = node
        self.events = events
        self.proc = subprocess.Popen(["chrt", "-f", str(ADDR_MONITOR_RT_PRIORITY),
                                      "ip", "-ts", "-n", node.ns, "monitor", "address", "dev", "eth0"],
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
