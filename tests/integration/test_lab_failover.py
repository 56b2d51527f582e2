"""Failover that clients do not notice (issue 10), end to end in the lab.

A three-node lab of its own (examples/lab/labkit/), promotion by the lab
2 s after the crash, a client writing through VIP:6432 every 100 ms with a
10 s connect timeout:

- the standby that is behind loses every tie-break by name, yet the VIP goes
  to the most advanced standby, first and only, and the lab promotes that
  one;
- no client attempt through the VIP fails with a read-only error, and none
  fails once the VIP is on the new node: its pgbouncer holds clients, as a
  BACKUP and then as a MASTER until the promotion (only attempts that
  reached the old node may fail: see the test);
- every acknowledged write is on the new primary.

Order and error kinds are asserted, not times: timing figures are
bench/failover's business.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_lab_failover.py
"""

import os
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "examples", "lab"))

import labkit  # noqa: E402
from lab_pool import own_lab  # noqa: E402
from kit.waiting import poll  # noqa: E402

PROMOTE_DELAY = 2.0
CLIENT_TIMEOUT = 10


@pytest.fixture(scope="module")
def lab():
    yield from own_lab(nodes=3, promote="manual", promote_delay=PROMOTE_DELAY)


def test_vip_to_the_most_advanced_standby_and_clients_held(lab):
    old = lab.primary
    standbys = sorted((n for n in lab.nodes if n is not old), key=lambda n: n.name)
    behind, ahead = standbys[0], standbys[1]      # behind would win a tie: first by name
    w = lab.writer(0.1, CLIENT_TIMEOUT)
    lab.wait_for(lambda: len(w.acked()) >= 10, 30, 0.05, "10 acknowledged writes")

    # the first standby by name falls behind: its receiver points nowhere while
    # the primary writes a few MB (far beyond rank_tolerance)
    behind.pg("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'")
    behind.pg("SELECT pg_reload_conf()")
    assert poll(lambda: behind.pg("SELECT count(*) FROM pg_stat_wal_receiver "
                                  "WHERE status = 'streaming'")[0][0] == 0, 10), \
        "%s still streams" % behind.name
    old.pg("CREATE TABLE lab_bulk AS SELECT repeat('x', 1000) AS pad "
           "FROM generate_series(1, 4000)", dbname=labkit.APPDB, timeout=30)
    assert poll(lambda: ahead.track_value() == labkit.VALUE_STANDBY
                and behind.track_value() is not None
                and behind.track_value() < labkit.VALUE_STANDBY, 10), \
        "ranks: %s %r, %s %r" % (ahead.name, ahead.track_value(), behind.name, behind.track_value())

    t_crash = old.kill_postmaster()
    lab.wait_for(lambda: lab.primary is not old, 60, 0.02, "a promotion")
    new = lab.primary
    assert new is ahead, "the lab promoted %s, not the most advanced %s" % (new.name, ahead.name)
    lab.wait_for(lambda: lab.vip_holder() is new, 30, 0.05, "VIP on %s" % new.name)
    lab.wait_for(lambda: w.first_ok_after(t_crash) is not None, 30, 0.05,
                 "a successful write after the crash")
    time.sleep(1.0)
    w.stop()

    evs = lab.events.all(since=t_crash - 0.001)
    adds = [e["node"] for e in evs if e["src"] == "vip" and e["kind"] == "vip_add"]
    assert adds == [ahead.name], "the VIP went to %r after the crash, not only to %s" % (adds, ahead.name)

    attempts = w.snapshot()
    failed = [a for a in attempts if not a["ok"] and a["t1"] >= t_crash]
    kinds = {}
    for a in failed:
        kinds.setdefault(labkit.error_kind(a["err"]), []).append(a["err"][:120])
    assert "read_only" not in kinds, "clients through the VIP saw read-only errors: %r" % kinds
    # Only attempts that came before the VIP reached the new node may fail
    # (in flight at the crash, or started while the VIP was on the old node,
    # whose server had died). From the VIP's arrival on, none: the new node
    # held them, first as a BACKUP (backup_clients = wait: keepalived adds the
    # VIP before pgtrack-notify reads MASTER), then as a MASTER until the
    # promotion.
    moved = [e["t"] for e in evs if e["src"] == "vip" and e["kind"] == "vip_add"]
    late = [(round(a["t0"] - t_crash, 3), a["err"][:80]) for a in failed if a["t0"] >= moved[0]]
    assert not late, "attempts started after the VIP reached %s (+%.3f s) failed: %r" % (
        ahead.name, moved[0] - t_crash, late)

    acked = [a["seq"] for a in attempts if a["ok"]]
    assert lab.verify_writes(acked, new) == []
