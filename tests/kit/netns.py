"""Network namespaces: which exist, which processes are in one."""

import os
import subprocess


def _ip(*args):
    return subprocess.run(["ip", "netns"] + list(args), capture_output=True, text=True, timeout=10,
                          stdin=subprocess.DEVNULL)


def netns_pids(ns):
    """PIDs of the processes in namespace ns ([] if there is none)."""
    p = _ip("pids", ns)
    return [int(x) for x in p.stdout.split()] if p.returncode == 0 else []


def netns_list():
    p = _ip("list")
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def netns_exec(ns):
    """The argv prefix that runs a program in namespace ns (ip netns exec
    execs it: the same PID)."""
    return ["ip", "netns", "exec", ns]


def netns_unavailable():
    """None if this machine can create a network namespace, else why not."""
    name = "pgtl-probe-%d-%s" % (os.getpid(), os.urandom(3).hex())
    try:
        p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "cannot run `ip netns add`: %s" % e
    if p.returncode != 0:
        return ("this machine cannot create network namespaces (`ip netns add` failed: %s); "
                "the lab needs them (CAP_SYS_ADMIN)" % (p.stderr.strip() or "exit %d" % p.returncode))
    d = _ip("del", name)
    if d.returncode != 0:
        raise RuntimeError("could not delete the probe namespace %s: %s" % (name, d.stderr.strip()))
    return None
