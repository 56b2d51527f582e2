"""End-to-end tests on the three-node lab (issue 6, examples/lab/labkit/).

Each node is a network namespace running PostgreSQL 15, pgbouncer,
keepalived (unicast VRRP, one VIP), pgtrackd and pgtrack-notify, plus a
client namespace; every packet stays inside namespaces the lab creates.

1. steady state: the VIP is on the primary's node, writes through VIP:6432
   succeed, the other nodes' pgbouncer refuse clients;
2. kill -9 of the primary's postmaster, repmgrd promotes a standby: the VIP
   moves to it and writes through the VIP succeed again within 30 s;
3. the old primary restarted as a primary never gets the VIP back (12 s,
   12 advert intervals, then through an election), its track reads -254
   and its pgbouncer stays fenced;
4. keepalived restarted on the MASTER: service resumes, pgtrack-notify keeps
   reading the FIFO and reconciles; once with the FIFO kept, once with a
   new FIFO (pgtrack-notify must log that it reopened it);
5. pgtrackd killed with SIGKILL on the MASTER: the VIP leaves the node and
   comes back only after pgtrackd does;
6. the MASTER's veth down: the VIP moves; after healing, one holder at most
   once VRRP settles, and the loser's pgbouncer fenced; once without
   promotion (the old MASTER wins again), once with repmgrd promoting a
   standby during the cut (the old primary comes back stale and loses).

A dead pgtrackd (test 5): in production keepalived's vrrp_track_process
catches it, but keepalived cannot follow processes from inside a network
namespace (the process-events connector exists only in the initial one).
The lab runs pgtrackd holding a TAP interface ("lifeline", pgtrackd0) that
the kernel deletes when pgtrackd dies, tracked with track_interface: test 5
checks that mechanism, the lab's stand-in for vrrp_track_process.

One lab at a time (Labs below): tests 1-3 share a repmgr lab (test 3 ends
it: the old primary is stale), tests 4-6[none] a lab without automatic
promotion, each test putting it back as it found it, and 6[repmgr] a repmgr
lab of its own; a lab a test could not put back is rebuilt for the next.
The module is skipped only when `ip netns add` fails (no network namespaces
on this machine); the last test checks that no namespace, directory or
state file of these labs is left.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_lab.py
PGTRACKD / PGTRACK_NOTIFY choose the binaries (default: build/);
PGTRACKD_LAB_PROMOTE=manual runs tests 1-3 with the lab's own pg_promote()
instead of repmgrd.
"""

import os
import signal
import sys
import time

import pytest

from kit.waiting import poll
from lab_pool import (ADVERT_INT, FAILOVER_PROMOTE, PORT, PRIMARY, REFUSED, SERVICE_BOUND, STALE, VIP,
                      bouncers_follow, diag, do_failover, labkit, names, sample, settle, tracks_steady,
                      try_write)
from lab_pool import labs  # noqa: F401  (the fixture)

# --------------------------------------------------------------------------
# 1-3: steady state, primary crash with promotion, old primary restarted


def test_1_steady_state(labs):
    lab = labs.get(FAILOVER_PROMOTE)
    p = lab.primary
    assert not p.in_recovery(), diag(lab, what="the lab's primary %s is in recovery" % p.name)
    assert [n.name for n in lab.nodes if not n.in_recovery()] == [p.name]
    holders = lab.vip_holders()
    assert holders == [p], diag(lab, what="VIP on %s, expected on the primary %s" % (names(holders), p.name))
    assert tracks_steady(lab, p, lab.track_values()), lab.track_values()

    # writes through VIP:6432 from the client namespace land on the primary
    for _ in range(3):
        ok, node = try_write(lab)
        assert ok, diag(lab, what="write through %s:%d failed: %s" % (VIP, PORT, node))
        assert node == p.name

    # the MASTER's pgbouncer serves on its own address too (so that the
    # refusals below are pgbouncer's answer, not an unreachable address)
    ok, node = try_write(lab, host=p.ip)
    assert ok and node == p.name, "write through %s:%d (the MASTER %s) failed: %s" % (p.ip, PORT, p.name, node)
    assert p.bouncer_serving() is True

    # every other node (BACKUP) holds clients in its paused pgbouncer
    # (backup_clients = wait): the client's 2 s connect timeout expires there,
    # it is neither served nor refused
    for n in p.peers():
        ok, err = try_write(lab, host=n.ip)
        assert not ok, "pgbouncer on %s (%s:%d, not MASTER) accepted a write stored by %s" % (n.name, n.ip, PORT, err)
        assert "timeout" in err.lower() and not any(r in err for r in REFUSED), \
            "pgbouncer on %s (%s:%d) did not hold the client: %s" % (n.name, n.ip, PORT, err)
        assert n.bouncer_serving() is False, "SHOW DATABASES on %s: %s" % (n.name, n.bouncer_databases())


def test_2_primary_crash_promotion(labs):
    lab = labs.get(FAILOVER_PROMOTE)
    assert lab.promote_mode == FAILOVER_PROMOTE
    w = lab.writer(0.1)
    try:
        assert poll(lambda: len(w.acked()) >= 10, 20), diag(lab, what="no writes before the crash")
        old, new, t_crash = do_failover(lab)
        labs.failover = {"lab": lab, "old": old, "new": new, "t_crash": t_crash}
        assert new is not None, diag(lab, t_crash, "no promotion (%s) within 40 s of the crash" % lab.promote_mode)
        assert new is not old and not new.in_recovery()

        on_new = poll(lambda: lab.vip_holders() == [new], SERVICE_BOUND - (time.time() - t_crash), 0.05)
        t_vip = time.time()
        assert on_new, diag(lab, t_crash, "VIP not on the promoted node %s alone within %.0f s of the crash"
                            % (new.name, SERVICE_BOUND))
        first = poll(lambda: w.first_ok_after(t_crash), max(1.0, t_crash + SERVICE_BOUND - time.time()) + 1, 0.05)
        assert first is not None and first["t1"] - t_crash <= SERVICE_BOUND, \
            diag(lab, t_crash, "no write through the VIP acknowledged within %.0f s of the crash" % SERVICE_BOUND)
        assert first["node"] == new.name
        vip_moved = lab.events.first(since=t_crash, src="vip", kind="vip_add",
                                     pred=lambda e: e["node"] != old.name)
        sys.stderr.write("test 2: %s promoted by %s; VIP left %s after %.3f s, on %s alone at <= %.3f s; "
                         "first write %.3f s after the crash\n"
                         % (new.name, lab.promote_mode, old.name,
                            (vip_moved["t"] - t_crash) if vip_moved else -1, new.name, t_vip - t_crash,
                            first["t1"] - t_crash))
        # later writes keep landing on the new primary, and none acknowledged is lost
        n_ok = len(w.acked())
        assert poll(lambda: len(w.acked()) >= n_ok + 5, 10)
    finally:
        w.stop()
    wrong = [a for a in w.snapshot() if a["ok"] and a["t0"] > first["t1"] and a["node"] != new.name]
    assert not wrong, "writes acknowledged by another node than %s after the failover: %s" % (new.name, wrong[:5])
    missing = lab.verify_writes(w.acked(), new)
    assert not missing, "acknowledged writes missing on the new primary %s: %s" % (new.name, missing[:20])


def test_3_old_primary_restarted_as_primary(labs):
    f = labs.failover
    if f is None or f["lab"] is not labs.lab or f["new"] is None:
        # test 2 did not leave a failed-over lab: make one
        lab = labs.get(FAILOVER_PROMOTE, fresh=True)
        old, new, t_crash = do_failover(lab)
        assert new is not None, diag(lab, t_crash, "no promotion within 40 s of the crash")
    else:
        lab, old, new = f["lab"], f["old"], f["new"]
    try:
        assert poll(lambda: lab.vip_holders() == [new] and try_write(lab) == (True, new.name), 30, 0.2), \
            diag(lab, what="the failover did not settle on %s" % new.name)
        assert old.track_value() == STALE
        w = lab.writer(0.2)
        try:
            t_restart = time.time()
            lab.restart_as_primary(old)
            assert not old.in_recovery(), "%s came back as a standby" % old.name
            # 12 s, 12 advert intervals, every 250 ms
            samples = sample(lab, 12 * ADVERT_INT, 0.25,
                             lambda: {"track": old.track_value(), "bouncer": old.bouncer_serving()})
        finally:
            w.stop()
        bad_vip = [s for s in samples if s["vip"] != [new.name]]
        assert not bad_vip, diag(lab, t_restart, "VIP not on %s alone in %d of %d samples, e.g. %s"
                                 % (new.name, len(bad_vip), len(samples), bad_vip[:3]))
        assert len(samples) >= 24, "only %d samples in 12 s" % len(samples)
        tracks = sorted({s["track"] for s in samples}, key=str)
        assert tracks == [STALE], diag(lab, t_restart, "track of %s over 12 s: %s (expected %d throughout)"
                                       % (old.name, tracks, STALE))
        serving = [s for s in samples if s["bouncer"] is not False]
        assert not [s for s in serving if s["bouncer"] is True], \
            diag(lab, t_restart, "pgbouncer on %s served while it was a stale primary" % old.name)
        assert len(serving) <= len(samples) // 10, "pgbouncer on %s unknown in %d samples" % (old.name, len(serving))
        # the story from the logs: stale, never primary, never MASTER, never the VIP
        states = [e["new"] for e in lab.events.all(since=t_restart, node=old.name, src="pgtrackd", kind="track")]
        assert "stale" in states and "primary" not in states, \
            diag(lab, t_restart, "pgtrackd on %s went %s" % (old.name, states))
        assert not lab.events.all(since=t_restart, node=old.name, src="vip", kind="vip_add")
        assert not lab.events.first(since=t_restart, node=old.name, src="notify", kind="vrrp",
                                    pred=lambda e: e["new"] == "MASTER")
        # its pgbouncer refuses clients, and every write went to the new primary
        ok, err = try_write(lab, host=old.ip)
        assert not ok and any(r in err for r in REFUSED), \
            "pgbouncer on the stale %s (%s:%d): %s" % (old.name, old.ip, PORT, err)
        acked = [a for a in w.snapshot() if a["ok"]]
        assert len(acked) >= 20 and {a["node"] for a in acked} == {new.name}, \
            "writes during the observation: %d acknowledged, by %s" % (len(acked), {a["node"] for a in acked})
        assert not lab.verify_writes([a["seq"] for a in acked], new)

        # Then an election: keepalived restarted on the new primary. Until
        # now the VIP staying put proves little (a BACKUP does not preempt a
        # MASTER of equal priority, so a stale node at 200 + 54 would have
        # stayed BACKUP too); in an election the old node, highest address,
        # would win unless it is in FAULT.
        t_el = time.time()
        new.restart_keepalived()
        el = sample(lab, 6 * ADVERT_INT, 0.1)       # master-down (3.x s) and the return of new
        assert not [s for s in el if old.name in s["vip"]], \
            diag(lab, t_el, "the stale %s took the VIP in an election" % old.name)
        final, quiet_at, vips = settle(lab, 15)
        assert final is new, diag(lab, t_el, "after the election the VIP settled on %s, not on %s: %s"
                                  % (final and final.name, new.name, vips[-20:]))
        assert old.track_value() == STALE and old.bouncer_serving() is False
        assert not lab.events.all(since=t_restart, node=old.name, src="vip", kind="vip_add")
    finally:
        labs.close()        # a stale primary in it: no other test can use this lab


# --------------------------------------------------------------------------
# 4-6: a lab without automatic promotion, put back as found after each test


@pytest.mark.parametrize("fifo", ["kept", "replaced"])
def test_4_keepalived_restart_on_master(labs, fifo):
    """keepalived stopped (SIGTERM) and started again on the MASTER.
    "kept": the FIFO stays (keepalived reuses a FIFO it did not create).
    "replaced": the FIFO is removed while keepalived is down (as when
    keepalived created the FIFO itself: it removes it on exit), so that the
    new keepalived creates a new one: pgtrack-notify must say it reopened
    it, and read the new one."""
    lab = labs.get("none")
    m = lab.vip_holder()
    assert m is lab.primary, diag(lab, what="steady lab expected")
    st = os.stat(m.fifo)
    w = lab.writer(0.2)
    try:
        assert poll(lambda: len(w.acked()) >= 3, 15), diag(lab, what="no writes before the restart")
        t0 = time.time()
        m.stop_keepalived()
        t_stopped = time.time()
        assert not m.has_vip(), diag(lab, t0, "keepalived stopped on %s and the VIP stayed" % m.name)
        if fifo == "replaced":
            os.unlink(m.fifo)
        m.start_keepalived()
        t_started = time.time()
        first = poll(lambda: w.first_ok_after(t_started), SERVICE_BOUND, 0.05)
        assert first is not None and first["t1"] - t0 <= SERVICE_BOUND, \
            diag(lab, t0, "no write through the VIP acknowledged within %.0f s of the keepalived restart"
                 % SERVICE_BOUND)
        assert first["node"] == lab.primary.name
        final, quiet_at, vips = settle(lab, 15)
        assert final is not None, diag(lab, t0, "VRRP did not settle: %s" % vips[-20:])
        assert final is lab.primary, diag(lab, t0, "VIP settled on %s, the primary is %s"
                                          % (final.name, lab.primary.name))
        # reconciled: the final MASTER serves, the others are fenced
        assert poll(lambda: not bouncers_follow(lab, final), 10), \
            diag(lab, t0, "pgbouncer after the restart: %s" % bouncers_follow(lab, final))
        # pgtrack-notify on m saw the old keepalived go and read the new
        # one's lines; if the FIFO is a new one, it said it reopened it
        st2 = os.stat(m.fifo)
        replaced = (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino)
        if fifo == "replaced":
            assert replaced, "keepalived did not create a new FIFO %s" % m.fifo
        said = lab.events.first(since=t0, node=m.name, src="notify", pred=lambda e: "was replaced" in e["text"])
        if replaced:
            assert said, diag(lab, t0, "the FIFO on %s was replaced and pgtrack-notify did not say it "
                              "reopened it" % m.name)
        else:
            assert not said, "pgtrack-notify says the FIFO was replaced, but its inode is the same"
        stop_seen = lab.events.first(since=t0, node=m.name, src="notify", kind="vrrp",
                                     pred=lambda e: e["new"] in ("STOP", "BACKUP", "FAULT") and e["t"] <= t_stopped + 2)
        master_seen = lab.events.first(since=max(t_started, said["t"] if said else 0), node=final.name,
                                       src="notify", kind="vrrp", pred=lambda e: e["new"] == "MASTER")
        assert stop_seen and master_seen, diag(lab, t0, "pgtrack-notify on %s: keepalived's STOP %s, then MASTER %s"
                                               % (m.name, bool(stop_seen), bool(master_seen)))
        sys.stderr.write("test 4[%s]: first write %.3f s after the restart began; VIP on %s from %.1f s after "
                         "the writes resumed\n" % (fifo, first["t1"] - t0, final.name, quiet_at))
        sys.stderr.write(diag(lab, t0) + "\n")
    finally:
        w.stop()
        if m.proc("keepalived") is None or not m.proc("keepalived").alive():
            m.start_keepalived()
        labs.release(lab)


def test_5_trackd_sigkill_lifeline(labs):
    """The lab's lifeline (pgtrackd holds the TAP interface pgtrackd0,
    tracked by keepalived) stands in for vrrp_track_process, which cannot
    see processes from inside a network namespace."""
    lab = labs.get("none")
    m = lab.vip_holder()
    assert m is lab.primary, diag(lab, what="steady lab expected")
    lifeline = ["ip", "-n", m.ns, "link", "show", "dev", labkit.LIFELINE_IF]
    assert labkit.run(lifeline, check=False).returncode == 0, "no lifeline interface on %s" % m.name
    try:
        t_kill = m.kill_trackd(signal.SIGKILL)
        left = poll(lambda: not m.has_vip(), 10, 0.02)
        t_left = time.time()
        assert left, diag(lab, t_kill, "VIP still on %s 10 s after SIGKILL of its pgtrackd" % m.name)
        assert labkit.run(lifeline, check=False).returncode != 0, "the lifeline outlived pgtrackd"
        fault = lab.events.first(since=t_kill, node=m.name, src="notify", kind="vrrp",
                                 pred=lambda e: e["new"] == "FAULT")
        assert fault, diag(lab, t_kill, "pgtrack-notify on %s never saw FAULT" % m.name)
        # pgtrackd is dead: the track file still holds its last word, 54, so
        # only the lifeline keeps the node out; 5 advert intervals without it
        samples = sample(lab, 5 * ADVERT_INT, 0.25, lambda: {"track": m.track_value(),
                                                              "bouncer": m.bouncer_serving()})
        assert not [s for s in samples if m.name in s["vip"]], \
            diag(lab, t_kill, "VIP back on %s while its pgtrackd was dead" % m.name)
        assert {s["track"] for s in samples} == {PRIMARY}, "track file of %s: %s" % (m.name, samples)
        assert not [s for s in samples if s["bouncer"] is True], "pgbouncer on %s served while out" % m.name
        other = [s["vip"] for s in samples[-4:]]
        assert all(len(v) == 1 and v[0] != m.name for v in other), "VIP during the outage: %s" % other

        t_restart = time.time()
        m.start_trackd()
        back = poll(lambda: lab.vip_holders() == [m], SERVICE_BOUND, 0.05)
        t_back = time.time()
        assert back, diag(lab, t_kill, "VIP not back on %s within %.0f s of restarting pgtrackd"
                          % (m.name, SERVICE_BOUND))
        assert not m.in_recovery() and lab.primary is m
        adds = lab.events.all(since=t_kill, node=m.name, src="vip", kind="vip_add")
        assert adds and adds[0]["t"] >= t_restart, \
            diag(lab, t_kill, "VIP added on %s at %+.3f s, pgtrackd restarted at %+.3f s"
                 % (m.name, adds[0]["t"] - t_kill if adds else 0, t_restart - t_kill))
        assert poll(lambda: try_write(lab) == (True, m.name), 15, 0.2), \
            diag(lab, t_kill, "writes through the VIP did not resume on %s" % m.name)
        sys.stderr.write("test 5: VIP left %s %.3f s after SIGKILL, back %.3f s after the restart\n"
                         % (m.name, t_left - t_kill, t_back - t_restart))
    finally:
        p = m.proc("pgtrackd")
        if p is None or not p.alive():
            m.start_trackd()
        labs.release(lab)


def promoted_peer(lab, m):
    """A node other than m whose PostgreSQL runs out of recovery (asked over
    its unix socket), or None."""
    for n in m.peers():
        try:
            if n.postmaster_alive() and not n.in_recovery():
                return n
        except Exception:
            continue
    return None


@pytest.mark.parametrize("promote", ["none", "repmgr"])
def test_6_master_cut_off(labs, promote):
    """The MASTER's veth taken down on the bridge side (the node loses
    carrier, keepalived there goes to FAULT), then up again.
    "none": nothing promotes during the cut; the old MASTER, still the only
    primary, takes the VIP back by preemption.
    "repmgr": repmgrd promotes a standby during the cut, so that two
    primaries meet when the link comes back: the old one must lose (its
    pgtrackd sees a peer primary on a later timeline: stale) and its
    pgbouncer stay fenced. That lab is not reused."""
    lab = labs.get(promote)
    m = lab.vip_holder()
    assert m is lab.primary, diag(lab, what="steady lab expected")
    others = m.peers()
    healed = False
    try:
        t_cut = time.time()
        m.veth_down()
        moved = poll(lambda: any(n.has_vip() for n in others), 15, 0.05)
        t_moved = time.time()
        assert moved, diag(lab, t_cut, "the VIP did not move within 15 s of cutting %s off" % m.name)
        assert poll(lambda: m.bouncer_serving() is False, 10), \
            diag(lab, t_cut, "pgbouncer on the cut-off %s not fenced" % m.name)
        new = None
        if promote == "repmgr":
            new = poll(lambda: promoted_peer(lab, m), 30, 0.1)
            assert new is not None, diag(lab, t_cut, "repmgrd promoted no standby within 30 s of the cut")
            assert poll(lambda: [n for n in others if n.has_vip()] == [new] and new.bouncer_serving() is True,
                        SERVICE_BOUND), diag(lab, t_cut, "VIP not on the promoted %s" % new.name)
        during = sample(lab, 2 * ADVERT_INT, 0.25)
        assert all(len([h for h in s["vip"] if h != m.name]) == 1 for s in during), \
            "VIP among the connected nodes while %s was cut off: %s" % (m.name, [s["vip"] for s in during])
        t_heal = time.time()
        m.veth_up()
        healed = True
        final, quiet_at, vips = settle(lab, 15)
        assert quiet_at is not None, \
            diag(lab, t_cut, "VIP holders not settled (one at most, 5 s) within 15 s of healing: %s" % vips[-30:])
        assert final is not None, diag(lab, t_cut, "no node holds the VIP after healing")
        assert poll(lambda: not bouncers_follow(lab, final), 10), \
            diag(lab, t_cut, "pgbouncer after healing (VIP on %s): %s" % (final.name, bouncers_follow(lab, final)))
        if final is not m:
            assert m.bouncer_serving() is False
        # who must hold it: the only primary there is
        want = m if new is None else new
        assert final is want, diag(lab, t_cut, "VIP settled on %s, expected %s" % (final.name, want.name))
        assert poll(lambda: try_write(lab) == (True, want.name), SERVICE_BOUND, 0.2), \
            diag(lab, t_cut, "writes through the VIP did not resume on %s" % want.name)
        if new is not None:
            assert m.track_value() == STALE and not m.in_recovery(), \
                diag(lab, t_cut, "old primary %s after healing" % m.name)
        m_vip = lab.events.all(since=t_heal, node=m.name, src="vip", kind="vip_add")
        sys.stderr.write("test 6[%s]: VIP moved %.3f s after the cut%s; after healing, quiet from %.1f s on, on %s; "
                         "%s took the VIP %d time(s) after healing\n"
                         % (promote, t_moved - t_cut, ", %s promoted" % new.name if new else "", quiet_at,
                            final.name, m.name, len(m_vip)))
        sys.stderr.write(diag(lab, t_cut, "healed at %+.3f s" % (t_heal - t_cut)) + "\n")
    finally:
        if not healed:
            m.veth_up()
        if promote == "repmgr":
            labs.close()        # two primaries in it now
        else:
            labs.release(lab, 30)


# --------------------------------------------------------------------------


def test_no_lab_namespace_left(labs):
    """Last: tear the current lab down; nothing of any lab of this module
    remains (namespaces, directories, state files)."""
    assert labs.built, "no lab was built"
    labs.close()
    left = labkit.netns_list()
    for lab in labs.built:
        assert not [ns for ns in left if ns.startswith(lab.prefix + "-")], \
            "namespaces of lab %s left: %s" % (lab.id, left)
        assert not lab.dir.exists(), "%s left" % lab.dir
        assert not lab.state_file.exists(), "%s left" % lab.state_file
