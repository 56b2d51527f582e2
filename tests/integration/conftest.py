"""Fixtures: real PostgreSQL 15 servers and pgtrackd processes.

Run as root:  /usr/bin/python3 -m pytest tests/integration
PGTRACKD=/abs/path/to/pgtrackd overrides the binary (default: build/src/trackd/pgtrackd).
"""

import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                         # the test modules import each other's helpers
sys.path.insert(0, os.path.dirname(HERE))        # tests/: the kit

from kit.pgserver import PgServer  # noqa: E402
from kit.trackd import Trackd, default_binary  # noqa: E402

# role and password for the authentication tests
PW_ROLE = "pgtrackd_pw"
PW_GOOD = "Good-Secret-7f3c9a1e"
PW_BAD = "Wrong-Secret-0b5d2e8c"


def pytest_configure(config):
    if os.geteuid() != 0:
        why = "the integration tests run as root (they start PostgreSQL via runuser)"
        skip = os.environ.get("PGTRACKD_IT_SKIP_STATUS")      # set by the meson test: 77, skipped
        if skip:
            pytest.exit(why, returncode=int(skip))
        raise pytest.UsageError(why)


@pytest.fixture(scope="session")
def pgtrackd_bin():
    path = default_binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("pgtrackd binary not found at %s: build it (meson setup build && "
                    "ninja -C build) or set PGTRACKD" % path, pytrace=False)
    return path


@pytest.fixture(scope="session")
def pg_template():
    base = PgServer.make_template()
    yield base
    shutil.rmtree(base, ignore_errors=True)


class ServerFactory:
    """Creates servers and destroys all of them, in reverse order."""

    def __init__(self, template):
        self.template = template
        self.servers = []

    def primary(self, name="primary", start=True):
        srv = PgServer.primary_from_template(self.template, name)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def replica(self, primary, name="replica", start=True):
        srv = PgServer.replica_of(primary, name)
        self.servers.append(srv)
        if start:
            srv.start()
            assert srv.in_recovery()
        return srv

    def destroy(self):
        errors = []
        for srv in reversed(self.servers):
            try:
                srv.destroy()
            except Exception as e:  # keep cleaning up the others
                errors.append(e)
        self.servers = []
        if errors:
            raise errors[0]


@pytest.fixture
def servers(pg_template):
    """Fresh servers for tests that kill, stop or promote them."""
    f = ServerFactory(pg_template)
    try:
        yield f
    finally:
        f.destroy()


class Cluster:
    def __init__(self, primary, replica):
        self.primary = primary
        self.replica = replica


@pytest.fixture(scope="module")
def cluster(pg_template):
    """One primary + streaming replica shared by the tests of a module that
    leave them as they found them. The primary has a scram role PW_ROLE that
    must use its password over TCP 127.0.0.1 and over the unix socket."""
    f = ServerFactory(pg_template)
    try:
        primary = f.primary("primary")
        primary.sql("SET password_encryption = 'scram-sha-256'; "
                    "CREATE ROLE %s LOGIN PASSWORD '%s'" % (PW_ROLE, PW_GOOD))
        primary.add_hba_first("local all %s scram-sha-256\n"
                              "host all %s 127.0.0.1/32 scram-sha-256" % (PW_ROLE, PW_ROLE))
        replica = f.replica(primary, "replica")
        yield Cluster(primary, replica)
    finally:
        f.destroy()


class TrackdFactory:
    def __init__(self, binary):
        self.binary = binary
        self.instances = []
        self.bases = []

    def new(self):
        base = tempfile.mkdtemp(prefix="pgtrackd-it-trackd-")
        self.bases.append(base)
        t = Trackd(self.binary, base)
        self.instances.append(t)
        return t

    def start(self, tracks, global_opts=None):
        """Write a config with these tracks and start pgtrackd on it."""
        t = self.new()
        t.write_config(tracks, global_opts)
        t.start()
        return t

    def destroy(self):
        for t in reversed(self.instances):
            try:
                t.close()
            except Exception:
                pass
        for b in self.bases:
            shutil.rmtree(b, ignore_errors=True)


@pytest.fixture
def trackd(pgtrackd_bin):
    f = TrackdFactory(pgtrackd_bin)
    try:
        yield f
    finally:
        f.destroy()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="pgtrackd-it-work-")
    yield d
    shutil.rmtree(d, ignore_errors=True)
