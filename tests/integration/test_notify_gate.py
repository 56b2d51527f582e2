"""The hold's gate (issue 10): with a databases template whose every line
goes to [postgres]'s server, each line carries a connect_query that keeps
a new server connection waiting inside PostgreSQL until the end of
recovery. A MASTER whose local PostgreSQL is still a standby then serves
(not paused): pgbouncer's server connection is opened during the hold, and
the held clients' writes run within milliseconds of the promotion instead
of after a backend start."""

import re
import time

import pytest

from kit.fifo import inst
from kit.files import write_file
from kit.waiting import wait_until
from notify_rig import VI, HeldClient, PromotionWatch, Rig
from notify_rig import notify_bin, pg, rig  # noqa: F401  (fixtures)

GATE_SQL_START = "SET LOCAL statement_timeout=0;"


@pytest.fixture
def gate_rig(notify_bin, servers):
    """A primary with appdb (whose sessions get statement_timeout 300ms: a
    gate that did not lift it would end in an error that pgbouncer ignores),
    its streaming replica behind pgbouncer, a template going to the
    replica's socket directory, as [postgres] does."""
    primary = servers.primary("gprimary")
    primary.sql("CREATE DATABASE appdb")
    primary.sql("ALTER DATABASE appdb SET statement_timeout = '300ms'")
    replica = servers.replica(primary, "gstandby")
    r = Rig(notify_bin, replica)
    r.template_text = ("; the gate's template\n[databases]\nappdb = host=%s port=%d dbname=appdb pool_size=7\n"
                       % (replica.sockdir, replica.port))
    write_file(r.template, r.template_text, 0o644)
    try:
        yield r
    finally:
        r.close()


def gate_backends(pg):
    return pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s",
                  (GATE_SQL_START + "%",))[0][0]


def start_on_master(rig, settings=None, **postgres):
    b = rig.start_bouncer(server_login_retry="0.05", settings=settings)
    rig.make_fifo()
    n = rig.start(postgres=rig.postgres_section(**postgres))
    n.wait_for_log(r"their server connections waiting inside it \(the gate\)", 5)
    rig.apply("BACKUP", False)
    off = n.log_size()
    rig.fifo.write(inst(VI, "MASTER"))
    n.wait_for_log(r"holding clients in pgbouncer until it is primary", start=off)
    rig.wait_flags(0, 0)                 # served: the gate holds, not a pause
    return b, n, off


def test_gate_holds_on_a_standby_and_writes_run_at_the_promotion(gate_rig):
    """MASTER on a standby: served, the gate line in the databases file, a
    backend waiting in the gate past the database's statement_timeout and
    the clients waiting; at the promotion their writes are acknowledged
    (figures printed), their sessions told in_hot_standby = off, and nothing
    is sent to pgbouncer for it."""
    rig = gate_rig
    b, n, off = start_on_master(rig)
    with open(b.databases_file) as f:
        written = f.read()
    assert re.search(r"^appdb = host=\S+ port=\d+ dbname=appdb pool_size=7 connect_query='"
                     + re.escape(GATE_SQL_START), written, re.M), written
    writers = [HeldClient(b, "w%d" % i) for i in range(3)]
    wait_until(lambda: gate_backends(rig.pg) >= 1, 10,
               describe=lambda: rig.describe("no server connection waiting in the gate"))
    time.sleep(1.0)                      # longer than the database's statement_timeout
    assert all(w.done is None for w in writers), [(w.name, w.error) for w in writers]
    assert gate_backends(rig.pg) >= 1, rig.describe("the gate ended before the promotion")
    watch = PromotionWatch(rig.pg)
    at_promotion = n.log_size()
    rig.pg.promote()
    assert watch.join() is not None
    assert all(w.join(10) for w in writers), rig.describe("held clients still waiting 10 s after the promotion")
    assert [w.error for w in writers] == [None] * 3, [w.error for w in writers]
    # the welcome pgbouncer gives them ends with the server's in_hot_standby = off
    assert [w.hot_standby for w in writers] == ["off"] * 3
    ms = sorted(round((w.done - watch.at) * 1000) for w in writers)
    print("held writes acknowledged %r ms after the promotion was seen" % ms)
    assert ms[-1] <= 5000, rig.describe("acknowledged %r ms after the promotion" % ms)
    n.wait_for_log(r"is primary: serving, ending the hold", start=off)
    with b.client() as conn:
        assert conn.info.parameter_status("in_hot_standby") == "off"
        assert conn.execute("SELECT count(*) FROM w0, w1, w2").fetchone()[0] == 1
    # nothing sent to pgbouncer for the promotion: the databases were served already
    lines = n.lines_since(at_promotion)
    assert not [l for l in lines if "pgbouncer: sending" in l and "SHOW" not in l], "\n".join(lines)


def test_gate_hold_timeout_fences_and_the_gate_ends(gate_rig):
    """hold_timeout passes: fenced as with a paused hold; the backends
    waiting in the gate notice that pgbouncer closed them and end."""
    rig = gate_rig
    b, n, off = start_on_master(rig, hold_timeout="2s")
    w = HeldClient(b, "timeout")
    wait_until(lambda: gate_backends(rig.pg) >= 1, 10, describe=lambda: rig.describe("no gate"))
    n.wait_for_log(r"error: local PostgreSQL at \S+ is still a standby 2\.0s \(hold_timeout\)",
                   start=off, timeout=5)
    rig.wait_fenced(timeout=3)
    assert w.join(5) and w.error is not None and "read-only" not in w.error, w.error
    wait_until(lambda: gate_backends(rig.pg) == 0, 3,
               describe=lambda: rig.describe("gate backends left after the fence"))
    rig.pg.promote()
    assert rig.wait_serving(timeout=5) == "appdb"


def test_gate_outlives_server_connect_timeout(gate_rig):
    """A hold longer than pgbouncer's server_connect_timeout (15 s by
    default, 2 s here): pgbouncer closes the waiting gate, counts a failed
    login and opens the next one after server_login_retry; the clients keep
    waiting, no backend is left behind, and the promotion serves them."""
    rig = gate_rig
    b, n, off = start_on_master(rig, settings={"server_connect_timeout": "2"})
    w = HeldClient(b, "long_hold")
    wait_until(lambda: b.log().count("closing because: connect timeout") >= 2, 15,
               describe=lambda: rig.describe("pgbouncer did not time a gate out twice"))
    assert w.done is None, w.error
    wait_until(lambda: gate_backends(rig.pg) <= 1, 3,
               describe=lambda: rig.describe("gates left behind by pgbouncer's timeouts"))
    rig.pg.promote()
    assert w.join(10) and w.error is None, w.error
    assert w.hot_standby == "off"


@pytest.mark.parametrize("case", ["other_host", "hold_gate_off"])
def test_no_gate_pauses_and_says_why(rig, case):
    """A template line going elsewhere than [postgres] (here 127.0.0.1, not
    its socket directory), or hold_gate = off: no gate, the file is the
    template byte for byte, the hold pauses."""
    pg = {} if case == "other_host" else {"hold_gate": "off"}
    if case == "hold_gate_off":
        rig.template_text = "[databases]\nappdb = host=%s port=%d dbname=appdb\n" % (rig.pg.sockdir, rig.pg.port)
        write_file(rig.template, rig.template_text, 0o644)
    b = rig.bouncer
    n = rig.start(postgres=rig.postgres_section(**pg))
    why = (r'no gate: database "appdb" \(line \d+\) goes to host=127\.0\.0\.1 port=\d+, '
           r"\[postgres\] is host=\S+ port=\d+" if case == "other_host" else r"no gate: hold_gate = off")
    n.wait_for_log(r"its databases paused; " + why, 5)
    rig.apply("MASTER", True)
    with open(b.databases_file) as f:
        assert f.read() == rig.template_text


def test_reload_turns_the_gate_off_and_on(rig):
    """hold_gate changed by a reload: the method is logged again and the
    databases file rewritten (with, then without, then with the gate)."""
    import os
    import signal
    rig.template_text = "[databases]\nappdb = host=%s port=%d dbname=appdb\n" % (rig.pg.sockdir, rig.pg.port)
    write_file(rig.template, rig.template_text, 0o644)
    b = rig.bouncer
    n = rig.start(postgres=rig.postgres_section())
    n.wait_for_log(r"\(the gate\)", 5)
    rig.apply("MASTER", True)
    for gate, pattern in (("off", r"its databases paused; no gate: hold_gate = off"),
                          ("on", r"their server connections waiting inside it \(the gate\)")):
        off = n.log_size()
        rig.notify.write_config(rig.sections(postgres=rig.postgres_section(hold_gate=gate)))
        os.kill(n.pid, signal.SIGHUP)
        n.wait_for_log(pattern, 5, start=off)
        n.wait_for_log(r"configuration reloaded", 5, start=off)

        def file_is_right():
            with open(b.databases_file) as f:
                text = f.read()
            return ("connect_query=" in text) == (gate == "on")
        wait_until(file_is_right, 5, describe=lambda: rig.describe("databases file not rewritten"))
        assert rig.wait_serving() == "appdb"
