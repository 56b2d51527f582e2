"""What the stale-primary guard tests share: pgtrackd's default values,
three servers A, B, C of one cluster (the abc fixture) with their tracks
and peers, the rank and change lines, replication broken and restored."""

import re
import threading
import time

import pytest

from conftest import ServerFactory


PRIMARY = 54          # value_primary default (254 on base_priority 200)


STANDBY = 53          # value_standby default: the most advanced standby (rank 0)


RANK_STEP = 10        # rank_step default: value_standby falls this much per rank


LOWEST = STANDBY - 2 * RANK_STEP  # three nodes: the lowest rank, held until every peer was heard


STALE = -254          # value_stale default


CONFLICT = -254       # value_conflict default


LAGGING = -100        # value_lagging default


DOWN = -240           # value_down where it must differ from stale/conflict


RANKED = r"in recovery, rank \d of \d standbys by WAL position [0-9A-F]+/[0-9A-F]+"


CONFLICT_ERROR = ('pgtrackd: error: track "%s": conflict: peer %s is primary on timeline %d like '
                  'this server; neither may take writes until one is a standby. Stop or rebuild '
                  'one of them as a standby; until then this node stays at value_conflict')


def node_track(me, peers, **over):
    """Track options for server `me` with peer.NAME = SOCKDIR PORT for each (name, server),
    on pgtrackd's default values."""
    opts = me.track_options(legacy_values=False, **over)
    for name, srv in peers:
        opts["peer." + name] = "%s %d" % (srv.sockdir, srv.port)
    return opts


def rank_changes(t, name, start=0):
    """[(old rank, new rank, value, reason)] of the rank change lines of one track."""
    rx = re.compile(r'pgtrackd: info: track "%s": standby rank (\d+) -> (\d+), value (-?\d+) '
                    r'written to \S+ \((.*)\)$' % re.escape(name))
    out = []
    for line in t.log()[start:].splitlines():
        m = rx.search(line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)))
    return out


def lines_since(t, start, needle):
    return [l for l in t.log()[start:].splitlines() if needle in l]


def wait_standby(t, name, value, timeout=10):
    """The change line to standby (at whatever rank), then the value of the rank expected."""
    t.wait_for_log(r'pgtrackd: info: track "%s": \w+ -> standby, value \d+ written to ' % re.escape(name),
                   timeout)
    t.wait_for_value(name, value, 5)


def wait_caught_up(primary, *replicas):
    lsn = str(primary.sql("SELECT pg_current_wal_lsn()")[0][0])
    for r in replicas:
        r.wait_replayed(lsn)


class Abc:
    def __init__(self, a, b, c):
        self.a, self.b, self.c = a, b, c


def three_nodes(factory):
    a = factory.primary("A")
    b = factory.replica(a, "B")
    c = factory.replica(a, "C")
    return Abc(a, b, c)


def abc_tracks(n, names=("a", "b", "c"), **over):
    """Tracks a, b, c (or names) for servers n.a, n.b, n.c, each listing the other two."""
    srv = dict(zip(names, (n.a, n.b, n.c)))
    return {me: node_track(s, [(o, srv[o]) for o in names if o != me], node=me, **over)
            for me, s in srv.items()}


@pytest.fixture(scope="module")
def abc(pg_template):
    """A cluster shared by the tests that leave it as they found it."""
    f = ServerFactory(pg_template)
    try:
        yield three_nodes(f)
    finally:
        f.destroy()


# C, a standby beside B: second (a tie goes to the name first; behind B, it is second anyway)
C_STANDBY = STANDBY - RANK_STEP


class WriteLoop:
    """Small commits on a primary every 50 ms in a thread, for at most `limit` seconds."""

    def __init__(self, srv, limit=60.0):
        self.srv = srv
        self.limit = limit
        self.commits = 0
        self.error = None
        self._stop = threading.Event()
        srv.sql("CREATE TABLE IF NOT EXISTS guard_writes (at timestamptz, pad text)")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + self.limit
        try:
            with self.srv.connect() as conn:
                while not self._stop.is_set() and time.monotonic() < deadline:
                    conn.execute("INSERT INTO guard_writes VALUES (now(), repeat('w', 200))")
                    self.commits += 1
                    time.sleep(0.05)
        except Exception as e:             # reported by stop()
            self.error = e

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()
        self.srv.sql("DROP TABLE IF EXISTS guard_writes")


def break_replication(standby, port):
    """Point standby's primary_conninfo at a port nothing listens on; reload.
    Returns the setting to put back."""
    old = standby.sql("SHOW primary_conninfo")[0][0]
    assert old, "no primary_conninfo on %s" % standby.name
    standby.sql("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=%d user=postgres "
                "connect_timeout=2'" % port)
    standby.sql("SELECT pg_reload_conf()")
    return old


def restore_replication(standby, conninfo):
    standby.sql("ALTER SYSTEM SET primary_conninfo = '%s'" % conninfo.replace("'", "''"))
    standby.sql("SELECT pg_reload_conf()")


def wait_receiver(standby, streaming, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        n = standby.sql("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")[0][0]
        if (n == 1) == streaming:
            return
        assert time.monotonic() < deadline, "%s: WAL receiver streaming=%s for %ds" % (
            standby.name, not streaming, timeout)
        time.sleep(0.1)


RECEIVER_DOWN = (r"in recovery, WAL receiver not streaming for (\d+\.\d)s "
                 r"\((?:none running|status \w+); receiver_grace 2\.0s\)")
