"""pgtrack-notify against a real pgbouncer 1.18 in front of a real PostgreSQL 15.

The test writes keepalived's notify FIFO lines itself and checks what really
happened: SHOW DATABASES on pgbouncer's admin console, clients connecting
through pgbouncer, the databases include file, hook side effects, the log of
pgtrack-notify. Spec: the pgtrack-notify interface notes (CLI, config,
behaviour, log lines).

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_notify.py
PGTRACK_NOTIFY=/abs/path overrides the binary (default build/src/notify/pgtrack-notify).

Timing bounds are generous: they only catch hangs and missing features.
"""

import os
import random
import re
import shutil
import signal
import stat
import tempfile
import time

import pytest

from kit.fifo import Fifo, group, inst
from kit.files import write_file
from kit.notify import default_notify_binary, Notify, NOTIFY_LOG_RE, run_notify
from kit.pgbouncer import APPDB, Bouncer, databases_ini
from kit.postgres import pg_ids
from kit.procs import kill_pid_if, wait_pid_gone
from kit.waiting import wait_until
from conftest import ServerFactory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VI = "VI_PG"

# pgbouncer 1.18 says 'database "appdb" is disabled'; later ones "does not allow connections"
REFUSED_RE = r'database "?appdb"? is disabled|does not allow connections'
ADMIN_CMD_RE = r"pgtrack-notify: info: pgbouncer: %s appdb\b"


# --------------------------------------------------------------------------
# fixtures


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
             "dbname": "postgres", "connect_timeout": "1s", "hold_poll": "20ms",
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

    def apply(self, state, serving):
        self.fifo.write(inst(VI, state))
        return self.wait_serving() if serving else self.wait_fenced()

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


# --------------------------------------------------------------------------
# 1. MASTER serves


def test_master_serves_and_rewrites_databases_file(rig):
    b = rig.bouncer
    # start fenced, as a BACKUP node's pgbouncer would be, so that serving
    # needs ENABLE and RESUME
    b.admin("DISABLE appdb", "KILL appdb")
    assert b.flags() == (1, 1)
    assert b.db()["database"] == "postgres"
    n = rig.start()
    rig.fifo.write(inst(VI, "MASTER", 150))
    assert rig.wait_serving() == "appdb", rig.describe("the client did not reach the template's dbname")
    with open(b.databases_file) as f:
        assert f.read() == rig.template_text
    row = b.db()
    assert (row["paused"], row["disabled"]) == (0, 0)
    # pgbouncer read the rewritten file (RELOAD), i.e. it could read it
    assert (row["database"], row["pool_size"]) == ("appdb", 7), row
    st = os.stat(b.databases_file)
    assert st.st_mode & 0o004 or st.st_uid == pg_ids()[0], "pgbouncer (postgres) cannot read %o" % st.st_mode
    log = n.log()
    n.wait_for_log(r'info: VRRP instance "VI_PG": \S+ -> MASTER \(priority 150\)')
    n.wait_for_log(r"info: pgbouncer: serving databases appdb \(this node is MASTER\)")
    lines = n.lines_since(0)
    assert admin_cmds(lines, "ENABLE") and admin_cmds(lines, "RESUME"), log
    # RESUME appdb before ENABLE appdb: a client let in while the database is
    # still paused would make pgbouncer wait server_login_retry
    resume_db = [i for i, l in enumerate(lines) if l.endswith("pgbouncer: RESUME appdb")]
    enable_db = [i for i, l in enumerate(lines) if l.endswith("pgbouncer: ENABLE appdb")]
    assert resume_db and enable_db and resume_db[0] < enable_db[0], log
    for line in lines:
        assert NOTIFY_LOG_RE.match(line), "not in the log format: %r" % line
    # service mode: SIGTERM exits 0 at once, pgbouncer is left as it is
    t0 = time.monotonic()
    assert n.stop(signal.SIGTERM, 5) == 0
    assert time.monotonic() - t0 < 1.5
    assert b.flags() == (0, 0)


# --------------------------------------------------------------------------
# 2. BACKUP / FAULT / STOP fence


def test_backup_fault_stop_fence_then_master_serves(rig):
    b = rig.bouncer
    n = rig.start()
    rig.apply("MASTER", True)
    held = b.client()
    assert held.execute("SELECT 1").fetchone() == (1,)
    off = n.log_size()
    rig.fifo.write(inst(VI, "BACKUP", 100))
    msg = rig.wait_fenced()
    import psycopg
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    lines = n.lines_since(off)
    assert admin_cmds(lines, "DISABLE") and admin_cmds(lines, "KILL"), "\n".join(lines)
    n.wait_for_log(r"info: pgbouncer: fenced databases appdb \(this node is BACKUP\)", start=off)

    # already fenced: FAULT and STOP send no DISABLE/KILL again
    off = n.log_size()
    rig.fifo.write(inst(VI, "FAULT", 100))
    n.wait_for_log(transition_re(VI, "FAULT"), start=off)
    rig.fifo.write(inst(VI, "STOP", 100))
    n.wait_for_log(transition_re(VI, "STOP"), start=off)
    time.sleep(0.5)
    assert b.flags() == (1, 1)
    assert b.client_refused() is not None
    lines = n.lines_since(off)
    assert not admin_cmds(lines, "DISABLE") and not admin_cmds(lines, "KILL"), \
        "commands sent although SHOW DATABASES said fenced:\n" + "\n".join(lines)

    rig.fifo.write(inst(VI, "MASTER", 100))
    assert rig.wait_serving() == "appdb"


# --------------------------------------------------------------------------
# 3. FIFO recreated (keepalived reload)


def test_fifo_recreated_new_inode_is_followed(rig):
    n = rig.start()
    rig.apply("MASTER", True)
    old = rig.fifo.replace()
    rig.fifo.write(inst(VI, "BACKUP", 100))
    rig.wait_fenced(timeout=10)
    # it reads the new FIFO and no longer holds the old one
    wait_until(lambda: rig.fifo_fds() == {os.stat(rig.fifo_path).st_ino}, 5,
               describe=lambda: "FIFO fds %r, old inode %d" % (rig.fifo_fds(), old))
    rig.fifo.write(inst(VI, "MASTER", 100))
    rig.wait_serving()
    assert n.alive()


# --------------------------------------------------------------------------
# 4. pgbouncer down while MASTER arrives


def test_pgbouncer_outage_pending_state_applied_once_back(rig):
    b = rig.bouncer
    n = rig.start()
    rig.apply("BACKUP", False)
    # the template is installed on BACKUP too, fenced (no RELOAD on MASTER)
    assert b.db()["database"] == "appdb"
    off = n.log_size()
    b.stop()
    rig.fifo.write(inst(VI, "MASTER", 100))
    n.wait_for_log(r"error: pgbouncer at \S+ (is )?unreachable", start=off, timeout=10)
    time.sleep(3.5)                      # several retries (250ms doubling to retry_max 1s)
    assert n.alive()
    # A fresh pgbouncer serves by itself. Bring it back fenced so that the
    # pending MASTER is observable: start it with its socket in a hidden
    # directory, fence it there, then move the socket where pgtrack-notify
    # looks for it.
    hidden = os.path.join(b.base, "hidden")
    b.start(sockdir=hidden)
    b.admin("DISABLE appdb", "KILL appdb", sockdir=hidden)
    assert b.show_databases(sockdir=hidden)["appdb"]["paused"] == 1
    sock = ".s.PGSQL.%d" % b.port
    os.rename(os.path.join(hidden, sock), os.path.join(b.base, sock))
    assert rig.wait_serving(timeout=10) == "appdb"
    with open(b.databases_file) as f:
        assert f.read() == rig.template_text
    lines = n.lines_since(off)
    unreachable = [l for l in lines if "unreachable" in l]
    assert len(unreachable) == 1, "wanted one unreachable error for the outage:\n" + "\n".join(unreachable)
    assert " error: " in unreachable[0]


# --------------------------------------------------------------------------
# 5. reconcile repairs changes made behind our back


def test_reconcile_repairs_manual_enable_resume(rig):
    b = rig.bouncer
    n = rig.start(notify={"reconcile_interval": "1s"})
    rig.apply("BACKUP", False)
    off = n.log_size()
    b.admin("ENABLE appdb", "RESUME appdb")
    t0 = time.monotonic()
    assert b.flags() == (0, 0)
    rig.wait_fenced(timeout=5)
    took = time.monotonic() - t0
    line = n.wait_for_log(r"warning: .*repairing", start=off, timeout=2)
    assert "appdb" in line and "BACKUP" in line, line
    assert took < 3.0, "repaired after %.1fs with reconcile_interval 1s" % took


# --------------------------------------------------------------------------
# 6. a flood of garbage


_NOT_NEWLINE = bytes(b for b in range(256) if b != 10)


def _flood(rng, count, followed=True):
    """count lines; returns (bytes, number of bad lines, last valid state of VI)."""
    lines = []
    bad = 0
    last = None
    states = ["MASTER", "BACKUP", "FAULT"]
    for _ in range(count):
        k = rng.random()
        if k < 0.25:       # random bytes, NUL included, no newline
            n = rng.randint(1, 200)
            line = bytes(rng.choice(_NOT_NEWLINE) for _ in range(n))
            if not line.strip(b" \t\r"):
                line = b"\x00" + line
            bad += 1
        elif k < 0.28:     # over-long
            line = b"A" * rng.randint(513, 3000)
            bad += 1
        elif k < 0.45:     # unknown states of the followed instance
            line = ('INSTANCE "%s" %s 100' % (VI, rng.choice(["SLAVE", "BOGUS", "MASTERX", "BACK-UP"]))).encode()
            bad += 1
        elif k < 0.50:     # valid line with a NUL inside
            line = ('INSTANCE "%s" %s 100' % (VI, rng.choice(states))).encode() + b"\x00junk"
            bad += 1
        elif k < 0.70:     # LVS lines: ignored
            line = rng.choice([b"VS [10.0.0.1]:tcp:80 UP", b"VS FWM 7 DOWN",
                               b"RS [10.0.0.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN"])
        elif k < 0.95 or not followed:     # other instances and groups
            line = rng.choice([inst("VI_OTHER", rng.choice(states)), inst(VI + "2", "MASTER"),
                               group(VI, rng.choice(states)), group("G_X", "BACKUP")]).encode().rstrip(b"\n")
        else:              # the followed instance
            last = rng.choice(states)
            line = inst(VI, last).encode().rstrip(b"\n")
        lines.append(line)
    return b"\n".join(lines) + b"\n", bad, last


def test_flood_of_garbage(rig):
    rng = random.Random(20240611)
    b = rig.bouncer
    n = rig.start()
    # warm up: every path once (bad lines, LVS, others, serve)
    warm, _, _ = _flood(rng, 300)
    t_warm = time.monotonic()
    rig.fifo.write(warm + inst(VI, "MASTER").encode())
    rig.wait_serving()
    time.sleep(0.5)
    rss0 = n.rss_kb()
    off = n.log_size()

    data, bad, _ = _flood(rng, 10000 - 2 - 50)
    tail, tail_bad, _ = _flood(rng, 50, followed=False)
    bad += tail_bad + 1
    # the last valid line for VI is BACKUP, followed by garbage and a valid
    # line of another instance and a valid one with a NUL inside
    data += inst(VI, "BACKUP").encode() + tail + inst("VI_OTHER", "MASTER").encode() \
        + ('INSTANCE "%s" MASTER 100' % VI).encode() + b"\x00\n"
    t0 = time.monotonic()
    rig.fifo.write(data, timeout=60)
    wait_until(lambda: rig.fifo.pending() == 0, 30, describe=n.describe)
    rig.wait_fenced(timeout=15)
    took = time.monotonic() - t0
    time.sleep(0.5)
    assert n.alive(), n.describe()
    assert b.flags() == (1, 1)
    rss1 = n.rss_kb()
    assert rss1 - rss0 <= 1024, "VmRSS grew from %d kB to %d kB during the flood" % (rss0, rss1)
    lines = n.lines_since(off)
    bad_reports = [l for l in lines if "warning:" in l and "FIFO" in l]
    assert len(bad_reports) <= 5 * (1 + int(took // 10)) + 3, \
        "%d bad-line warnings for %d bad lines in %.1fs:\n%s" % (len(bad_reports), bad, took,
                                                                 "\n".join(bad_reports[:20]))
    # valid lines of other instances may be logged (debug), bad ones only rate-limited
    about_valid = re.compile(r'VI_OTHER|VI_PG2|G_X|GROUP "VI_PG"|VRRP instance|pgbouncer')
    other = [l for l in lines if not about_valid.search(l)]
    assert len(other) < 50, "%d log lines about %d bad lines:\n%s" % (len(other), bad, "\n".join(other[:30]))

    # after the 10 s window a count of the rest is logged (at the latest
    # with the next bad line)
    n.wait_for_log(r"warning: FIFO .*skipped a bad line")        # from the warm-up
    wait = 10.5 - (time.monotonic() - t_warm)
    if wait > 0:
        time.sleep(wait)
    rig.fifo.write(inst(VI, "BOGUS2"))
    rx = re.compile(r" warning: FIFO %s: (.*)$" % re.escape(rig.fifo_path))

    def counted():
        best = 0
        for l in n.lines_since(off):
            m = rx.search(l)
            if m:
                best = max([best] + [int(x) for x in re.findall(r"\b(\d+)\b", m.group(1))])
        return best if best >= 1000 else None
    count = wait_until(counted, 5, describe=lambda: n.describe("no count of the skipped bad lines"))
    assert count >= bad - 10, (count, bad)


# --------------------------------------------------------------------------
# 6b. tricky lines that look valid but are not for us


def test_tricky_lines_change_nothing(rig):
    n = rig.start()
    rig.apply("MASTER", True)
    off = n.log_size()
    rig.fifo.write(
        inst(VI + "2", "BACKUP")
        + inst(VI + " ", "BACKUP")
        + inst(" " + VI, "BACKUP")
        + group(VI, "BACKUP")
        + inst(VI, "BACKUP_PRIORITY", 90)
        + inst(VI, "MASTER_PRIORITY", 90)
        + 'INSTANCE "%s" BACKUP 100 %s\n' % (VI, "x" * 600)       # over-long, valid prefix
        + 'INSTANCE "%s" BACKUP 100\0\n' % VI                   # NUL byte
        + "VS [10.0.0.1]:tcp:80 DOWN\n"
        + inst(VI, "MASTER_RX_LOWER_PRI", 150))
    n.wait_for_log(r'warning: two masters: instance "VI_PG" received an advert of lower priority while MASTER',
                   start=off)
    time.sleep(1.0)
    assert rig.bouncer.flags() == (0, 0)
    assert rig.bouncer.client_works() == "appdb"
    lines = n.lines_since(off)
    assert not [l for l in lines if re.search(r"-> BACKUP|fenced|DISABLE|KILL", l)], "\n".join(lines)
    skipped = [l for l in lines if re.search(r"warning: FIFO .*skipped", l)]
    assert len(skipped) >= 2, "over-long and NUL lines not both logged:\n" + "\n".join(lines)


# --------------------------------------------------------------------------
# 7. a burst collapses to its last state


def test_burst_in_one_write_ends_serving(rig):
    n = rig.start()
    rig.apply("BACKUP", False)
    off = n.log_size()
    os.write(rig.fifo.fd, "".join(inst(VI, s) for s in ("BACKUP", "MASTER", "BACKUP", "FAULT", "MASTER")).encode())
    assert rig.wait_serving() == "appdb"
    time.sleep(0.5)
    assert rig.bouncer.flags() == (0, 0)
    lines = n.lines_since(off)
    # drained before acting: nothing was fenced on the way
    assert not admin_cmds(lines, "DISABLE") and not admin_cmds(lines, "KILL"), "\n".join(lines)


# --------------------------------------------------------------------------
# 8. script mode: STOP lines after SIGTERM


def test_script_mode_reads_stop_after_sigterm(rig):
    n = rig.start(rig.fifo_path, fifo=False)
    rig.apply("MASTER", True)
    os.kill(n.pid, signal.SIGTERM)
    t0 = time.monotonic()
    time.sleep(0.25)
    rig.fifo.write(inst(VI, "STOP", 100) + group("G_OTHER", "STOP"))
    try:
        rc = n.proc.wait(5)
    except Exception:
        raise AssertionError(n.describe("still running 5s after SIGTERM"))
    took = time.monotonic() - t0
    assert rc == 0, n.describe("exit %r" % rc)
    assert took < 2.2, "exited %.2fs after SIGTERM" % took
    rig.wait_flags(1, 1, timeout=1)
    assert re.search(REFUSED_RE, rig.bouncer.client_refused() or "")


# --------------------------------------------------------------------------
# 9. configuration check


def test_example_config_passes_check(notify_bin, workdir):
    conf = os.path.join(REPO, "examples", "pgtrack-notify.conf")
    template = os.path.join(REPO, "examples", "pgtrack-notify-databases.ini")
    assert os.path.isfile(conf), "examples/pgtrack-notify.conf does not exist"
    assert os.path.isfile(template), "examples/pgtrack-notify-databases.ini does not exist"
    # -t reads the template, which the example expects where it is installed:
    # check the example as it is, with only that path pointed at the repo's copy.
    text = open(conf).read()
    installed = "/etc/pgtrack-notify/databases.ini"
    assert installed in text
    copy = os.path.join(workdir, "pgtrack-notify.conf")
    write_file(copy, text.replace(installed, template))
    r = run_notify(notify_bin, "-t", "-f", copy)
    assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr
    # and as it is, the only complaint is the missing template
    if not os.path.exists(installed):
        r = run_notify(notify_bin, "-t", "-f", conf)
        assert r.returncode == 1
        assert [l for l in r.stderr.splitlines() if l.startswith(conf + ":")] == [
            l for l in r.stderr.splitlines() if installed in l], r.stderr


def good_conf(workdir):
    """A valid config whose files exist; line numbers are relied upon."""
    tmpl = os.path.join(workdir, "databases.tmpl")
    write_file(tmpl, "[databases]\nappdb = host=127.0.0.1 dbname=appdb\n")
    return [
        "[notify]",                                          # 1
        "fifo = /run/keepalived/notify.fifo",                 # 2
        "instance = VI_PG",                                   # 3
        "reconcile_interval = 10s",                           # 4
        "[pgbouncer]",                                        # 5
        "host = /var/run/postgresql",                         # 6
        "port = 6432",                                        # 7
        "user = pgbouncer",                                   # 8
        "databases = appdb, other",                           # 9
        "databases_file = %s" % os.path.join(workdir, "databases.ini"),  # 10
        "databases_template = %s" % tmpl,                     # 11
        "[hooks]",                                            # 12
        'on_master = /usr/bin/logger -t "pgtrack notify" master',  # 13
        "hook_timeout = 30s",                                 # 14
    ]


BAD_CONFS = {
    # name: (edit(lines) -> lines, words the message must contain)
    "both_instance_and_group": (lambda l: l[:3] + ["group = G_PG"] + l[3:], ["instance", "group"]),
    "neither_instance_nor_group": (lambda l: l[:2] + l[3:], ["instance", "group"]),
    "missing_databases": (lambda l: l[:8] + l[9:], ["databases"]),
    "databases_file_without_template": (lambda l: l[:10] + l[11:], ["databases_template"]),
    "unknown_key": (lambda l: l[:7] + ["colour = blue"] + l[7:], ['unknown key "colour" in section [pgbouncer]']),
    "wildcard_with_names": (lambda l: l[:8] + ["databases = appdb, *"] + l[9:], ["*", "alone"]),
    "hold_poll_too_short": (lambda l: l + ["[postgres]", "hold_poll = 1ms"], ["hold_poll"]),
}


def test_generated_good_config_passes_check(notify_bin, workdir):
    conf = os.path.join(workdir, "good.conf")
    write_file(conf, "\n".join(good_conf(workdir)) + "\n")
    r = run_notify(notify_bin, "-t", "-f", conf)
    assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr


@pytest.mark.parametrize("case", sorted(BAD_CONFS))
def test_bad_config_fails_check(notify_bin, workdir, case):
    edit, words = BAD_CONFS[case]
    lines = edit(good_conf(workdir))
    conf = os.path.join(workdir, case + ".conf")
    write_file(conf, "\n".join(lines) + "\n")
    r = run_notify(notify_bin, "-t", "-f", conf)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "configuration OK" not in r.stdout
    errs = [l for l in r.stderr.splitlines() if re.match(re.escape(conf) + r":(\d+): ", l)]
    assert errs, "no PATH:LINE: message:\n" + r.stderr
    for e in errs:
        n = int(re.match(re.escape(conf) + r":(\d+): ", e).group(1))
        assert 1 <= n <= len(lines), e
    assert any(all(w in e for w in words) for e in errs), "no message with %r:\n%s" % (words, r.stderr)
    if case == "unknown_key":
        assert errs == ['%s:8: unknown key "colour" in section [pgbouncer]' % conf], r.stderr


# --------------------------------------------------------------------------
# 10. group follower


def test_group_follower(rig):
    b = rig.bouncer
    n = rig.start(notify={"instance": None, "group": "G1"})
    rig.fifo.write(group("G1", "MASTER"))
    assert rig.wait_serving() == "appdb"
    off = n.log_size()
    rig.fifo.write(inst("G1", "BACKUP", 100) + inst("G1", "FAULT", 100))
    time.sleep(1.5)
    assert b.flags() == (0, 0), rig.describe("an INSTANCE line named like the group was acted on")
    rig.fifo.write(group("G1", "BACKUP"))
    rig.wait_fenced()
    rig.fifo.write(inst("G1", "MASTER", 100))
    time.sleep(1.5)
    assert b.flags() == (1, 1), rig.describe("an INSTANCE line named like the group was acted on")
    rig.fifo.write(group("G1", "MASTER"))
    rig.wait_serving()
    assert not [l for l in n.lines_since(off) if 'instance "G1"' in l and "->" in l]


# --------------------------------------------------------------------------
# an error that lasts is not logged at every reconcile


def test_lasting_pgbouncer_error_is_not_repeated_every_reconcile(rig):
    """A database pgbouncer does not know is an error on MASTER; the
    reconcile (every second here) meets it again and again, but it is logged
    once a minute, not at every run."""
    n = rig.start(notify={"reconcile_interval": "1s"},
                  pgbouncer={"databases": "%s nosuchdb" % APPDB})
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_serving()
    n.wait_for_log(r'pgbouncer at \S+ has no database "nosuchdb"')
    off = n.log_size()
    time.sleep(4.5)                     # four or five reconcile runs
    again = [l for l in n.log()[off:].splitlines() if 'has no database "nosuchdb"' in l]
    assert again == [], "repeated at every reconcile:\n" + "\n".join(again)


# --------------------------------------------------------------------------
# a step of the wall clock


LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def test_clock_step_back_does_not_silence_bad_line_warnings(rig):
    """Bad FIFO lines are logged at most 5 per 10 s.  The window is measured
    on the monotonic clock: when the wall clock steps back an hour (NTP, an
    operator's date -s), the next window still opens 10 s later.  On
    wall-clock time, every warning was held back for that hour."""
    if not os.path.exists(LIBFAKETIME):
        pytest.fail("libfaketime is missing: tests/install-deps installs faketime", pytrace=False)
    offset = os.path.join(rig.dir, "faketime")
    write_file(offset, "+0\n", 0o644)
    rig.notify.extra_env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": offset,
                            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    n = rig.start()
    for i in range(8):
        rig.fifo.write("garbage line %d\n" % i)
    wait_until(lambda: len([l for l in n.log().splitlines() if "skipped a bad line" in l]) == 5,
               5, describe=n.describe)
    write_file(offset, "-1h\n", 0o644)        # the wall clock steps back one hour
    off = n.log_size()
    deadline = time.monotonic() + 14
    seen = False
    while time.monotonic() < deadline and not seen:
        rig.fifo.write("more garbage\n")
        time.sleep(0.5)
        seen = "more bad lines were skipped" in n.log()[off:]
    assert seen, n.describe("no bad-line warning 14 s after the clock stepped back")


# --------------------------------------------------------------------------
# 11. hooks


def test_hook_environment_is_minimal(rig):
    """A hook gets PATH, LANG and the event's PGTRACK_* variables, nothing
    else of pgtrack-notify's environment: no PGPASSWORD, no HOME."""
    d = rig.dir
    rig.notify.extra_env = {"PGPASSWORD": "Hook-Must-Not-See-7c1f", "LANG": "C.UTF-8",
                            "SOME_TOKEN": "Hook-Must-Not-See-2b9e"}
    n = rig.start(hooks={"on_master": "/usr/bin/env"})
    rig.fifo.write('INSTANCE "%s" MASTER 175\n' % VI)
    rig.wait_serving()
    n.wait_for_log(r"hook on_master \[\d+\] finished")
    env = {}
    for line in n.log().splitlines():
        m = re.search(r"hook on_master \[\d+\]: ([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2)
    assert env == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "PGTRACK_EVENT": "master",
        "PGTRACK_VRRP_KIND": "INSTANCE",
        "PGTRACK_VRRP_NAME": VI,
        "PGTRACK_VRRP_STATE": "MASTER",
        "PGTRACK_VRRP_PRIORITY": "175",
    }, n.describe("the hook's environment: %r" % env)
    assert "Hook-Must-Not-See" not in n.log()


HOOK_MASTER = """#!/bin/sh
printf '%s\\n' "$@" > "{dir}/argv.tmp"
readlink /proc/self/fd/0 >> "{dir}/argv.tmp"
mv "{dir}/argv.tmp" "{dir}/argv"
echo hook-says-hello-master
touch "{dir}/master.marker"
"""

HOOK_SLEEP = """#!/bin/sh
echo $$ > "{dir}/sleeper.pid"
exec sleep 30
"""


def test_hooks(rig):
    d = rig.dir
    for name, text in (("master.sh", HOOK_MASTER), ("sleeper.sh", HOOK_SLEEP)):
        write_file(os.path.join(d, name), text.format(dir=d), 0o755)
    n = rig.start(hooks={
        "on_master": '%s/master.sh "arg one" two $HOME' % d,
        "on_backup": "/bin/false",
        "on_fault": "%s/sleeper.sh" % d,
        "hook_timeout": "1s",
    })
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_serving()
    marker = os.path.join(d, "master.marker")
    wait_until(lambda: os.path.exists(marker), 10, describe=n.describe)
    with open(os.path.join(d, "argv")) as f:
        assert f.read().splitlines() == ["arg one", "two", "$HOME", "/dev/null"], \
            "argv (quotes group, no shell) and stdin /dev/null"
    n.wait_for_log(r"hook-says-hello-master")

    off = n.log_size()
    rig.fifo.write(inst(VI, "BACKUP"))
    rig.wait_fenced()
    n.wait_for_log(r"(on_backup|/bin/false).*\b(status|code|exit(ed)?)\b\D{0,20}\b1\b", start=off)

    off = n.log_size()
    rig.fifo.write(inst(VI, "FAULT"))
    pidfile = os.path.join(d, "sleeper.pid")
    wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 10, describe=n.describe)
    pid = int(open(pidfile).read())
    rig.leftover_pids.append((pid, "sleep"))
    t0 = time.monotonic()
    assert wait_pid_gone(pid, 6), n.describe("hook still running 6s after it started (hook_timeout 1s)")
    took = time.monotonic() - t0
    assert took > 0.5, "the hook died after %.2fs, before hook_timeout" % took
    n.wait_for_log(r"(on_fault|sleeper\.sh).*(kill|timed out|timeout)", start=off)
    assert n.alive()


# --------------------------------------------------------------------------
# 12. an unsafe FIFO is refused


def _fifo_case(rig, case):
    p = rig.fifo_path
    if case == "others_writable_0622":
        rig.make_fifo(0o622)
    elif case == "group_writable_0620":
        rig.make_fifo(0o620)
    elif case in ("owned_by_postgres", "owned_by_postgres_allowed"):
        rig.make_fifo()
        os.chown(p, *pg_ids())
    elif case == "regular_file":
        write_file(p, "", 0o600)
    elif case == "symlink":
        real = os.path.join(rig.dir, "real.fifo")
        os.mkfifo(real, 0o600)
        os.symlink(real, p)


@pytest.mark.parametrize("case", ["others_writable_0622", "group_writable_0620", "owned_by_postgres",
                                  "regular_file", "symlink"])
def test_unsafe_fifo_refused(notify_bin, pg, case):
    rig = Rig(notify_bin, pg)
    try:
        rig.start_bouncer()
        _fifo_case(rig, case)
        rig.notify.write_config(rig.sections())
        r = run_notify(notify_bin, "-f", rig.notify.conf, "-l", "-v", timeout=10, home=rig.dir)
        assert r.returncode == 1, (r.returncode, r.stderr)
        errs = [l for l in r.stderr.splitlines() if " error: " in l and rig.fifo_path in l]
        assert errs, "no error naming the FIFO:\n" + r.stderr
        if case == "others_writable_0622":
            assert any("writable" in e for e in errs), errs
    finally:
        rig.close()


def test_fifo_owned_by_configured_owner_accepted(rig_nofifo):
    rig = rig_nofifo
    _fifo_case(rig, "owned_by_postgres_allowed")
    rig.fifo = Fifo.attach(rig.fifo_path)
    rig.start(notify={"fifo_owner": "postgres"})
    rig.apply("MASTER", True)


@pytest.fixture
def rig_nofifo(notify_bin, pg):
    r = Rig(notify_bin, pg)
    try:
        r.start_bouncer()
        yield r
    finally:
        r.close()


# --------------------------------------------------------------------------
# 13. a missing FIFO is created


def test_missing_fifo_created_0600(rig_nofifo):
    rig = rig_nofifo
    rig.notify.write_config(rig.sections())
    rig.notify.start()
    wait_until(lambda: os.path.exists(rig.fifo_path), 10, describe=rig.notify.describe)
    st = os.lstat(rig.fifo_path)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0, oct(st.st_mode)
    rig.wait_fifo_open()
    rig.fifo = Fifo.attach(rig.fifo_path)
    rig.apply("MASTER", True)


# --------------------------------------------------------------------------
# 12. hold, don't refuse (issue 10 part 3): the VIP arrives before the
# promotion. pgbouncer is in front of a standby; [postgres] names it.


class HeldClient:
    """A client through pgbouncer, in a thread: connects, writes, reports
    when its write was acknowledged or which error it got."""

    def __init__(self, bouncer, name, connect_timeout=30):
        import threading
        self.name = name
        self.done = None
        self.error = None
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


def test_hold_until_promotion_then_serve_within_100ms_cold_pool(standby_rig):
    """MASTER while the local PostgreSQL is still a standby: clients wait in
    pgbouncer (no error, no read-only server) and their writes go through
    within 100 ms of the promotion, although the pool is cold: a client
    logged in while the database was paused, which makes pgbouncer 1.18
    wait server_login_retry (0.05 here, as in examples/pgbouncer.ini)
    before its next server login."""
    rig = standby_rig
    b = rig.start_bouncer(server_login_retry="0.05")
    rig.make_fifo()
    n = rig.start(postgres=rig.postgres_section())
    rig.apply("BACKUP", False)
    off = n.log_size()
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_flags(1, 0)                 # held: enabled, paused
    n.wait_for_log(r"holding clients in pgbouncer until it is primary", start=off)
    n.wait_for_log(r"pgbouncer: holding \(paused, clients wait\) databases appdb", start=off)
    early = HeldClient(b, "held_early")
    time.sleep(1.0)
    assert early.done is None, "a client was not held: %r" % early.error
    assert b.flags() == (1, 0)
    wait_until(lambda: "closing because: pause mode" in b.log(), 5,
               describe=lambda: "the cold-pool trap was not set:\n" + b.log()[-2000:])
    late = HeldClient(b, "held_late")
    time.sleep(0.01)
    # when the promotion really happened: pg_promote(wait => true) polls every
    # 100 ms, so a direct session asks pg_is_in_recovery() every 2 ms too
    import threading
    seen = {}

    def watch_promotion():
        with rig.pg.connect() as conn:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    seen["at"] = time.monotonic()
                    return
                time.sleep(0.002)
    watcher = threading.Thread(target=watch_promotion, daemon=True)
    watcher.start()
    rig.pg.promote()                     # pg_promote(wait => true)
    returned = time.monotonic()
    watcher.join(30)
    assert "at" in seen
    assert early.join(10) and late.join(10), rig.describe("held clients still waiting 10 s after the promotion")
    assert early.error is None and late.error is None, (early.error, late.error)
    ms = {c.name: round((c.done - returned) * 1000) for c in (early, late)}
    real = {c.name: round((c.done - seen["at"]) * 1000) for c in (early, late)}
    print("writes acknowledged, ms after pg_promote returned: %r; after the promotion: %r" % (ms, real))
    assert max(ms.values()) <= 100, rig.describe("acknowledged %r ms after pg_promote returned" % ms)
    # from the promotion itself: hold_poll (20 ms), RESUME, then pgbouncer
    # opens one server connection at a time (a backend start each)
    assert max(real.values()) <= 250, rig.describe("acknowledged %r ms after the promotion" % real)
    assert b.flags() == (0, 0)
    n.wait_for_log(r"is primary: serving, ending the hold", start=off)
    lines = n.lines_since(off)
    assert not [l for l in lines if " RELOAD" in l], "RELOAD on the MASTER path:\n" + "\n".join(lines)
    # losing the VIP fences at once, as without a hold
    rig.apply("BACKUP", False)


def test_hold_timeout_fences_then_serves_on_promotion(standby_rig):
    """hold_timeout passes with the local PostgreSQL still a standby: logged
    as an error, pgbouncer fenced (held clients disconnected, new ones
    refused at once), and served as soon as the promotion comes. pgbouncer's
    default-like server_login_retry gets a warning."""
    import psycopg
    rig = standby_rig
    b = rig.start_bouncer(server_login_retry="15")
    rig.make_fifo()
    n = rig.start(postgres=rig.postgres_section(hold_timeout="2s"))
    rig.apply("BACKUP", False)
    n.wait_for_log(r"warning: pgbouncer at \S+ has server_login_retry = 15 s")
    off = n.log_size()
    t0 = time.monotonic()
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_flags(1, 0)
    held = HeldClient(b, "held_timeout")
    time.sleep(0.5)
    assert held.done is None, held.error
    n.wait_for_log(r"error: local PostgreSQL at \S+ is still a standby 2\.0s \(hold_timeout\) after "
                   r"this node became MASTER: fencing", start=off, timeout=5)
    took = time.monotonic() - t0
    assert 1.9 <= took <= 3.5, took
    rig.wait_fenced(timeout=3)
    assert held.join(5) and held.error is not None, "the held client was not let go: %r" % held.error
    assert "read-only" not in held.error, held.error
    with pytest.raises(psycopg.OperationalError):
        b.client().execute("SELECT 1")
    rig.pg.promote()
    assert rig.wait_serving(timeout=5) == "appdb"
    assert not rig.pg.in_recovery()
    n.wait_for_log(r"is primary: serving \(after the hold timed out\)", start=off)


def test_master_with_primary_serves_at_once_no_hold(rig):
    """[postgres] set, the local PostgreSQL already primary: MASTER serves
    without a hold."""
    n = rig.start(postgres=rig.postgres_section())
    rig.apply("BACKUP", False)
    off = n.log_size()
    t0 = time.monotonic()
    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving(timeout=5) == "appdb"
    assert time.monotonic() - t0 < 1.0
    assert not [l for l in n.lines_since(off) if "holding" in l]


def test_restart_on_master_does_not_kill_clients(rig):
    """pgtrack-notify restarted on a MASTER (VIP here) with [postgres]: the
    clients of the primary are left alone while the probe connects."""
    n = rig.start(notify={"vip": "127.0.0.1"}, postgres=rig.postgres_section())
    n.wait_for_log(r"pgbouncer: serving databases appdb \(this node is MASTER \(VIP here\)\)")
    assert rig.wait_serving() == "appdb"
    conn = rig.bouncer.client()
    conn.execute("SELECT 1")
    assert rig.notify.stop() == 0
    rig.notify = Notify(rig.binary, rig.dir)
    rig.start(notify={"vip": "127.0.0.1"}, postgres=rig.postgres_section())
    rig.notify.wait_for_log(r"taking it as MASTER")
    time.sleep(1.0)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    conn.close()
    assert rig.bouncer.flags() == (0, 0)
    assert not admin_cmds(rig.notify.lines_since(0), "KILL"), rig.notify.describe()


# --------------------------------------------------------------------------
# 13. the template installed at start, fenced, on a BACKUP (issue 10 part 4)


def test_template_installed_fenced_at_start_on_backup(rig):
    """vip elsewhere at start: the databases file is the template and its
    databases are known to pgbouncer but fenced, before keepalived said
    anything; MASTER then needs no RELOAD."""
    b = rig.bouncer
    assert b.db()["database"] == "postgres"
    n = rig.start(notify={"vip": "192.0.2.77"})
    rig.wait_flags(1, 1)
    assert b.db()["database"] == "appdb" and b.db()["pool_size"] == 7
    with open(b.databases_file) as f:
        assert f.read() == rig.template_text
    rig.wait_fenced()
    off = n.log_size()
    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving() == "appdb"
    assert not [l for l in n.lines_since(off) if " RELOAD" in l], n.describe()


# --------------------------------------------------------------------------
# 14. databases = * with pgbouncer's fallback database (issue 10 part 4)


def test_wildcard_fences_and_serves_auto_databases(rig):
    b = rig.bouncer
    text = ("; wildcard template\n[databases]\nappdb = host=127.0.0.1 port=%d dbname=appdb\n"
            "* = host=127.0.0.1 port=%d\n" % (rig.pg.port, rig.pg.port))
    write_file(rig.template, text, 0o644)
    n = rig.start(pgbouncer={"databases": "*"})
    rig.apply("BACKUP", False)
    with open(b.databases_file) as f:
        fenced_file = f.read()
    # pgbouncer 1.18 keeps a fallback that a RELOAD no longer finds: the
    # line stays, sent to a database that does not exist
    assert "* = host=127.0.0.1 port=%d dbname=pgtrack_notify_fenced\n" % rig.pg.port in fenced_file, fenced_file
    assert "appdb = host=127.0.0.1 port=%d dbname=appdb\n" % rig.pg.port in fenced_file, fenced_file
    # a new name created from the fallback on a fenced node is refused at
    # once, never served by this node's PostgreSQL
    msg = b.client_refused(dbname="postgres")
    assert msg and 'database "pgtrack_notify_fenced" does not exist' in msg, msg

    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving() == "appdb", rig.describe(open(b.databases_file).read())
    assert open(b.databases_file).read() == text
    assert b.client_works(dbname="postgres") == "postgres"      # auto-created
    assert "postgres" in b.show_databases()

    off = n.log_size()
    rig.fifo.write(inst(VI, "BACKUP"))
    rig.wait_fenced()
    # the auto-created database is fenced (pgbouncer may also drop it after
    # the KILL, and then recreates it from the fenced fallback)
    wait_until(lambda: "postgres" not in b.show_databases() or b.flags("postgres") == (1, 1), 5,
               describe=rig.describe)
    msg = b.client_refused(dbname="postgres")
    assert msg and re.search(r'database "?postgres"? is disabled|does not allow|"pgtrack_notify_fenced" does not', msg), msg
    msg = b.client_refused(dbname="template1")
    assert msg and 'database "pgtrack_notify_fenced" does not exist' in msg, msg
    lines = n.lines_since(off)
    assert [l for l in lines if re.search(r'pgbouncer: (DISABLE|KILL) "?postgres"?$', l)], "\n".join(lines)
    n.wait_for_log(r"fenced databases \* \(all that pgbouncer lists\)", start=off)

    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving() == "appdb"
    assert b.client_works(dbname="postgres") == "postgres"
    assert b.client_works(dbname="template1") == "template1"
    assert b.flags("postgres") == (0, 0)
    assert b.flags("pgbouncer") == (0, 0)        # the console is never touched


def test_fallback_in_template_needs_wildcard(notify_bin, workdir):
    lines = good_conf(workdir)
    tmpl = [l.split("=", 1)[1].strip() for l in lines if l.startswith("databases_template")][0]
    with open(tmpl, "a") as f:
        f.write("* = host=127.0.0.1 port=5432\n")
    conf = os.path.join(workdir, "fallback.conf")
    write_file(conf, "\n".join(lines) + "\n")
    r = run_notify(notify_bin, "-t", "-f", conf)
    assert r.returncode == 1 and "databases = *" in r.stderr, r.stderr
    lines = [("databases = *" if l.startswith("databases =") else l) for l in lines]
    write_file(conf, "\n".join(lines) + "\n")
    r = run_notify(notify_bin, "-t", "-f", conf)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------
# 15. keepalived never names the followed instance (issue 10 part 5)


def test_warns_when_followed_instance_is_never_reported(rig):
    n = rig.start()
    t0 = time.monotonic()
    rig.fifo.write(inst("PG_VIP", "BACKUP") + group("G_OTHER", "BACKUP") + inst("PG_VIP", "MASTER"))
    line = n.wait_for_log(r"warning: keepalived has reported", timeout=10)
    assert time.monotonic() - t0 >= 4.5
    assert 'instance "PG_VIP"' in line and 'group "G_OTHER"' in line and 'never instance "VI_PG"' in line, line
    assert "[notify] instance" in line, line
    rig.fifo.write(inst("PG_VIP", "BACKUP"))
    time.sleep(6)
    assert len([l for l in n.log().splitlines() if "keepalived has reported" in l]) == 1


def test_no_warning_when_followed_instance_is_reported(rig):
    n = rig.start()
    rig.fifo.write(inst("VI_OTHER", "BACKUP"))
    time.sleep(1)
    rig.fifo.write(inst(VI, "BACKUP"))
    rig.wait_fenced()
    time.sleep(5)
    assert "keepalived has reported" not in n.log()


def test_losing_the_vip_during_a_hold_fences_at_once(standby_rig):
    """BACKUP while clients are held: they are disconnected at once (KILL of
    the paused database) so that they reconnect through the VIP, and new
    ones are refused."""
    rig = standby_rig
    b = rig.start_bouncer(server_login_retry="0.05")
    rig.make_fifo()
    n = rig.start(postgres=rig.postgres_section())
    rig.apply("BACKUP", False)
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_flags(1, 0)
    held = HeldClient(b, "held_lost")
    time.sleep(0.5)
    assert held.done is None, held.error
    off = n.log_size()
    t0 = time.monotonic()
    rig.fifo.write(inst(VI, "BACKUP"))
    assert held.join(3), rig.describe("the held client still waits after BACKUP")
    assert held.done - t0 < 1.0 and held.error is not None, (held.done - t0, held.error)
    assert "read-only" not in held.error, held.error
    rig.wait_fenced(timeout=2)
    assert admin_cmds(n.lines_since(off), "KILL"), n.describe()


def test_promoted_while_backup_serves_without_a_hold(standby_rig):
    """The promotion came first, while BACKUP (the session idles and last
    saw a standby): MASTER asks again and serves, with no hold logged."""
    rig = standby_rig
    rig.start_bouncer(server_login_retry="0.05")
    rig.make_fifo()
    n = rig.start(postgres=rig.postgres_section())
    rig.apply("BACKUP", False)
    n.wait_for_log(r"local PostgreSQL at \S+: standby")
    rig.pg.promote()
    time.sleep(0.3)
    off = n.log_size()
    t0 = time.monotonic()
    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving(timeout=5) == "appdb"
    assert time.monotonic() - t0 < 1.0
    # pgbouncer may hold for the millisecond the session takes to answer,
    # but nothing says the server is a standby
    lines = n.lines_since(off)
    assert not [l for l in lines if re.search(r"holding clients|not primary yet|still a standby|ending the hold", l)], \
        "\n".join(lines)


def test_postgres_section_that_cannot_log_in_serves_without_hold(rig):
    """[postgres] names a role that does not exist: no answer will ever come,
    so MASTER serves as without the section, with an error, instead of
    holding (and then fencing) a healthy primary; and the server is not
    asked at every hold_poll."""
    n = rig.start(postgres=rig.postgres_section(user="pgtrack_no_such_role"))
    rig.apply("BACKUP", False)
    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving(timeout=5) == "appdb"
    n.wait_for_log(r"error: cannot ask the local PostgreSQL at \S+ whether it is primary \(.*"
                   r"pgtrack_no_such_role.*\): serving on MASTER without the hold")
    before = open(rig.pg.logfile, errors="replace").read().count('role "pgtrack_no_such_role" does not exist')
    time.sleep(2)
    after = open(rig.pg.logfile, errors="replace").read().count('role "pgtrack_no_such_role" does not exist')
    assert after - before <= 5, "%d refused logins in 2 s (backoff from 250 ms)" % (after - before)
