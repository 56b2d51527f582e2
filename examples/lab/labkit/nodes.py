"""One lab node in its network namespace: its processes (Proc), and Node:
PostgreSQL, repmgrd, pgbouncer, pgtrack-notify, pgtrackd and keepalived on
it, its VIP and its link."""

import shutil
import signal
import time
from pathlib import Path

from kit.files import write_file
from kit.netns import netns_pids
from kit.postgres import read_postmaster_pid
from kit.procs import pid_alive, proc_stat, signal_pid
from labkit.events import parse_keepalived, parse_notify, parse_pglog, parse_repmgrd, parse_trackd
from labkit.layout import (ADMIN_USER, APPDB, BOUNCER_PORT, HERE, KEEPALIVED, LabError, LIFELINE_IF,
                           PG_BIN, PG_PORT, PG_USER, PGBOUNCER, PYTHON, read_int, run, wait_for)
from labkit.network import node_ip, NodeLinks


class Proc:
    """A daemon the lab started: PID, start time (against PID reuse) and,
    when this process started it, its Popen (to reap it)."""

    def __init__(self, key, pid, popen=None):
        self.key = key
        self.pid = pid
        st = proc_stat(pid)
        self.start = st["start"] if st else None
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


class ClientSide:
    """The client namespace as a place to run a daemon (HAProxy, router
    haproxy): what Lab.spawn needs of a node."""

    name = "cl"

    def __init__(self, lab):
        self.lab = lab
        self.ns = lab.cl_ns
        self.dir = lab.dir / "cl"

    def exec_argv(self, argv, user=None):
        assert user is None
        return ["ip", "netns", "exec", self.ns] + [str(a) for a in argv]


class Node(NodeLinks):
    def __init__(self, lab, k):
        self.lab = lab
        self.k = k
        self.name = "n%d" % k
        self.ns = "%s-%s" % (lab.prefix, self.name)
        self.ip = node_ip(k, lab.n)
        self.dir = lab.dir / self.name
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.track_dir = lab.run_dir / self.name / "track"
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
            return read_postmaster_pid(self.data)
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
        write_file(self.data / "node.conf", text, 0o600, PG_USER)

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
        # -G: no syslog. The lab has no syslog daemon, and glibc's syslog()
        # then writes every line to /dev/console (keepalived opens it with
        # LOG_CONS): an open and a write per line, several of them between
        # reading the track file and removing the VIP. -l logs to stderr.
        argv = [KEEPALIVED, "-n", "-l", "-G", "-D", "-f", self.dir / "keepalived.conf",
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

    # -- links -------------------------------------------------------------------


