"""Hold, don't refuse (issue 10 part 3): the VIP arrives before the
promotion; pgbouncer in front of a standby that [postgres] names."""

import re
import time

import pytest

from kit.fifo import inst
from kit.notify import Notify
from kit.waiting import wait_until
from kit.pgserver import backend_pids
from kit.procs import wait_pid_gone
from notify_rig import VI, HeldClient, PromotionWatch, Rig, admin_cmds
from notify_rig import ADMIN_GLOBAL_RE
from notify_rig import notify_bin, pg, rig, standby_rig  # noqa: F401  (fixtures)

SESSION_RENEW = {"session_renew": "1s"}


def master_on_a_standby(rig):
    """pgbouncer (server_login_retry 0.05) and pgtrack-notify with [postgres];
    BACKUP, then MASTER while the local PostgreSQL is a standby: held."""
    b = rig.start_bouncer(server_login_retry="0.05")
    rig.make_fifo()
    n = rig.start(postgres=rig.postgres_section())
    rig.apply("BACKUP", False)
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_flags(1, 0)
    return b, n


def test_hold_until_promotion_then_serve_within_100ms_cold_pool(standby_rig):
    """MASTER while the local PostgreSQL is still a standby: clients wait in
    pgbouncer (no error, no read-only server) and their writes go through
    within 100 ms of the promotion, although the pool is cold. A client that
    logs in to a paused database with a cold pool makes pgbouncer 1.18 open
    a server connection and close it at once ("pause mode"), a fork on the
    server being promoted for every client, and a failed login that can make
    the first server connection after RESUME wait server_login_retry (0.05
    here, as in examples/pgbouncer.ini): under the hold's global PAUSE
    (every database pgbouncer lists is ours) it opens none."""
    rig = standby_rig
    b = rig.start_bouncer(server_login_retry="0.05")
    rig.make_fifo()
    n = rig.start(postgres=rig.postgres_section())
    rig.apply("BACKUP", False)
    # a BACKUP holds too: the hold is in place (its last command answered) before MASTER
    n.wait_for_log(r"pgbouncer: holding \(paused, clients wait\) databases appdb \(this node is BACKUP", 5)
    off = n.log_size()
    rig.fifo.write(inst(VI, "MASTER"))
    rig.wait_flags(1, 0)                 # held: enabled, paused
    n.wait_for_log(r"holding clients in pgbouncer until it is primary", start=off)
    servers_before = b.log().count("closing because: pause mode")
    early = HeldClient(b, "held_early")
    time.sleep(1.0)
    assert early.done is None, "a client was not held: %r" % early.error
    assert b.flags() == (1, 0)
    late = HeldClient(b, "held_late")
    time.sleep(0.3)
    assert b.log().count("closing because: pause mode") == servers_before, \
        "pgbouncer opened server connections for held clients:\n" + b.log()[-2000:]
    time.sleep(0.01)
    watch = PromotionWatch(rig.pg)
    rig.pg.promote()                     # pg_promote(wait => true)
    returned = time.monotonic()
    assert watch.join() is not None
    assert early.join(10) and late.join(10), rig.describe("held clients still waiting 10 s after the promotion")
    assert early.error is None and late.error is None, (early.error, late.error)
    ms = {c.name: round((c.done - returned) * 1000) for c in (early, late)}
    real = {c.name: round((c.done - watch.at) * 1000) for c in (early, late)}
    print("writes acknowledged, ms after pg_promote returned: %r; after the promotion: %r" % (ms, real))
    assert max(ms.values()) <= 100, rig.describe("acknowledged %r ms after pg_promote returned" % ms)
    # from the promotion itself: hold_poll (5 ms), RESUME, then pgbouncer
    # opens one server connection at a time (a backend start each)
    assert max(real.values()) <= 250, rig.describe("acknowledged %r ms after the promotion" % real)
    assert b.flags() == (0, 0)
    n.wait_for_log(r"is primary: serving, ending the hold", start=off)
    lines = n.lines_since(off)
    assert not [l for l in lines if " RELOAD" in l], "RELOAD on the MASTER path:\n" + "\n".join(lines)
    # the hold's global PAUSE lifted, the held databases resumed, SHOW DATABASES
    # after: one round trip less
    end = next(i for i, l in enumerate(lines) if "ending the hold" in l)
    sent = [m.group(1) for m in (re.search(r"debug: pgbouncer: sending (.*)$", l) for l in lines[end:]) if m]
    assert sent[:3] == ["RESUME", "RESUME appdb", "SHOW DATABASES"], "\n".join(lines[end:])
    # losing the VIP cuts the clients at once, as without a hold
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


def test_losing_the_vip_during_a_hold_cuts_its_clients_at_once(standby_rig):
    """BACKUP while clients are held: they are disconnected at once (KILL of
    the paused database) so that they reconnect through the VIP; new ones
    wait, as on any BACKUP."""
    rig = standby_rig
    b, n = master_on_a_standby(rig)
    held = HeldClient(b, "held_lost")
    time.sleep(0.5)
    assert held.done is None, held.error
    off = n.log_size()
    t0 = time.monotonic()
    rig.fifo.write(inst(VI, "BACKUP"))
    assert held.join(3), rig.describe("the held client still waits after BACKUP")
    assert held.done - t0 < 1.0 and held.error is not None, (held.done - t0, held.error)
    assert "read-only" not in held.error, held.error
    rig.wait_held(timeout=2)
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


def test_hold_with_a_database_not_ours_pauses_only_ours(standby_rig):
    """pgbouncer also lists a database pgtrack-notify does not manage: a
    global PAUSE would hold it too, so the hold pauses only ours; the other
    keeps serving throughout, and ours is served after the promotion."""
    rig = standby_rig
    rig.template_text += "\nreports = host=127.0.0.1 port=%d dbname=postgres\n" % rig.pg.port
    with open(rig.template, "w") as f:
        f.write(rig.template_text)
    b, n = master_on_a_standby(rig)
    n.wait_for_log(r"holding clients in pgbouncer until it is primary")
    held = HeldClient(b, "held_ours")
    assert b.client_works(dbname="reports") == "postgres"
    time.sleep(0.5)
    assert held.done is None, held.error
    assert not [l for l in n.lines_since(0) if re.search(ADMIN_GLOBAL_RE % "PAUSE", l)], n.describe()
    rig.pg.promote()
    assert held.join(10) and held.error is None, held.error
    assert rig.wait_serving(timeout=5) == "appdb"
    assert b.client_works(dbname="reports") == "postgres"


def test_hold_then_fence_lifts_the_global_pause_quietly(standby_rig):
    """A hold's global PAUSE, then FAULT: pgbouncer refuses KILL under a
    global PAUSE, so the fence lifts ours first, without the warning meant
    for someone else's; a new client is refused at once, and the held one
    is let go."""
    rig = standby_rig
    b, n = master_on_a_standby(rig)
    n.wait_for_log(ADMIN_GLOBAL_RE % "PAUSE", 5)
    held = HeldClient(b, "held_fenced")
    time.sleep(0.3)
    off = n.log_size()
    rig.apply("FAULT", False)            # disabled, paused; a new client refused at once
    assert held.join(5) and held.error is not None, held.error
    n.wait_for_log(r"pgbouncer: fenced databases appdb", 5, off)
    lines = n.lines_since(off)
    assert [l for l in lines if re.search(ADMIN_GLOBAL_RE % "RESUME", l)], "\n".join(lines)
    assert not [l for l in lines if "paused globally" in l or "error" in l], "\n".join(lines)
    # and MASTER after the promotion serves
    rig.pg.promote()
    rig.fifo.write(inst(VI, "MASTER"))
    assert rig.wait_serving(timeout=5) == "appdb"


def test_smart_shutdown_is_not_held_up_by_the_postgres_session(notify_bin, servers):
    """[postgres]'s session idles between holds; a smart shutdown waits for
    every session, and an idle one never hears of it. The session is renewed
    every session_renew: the server turns the new one away (57P03, shutting
    down) and the old one goes, so the server exits."""
    primary = servers.primary("sprimary")
    primary.sql("CREATE DATABASE appdb")
    rig = Rig(notify_bin, primary)
    try:
        rig.start_bouncer()
        rig.make_fifo()
        n = rig.start(postgres=rig.postgres_section(**SESSION_RENEW))
        rig.apply("MASTER", True)
        wait_until(lambda: backend_pids(primary, "pgtrack-notify"), 10,
                   what="pgtrack-notify's session")
        # pgbouncer's idle server connections hold a smart shutdown up too
        # (server_idle_timeout): close them, so that only ours is left
        rig.bouncer.admin("RECONNECT")
        wait_until(lambda: not [1 for (d,) in primary.sql(
            "SELECT datname FROM pg_stat_activity WHERE datname = 'appdb'")], 10,
            what="pgbouncer's server connections closed")
        r = primary.pg_ctl("-W", "-m", "smart", "stop", check=False)
        assert r.returncode == 0, r.stdout
        import subprocess
        gone = wait_pid_gone(primary.pid, 20)
        assert gone, "smart shutdown held up:\n" + subprocess.run(
            ["ps", "--ppid", str(primary.pid), "-o", "pid,args"], capture_output=True,
            text=True).stdout
        primary.pid = None
        n.wait_for_log(r"local PostgreSQL at \S+ is unreachable: .*shutting down", 5)
    finally:
        rig.close()
