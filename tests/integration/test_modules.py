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

import os
import re
import time

import pytest

from kit import REPO
from kit.trackd import FileWatch, change_re, changes, check, run_binary
from modules_rig import MAINTENANCE, OK, NOBODY, built, drain_track, touch, mapped, write, module_conf
from modules_rig import build_dir, maintenance_so, moddir, primary  # noqa: F401  (fixtures)


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
        return so, ("module %s: built for module ABI version 4, this pgtrackd speaks versions 2 "
                    "to 3" % so)
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
    assert ('%s:1: track "m": module %s: built for module ABI version 4, this pgtrackd speaks '
            'versions 2 to 3' % (conf, so)) in r.stderr.splitlines(), r.stderr


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
