"""pgtrack-notify -t on the example, generated and bad configurations;
unsafe FIFOs refused, a missing FIFO created."""

import os
import re
import stat

import pytest

from kit import REPO
from kit.fifo import Fifo
from kit.files import write_file
from kit.notify import run_notify
from kit.postgres import pg_ids
from kit.waiting import wait_until
from notify_rig import Rig
from notify_rig import notify_bin, pg, rig_nofifo  # noqa: F401  (fixtures)


def test_example_config_passes_check(notify_bin, workdir):
    conf = os.path.join(REPO, "examples", "pgtrack-notify.conf")
    template = os.path.join(REPO, "examples", "pgtrack-notify-databases.ini")
    assert os.path.isfile(conf), "examples/pgtrack-notify.conf does not exist"
    assert os.path.isfile(template), "examples/pgtrack-notify-databases.ini does not exist"
    # -t reads the template, which the example expects where it is installed:
    # check the example as it is, with only that path pointed at the repo's copy.
    text = open(conf).read()
    installed = "/etc/pgtrack-notify/databases.ini"
    assert installed in text
    copy = os.path.join(workdir, "pgtrack-notify.conf")
    write_file(copy, text.replace(installed, template))
    r = run_notify(notify_bin, "-t", "-f", copy)
    assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr
    # and as it is, the only complaint is the missing template
    if not os.path.exists(installed):
        r = run_notify(notify_bin, "-t", "-f", conf)
        assert r.returncode == 1
        assert [l for l in r.stderr.splitlines() if l.startswith(conf + ":")] == [
            l for l in r.stderr.splitlines() if installed in l], r.stderr


def good_conf(workdir):
    """A valid config whose files exist; line numbers are relied upon."""
    tmpl = os.path.join(workdir, "databases.tmpl")
    write_file(tmpl, "[databases]\nappdb = host=127.0.0.1 dbname=appdb\n")
    return [
        "[notify]",                                          # 1
        "fifo = /run/keepalived/notify.fifo",                 # 2
        "instance = VI_PG",                                   # 3
        "reconcile_interval = 10s",                           # 4
        "[pgbouncer]",                                        # 5
        "host = /var/run/postgresql",                         # 6
        "port = 6432",                                        # 7
        "user = pgbouncer",                                   # 8
        "databases = appdb, other",                           # 9
        "databases_file = %s" % os.path.join(workdir, "databases.ini"),  # 10
        "databases_template = %s" % tmpl,                     # 11
        "[hooks]",                                            # 12
        'on_master = /usr/bin/logger -t "pgtrack notify" master',  # 13
        "hook_timeout = 30s",                                 # 14
    ]


BAD_CONFS = {
    # name: (edit(lines) -> lines, words the message must contain)
    "both_instance_and_group": (lambda l: l[:3] + ["group = G_PG"] + l[3:], ["instance", "group"]),
    "neither_instance_nor_group": (lambda l: l[:2] + l[3:], ["instance", "group"]),
    "missing_databases": (lambda l: l[:8] + l[9:], ["databases"]),
    "databases_file_without_template": (lambda l: l[:10] + l[11:], ["databases_template"]),
    "unknown_key": (lambda l: l[:7] + ["colour = blue"] + l[7:], ['unknown key "colour" in section [pgbouncer]']),
    "wildcard_with_names": (lambda l: l[:8] + ["databases = appdb, *"] + l[9:], ["*", "alone"]),
    "hold_poll_too_short": (lambda l: l + ["[postgres]", "hold_poll = 1ms"], ["hold_poll"]),
}


def test_generated_good_config_passes_check(notify_bin, workdir):
    conf = os.path.join(workdir, "good.conf")
    write_file(conf, "\n".join(good_conf(workdir)) + "\n")
    r = run_notify(notify_bin, "-t", "-f", conf)
    assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr


@pytest.mark.parametrize("case", sorted(BAD_CONFS))
def test_bad_config_fails_check(notify_bin, workdir, case):
    edit, words = BAD_CONFS[case]
    lines = edit(good_conf(workdir))
    conf = os.path.join(workdir, case + ".conf")
    write_file(conf, "\n".join(lines) + "\n")
    r = run_notify(notify_bin, "-t", "-f", conf)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "configuration OK" not in r.stdout
    errs = [l for l in r.stderr.splitlines() if re.match(re.escape(conf) + r":(\d+): ", l)]
    assert errs, "no PATH:LINE: message:\n" + r.stderr
    for e in errs:
        n = int(re.match(re.escape(conf) + r":(\d+): ", e).group(1))
        assert 1 <= n <= len(lines), e
    assert any(all(w in e for w in words) for e in errs), "no message with %r:\n%s" % (words, r.stderr)
    if case == "unknown_key":
        assert errs == ['%s:8: unknown key "colour" in section [pgbouncer]' % conf], r.stderr


def _fifo_case(rig, case):
    p = rig.fifo_path
    if case == "others_writable_0622":
        rig.make_fifo(0o622)
    elif case == "group_writable_0620":
        rig.make_fifo(0o620)
    elif case in ("owned_by_postgres", "owned_by_postgres_allowed"):
        rig.make_fifo()
        os.chown(p, *pg_ids())
    elif case == "regular_file":
        write_file(p, "", 0o600)
    elif case == "symlink":
        real = os.path.join(rig.dir, "real.fifo")
        os.mkfifo(real, 0o600)
        os.symlink(real, p)


@pytest.mark.parametrize("case", ["others_writable_0622", "group_writable_0620", "owned_by_postgres",
                                  "regular_file", "symlink"])
def test_unsafe_fifo_refused(notify_bin, pg, case):
    rig = Rig(notify_bin, pg)
    try:
        rig.start_bouncer()
        _fifo_case(rig, case)
        rig.notify.write_config(rig.sections())
        r = run_notify(notify_bin, "-f", rig.notify.conf, "-l", "-v", timeout=10, home=rig.dir)
        assert r.returncode == 1, (r.returncode, r.stderr)
        errs = [l for l in r.stderr.splitlines() if " error: " in l and rig.fifo_path in l]
        assert errs, "no error naming the FIFO:\n" + r.stderr
        if case == "others_writable_0622":
            assert any("writable" in e for e in errs), errs
    finally:
        rig.close()


def test_fifo_owned_by_configured_owner_accepted(rig_nofifo):
    rig = rig_nofifo
    _fifo_case(rig, "owned_by_postgres_allowed")
    rig.fifo = Fifo.attach(rig.fifo_path)
    rig.start(notify={"fifo_owner": "postgres"})
    rig.apply("MASTER", True)


def test_missing_fifo_created_0600(rig_nofifo):
    rig = rig_nofifo
    rig.notify.write_config(rig.sections())
    rig.notify.start()
    wait_until(lambda: os.path.exists(rig.fifo_path), 10, describe=rig.notify.describe)
    st = os.lstat(rig.fifo_path)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0, oct(st.st_mode)
    rig.wait_fifo_open()
    rig.fifo = Fifo.attach(rig.fifo_path)
    rig.apply("MASTER", True)


def test_fallback_in_template_needs_wildcard(notify_bin, workdir):
    lines = good_conf(workdir)
    tmpl = [l.split("=", 1)[1].strip() for l in lines if l.startswith("databases_template")][0]
    with open(tmpl, "a") as f:
        f.write("* = host=127.0.0.1 port=5432\n")
    conf = os.path.join(workdir, "fallback.conf")
    write_file(conf, "\n".join(lines) + "\n")
    r = run_notify(notify_bin, "-t", "-f", conf)
    assert r.returncode == 1 and "databases = *" in r.stderr, r.stderr
    lines = [("databases = *" if l.startswith("databases =") else l) for l in lines]
    write_file(conf, "\n".join(lines) + "\n")
    r = run_notify(notify_bin, "-t", "-f", conf)
    assert r.returncode == 0, r.stderr
