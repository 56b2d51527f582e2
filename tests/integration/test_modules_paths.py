"""Each module runs its own code (issue 9): two modules, one file for two
tracks, switches and shuffles on reload, a module glibc never unloads, -t
per module; the configured path vetted component by component, through
every symlink."""

import glob
import os
import re
import shutil
import signal

import pytest

from kit.trackd import change_re, check, run_binary
from modules_rig import (NOBODY, mapped, wait_unmapped, write, report_track, OWNER_MSG, report_conf,
                         marker_lines)
from modules_rig import build_dir, marker, moddir, report_so  # noqa: F401  (fixtures)


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


def test_module_built_for_abi_2_still_runs(trackd, moddir, report_so):
    """Module ABI 3 only added members at the ends of the structs: a module
    built for ABI 2 (tests/modules/report.c with REPORT_ABI=2) passes -t,
    loads and reports, next to one built for ABI 3."""
    old = moddir.copy(report_so["abi2"], "old.so")
    new = moddir.copy(report_so["standby"], "new.so")
    t = trackd.new()
    t.write_config({"old": report_track(old, abi2_reason="built for 2"),
                    "new": report_track(new, standby_reason="built for 3")})
    r, errs = check(t.binary, t.conf)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")
    t.start()
    t.wait_for_log(change_re("old", "unknown", "primary", PRIMARY, "built for 2"), 5)
    t.wait_for_log(change_re("new", "unknown", "standby", STANDBY, "built for 3"), 5)
    assert t.read("old") == "%d\n" % PRIMARY
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
