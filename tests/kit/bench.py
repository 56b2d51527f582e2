"""What the benchmarks (bench/run, bench/notify) share: the log to stderr,
a strict wait, figures, and a run's setup and teardown (root, signals as
Ctrl-C, child subreaper, the temporary directory)."""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from kit import KitError
from kit.files import read_text
from kit.procs import set_pdeathsig
from kit.subreaper import POPEN_PIDS, become_subreaper
from kit.waiting import wait_until as _wait_until

BenchError = KitError
T0 = time.monotonic()
LOG_PREFIX = ["bench"]


def log(msg):
    sys.stderr.write("[%s %6.1fs] %s\n" % (LOG_PREFIX[0], time.monotonic() - T0, msg))
    sys.stderr.flush()


def wait_until(pred, timeout, step=0.01, what="condition"):
    """Poll pred() until true; bounded by timeout. Returns pred's value or
    raises BenchError; an exception of pred's goes out at once."""
    return _wait_until(pred, timeout, step, what=what, error=BenchError, tolerate=())


def stats_of(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0, "median": None, "max": None, "min": None, "mean": None}
    return {"n": len(xs), "median": statistics.median(xs), "max": max(xs),
            "min": min(xs), "mean": statistics.fmean(xs)}


def fmt_ms(v):
    return "missed" if v is None else ("%.1f ms" % v)


def ratio(a, b):
    return None if (a is None or b is None or b == 0) else a / b


def f(v, fmt="%.1f"):
    return "-" if v is None else fmt % v


def start(name, tag, prefix, needs):
    """The log lines of the run begin with [tag. Refuse to run unless root and every (path, message) of needs is
    executable; SIGTERM and SIGHUP become Ctrl-C (an orderly teardown); we
    become the child subreaper of what we start (orphans are reaped at once,
    as systemd would). Returns a new temporary directory postgres can reach."""
    LOG_PREFIX[0] = tag
    if os.geteuid() != 0:
        sys.exit("%s must run as root (PostgreSQL runs as 'postgres' via runuser): sudo %s" % (name, name))
    for path, message in needs:
        if not os.access(path, os.X_OK):
            sys.exit(message % path)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    become_subreaper()
    base = tempfile.mkdtemp(prefix=prefix)
    os.chmod(base, 0o711)          # postgres must reach its directories below
    return base


def run(measure, teardown, keep):
    """result = measure(); then teardown(keep), whatever happened (the
    directories are kept on an error, or if keep). Returns (result or
    None, exit code: 0, 1 on a BenchError, 130 on Ctrl-C or a signal)."""
    result = None
    rc = 1
    try:
        result = measure()
        rc = 0
    except KeyboardInterrupt as e:
        log("interrupted (%s): tearing down" % (e or "Ctrl-C"))
        rc = 130
    except BenchError as e:
        log("ERROR: %s" % e)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        teardown(keep or rc not in (0, 130))
    return result, rc


def teardown(steps, keep, paths):
    """Run each (what, fn) of steps whatever the others do; then remove
    paths, or say they are kept."""
    for what, fn in steps:
        try:
            fn()
        except Exception as e:     # keep tearing down the rest
            log("teardown of %s: %s" % (what, e))
    if keep:
        log("kept %s" % " and ".join(paths))
    else:
        subprocess.run(["rm", "-rf", "--one-file-system"] + list(paths), timeout=60)


def emit(result, as_json, print_table):
    if result is None:
        return
    if as_json:
        json.dump(result, sys.stdout, indent=2, default=str)
        print()
    else:
        print_table(result)


class BenchProcess:
    """A program under measurement: stdout and stderr to its log file, cwd
    /, SIGTERM if the bench dies, reaped by subprocess (POPEN_PIDS)."""

    def __init__(self, binary, logpath):
        self.binary = binary
        self.logpath = logpath
        self.proc = None
        self.exit_code = None
        self.logf = None

    def check_config(self, conf, what):
        """PROGRAM -t -f conf must accept it."""
        p = subprocess.run([self.binary, "-t", "-f", conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=10)
        if p.returncode != 0:
            raise BenchError("%s -t rejected the bench config:\n%s" % (what, p.stdout))

    def spawn(self, argv, env=None):
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig,
                                     cwd="/", env=env)
        POPEN_PIDS.add(self.proc.pid)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return read_text(self.logpath)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after timeout. The exit code, or a text."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.exit_code = "killed after SIGTERM timeout"
        elif self.exit_code is None:
            self.exit_code = self.proc.returncode
        return self.exit_code
