"""HAProxy as the lab's router (Lab(router="haproxy")), end to end.

A three-node lab of its own: HAProxy in the client namespace, configured
as examples/haproxy/haproxy.cfg, checks every node's pgtrackd health API
(NODE:8008, OPTIONS /primary and /replica?lag=16MB) and routes
CLIENT:5000 to the primary's PostgreSQL and CLIENT:5001 to the standbys'.
A client writes through CLIENT:5000 every 100 ms; kill -9 of the primary's
postmaster, the lab promotes the most advanced standby 1 s later:

- before the crash, every write reaches the old primary, and HAProxy
  routes writes to it alone, reads to the two standbys;
- after it, HAProxy routes writes to the promoted node alone, reads to the
  remaining standby, and writes through HAProxy succeed again, on the new
  primary only;
- once HAProxy routes to the new primary no attempt fails, and every
  acknowledged write is on the new primary.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_lab_router.py
"""

import os
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "examples", "lab"))

from lab_pool import diag, own_lab  # noqa: E402

PROMOTE_DELAY = 1.0
# HAProxy: fall 2 at inter 1s to take the old primary out, rise 1 for the
# new one after its pgtrackd's rise; slack for a loaded machine
ROUTE_BOUND = 30.0


@pytest.fixture(scope="module")
def lab():
    yield from own_lab(nodes=3, promote="manual", promote_delay=PROMOTE_DELAY, router="haproxy")


def test_failover_through_haproxy_keeps_writes_on_the_new_primary(lab):
    old = lab.primary
    standbys = sorted(n.name for n in lab.nodes if n is not old)
    assert lab.router_routes() == ([old.name], standbys)
    w = lab.writer(0.1, 2, via="router")
    lab.wait_for(lambda: len(w.acked()) >= 10, 30, 0.05, "10 acknowledged writes through HAProxy")
    before = [a for a in w.snapshot() if a["ok"]]
    assert {a["node"] for a in before} == {old.name}

    t_crash = old.kill_postmaster()
    lab.wait_for(lambda: lab.primary is not old, 60, 0.02, "a promotion")
    new = lab.primary
    rest = [n for n in standbys if n != new.name]
    try:
        lab.wait_routes([new.name], rest, ROUTE_BOUND)
    except Exception as e:
        raise AssertionError(diag(lab, t_crash, "%s; HAProxy: %s" % (e, lab.router_servers())))
    t_routed = time.time()
    lab.wait_for(lambda: w.first_ok_after(t_routed) is not None, 15, 0.05,
                 "a write through HAProxy after it routes to %s" % new.name)
    time.sleep(2.0)
    w.stop()

    attempts = w.snapshot()
    after = [a for a in attempts if a["ok"] and a["t0"] >= t_crash]
    assert after and {a["node"] for a in after} == {new.name}, \
        "writes through HAProxy after the crash reached %s" % sorted({a["node"] for a in after})
    late = [(round(a["t0"] - t_crash, 3), a["err"][:100]) for a in attempts
            if not a["ok"] and a["t0"] >= t_routed]
    assert not late, "attempts started once HAProxy routed to %s failed: %r" % (new.name, late)
    failed = [a for a in attempts if not a["ok"] and a["t0"] >= t_crash]
    first_ok = w.first_ok_after(t_crash)
    print("HAProxy: writes on %s from +%.3f s after the crash (%d attempts failed before), routes settled "
          "at +%.3f s" % (new.name, first_ok["t1"] - t_crash, len(failed), t_routed - t_crash))
    assert lab.verify_writes([a["seq"] for a in attempts if a["ok"]], new) == []
    haproxy_events = lab.events.all(since=t_crash, src="haproxy")
    assert any(e["node"] == old.name and e["backend"] == "pg_write" and e["state"] == "DOWN"
               for e in haproxy_events), haproxy_events
    assert any(e["node"] == new.name and e["backend"] == "pg_write" and e["state"] == "UP"
               for e in haproxy_events), haproxy_events
