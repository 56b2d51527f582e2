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
import signal
import subprocess
import time

import pytest

from kit.fifo import Fifo, group, inst
from kit.files import write_file
from kit.notify import NOTIFY_LOG_RE
from kit.postgres import pg_ids
from kit.waiting import wait_until
from notify_rig import ADMIN_CMD_RE, REFUSED_RE, VI, admin_cmds, transition_re
from notify_rig import notify_bin, pg, rig  # noqa: F401  (fixtures)


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
# 2. BACKUP holds (or, with backup_clients = refuse, fences); FAULT / STOP fence


@pytest.mark.parametrize("backup_clients", ["wait", "refuse"])
def test_backup_holds_fault_stop_fence_then_master_serves(rig, backup_clients):
    """Leaving MASTER cuts the clients at once.  On BACKUP new clients wait
    in the paused database (the VIP may be arriving here: keepalived adds it
    before it writes MASTER to the FIFO) or, with backup_clients = refuse,
    are refused; FAULT and STOP refuse them, cutting those that waited."""
    b = rig.bouncer
    n = rig.start(pgbouncer={"backup_clients": backup_clients})
    rig.apply("MASTER", True)
    served = b.client()
    assert served.execute("SELECT 1").fetchone() == (1,)
    off = n.log_size()
    rig.apply("BACKUP", False)
    import psycopg
    with pytest.raises(psycopg.OperationalError):
        served.execute("SELECT 1")
    served.close()
    # pgtrack-notify logs KILL when pgbouncer answers it, which may be after the client saw it
    n.wait_for_log(ADMIN_CMD_RE % "KILL", 5, off)
    lines = n.lines_since(off)
    if backup_clients == "wait":
        assert not admin_cmds(lines, "DISABLE"), "\n".join(lines)
        n.wait_for_log(r"info: pgbouncer: holding \(paused, clients wait\) databases appdb "
                       r"\(this node is BACKUP\)", start=off)
        # FAULT refuses new clients and cuts the one that waited
        off = n.log_size()
        rig.apply("FAULT", False)
        n.wait_for_log(ADMIN_CMD_RE % "KILL", 5, off)
        lines = n.lines_since(off)
        assert admin_cmds(lines, "DISABLE") and admin_cmds(lines, "KILL"), "\n".join(lines)
    else:
        assert admin_cmds(lines, "DISABLE"), "\n".join(lines)
        n.wait_for_log(r"info: pgbouncer: fenced databases appdb \(this node is BACKUP\)", start=off)
        rig.fifo.write(inst(VI, "FAULT", 100))
        n.wait_for_log(transition_re(VI, "FAULT"), start=off)

    # already fenced: STOP sends no DISABLE/KILL again
    off = n.log_size()
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


def test_client_waiting_on_backup_is_served_when_master(rig):
    """The takeover race: a client that reaches this node while it is still
    BACKUP (keepalived has added the VIP, the MASTER line is not read yet)
    waits, and is served once MASTER arrives: not refused, not cut."""
    from notify_rig import HeldClient
    b = rig.bouncer
    rig.start()
    rig.apply("BACKUP", False)
    early = HeldClient(b, "waited_on_backup")
    time.sleep(0.5)
    assert early.done is None, "a client on BACKUP was not held: %r" % early.error
    rig.fifo.write(inst(VI, "MASTER", 100))
    assert early.join(10), rig.describe("the client that waited on BACKUP still waits on MASTER")
    assert early.error is None, rig.describe("the client that waited on BACKUP failed: %s" % early.error)
    assert b.flags() == (0, 0)


# --------------------------------------------------------------------------
# 3. FIFO recreated (keepalived reload)


def test_fifo_recreated_new_inode_is_followed(rig):
    n = rig.start()
    rig.apply("MASTER", True)
    old = rig.fifo.replace()
    rig.fifo.write(inst(VI, "BACKUP", 100))
    rig.wait_held(timeout=10)
    # it reads the new FIFO and no longer holds the old one
    wait_until(lambda: rig.fifo_fds() == {os.stat(rig.fifo_path).st_ino}, 5,
               describe=lambda: "FIFO fds %r, old inode %d" % (rig.fifo_fds(), old))
    rig.fifo.write(inst(VI, "MASTER", 100))
    rig.wait_serving()
    assert n.alive()


# An LD_PRELOAD shim: from the Nth open() of one path on, open fails with
# EMFILE, as when the descriptor table is full (or the FIFO was swapped for
# one that fails a check) between two opens of the same path.
FAIL_OPEN_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int opened;

static int refuse(const char *path)
{
	const char *p = getenv("PGTRACK_FAIL_OPEN_PATH"), *from = getenv("PGTRACK_FAIL_OPEN_FROM");

	if (!p || !from || strcmp(p, path) != 0)
		return 0;
	return ++opened >= atoi(from);
}

#define WRAP(name)                                                              \
	int name(const char *path, int flags, ...)                              \
	{                                                                       \
		static int (*real)(const char *, int, ...);                     \
		unsigned mode = 0;                                              \
		if (flags & (O_CREAT | O_TMPFILE)) {                            \
			va_list ap;                                             \
			va_start(ap, flags);                                    \
			mode = va_arg(ap, unsigned);                            \
			va_end(ap);                                             \
		}                                                               \
		if (refuse(path)) {                                             \
			errno = EMFILE;                                         \
			return -1;                                              \
		}                                                               \
		if (!real)                                                      \
			real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name); \
		return real(path, flags, mode);                                 \
	}
WRAP(open)
WRAP(open64)
"""


def build_fail_open(directory):
    src = os.path.join(directory, "fail_open.c")
    so = os.path.join(directory, "fail_open.so")
    write_file(src, FAIL_OPEN_C, 0o644)
    r = subprocess.run(["cc", "-shared", "-fPIC", "-o", so, src, "-ldl"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0, "cannot build the open() shim:\n" + r.stdout
    return so


def reload_with_fifo(rig, path):
    """Point [notify] fifo at path and send SIGHUP; the log offset before it."""
    off = rig.notify.log_size()
    rig.notify.write_config(rig.sections(notify={"fifo": path}))
    os.kill(rig.notify.pid, signal.SIGHUP)
    rig.notify.wait_for_log(r"configuration reload(ed| failed)", 10, start=off)
    return off


def test_reload_to_another_fifo_opens_it_once_and_reads_it(rig):
    """A reload that names another FIFO opens it once and reads it.

    Before issue 11 the reload opened the new FIFO, closed it and opened it
    again in place; when that second open failed, pgtrack-notify read no FIFO
    at all (old closed, new not open) while saying the configuration was
    reloaded. The shim makes every open of the new path after the first fail.
    """
    new = os.path.join(rig.dir, "new.fifo")
    rig.notify.extra_env = {"LD_PRELOAD": build_fail_open(rig.dir),
                            "PGTRACK_FAIL_OPEN_PATH": new, "PGTRACK_FAIL_OPEN_FROM": "2"}
    n = rig.start()
    rig.apply("BACKUP", False)
    second = Fifo(new)
    try:
        off = reload_with_fifo(rig, new)
        wait_until(lambda: rig.fifo_fds() == {os.stat(new).st_ino}, 5,
                   describe=lambda: rig.describe("FIFO fds %r after the reload to %s (inode %d)" % (
                       rig.fifo_fds(), new, os.stat(new).st_ino)))
        second.write(inst(VI, "MASTER"))
        assert rig.wait_serving() == "appdb"
        assert "configuration reloaded" in n.log_since(off)
        assert n.alive()
    finally:
        second.close()


def test_reload_to_an_unsafe_fifo_keeps_reading_the_old_one(rig):
    """A new FIFO that fails its check: the reload is refused, with an error,
    and the FIFO in use is still read."""
    new = os.path.join(rig.dir, "unsafe.fifo")
    n = rig.start()
    rig.apply("BACKUP", False)
    second = Fifo(new, 0o620)
    try:
        off = reload_with_fifo(rig, new)
        n.wait_for_log(r"error: FIFO %s is writable by its group .*; configuration reload failed, "
                       r"keeping the running configuration" % re.escape(new), 5, start=off)
        assert rig.fifo_fds() == {os.stat(rig.fifo_path).st_ino}, rig.describe()
        rig.apply("MASTER", True)
        assert "configuration reloaded" not in n.log_since(off)
    finally:
        second.close()


# --------------------------------------------------------------------------
# 4. pgbouncer down while MASTER arrives


def test_pgbouncer_outage_pending_state_applied_once_back(rig):
    b = rig.bouncer
    n = rig.start()
    rig.apply("BACKUP", False)
    # the template is installed on BACKUP too, held (no RELOAD on MASTER)
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
    rig.wait_held(timeout=5)
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
    rig.wait_held(timeout=15)
    took = time.monotonic() - t0
    time.sleep(0.5)
    assert n.alive(), n.describe()
    assert b.flags() == (1, 0)
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
