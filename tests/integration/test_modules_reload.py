"""Probe modules across reloads (a changed setting, a removed module, a bad
key refused), under valgrind, and built out of tree against the installed
header and pkg-config file."""

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from kit import REPO, project_version
from kit.pgserver import backend_pids, wait_backends
from kit.trackd import FileWatch, Trackd, change_re, changes, check
from modules_rig import MAINTENANCE, OK, drain_track, touch, mapped, wait_unmapped, line_of
from modules_rig import build_dir, maintenance_so, moddir, primary  # noqa: F401  (fixtures)


def _bad_module_keys_refused(t, p_opts, drain, flag):
    """Bad module keys: the reload is refused, the running config keeps
    working (the flag still drives the track)."""
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
    # the line comes after the file: the log offset below must be past it
    t.wait_for_log(change_re("drain", "ok", "maintenance", MAINTENANCE), 5)
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

    _bad_module_keys_refused(t, p_opts, drain, flag)

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


class ValgrindTrackd(Trackd):
    """pgtrackd under valgrind, its report in base/valgrind.log; on normal
    scheduling: valgrind translating a module's code on a reload may use
    more CPU without sleeping than realtime_limit allows."""

    def write_config(self, tracks, global_opts=None, raw=None):
        return super().write_config(tracks, dict(global_opts or {}, realtime_priority="0"), raw)

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
        assert pkgconfig("--variable=abi_version") == "3"
        assert pkgconfig("--variable=abi_version_min") == "2"
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
