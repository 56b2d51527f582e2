"""pgtrack-notify under test: its config, the process, -t runs."""

import re

from kit.daemons import Daemon, built_binary, render_sections, run_program
from kit.files import write_file

NOTIFY_LOG_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} pgtrack-notify: (error|warning|notice|info|debug): ")


def default_notify_binary():
    return built_binary("PGTRACK_NOTIFY", "src", "notify", "pgtrack-notify")


def render_notify_config(sections):
    """sections: {section: {key: value}} in order."""
    return render_sections(sections)


def run_notify(binary, *args, timeout=20, home=None):
    """Run pgtrack-notify to completion (-t, or a start that must fail)."""
    return run_program(binary, *args, timeout=timeout, home=home)


class Notify(Daemon):
    """One pgtrack-notify process with its own config and log."""

    name = "pgtrack-notify"
    program = "pgtrack-notify"

    def write_config(self, sections=None, raw=None):
        if raw is None:
            raw = render_notify_config(sections)
        write_file(self.conf, raw, 0o600)
        return raw

    def start(self, *extra):
        return self.spawn([self.binary, "-f", self.conf, "-l", "-v"] + list(extra))

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for %d" % self.proc.pid)
