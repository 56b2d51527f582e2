"""The lab tests' pool of labs (one lab at a time, handed out steady and
of the wanted kind, rebuilt otherwise) and what they check on a lab:
steady state, samples of the VIP and the tracks, writes through the VIP."""

import itertools
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest

from kit.netns import netns_unavailable
from kit.waiting import poll

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "examples", "lab"))

import labkit  # noqa: E402

VIP = labkit.VIP
PORT = labkit.BOUNCER_PORT
STALE = -254                    # value_stale (and value_down) default
PRIMARY = 54                    # value_primary default: 254 on the lab's base priority 200
STANDBY = 53                    # value_standby default: the most advanced standby (rank 0)
RANK_STEP = 10                  # rank_step default
ADVERT_INT = 1.0                # keepalived advert_int in the lab
FAILOVER_PROMOTE = os.environ.get("PGTRACKD_LAB_PROMOTE", "repmgr")
SERVICE_BOUND = 30.0            # writes through the VIP again within this, after a disruption
SEQ = itertools.count(9_000_000_001)   # our own INSERTs, apart from the Writer blocks
REFUSED = ('database "appdb" is disabled', "does not allow connections")   # pgbouncer 1.18 / later



def own_lab(**kw):
    """A lab of the test module's own (not from the pool), up for the
    module and torn down after it: `yield from own_lab(...)` in a fixture."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    lab = labkit.Lab(log=lambda msg: sys.stderr.write("%s  %s\n" % (time.strftime("%H:%M:%S"), msg)),
                     **kw)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def names(nodes):
    return [n.name for n in nodes]


def write_through(lab, host=VIP, timeout=15):
    """One INSERT from the client namespace through host:6432; returns the
    name of the node that stored it (cluster_name). Raises LabError."""
    rows = lab.client_sql("INSERT INTO lab_writes (seq, node) VALUES (%d, current_setting('cluster_name')) "
                          "RETURNING node" % next(SEQ), timeout=timeout, host=host)
    return rows[0][0]


def try_write(lab, host=VIP):
    """(True, node) or (False, error text)."""
    try:
        return True, write_through(lab, host)
    except labkit.LabError as e:
        return False, str(e)


def diag(lab, since=None, what=""):
    """Lab status and the story since `since`, for assertion messages."""
    out = [what] if what else []
    try:
        out.append("status: %s" % lab.status())
    except Exception as e:
        out.append("status: unavailable (%s)" % e)
    keep = {"lab", "vip", "notify", "keepalived"}
    for e in lab.events.all(since=since)[-300:]:
        if e["src"] == "keepalived" and not ("(%s)" % labkit.INSTANCE in e["text"] or "Netlink" in e["text"]
                                             or e["text"].startswith(("Stopp", "Starting Keep"))):
            continue
        if "gratuitous ARP" in e["text"]:
            continue
        if e["src"] in keep or (e["src"] == "pgtrackd" and e["kind"] in ("track", "warning", "error")) \
                or (e["src"] == "repmgr" and e["kind"] in ("info", "notice", "warning", "error")):
            t0 = since if since is not None else lab.created
            out.append("  %+8.3f %-4s %-10s %s" % (e["t"] - t0, e["node"] or "", e["src"], e["text"]))
    if lab.repmgr:
        # what repmgrd wrote outside its log (start-up failures, crashes)
        for n in lab.nodes:
            try:
                tail = (n.dir / "repmgrd.out").read_text(errors="replace").splitlines()[-15:]
            except OSError:
                continue
            out.extend("  %s repmgrd.out: %s" % (n.name, line) for line in tail if line.strip())
        for n in lab.nodes:
            out.extend("  %s %s" % (n.name, line) for line in repmgrd_state(lab, n))
    return "\n".join(out)


def repmgrd_state(lab, node):
    """Whether the node's repmgrd runs, where it waits (its kernel wait
    channel), the TCP connections it holds and its log's last lines: a
    repmgrd that says nothing during a failover is stuck or gone."""
    proc = lab.procs.get("%s/repmgrd" % node.name)
    if proc is None:
        return ["repmgrd: not started by the lab"]
    if not proc.alive():
        lines = ["repmgrd (pid %d): gone" % proc.pid]
    else:
        try:
            with open("/proc/%d/wchan" % proc.pid) as f:
                wchan = f.read().strip() or "running"
        except OSError as e:
            wchan = "unknown (%s)" % e
        lines = ["repmgrd (pid %d): alive, waiting in %s" % (proc.pid, wchan)]
        ss = subprocess.run(["ip", "netns", "exec", node.ns, "ss", "-tnpo"], capture_output=True,
                            text=True, timeout=10).stdout
        lines += ["repmgrd tcp: %s" % line for line in ss.splitlines() if "pid=%d," % proc.pid in line]
    try:
        log = (node.dir / "repmgr" / "repmgrd.log").read_text(errors="replace").splitlines()[-8:]
    except OSError:
        log = []
    return lines + ["repmgrd.log: %s" % line for line in log]


def tracks_steady(lab, p, tracks):
    """The primary at PRIMARY, the standbys each at its own rank: STANDBY,
    STANDBY - RANK_STEP, ... (ranked by WAL position, ties by name)."""
    standbys = sorted((v for k, v in tracks.items() if k != p.name), reverse=True)
    return tracks.get(p.name) == PRIMARY and standbys == [STANDBY - i * RANK_STEP for i in range(len(lab.nodes) - 1)]


def steady_problems(lab):
    """What keeps the lab from its steady state (VIP and pgbouncer on the
    primary only, tracks PRIMARY / one standby rank each, every daemon the
    lab started running)."""
    p = lab.primary
    probs = []
    holders = lab.vip_holders()
    if holders != [p]:
        probs.append("VIP on %s, not on %s only" % (names(holders), p.name))
    tracks = lab.track_values()
    if not tracks_steady(lab, p, tracks):
        probs.append("tracks %s, expected %d on %s and %s on the standbys" % (
            tracks, PRIMARY, p.name, [STANDBY - i * RANK_STEP for i in range(len(lab.nodes) - 1)]))
    serving = {n.name: n.bouncer_serving() for n in lab.nodes}
    if serving != {n.name: n is p for n in lab.nodes}:
        probs.append("pgbouncer serving %s" % serving)
    dead = [k for k, proc in lab.procs.items() if not proc.alive()]
    if dead:
        probs.append("not running: %s" % dead)
    return probs


def wait_steady(lab, timeout):
    """[] once the lab is steady (within timeout), else the last problems."""
    probs = ["not checked"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            probs = steady_problems(lab)
        except Exception as e:
            probs = ["check failed: %s" % e]
        if not probs:
            return []
        time.sleep(0.2)
    return probs


def sample(lab, seconds, every=0.25, extra=None):
    """Sample the VIP holders (and extra()) every `every` seconds for
    `seconds`: a list of dicts t, vip (node names), extra."""
    out = []
    start = time.monotonic()
    k = 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        s = {"t": time.time(), "vip": names(lab.vip_holders())}
        if extra is not None:
            s.update(extra())
        out.append(s)
        k += 1
        time.sleep(max(0.0, start + k * every - time.monotonic()))
    return out


def settle(lab, within, stable=5.0, every=0.1):
    """Wait until the VIP holders stay the same, with at most one holder,
    for `stable` seconds (5 advert intervals: longer than keepalived's
    master-down interval, 3 adverts and a skew, after which a preempting
    node takes over), the quiet period starting within `within` seconds.
    Returns (holder or None, seconds until the quiet
    period began, samples), or (None, None, samples) if it never settled."""
    t_start = time.monotonic()
    samples = []
    quiet_since, quiet_holders = None, None
    while True:
        now = time.monotonic()
        h = names(lab.vip_holders())
        samples.append((round(now - t_start, 2), h))
        if len(h) <= 1 and h == quiet_holders:
            if now - quiet_since >= stable:
                return (lab.node(h[0]) if h else None), quiet_since - t_start, samples
        elif len(h) <= 1:
            quiet_since, quiet_holders = now, h
        else:
            quiet_since, quiet_holders = None, None
        if quiet_since is None and now - t_start > within:
            return None, None, samples
        if quiet_since is not None and quiet_since - t_start > within:
            return None, None, samples
        time.sleep(every)


def bouncers_follow(lab, master):
    """pgbouncer serving on master only, every other node fenced: {} when so,
    else {node: serving}."""
    got = {n.name: n.bouncer_serving() for n in lab.nodes}
    want = {n.name: n is master for n in lab.nodes}
    return {} if got == want else got


class Labs:
    """Hands out the current lab while it is steady and of the wanted kind,
    otherwise tears it down and builds a fresh one; remembers every lab it
    built for the final check."""

    def __init__(self):
        self.lab = None
        self.kind = None
        self.built = []
        self.failover = None        # set by test 2: {"lab", "old", "new", "t_crash"}

    def log(self, msg):
        sys.stderr.write("%s  %s\n" % (time.strftime("%H:%M:%S"), msg))

    def get(self, promote, fresh=False):
        if self.lab is not None and not fresh and self.kind == promote:
            probs = wait_steady(self.lab, 10)
            if not probs:
                return self.lab
            self.log("lab %s not steady (%s): rebuilding" % (self.lab.id, "; ".join(probs)))
        self.close()
        lab = labkit.Lab(nodes=3, promote=promote, log=self.log)
        self.built.append(lab)
        try:
            lab.up()
        except BaseException:
            lab.down()
            raise
        self.lab, self.kind = lab, promote
        return lab

    def release(self, lab, timeout=20):
        """End of a test that meant to leave the lab steady: if it is not,
        retire it so that the next test starts from a fresh one."""
        if lab is not self.lab:
            return
        probs = wait_steady(lab, timeout)
        if probs:
            warnings.warn("lab %s not steady after the test (%s): retired" % (lab.id, "; ".join(probs)))
            self.close()

    def close(self):
        lab, self.lab, self.kind, self.failover = self.lab, None, None, None
        if lab is not None:
            lab.down()


@pytest.fixture(scope="module")
def labs():
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    # SIGTERM and SIGHUP end the run like Ctrl-C, through the finalizers
    def interrupt(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    old = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    pool = Labs()
    try:
        yield pool
    finally:
        try:
            pool.close()
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def do_failover(lab):
    """kill -9 of the primary's postmaster; waits (bounded) until a new
    primary is known. Returns (old, new, t_crash); new is None on timeout."""
    old = lab.primary
    t_crash = old.kill_postmaster()
    poll(lambda: lab.primary is not old, 40, 0.05)
    new = lab.primary if lab.primary is not old else None
    return old, new, t_crash
