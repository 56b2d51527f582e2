"""A hold that times out, end to end in the lab (issue 10).

A two-node lab of its own with pgtrack-notify's hold_timeout at 2 s and the
promotion 7 s after the crash, a client writing through VIP:6432 every
100 ms with a 10 s connect timeout. As pgtrack-notify(8) documents it:

- the VIP moves to the standby and its pgtrack-notify holds the clients
  (paused, waiting inside pgbouncer), not refused;
- hold_timeout passes with the local PostgreSQL still a standby: one error
  line, pgbouncer fenced (waiting clients disconnected, new ones refused);
- the promotion: pgbouncer serves again and the writes succeed;
- no read-only error at any point, and every acknowledged write is on the
  new primary.

Order and error kinds are asserted, not times.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_lab_hold_timeout.py
"""

import os
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "examples", "lab"))

import labkit  # noqa: E402
from lab_pool import own_lab  # noqa: E402

PROMOTE_DELAY = 7.0
HOLD_TIMEOUT = "2s"
CLIENT_TIMEOUT = 10


@pytest.fixture(scope="module")
def lab():
    yield from own_lab(nodes=2, promote="manual", promote_delay=PROMOTE_DELAY,
                          hold_timeout=HOLD_TIMEOUT)


def first(evs, pred, what):
    for e in evs:
        if pred(e):
            return e
    raise AssertionError("no %s among the events: %r" % (what, [(e["node"], e["src"], e["kind"],
                                                                  e["text"][:80]) for e in evs]))


def test_hold_times_out_then_fences_then_serves_on_promotion(lab):
    old = lab.primary
    w = lab.writer(0.1, CLIENT_TIMEOUT)
    lab.wait_for(lambda: len(w.acked()) >= 10, 30, 0.05, "10 acknowledged writes")

    t_crash = old.kill_postmaster()
    lab.wait_for(lambda: lab.primary is not old, 60, 0.02, "the promotion")
    new = lab.primary
    lab.wait_for(lambda: w.first_ok_after(t_crash) is not None, 30, 0.05,
                 "a successful write after the crash")
    time.sleep(1.0)
    w.stop()

    evs = lab.events.all(since=t_crash - 0.001)
    on_new = [e for e in evs if e["node"] == new.name and e["src"] == "notify"]
    moved = first(evs, lambda e: e["src"] == "vip" and e["kind"] == "vip_add", "VIP move")
    assert moved["node"] == new.name
    expired = first(on_new, lambda e: e["kind"] == "error" and "hold_timeout" in e["text"],
                    "hold_timeout error line on %s" % new.name)
    assert "fencing pgbouncer" in expired["text"], expired["text"]
    assert len([e for e in on_new if e["kind"] == "error" and "hold_timeout" in e["text"]]) == 1
    served = first(on_new, lambda e: e["kind"] == "bouncer" and e["mode"] == "serving"
                   and e["t"] > expired["t"], "serving after the hold expired")
    assert moved["t"] < expired["t"] < served["t"]

    attempts = w.snapshot()
    after_crash = [a for a in attempts if a["t1"] >= t_crash]
    kinds = {}
    for a in after_crash:
        if not a["ok"]:
            kinds.setdefault(labkit.error_kind(a["err"]), []).append(a)
    assert "read_only" not in kinds, [a["err"][:100] for a in kinds["read_only"]]
    # held, not refused: from the VIP's arrival on the new node no attempt
    # fails before the hold expires; it waited as a BACKUP (backup_clients =
    # wait), then as a MASTER holding until the promotion.  Before it: the
    # old node's attempts, whose server had died.
    early = [(round(a["t0"] - t_crash, 3), a["err"][:80]) for k in kinds for a in kinds[k]
             if a["t0"] >= moved["t"] and a["t1"] < expired["t"] - 0.05]
    assert not early, "attempts failed while they should have been held: %r" % early
    # fenced once the hold expired: the attempts started then were refused
    fenced = [a for a in after_crash if expired["t"] + 0.2 < a["t0"] < served["t"] - 0.2]
    assert fenced and not any(a["ok"] for a in fenced), [(a["ok"], a["err"][:60]) for a in fenced]
    assert all(labkit.error_kind(a["err"]) in ("refused", "reset") for a in fenced), \
        [a["err"][:100] for a in fenced]
    # served after the promotion: every attempt started then succeeded
    late = [a for a in attempts if a["t0"] > served["t"] + 0.1]
    assert late and all(a["ok"] for a in late), [a["err"][:80] for a in late if not a["ok"]]

    acked = [a["seq"] for a in attempts if a["ok"]]
    assert lab.verify_writes(acked, new) == []
