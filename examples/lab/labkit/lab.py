"""Lab: a whole lab, brought up, watched, failed over and taken down."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from kit.files import write_file
from kit.procs import proc_stat
from labkit.bringup import LabBringUp
from labkit.events import EventLog, Tailer
from labkit.failover import LabFailover
from labkit.layout import (APPDB, BASE_DIR, BOUNCER_PORT, CLIENT_IP, default_build, DIR_PREFIX, HERE,
                           LabError, MAX_NODES, MODES, NS_PREFIX, PYTHON, ROUTER_READ_PORT, ROUTER_WRITE_PORT,
                           ROUTERS, run, RUN_BASE_DIR, STATE_DIR, stderr_log, VIP, wait_for)
from labkit.nodes import ClientSide, Node, Proc
from labkit.router import LabRouter
from labkit.teardown import teardown
from labkit.writer import Writer


class Lab(LabBringUp, LabFailover, LabRouter):
    """N nodes, a bridge namespace and a client namespace. See the module
    docstring. Use as a context manager, or call up() and down()."""

    def __init__(self, nodes=3, promote="manual", promote_delay=1.0, build=None, sync=None,
                 interval_ms=200, log=None, keep=False, mode="pgtrackd", hold_timeout="30s", router=None,
                 vrrp_rt=True, repmgr_pace=(1, 2, 1), trackd_rt=True):
        if not 2 <= nodes <= MAX_NODES:
            raise LabError("nodes must be between 2 and %d" % MAX_NODES)
        if promote not in ("manual", "repmgr", "none"):
            raise LabError("promote must be manual, repmgr or none")
        if mode not in MODES:
            raise LabError("mode must be one of %s" % ", ".join(MODES))
        if mode == "classic" and promote == "repmgr":
            raise LabError("mode classic supports promote manual or none")
        if router not in ROUTERS:
            raise LabError("router must be haproxy or None (the VIP only)")
        if router and mode == "classic":
            raise LabError("router haproxy needs pgtrackd's health API: mode pgtrackd")
        # router "haproxy": HAProxy in the client namespace routes to the
        # nodes by their pgtrackd's /primary and /replica?lag=16MB, besides
        # the VIP (keepalived still runs)
        self.router = router
        # keepalived's VRRP process with real-time scheduling (vrrp_rt_priority 50,
        # vrrp_rlimit_rttime 1000000; README, "keepalived's VRRP process"), as
        # examples/keepalived-*.conf; mode pgtrackd (the classic configuration has none)
        self.vrrp_rt = bool(vrrp_rt)
        # pgtrackd's realtime_priority = 40 (its default: SCHED_RR, RLIMIT_RTTIME 1 s;
        # pgtrackd(8), SCHEDULING), or 0: on normal scheduling a crash's detection waits
        # for a CPU behind the crash's own exiting backends
        self.trackd_rt = bool(trackd_rt)
        # promote="repmgr": repmgrd's monitor_interval_secs, reconnect_attempts and
        # reconnect_interval (repmgr's own defaults are 2, 6, 10: a minute)
        self.repmgr_pace = tuple(int(x) for x in repmgr_pace)
        if len(self.repmgr_pace) != 3 or not all(1 <= x <= 60 for x in self.repmgr_pace):
            raise LabError("repmgr_pace: three whole numbers of 1..60 (monitor interval, "
                           "reconnect attempts, reconnect interval)")
        self.mode = mode
        self.classic = mode == "classic"
        self.n = nodes
        self.promote_mode = promote
        self.promote_delay = float(promote_delay)
        # sync=True: a fixed synchronous_standby_names = 'ANY 1 (*)' in postgresql.conf
        # (mode classic, three nodes and more, by default). Otherwise in mode pgtrackd
        # pgtrackd makes replication synchronous while a standby streams and relaxes it
        # when none is there (sync_standby_names), and a promotion starts relaxed.
        self.sync = (nodes >= 3 and mode == "classic") if sync is None else bool(sync)
        self.sync_policy = not self.sync and not self.classic
        self.interval_ms = int(interval_ms)
        self.hold_timeout = hold_timeout    # pgtrack-notify's [postgres] hold_timeout
        self.log = log or stderr_log
        self.keep = keep
        build = Path(build) if build else default_build()
        self.trackd_bin = Path(os.environ.get("PGTRACKD", build / "src/trackd/pgtrackd"))
        self.notify_bin = Path(os.environ.get("PGTRACK_NOTIFY", build / "src/notify/pgtrack-notify"))
        self.id = os.urandom(3).hex()
        self.prefix = NS_PREFIX + self.id
        self.dir = BASE_DIR / (DIR_PREFIX + self.id)
        self.run_dir = RUN_BASE_DIR / (DIR_PREFIX + self.id)     # the track files, on tmpfs
        self.state_file = STATE_DIR / (self.id + ".json")
        self.br_ns = self.prefix + "-br"
        self.cl_ns = self.prefix + "-cl"
        self.nodes = [Node(self, k) for k in range(1, nodes + 1)]
        self.client = ClientSide(self)
        self.haproxy = None             # kit.haproxy.HAProxy of router haproxy (its stats socket)
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
            "dir": str(self.dir), "run_dir": str(self.run_dir), "created": self.created, "keep": self.keep,
            "owner": None if self.keep and self._detached else {"pid": os.getpid(), "start": me["start"] if me else None},
            "nodes": {n.name: {"ns": n.ns, "ip": n.ip, "dir": str(n.dir)} for n in self.nodes},
            "client": {"ns": self.cl_ns, "ip": CLIENT_IP}, "vip": VIP, "router": self.router,
            "primary": self.primary.name if self.primary else None,
            "procs": {k: p.to_json() for k, p in self.procs.items()},
        }

    def save_state(self):
        with self._lock:
            STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_file(self.state_file, json.dumps(self.state(), indent=1) + "\n", 0o600)

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

    def target(self, via="vip", read=False):
        """(host, port) a client in the client namespace connects to: the
        VIP's pgbouncer, or (via "router") HAProxy's write or read port."""
        if via == "vip":
            return VIP, BOUNCER_PORT
        if via != "router" or not self.router:
            raise LabError("no router %r in this lab (Lab(router='haproxy'))" % via)
        return CLIENT_IP, ROUTER_READ_PORT if read else ROUTER_WRITE_PORT

    def writer(self, interval=0.1, connect_timeout=2, via="vip"):
        """Start a client writing through VIP:6432 (or, via "router",
        HAProxy's write port), one INSERT per interval; each attempt waits
        at most connect_timeout seconds to connect."""
        w = Writer(self, interval, self._next_seq, connect_timeout, *self.target(via))
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
