"""Where a track file goes: no symlink in its path, a directory nobody else
can write to (sticky or not), and one file per track however its path is
spelled.  The directory policy is enforced when the configuration is
loaded; at run time a directory opened up behind pgtrackd's back is warned
about but still written, so that the value never freezes.

Run as root (see conftest.py).  No PostgreSQL is needed: a track whose
server does not exist still writes a value.
"""

import os
import pwd
import re
import signal
import subprocess
import time

import pytest

from kit.ports import SilentListener
from kit.trackd import check as check_conf, render_config

NOBODY = pwd.getpwnam("nobody")


def no_server_track(base, path):
    """A track that reaches no server (it writes value_down) into path."""
    return {"file": path, "host": os.path.join(base, "no-such-socket-dir"), "port": "5432",
            "interval": "200ms", "timeout": "1s", "connect_timeout": "1s",
            "rise": "1", "fall": "1"}


@pytest.fixture
def silent():
    """A server that never answers: a track on it is unknown for its
    connect_timeout, then down."""
    s = SilentListener()
    try:
        yield s
    finally:
        s.close()


def wait_exists(t, path, timeout):
    t0 = time.monotonic()
    while not os.path.exists(path):
        if not t.alive():
            raise AssertionError(t._describe("pgtrackd exited before writing %s" % path))
        if time.monotonic() - t0 > timeout:
            raise AssertionError(t._describe("%s not written within %.1fs" % (path, timeout)))
        time.sleep(0.02)


def as_nobody(*argv):
    """Run argv as the unprivileged user nobody (who owns the parent directory)."""
    subprocess.run(["runuser", "-u", "nobody", "--"] + list(argv), check=True, timeout=10,
                   stdin=subprocess.DEVNULL)


def check(binary, workdir, text, name="c.conf"):
    conf = os.path.join(workdir, name)
    with open(conf, "w") as f:
        f.write(text)
    r, errs = check_conf(binary, conf)
    return conf, r, errs


# --------------------------------------------------------------------------
# 1. a directory of the path swapped for a symlink


def test_symlinked_subdirectory_is_not_followed(trackd):
    t = trackd.new()
    base = t.base
    os.chmod(base, 0o755)                   # nobody must reach run/
    run = os.path.join(base, "run")
    sub = os.path.join(run, "sub")
    elsewhere = os.path.join(base, "elsewhere")   # stands for /etc: root's, not nobody's
    os.mkdir(run, 0o755)
    os.chown(run, NOBODY.pw_uid, NOBODY.pw_gid)
    os.mkdir(sub, 0o755)                    # root's, in nobody's directory
    os.mkdir(elsewhere, 0o755)
    path = os.path.join(sub, "file")
    t.write_config(None, raw=render_config({"p": no_server_track(base, path)},
                                           {"file_check_interval": "100ms"}))
    t.start()
    wait_exists(t, path, 10)
    t.wait_for_log(r'track "p": unknown -> down', 10)   # the file holds the settled value
    value = open(path).read()
    assert value == "-254\n", value

    # nobody owns run/, so nobody may rename sub and put a symlink there
    mark = t.log_size()
    as_nobody("mv", sub, os.path.join(run, "sub.old"))
    as_nobody("ln", "-s", elsewhere, sub)
    time.sleep(1.5)                         # ~15 file checks
    assert t.alive(), t._describe()
    assert os.listdir(elsewhere) == [], t._describe(
        "pgtrackd wrote through the symlink %s -> %s: %r" % (sub, elsewhere, os.listdir(elsewhere)))
    lines = [l for l in t.log()[mark:].splitlines() if sub in l and "symbolic link" in l]
    assert len(lines) == 1, t._describe("expected one line naming the symlink %s, got %r" % (sub, lines))
    assert re.search(r" pgtrackd: error: track \"p\": cannot write -?\d+ to %s: .*%s\b"
                     % (re.escape(path), re.escape(sub)), lines[0]), lines[0]

    # the real directory back: the value is written there again, and said so
    mark = t.log_size()
    os.unlink(sub)
    os.rename(os.path.join(run, "sub.old"), sub)
    os.unlink(path)
    wait_exists(t, path, 3)
    time.sleep(0.1)                         # the rename is atomic, the read after it too
    assert open(path).read() == value
    t.wait_for_log(r' pgtrackd: (info|notice): track "p": .*%s' % re.escape(path), 2, mark)
    assert os.listdir(elsewhere) == []


def test_symlink_in_path_refused_at_check(pgtrackd_bin, workdir):
    real = os.path.join(workdir, "real")
    link = os.path.join(workdir, "link")
    os.mkdir(real, 0o755)
    os.symlink(real, link)
    conf, r, errs = check(pgtrackd_bin, workdir,
                          "[track a]\n"                                # 1
                          "file = %s\n" % os.path.join(link, "t"))     # 2
    assert r.returncode == 1, r.stderr
    assert len(errs) == 1, r.stderr
    assert re.match(r"%s:[12]: track \"a\": .*%s is a symbolic link" % (re.escape(conf), re.escape(link)),
                    errs[0]), errs


# --------------------------------------------------------------------------
# 2. a directory others may write to, or owned by someone else


# Sticky too: in a sticky directory another user can create the track file
# first, and pgtrackd (not root) can then neither replace nor remove it:
# keepalived would keep reading the other user's value.
@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777, 0o1770, 0o1757])
def test_writable_track_directory_refused_at_check(pgtrackd_bin, workdir, mode):
    d = os.path.join(workdir, "open")
    os.mkdir(d)
    os.chmod(d, mode)
    conf, r, errs = check(pgtrackd_bin, workdir,
                          "[global]\n"                                  # 1
                          "file_check_interval = 500ms\n"               # 2
                          "[track a]\n"                                 # 3
                          "file = %s/t\n" % d)                          # 4
    assert r.returncode == 1, r.stderr
    assert "configuration OK" not in r.stdout
    assert len(errs) == 1, r.stderr
    assert re.match(r"%s:[34]: track \"a\": .*%s is writable by group or others \(mode %04o\)"
                    % (re.escape(conf), re.escape(d), mode), errs[0]), errs


def test_private_track_directory_passes_check(pgtrackd_bin, workdir):
    private = os.path.join(workdir, "private")
    sticky_private = os.path.join(workdir, "sticky-private")
    os.mkdir(private, 0o755)
    os.mkdir(sticky_private)
    os.chmod(sticky_private, 0o1755)        # sticky but nobody else may write: fine
    conf, r, errs = check(pgtrackd_bin, workdir,
                          "[track a]\nfile = %s/t\n[track b]\nfile = %s/t\n" % (private, sticky_private))
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")


def test_sticky_track_directory_refused_at_start(trackd):
    """A local user squats the track file in a sticky world-writable
    directory: pgtrackd refuses to start instead of leaving that user's
    value in force."""
    t = trackd.new()
    os.chmod(t.base, 0o755)                 # nobody must reach the directory
    d = os.path.join(t.base, "tmp")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    path = os.path.join(d, "p")
    as_nobody("sh", "-c", "echo 100 > %s" % path)
    t.write_config(None, raw="[global]\n"                                  # 1
                             "file_check_interval = 100ms\n"               # 2
                             "[track p]\n"                                 # 3
                             "file = %s\n"                                 # 4
                             "host = %s\n" % (path, os.path.join(t.base, "no-such-socket-dir")))
    t.start()
    try:
        t.proc.wait(10)
    except subprocess.TimeoutExpired:
        raise AssertionError(t._describe("pgtrackd started with a sticky world-writable track directory"))
    assert t.proc.returncode != 0, t._describe()
    errs = [l for l in t.log_lines() if t.conf + ":" in l]
    assert len(errs) == 1, t._describe("expected one configuration error, got %r" % errs)
    assert re.search(r"%s:[34]: track \"p\": .*%s is writable by group or others \(mode 1777\)"
                     % (re.escape(t.conf), re.escape(d)), errs[0]), errs
def test_track_directory_of_another_user_refused_at_check(pgtrackd_bin, workdir):
    d = os.path.join(workdir, "theirs")
    os.mkdir(d, 0o755)
    os.chown(d, NOBODY.pw_uid, NOBODY.pw_gid)
    conf, r, errs = check(pgtrackd_bin, workdir, "[track a]\nfile = %s/t\n" % d)
    assert r.returncode == 1, r.stderr
    assert len(errs) == 1, r.stderr
    assert re.match(r"%s:[12]: track \"a\": .*%s is owned by uid %d" % (re.escape(conf), re.escape(d),
                                                                        NOBODY.pw_uid), errs[0]), errs


def test_missing_track_directory_passes_check(pgtrackd_bin, workdir):
    # created later (tmpfiles.d): pgtrackd retries it at run time
    conf, r, errs = check(pgtrackd_bin, workdir,
                          "[track a]\nfile = %s/not/yet/t\n" % workdir)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")


@pytest.mark.parametrize("change", ["chmod_0777", "chmod_1777", "chown_nobody"])
def test_track_directory_opened_at_run_time_still_written(trackd, silent, change):
    """The directory policy is the configuration check's: a directory
    opened up later (a RuntimeDirectoryMode drop-in, tmpfiles) must not
    freeze the last value, so the new value is written anyway and the
    change is warned about once."""
    t = trackd.new()
    path = t.path("p")
    opts = no_server_track(t.base, path)
    opts.update({"host": "127.0.0.1", "port": str(silent.port), "connect_timeout": "2s",
                 "timeout": "2s"})
    t.write_config(None, raw=render_config({"p": opts}, {"file_check_interval": "100ms"}))
    t.start()
    wait_exists(t, path, 10)
    assert open(path).read() == "0\n", t._describe("expected the unknown value first")
    mark = t.log_size()
    if change == "chmod_0777":
        os.chmod(t.trackdir, 0o777)
        what = r"writable by group or others \(mode 0777\)"
    elif change == "chmod_1777":
        os.chmod(t.trackdir, 0o1777)
        what = r"writable by group or others \(mode 1777\)"
    else:
        os.chown(t.trackdir, NOBODY.pw_uid, NOBODY.pw_gid)
        what = r"owned by uid %d" % NOBODY.pw_uid
    t.wait_for_value("p", -254, 10)
    t.wait_for_log(r'track "p": unknown -> down', 5, mark)

    # a second write in the same reminder period: restored, not warned again
    os.unlink(path)
    t.wait_for_value("p", -254, 3)
    time.sleep(0.3)
    assert t.alive(), t._describe()
    log = t.log()[mark:]
    lines = [l for l in log.splitlines() if t.trackdir in l and re.search(what, l)]
    assert len(lines) == 1, t._describe("expected one warning about %s, got %r" % (t.trackdir, lines))
    assert re.search(r" pgtrackd: warning: track \"p\": .*%s.*; wrote -254 to %s anyway"
                     % (re.escape(t.trackdir), re.escape(path)), lines[0]), lines[0]
    assert "cannot write" not in log, t._describe()

    # a reload still enforces the policy: refused, on the track's line
    mark = t.log_size()
    t.send_signal(signal.SIGHUP)
    t.wait_for_log(r"configuration reload failed, keeping the running configuration", 5, mark)
    errs = [l for l in t.log()[mark:].splitlines() if t.conf + ":" in l]
    assert len(errs) == 1 and re.search(what, errs[0]), t._describe("reload errors: %r" % errs)
    assert t.alive(), t._describe()

    # put right: said so once, and the next write is quiet
    mark = t.log_size()
    os.chown(t.trackdir, 0, 0)
    os.chmod(t.trackdir, 0o755)
    os.unlink(path)
    t.wait_for_value("p", -254, 3)
    t.wait_for_log(r' pgtrackd: notice: track "p": directory %s passes the checks again'
                   % re.escape(t.trackdir), 3, mark)


# --------------------------------------------------------------------------
# 3. one file, two spellings


@pytest.mark.parametrize("spelling", ["double_slash", "dot", "dotdot", "symlinked_dir"])
def test_same_file_spelled_differently(pgtrackd_bin, workdir, spelling):
    d = os.path.join(workdir, "x")
    os.mkdir(d, 0o755)
    other = {
        "double_slash": d + "//t",
        "dot": d + "/./t",
        "dotdot": d + "/../x/t",
        "symlinked_dir": os.path.join(workdir, "alias", "t"),
    }[spelling]
    if spelling == "symlinked_dir":
        os.symlink(d, os.path.join(workdir, "alias"))
    conf, r, errs = check(pgtrackd_bin, workdir,
                          "[track a]\n"             # 1
                          "file = %s/t\n"           # 2
                          "[track b]\n"             # 3
                          "file = %s\n" % (d, other))  # 4
    assert r.returncode == 1, r.stderr
    dup = [e for e in errs if 'already written by track "a"' in e]
    assert len(dup) == 1, r.stderr
    assert re.match(r"%s:[34]: track \"b\": file %s is already written by track \"a\"$"
                    % (re.escape(conf), re.escape(other)), dup[0]), dup


def test_same_file_in_missing_directory(pgtrackd_bin, workdir):
    d = os.path.join(workdir, "later")
    conf, r, errs = check(pgtrackd_bin, workdir,
                          "[track a]\nfile = %s/t\n[track b]\nfile = %s//./t\n" % (d, d))
    assert r.returncode == 1, r.stderr
    assert len(errs) == 1 and 'already written by track "a"' in errs[0], r.stderr


def test_different_files_pass_check(pgtrackd_bin, workdir):
    d = os.path.join(workdir, "x")
    os.mkdir(d, 0o755)
    conf, r, errs = check(pgtrackd_bin, workdir,
                          "[track a]\nfile = %s/t\n[track b]\nfile = %s/u\n"
                          "[track c]\nfile = %s/y/t\n" % (d, d, workdir))
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")


# --------------------------------------------------------------------------
# 4. the same mistake in pgtrack-notify: its template and databases file


def test_notify_template_is_databases_file_spelled_differently(workdir):
    from kit.notify import default_notify_binary, run_notify
    binary = default_notify_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail("pgtrack-notify binary not found at %s" % binary, pytrace=False)
    d = os.path.join(workdir, "pgb")
    os.mkdir(d, 0o755)
    db = os.path.join(d, "databases.ini")
    with open(db, "w") as f:
        f.write("[databases]\nappdb = host=127.0.0.1 dbname=appdb\n")
    conf = os.path.join(workdir, "notify.conf")
    with open(conf, "w") as f:
        f.write("[notify]\n"                                   # 1
                "fifo = /run/keepalived/notify.fifo\n"        # 2
                "instance = VI_PG\n"                           # 3
                "[pgbouncer]\n"                                # 4
                "host = /var/run/postgresql\n"                 # 5
                "port = 6432\n"                                # 6
                "user = pgbouncer\n"                           # 7
                "databases = appdb\n"                          # 8
                "databases_file = %s\n"                        # 9
                "databases_template = %s\n" % (db, d + "//./databases.ini"))  # 10
    r = run_notify(binary, "-t", "-f", conf)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "databases_template and databases_file are the same file" in r.stderr, r.stderr
