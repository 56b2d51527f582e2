"""The rig of pgtrack-notify's integration tests: one PostgreSQL primary
(module-wide) with appdb, and per test a pgbouncer, the FIFO and a
pgtrack-notify (not started); their fixtures, imported by the test modules."""

import os
import pytest
import re
import shutil
import stat
import tempfile
import time

from conftest import ServerFactory
from kit.fifo import Fifo, inst
from kit.files import write_file
from kit.notify import Notify, default_notify_binary
from kit.pgbouncer import APPDB, Bouncer, databases_ini
from kit.procs import kill_pid_if
from kit.waiting import wait_until


VI = "VI_PG"


# pgbouncer 1.18 says 'database "appdb" is disabled'; later ones "does not allow connections"
REFUSED_RE = r'database "?appdb"? is disabled|does not allow connections'


ADMIN_CMD_RE = r"pgtrack-notify: info: pgbouncer: %s appdb\b"
ADMIN_GLOBAL_RE = r"pgtrack-notify: info: pgbouncer: %s$"     # PAUSE, RESUME of the whole pooler


@pytest.fixture(scope="session")
def notify_bin():
    path = default_notify_binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("pgtrack-notify binary not found at %s: build it (ninja -C build) "
                    "or set PGTRACK_NOTIFY" % path, pytrace=False)
    return path


@pytest.fixture(scope="module")
def pg(pg_template):
    """One PostgreSQL primary with a database appdb, behind every pgbouncer."""
    f = ServerFactory(pg_template)
    try:
        primary = f.primary("nprimary")
        primary.sql("CREATE DATABASE appdb")
        yield primary
    finally:
        f.destroy()


class Rig:
    """pgbouncer + FIFO + pgtrack-notify (not started) for one test."""

    def __init__(self, binary, pg):
        self.pg = pg
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="pgtrack-it-notify-")     # root, 0700
        self.bouncer = None
        self.fifo = None
        self.notify = Notify(binary, self.dir)
        self.fifo_path = os.path.join(self.dir, "notify.fifo")
        self.template = os.path.join(self.dir, "databases.tmpl")
        # differs from pgbouncer's initial include file: dbname and pool_size,
        # and no newline at the end (copied verbatim)
        self.template_text = databases_ini(pg, "appdb", 7, comment="template, rewritten on MASTER") + "; end"
        write_file(self.template, self.template_text, 0o644)
        self.leftover_pids = []
        self.backup_waits = True                 # backup_clients = wait, the default

    def start_bouncer(self, **kw):
        self.bouncer = Bouncer(self.pg, **kw)
        self.bouncer.start()
        return self.bouncer

    def make_fifo(self, mode=0o600):
        self.fifo = Fifo(self.fifo_path, mode)
        return self.fifo

    def postgres_section(self, **over):
        """[postgres]: the local PostgreSQL, self.pg."""
        p = {"host": self.pg.sockdir, "port": str(self.pg.port), "user": "postgres",
             "dbname": "postgres", "connect_timeout": "1s", "hold_poll": "5ms",
             "hold_timeout": "30s"}
        p.update(over)
        return p

    def sections(self, notify=None, pgbouncer=None, hooks=None, fifo=True, postgres=None):
        n = {}
        if fifo:
            n["fifo"] = self.fifo_path
        n["instance"] = VI
        n["reconcile_interval"] = "10s"
        n.update(notify or {})
        n = {k: v for k, v in n.items() if v is not None}
        b = {
            "host": self.bouncer.sockdir,
            "port": str(self.bouncer.port),
            "user": "pgtadmin",
            "connect_timeout": "1s",
            "command_timeout": "3s",
            "databases": APPDB,
            "databases_file": self.bouncer.databases_file,
            "databases_template": self.template,
            "retry_max": "1s",
        }
        b.update(pgbouncer or {})
        b = {k: v for k, v in b.items() if v is not None}
        self.backup_waits = b.get("backup_clients", "wait") == "wait"
        s = {"notify": n, "pgbouncer": b}
        if hooks:
            s["hooks"] = hooks
        if postgres:
            s["postgres"] = postgres
        return s

    def start(self, *extra, **kw):
        """Write the config, start pgtrack-notify, wait until it holds the FIFO open."""
        self.notify.write_config(self.sections(**kw))
        self.notify.start(*extra)
        self.wait_fifo_open()
        return self.notify

    def fifo_fds(self):
        """Inode numbers of the FIFOs pgtrack-notify holds open."""
        out = set()
        fddir = "/proc/%d/fd" % self.notify.pid
        for fd in os.listdir(fddir):
            try:
                st = os.stat(os.path.join(fddir, fd))
            except OSError:
                continue
            if stat.S_ISFIFO(st.st_mode):
                out.add(st.st_ino)
        return out

    def wait_fifo_open(self, timeout=10):
        ino = os.stat(self.fifo_path).st_ino

        def opened():
            if not self.notify.alive():
                raise AssertionError(self.notify.describe("pgtrack-notify exited"))
            return ino in self.fifo_fds()
        wait_until(opened, timeout, describe=lambda: self.notify.describe(
            "pgtrack-notify did not open the FIFO %s (inode %d)" % (self.fifo_path, ino)))

    def describe(self, extra=""):
        b = ""
        if self.bouncer:
            try:
                b = "SHOW DATABASES appdb: %r" % (self.bouncer.db(),)
            except Exception as e:
                b = "SHOW DATABASES failed: %r" % (e,)
            b += "\npgbouncer log tail:\n" + "\n".join(self.bouncer.log().splitlines()[-15:])
        return "%s\n%s\n%s" % (extra, b, self.notify.describe())

    def wait_flags(self, paused, disabled, timeout=10):
        """Wait for SHOW DATABASES appdb paused/disabled."""
        want = (paused, disabled)
        wait_until(lambda: self.bouncer.flags() == want, timeout,
                   describe=lambda: self.describe("wanted appdb (paused, disabled) = %r" % (want,)))

    def wait_serving(self, timeout=10):
        self.wait_flags(0, 0, timeout)
        return self.bouncer.client_works()

    def wait_fenced(self, timeout=10):
        self.wait_flags(1, 1, timeout)
        msg = self.bouncer.client_refused()
        assert msg is not None and re.search(REFUSED_RE, msg), self.describe(
            "fenced, but a new client was not refused at once: %r" % (msg,))
        return msg

    def wait_held(self, timeout=10):
        """Enabled and paused, and a new client waits: neither served nor refused."""
        self.wait_flags(1, 0, timeout)
        got = self.bouncer.client_waits()
        assert got is None, self.describe("held, but a new client did not wait: %r" % (got,))

    def wait_off(self, state, timeout=10):
        """Not serving, as state asks: a BACKUP holds its clients (backup_clients
        = wait, the default), FAULT and STOP refuse them."""
        if state == "BACKUP" and self.backup_waits:
            return self.wait_held(timeout)
        return self.wait_fenced(timeout)

    def apply(self, state, serving):
        self.fifo.write(inst(VI, state))
        return self.wait_serving() if serving else self.wait_off(state)

    def close(self):
        try:
            self.notify.close()
        finally:
            try:
                if self.fifo:
                    self.fifo.close()
            finally:
                for pid, what in self.leftover_pids:
                    kill_pid_if(pid, what)
                try:
                    if self.bouncer:
                        self.bouncer.destroy()
                finally:
                    shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def rig(notify_bin, pg):
    r = Rig(notify_bin, pg)
    try:
        r.start_bouncer()
        r.make_fifo()
        yield r
    finally:
        r.close()


def admin_cmds(lines, cmd):
    rx = re.compile(ADMIN_CMD_RE % cmd)
    return [l for l in lines if rx.search(l)]


def transition_re(name, new, kind="instance"):
    return r'info: VRRP %s "%s": \S+ -> %s\b' % (kind, re.escape(name), new)


@pytest.fixture
def rig_nofifo(notify_bin, pg):
    r = Rig(notify_bin, pg)
    try:
        r.start_bouncer()
        yield r
    finally:
        r.close()


class HeldClient:
    """A client through pgbouncer, in a thread: connects, writes, reports
    when its write was acknowledged or which error it got."""

    def __init__(self, bouncer, name, connect_timeout=30):
        import threading
        self.name = name
        self.done = None
        self.error = None
        self.hot_standby = None          # the in_hot_standby the session was told
        self.started = time.monotonic()
        self._t = threading.Thread(target=self._run, args=(bouncer, connect_timeout), daemon=True)
        self._t.start()

    def _run(self, bouncer, connect_timeout):
        try:
            with bouncer.client(connect_timeout=connect_timeout) as conn:
                self.connected = time.monotonic()
                conn.execute("SELECT 1")
                self.selected = time.monotonic()
                conn.execute("CREATE TABLE %s (x int)" % self.name)
                conn.execute("INSERT INTO %s VALUES (1)" % self.name)
                self.done = time.monotonic()
                self.hot_standby = conn.info.parameter_status("in_hot_standby")
        except Exception as e:
            self.error = "%s: %s" % (type(e).__name__, e)
            self.done = time.monotonic()

    def join(self, timeout):
        self._t.join(timeout)
        return not self._t.is_alive()


@pytest.fixture
def standby_rig(notify_bin, servers):
    """A primary with appdb, its streaming replica behind pgbouncer (a cold
    pool: no client ever logged in), pgtrack-notify not started."""
    primary = servers.primary("hprimary")
    primary.sql("CREATE DATABASE appdb")
    replica = servers.replica(primary, "hstandby")
    r = Rig(notify_bin, replica)
    try:
        yield r
    finally:
        r.close()


class PromotionWatch:
    """When a standby's promotion really happened: pg_promote(wait => true)
    polls every 100 ms, so a session of its own asks pg_is_in_recovery()
    every 2 ms (for 30 s at most); .at is the monotonic time it saw f."""

    def __init__(self, pg):
        import threading
        self.at = None
        self._t = threading.Thread(target=self._run, args=(pg,), daemon=True)
        self._t.start()

    def _run(self, pg):
        with pg.connect() as conn:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    self.at = time.monotonic()
                    return
                time.sleep(0.002)

    def join(self, timeout=30):
        self._t.join(timeout)
        return self.at
