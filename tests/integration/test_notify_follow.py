"""pgtrack-notify following keepalived beyond one instance: groups, errors
that last, a clock step, hooks, the template at start, databases = *, a
followed instance keepalived never names."""

import os
import re
import time

import pytest

from kit.fifo import group, inst
from kit.files import write_file
from kit.pgbouncer import APPDB
from kit.procs import wait_pid_gone
from kit.waiting import wait_until
from notify_rig import VI
from notify_rig import notify_bin, pg, rig  # noqa: F401  (fixtures)


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
    rig.wait_held()
    rig.fifo.write(inst("G1", "MASTER", 100))
    time.sleep(1.5)
    assert b.flags() == (1, 0), rig.describe("an INSTANCE line named like the group was acted on")
    rig.fifo.write(group("G1", "MASTER"))
    rig.wait_serving()
    assert not [l for l in n.lines_since(off) if 'instance "G1"' in l and "->" in l]


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
    rig.wait_held()
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


def test_template_installed_held_at_start_on_backup(rig):
    """vip elsewhere at start: the databases file is the template and its
    databases are known to pgbouncer but held (paused, clients wait), before
    keepalived said anything; MASTER then needs no RELOAD."""
    b = rig.bouncer
    assert b.db()["database"] == "postgres"
    n = rig.start(notify={"vip": "192.0.2.77"})
    rig.wait_flags(1, 0)
    assert b.db()["database"] == "appdb" and b.db()["pool_size"] == 7
    with open(b.databases_file) as f:
        assert f.read() == rig.template_text
    rig.wait_held()
    off = n.log_size()
    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving() == "appdb"
    assert not [l for l in n.lines_since(off) if " RELOAD" in l], n.describe()


def test_wildcard_fences_and_serves_auto_databases(rig):
    b = rig.bouncer
    text = ("; wildcard template\n[databases]\nappdb = host=127.0.0.1 port=%d dbname=appdb\n"
            "* = host=127.0.0.1 port=%d\n" % (rig.pg.port, rig.pg.port))
    write_file(rig.template, text, 0o644)
    # Auto-created databases cannot wait on a BACKUP (pgbouncer creates them
    # from the fenced fallback, unpaused): this is the refusing fence.
    n = rig.start(pgbouncer={"databases": "*", "backup_clients": "refuse"})
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
    rig.wait_held()
    time.sleep(5)
    assert "keepalived has reported" not in n.log()
