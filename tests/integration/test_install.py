"""Install layout and Debian packages: what an operator installs must run.

test_install_layout_*: meson install into a DESTDIR with two prefixes; every
path a unit names must be where that prefix put it, and what systemd reads
(units, tmpfiles.d, sysusers.d) must be in a directory systemd reads.

test_debian_packages: dpkg-buildpackage in a copy of the tree, lintian, then
apt-get install of the packages on this machine, pgtrackd -t on the
installed default configuration as the user the unit runs it as, the user,
systemd-analyze verify on the installed units, and apt-get purge.
"""

import glob
import os
import re
import shlex
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT_DIRS = {"/usr": "lib/systemd/system", "/usr/local": "usr/local/lib/systemd/system"}
SYSTEMD_READS = {  # tmpfiles.d(5), sysusers.d(5), systemd.unit(5)
    "/usr": ("usr/lib", "lib"),
    "/usr/local": ("usr/local/lib",),
}
PACKAGES = ("pgtrackd", "pgtrack-notify", "pgtrackd-dev")


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def checked(cmd, timeout, **kw):
    r = run(cmd, timeout, **kw)
    assert r.returncode == 0, "%s failed (%d):\n%s\n%s" % (
        " ".join(cmd), r.returncode, r.stdout[-4000:], r.stderr[-4000:])
    return r


def source_copy(dest):
    """The tree as git sees it (tracked and untracked, not ignored), without build dirs."""
    files = checked(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                     "--exclude-standard"], 60).stdout.split("\0")
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if not os.path.lexists(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel), follow_symlinks=False)


def unit_paths(unit_text):
    """Absolute paths a unit's Exec*= and ReadWritePaths= lines name."""
    paths = []
    for line in unit_text.splitlines():
        m = re.match(r"^(Exec\w+|ReadWritePaths)=(.*)$", line)
        if not m:
            continue
        for word in shlex.split(m.group(2).lstrip("-+!@:")):
            if word.startswith("/"):
                paths.append((m.group(1), word))
    return paths


def service_settings(*texts):
    """The [Service] settings of a unit and its drop-ins, in that order (the last assignment wins)."""
    settings, section = {}, None
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith(("#", ";")):
                key, value = line.split("=", 1)
                settings[key.strip()] = value.strip()
    return settings


def leaves_shared_ipc_alone(unit, *dropins):
    """RemoveIPC=yes only for pgtrackd's own user: systemd removes the IPC objects of a
    RemoveIPC= unit's user once the last unit of that user stops, and pgtrack-notify (as
    pgbouncer's user) or pgtrackd as the server's user share theirs with PostgreSQL."""
    settings = service_settings(open(unit).read(), *[open(d).read() for d in dropins])
    remove_ipc = settings.get("RemoveIPC", "no").lower() in ("yes", "true", "on", "1")
    assert not remove_ipc or settings.get("User") == "pgtrackd", \
        "%s: RemoveIPC=yes as user %s would remove that user's IPC objects (a PostgreSQL " \
        "server's shared memory) when it stops" % (os.path.basename(unit), settings.get("User"))
    return settings


def install(tmp_path, prefix):
    build = tmp_path / ("build" + prefix.replace("/", "_"))
    dest = tmp_path / ("dest" + prefix.replace("/", "_"))
    checked(["meson", "setup", str(build), ROOT, "--prefix=" + prefix, "-Dinstall_config=true",
             "-Dfuzz=disabled"], 300)
    checked(["ninja", "-C", str(build)], 600)
    checked(["meson", "install", "-C", str(build), "--no-rebuild", "--destdir", str(dest)], 300)
    return str(dest)


@pytest.mark.parametrize("prefix", ["/usr", "/usr/local"])
def test_install_layout(tmp_path, prefix):
    dest = install(tmp_path, prefix)
    units = sorted(glob.glob(os.path.join(dest, UNIT_DIRS[prefix], "*.service")))
    assert [os.path.basename(u) for u in units] == ["pgtrack-notify.service", "pgtrackd.service"]
    for unit in units:
        text = open(unit).read()
        assert "@" + "sbindir@" not in text and "@" + "sysconfdir@" not in text
        named = unit_paths(text)
        assert any(k == "ExecStart" for k, _ in named), unit
        for key, path in named:
            if path.startswith("/run/") or path == "/etc/pgbouncer":
                continue  # made at boot by tmpfiles.d / owned by pgbouncer's package
            inside = os.path.join(dest, path.lstrip("/"))
            if path.startswith(prefix + "/") or path.startswith("/etc/") and prefix == "/usr" \
                    or path.startswith("/usr/local/etc/"):
                assert os.path.exists(inside), "%s names %s=%s, not installed" % (
                    os.path.basename(unit), key, path)
            else:
                assert os.path.exists(path), "%s names %s=%s" % (unit, key, path)
        assert re.search(r"^ExecStart=%s/sbin/" % re.escape(prefix), text, re.M), text
        leaves_shared_ipc_alone(unit)
    dropin = os.path.join(dest, prefix.lstrip("/"), "share/doc/pgtrackd/examples/pgtrackd-server-user.conf")
    as_server = leaves_shared_ipc_alone(os.path.join(dest, UNIT_DIRS[prefix], "pgtrackd.service"), dropin)
    assert as_server["User"] == "postgres" and as_server["RemoveIPC"] == "no", as_server
    for kind, files in (("tmpfiles.d", ["pgtrack-notify.conf", "pgtrackd.conf"]),
                        ("sysusers.d", ["pgtrackd.conf"])):
        found = [f for base in SYSTEMD_READS[prefix]
                 if os.path.isdir(os.path.join(dest, base, kind))
                 for f in sorted(os.listdir(os.path.join(dest, base, kind)))]
        assert found == files, "%s: %s" % (kind, found)


def installed_packages():
    r = run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n"] + list(PACKAGES), 60)
    return [line.split()[0] for line in r.stdout.splitlines() if "install ok installed" in line]


# What the packages' tmpfiles.d entries create; purge leaves /run alone, and
# a /run/pgtrackd owned by the user pgtrackd would fail the unit tests that
# name files there (a track directory must belong to root or to us).
RUN_PATHS = ["/run/keepalived/notify.fifo", "/run/keepalived", "/run/pgtrackd"]


@pytest.fixture
def no_installed_packages():
    if installed_packages():
        pytest.fail("pgtrackd packages already installed on this machine: %s" % installed_packages(),
                    pytrace=False)
    existed = [p for p in RUN_PATHS if os.path.lexists(p)]
    yield
    if installed_packages():
        run(["apt-get", "purge", "-y", "-q"] + list(PACKAGES), 300,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    for path in RUN_PATHS:
        if path not in existed and os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)


def test_debian_packages(tmp_path, no_installed_packages):
    src = tmp_path / "src"
    source_copy(str(src))
    checked(["dpkg-buildpackage", "-b", "-us", "-uc"], 1200, cwd=str(src))
    debs = sorted(glob.glob(str(tmp_path / "*.deb")))
    names = {os.path.basename(d).split("_")[0] for d in debs}
    assert set(PACKAGES) <= names, names

    changes = glob.glob(str(tmp_path / "*.changes"))
    lint = run(["lintian", "--fail-on", "error,warning"] + changes, 600)
    assert lint.returncode == 0, "lintian:\n" + lint.stdout + lint.stderr
    assert not re.search(r"^[EW]: ", lint.stdout, re.M), lint.stdout

    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    wanted = [d for d in debs if os.path.basename(d).split("_")[0] in PACKAGES]
    checked(["apt-get", "install", "-y", "-q"] + wanted, 600, env=env)
    assert sorted(installed_packages()) == sorted(PACKAGES)

    checked(["id", "pgtrackd"], 10)
    assert os.path.isdir("/run/pgtrackd")
    # As the unit runs it: -t as the user pgtrackd (ExecReload= does the same).
    r = checked(["runuser", "-u", "pgtrackd", "--", "/usr/sbin/pgtrackd", "-t", "-f",
                 "/etc/pgtrackd/pgtrackd.conf"], 30)
    assert "configuration OK" in r.stdout
    r = checked(["/usr/sbin/pgtrack-notify", "-t", "-f", "/etc/pgtrack-notify/pgtrack-notify.conf"], 30)
    assert "configuration OK" in r.stdout
    units = ["/lib/systemd/system/pgtrackd.service", "/lib/systemd/system/pgtrack-notify.service"]
    r = run(["systemd-analyze", "verify"] + units, 60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    # pgtrack-notify runs as pgbouncer's user, here postgres, the server's.
    assert leaves_shared_ipc_alone(units[1])["User"] == "postgres"
    dropin = "/usr/share/doc/pgtrackd/examples/pgtrackd-server-user.conf"
    leaves_shared_ipc_alone(units[0], dropin)
    dropin_dir = "/etc/systemd/system/pgtrackd.service.d"
    os.makedirs(dropin_dir)
    try:
        shutil.copy(dropin, os.path.join(dropin_dir, "server-user.conf"))
        r = run(["systemd-analyze", "verify", units[0]], 60)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    finally:
        shutil.rmtree(dropin_dir)
    assert os.path.exists("/usr/include/pgtrackd/module.h")
    assert glob.glob("/usr/lib/*/pgtrackd/modules/maintenance.so")
    # Installed, not enabled: the operator configures the node first.
    assert not glob.glob("/etc/systemd/system/*.wants/pgtrackd.service")

    checked(["apt-get", "purge", "-y", "-q"] + list(PACKAGES), 600, env=env)
    assert installed_packages() == []
    for path in ["/usr/sbin/pgtrackd", "/usr/sbin/pgtrack-notify", "/etc/pgtrackd",
                 "/etc/pgtrack-notify", "/lib/systemd/system/pgtrackd.service",
                 "/usr/include/pgtrackd", "/usr/lib/sysusers.d/pgtrackd.conf"]:
        assert not os.path.lexists(path), path + " left after purge"
