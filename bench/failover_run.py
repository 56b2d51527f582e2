"""bench/failover's runs: one lab per run, a crash of the primary, and the
figures of what followed (detection, VIP, promotion, client errors, lost
writes, the old primary's restart)."""

import os
import re
import statistics
import sys
import time

import labkit  # bench/failover puts examples/lab on sys.path first

PRE_CRASH_WRITES = 10


WRITE_INTERVAL = 0.1


CLIENT_TIMEOUT_S = 2            # lab_client.py's connect_timeout (--client-timeout)
FIXED_SYNC = False              # --fixed-sync: three nodes and more with a fixed 'ANY 1 (*)'
VRRP_RT = True                  # --no-vrrp-rt: keepalived's VRRP process on normal scheduling
TRACKD_RT = True                # --no-trackd-rt: pgtrackd on normal scheduling
REPMGR_PACE = (1, 2, 1)         # --repmgr-pace: monitor_interval_secs, reconnect_attempts, reconnect_interval


MODES = ("pgtrackd", "classic")


ERROR_KINDS = labkit.ERROR_KINDS


# keepalived's push-back: a BACKUP whose effective priority changes while its
# short (skew-only) down timer runs takes over 3 x advert_int later
PUSHBACK_GAP_S = (2.0, 4.5)     # priority change -> MASTER, seconds


PUSHBACK_HEURISTIC_MS = 2000    # without keepalived's log: VIP moved later than this

# pgtrackd's line when it first sees a postmaster (pgtrackd(8), "Idle socket watch")
DEATH_PIPE_RE = re.compile(r"postmaster pid \d+: its death pipe (watched|not watched)")


# the wall-time estimate, seconds (measured on the 2-core VM this was
# written on, see bench/README.md); the progress lines scale what is left by
# the sweep's own pace so far
EST_SETUP_S = {2: 15.0, 3: 20.0}    # lab up: namespaces, initdb, base backups, daemons


EST_TEARDOWN_S = 6.0


EST_PRE_CRASH_S = 1.5 + 2.5         # 10 writes, then the mean random kill phase


EST_FAILOVER_S = {"pgtrackd": 1.0, "classic": 5.5}   # crash -> VIP, at the least


EST_REPMGR_PROMOTION_S = 6.0        # repmgrd: reconnect_attempts 2 x 1 s, then promote


EST_AFTER_S = 2.5                   # the first write, then 1 s for the last log lines


EST_RESTART_S = 3.0                 # the old primary's restart before --observe


PRIO_RE = re.compile(r"Changing effective priority from (\d+) to (\d+)")


T0 = time.monotonic()


QUIET = False


def progress(msg):
    sys.stderr.write("[failover %7.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


def lab_log(msg):
    if not QUIET:
        progress("  " + msg)


def ms(t, t0):
    return None if t is None or t0 is None else int(round((t - t0) * 1000))


def first(events, pred):
    for e in events:
        if pred(e):
            return e
    return None


def other_labs(own_prefix):
    """Namespaces of labs other than ours (another engineer's tests)."""
    import labkit
    ids = set()
    for ns in labkit.netns_list():
        m = labkit.NS_RE.match(ns)
        if m and not ns.startswith(own_prefix + "-"):
            ids.add(m.group(1))
    return sorted(ids)


class Series:
    def __init__(self, nodes, promote):
        self.nodes = nodes
        self.promote = promote          # a delay in seconds, or "repmgr"

    @property
    def repmgr(self):
        return self.promote == "repmgr"

    @property
    def key(self):
        return "%dn-%s" % (self.nodes, "repmgr" if self.repmgr else "%gs" % self.promote)

    @property
    def label(self):
        if self.repmgr:
            return "%d nodes, repmgrd's own failover" % self.nodes
        return "%d nodes, promotion by the lab +%g s" % (self.nodes, self.promote)

    @property
    def short(self):
        return "%dn %s" % (self.nodes, "repmgr" if self.repmgr else "+%gs" % self.promote)

    def modes(self, wanted):
        return [m for m in wanted if not (self.repmgr and m == "classic")]


def estimate_run_s(series, mode, observe):
    prom = EST_REPMGR_PROMOTION_S if series.repmgr else series.promote
    s = (EST_SETUP_S.get(series.nodes, 20.0 + 3 * (series.nodes - 3)) + EST_TEARDOWN_S + EST_PRE_CRASH_S
         + max(prom, EST_FAILOVER_S[mode]) + EST_AFTER_S)
    if observe:
        s += EST_RESTART_S + observe
    return s


def ka_states_before(evs, t, nodes):
    """Each node's last keepalived state before t (None if never logged)."""
    st = {n: None for n in nodes}
    for e in evs:
        if e["t"] >= t:
            break
        if e["src"] == "keepalived" and e["kind"] == "ka_state":
            st[e["node"]] = e["state"]
    return st


def find_pushback(evs, t_crash, t_end, old_name, node_names):
    """A node whose effective priority changed while it was BACKUP and no
    node was MASTER (all waiting on their skew-only timers after the old
    MASTER's priority-0 advert), and which then entered MASTER 2-4.5 s
    later. Returns (method, detail or None): method "log" when keepalived's
    state lines are in the events, None when they are not."""
    if not any(e["src"] == "keepalived" and e["kind"] == "ka_state" for e in evs):
        return None, None
    st = ka_states_before(evs, t_crash, node_names)
    pending = {}                        # node -> time of its priority change
    for e in evs:
        if e["t"] < t_crash:
            continue
        if e["t"] > t_end:
            break
        if e["src"] != "keepalived":
            continue
        n = e["node"]
        if e["kind"] == "ka_state":
            st[n] = e["state"]
            if e["state"] == "MASTER" and n in pending:
                gap = e["t"] - pending[n]
                if PUSHBACK_GAP_S[0] <= gap <= PUSHBACK_GAP_S[1]:
                    return "log", {"node": n, "priority_change_ms": ms(pending[n], t_crash),
                                   "master_ms": ms(e["t"], t_crash), "gap_ms": int(round(gap * 1000))}
                pending.pop(n, None)
            elif e["state"] != "BACKUP":
                pending.pop(n, None)
        elif e["kind"] == "ka" and PRIO_RE.search(e["text"]) and n != old_name:
            if st.get(n) in (None, "BACKUP") and n not in pending \
                    and not any(s == "MASTER" for k, s in st.items() if k != n):
                pending[n] = e["t"]
    return "log", None


def ka_trace(evs, t_crash, t_end):
    out = []
    for e in evs:
        if t_crash <= e["t"] <= t_end and e["src"] == "keepalived" and \
                (e["kind"] == "ka_state" or PRIO_RE.search(e["text"])):
            out.append([ms(e["t"], t_crash), e["node"], e["text"][:120]])
    return out


def crash(lab, series, mode, k, phase, r):
    """Writes through the VIP, then kill -9 of the primary's postmaster at a
    random phase; waits for the promotion, the VIP on the new primary and a
    write through it. Returns (old, new, writer, t_crash, t_failover_end)."""
    old = lab.primary
    w = lab.writer(WRITE_INTERVAL, CLIENT_TIMEOUT_S)
    lab.wait_for(lambda: len(w.acked()) >= PRE_CRASH_WRITES, 30, 0.05,
                 "%d acknowledged writes before the crash" % PRE_CRASH_WRITES)
    # a random phase against the 5 s checks of the classic mode (and
    # pgtrackd's 200 ms probes): the same draw for both modes of a pair
    r["phase_s"] = round(phase, 3)
    time.sleep(phase)
    progress("%s %s run %d: kill -9 of %s's postmaster (lab %s, load %.2f, phase %.2f s)"
             % (series.short, mode, k, old.name, lab.id, r["loadavg"][0], phase))
    t_crash = old.kill_postmaster()
    lab.wait_for(lambda: lab.primary is not old, 90, 0.02, "a promotion")
    new = lab.primary
    lab.wait_for(lambda: lab.vip_holder() is new, 60, 0.05, "VIP on the promoted node %s" % new.name)
    lab.wait_for(lambda: w.first_ok_after(t_crash) is not None, 60, 0.05,
                 "a successful write after the crash")
    time.sleep(1.0)                 # let the last log lines of the failover arrive
    return old, new, w, t_crash, time.time()


def failover_figures(labkit, lab, mode, old, new, w, t_crash, t_failover_end):
    """From the crash to the first write: detection, the VIP's path, the
    promotion, pgbouncer serving, the push-back, keepalived's trace."""
    evs = lab.events.all()
    evs_c = [e for e in evs if e["t"] >= t_crash - 0.001]

    def on(node, src, kind, pred=None):
        return first(evs_c, lambda e: e["node"] == node and e["src"] == src and e["kind"] == kind
                     and (pred is None or pred(e)))

    vip_adds = [e for e in evs_c if e["src"] == "vip" and e["kind"] == "vip_add" and e["node"] != old.name]
    vip_first = vip_adds[0] if vip_adds else None
    vip_new = on(new.name, "vip", "vip_add")
    vip_del = on(old.name, "vip", "vip_del")
    # the promotion: the end of recovery in PostgreSQL's own log on the
    # new primary ("archive recovery complete", ms stamps; writes are
    # accepted a moment later, before the postmaster logs "ready to
    # accept connections"; pg_promote(wait) returns up to 100 ms later),
    # else the lab's event
    pg_done = on(new.name, "postgres", "pg", lambda e: "archive recovery complete" in e["text"])
    pg_ready = on(new.name, "postgres", "pg",
                  lambda e: "ready to accept connections" in e["text"] and "read-only" not in e["text"])
    pg_req = on(new.name, "postgres", "pg", lambda e: "received promote request" in e["text"])
    lab_prom = first(evs_c, lambda e: e["src"] == "lab" and e["kind"] in ("promote_done", "new_primary"))
    prom = pg_done or pg_ready or lab_prom
    serve = first(evs_c, lambda e: e["node"] == new.name and e["kind"] == "bouncer"
                  and e.get("mode") == "serving")
    if mode == "classic":
        det = on(old.name, "keepalived", "ka", lambda e: PRIO_RE.search(e["text"]) is not None)
    else:
        det = on(old.name, "file", "track_seen", lambda e: e.get("value") == labkit.VALUE_DOWN)
    # what told the crashed node's pgtrackd (the postmaster's death pipe,
    # its exit, the session's end), and whether it watched the death pipe
    seen = on(old.name, "pgtrackd", "probe_failed")
    # and when it wrote the down verdict (its own stamp, not the lab's poll)
    down = on(old.name, "pgtrackd", "track", lambda e: e.get("new") == "down")
    pipe_lines = [e for e in evs if e["node"] == old.name and e["src"] == "pgtrackd" and e["t"] < t_crash
                  and DEATH_PIPE_RE.search(e["text"])]
    first_ok = w.first_ok_after(t_crash)
    fails = w.failed_between(t_crash, first_ok["t0"] - 1e-6)
    method, pb = find_pushback(evs, t_crash, t_failover_end, old.name, [n.name for n in lab.nodes])
    vip_ms = ms(vip_first and vip_first["t"], t_crash)
    if method is None:
        method = "heuristic"
        pushback = vip_ms is not None and vip_ms > PUSHBACK_HEURISTIC_MS
    else:
        pushback = pb is not None
    r = {
        "old_primary": old.name, "new_primary": new.name,
        "detected_ms": ms(det and det["t"], t_crash),
        "crash_seen_ms": ms(seen and seen["t"], t_crash),
        "crash_seen_by": seen and seen["reason"][:120],
        "down_written_ms": ms(down and down["t"], t_crash),
        "down_reason": down and (down.get("reason") or "")[:120],
        "death_pipe": DEATH_PIPE_RE.search(pipe_lines[-1]["text"]).group(1) if pipe_lines else None,
        "vip_left_old_ms": ms(vip_del and vip_del["t"], t_crash),
        "vip_moved_ms": vip_ms,
        "vip_moved_to": vip_first and vip_first["node"],
        "vip_path": [e["node"] for e in vip_adds],
        "vip_moved_twice": bool(vip_first) and vip_first["node"] != new.name,
        "promoted_ms": ms(prom and prom["t"], t_crash),
        "promoted_source": ("archive recovery complete" if pg_done else "ready to accept connections"
                            if pg_ready else lab_prom["kind"] if lab_prom else None),
        "promote_request_ms": ms(pg_req and pg_req["t"], t_crash),
        "pg_ready_ms": ms(pg_ready and pg_ready["t"], t_crash),
        "lab_promote_done_ms": ms(lab_prom and lab_prom["t"], t_crash),
        "vip_on_promoted_ms": ms(vip_new and vip_new["t"], t_crash),
        "bouncer_serving_ms": ms(serve and serve["t"], t_crash),
        "first_write_ms": ms(first_ok["t1"], t_crash),
        "failed_attempts": len(fails),
        "pushback": pushback, "pushback_method": method, "pushback_detail": pb,
        "ka_trace": ka_trace(evs, t_crash, t_failover_end),
    }
    r["first_write_after_promotion_ms"] = (None if r["promoted_ms"] is None
                                           else r["first_write_ms"] - r["promoted_ms"])
    return r


def observe_restart(lab, old, a):
    """The old primary restarted as a primary, the VIP holders sampled for
    --observe seconds. Returns (t_restart, t_ready, t_obs_end, samples)."""
    t_restart = time.time()
    lab.restart_as_primary(old)
    t_ready = time.time()
    samples = []
    deadline = time.monotonic() + a.observe
    while time.monotonic() < deadline:      # bounded by --observe
        samples.append([n.name for n in lab.vip_holders()])
        time.sleep(0.25)
    return t_restart, t_ready, time.time(), samples


def client_figures(lab, w, new, t_crash, t_vip_left_old):
    """What the client saw: its errors by kind, and the acknowledged writes
    lost. Returns (figures, acknowledged attempts). t_vip_left_old: when the
    crashed node no longer had the VIP (None: not seen)."""
    holders_end = lab.vip_holders()
    attempts = w.snapshot()
    acked = [x for x in attempts if x["ok"]]
    seqs = [x["seq"] for x in acked]
    first_ok = w.first_ok_after(t_crash)
    # lost: acknowledged (by any primary) and absent from the node that
    # holds the VIP at the end, i.e. from what clients now see
    judged = holders_end or [new]
    lost = set()
    for h in judged:
        lost.update(lab.verify_writes(seqs, h))
    by_seq = {x["seq"]: x for x in acked}
    # the client's errors: every failed attempt that ended after the crash
    errs = [x for x in attempts if not x["ok"] and x["t1"] >= t_crash]
    kinds = {kd: 0 for kd in ERROR_KINDS}
    other_texts = set()
    for x in errs:
        kd = labkit.error_kind(x.get("err"))
        kinds[kd] += 1
        if kd == "other":
            other_texts.add((x.get("err") or "")[:160])
    in_flight = [x for x in errs if x["t0"] < t_crash]
    # begun after the crash while the crashed node still had the VIP: the
    # attempt's connection may have reached its pgbouncer before anything
    # could know the server was dead
    in_window = [x for x in errs if t_vip_left_old is not None and t_crash <= x["t0"] < t_vip_left_old]
    return {
        "errors": kinds,
        "errors_in_flight_at_crash": len(in_flight),
        "errors_begun_before_vip_left": len(in_window),
        "errors_begun_before_vip_left_ms": sorted(round((x["t0"] - t_crash) * 1000, 1) for x in in_window),
        "errors_after_first_write": sum(1 for x in errs if x["t0"] > first_ok["t0"]),
        "error_other_texts": sorted(other_texts),
        "error_texts": sorted({(x.get("err") or "")[:120] for x in errs}),
        "vip_holders_end": [n.name for n in holders_end],
        "attempts": len(attempts), "acknowledged": len(acked),
        "acknowledged_by_new": sum(1 for x in acked if x.get("node") == new.name),
        "lost_writes": len(lost),
        "lost_acknowledged_by": sorted({by_seq[s].get("node") for s in lost}),
        "pending_at_stop": len((w.end or {}).get("pending", [])),
    }, acked


def restart_figures(lab, mode, old, acked, t_crash, observed):
    """After the old primary's restart: did it take the VIP back, its
    verdict (pgtrackd) or priority (classic)."""
    t_restart, t_ready, t_obs_end, samples = observed
    evs = lab.events.all(since=t_restart)
    back = first(evs, lambda e: e["node"] == old.name and e["src"] == "vip" and e["kind"] == "vip_add")
    if mode == "classic":
        eligible = first(evs, lambda e: e["node"] == old.name and e["src"] == "keepalived"
                         and PRIO_RE.search(e["text"])
                         and int(PRIO_RE.search(e["text"]).group(2)) >= 100)
        old_verdict = "priority %s" % PRIO_RE.search(eligible["text"]).group(2) if eligible else None
    else:
        eligible = None
        tr = [e for e in evs if e["node"] == old.name and e["src"] == "pgtrackd" and e["kind"] == "track"]
        old_verdict = tr[-1]["new"] if tr else None
    return {
        "restart_at_ms": ms(t_restart, t_crash),
        "restart_ready_ms": ms(t_ready, t_restart),
        "observed_s": round(t_obs_end - t_ready, 1),
        "samples": len(samples),
        "samples_vip_on_old": sum(1 for s in samples if old.name in s),
        "old_took_vip_back": back is not None or any(old.name in s for s in samples),
        "vip_back_ms": ms(back and back["t"], t_restart),
        "old_priority_equal_ms": ms(eligible and eligible["t"], t_restart),
        "old_verdict": old_verdict,
        "acknowledged_by_old_after_restart": sum(1 for x in acked if x.get("node") == old.name
                                                 and x["t1"] >= t_restart),
    }


def backend_start_ms(node, count=5):
    """The machine's cost of a PostgreSQL backend start: the median of
    count connections (connect, SELECT 1, close) to the node's socket,
    idle, after the run. The cold pool after a promotion pays it at least
    once before the first write. None if a connection fails: the figure
    is context, and the run's own figures stand without it."""
    times = []
    for _ in range(count):
        t = time.perf_counter()
        try:
            node.pg("SELECT 1", dbname=labkit.layout.APPDB)
        except Exception as e:  # noqa: BLE001 - any driver error: no figure
            lab_log("backend start not measured on %s: %s" % (node.name, e))
            return None
        times.append((time.perf_counter() - t) * 1000.0)
    return round(statistics.median(times), 1)


def one_run(labkit, series, mode, a, k, phase):
    # mode pgtrackd: pgtrackd's sync_standby_names (three nodes and more: a fixed
    # synchronous_standby_names with --fixed-sync); classic: asynchronous with two
    # nodes, a fixed synchronous_standby_names with three and more
    sync = True if FIXED_SYNC and series.nodes >= 3 and mode == "pgtrackd" else None
    if series.repmgr:
        lab = labkit.Lab(nodes=series.nodes, promote="repmgr", build=a.build, log=lab_log, mode=mode,
                         sync=sync, vrrp_rt=VRRP_RT and mode == "pgtrackd", repmgr_pace=REPMGR_PACE,
                         trackd_rt=TRACKD_RT)
    else:
        lab = labkit.Lab(nodes=series.nodes, promote="manual", promote_delay=series.promote, build=a.build,
                         log=lab_log, mode=mode, sync=sync, vrrp_rt=VRRP_RT and mode == "pgtrackd",
                         trackd_rt=TRACKD_RT)
    r = {"series": series.key, "nodes": series.nodes, "promote": series.promote, "mode": mode, "run": k,
         "ok": False, "replication": "pgtrackd" if lab.sync_policy else "fixed" if lab.sync else "async"}
    t_begin = time.monotonic()
    with lab:
        r["setup_s"] = round(time.monotonic() - t_begin, 1)
        r["lab"] = lab.id
        r["loadavg"] = [round(x, 2) for x in os.getloadavg()]
        r["other_labs"] = other_labs(lab.prefix)
        old, new, w, t_crash, t_failover_end = crash(lab, series, mode, k, phase, r)
        r.update(failover_figures(labkit, lab, mode, old, new, w, t_crash, t_failover_end))
        # -- the old primary restarted as a primary (optional)
        observed = observe_restart(lab, old, a) if a.observe else None
        w.stop()
        r["backend_start_ms"] = backend_start_ms(new)
        left = r["vip_left_old_ms"]
        figures, acked = client_figures(lab, w, new, t_crash, None if left is None else t_crash + left / 1000.0)
        r.update(figures)
        r["observed"] = bool(a.observe)
        if a.observe:
            r.update(restart_figures(lab, mode, old, acked, t_crash, observed))
        r["ok"] = True
        r["measured_s"] = round(time.monotonic() - t_begin, 1)
    r["duration_s"] = round(time.monotonic() - t_begin, 1)
    return r
