"""Real PostgreSQL servers and a real pgtrackd for the integration tests.

Everything runs from Debian's packages in temporary directories:

- PostgreSQL 15 as the ``postgres`` OS user (it refuses root), with its unix
  socket in a private directory and TCP only on 127.0.0.1;
- pgtrackd as root, in the foreground, logging to a file.

Every process started here is stopped by PID; nothing is found by name.
"""

import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
PORT_LOCK_DIR = "/tmp/pgtrackd-it-ports"

# Short, test-friendly timings for every track (spec names, spec units).
FAST_TRACK = {
    "interval": "200ms",
    "timeout": "1s",
    "connect_timeout": "1s",
    "rise": "2",
    "fall": "2",
    "accept_interval": "1s",
}
FAST_GLOBAL = {"file_check_interval": "200ms"}
# The values the tests outside test_trackd.py and test_guard.py were written
# for: the layout on base priority 100 that came before pgtrackd's defaults
# for base 200 (primary 54, standby 53 minus its rank, lagging -100).
# test_trackd.py and test_guard.py test the defaults (legacy_values=False).
LEGACY_VALUES = {"value_primary": "100", "value_standby": "0", "value_lagging": "-50",
                 "base_priority": "100"}

LOG_LINE_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} pgtrackd: (error|warning|notice|info|debug): ")


def _pg_ids():
    pw = pwd.getpwnam(PG_USER)
    return pw.pw_uid, pw.pw_gid


def chown_tree(path):
    uid, gid = _pg_ids()
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def run_as_postgres(argv, timeout=60, check=True):
    """Run a PostgreSQL client/server binary as the postgres user."""
    cmd = ["runuser", "-u", PG_USER, "--"] + argv
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=env,
                          cwd="/", text=True)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(argv), proc.returncode, proc.stdout))
    return proc


# --------------------------------------------------------------------------
# ports

class PortReservation:
    """A 127.0.0.1 port nobody else listens on, locked against parallel runs.

    The port comes from the kernel (bind to port 0); a flock on
    /tmp/pgtrackd-it-ports/PORT keeps other test runs from picking it while
    we hold it.
    """

    def __init__(self):
        os.makedirs(PORT_LOCK_DIR, mode=0o1777, exist_ok=True)
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            finally:
                s.close()
            fd = os.open(os.path.join(PORT_LOCK_DIR, str(port)), os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.port = port
            self._fd = fd
            return
        raise RuntimeError("could not reserve a free port")

    def release(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --------------------------------------------------------------------------
# processes

def _proc_stat(pid):
    """(ppid, starttime) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); ppid is field 4, starttime field 22
    if rest[0] == "Z":
        return None
    return int(rest[1]), int(rest[19])


def children_of(pid):
    """[(pid, starttime)] of the live children of pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _proc_stat(int(name))
        if st and st[0] == pid:
            out.append((int(name), st[1]))
    return out


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_stat(pid) is not None


def wait_pid_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


# --------------------------------------------------------------------------
# PostgreSQL

class PgServer:
    """One PostgreSQL 15 instance in its own temporary directory."""

    def __init__(self, name, base):
        self.name = name
        self.base = base                      # temp dir, owned by postgres
        self.datadir = os.path.join(base, "data")
        self.sockdir = os.path.join(base, "sock")
        self.logfile = os.path.join(base, "postgres.log")
        self._port = PortReservation()
        self.port = self._port.port
        self.pid = None
        self._orphans = []                    # children left by a kill -9
        self._stopped_by_signal = False

    # -- creation ---------------------------------------------------------

    @classmethod
    def _new_base(cls, name):
        base = tempfile.mkdtemp(prefix="pgtrackd-it-%s-" % name)
        os.makedirs(os.path.join(base, "sock"))
        chown_tree(base)
        return base

    @classmethod
    def make_template(cls):
        """initdb once per session; servers are copies of it (fast)."""
        base = tempfile.mkdtemp(prefix="pgtrackd-it-template-")
        chown_tree(base)
        datadir = os.path.join(base, "data")
        run_as_postgres([os.path.join(PG_BIN, "initdb"), "-D", datadir, "-U", PG_USER,
                         "-A", "trust", "-N", "-E", "UTF8", "--locale=C",
                         "--no-instructions"], timeout=120)
        with open(os.path.join(datadir, "postgresql.conf"), "a") as f:
            f.write("\n# pgtrackd integration tests\n"
                    "fsync = off\n"
                    "synchronous_commit = off\n"
                    "full_page_writes = off\n"
                    "shared_buffers = 16MB\n"
                    "max_connections = 40\n"
                    "max_wal_senders = 5\n"
                    "listen_addresses = '127.0.0.1'\n"
                    "log_line_prefix = '%m [%p] '\n"
                    "log_connections = on\n")
        return base

    @classmethod
    def primary_from_template(cls, template_base, name="primary"):
        srv = cls(name, cls._new_base(name))
        subprocess.run(["cp", "-a", os.path.join(template_base, "data"), srv.datadir], check=True)
        srv._write_local_conf()
        return srv

    @classmethod
    def replica_of(cls, primary, name="replica"):
        srv = cls(name, cls._new_base(name))
        run_as_postgres([os.path.join(PG_BIN, "pg_basebackup"), "-D", srv.datadir, "-R",
                         "-X", "stream", "-c", "fast", "-h", primary.sockdir,
                         "-p", str(primary.port), "-U", PG_USER], timeout=120)
        srv._write_local_conf()
        return srv

    def _write_local_conf(self):
        # appended last: overrides whatever the copy brought along
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("port = %d\nunix_socket_directories = '%s'\n" % (self.port, self.sockdir))

    # -- control ----------------------------------------------------------

    def pg_ctl(self, *args, timeout=60, check=True):
        return run_as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.datadir,
                                "-l", self.logfile] + list(args), timeout=timeout, check=check)

    def _read_pid(self):
        with open(os.path.join(self.datadir, "postmaster.pid")) as f:
            return int(f.readline().strip())

    def start(self):
        self.pg_ctl("-w", "-t", "60", "start")
        self.pid = self._read_pid()
        self._stopped_by_signal = False

    def restart(self, mode="fast"):
        self.pg_ctl("-w", "-t", "60", "-m", mode, "restart")
        self.pid = self._read_pid()

    def kill9(self):
        """kill -9 the postmaster; remember its children for the cleanup."""
        self._orphans = children_of(self.pid)
        os.kill(self.pid, signal.SIGKILL)
        assert wait_pid_gone(self.pid, 10)

    def sigstop(self):
        os.kill(self.pid, signal.SIGSTOP)
        self._stopped_by_signal = True

    def sigcont(self):
        if self.pid and pid_alive(self.pid):
            os.kill(self.pid, signal.SIGCONT)
        self._stopped_by_signal = False

    def connect(self, user=PG_USER, dbname="postgres", **kw):
        import psycopg
        return psycopg.connect(host=self.sockdir, port=self.port, user=user,
                               dbname=dbname, autocommit=True, connect_timeout=10, **kw)

    def sql(self, query, params=None):
        with self.connect() as conn:
            cur = conn.execute(query, params)
            try:
                return cur.fetchall()
            except Exception:
                return None

    def promote(self):
        rows = self.sql("SELECT pg_promote(true, 30)")
        assert rows == [(True,)], rows

    def in_recovery(self):
        return self.sql("SELECT pg_is_in_recovery()")[0][0]

    def add_hba_first(self, line):
        """Put a pg_hba.conf line before the trust lines initdb wrote; reload."""
        path = os.path.join(self.datadir, "pg_hba.conf")
        with open(path) as f:
            old = f.read()
        with open(path, "w") as f:
            f.write(line + "\n" + old)
        self.sql("SELECT pg_reload_conf()")

    # -- topology changes (stale-primary guard tests) ----------------------

    @classmethod
    def new_cluster(cls, name="foreign"):
        """A primary of its own initdb: another system identifier."""
        template = cls.make_template()
        try:
            return cls.primary_from_template(template, name)
        finally:
            shutil.rmtree(template, ignore_errors=True)

    def system_identifier(self):
        return str(self.sql("SELECT system_identifier FROM pg_control_system()")[0][0])

    def timeline(self):
        """The live timeline of a primary (as pgtrackd derives it)."""
        return int(self.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0][:8], 16)

    def stop(self, mode="fast"):
        self.pg_ctl("-w", "-t", "60", "-m", mode, "stop")
        assert wait_pid_gone(self.pid, 10)
        self.pid = None

    def start_as_primary(self):
        """Start without recovery: an old primary coming back after a failover."""
        for sig in ("standby.signal", "recovery.signal"):
            try:
                os.unlink(os.path.join(self.datadir, sig))
            except FileNotFoundError:
                pass
        self.start()

    def repoint(self, primary):
        """Follow another primary: rewrite primary_conninfo, restart.

        recovery_target_timeline defaults to latest, so a standby follows a
        promoted server onto its new timeline."""
        path = os.path.join(self.datadir, "postgresql.auto.conf")
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if not l.startswith("primary_conninfo")]
        lines.append("primary_conninfo = 'host=%s port=%d user=%s application_name=%s'"
                     % (primary.sockdir, primary.port, PG_USER, self.name))
        with open(path, "w") as f:             # in place: keeps the owner
            f.write("\n".join(lines) + "\n")
        self.restart()

    def rebuild_as_replica_of(self, primary):
        """Throw the data directory away; pg_basebackup -R from primary; start."""
        if self.pid and pid_alive(self.pid):
            self.stop("immediate")
        shutil.rmtree(self.datadir)
        run_as_postgres([os.path.join(PG_BIN, "pg_basebackup"), "-D", self.datadir, "-R",
                         "-X", "stream", "-c", "fast", "-h", primary.sockdir,
                         "-p", str(primary.port), "-U", PG_USER], timeout=120)
        self._write_local_conf()
        self.start()

    def wait_replayed(self, lsn, timeout=20.0):
        """Wait until this standby has replayed up to lsn (a 'X/Y' string)."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.sql("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s) >= 0", (lsn,))[0][0]
            if done:
                return
            if time.monotonic() > deadline:
                raise AssertionError("%s did not replay up to %s within %.0fs" % (self.name, lsn, timeout))
            time.sleep(0.05)

    def track_options(self, legacy_values=True, **over):
        """Keys of a pgtrackd [track] section that reach this server (with the
        LEGACY_VALUES unless legacy_values is False: then pgtrackd's defaults)."""
        opts = {"host": self.sockdir, "port": str(self.port), "user": PG_USER,
                "dbname": "postgres"}
        opts.update(FAST_TRACK)
        if legacy_values:
            opts.update(LEGACY_VALUES)
        opts.update(over)
        return opts

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- cleanup ----------------------------------------------------------

    def destroy(self):
        try:
            if self.pid and pid_alive(self.pid):
                # a stopped postmaster cannot handle pg_ctl's signal
                os.kill(self.pid, signal.SIGCONT)
                r = self.pg_ctl("-w", "-t", "30", "-m", "immediate", "stop", check=False)
                if r.returncode != 0 or not wait_pid_gone(self.pid, 10):
                    self._orphans += children_of(self.pid)
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    wait_pid_gone(self.pid, 10)
            for pid, start in self._orphans:
                st = _proc_stat(pid)
                if st and st[1] == start:        # same process, not a reused PID
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            for pid, _ in self._orphans:
                wait_pid_gone(pid, 5)
        finally:
            self._port.release()
            shutil.rmtree(self.base, ignore_errors=True)


# --------------------------------------------------------------------------
# pgtrackd

def default_binary():
    env = os.environ.get("PGTRACKD")
    if env:
        return env
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(repo, "build", "src", "trackd", "pgtrackd")


def clean_env(home):
    """No PG* variables, and a HOME without a .pgpass of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["HOME"] = home
    env["LC_ALL"] = "C"
    return env


def render_config(tracks, global_opts=None):
    """tracks: {name: {key: value}} in order; returns INI text."""
    lines = []
    g = dict(FAST_GLOBAL)
    if global_opts:
        g.update(global_opts)
    if g:
        lines.append("[global]")
        lines += ["%s = %s" % kv for kv in g.items()]
        lines.append("")
    for name, opts in tracks.items():
        lines.append("[track %s]" % name)
        lines += ["%s = %s" % kv for kv in opts.items()]
        lines.append("")
    return "\n".join(lines)


class Trackd:
    """One pgtrackd process with its own config, track directory and log."""

    def __init__(self, binary, base):
        self.binary = binary
        self.base = base
        self.conf = os.path.join(base, "pgtrackd.conf")
        self.trackdir = os.path.join(base, "track")
        self.logpath = os.path.join(base, "pgtrackd.log")
        self.outpath = os.path.join(base, "pgtrackd.out")
        os.makedirs(self.trackdir, exist_ok=True)
        self.proc = None
        self.returncode = None

    def path(self, name):
        return os.path.join(self.trackdir, name)

    def write_config(self, tracks, global_opts=None, raw=None):
        """tracks: {name: options}; a track without 'file' gets trackdir/name."""
        if raw is None:
            full = {}
            for name, opts in tracks.items():
                o = {"file": self.path(name)}
                o.update(opts)
                full[name] = o
            raw = render_config(full, global_opts)
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(raw)
        os.rename(tmp, self.conf)
        return raw

    def start(self, *extra):
        assert self.proc is None
        argv = [self.binary, "-f", self.conf, "-n", "-l", "-v"] + list(extra)
        self._err = open(self.logpath, "ab")
        self._out = open(self.outpath, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=clean_env(self.base), cwd=self.base)
        return self.proc

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_lines(self):
        return self.log().splitlines()

    def read(self, name):
        """Raw content of a track file, or None if it does not exist."""
        try:
            with open(self.path(name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _describe(self, extra=""):
        tail = "\n".join(self.log_lines()[-60:])
        state = "running" if self.alive() else "exited with %r" % (self.proc.poll() if self.proc else None)
        return "%s\npgtrackd %s; last log lines:\n%s" % (extra, state, tail)

    def wait_for_value(self, name, expected, timeout=10.0):
        """Poll the track file until it holds exactly '<expected>\\n'.

        Returns the seconds it took. Fails (with the log tail) on timeout or
        if pgtrackd exits."""
        want = "%d\n" % expected
        t0 = time.monotonic()
        last = None
        while True:
            last = self.read(name)
            if last == want:
                return time.monotonic() - t0
            if not self.alive():
                raise AssertionError(self._describe(
                    "pgtrackd exited while waiting for %s=%r (last %r)" % (name, want, last)))
            if time.monotonic() - t0 > timeout:
                raise AssertionError(self._describe(
                    "track %s: wanted %r within %.1fs, file holds %r" % (name, want, timeout, last)))
            time.sleep(0.02)

    def wait_for_log(self, pattern, timeout=10.0, start=0):
        """Wait for a log line (after byte offset start) matching regex pattern."""
        rx = re.compile(pattern)
        t0 = time.monotonic()
        while True:
            text = self.log()[start:]
            for line in text.splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() - t0 > timeout:
                raise AssertionError(self._describe("no log line matching %r within %.1fs" % (pattern, timeout)))
            time.sleep(0.05)

    def log_size(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal by PID, wait; SIGKILL if it does not exit. Returns exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                self.returncode = "killed"
                return self.returncode
        self.returncode = self.proc.returncode
        return self.returncode

    def close(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop(signal.SIGTERM, 5)
        finally:
            for f in (getattr(self, "_err", None), getattr(self, "_out", None)):
                if f:
                    f.close()


def run_binary(binary, *args, timeout=20, home=None):
    """Run pgtrackd to completion (for -t, -V, -h, bad options)."""
    home = home or tempfile.gettempdir()
    return subprocess.run([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=clean_env(home), text=True)


# --------------------------------------------------------------------------
# a peer that never answers

class SilentListener:
    """A TCP socket on 127.0.0.1 that accepts every connection and never
    says a word (a hung or black-holed server as seen by libpq, which waits
    for the answer to its startup packet). Held by the test; close() drops
    everything."""

    def __init__(self):
        import threading
        self._port = PortReservation()
        self.port = self._port.port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.accepted = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted.append(conn)           # held open, never read or written

    def close(self):
        self._stop = True
        self._thread.join(5)
        for c in self.accepted:
            c.close()
        self.sock.close()
        self._port.release()
