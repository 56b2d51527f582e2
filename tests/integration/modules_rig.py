"""What the probe module tests share: the build directory and the modules
built there, module directories made to measure (ModDir), a PostgreSQL
primary, configs using a module; their fixtures, imported by the test modules."""

import os
import shutil
import tempfile
import time

import pytest

from conftest import ServerFactory


MAINTENANCE = -254    # value_maintenance default


OK = 0                # value_ok default


NOBODY = 65534


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


@pytest.fixture(scope="module")
def report_so(build_dir):
    return {s: built(build_dir, "tests/modules/test_report_%s.so" % s)
            for s in ("primary", "standby", "resident", "abi2")}


def report_track(so, **over):
    opts = {"module": so}
    opts.update(over)
    return opts


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
