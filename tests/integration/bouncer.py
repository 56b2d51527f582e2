"""A real pgbouncer, a notify FIFO and a real pgtrack-notify for the
integration tests of pgtrack-notify (see test_notify.py).

- pgbouncer 1.18 from Debian (/usr/sbin/pgbouncer) as the ``postgres`` OS
  user (it refuses root), in the foreground, in a private directory that is
  also its unix_socket_dir; TCP only on 127.0.0.1. Its admin console is
  spoken to with psycopg over the unix socket, simple query protocol only.
- The FIFO is created by the test (0600, root) and held open O_RDWR by the
  test, as keepalived does, so that writes never block and the reader never
  sees EOF.
- pgtrack-notify runs as root in the foreground, logging to a file.

Every process is stopped by PID; nothing is found by name.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

from pgcluster import PG_USER, PortReservation, _proc_stat, children_of, clean_env, pid_alive, wait_pid_gone

PGBOUNCER = os.environ.get("PGBOUNCER", "/usr/sbin/pgbouncer")
ADMIN_USER = "pgtadmin"
CLIENT_USER = "postgres"
APPDB = "appdb"

NOTIFY_LOG_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} pgtrack-notify: (error|warning|notice|info|debug): ")


def default_notify_binary():
    env = os.environ.get("PGTRACK_NOTIFY")
    if env:
        return env
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(repo, "build", "src", "notify", "pgtrack-notify")


def _pg_ids():
    pw = pwd.getpwnam(PG_USER)
    return pw.pw_uid, pw.pw_gid


def write_file(path, text, mode=0o644, owner_pg=False):
    data = text.encode() if isinstance(text, str) else text
    tmp = path + ".tmp-it"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    if owner_pg:
        os.chown(tmp, *_pg_ids())
    os.rename(tmp, path)


def wait_until(pred, timeout, interval=0.05, describe=None):
    """Poll pred() until it returns a true value; returns it. On timeout
    raises AssertionError with describe() (a callable) appended."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # keep polling; report the last error
            last_exc = e
        if time.monotonic() > deadline:
            msg = "condition not met within %.1fs" % timeout
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            if describe is not None:
                msg += "\n" + describe()
            raise AssertionError(msg)
        time.sleep(interval)


# --------------------------------------------------------------------------
# pgbouncer

def databases_ini(pg, dbname, pool_size, comment="initial"):
    """The content of a databases include file for appdb -> pg:dbname."""
    return ("; %s\n"
            "[databases]\n"
            "%s = host=127.0.0.1 port=%d dbname=%s pool_size=%d\n"
            % (comment, APPDB, pg.port, dbname, pool_size))


class Bouncer:
    """One pgbouncer in its own directory, in front of PostgreSQL server pg.

    The [databases] section comes from DIR/databases.ini (%include), which
    pgtrack-notify may rewrite."""

    def __init__(self, pg, databases_text=None, server_login_retry="1"):
        self.pg = pg
        self.server_login_retry = server_login_retry
        self.base = tempfile.mkdtemp(prefix="pgtrack-it-bouncer-")
        os.chmod(self.base, 0o755)
        os.chown(self.base, *_pg_ids())
        self.conf = os.path.join(self.base, "pgbouncer.ini")
        self.databases_file = os.path.join(self.base, "databases.ini")
        self.userlist = os.path.join(self.base, "userlist.txt")
        self.pidfile = os.path.join(self.base, "pgbouncer.pid")
        self.logpath = os.path.join(self.base, "pgbouncer.log")
        self._port = PortReservation()
        self.port = self._port.port
        self.runner = None            # the runuser process
        self.pid = None               # pgbouncer itself
        self._starttime = None
        self._logf = None
        if databases_text is None:
            databases_text = databases_ini(pg, "postgres", 3)
        write_file(self.databases_file, databases_text, 0o644, owner_pg=True)
        write_file(self.userlist, '"%s" ""\n"%s" ""\n' % (ADMIN_USER, CLIENT_USER), 0o644, owner_pg=True)

    @property
    def sockdir(self):
        return self.base

    def write_config(self, sockdir):
        write_file(self.conf,
                   "[pgbouncer]\n"
                   "listen_addr = 127.0.0.1\n"
                   "listen_port = %d\n"
                   "unix_socket_dir = %s\n"
                   "auth_type = trust\n"
                   "auth_file = %s\n"
                   "admin_users = %s\n"
                   "pidfile = %s\n"
                   "pool_mode = session\n"
                   "server_login_retry = %s\n"
                   "max_client_conn = 200\n"
                   "\n"
                   "%%include %s\n"
                   % (self.port, sockdir, self.userlist, ADMIN_USER, self.pidfile,
                      self.server_login_retry, self.databases_file),
                   0o644, owner_pg=True)

    def start(self, sockdir=None, timeout=15):
        """Start in the foreground as postgres; wait until the admin console
        answers on the unix socket (in sockdir, default the base directory)."""
        assert self.runner is None or self.runner.poll() is not None
        sockdir = sockdir or self.base
        if sockdir != self.base:
            os.makedirs(sockdir, exist_ok=True)
            os.chown(sockdir, *_pg_ids())
        self.write_config(sockdir)
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass
        if self._logf is None:
            self._logf = open(self.logpath, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        self.runner = subprocess.Popen(["runuser", "-u", PG_USER, "--", PGBOUNCER, self.conf],
                                       stdin=subprocess.DEVNULL, stdout=self._logf, stderr=self._logf,
                                       env=env, cwd=self.base)

        def up():
            if self.runner.poll() is not None:
                raise RuntimeError("pgbouncer exited with %r:\n%s" % (self.runner.returncode, self.log()[-3000:]))
            if self.pid is None or not pid_alive(self.pid):
                kids = children_of(self.runner.pid)
                if not kids:
                    return False
                self.pid, self._starttime = kids[0]
            self.show_databases(sockdir=sockdir)
            return True
        try:
            wait_until(up, timeout, describe=lambda: self.log()[-3000:])
        except Exception:
            self.stop()
            raise
        return self.pid

    def _same_process(self):
        if not self.pid:
            return False
        st = _proc_stat(self.pid)
        return bool(st) and st[1] == self._starttime

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """SIGTERM (1.18: immediate shutdown) to pgbouncer's PID; SIGKILL if
        it does not go. Waits for the runuser parent too."""
        if self.pid and self._same_process():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            if not wait_pid_gone(self.pid, timeout) and self._same_process():
                os.kill(self.pid, signal.SIGKILL)
                wait_pid_gone(self.pid, 10)
        self.pid = None
        if self.runner is not None and self.runner.poll() is None:
            try:
                self.runner.wait(10)
            except subprocess.TimeoutExpired:
                self.runner.kill()
                self.runner.wait(10)

    def destroy(self):
        try:
            self.stop()
        finally:
            if self._logf:
                self._logf.close()
                self._logf = None
            self._port.release()
            shutil.rmtree(self.base, ignore_errors=True)

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- admin console (simple query protocol only) --------------------------

    def admin_connect(self, sockdir=None):
        import psycopg
        return psycopg.connect(host=sockdir or self.base, port=self.port, dbname="pgbouncer",
                               user=ADMIN_USER, autocommit=True, connect_timeout=5)

    def admin(self, *queries, sockdir=None):
        """Run console commands in order on one connection; returns the last
        result rows (or None). Errors propagate."""
        with self.admin_connect(sockdir) as conn:
            rows = None
            for q in queries:
                cur = conn.execute(q, prepare=False)
                rows = [dict(zip([d.name for d in cur.description], r)) for r in cur.fetchall()] \
                    if cur.description else None
            return rows

    def show_databases(self, sockdir=None):
        """{name: {column: value}} from SHOW DATABASES."""
        return {r["name"]: r for r in self.admin("SHOW DATABASES", sockdir=sockdir)}

    def db(self, name=APPDB):
        return self.show_databases()[name]

    def flags(self, name=APPDB):
        """(paused, disabled) of a database."""
        r = self.db(name)
        return int(r["paused"]), int(r["disabled"])

    # -- clients through pgbouncer -------------------------------------------

    def client(self, connect_timeout=5, dbname=APPDB):
        import psycopg
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=dbname, user=CLIENT_USER,
                               autocommit=True, connect_timeout=connect_timeout)

    def client_works(self, dbname=APPDB):
        """Connect + SELECT 1 through pgbouncer; returns current_database()."""
        with self.client(dbname=dbname) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            return conn.execute("SELECT current_database()").fetchone()[0]

    def client_refused(self, dbname=APPDB):
        """The error text if a new connection is refused at once, else None
        (connected, or only timed out: a paused but enabled database)."""
        import psycopg
        t0 = time.monotonic()
        try:
            conn = self.client(connect_timeout=4, dbname=dbname)
        except psycopg.OperationalError as e:
            msg = str(e)
            if time.monotonic() - t0 > 3.5 or "timeout" in msg.lower():
                return None
            return msg
        conn.close()
        return None


# --------------------------------------------------------------------------
# FIFO

class Fifo:
    """The notify FIFO as keepalived holds it: O_RDWR|O_NONBLOCK.

    write() retries on EAGAIN (a full pipe) until the reader drains it,
    within a deadline, so that no test line is lost."""

    def __init__(self, path, mode=0o600):
        self.path = path
        self.fd = None
        self.create(mode)

    @classmethod
    def attach(cls, path):
        """Open an existing FIFO (made by someone else) the same way."""
        f = cls.__new__(cls)
        f.path = path
        f.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        return f

    def create(self, mode=0o600):
        os.mkfifo(self.path, 0o600)
        os.chmod(self.path, mode)
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def replace(self):
        """As keepalived's reload: close, unlink, mkfifo again (new inode), open."""
        old = os.stat(self.path).st_ino
        self.close()
        os.unlink(self.path)
        self.create()
        assert os.stat(self.path).st_ino != old
        return old

    def write(self, data, timeout=30):
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError("FIFO %s stayed full for %ds: the reader does not drain it"
                                         % (self.path, timeout))
                time.sleep(0.001)

    def pending(self):
        """Bytes queued and not yet read (FIONREAD)."""
        import fcntl
        import struct
        import termios
        buf = fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", buf)[0]


def inst(name, state, prio=100):
    return 'INSTANCE "%s" %s %d\n' % (name, state, prio)


def group(name, state):
    return 'GROUP "%s" %s 0\n' % (name, state)


# --------------------------------------------------------------------------
# pgtrack-notify

def render_notify_config(sections):
    """sections: {section: {key: value}} in order."""
    out = []
    for sec, opts in sections.items():
        out.append("[%s]" % sec)
        out += ["%s = %s" % kv for kv in opts.items()]
        out.append("")
    return "\n".join(out)


class Notify:
    """One pgtrack-notify process with its own config and log."""

    def __init__(self, binary, base):
        self.binary = binary
        self.base = base
        self.conf = os.path.join(base, "pgtrack-notify.conf")
        self.logpath = os.path.join(base, "pgtrack-notify.log")
        self.outpath = os.path.join(base, "pgtrack-notify.out")
        self.proc = None
        self._err = self._out = None
        self.extra_env = {}               # added to the clean environment

    def write_config(self, sections=None, raw=None):
        if raw is None:
            raw = render_notify_config(sections)
        write_file(self.conf, raw, 0o600)
        return raw

    def start(self, *extra):
        assert self.proc is None
        argv = [self.binary, "-f", self.conf, "-l", "-v"] + list(extra)
        self._err = open(self.logpath, "ab")
        self._out = open(self.outpath, "ab")
        env = clean_env(self.base)
        env.update(self.extra_env)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=env, cwd=self.base)
        return self.proc

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for %d" % self.proc.pid)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.logpath, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def lines_since(self, offset=0):
        return self.log_since(offset).splitlines()

    def describe(self, extra=""):
        tail = "\n".join(self.log().splitlines()[-60:])
        state = "running" if self.alive() else "exited with %r" % (self.proc.poll() if self.proc else None)
        return "%s\npgtrack-notify %s; last log lines:\n%s" % (extra, state, tail)

    def wait_for_log(self, pattern, timeout=10.0, start=0):
        """A log line after byte offset start matching regex pattern."""
        rx = re.compile(pattern)

        def find():
            for line in self.lines_since(start):
                if rx.search(line):
                    return line
            return None
        return wait_until(find, timeout,
                          describe=lambda: self.describe("no log line matching %r" % pattern))

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal by PID and wait; SIGKILL if it does not exit. Exit code,
        or "killed"."""
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
                return "killed"
        return self.proc.returncode

    def close(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop(signal.SIGTERM, 5)
        finally:
            for f in (self._err, self._out):
                if f:
                    f.close()
            self._err = self._out = None


def run_notify(binary, *args, timeout=20, home=None):
    """Run pgtrack-notify to completion (-t, or a start that must fail)."""
    home = home or tempfile.gettempdir()
    return subprocess.run([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=clean_env(home), text=True,
                          errors="replace")


def kill_pid_if(pid, cmd_substring):
    """SIGKILL a leftover process by PID, only if its command line still
    contains cmd_substring (not a reused PID)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return
    if cmd_substring in cmd:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
