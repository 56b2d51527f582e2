"""PgServer: the integration tests' PostgreSQL 15 servers, each in its own
temporary directory: copies of one initdb template, replicas by
pg_basebackup, and what the failover tests do to them (kill -9, SIGSTOP,
promote, repoint, rebuild). TCP only on 127.0.0.1, the unix socket in a
private directory."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from kit.ports import PortReservation
from kit.postgres import PG_BIN, PG_USER, THROWAWAY, chown_tree, initdb, read_postmaster_pid, run_as_postgres
from kit.procs import children_of, kill_started, pid_alive, wait_pid_gone
from kit.trackd import FAST_TRACK, LEGACY_VALUES
from kit.waiting import wait_until


def backend_pids(pg, appname):
    """Sorted PIDs of the backends with this application_name."""
    rows = pg.sql("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (appname,))
    return sorted(r[0] for r in rows)


def wait_backends(pg, appname, not_in=(), timeout=5.0):
    """backend_pids not in not_in, once there is one; AssertionError on timeout."""
    return wait_until(lambda: [p for p in backend_pids(pg, appname) if p not in not_in], timeout,
                      what="a backend with application_name %s" % appname, tolerate=())


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
        self.wrapper = []                     # argv that execs pg_ctl: ip netns exec NS

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
        initdb(datadir, "pgtrackd integration tests", THROWAWAY + [
            "max_connections = 40", "max_wal_senders = 5", "listen_addresses = '127.0.0.1'",
            "log_connections = on"])
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
        srv._base_backup(primary)
        return srv

    def _base_backup(self, primary):
        """pg_basebackup -R from primary into the (absent) data directory."""
        run_as_postgres([os.path.join(PG_BIN, "pg_basebackup"), "-D", self.datadir, "-R",
                         "-X", "stream", "-c", "fast", "-h", primary.sockdir,
                         "-p", str(primary.port), "-U", PG_USER], timeout=120)
        self._write_local_conf()

    def _write_local_conf(self):
        # appended last: overrides whatever the copy brought along
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("port = %d\nunix_socket_directories = '%s'\n" % (self.port, self.sockdir))

    # -- control ----------------------------------------------------------

    def pg_ctl(self, *args, timeout=60, check=True):
        return run_as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", self.datadir,
                                "-l", self.logfile] + list(args), timeout=timeout, check=check,
                               wrapper=self.wrapper)

    def _read_pid(self):
        return read_postmaster_pid(self.datadir)

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
        self._base_backup(primary)
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
            kill_started(self._orphans)          # same processes, not reused PIDs
            for pid, _ in self._orphans:
                wait_pid_gone(pid, 5)
        finally:
            self._port.release()
            shutil.rmtree(self.base, ignore_errors=True)
