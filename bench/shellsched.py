#!/usr/bin/python3
"""A tiny stand-in for keepalived's vrrp_script scheduler (used by bench/run).

Each script is started every INTERVAL, the way keepalived runs a
``vrrp_script``: a new process (posix_spawn = vfork + exec of the script,
whose ``#!/bin/bash`` line makes the kernel start bash), in its own process
group, killed as a group when it overruns TIMEOUT (keepalived counts that
run as failed: with --timeout-file SCRIPT=FILE the scheduler then writes
"-254" to FILE, as the script would on a failure).  A tick at which the
previous run of the same script is still running is skipped, not queued.

Every finished run is reaped with wait4(), whose rusage covers the script
and everything it waited for (bash, the $(...) subshell, psql, pg_isready).
The running totals per script are written atomically to --stats as JSON
after every reap, so bench/run can take snapshots at the edges of its
measurement window.

SIGTERM/SIGINT: kill the running scripts (by process group id), reap them,
write the final totals and exit 0.  The process also asks the kernel for a
SIGTERM when its parent dies (PR_SET_PDEATHSIG), so an interrupted bench
never leaves it behind.
"""

import argparse
import ctypes
import json
import os
import select
import signal
import sys
import time

PR_SET_PDEATHSIG = 1


class Scheduler:
    """The scripts, their running runs and their totals."""

    def __init__(self, args):
        self.args = args
        self.timeout_files = dict(x.split("=", 1) for x in args.timeout_file)
        self.interval = args.interval_ms / 1000.0
        self.timeout = args.timeout_ms / 1000.0
        self.env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
        self.stats = {}
        for s in args.scripts:
            self.stats[s] = {"started": 0, "done": 0, "ok": 0, "failed": 0, "skipped": 0,
                             "timed_out": 0, "utime": 0.0, "stime": 0.0}
        self.running = {}          # pid -> (script, started_at)

    def write_stats(self):
        tmp = self.args.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pid": os.getpid(), "t": time.monotonic(), "scripts": self.stats}, f)
        os.replace(tmp, self.args.stats)

    def reap(self):
        changed = False
        while self.running:
            try:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            item = self.running.pop(pid, None)
            if item is None:
                continue
            st = self.stats[item[0]]
            st["done"] += 1
            st["utime"] += ru.ru_utime
            st["stime"] += ru.ru_stime
            if os.waitstatus_to_exitcode(status) == 0:
                st["ok"] += 1
            else:
                st["failed"] += 1
            changed = True
        if changed:
            self.write_stats()

    def tick(self, now):
        """Start every script whose previous run is over; skip the others."""
        busy = {item[0] for item in self.running.values()}
        for s in self.args.scripts:
            if s in busy:
                self.stats[s]["skipped"] += 1
                continue
            pid = os.posix_spawn(s, [s], self.env, setpgroup=0)
            self.running[pid] = (s, now)
            self.stats[s]["started"] += 1

    def kill_overruns(self, now):
        """Kill (the process group of) every run over the timeout; count it once."""
        for pid, (s, started) in list(self.running.items()):
            if now - started > self.timeout:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.stats[s]["timed_out"] += 1
                if s in self.timeout_files:
                    with open(self.timeout_files[s], "w") as f:
                        f.write("-254\n")
                self.running[pid] = (s, float("inf"))   # count once

    def shutdown(self):
        """Kill what still runs (by process group), reap, bounded."""
        for pid in list(self.running):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5.0
        while self.running and time.monotonic() < deadline:
            self.reap()
            if self.running:
                time.sleep(0.01)
        self.write_stats()


def sleep_until(rfd, wait):
    """Sleep up to wait seconds, or until a signal writes to the wakeup pipe."""
    if wait <= 0:
        return
    try:
        select.select([rfd], [], [], wait)
    except InterruptedError:
        pass
    try:
        for _ in range(1000):
            if not os.read(rfd, 512):
                break
    except BlockingIOError:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interval-ms", type=int, required=True)
    ap.add_argument("--timeout-ms", type=int, required=True)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--max-seconds", type=float, default=3600.0,
                    help="hard bound on the scheduler's life")
    ap.add_argument("--timeout-file", action="append", default=[],
                    help="SCRIPT=FILE: write -254 to FILE when SCRIPT is killed on timeout")
    ap.add_argument("scripts", nargs="+")
    args = ap.parse_args()

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    parent = os.getppid()
    if parent == 1:
        return 0

    stop = {"flag": False}

    def on_term(signum, frame):
        stop["flag"] = True

    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda s, f: None)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    sch = Scheduler(args)
    t_start = time.monotonic()
    next_tick = t_start
    sch.write_stats()
    while not stop["flag"]:
        now = time.monotonic()
        if now - t_start > args.max_seconds or os.getppid() != parent:
            break
        if now >= next_tick:
            sch.tick(now)
            next_tick += sch.interval
            if next_tick < now:          # we fell behind: do not burst
                next_tick = now + sch.interval
        sch.kill_overruns(now)
        sch.reap()
        wait = next_tick - time.monotonic()
        if sch.running:
            wait = min(wait, 0.05)
        sleep_until(rfd, wait)
    sch.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
