"""The one Python test kit of pgtrackd: real PostgreSQL servers, pgbouncer,
pgtrackd and pgtrack-notify processes, keepalived's notify FIFO, process and
port bookkeeping and polling, shared by the integration tests
(tests/integration), the benchmarks (bench/) and the lab (examples/lab/).

- procs:     /proc bookkeeping, PID-safe signals, running a command, a
             clean environment
- subreaper: reaping orphans and notify scripts as a child subreaper
- waiting:   the one bounded polling loop (wait_until, poll)
- ports:     127.0.0.1 ports locked against parallel runs; a silent peer
- files:     atomic writes, reading integer and log files
- postgres:  PostgreSQL 15 as the postgres user: initdb, pg_ctl, a throwaway
             cluster for the benchmarks
- pgserver:  PgServer, the integration tests' primaries and replicas
- pgbouncer: pgbouncer 1.18 in front of a PgServer, its admin console
- haproxy:   HAProxy 2.6 routing by pgtrackd's health API, its config,
             which servers are UP (stats socket)
- daemons:   what pgtrackd and pgtrack-notify processes have in common
- trackd:    pgtrackd: config rendering, Trackd, its log lines, -t checks,
             a watcher of track files
- notify:    pgtrack-notify: Notify, its config, -t runs
- fifo:      keepalived's notify FIFO and its lines
- netns:     network namespaces
- shell:     pieces of the classic keepalived notify scripts
- bench:     what the benchmarks share: log, strict wait, figures, set-up,
             teardown, a program under measurement

Every process started here is stopped by PID; nothing is found by name.
Scripts outside tests/ put this directory's parent on sys.path first:

    sys.path.insert(0, os.path.join(REPO, "tests"))
"""

import os


class KitError(Exception):
    """A helper of the kit could not do what it was asked."""


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def project_version():
    """The version meson.build gives the project."""
    import re
    with open(os.path.join(REPO, "meson.build")) as f:
        return re.search(r"version:\s*'([^']+)'", f.read()).group(1)
