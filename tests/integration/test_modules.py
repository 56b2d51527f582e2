"""Probe modules (issue 4) with a real pgtrackd and a real PostgreSQL 15.

- the example module (examples/modules/maintenance.c, built by meson) loads,
  reports and drives its track file from a flag file, next to a PostgreSQL
  track of the same pgtrackd that stays at 100 throughout;
- every refusal of the loader, with the exact message of `pgtrackd -t`
  (and, once, of a starting pgtrackd), and a module of another ABI version
  (tests/modules/other_abi.c);
- the module's own keys, validated by the module, as PATH:LINE errors;
- reloads: a changed module setting re-initialises that track only, a
  removed module track writes its stopped value and is unloaded, a bad
  module key refuses the reload; the PostgreSQL track keeps its session;
- load, reload and unload under valgrind, without a definite leak;
- an out-of-tree build of the example module against the installed header
  and pkg-config file, loaded by pgtrackd;
- each module runs its own code (issue 9): two tracks with two modules,
  reloads switching and shuffling modules, a module glibc never unloads,
  -t checking keys against each track's module (tests/modules/report.c);
- the configured path is vetted component by component, through every
  symlink (issue 9): refusals with their exact messages, and a refused
  module's constructor does not run.

Modules are copied into directories the test creates (mkdtemp, root-owned)
so that their modes and owners can be set at will: the loader vets the
file and every directory above it.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_modules.py
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import ServerFactory
from kit import project_version
from kit.pgserver import backend_pids, wait_backends
from kit.trackd import FileWatch, Trackd, change_re, changes, check, run_binary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MAINTENANCE = -254    # value_maintenance default
OK = 0                # value_ok default
NOBODY = 65534


# --------------------------------------------------------------------------
# helpers


def find_build_dir(binary):
    """The meson build directory of the pgtrackd under test.

    PGTRACKD_BUILD_DIR if set, else the nearest directory above the binary
    (BUILD/src/trackd/pgtrackd) that holds build.ninja and meson-private."""
    env = os.environ.get("PGTRACKD_BUILD_DIR")
    if env:
        return os.path.abspath(env)
    d = os.path.dirname(os.path.realpath(binary))
    while True:
        if os.path.isfile(os.path.join(d, "build.ninja")) and \
                os.path.isdir(os.path.join(d, "meson-private")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            raise AssertionError("no meson build directory above %s: set PGTRACKD_BUILD_DIR" % binary)
        d = parent


@pytest.fixture(scope="module")
def build_dir(pgtrackd_bin):
    return find_build_dir(pgtrackd_bin)


def built(build_dir, rel):
    path = os.path.join(build_dir, rel)
    if not os.path.isfile(path):
        pytest.fail("%s not built: ninja -C %s" % (path, build_dir), pytrace=False)
    return path


@pytest.fixture(scope="module")
def maintenance_so(build_dir):
    return built(build_dir, "examples/modules/maintenance.so")


class ModDir:
    """A root-owned 0755 directory (mkdtemp) to copy modules into."""

    def __init__(self):
        self.path = os.path.realpath(tempfile.mkdtemp(prefix="pgtrackd-it-mod-"))
        os.chmod(self.path, 0o755)
        # the loader checks every directory above; the test needs them safe
        d = os.path.dirname(self.path)
        while True:
            st = os.stat(d)
            assert st.st_uid == 0 and (not st.st_mode & 0o022 or st.st_mode & 0o1000), \
                "%s (an ancestor of the module directory) is not safe: mode %04o uid %d" % (
                    d, st.st_mode & 0o7777, st.st_uid)
            if d == "/":
                break
            d = os.path.dirname(d)

    def sub(self, name, mode=0o755):
        d = os.path.join(self.path, name)
        os.mkdir(d)
        os.chmod(d, mode)      # mkdir's mode goes through the umask
        return d

    def copy(self, src, name=None, mode=0o644, into=None):
        dst = os.path.join(into or self.path, name or os.path.basename(src))
        shutil.copyfile(src, dst)
        os.chmod(dst, mode)
        return dst

    def destroy(self):
        shutil.rmtree(self.path, ignore_errors=True)


@pytest.fixture
def moddir():
    m = ModDir()
    yield m
    m.destroy()


@pytest.fixture(scope="module")
def primary(pg_template):
    """One PostgreSQL primary shared by the tests of this file."""
    f = ServerFactory(pg_template)
    try:
        yield f.primary("primary")
    finally:
        f.destroy()


def drain_track(module, flag, **over):
    """Options of a track probed by the maintenance module."""
    opts = {"module": module, "flag": flag, "check_interval": "30"}
    opts.update(over)
    return opts


def touch(path):
    with open(path, "w"):
        pass


def mapped(pid, path):
    """Whether the shared object at path is mapped into process pid."""
    real = os.path.realpath(path)
    with open("/proc/%d/maps" % pid) as f:
        return any(line.rstrip("\n").endswith(" " + real) for line in f)


def wait_unmapped(pid, path, timeout=5.0):
    t0 = time.monotonic()
    while mapped(pid, path):
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s still mapped into pgtrackd after %.0fs" % (path, timeout))
        time.sleep(0.05)


def line_of(text, needle):
    """1-based number of the first line of text that starts with needle."""
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(needle):
            return n
    raise AssertionError("%r not in\n%s" % (needle, text))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def module_conf(workdir, module, name="m", extra=""):
    """A config whose only track (header on line 1) uses module."""
    return write(os.path.join(workdir, name + ".conf"),
                 "[track m]\n"
                 "file = %s\n"
                 "module = %s\n"
                 "flag = %s\n%s" % (os.path.join(workdir, "m"), module,
                                    os.path.join(workdir, "flag"), extra))


# --------------------------------------------------------------------------
# 1. the example module drives its track file


def test_maintenance_module_drives_track_file(primary, trackd, moddir, maintenance_so):
    so = moddir.copy(maintenance_so)
    t = trackd.new()
    flag = os.path.join(t.base, "maintenance")
    t.write_config({"p": primary.track_options(), "drain": drain_track(so, flag)})
    t.start()
    t.wait_for_value("p", 100, 10)
    t.wait_for_log(change_re("drain", "unknown", "ok", OK, "no maintenance flag"), 5)
    t.wait_for_value("drain", OK, 2)
    t.wait_for_log(r'pgtrackd: info: track "drain": probing with module %s, writing %s$'
                   % (re.escape(so), re.escape(t.path("drain"))), 2)
    t.wait_for_log(r'pgtrackd: info: track "drain": maintenance flag %s absent: in service$'
                   % re.escape(flag), 2)
    assert mapped(t.pid, so)
    watch = FileWatch(t, "p")
    try:
        for _ in range(2):      # the watch on the flag survives a round trip
            start = t.log_size()
            touch(flag)
            # check_interval is 30s: only inotify (ev_stat) sees it this soon
            assert t.wait_for_value("drain", MAINTENANCE, 5) < 3.0
            t.wait_for_log(change_re("drain", "ok", "maintenance", MAINTENANCE,
                                     "maintenance flag present"), 2, start)
            t.wait_for_log(r'pgtrackd: info: track "drain": maintenance flag %s present: '
                           r'draining this node$' % re.escape(flag), 2, start)
            time.sleep(0.5)
            assert t.read("drain") == "%d\n" % MAINTENANCE

            start = t.log_size()
            os.unlink(flag)
            assert t.wait_for_value("drain", OK, 5) < 3.0
            t.wait_for_log(change_re("drain", "maintenance", "ok", OK, "no maintenance flag"),
                           2, start)
            time.sleep(0.5)
            assert t.read("drain") == "%d\n" % OK
    finally:
        watch.stop()
        seen = watch.raw("p")
    assert seen == ["100\n"], "the PostgreSQL track moved while the module worked: %r" % seen
    assert [c[:2] for c in changes(t, "p")] == [("unknown", "primary")]
    assert [c[:3] for c in changes(t, "drain")] == [
        ("unknown", "ok", OK),
        ("ok", "maintenance", MAINTENANCE), ("maintenance", "ok", OK),
        ("ok", "maintenance", MAINTENANCE), ("maintenance", "ok", OK)]

    assert t.stop() == 0
    assert t.read("drain") == "-254\n" and t.read("p") == "-254\n"
    t.wait_for_log(change_re("drain", "ok", "stopped", -254, "pgtrackd stopping"), 2)


def test_maintenance_module_own_values_and_flag_at_start(trackd, moddir, maintenance_so):
    """value_ok and value_maintenance of the track; a flag present at start is seen at once."""
    so = moddir.copy(maintenance_so)
    t = trackd.new()
    flag = os.path.join(t.base, "maintenance")
    touch(flag)
    t.write_config({"drain": drain_track(so, flag, value_ok="7", value_maintenance="-100",
                                         check_interval="0.1")})
    t.start()
    t.wait_for_value("drain", -100, 5)
    t.wait_for_log(change_re("drain", "unknown", "maintenance", -100, "maintenance flag present"), 2)
    os.unlink(flag)
    t.wait_for_value("drain", 7, 5)
    t.wait_for_log(change_re("drain", "maintenance", "ok", 7, "no maintenance flag"), 2)
    assert t.stop() == 0


# --------------------------------------------------------------------------
# 2. refusals, with the exact messages


def _refusal_case(case, moddir, maintenance_so, build_dir):
    """(module path to configure, expected message after 'track "m": ')."""
    if case in ("mode_0664", "mode_0646", "mode_0666", "mode_0620"):
        mode = int(case[-4:], 8)
        so = moddir.copy(maintenance_so, mode=mode)
        return so, "module %s: refused: writable by group or others (mode %04o)" % (so, mode)
    if case in ("dir_0777", "dir_0775", "dir_0757"):
        mode = int(case[-4:], 8)
        d = moddir.sub("open", mode)
        so = moddir.copy(maintenance_so, into=d)
        return so, "module %s: refused: directory %s is writable by group or others (mode %04o)" % (
            so, d, mode)
    if case == "parent_dir_0777":
        # a safe directory inside an unsafe one: every directory above counts
        d = moddir.sub("open", 0o777)
        inner = os.path.join(d, "inner")
        os.mkdir(inner, 0o755)
        os.chmod(inner, 0o755)
        so = moddir.copy(maintenance_so, into=inner)
        return so, "module %s: refused: directory %s is writable by group or others (mode 0777)" % (
            so, d)
    if case == "owner_nobody":
        so = moddir.copy(maintenance_so)
        os.chown(so, NOBODY, NOBODY)
        return so, ("module %s: refused: owned by uid %d, not by root or by the user pgtrackd "
                    "runs as (uid 0)" % (so, NOBODY))
    if case == "no_entry":
        so = moddir.copy(built(build_dir, "tests/modules/test_no_entry.so"))
        return so, "module %s: no pgtrackd_module_entry symbol: not a pgtrackd module" % so
    if case == "missing":
        so = os.path.join(moddir.path, "no-such-module.so")
        return so, "module %s: No such file or directory" % so
    if case == "missing_dir":
        so = os.path.join(moddir.path, "no-such-dir", "maintenance.so")
        return so, "module %s: No such file or directory" % so
    if case == "not_a_file":
        so = moddir.sub("dir.so")
        return so, "module %s: not a regular file" % so
    if case == "other_abi":
        so = moddir.copy(built(build_dir, "tests/modules/test_other_abi.so"))
        return so, ("module %s: built for module ABI version 2, this pgtrackd speaks version 1"
                    % so)
    raise AssertionError(case)


REFUSALS = ["mode_0664", "mode_0646", "mode_0666", "mode_0620", "dir_0777", "dir_0775",
            "dir_0757", "parent_dir_0777", "owner_nobody", "no_entry", "missing",
            "missing_dir", "not_a_file", "other_abi"]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_module_exact_message(pgtrackd_bin, workdir, moddir, maintenance_so, build_dir, case):
    so, message = _refusal_case(case, moddir, maintenance_so, build_dir)
    conf = module_conf(workdir, so)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "configuration OK" not in r.stdout
    # one line, on the track's header; the module's keys are not reported on top
    assert errs == ['%s:1: track "m": %s' % (conf, message)], r.stderr


def test_refused_not_a_shared_object(pgtrackd_bin, workdir, moddir):
    so = write(os.path.join(moddir.path, "text.so"), "this is not an ELF file\n" * 10)
    os.chmod(so, 0o644)
    conf = module_conf(workdir, so)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, r.stderr
    assert len(errs) == 1, r.stderr
    prefix = '%s:1: track "m": module %s: cannot load: ' % (conf, so)
    assert errs[0].startswith(prefix), errs
    assert len(errs[0]) > len(prefix), "dlerror()'s reason is missing: %r" % errs[0]


def test_refused_module_at_startup_exits_1(pgtrackd_bin, workdir, moddir, maintenance_so):
    so = moddir.copy(maintenance_so, mode=0o664)
    conf = module_conf(workdir, so)
    r = run_binary(pgtrackd_bin, "-n", "-l", "-f", conf, timeout=10)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert ('%s:1: track "m": module %s: refused: writable by group or others (mode 0664)'
            % (conf, so)) in r.stderr.splitlines(), r.stderr
    assert not os.path.exists(os.path.join(workdir, "m")), "a refused track wrote its file"


def test_other_abi_refused_at_startup(pgtrackd_bin, workdir, moddir, build_dir):
    so = moddir.copy(built(build_dir, "tests/modules/test_other_abi.so"))
    conf = module_conf(workdir, so)
    r = run_binary(pgtrackd_bin, "-n", "-l", "-f", conf, timeout=10)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert ('%s:1: track "m": module %s: built for module ABI version 2, this pgtrackd speaks '
            'version 1' % (conf, so)) in r.stderr.splitlines(), r.stderr


def test_sticky_world_writable_directory_is_accepted(pgtrackd_bin, workdir, moddir, maintenance_so):
    """A 1777 directory (like /tmp): nobody else can replace what is in it."""
    d = moddir.sub("sticky", 0o1777)
    so = moddir.copy(maintenance_so, into=d)
    r, errs = check(pgtrackd_bin, module_conf(workdir, so))
    assert (r.returncode, r.stdout.strip(), errs) == (0, "configuration OK", []), r.stderr


def test_symlink_is_vetted_at_its_target(pgtrackd_bin, workdir, moddir, maintenance_so):
    """A safe symlink to an unsafe file is refused, naming the path configured
    and the file itself."""
    so = moddir.copy(maintenance_so, mode=0o666)
    link = os.path.join(moddir.path, "link.so")
    os.symlink(so, link)
    conf = module_conf(workdir, link)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, r.stderr
    assert errs == ['%s:1: track "m": module %s: refused: file %s is writable by group or others '
                    '(mode 0666)' % (conf, link, so)], r.stderr


def test_directory_owned_by_another_user_is_refused(pgtrackd_bin, workdir, moddir, maintenance_so):
    """module.h: pgtrackd refuses a module file "or any directory above it,
    that is writable by group or others or not owned by root or by the user
    pgtrackd runs as". A directory of another user lets that user replace
    the module (rename a file of their own over it) whatever its mode."""
    d = moddir.sub("theirs", 0o755)
    so = moddir.copy(maintenance_so, into=d)
    os.chown(d, NOBODY, NOBODY)
    conf = module_conf(workdir, so)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, "a module in a directory owned by uid %d was accepted:\n%s%s" % (
        NOBODY, r.stdout, r.stderr)
    assert len(errs) == 1, r.stderr
    assert errs[0].startswith('%s:1: track "m": module %s: refused: directory %s ' % (conf, so, d)), errs
    assert "uid %d" % NOBODY in errs[0], errs


# --------------------------------------------------------------------------
# 3. the module's own keys, validated by the module at -t time


MODULE_KEY_ERRORS = {
    # extra lines after line 4 (flag = ...), expected (line, message after PATH:LINE: )
    "unknown_key": ("flagg = /tmp/x\n", [(5, 'unknown key "flagg" in section [track m]')]),
    "bad_interval": ("check_interval = 0.01\n",
                     [(5, 'invalid value "0.01" for check_interval: expected seconds between '
                          '0.1 and 3600')]),
    "bad_interval_word": ("check_interval = soon\n",
                          [(5, 'invalid value "soon" for check_interval: expected seconds '
                               'between 0.1 and 3600')]),
    # NaN compares false with both bounds: it must not slip through (libev
    # aborts on a NaN ev_stat interval when the track starts)
    "nan_interval": ("check_interval = nan\n",
                     [(5, 'invalid value "nan" for check_interval: expected seconds between '
                          '0.1 and 3600')]),
    "duplicate_module_key": ("check_interval = 1\ncheck_interval = 2\n",
                             [(6, 'duplicate key "check_interval"')]),
    "two_errors": ("colour = blue\ncheck_interval = 9999\n",
                   [(5, 'unknown key "colour" in section [track m]'),
                    (6, 'invalid value "9999" for check_interval: expected seconds between '
                        '0.1 and 3600')]),
}


@pytest.mark.parametrize("case", sorted(MODULE_KEY_ERRORS))
def test_module_key_errors(pgtrackd_bin, workdir, moddir, maintenance_so, case):
    extra, expected = MODULE_KEY_ERRORS[case]
    so = moddir.copy(maintenance_so)
    conf = module_conf(workdir, so, extra=extra)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert errs == ["%s:%d: %s" % (conf, n, m) for n, m in expected], r.stderr


def test_module_relative_flag_and_missing_flag(pgtrackd_bin, workdir, moddir, maintenance_so):
    so = moddir.copy(maintenance_so)
    conf = write(os.path.join(workdir, "flags.conf"),
                 "[track a]\n"                              # 1
                 "file = %s/a\n"                            # 2
                 "module = %s\n"                            # 3
                 "flag = relative/flag\n"                   # 4  not absolute
                 "\n"                                       # 5
                 "[track b]\n"                              # 6  no flag at all
                 "file = %s/b\n"                            # 7
                 "module = %s\n"                            # 8
                 "check_interval = 2\n"                     # 9
                 "\n"                                       # 10
                 "[track c]\n"                              # 11 a PostgreSQL track:
                 "file = %s/c\n"                            # 12 no module keys
                 "flag = /tmp/flag\n"                       # 13
                 % (workdir, so, workdir, so, workdir))
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, r.stderr
    assert errs == [
        '%s:4: invalid value "relative/flag" for flag: must be an absolute path' % conf,
        '%s:6: track "b": module maintenance: missing required key "flag"' % conf,
        '%s:13: unknown key "flag" in section [track c]' % conf,
    ], r.stderr


def test_example_drain_track_passes_check(pgtrackd_bin, workdir, moddir, maintenance_so):
    """The commented [track drain] of examples/pgtrackd.conf, uncommented
    with the module path pointed at the build's module, is valid."""
    so = moddir.copy(maintenance_so)
    with open(os.path.join(REPO, "examples", "pgtrackd.conf")) as f:
        lines = f.read().splitlines()
    start = lines.index(";[track drain]")
    out = lines[:start]
    for line in lines[start:]:
        if not re.match(r";(\[track drain\]$|\w+ = )", line):
            break
        line = line[1:]
        if line.startswith("module ="):
            line = "module = " + so
        out.append(line)
    assert "[track drain]" in out and any(l.startswith("flag =") for l in out), out[start:]
    conf = write(os.path.join(workdir, "example.conf"), "\n".join(out) + "\n")
    r, errs = check(pgtrackd_bin, conf)
    assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr


def test_module_config_passes_check(pgtrackd_bin, workdir, moddir, maintenance_so):
    so = moddir.copy(maintenance_so)
    conf = module_conf(workdir, so, extra="check_interval = 0.1\nvalue_ok = 5\n"
                                          "value_maintenance = -150\n")
    r, errs = check(pgtrackd_bin, conf)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")
    conf = module_conf(workdir, so, name="max", extra="check_interval = 3600\n")
    r, errs = check(pgtrackd_bin, conf)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")


# --------------------------------------------------------------------------
# 4. reloads


def test_reload_module_settings_and_removal(primary, trackd, moddir, maintenance_so):
    so = moddir.copy(maintenance_so)
    t = trackd.new()
    flag = os.path.join(t.base, "maintenance")
    p_opts = primary.track_options(application_name="pgtrackd-it-mod", accept_interval="0")
    drain = drain_track(so, flag, value_stopped="-200")
    t.write_config({"p": p_opts, "drain": drain})
    t.start()
    t.wait_for_value("p", 100, 10)
    t.wait_for_log(change_re("drain", "unknown", "ok", OK), 5)
    session = wait_backends(primary, "pgtrackd-it-mod")
    assert len(session) == 1, session
    touch(flag)
    t.wait_for_value("drain", MAINTENANCE, 5)
    watch = FileWatch(t, "p")

    # a changed module setting: that track only is re-initialised, its state kept
    start = t.log_size()
    t.write_config({"p": p_opts, "drain": dict(drain, check_interval="10")})
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(r"configuration reloaded", 10, start)
    t.wait_for_log(r'track "drain": settings changed, reconnecting \(state maintenance kept\)',
                   2, start)
    since = t.log()[start:]
    assert 'track "p": settings changed' not in since, since
    assert not re.search(r'track "drain": \w+ -> ', since), since
    assert "configuration reload failed" not in since
    time.sleep(0.5)
    assert t.read("drain") == "%d\n" % MAINTENANCE
    # the new probe watches the flag
    os.unlink(flag)
    assert t.wait_for_value("drain", OK, 5) < 3.0
    touch(flag)
    assert t.wait_for_value("drain", MAINTENANCE, 5) < 3.0
    assert backend_pids(primary, "pgtrackd-it-mod") == session, "the PostgreSQL track reconnected"
    assert mapped(t.pid, so)

    # bad module keys: the reload is refused, the running config keeps working
    for bad, message in (
            ({"flagg": flag}, 'unknown key "flagg" in section [track drain]'),
            ({"flag": "relative/flag"}, 'invalid value "relative/flag" for flag: must be an '
                                        'absolute path')):
        start = t.log_size()
        opts = dict(drain, check_interval="10")
        opts.update(bad)
        key = list(bad)[0]
        text = t.write_config({"p": p_opts, "drain": opts})
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"configuration reload failed, keeping the running configuration", 10, start)
        n = line_of(text, key + " = ")
        t.wait_for_log(r"pgtrackd: error: %s$" % re.escape("%s:%d: %s" % (t.conf, n, message)),
                       2, start)
        assert "settings changed" not in t.log()[start:]
        os.unlink(flag)
        assert t.wait_for_value("drain", OK, 5) < 3.0
        touch(flag)
        assert t.wait_for_value("drain", MAINTENANCE, 5) < 3.0

    # the module track removed: its file gets its stopped value, the module is unloaded
    os.unlink(flag)
    t.wait_for_value("drain", OK, 5)
    start = t.log_size()
    t.write_config({"p": p_opts})
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(r"configuration reloaded: 1 track\(s\)", 10, start)
    t.wait_for_value("drain", -200, 2)
    t.wait_for_log(change_re("drain", "ok", "stopped", -200, "removed from the configuration"),
                   2, start)
    wait_unmapped(t.pid, so)
    # the flag means nothing any more
    touch(flag)
    time.sleep(1.0)
    assert t.read("drain") == "-200\n"

    watch.stop()
    seen = watch.raw("p")
    assert seen == ["100\n"], "the PostgreSQL track moved during the reloads: %r" % seen
    assert backend_pids(primary, "pgtrackd-it-mod") == session, "the PostgreSQL track reconnected"
    assert [c[:2] for c in changes(t, "p")] == [("unknown", "primary")]

    # and back: a module track added by a reload starts from unknown
    start = t.log_size()
    t.write_config({"p": p_opts, "drain": drain})
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(change_re("drain", "unknown", "maintenance", MAINTENANCE), 10, start)
    t.wait_for_value("drain", MAINTENANCE, 2)
    assert mapped(t.pid, so)
    assert t.stop() == 0
    assert t.read("drain") == "-200\n"


def test_reload_with_nan_check_interval_is_refused(trackd, moddir, maintenance_so):
    """A value the module's check_key lets through reaches its init: NaN as
    check_interval must be refused by the reload, not kill pgtrackd."""
    so = moddir.copy(maintenance_so)
    t = trackd.new()
    flag = os.path.join(t.base, "maintenance")
    t.write_config({"drain": drain_track(so, flag)})
    t.start()
    t.wait_for_log(change_re("drain", "unknown", "ok", OK), 5)
    start = t.log_size()
    t.write_config({"drain": drain_track(so, flag, check_interval="nan")})
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(r"configuration reload failed, keeping the running configuration", 5, start)
    assert t.alive()
    touch(flag)
    assert t.wait_for_value("drain", MAINTENANCE, 5) < 3.0
    assert t.stop() == 0


def test_reload_replacing_postgres_probe_by_module(primary, trackd, moddir, maintenance_so):
    """A track that switches probes (postgres -> module -> postgres) on reload."""
    so = moddir.copy(maintenance_so)
    t = trackd.new()
    flag = os.path.join(t.base, "maintenance")
    p_opts = primary.track_options(application_name="pgtrackd-it-switch", accept_interval="0")
    t.write_config({"x": p_opts})
    t.start()
    t.wait_for_value("x", 100, 10)

    touch(flag)
    start = t.log_size()
    t.write_config({"x": drain_track(so, flag)})
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(change_re("x", "primary", "maintenance", MAINTENANCE), 10, start)
    t.wait_for_value("x", MAINTENANCE, 2)
    t0 = time.monotonic()
    while backend_pids(primary, "pgtrackd-it-switch"):
        assert time.monotonic() - t0 < 5, "the PostgreSQL probe's session outlived it"
        time.sleep(0.05)
    assert mapped(t.pid, so)

    start = t.log_size()
    t.write_config({"x": p_opts})
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(change_re("x", "maintenance", "primary", 100), 10, start)
    t.wait_for_value("x", 100, 2)
    wait_unmapped(t.pid, so)
    wait_backends(primary, "pgtrackd-it-switch")
    assert t.stop() == 0


# --------------------------------------------------------------------------
# 5. valgrind


class ValgrindTrackd(Trackd):
    """pgtrackd under valgrind, its report in base/valgrind.log."""

    def start(self, *extra):
        self.vglog = os.path.join(self.base, "valgrind.log")
        self.wrapper = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                        "--error-exitcode=99", "--log-file=" + self.vglog]
        return super().start(*extra)


def test_load_reload_unload_under_valgrind(primary, pgtrackd_bin, moddir, maintenance_so):
    if not shutil.which("valgrind"):
        pytest.fail("valgrind is not installed (tests/install-deps installs it)", pytrace=False)
    so = moddir.copy(maintenance_so)
    base = tempfile.mkdtemp(prefix="pgtrackd-it-trackd-")
    t = ValgrindTrackd(pgtrackd_bin, base)
    try:
        flag = os.path.join(base, "maintenance")
        # valgrind is slow: no accept probe, long deadlines
        p_opts = primary.track_options(accept_interval="0", timeout="10s", connect_timeout="10s",
                                       interval="500ms")
        drain = drain_track(so, flag, check_interval="1", value_stopped="-200")
        t.write_config({"p": p_opts, "drain": drain})
        t.start()
        t.wait_for_value("p", 100, 60)
        t.wait_for_log(change_re("drain", "unknown", "ok", OK), 30)

        touch(flag)
        t.wait_for_value("drain", MAINTENANCE, 30)
        os.unlink(flag)
        t.wait_for_value("drain", OK, 30)

        start = t.log_size()
        t.write_config({"p": p_opts, "drain": dict(drain, check_interval="2")})
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r'track "drain": settings changed', 30, start)
        t.wait_for_log(r"configuration reloaded", 30, start)
        touch(flag)
        t.wait_for_value("drain", MAINTENANCE, 30)

        # a refused reload loads and unloads the module once more
        start = t.log_size()
        t.write_config({"p": p_opts, "drain": dict(drain, flagg=flag)})
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"configuration reload failed", 30, start)

        start = t.log_size()
        t.write_config({"p": p_opts})
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"configuration reloaded: 1 track\(s\)", 30, start)
        t.wait_for_value("drain", -200, 10)

        rc = t.stop(signal.SIGTERM, timeout=60)
        with open(t.vglog, errors="replace") as f:
            report = f.read()
        assert rc == 0, "pgtrackd under valgrind exited with %r:\n%s" % (rc, report[-6000:])
        assert t.read("p") == "-254\n"
        leaks = [l for l in report.splitlines()
                 if re.search(r"definitely lost: [1-9]|are definitely lost in loss record", l)]
        assert not leaks, report[-6000:]
        assert "ERROR SUMMARY: 0 errors" in report, report[-6000:]
        assert [c[:2] for c in changes(t, "p")] == [("unknown", "primary"), ("primary", "stopped")]
    finally:
        t.close()
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------
# 6. out-of-tree build against the installed header and pkg-config file


def test_out_of_tree_build_of_example_module(pgtrackd_bin, build_dir, trackd, moddir):
    for tool in ("meson", "pkg-config", "cc"):
        if not shutil.which(tool):
            pytest.fail("%s is not installed (tests/install-deps)" % tool, pytrace=False)
    dest = tempfile.mkdtemp(prefix="pgtrackd-it-destdir-")
    src = tempfile.mkdtemp(prefix="pgtrackd-it-oot-")
    try:
        env = dict(os.environ, DESTDIR=dest)
        r = subprocess.run(["meson", "install", "-C", build_dir, "--quiet"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        assert r.returncode == 0, r.stdout

        pcs = glob.glob(os.path.join(dest, "**", "pgtrackd-module.pc"), recursive=True)
        assert len(pcs) == 1, pcs
        pcdir = os.path.dirname(pcs[0])
        with open(pcs[0]) as f:
            prefix = re.search(r"^prefix=(.*)$", f.read(), re.M).group(1)
        assert prefix.startswith("/"), prefix

        # pkg-config, pointed at the staged tree (nothing of the source tree)
        penv = {k: v for k, v in os.environ.items()
                if not k.startswith("PKG_CONFIG") and k not in ("CPATH", "C_INCLUDE_PATH")}
        penv["PKG_CONFIG_PATH"] = penv["PKG_CONFIG_LIBDIR"] = pcdir

        def pkgconfig(*args):
            r = subprocess.run(["pkg-config", "--define-variable=prefix=" + dest + prefix]
                               + list(args) + ["pgtrackd-module"], env=penv,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert r.returncode == 0, r.stderr
            return r.stdout.strip()

        assert pkgconfig("--modversion") == project_version()
        assert pkgconfig("--variable=abi_version") == "1"
        cflags = pkgconfig("--cflags")
        assert cflags == "-I" + dest + prefix + "/include", cflags

        header = os.path.join(dest + prefix, "include", "pgtrackd", "module.h")
        with open(header) as f, open(os.path.join(REPO, "include", "pgtrackd", "module.h")) as g:
            assert f.read() == g.read(), "the installed header differs from include/pgtrackd/module.h"
        # the example module is installed into the moduledir of the .pc
        moduledir = pkgconfig("--variable=moduledir")
        assert os.path.isfile(os.path.join(moduledir, "maintenance.so")), moduledir

        # the build line of module.h's comment, on a copy of the example
        shutil.copy(os.path.join(REPO, "examples", "modules", "maintenance.c"), src)
        cmd = "cc -shared -fPIC -fvisibility=hidden $(pkg-config --define-variable=prefix=%s " \
              "--cflags pgtrackd-module) -o m.so maintenance.c -lev" % (dest + prefix)
        r = subprocess.run(["sh", "-c", cmd], cwd=src, env=penv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        assert r.returncode == 0, "%s\n%s" % (cmd, r.stdout)
        assert r.stdout == "", "warnings from %s:\n%s" % (cmd, r.stdout)
        so = os.path.join(src, "m.so")

        # one exported symbol: the entry point
        r = subprocess.run(["nm", "-D", "--defined-only", so], stdout=subprocess.PIPE, text=True)
        assert [l.split()[-1] for l in r.stdout.splitlines()] == ["pgtrackd_module_entry"], r.stdout

        # loaded by pgtrackd, it drives a track file
        so = moddir.copy(so, "m.so")
        t = trackd.new()
        flag = os.path.join(t.base, "maintenance")
        t.write_config({"drain": drain_track(so, flag)})
        r, errs = check(pgtrackd_bin, t.conf)
        assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr
        t.start()
        t.wait_for_log(change_re("drain", "unknown", "ok", OK), 5)
        touch(flag)
        assert t.wait_for_value("drain", MAINTENANCE, 5) < 3.0
        os.unlink(flag)
        assert t.wait_for_value("drain", OK, 5) < 3.0
        assert t.stop() == 0
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(src, ignore_errors=True)


# --------------------------------------------------------------------------
# 7. each module runs its own code (issue 9, defect 1)
#
# test_report_primary.so and test_report_standby.so (tests/modules/report.c)
# are two files with different code: one reports primary (value 54, the
# default) and knows the key primary_reason, the other standby (value 53) and knows
# standby_reason.  The loader once dlopened /proc/self/fd/N and closed N at
# once: glibc matches a loaded object by name, so the next module opened
# on the same descriptor number got the first one's code.

PRIMARY, STANDBY = 54, 53      # value_primary, value_standby defaults (a module has no rank)


@pytest.fixture(scope="module")
def report_so(build_dir):
    return {s: built(build_dir, "tests/modules/test_report_%s.so" % s)
            for s in ("primary", "standby", "resident")}


def report_track(so, **over):
    opts = {"module": so}
    opts.update(over)
    return opts


def test_two_tracks_with_two_modules_run_their_own(trackd, moddir, report_so):
    a = moddir.copy(report_so["primary"], "a.so")
    b = moddir.copy(report_so["standby"], "b.so")
    t = trackd.new()
    t.write_config({"a": report_track(a, primary_reason="module a"),
                    "b": report_track(b, standby_reason="module b")})
    r, errs = check(t.binary, t.conf)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")
    t.start()
    t.wait_for_log(change_re("a", "unknown", "primary", PRIMARY, "module a"), 5)
    t.wait_for_log(change_re("b", "unknown", "standby", STANDBY, "module b"), 5)
    assert t.read("a") == "%d\n" % PRIMARY and t.read("b") == "%d\n" % STANDBY
    assert mapped(t.pid, a) and mapped(t.pid, b)
    assert t.stop() == 0


def test_same_module_file_for_two_tracks(trackd, moddir, report_so):
    """One file for two tracks (and for the -t check of the configuration
    before them) is loaded once and shared; a copy of it is another file."""
    a = moddir.copy(report_so["primary"], "a.so")
    copy = moddir.copy(report_so["primary"], "copy.so")
    b = moddir.copy(report_so["standby"], "b.so")
    t = trackd.new()
    t.write_config({"a1": report_track(a), "a2": report_track(a), "c": report_track(copy),
                    "b": report_track(b)})
    t.start()
    for name in ("a1", "a2", "c"):
        t.wait_for_log(change_re(name, "unknown", "primary", PRIMARY, "test module primary"), 5)
    t.wait_for_log(change_re("b", "unknown", "standby", STANDBY, "test module standby"), 5)
    assert mapped(t.pid, a) and mapped(t.pid, copy) and mapped(t.pid, b)
    assert t.stop() == 0


def test_reload_switching_a_tracks_module_runs_the_new_one(trackd, moddir, report_so):
    a = moddir.copy(report_so["primary"], "a.so")
    b = moddir.copy(report_so["standby"], "b.so")
    t = trackd.new()
    t.write_config({"x": report_track(a)})
    t.start()
    t.wait_for_log(change_re("x", "unknown", "primary", PRIMARY, "test module primary"), 5)

    for old, new, so, gone, value in (("primary", "standby", b, a, STANDBY),
                                      ("standby", "primary", a, b, PRIMARY),
                                      ("primary", "standby", b, a, STANDBY)):
        start = t.log_size()
        t.write_config({"x": report_track(so)})
        t.send_signal(signal.SIGHUP)
        t.wait_for_log(r"configuration reloaded", 10, start)
        t.wait_for_log(change_re("x", old, new, value, "test module " + new), 5, start)
        t.wait_for_value("x", value, 2)
        assert mapped(t.pid, so)
        wait_unmapped(t.pid, gone)
    assert t.stop() == 0


def test_reloads_shuffling_modules_between_tracks(trackd, moddir, report_so):
    """Tracks that share, swap, add and drop modules over several reloads:
    after each, every track runs the code of the file it names, and a
    file no track names any more is unloaded."""
    files = {"p1": moddir.copy(report_so["primary"], "p1.so"),
             "p2": moddir.copy(report_so["primary"], "p2.so"),
             "s1": moddir.copy(report_so["standby"], "s1.so"),
             "s2": moddir.copy(report_so["standby"], "s2.so")}
    state = {"p1": "primary", "p2": "primary", "s1": "standby", "s2": "standby"}
    steps = [
        {"a": "p1", "b": "s1"},
        {"a": "s1", "b": "p1"},
        {"a": "s2", "b": "s2", "c": "p2"},
        {"a": "p1"},
        {"a": "p2", "b": "s1", "c": "s2", "d": "p1"},
        {"a": "s1", "d": "s2"},
        {"a": "p2", "b": "p1", "d": "s1"},
    ]
    t = trackd.new()
    previous = {}
    for n, step in enumerate(steps):
        start = t.log_size()
        t.write_config({name: report_track(files[f], **{state[f] + "_reason": "%s step %d" % (f, n)})
                        for name, f in step.items()})
        r, errs = check(t.binary, t.conf)
        assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", ""), n
        if n == 0:
            t.start()
        else:
            t.send_signal(signal.SIGHUP)
            t.wait_for_log(r"configuration reloaded", 10, start)
        for name, f in step.items():
            want = state[f]
            # logged by each start of the module, whether the state changes or not
            t.wait_for_log(r'pgtrackd: info: track "%s": module %s started \(%s step %d\)$'
                           % (name, want, f, n), 5, start)
            t.wait_for_value(name, PRIMARY if want == "primary" else STANDBY, 2)
        for f, so in files.items():
            if f in step.values():
                assert mapped(t.pid, so), (n, f)
            else:
                wait_unmapped(t.pid, so)
        previous = step
    assert previous and t.stop() == 0


def test_module_glibc_never_unloads(trackd, moddir, report_so):
    """A module linked -z nodelete stays loaded after its last dlclose,
    known to glibc by its /proc/self/fd name: that name must keep meaning
    that file, and no other module may get it or be refused for it."""
    files = {"resident": moddir.copy(report_so["resident"], "r.so"),
             "primary": moddir.copy(report_so["primary"], "p.so"),
             "standby": moddir.copy(report_so["standby"], "s.so")}
    value = {"resident": PRIMARY, "primary": PRIMARY, "standby": STANDBY}
    t = trackd.new()
    for n, f in enumerate(["resident", "standby", "primary", "resident", "standby",
                           "resident", "resident", "primary"]):
        start = t.log_size()
        reason = "%s step %d" % (f, n)
        t.write_config({"x": report_track(files[f], **{f + "_reason": reason})})
        if n == 0:
            t.start()
        else:
            t.send_signal(signal.SIGHUP)
            t.wait_for_log(r"configuration reloaded", 10, start)
        t.wait_for_log(r'pgtrackd: info: track "x": module %s started \(%s\)$'
                       % (f, re.escape(reason)), 5, start)
        t.wait_for_value("x", value[f], 2)
        assert "error" not in t.log()[start:], t.log()[start:]
        if n == 1:
            assert mapped(t.pid, files["resident"]), "glibc unloaded the nodelete module"
    assert t.stop() == 0


def test_check_validates_keys_against_each_tracks_module(pgtrackd_bin, workdir, moddir, report_so):
    a = moddir.copy(report_so["primary"], "a.so")
    b = moddir.copy(report_so["standby"], "b.so")
    good = write(os.path.join(workdir, "good.conf"),
                 "[track a]\nfile = %s/a\nmodule = %s\nprimary_reason = here\n\n"
                 "[track b]\nfile = %s/b\nmodule = %s\nstandby_reason = there\n"
                 % (workdir, a, workdir, b))
    r, errs = check(pgtrackd_bin, good)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")
    # each key at the other module: both refused, on their own lines
    swapped = write(os.path.join(workdir, "swapped.conf"),
                    "[track a]\nfile = %s/a\nmodule = %s\nstandby_reason = here\n\n"
                    "[track b]\nfile = %s/b\nmodule = %s\nprimary_reason = there\n"
                    % (workdir, a, workdir, b))
    r, errs = check(pgtrackd_bin, swapped)
    assert r.returncode == 1, r.stderr
    assert errs == ['%s:4: unknown key "standby_reason" in section [track a]' % swapped,
                    '%s:9: unknown key "primary_reason" in section [track b]' % swapped], r.stderr


# --------------------------------------------------------------------------
# 8. the configured path is vetted, every component of it (issue 9, defect 6)
#
# The loader once vetted realpath() of the module: a symlink anybody owns,
# in a directory anybody owns, pointing at a root-owned module, passed,
# and the module's constructors ran.  Now every directory and symlink on
# the way from / to the file, through every symlink's target, counts.

OWNER_MSG = "is owned by uid %d, not by root or by the user pgtrackd runs as (uid 0)" % NOBODY


def report_conf(workdir, module, name="m"):
    """A config whose only track (header on line 1) uses a report module."""
    return write(os.path.join(workdir, name + ".conf"),
                 "[track m]\nfile = %s\nmodule = %s\n" % (os.path.join(workdir, "m"), module))


def marker_lines(marker):
    try:
        with open(marker) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


@pytest.fixture
def marker(workdir, monkeypatch):
    """A file the report modules' constructor appends its name to (tests/modules/report.c)."""
    path = os.path.join(workdir, "constructor-ran")
    monkeypatch.setenv("TRACKD_TEST_MODULE_MARKER", path)
    return path


def test_nobodys_symlink_in_nobodys_directory_is_refused_before_loading(
        pgtrackd_bin, workdir, moddir, report_so, marker):
    target = moddir.copy(report_so["primary"], "target.so")
    # the target alone is fine, and the marker shows its constructor running
    r, errs = check(pgtrackd_bin, report_conf(workdir, target, "target"))
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")
    assert marker_lines(marker) == ["primary"]
    os.unlink(marker)

    theirs = moddir.sub("theirs")
    link = os.path.join(theirs, "link.so")
    os.symlink(target, link)
    os.lchown(link, NOBODY, NOBODY)
    os.chown(theirs, NOBODY, NOBODY)
    conf = report_conf(workdir, link)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, "accepted:\n%s%s" % (r.stdout, r.stderr)
    assert errs == ['%s:1: track "m": module %s: refused: directory %s %s'
                    % (conf, link, theirs, OWNER_MSG)], r.stderr
    assert marker_lines(marker) == [], "the refused module's constructor ran"

    # a starting pgtrackd refuses it the same way
    r = run_binary(pgtrackd_bin, "-n", "-l", "-f", conf, timeout=10)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert ('%s:1: track "m": module %s: refused: directory %s %s' % (conf, link, theirs, OWNER_MSG)
            in r.stderr.splitlines()), r.stderr
    assert marker_lines(marker) == [], "the refused module's constructor ran"


def _path_case(case, moddir, target):
    """(module path to configure, expected message after 'track "m": ')."""
    if case == "symlink_owner_nobody":
        link = os.path.join(moddir.path, "link.so")
        os.symlink(target, link)
        os.lchown(link, NOBODY, NOBODY)
        return link, "module %s: refused: symlink %s %s" % (link, link, OWNER_MSG)
    if case == "symlink_in_writable_directory":
        d = moddir.sub("open", 0o777)
        link = os.path.join(d, "link.so")
        os.symlink(target, link)
        return link, ("module %s: refused: directory %s is writable by group or others (mode 0777)"
                      % (link, d))
    if case == "symlink_to_directory_of_nobody":
        # a root-owned link to a directory of another user, the module in there
        d = moddir.sub("theirs")
        so = os.path.join(d, "x.so")
        shutil.copyfile(target, so)
        os.chown(d, NOBODY, NOBODY)
        dl = os.path.join(moddir.path, "dirlink")
        os.symlink(d, dl)
        return os.path.join(dl, "x.so"), ("module %s: refused: directory %s %s"
                                          % (os.path.join(dl, "x.so"), d, OWNER_MSG))
    if case == "second_link_of_a_chain_owner_nobody":
        # link1 (root) -> sub/link2 (relative, nobody's) -> the target
        sub = moddir.sub("sub")
        link2 = os.path.join(sub, "link2.so")
        os.symlink(target, link2)
        os.lchown(link2, NOBODY, NOBODY)
        link1 = os.path.join(moddir.path, "link1.so")
        os.symlink("sub/link2.so", link1)
        return link1, "module %s: refused: symlink %s %s" % (link1, link2, OWNER_MSG)
    if case == "directory_of_the_link_writable":
        # the target's directories are safe, the link's directory is not
        d = moddir.sub("open", 0o775)
        link = os.path.join(d, "link.so")
        os.symlink(os.path.relpath(target, d), link)
        return link, ("module %s: refused: directory %s is writable by group or others (mode 0775)"
                      % (link, d))
    if case == "target_writable":
        so = moddir.copy(target, "writable.so", mode=0o666)
        link = os.path.join(moddir.path, "link.so")
        os.symlink(so, link)
        return link, ("module %s: refused: file %s is writable by group or others (mode 0666)"
                      % (link, so))
    if case == "target_owner_nobody":
        so = moddir.copy(target, "theirs.so")
        os.chown(so, NOBODY, NOBODY)
        link = os.path.join(moddir.path, "link.so")
        os.symlink("theirs.so", link)
        return link, "module %s: refused: file %s %s" % (link, so, OWNER_MSG)
    if case == "loop":
        a = os.path.join(moddir.path, "a.so")
        b = os.path.join(moddir.path, "b.so")
        os.symlink(b, a)
        os.symlink("a.so", b)
        return a, "module %s: Too many levels of symbolic links" % a
    if case == "dangling":
        link = os.path.join(moddir.path, "link.so")
        os.symlink("gone.so", link)
        return link, "module %s: No such file or directory" % link
    if case == "through_a_file":
        return os.path.join(target, "x.so"), "module %s: Not a directory" % os.path.join(target, "x.so")
    if case == "relative":
        return "relative/x.so", None
    raise AssertionError(case)


PATH_REFUSALS = ["symlink_owner_nobody", "symlink_in_writable_directory",
                 "symlink_to_directory_of_nobody", "second_link_of_a_chain_owner_nobody",
                 "directory_of_the_link_writable", "target_writable", "target_owner_nobody",
                 "loop", "dangling", "through_a_file"]


@pytest.mark.parametrize("case", PATH_REFUSALS)
def test_refused_module_path(pgtrackd_bin, workdir, moddir, report_so, marker, case):
    target = moddir.copy(report_so["primary"], "target.so")
    path, message = _path_case(case, moddir, target)
    conf = report_conf(workdir, path)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, "accepted:\n%s%s" % (r.stdout, r.stderr)
    assert errs == ['%s:1: track "m": %s' % (conf, message)], r.stderr
    assert marker_lines(marker) == [], "the refused module's constructor ran"


def test_safe_symlinks_are_followed(trackd, moddir, report_so, marker):
    """Root's symlinks in safe directories, absolute and relative, with ..
    and . and doubled slashes, lead to the module, which runs."""
    lib = moddir.sub("lib")
    so = moddir.copy(report_so["standby"], "x.so", into=lib)
    links = moddir.sub("links")
    os.symlink("../lib/./x.so", os.path.join(links, "rel.so"))
    os.symlink(os.path.join(links, "rel.so"), os.path.join(moddir.path, "abs.so"))
    os.symlink("links", os.path.join(moddir.path, "dirlink"))
    path = moddir.path + "//dirlink/../abs.so"
    t = trackd.new()
    t.write_config({"m": report_track(path)})
    r, errs = check(t.binary, t.conf)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")
    t.start()
    t.wait_for_log(change_re("m", "unknown", "standby", STANDBY, "test module standby"), 5)
    assert mapped(t.pid, so)
    assert marker_lines(marker) == ["standby", "standby"]  # -t, then the daemon
    assert t.stop() == 0


def test_file_glibc_already_has_is_refused(pgtrackd_bin, workdir):
    """A file glibc loaded for pgtrackd itself (libev) is not loaded again as
    a module: the loader finds glibc already holding it and refuses, loudly."""
    libev = sorted(glob.glob("/usr/lib/*/libev.so.4"))
    assert libev, "no libev.so.4 under /usr/lib/*/"
    real = os.path.realpath(libev[0])
    conf = report_conf(workdir, real)
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, r.stderr
    assert len(errs) == 1, r.stderr
    assert re.fullmatch(r'%s:1: track "m": module %s: refused: the dynamic loader already has an '
                        r'object named /proc/self/fd/\d+ or loaded from the same file \(\S+\), '
                        r'not loaded by pgtrackd' % (re.escape(conf), re.escape(real)),
                        errs[0]), errs
