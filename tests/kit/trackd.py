"""pgtrackd under test: its config, the process, its log lines, -t checks
and a watcher of its track files."""

import os
import re
import threading
import time

from kit.daemons import Daemon, built_binary, render_sections, run_program

# Short, test-friendly timings for every track (spec names, spec units).
FAST_TRACK = {
    "interval": "200ms",
    "timeout": "1s",
    "connect_timeout": "1s",
    "rise": "2",
    "fall": "2",
    "accept_interval": "1s",
    "accept_full_interval": "1s",
}
FAST_GLOBAL = {"file_check_interval": "200ms"}
# The values the tests outside test_trackd.py and test_guard.py were written
# for: the layout on base priority 100 that came before pgtrackd's defaults
# for base 200 (primary 54, standby 53 minus its rank, lagging -100).
# test_trackd.py and test_guard.py test the defaults (legacy_values=False).
LEGACY_VALUES = {"value_primary": "100", "value_standby": "0", "value_lagging": "-50",
                 "base_priority": "100"}

LOG_LINE_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} pgtrackd: (error|warning|notice|info|debug): ")


def default_binary():
    return built_binary("PGTRACKD", "src", "trackd", "pgtrackd")


def render_config(tracks, global_opts=None):
    """tracks: {name: {key: value}} in order; returns INI text."""
    sections = {}
    g = dict(FAST_GLOBAL)
    if global_opts:
        g.update(global_opts)
    if g:
        sections["global"] = g
    for name, opts in tracks.items():
        sections["track %s" % name] = opts
    return render_sections(sections)


def run_binary(binary, *args, timeout=20, home=None):
    """Run pgtrackd to completion (for -t, -V, -h, bad options)."""
    return run_program(binary, *args, timeout=timeout, home=home)


def check(binary, conf):
    """pgtrackd -t: (result, [the PATH:LINE lines of stderr])."""
    r = run_binary(binary, "-t", "-f", conf)
    return r, [l for l in r.stderr.splitlines() if l.startswith(conf + ":")]


def assert_check_errors(binary, workdir, name, text, expected):
    """pgtrackd -t on text (as workdir/NAME.conf) fails with exactly the
    PATH:LINE: MESSAGE errors of expected [(line, message)]."""
    conf = os.path.join(workdir, name + ".conf")
    with open(conf, "w") as f:
        f.write(text)
    r, errs = check(binary, conf)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "configuration OK" not in r.stdout
    assert errs == ["%s:%d: %s" % (conf, n, m) for n, m in expected], r.stderr


def change_re(name, old, new, value, reason=None, reason_rx=None, path=None, detail=False):
    """Regex for the state change line:
    track "NAME": OLD -> NEW, value VALUE written to PATH (REASON)

    path None: any path. With detail, REASON may carry a detail after a
    colon ("connection refused: ..."), as the accept probe's "not accepting
    new connections: <reason>" does."""
    r = r'pgtrackd: info: track "%s": %s -> %s, value %d written to %s \(' % (
        re.escape(name), old, new, value, r"\S+" if path is None else re.escape(path))
    if reason is not None:
        r += re.escape(reason) + (r"(: .*)?\)$" if detail else r"\)$")
    elif reason_rx is not None:
        r += reason_rx + r"\)$"
    else:
        r += r".*\)$"
    return r


def changes(t, name, start=0):
    """[(old, new, value, reason)] of the state change lines of one track
    after byte offset start of the log."""
    rx = re.compile(r'pgtrackd: info: track "%s": (\w+) -> (\w+), value (-?\d+) written to \S+ \((.*)\)$'
                    % re.escape(name))
    out = []
    for line in t.lines_since(start):
        m = rx.search(line)
        if m:
            out.append((m.group(1), m.group(2), int(m.group(3)), m.group(4)))
    return out


class Trackd(Daemon):
    """One pgtrackd process with its own config, track directory and log."""

    name = "pgtrackd"
    program = "pgtrackd"

    def __init__(self, binary, base):
        super().__init__(binary, base)
        self.trackdir = os.path.join(base, "track")
        os.makedirs(self.trackdir, exist_ok=True)

    def path(self, name):
        return os.path.join(self.trackdir, name)

    def write_config(self, tracks, global_opts=None, raw=None):
        """tracks: {name: options}; a track without 'file' gets trackdir/name."""
        if raw is None:
            full = {}
            for name, opts in tracks.items():
                o = {"file": self.path(name)}
                o.update(opts)
                full[name] = o
            raw = render_config(full, global_opts)
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(raw)
        os.rename(tmp, self.conf)
        return raw

    def start(self, *extra):
        return self.spawn([self.binary, "-f", self.conf, "-n", "-l", "-v"] + list(extra))

    def read(self, name):
        """Raw content of a track file, or None if it does not exist."""
        try:
            with open(self.path(name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def wait_for_value(self, name, expected, timeout=10.0):
        """Poll the track file until it holds exactly '<expected>\\n'.

        Returns the seconds it took. Fails (with the log tail) on timeout or
        if pgtrackd exits."""
        want = "%d\n" % expected
        t0 = time.monotonic()
        last = None
        while True:
            last = self.read(name)
            if last == want:
                return time.monotonic() - t0
            if not self.alive():
                raise AssertionError(self.describe(
                    "pgtrackd exited while waiting for %s=%r (last %r)" % (name, want, last)))
            if time.monotonic() - t0 > timeout:
                raise AssertionError(self.describe(
                    "track %s: wanted %r within %.1fs, file holds %r" % (name, want, timeout, last)))
            time.sleep(0.02)


def as_int(raw):
    return None if raw is None else int(raw.strip() or "0")


class FileWatch:
    """Polls track files every 10 ms in a thread (for at most max_seconds);
    keeps every change with its time."""

    def __init__(self, t, names, period=0.01, max_seconds=300):
        self.t = t
        self.names = [names] if isinstance(names, str) else list(names)
        self.period = period
        self.seen = {n: [] for n in self.names}     # name -> [(monotonic, raw)]
        self._deadline = time.monotonic() + max_seconds
        self._stop = threading.Event()
        self._sample()                              # the values at the start, before we return
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self):
        now = time.monotonic()
        for n in self.names:
            v = self.t.read(n)
            s = self.seen[n]
            if not s or s[-1][1] != v:
                s.append((now, v))

    def _run(self):
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self._sample()
            time.sleep(self.period)

    def raw(self, name):
        """Every distinct content the file had in turn (None: missing)."""
        return [v for _, v in self.seen[name]]

    def values(self, name):
        return [as_int(v) for _, v in self.seen[name]]

    def ints(self, name):
        """The distinct values the file held in turn, leaving out its
        absence and emptiness."""
        out = []
        for v in self.raw(name):
            if v is not None and v.strip() and (not out or out[-1][0] != v):
                out.append((v, int(v)))
        return [i for _, i in out]

    def first_time(self, name, value, after=0.0):
        for ts, v in self.seen[name]:
            if ts >= after and as_int(v) == value:
                return ts
        return None

    def values_after(self, name, since):
        """Values held at or after `since` (including the one current at since)."""
        out = []
        for ts, v in self.seen[name]:
            if ts <= since:
                out = [as_int(v)]
            else:
                out.append(as_int(v))
        return out

    def stop(self):
        self._stop.set()
        self._thread.join(5)
