"""What a pgtrackd and a pgtrack-notify process under test have in common:
started in the foreground with its own config, stderr to a log file,
stopped by PID."""

import os
import re
import signal
import subprocess
import tempfile

from kit import REPO
from kit.files import file_size, read_since, read_text
from kit.procs import clean_env
from kit.waiting import wait_until


def built_binary(env_var, *rel):
    """$env_var, else the program in the checkout's build directory."""
    return os.environ.get(env_var) or os.path.join(REPO, "build", *rel)


def run_program(binary, *args, timeout=20, home=None):
    """Run a program to completion (-t, -V, -h, bad options, a start that
    must fail) in a clean environment; text output, bad bytes replaced."""
    home = home or tempfile.gettempdir()
    return subprocess.run([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=clean_env(home), text=True,
                          errors="replace")


def render_sections(sections):
    """sections: {section: {key: value}} in order; returns INI text."""
    out = []
    for sec, opts in sections.items():
        out.append("[%s]" % sec)
        out += ["%s = %s" % kv for kv in opts.items()]
        out.append("")
    return "\n".join(out)


class Daemon:
    """One process of the program at binary, in directory base: its config
    NAME.conf, its log (stderr) NAME.log, its stdout NAME.out."""

    name = "daemon"

    def __init__(self, binary, base):
        self.binary = binary
        self.base = base
        self.conf = os.path.join(base, self.name + ".conf")
        self.logpath = os.path.join(base, self.name + ".log")
        self.outpath = os.path.join(base, self.name + ".out")
        self.proc = None
        self.returncode = None
        self._err = self._out = None
        self.extra_env = {}               # added to the clean environment
        self.wrapper = []                 # argv that execs the program: ip netns exec, valgrind

    def spawn(self, argv):
        assert self.proc is None
        self._err = open(self.logpath, "ab")
        self._out = open(self.outpath, "ab")
        env = clean_env(self.base)
        env.update(self.extra_env)
        self.proc = subprocess.Popen(self.wrapper + argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=env, cwd=self.base)
        return self.proc

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def log(self):
        return read_text(self.logpath)

    def log_lines(self):
        return self.log().splitlines()

    def log_size(self):
        return file_size(self.logpath)

    def log_since(self, offset):
        return read_since(self.logpath, offset)

    def lines_since(self, offset=0):
        return self.log_since(offset).splitlines()

    def describe(self, extra=""):
        tail = "\n".join(self.log_lines()[-60:])
        state = "running" if self.alive() else "exited with %r" % (self.proc.poll() if self.proc else None)
        return "%s\n%s %s; last log lines:\n%s" % (extra, self.program, state, tail)

    def wait_for_log(self, pattern, timeout=10.0, start=0):
        """The first log line after byte offset start matching regex pattern."""
        rx = re.compile(pattern)

        def find():
            for line in self.lines_since(start):
                if rx.search(line):
                    return line
            return None
        return wait_until(find, timeout, what="a log line matching %r" % pattern,
                          describe=lambda: self.describe("no log line matching %r" % pattern))

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal by PID and wait; SIGKILL if it does not exit. Exit code,
        or "killed"."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                self.returncode = "killed"
                return self.returncode
        self.returncode = self.proc.returncode
        return self.returncode

    def close(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop(signal.SIGTERM, 5)
        finally:
            for f in (self._err, self._out):
                if f:
                    f.close()
            self._err = self._out = None
