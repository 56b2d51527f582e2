"""pgtrackd's configuration check (-t) on the examples, generated and bad
configurations with their exact messages, and its command line."""

import glob
import os
import re

import pytest

from kit import REPO, project_version
from kit.trackd import assert_check_errors, check, run_binary


# --------------------------------------------------------------------------
# 8. configuration check and CLI


def example_configs():
    return sorted(glob.glob(os.path.join(REPO, "examples", "pgtrackd*.conf")))


def test_examples_pass_check(pgtrackd_bin):
    confs = example_configs()
    assert confs, "no examples/pgtrackd*.conf in the repository"
    for conf in confs:
        r = run_binary(pgtrackd_bin, "-t", "-f", conf)
        assert r.returncode == 0, "%s: exit %d\n%s" % (conf, r.returncode, r.stderr)
        assert r.stdout.strip() == "configuration OK", (conf, r.stdout, r.stderr)


def test_check_warns_when_keepalived_would_clamp(pgtrackd_bin, workdir):
    """-t: values that base_priority + value pushes past 254 are a warning, not an error."""
    conf = os.path.join(workdir, "clamp.conf")
    with open(conf, "w") as f:
        f.write("[track main]\nfile = /run/pgtrackd/main\nvalue_primary = 100\n"
                "value_standby = 0\nvalue_lagging = -50\n")
    r = run_binary(pgtrackd_bin, "-t", "-f", conf)
    assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr
    assert ('pgtrackd: warning: %s:1: track "main": value_primary 100 on base_priority 200 gives '
            'priority 300, which keepalived clamps to 254: it no longer differs from its '
            'neighbours' % conf) in r.stderr, r.stderr
    assert r.stderr.count("warning:") == 1, r.stderr
    # the same values on the base priority they were meant for: silent
    with open(conf, "a") as f:
        f.write("base_priority = 100\n")
    r = run_binary(pgtrackd_bin, "-t", "-f", conf)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")


def test_generated_config_passes_check(pgtrackd_bin, workdir):
    conf = os.path.join(workdir, "ok.conf")
    with open(conf, "w") as f:
        f.write("; a comment\n"
                "# another comment\n"
                "[global]\n"
                "file_check_interval = 100ms\n"
                "syslog_facility = local3\n"
                "\n"
                "[track main-db_1.x]\n"
                "   file = /run/pgtrackd/main\n"
                "host = /var/run/postgresql\n"
                "port = 5432\n"
                "dbname = postgres\n"
                "user = pgtrackd\n"
                "passfile = /etc/pgtrackd/pgpass\n"
                "sslmode = disable\n"
                "application_name = pgtrackd\n"
                "connect_timeout = 2\n"           # bare integer: seconds
                "interval = 10ms\n"
                "timeout = 1h\n"
                "rise = 1\n"
                "fall = 100\n"
                "accept_interval = 0\n"
                "base_priority = 0\n"            # no clamp check for these values
                "value_primary = 254\n"
                "value_standby = -254\n"
                "value_down = -254\n"
                "value_unknown = 0\n"
                "value_stopped = -1\n"
                "\n"
                "[track other]\n"
                "file = /run/pgtrackd/other\n"
                "hostaddr = 127.0.0.1\n"
                "accept_interval = 5m\n"
                "; " + "x" * 195 + "\n")          # a 197-byte line is fine
    r = run_binary(pgtrackd_bin, "-t", "-f", conf)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "configuration OK", "")
    r = run_binary(pgtrackd_bin, "--check", "--config", conf)
    assert (r.returncode, r.stdout.strip()) == (0, "configuration OK"), r.stderr


# (config text, [(line, message)]) each checked alone: the exact spec forms
SINGLE_ERRORS = {
    "unknown_key": (
        "[track a]\nfile = /nonexistent/a\ncolour = blue\n",
        [(3, 'unknown key "colour" in section [track a]')]),
    "unknown_key_global": (
        "[global]\nfile_check_interval = 1s\nverbose = yes\n[track a]\nfile = /nonexistent/a\n",
        [(3, 'unknown key "verbose" in section [global]')]),
    "unknown_section": (
        "[track a]\nfile = /nonexistent/a\n\n[frobnicate]\n",
        [(4, 'unknown section "frobnicate"')]),
    "bad_duration": (
        "[track a]\nfile = /nonexistent/a\ninterval = fast\n",
        [(3, 'invalid value "fast" for interval: expected a duration like 250ms or 2s')]),
    "bad_duration_unit": (
        "[track a]\nfile = /nonexistent/a\ntimeout = 2sec\n",
        [(3, 'invalid value "2sec" for timeout: expected a duration like 250ms or 2s')]),
    "rise_out_of_range": (
        "[track a]\nfile = /nonexistent/a\nrise = 0\n",
        [(3, 'invalid value "0" for rise: must be between 1 and 100')]),
    "fall_out_of_range": (
        "[track a]\nfile = /nonexistent/a\nfall = 101\n",
        [(3, 'invalid value "101" for fall: must be between 1 and 100')]),
    "missing_file": (
        "[global]\nfile_check_interval = 1s\n\n[track nofile]\nport = 5432\n",
        [(4, 'track "nofile": missing required key "file"')]),
    "duplicate_key": (
        "[track a]\nfile = /nonexistent/a\nport = 5432\nport = 5433\n",
        [(4, 'duplicate key "port"')]),
    "long_line": (
        "[track a]\nfile = /nonexistent/a\napplication_name = " + "x" * 231 + "\n",   # 250 bytes
        [(3, "line is longer than 197 bytes")]),
    "long_line_198": (
        "[track a]\nfile = /nonexistent/a\n; " + "y" * 196 + "\n",                     # 198 bytes
        [(3, "line is longer than 197 bytes")]),
    "syntax_error": (
        "[track a]\nfile = /nonexistent/a\nthis line has no equals sign\n",
        [(3, "syntax error: expected KEY = VALUE")]),
}


@pytest.mark.parametrize("case", sorted(SINGLE_ERRORS))
def test_bad_config_exact_message(pgtrackd_bin, workdir, case):
    text, expected = SINGLE_ERRORS[case]
    assert_check_errors(pgtrackd_bin, workdir, case, text, expected)


def test_bad_config_duplicate_track_and_file(pgtrackd_bin, workdir):
    conf = os.path.join(workdir, "dup.conf")
    with open(conf, "w") as f:
        f.write("[track a]\n"            # 1
                "file = /tmp/t/a\n"       # 2
                "\n"                      # 3
                "[track a]\n"             # 4  duplicate track name
                "file = /tmp/t/a2\n"      # 5
                "\n"                      # 6
                "[track b]\n"             # 7
                "file = /tmp/t/a\n")      # 8  same file as track a
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, r.stderr
    assert len(errs) == 2, r.stderr
    # the second [track a] header; the message names the track
    assert any(e.startswith(conf + ":4: ") and "duplicate" in e.lower() and '"a"' in e for e in errs), errs
    # track b reuses track a's file: its header or its file line, naming the path
    assert any(re.match(re.escape(conf) + r":[78]: .*/tmp/t/a\b", e) for e in errs), errs


def test_bad_config_all_errors_in_one_run(pgtrackd_bin, workdir):
    conf = os.path.join(workdir, "many.conf")
    lines = [
        "[global]",                                  # 1
        "file_check_interval = 20ms",                # 2  out of range (100ms..10s)
        "[track a]",                                 # 3
        "file = /tmp/t/a",                           # 4
        "colour = blue",                             # 5  unknown key
        "interval = soon",                           # 6  bad duration
        "rise = 0",                                  # 7  out of range
        "port = 5432",                               # 8
        "port = 5433",                               # 9  duplicate key
        "application_name = " + "z" * 231,           # 10 250-byte line
        "fall = 2",                                  # 11 fine: numbering continues
        "[track b]",                                 # 12 missing file
        "port = 5432",                               # 13
        "[nonsense]",                                # 14 unknown section
        "[track c]",                                 # 15
        "file = /tmp/t/c",                           # 16
        "value_primary = 255",                       # 17 out of range
    ]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    r, errs = check(pgtrackd_bin, conf)
    assert r.returncode == 1, r.stderr
    assert "configuration OK" not in r.stdout
    exact = {
        5: 'unknown key "colour" in section [track a]',
        6: 'invalid value "soon" for interval: expected a duration like 250ms or 2s',
        7: 'invalid value "0" for rise: must be between 1 and 100',
        9: 'duplicate key "port"',
        10: "line is longer than 197 bytes",
        12: 'track "b": missing required key "file"',
        14: 'unknown section "nonsense"',
    }
    # the exact wording is checked one by one in test_bad_config_exact_message;
    # here: every error, in one run, on the right line
    prefix = dict(exact)
    prefix.update({2: 'invalid value "20ms" for file_check_interval: ',
                   17: 'invalid value "255" for value_primary: '})
    for n, p in prefix.items():
        assert any(e.startswith("%s:%d: %s" % (conf, n, p)) for e in errs), "missing %d\n%s" % (n, r.stderr)
    # nothing else, in particular nothing from the rest of the long line
    assert len(errs) == len(prefix), r.stderr


def test_missing_config_file(pgtrackd_bin, workdir):
    conf = os.path.join(workdir, "does-not-exist.conf")
    r = run_binary(pgtrackd_bin, "-t", "-f", conf)
    assert r.returncode == 1
    assert conf + ": cannot open: No such file or directory" in r.stderr.splitlines(), r.stderr


def test_startup_with_bad_config_exits_1(pgtrackd_bin, workdir):
    conf = os.path.join(workdir, "bad.conf")
    with open(conf, "w") as f:
        f.write("[track a]\nfile = /nonexistent/a\nrise = 1000\n")
    r = run_binary(pgtrackd_bin, "-n", "-l", "-f", conf, timeout=10)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert '%s:3: invalid value "1000" for rise: must be between 1 and 100' % conf in r.stderr, r.stderr


def test_version(pgtrackd_bin):
    for opt in ("-V", "--version"):
        r = run_binary(pgtrackd_bin, opt)
        assert r.returncode == 0, r.stderr
        # "pgtrackd VERSION" (extra words after it, e.g. library versions, are tolerated)
        first = r.stdout.splitlines()[0] if r.stdout else ""
        assert first.split()[:2] == ["pgtrackd", project_version()], r.stdout


def test_help(pgtrackd_bin):
    for opt in ("-h", "--help"):
        r = run_binary(pgtrackd_bin, opt)
        assert r.returncode == 0, r.stderr
        out = r.stdout + r.stderr
        for o in ("--config", "--check", "--foreground", "--log-console", "--verbose", "--version", "--help"):
            assert o in out, "%s not in %s output:\n%s" % (o, opt, out)


@pytest.mark.parametrize("args", [["-Z"], ["--no-such-option"], ["-f"], ["extra-argument"]],
                         ids=["short", "long", "missing-arg", "operand"])
def test_usage_error_exits_2(pgtrackd_bin, args):
    r = run_binary(pgtrackd_bin, *args)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
