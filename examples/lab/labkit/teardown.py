"""Stopping a lab by its state file: processes by PID in order, then its
namespaces and directory; and the labs whose owner is gone."""

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

from kit.netns import netns_list, netns_pids
from kit.postgres import read_postmaster_pid
from kit.procs import pid_alive, proc_stat, signal_pid
from labkit.layout import BASE_DIR, DIR_PREFIX, LabError, NS_RE, run, RUN_BASE_DIR, STATE_DIR, stderr_log


STOP_ORDER = ("keepalived", "repmgrd", "pgtrack-notify", "pgtrackd", "pgbouncer", "postgres")


def empty_namespaces(state, reap, problems):
    """Whatever else still runs in the lab's namespaces (postgres backends,
    monitors, a crashed run's leftovers): SIGKILL by PID, from ip netns pids."""
    existing = set(netns_list())
    namespaces = [ns for ns in state.get("namespaces", []) if ns in existing]
    for attempt in range(50):
        pids = [pid for ns in namespaces for pid in netns_pids(ns) if pid != os.getpid()]
        reap()
        pids = [pid for pid in pids if pid_alive(pid)]
        if not pids:
            break
        for pid in pids:
            signal_pid(pid, signal.SIGKILL)
        time.sleep(0.1)
    else:
        problems.append("processes still in the lab namespaces: %s" % pids)
    return namespaces


def teardown(state, log=stderr_log, popens=None):
    """Stop a lab's processes by PID, empty and delete its namespaces,
    remove its directory and state file. Every step runs even if an earlier
    one failed; returns the list of problems."""
    popens = popens or {}
    problems = []
    procs = state.get("procs", {})

    def reap():
        for pop in popens.values():
            if pop is not None:
                pop.poll()

    def live(items):
        reap()
        return [(k, v) for k, v in items if pid_alive(v["pid"], v.get("start"))]

    # 1. the recorded daemons, keepalived first so that it withdraws the VIP
    for what in STOP_ORDER:
        items = [(k, v) for k, v in procs.items() if k.endswith("/" + what)]
        sig = signal.SIGQUIT if what == "postgres" else signal.SIGTERM  # postgres: immediate shutdown
        for k, v in live(items):
            signal_pid(v["pid"], sig, v.get("start"))
        if what == "keepalived":
            deadline = time.monotonic() + 3
            while live(items) and time.monotonic() < deadline:
                time.sleep(0.05)
    # a postmaster started behind our back (repmgr standby follow): immediate shutdown
    for name, n in state.get("nodes", {}).items():
        try:
            pid = read_postmaster_pid(Path(n["dir"]) / "data")
        except (OSError, ValueError, KeyError):
            continue
        st = proc_stat(pid)
        if st and pid_alive(pid) and pid in netns_pids(n["ns"]):
            signal_pid(pid, signal.SIGQUIT, st["start"])
            procs = dict(procs, **{"%s/postmaster" % name: {"pid": pid, "start": st["start"]}})
    others = [(k, v) for k, v in procs.items() if not any(k.endswith("/" + w) for w in STOP_ORDER)]
    for k, v in live(others):
        signal_pid(v["pid"], signal.SIGTERM, v.get("start"))
    deadline = time.monotonic() + 5
    while live(list(procs.items())) and time.monotonic() < deadline:
        time.sleep(0.05)
    for k, v in live(list(procs.items())):
        signal_pid(v["pid"], signal.SIGKILL, v.get("start"))
        problems.append("%s (PID %d) needed SIGKILL" % (k, v["pid"]))
    namespaces = empty_namespaces(state, reap, problems)
    # 3. namespaces
    for ns in namespaces:
        p = run(["ip", "netns", "del", ns], check=False, timeout=20)
        if p.returncode != 0:
            problems.append("ip netns del %s: %s" % (ns, p.stderr.strip()))
    # 4. directories (the lab's, its track files' on tmpfs) and state file
    for d, base in ((state.get("dir"), BASE_DIR), (state.get("run_dir"), RUN_BASE_DIR)):
        if d and Path(d).parent == base and Path(d).name.startswith(DIR_PREFIX):
            shutil.rmtree(d, ignore_errors=True)
            if Path(d).exists():
                problems.append("could not remove %s" % d)
    sf = STATE_DIR / ("%s.json" % state["id"])
    try:
        sf.unlink()
    except FileNotFoundError:
        pass
    if problems:
        log("lab %s: teardown: %s" % (state["id"], "; ".join(problems)))
    else:
        log("lab %s: torn down" % state["id"])
    return problems


def load_states():
    out = []
    if STATE_DIR.is_dir():
        for f in sorted(STATE_DIR.glob("*.json")):
            try:
                out.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
    return out


def owner_alive(state):
    o = state.get("owner")
    return bool(o) and pid_alive(o.get("pid"), o.get("start"))


def down_by_id(lab_id, log=stderr_log):
    f = STATE_DIR / ("%s.json" % lab_id)
    if not f.exists():
        raise LabError("no lab %s (no %s)" % (lab_id, f))
    return teardown(json.loads(f.read_text()), log)


def cleanup(log=stderr_log, include_kept=False):
    """Remove the leftovers of labs whose owner process is gone: from their
    state files, then namespaces named pgtl-<6 hex>-* and directories
    /tmp/pgtrack-lab-<6 hex> and /dev/shm/pgtrack-lab-<6 hex> that no state
    file explains. Labs whose owner still runs are left alone, and so are
    labs left with --keep unless include_kept. Returns the ids removed."""
    removed = []
    known = set()
    for st in load_states():
        known.add(st["id"])
        if owner_alive(st):
            log("lab %s: owner PID %d still runs, leaving it" % (st["id"], st["owner"]["pid"]))
            continue
        if st.get("keep") and not st.get("owner") and not include_kept:
            log("lab %s was left with --keep: 'lab down %s' removes it (or --cleanup --all)" % (st["id"], st["id"]))
            continue
        teardown(st, log)
        removed.append(st["id"])
    orphans = {}
    for ns in netns_list():
        m = NS_RE.match(ns)
        if m and m.group(1) not in known:
            orphans.setdefault(m.group(1), []).append(ns)
    for base in (BASE_DIR, RUN_BASE_DIR):
        for d in base.glob(DIR_PREFIX + "*") if base.is_dir() else ():
            i = d.name[len(DIR_PREFIX):]
            if re.fullmatch(r"[0-9a-f]{6}", i) and i not in known:
                orphans.setdefault(i, [])
    for i, nss in sorted(orphans.items()):
        dirs = [base / (DIR_PREFIX + i) for base in (BASE_DIR, RUN_BASE_DIR)]
        log("lab %s: no state file; removing namespaces %s and %s" % (i, " ".join(nss) or "(none)",
                                                                     " ".join(str(d) for d in dirs)))
        teardown({"id": i, "namespaces": nss, "dir": str(dirs[0]), "run_dir": str(dirs[1]), "procs": {}}, log)
        removed.append(i)
    return removed


def install_signal_handlers():
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt, so that the
    caller's finally/with tears the lab down."""
    def handler(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    # also when started with SIGINT ignored (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
