"""PostgreSQL 15 from Debian's packages, run as the postgres OS user (it
refuses root): initdb, pg_ctl, and Postgres, a throwaway cluster of the
benchmarks whose orphans we reap (see subreaper)."""

import os
import shutil
import signal
import subprocess
import time

from kit import KitError
from kit.files import user_ids
from kit.ports import free_port
from kit.procs import children_cpu_ns, children_of, cpu_ns, pid_alive, proc_stat
from kit.subreaper import POPEN_PIDS, reap, reap_strays
from kit.waiting import wait_until

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
RUNUSER = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"
INITDB_ARGS = ["-U", PG_USER, "-A", "trust", "-N", "-E", "UTF8", "--locale=C", "--no-instructions"]
# every throwaway cluster: nothing written for safety, a little memory
THROWAWAY = ["fsync = off", "synchronous_commit = off", "full_page_writes = off",
             "shared_buffers = 16MB", "log_line_prefix = '%m [%p] '",
             # segments in the data dir, not /dev/shm: nothing survives a kill -9
             "dynamic_shared_memory_type = mmap"]


def pg_ids():
    return user_ids(PG_USER)


def chown_tree(path):
    uid, gid = pg_ids()
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def run_as_postgres(argv, timeout=60, check=True, error=RuntimeError, wrapper=()):
    """Run a PostgreSQL client/server binary as the postgres user; output
    (stdout and stderr) in .stdout. In its own process group: on an
    interrupt or a timeout the whole group (runuser and what runs under it)
    is killed, not only runuser. wrapper: the argv that execs runuser
    (ip netns exec NS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    proc = subprocess.Popen(list(wrapper) + [RUNUSER, "-u", PG_USER, "--"] + argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd="/", start_new_session=True)
    POPEN_PIDS.add(proc.pid)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    finally:
        POPEN_PIDS.discard(proc.pid)
    if check and proc.returncode != 0:
        raise error("%s failed (%d):\n%s" % (" ".join(argv), proc.returncode, out[-3000:]))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out)


def initdb(datadir, comment, settings, pg_bin=PG_BIN, error=RuntimeError):
    """initdb datadir (its parent owned by postgres), then append settings
    (lines) to postgresql.conf under '# comment'."""
    run_as_postgres([os.path.join(pg_bin, "initdb"), "-D", datadir] + INITDB_ARGS,
                    timeout=120, error=error)
    with open(os.path.join(datadir, "postgresql.conf"), "a") as f:
        f.write("\n# %s\n%s\n" % (comment, "\n".join(settings)))


def read_postmaster_pid(datadir):
    with open(os.path.join(datadir, "postmaster.pid")) as f:
        return int(f.readline().strip())


class Postgres:
    """A throwaway cluster of a benchmark in base/data, its socket in
    base/sock, on a free 127.0.0.1 port. The benchmark is a child
    subreaper: a killed postmaster's children are reaped here."""

    def __init__(self, pg_bin, base, label="pgtrackd bench", listen="127.0.0.1", max_connections=30,
                 settings=()):
        self.pg_bin = pg_bin
        self.base = base
        self.datadir = os.path.join(base, "data")
        self.sockdir = os.path.join(base, "sock")
        self.logfile = os.path.join(base, "postgres.log")
        self.port = free_port()
        self.pid = None
        self.orphans = []
        self.uid, self.gid = pg_ids()
        self.label, self.listen, self.max_connections = label, listen, max_connections
        self.settings = list(settings)  # after the defaults: the last one wins

    def run(self, argv, timeout=60, check=True):
        return run_as_postgres(argv, timeout, check, error=KitError)

    def initdb(self):
        os.makedirs(self.sockdir)
        for d in (self.base, self.sockdir):
            os.chown(d, self.uid, self.gid)
        initdb(self.datadir, "%s (throwaway cluster)" % self.label, [
            "listen_addresses = '%s'" % self.listen,
            "port = %d" % self.port,
            "unix_socket_directories = '%s'" % self.sockdir,
            "max_connections = %d" % self.max_connections] + THROWAWAY + [
            # autovacuum workers are short-lived children of the
            # postmaster: they would pollute the cutime windows
            "autovacuum = off",
            "log_connections = off", "log_disconnections = off", "logging_collector = off"]
            + self.settings, self.pg_bin, KitError)

    def pg_ctl(self, *args, timeout=60, check=True):
        return self.run([os.path.join(self.pg_bin, "pg_ctl"), "-D", self.datadir,
                         "-l", self.logfile] + list(args), timeout=timeout, check=check)

    def start(self, tries=1):
        """pg_ctl start; after a kill -9 orphans may still hold the shared
        memory, so retry (bounded). Returns the number of tries it took."""
        last = None
        for i in range(tries):
            p = self.pg_ctl("-w", "-t", "30", "start", check=False, timeout=45)
            if p.returncode == 0:
                self.pid = read_postmaster_pid(self.datadir)
                return i + 1
            last = p.stdout
            time.sleep(0.25)
        raise KitError("pg_ctl start failed %d times; last output:\n%s" % (tries, last))

    def kill9(self):
        """kill -9 of the postmaster; returns time.monotonic() taken just
        before the signal (after it, a dying postmaster that preempts us
        would make every latency measured from it look shorter)."""
        self.orphans = [pid for pid, _ in children_of(self.pid)]
        t = time.monotonic()
        os.kill(self.pid, signal.SIGKILL)
        return t

    def reap_orphans(self, timeout=10.0):
        """Wait for the postmaster and its orphaned children to exit (we are
        their child subreaper, so we reap them at once; a zombie left to a
        slow init would keep postmaster.pid "in use"); SIGKILL (by PID) what
        is still there after the timeout."""
        pids = [self.pid] + self.orphans

        def settled():
            for p in pids:
                reap(p)
            return not any(pid_alive(p) for p in pids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not settled():
            time.sleep(0.005)
        left = [p for p in pids if pid_alive(p)]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(settled, 5.0, interval=0.01, what="orphans to exit", error=KitError, tolerate=())
        self.orphans = []
        reap_strays()
        return left

    def stop(self):
        # interrupted inside pg_ctl start: the server may be up without our
        # knowing its PID yet
        try:
            pid = read_postmaster_pid(self.datadir)
            if pid_alive(pid) and proc_stat(pid)["ppid"] in (os.getpid(), 1):
                self.pid = pid
        except (OSError, ValueError):
            pass
        if self.pid and pid_alive(self.pid):
            kids = [pid for pid, _ in children_of(self.pid)]
            try:
                self.pg_ctl("-m", "immediate", "-w", "-t", "10", "stop", check=False, timeout=20)
            except subprocess.TimeoutExpired:
                pass
            self.orphans = kids
            self.reap_orphans(timeout=5.0)
        elif self.orphans:
            self.reap_orphans(timeout=2.0)

    def psql(self, sql, dbname="postgres"):
        p = self.run([os.path.join(self.pg_bin, "psql"), "-X", "-h", self.sockdir, "-p",
                      str(self.port), "-U", PG_USER, "-d", dbname, "-v", "ON_ERROR_STOP=1",
                      "-tAc", sql], timeout=30)
        return p.stdout.strip()

    def server_cpu_ns(self):
        """(postmaster's own CPU [exact], CPU of its reaped children [ticks])."""
        return cpu_ns(self.pid), children_cpu_ns(self.pid)
