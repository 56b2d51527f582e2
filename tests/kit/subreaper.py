"""A child subreaper's bookkeeping (the benchmarks): orphaned postgres
processes and notify scripts are reparented to us and reaped here."""

import ctypes
import os
import time

from kit.procs import proc_stat

PR_SET_CHILD_SUBREAPER = 36
POPEN_PIDS = set()          # children that subprocess.Popen reaps itself
SCRIPTS_RUNNING = set()     # pids of notify scripts we spawned
SCRIPT_EXITS = {}           # pid of a notify script -> (exit status, monotonic time seen)


def become_subreaper():
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap(pid):
    """waitpid(pid, WNOHANG) if pid is our child. Records the exit of a
    notify script. True if pid is gone (reaped now or not our child)."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    if got == 0:
        return False
    if pid in SCRIPTS_RUNNING:
        SCRIPTS_RUNNING.discard(pid)
        SCRIPT_EXITS[pid] = (os.waitstatus_to_exitcode(status), time.monotonic())
    return True


def reap_strays():
    """Reap every zombie child of ours (daemonized pgbouncers and postmasters
    reparented to us, notify scripts), except those subprocess.Popen waits for."""
    me = os.getpid()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in POPEN_PIDS:
            st = proc_stat(int(name))
            if st and st["ppid"] == me and st["state"] == "Z":
                reap(int(name))
