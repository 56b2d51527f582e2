"""bench/run's measurements: crash and hang runs (kill -9 and SIGSTOP of
the postmaster -> -254 in the track files) and the CPU windows."""

import os
import select
import signal
import time

from kit.bench import BenchError, fmt_ms, log
from kit.files import read_int
from kit.postgres import PG_USER
from kit.procs import cpu_ns, status_kb
from trackd_rig import (ACCEPT_FULL_INTERVAL_S, DOWN, PGTRACKD_FILE, SH_ISREADY_FILE, SH_ROLE_FILE, Inotify,
                        find_pgtrackd_backend, wait_all_up)


def watched_files(trackd, shell):
    """({file name: label}, {file name: path}) of the three track files."""
    names = {PGTRACKD_FILE: "pgtrackd", SH_ISREADY_FILE: "sh_isready", SH_ROLE_FILE: "sh_role"}
    paths = {PGTRACKD_FILE: trackd.file, SH_ISREADY_FILE: shell.isready_file,
             SH_ROLE_FILE: shell.role_file}
    return names, paths


class ObserverScheduling:
    """The watch of the files on SCHED_RR args.observer_rt while it runs
    (0: normal scheduling): keepalived's VRRP process, whose place it takes,
    runs on vrrp_rt_priority 50 in the examples. At normal priority the
    watch would wait for a CPU behind the crashed server's exiting backends
    and add that wait to every figure."""

    def __init__(self, args):
        self.rt = args.observer_rt

    def __enter__(self):
        if self.rt:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(self.rt))
        return self

    def __exit__(self, *exc):
        if self.rt:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return False


def kill_and_watch(args, pg, ino, names, paths, backend):
    """kill -9 the postmaster; until every file says -254 (or a deadline),
    the ms from the kill to each file's -254 (seen) and to each exit."""
    watch = {}
    for label, pid in (("postmaster_exit", pg.pid), ("backend_exit", backend)):
        try:
            watch[os.pidfd_open(pid)] = label
        except OSError:
            pass
    poller = select.poll()
    poller.register(ino.fd, select.POLLIN)
    for fd in watch:
        poller.register(fd, select.POLLIN)
    witness = None
    if args.diag:
        witness = open_witness(pg)
        watch[witness.fileno()] = "witness_first_byte"
        poller.register(witness.fileno(), select.POLLIN)
    ino.drain()
    seen, exits = {}, {}
    observer = ObserverScheduling(args)
    observer.__enter__()
    try:
        t_kill = pg.kill9()
        deadline = t_kill + 5.0 + 3 * args.crash_interval_ms / 1000.0
        while len(seen) < len(names) and time.monotonic() < deadline:
            ready = poller.poll(max(0, int((deadline - time.monotonic()) * 1000)))
            now = time.monotonic()
            for fd, _ in ready:
                if fd in watch:
                    exits[watch[fd]] = (now - t_kill) * 1000.0
                    poller.unregister(fd)
                    continue
                evs = ino.read_events()
                if evs is None:       # overflow: look at every file
                    evs = list(names)
                for n in set(evs):
                    if n in names and n not in seen and read_int(paths[n]) == DOWN:
                        seen[n] = (now - t_kill) * 1000.0
    finally:
        observer.__exit__(None, None, None)
        for fd, label in watch.items():
            if label != "witness_first_byte":
                os.close(fd)
        if witness is not None:
            try:
                witness.close()
            except Exception:
                pass
    return seen, exits


def restart_and_wait(args, pg, paths, rng):
    """Reap the orphans, restart PostgreSQL at a random phase; the ms from
    the restart to each file's primary value again."""
    lefts = pg.reap_orphans()
    # a random phase for the restart too, or the "back up" figures
    # would only show the fixed phase between the probes' ticks
    time.sleep(rng.uniform(0.0, args.crash_interval_ms / 1000.0))
    t0 = time.monotonic()
    tries = pg.start(tries=args.start_tries)
    t_started = time.monotonic()
    # back up: restart-to-file latency (pgtrackd has rise = 2)
    back = {}
    want = {PGTRACKD_FILE: 100, SH_ISREADY_FILE: 0, SH_ROLE_FILE: 100}
    dl = t_started + 30.0
    while len(back) < len(want) and time.monotonic() < dl:
        for n, v in want.items():
            if n not in back and read_int(paths[n]) == v:
                back[n] = (time.monotonic() - t_started) * 1000.0
        time.sleep(0.005)
    return lefts, tries, t_started - t0, back, want


def crash_runs(args, pg, trackd, shell, trackdir, rng):
    ino = Inotify(trackdir)
    names, paths = watched_files(trackd, shell)
    runs = []
    try:
        for i in range(args.runs):
            if not trackd.alive():
                raise BenchError("pgtrackd died (exit %s) before run %d; log:\n%s" % (
                    trackd.proc.poll(), i + 1, trackd.log_text()[-3000:]))
            wait_all_up(trackd, shell)
            # pgtrackd's session backend: its exit is when the session's
            # socket closes (the kernel closes files before it reports exit)
            backend = find_pgtrackd_backend(pg)
            # a random phase against the shell's 1 s ticks
            time.sleep(rng.uniform(0.0, args.crash_interval_ms / 1000.0))
            seen, exits = kill_and_watch(args, pg, ino, names, paths, backend)
            lefts, tries, restart_s, back, want = restart_and_wait(args, pg, paths, rng)
            r = {names[n]: seen.get(n) for n in names}
            sh = [v for v in (r["sh_isready"], r["sh_role"]) if v is not None]
            r["shell"] = min(sh) if sh else None
            r["postmaster_exit"] = exits.get("postmaster_exit")
            r["backend_exit"] = exits.get("backend_exit")
            if args.diag:
                r["witness_first_byte"] = exits.get("witness_first_byte")
            r["restart_tries"] = tries
            r["restart_s"] = restart_s
            r["orphans_killed"] = len(lefts)
            r["back_up_ms"] = {names[n]: back.get(n) for n in names}
            runs.append(r)
            log("crash %d/%d: pgtrackd %s, shell %s (pg_isready %s, psql %s); postmaster gone %s, "
                "pgtrackd's backend gone %s; pg_ctl start tries %d; back up after restart: "
                "pgtrackd %s, shell %s/%s" % (
                    i + 1, args.runs, fmt_ms(r["pgtrackd"]), fmt_ms(r["shell"]),
                    fmt_ms(r["sh_isready"]), fmt_ms(r["sh_role"]), fmt_ms(r["postmaster_exit"]),
                    fmt_ms(r["backend_exit"]) + (" (FATAL at a client %s)"
                                                 % fmt_ms(r.get("witness_first_byte"))
                                                 if args.diag else ""), tries,
                    fmt_ms(r["back_up_ms"]["pgtrackd"]), fmt_ms(r["back_up_ms"]["sh_isready"]),
                    fmt_ms(r["back_up_ms"]["sh_role"])))
            if len(back) < len(want):
                raise BenchError("not everything came back up within 30 s after restart: %r"
                                 % {names[n]: read_int(paths[n]) for n in names})
    finally:
        ino.close()
    return runs


def hang_runs(args, pg, trackd, shell, trackdir, rng):
    """SIGSTOP of the postmaster at a random phase: when does each file say
    -254?  The open sessions keep answering; only new connections hang."""
    ino = Inotify(trackdir)
    names, paths = watched_files(trackd, shell)
    runs = []
    try:
        for i in range(args.hang_runs):
            wait_all_up(trackd, shell)
            time.sleep(1.0 + rng.uniform(0.0, args.crash_interval_ms / 1000.0))
            ino.drain()
            seen = {}
            os.kill(pg.pid, signal.SIGSTOP)
            t_stop = time.monotonic()
            deadline = t_stop + 10.0
            try:
                while len(seen) < len(names) and time.monotonic() < deadline:
                    r, _, _ = select.select([ino.fd], [], [], max(0.0, deadline - time.monotonic()))
                    if not r:
                        continue
                    now = time.monotonic()
                    evs = ino.read_events()
                    if evs is None:
                        evs = list(names)
                    for n in set(evs):
                        if n in names and n not in seen and read_int(paths[n]) == DOWN:
                            seen[n] = (now - t_stop) * 1000.0
            finally:
                os.kill(pg.pid, signal.SIGCONT)
            r = {names[n]: seen.get(n) for n in names}
            sh = [v for v in (r["sh_isready"], r["sh_role"]) if v is not None]
            r["shell"] = min(sh) if sh else None
            runs.append(r)
            log("hang %d/%d: pgtrackd %s, shell %s (pg_isready %s, psql %s)" % (
                i + 1, args.hang_runs, fmt_ms(r["pgtrackd"]), fmt_ms(r["shell"]),
                fmt_ms(r["sh_isready"]), fmt_ms(r["sh_role"])))
    finally:
        ino.close()
    return runs


def open_witness(pg):
    """--diag: an idle session of our own; its socket turns readable when the
    dying backend sends "FATAL: terminating connection due to unexpected
    postmaster exit", i.e. the earliest moment a client can know."""
    import psycopg
    return psycopg.connect(host=pg.sockdir, port=pg.port, user=PG_USER, dbname="postgres",
                           autocommit=True, application_name="bench-witness")


def cpu_window_pgtrackd(args, pg, trackd, interval_ms):
    """pgtrackd alone at interval_ms (accept_interval unset: the same)."""
    backend = find_pgtrackd_backend(pg)
    # Past the switch's own transient (a new session, prepared again, and the
    # first accept probe, a full connection): the window is the steady state.
    time.sleep(5.0)
    t0 = time.monotonic()
    c0 = cpu_ns(trackd.pid)
    b0 = cpu_ns(backend)
    pm0, kids0 = pg.server_cpu_ns()
    ctx0 = status_kb(trackd.pid, ("voluntary_ctxt_switches",))
    deadline = t0 + args.cpu_window
    while time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        if not trackd.alive():
            raise BenchError("pgtrackd died during the CPU window")
    t1 = time.monotonic()
    c1 = cpu_ns(trackd.pid)
    b1 = cpu_ns(backend)
    pm1, kids1 = pg.server_cpu_ns()
    ctx1 = status_kb(trackd.pid, ("voluntary_ctxt_switches",))
    if b1 is None:
        raise BenchError("pgtrackd's backend %d vanished during the CPU window "
                         "(reconnect?)" % backend)
    elapsed = t1 - t0
    cycles = elapsed / (interval_ms / 1000.0)
    return {
        "elapsed_s": elapsed,
        "interval_ms": interval_ms,
        "cycles": cycles,
        # accept_interval = interval: one accept probe a cycle, every
        # full connection every accept_full_interval, the others light probes
        "accept_probes_expected": cycles,
        "full_connections_expected": elapsed / ACCEPT_FULL_INTERVAL_S,
        "client_cpu_s": (c1 - c0) / 1e9,
        "server_backend_cpu_s": (b1 - b0) / 1e9,
        "server_postmaster_cpu_s": (pm1 - pm0) / 1e9,
        "server_exited_children_cpu_s": (kids1 - kids0) / 1e9,
        "server_cpu_s": ((b1 - b0) + (pm1 - pm0) + (kids1 - kids0)) / 1e9,
        "voluntary_ctxt_switches": ctx1.get("voluntary_ctxt_switches", 0)
        - ctx0.get("voluntary_ctxt_switches", 0),
        "backend_pid": backend,
    }


def idle_window(args, pg):
    t0 = time.monotonic()
    pm0, kids0 = pg.server_cpu_ns()
    time.sleep(args.idle_window)
    pm1, kids1 = pg.server_cpu_ns()
    el = time.monotonic() - t0
    return {"elapsed_s": el, "server_cpu_s": ((pm1 - pm0) + (kids1 - kids0)) / 1e9}


def cpu_window_shell(args, pg, shell, interval_ms):
    shell.start(interval_ms, max(interval_ms, 1000), args.cpu_window + 60)
    try:
        time.sleep(1.0)            # let it settle
        t0 = time.monotonic()
        s0 = shell.snapshot()
        pm0, kids0 = pg.server_cpu_ns()
        deadline = t0 + args.cpu_window
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            if shell.proc.poll() is not None:
                raise BenchError("shell scheduler died during the CPU window")
        s1 = shell.snapshot()
        pm1, kids1 = pg.server_cpu_ns()
        t1 = time.monotonic()
    finally:
        shell.stop()
    d = {}
    for k in ("isready", "role"):
        d[k] = {f: s1[k][f] - s0[k][f] for f in s1[k]}
    if not d["isready"]["done"] or not d["role"]["done"]:
        raise BenchError("the shell checks completed no run in the CPU window: %r" % d)
    # one cycle = one run of each script (keepalived runs both every interval)
    cycles = (d["isready"]["done"] + d["role"]["done"]) / 2.0
    client = sum((d[k]["utime"] + d[k]["stime"]) / d[k]["done"] for k in d) * cycles
    return {
        "elapsed_s": t1 - t0,
        "interval_ms": interval_ms,
        "cycles": cycles,
        "runs": d,
        "client_cpu_s": client,
        "client_cpu_cutime_s": (s1["cutime_ns"] - s0["cutime_ns"]) / 1e9,
        "server_postmaster_cpu_s": (pm1 - pm0) / 1e9,
        "server_exited_children_cpu_s": (kids1 - kids0) / 1e9,
        "server_cpu_s": ((pm1 - pm0) + (kids1 - kids0)) / 1e9,
    }
