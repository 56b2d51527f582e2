"""pgbouncer 1.18 from Debian (/usr/sbin/pgbouncer) in front of a PgServer:
as the postgres OS user (it refuses root), in the foreground, in a private
directory that is also its unix_socket_dir; TCP only on 127.0.0.1. Its
admin console is spoken to with psycopg over the unix socket, simple query
protocol only."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from kit.files import read_text, write_file
from kit.ports import PortReservation
from kit.postgres import PG_USER, pg_ids
from kit.procs import children_of, pid_alive, wait_pid_gone
from kit.waiting import wait_until

PGBOUNCER = os.environ.get("PGBOUNCER", "/usr/sbin/pgbouncer")
ADMIN_USER = "pgtadmin"
CLIENT_USER = "postgres"
APPDB = "appdb"


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

    def __init__(self, pg, databases_text=None, server_login_retry="1", settings=None):
        self.pg = pg
        self.settings = dict(settings or {})   # more [pgbouncer] keys (pool_mode, ...)
        self.server_login_retry = server_login_retry
        self.base = tempfile.mkdtemp(prefix="pgtrack-it-bouncer-")
        os.chmod(self.base, 0o755)
        os.chown(self.base, *pg_ids())
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
        write_file(self.databases_file, databases_text, 0o644, owner=PG_USER)
        write_file(self.userlist, '"%s" ""\n"%s" ""\n' % (ADMIN_USER, CLIENT_USER), 0o644, owner=PG_USER)

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
                   "pool_mode = %s\n"
                   "server_login_retry = %s\n"
                   "max_client_conn = 200\n"
                   "%s"
                   "\n"
                   "%%include %s\n"
                   % (self.port, sockdir, self.userlist, ADMIN_USER, self.pidfile,
                      self.settings.get("pool_mode", "session"), self.server_login_retry,
                      "".join("%s = %s\n" % kv for kv in self.settings.items() if kv[0] != "pool_mode"),
                      self.databases_file),
                   0o644, owner=PG_USER)

    def start(self, sockdir=None, timeout=15):
        """Start in the foreground as postgres; wait until the admin console
        answers on the unix socket (in sockdir, default the base directory)."""
        assert self.runner is None or self.runner.poll() is not None
        sockdir = sockdir or self.base
        if sockdir != self.base:
            os.makedirs(sockdir, exist_ok=True)
            os.chown(sockdir, *pg_ids())
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
        return pid_alive(self.pid, self._starttime)

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
        return read_text(self.logpath)

    # -- admin console (simple query protocol only) --------------------------

    def admin_connect(self, sockdir=None):
        import psycopg              # Debian's python3-psycopg; only where it is used
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

    def client_waits(self, seconds=0.7, dbname=APPDB):
        """None if a new client's SELECT 1 neither completes nor fails
        within seconds (it waits in a paused database), else what it got.
        The waiting client is left in a daemon thread: pgbouncer's KILL,
        RESUME or exit ends it."""
        import threading
        got = []

        def run():
            try:
                with self.client(connect_timeout=60, dbname=dbname) as conn:
                    conn.execute("SELECT 1")
                    got.append("served")
            except Exception as e:           # noqa: BLE001 (reported, not hidden)
                got.append("%s: %s" % (type(e).__name__, e))
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(seconds)
        return got[0] if got else None

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
