"""Processes by PID: /proc bookkeeping and signals that never hit a reused PID."""

import ctypes
import os
import signal
import subprocess
import time

from kit import KitError

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """dict(state, ppid, utime, stime, cutime, cstime [ticks], start) of a
    process from /proc/PID/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] = field 3 (state); field N is rest[N-3]
    return {"state": rest[0], "ppid": int(rest[1]), "utime": int(rest[11]),
            "stime": int(rest[12]), "cutime": int(rest[13]), "cstime": int(rest[14]),
            "start": int(rest[19])}


def pid_alive(pid, start=None):
    """True if PID runs (a zombie does not) and, if given, started at start."""
    if not pid:
        return False
    st = proc_stat(pid)
    if st is None or st["state"] in ("Z", "X"):
        return False
    return start is None or st["start"] == start


def children_of(pid):
    """[(pid, starttime)] of the live children of pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st["ppid"] == pid and st["state"] not in ("Z", "X"):
            out.append((int(name), st["start"]))
    return out


def wait_pid_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def signal_pid(pid, sig, start=None):
    """Send sig to pid only if it is still the process we started."""
    if not pid_alive(pid, start):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def kill_started(procs):
    """SIGKILL each (pid, starttime) that is still that process."""
    for pid, start in procs:
        signal_pid(pid, signal.SIGKILL, start)


def cmdline(pid):
    """The command line of a process, arguments joined by spaces, or ""."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_pid_if(pid, cmd_substring):
    """SIGKILL a leftover process by PID, only if its command line still
    contains cmd_substring (not a reused PID)."""
    if cmd_substring in cmdline(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cpu_ns(pid):
    """On-CPU time of a live process in ns: /proc/PID/schedstat (exact), else
    utime+stime from /proc/PID/stat (clock ticks)."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        st = proc_stat(pid)
        if st is None:
            return None
        return (st["utime"] + st["stime"]) * 1_000_000_000 // CLK_TCK


def children_cpu_ns(pid):
    """cutime+cstime of pid (its reaped children), in ns (tick resolution)."""
    st = proc_stat(pid)
    if st is None:
        return None
    return (st["cutime"] + st["cstime"]) * 1_000_000_000 // CLK_TCK


def status_kb(pid, keys):
    """{key: kB} of the /proc/PID/status lines named in keys."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def set_pdeathsig():
    """preexec_fn: the child gets SIGTERM if its parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def run_command(argv, timeout=60, check=True, input=None, error=KitError):
    """Run a command, capture its output (text). Raises error if it times
    out or (with check) fails."""
    try:
        p = subprocess.run([str(a) for a in argv], input=input, capture_output=True, text=True,
                           timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise error("timed out after %ss: %s" % (timeout, " ".join(map(str, argv))))
    if check and p.returncode != 0:
        raise error("%s failed (exit %d): %s" % (" ".join(map(str, argv)), p.returncode,
                                                  (p.stderr or p.stdout).strip()[-2000:]))
    return p


def clean_env(home):
    """No PG* variables, and a HOME without a .pgpass of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["HOME"] = home
    env["LC_ALL"] = "C"
    return env
