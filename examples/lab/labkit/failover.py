"""The lab's failover: promoting the best standby, standbys following it, rebuilding."""

import shutil
import threading
import time

from labkit.layout import LabError, PG_BIN, PG_PORT, PG_USER, VALUE_DOWN, VALUE_PRIMARY
from labkit.writer import quote_literal

# How long a promotion waits for a standby to stream from the candidate
# (synchronous replication: see LabFailover._wait_for_a_follower).
FOLLOWER_WAIT_S = 2.0


class LabFailover:
    """The lab's own failover (its promoter and follower threads) and what a test does to nodes after one."""

    def _promote_loop(self):
        handled = set()
        while not self._stop.is_set():
            p = self.primary
            try:
                # mode classic has no track file: the postmaster alone
                if p is not None and (p.name, p.postmaster_pid()) not in handled \
                        and (self.classic or p.track_value() == VALUE_DOWN) and not p.postmaster_alive():
                    key = (p.name, p.postmaster_pid())
                    handled.add(key)
                    t = time.time()
                    self.event(p, "detect", "the lab sees %s down (%sno postmaster)"
                               % (p.name, "" if self.classic else "track file %d, " % VALUE_DOWN), t=t)
                    crash = self.crash_times.get(p.name)
                    base = crash if crash is not None and t - crash < 10 else t
                    if self._stop.wait(max(0.0, base + self.promote_delay - time.time())):
                        return
                    if self.auto_promote and self.primary is p:
                        try:
                            self.promote_best(old=p)
                        except Exception as e:
                            self.event(None, "promote_failed", "promotion failed: %s" % e)
                            self.log("lab: promotion failed: %s" % e)
            except Exception as e:  # keep watching
                self.log("lab: promoter: %s" % e)
            self._stop.wait(0.01)

    def _follow_loop(self):
        """repmgr mode: repmgrd promotes; the lab only notices which node
        became the primary (its pgtrackd writes VALUE_PRIMARY and it is not in
        recovery) once the one it knew is down."""
        while not self._stop.is_set():
            try:
                p = self.primary
                if p is not None and p.track_value() == VALUE_DOWN and not p.postmaster_alive():
                    for n in self.nodes:
                        if n is not p and n.track_value() == VALUE_PRIMARY and n.postmaster_alive() \
                                and not n.in_recovery():
                            self.primary = n
                            self.event(n, "new_primary", "the lab sees %s as the new primary" % n.name)
                            self.save_state()
                            break
            except Exception as e:  # keep watching
                self.log("lab: follower: %s" % e)
            self._stop.wait(0.05)

    def candidates(self, old=None):
        """Running standbys with their WAL positions, best first: highest
        received (or replayed) LSN, then the VIP holder, then lowest node."""
        holder = None
        try:
            holder = self.vip_holder()
        except LabError:
            pass
        out = []
        for n in self.nodes:
            if n is old or not n.postmaster_alive():
                continue
            try:
                rec, recv, replay = n.pg("SELECT pg_is_in_recovery(), "
                                         "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint, "
                                         "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")[0]
            except Exception:
                continue
            if rec:
                out.append({"node": n, "receive": recv, "replay": replay,
                            "lsn": max(recv or 0, replay or 0), "vip": n is holder})
        out.sort(key=lambda c: (-c["lsn"], not c["vip"], c["node"].k))
        return out

    def promote_best(self, old=None):
        cands = self.candidates(old)
        if not cands:
            raise LabError("no running standby to promote")
        return self.promote(cands[0]["node"], cands)

    def promote(self, node, cands=None):
        """pg_promote() on node, every other running standby re-pointed at it
        first: they stream from it while it is still a standby (cascading)
        and follow its new timeline within milliseconds of the promotion.
        The promotion waits (up to FOLLOWER_WAIT_S) until one streams: with
        a fixed quorum so that it is there when the new primary starts
        taking writes (re-pointed after the promotion, its first commit
        waited 100-300 ms for a standby); through pgtrackd's policy so that
        their WAL receivers do not restart against it while it promotes
        (that cost its first writes 40-60 ms on a 2-core machine)."""
        node = self.node(node)
        detail = ", ".join("%s lsn %d%s" % (c["node"].name, c["lsn"], " (VIP)" if c["vip"] else "")
                           for c in cands) if cands else ""
        self.event(node, "promote_start", "pg_promote() on %s%s" % (node.name, " [%s]" % detail if detail else ""))
        old = self.primary
        followers = [n for n in self.nodes if n is not node and n is not old and n.postmaster_alive()]
        threads = [threading.Thread(target=self._repoint, args=(n, node), daemon=True,
                                    name="lab-repoint-" + n.name) for n in followers]
        for t in threads:
            t.start()
        try:
            if followers:
                self._wait_for_a_follower(node, FOLLOWER_WAIT_S)
            ok = node.pg("SELECT pg_promote(true, 30)", timeout=35)[0][0]
        finally:
            for t in threads:
                t.join(15)
        if not ok:
            raise LabError("pg_promote() on %s returned false" % node.name)
        self.event(node, "promote_done", "%s promoted" % node.name)
        self.primary = node
        self.save_state()
        return node

    def _wait_for_a_follower(self, node, timeout):
        """Promote once a standby streams from node (they all follow its new
        timeline then), or after timeout all the same."""
        import psycopg
        t0 = time.time()
        try:
            with psycopg.connect(host=str(node.sock), port=PG_PORT, dbname="postgres", user=PG_USER,
                                 connect_timeout=2, autocommit=True, application_name="labkit") as conn:
                while time.time() - t0 < timeout:
                    if conn.execute("SELECT count(*) FROM pg_stat_replication "
                                    "WHERE state = 'streaming'").fetchone()[0] > 0:
                        self.event(node, "follower", "a standby streams from %s (%.0f ms)"
                                   % (node.name, (time.time() - t0) * 1e3))
                        return True
                    time.sleep(0.01)
        except Exception as e:
            self.event(node, "follower_wait_failed", "waiting for a standby of %s: %s" % (node.name, e))
            return False
        self.event(node, "follower_timeout", "no standby streams from %s after %.1f s; promoting all the same"
                   % (node.name, timeout))
        return False

    def _repoint(self, n, primary):
        try:
            if not n.in_recovery():
                return
            conninfo = "host=%s port=%d user=%s application_name=%s" % (primary.ip, PG_PORT, PG_USER, n.name)
            n.pg("ALTER SYSTEM SET primary_conninfo = %s" % quote_literal(conninfo))
            n.pg("SELECT pg_reload_conf()")
            self.event(n, "repoint", "%s now follows %s" % (n.name, primary.name))
        except Exception as e:
            self.event(n, "repoint_failed", "could not re-point %s: %s" % (n.name, e))

    def restart_as_primary(self, node):
        """Start a node's PostgreSQL as it is: a dead old primary comes back
        as a primary on its old timeline (the stale-primary case)."""
        node = self.node(node)
        if (node.data / "standby.signal").exists():
            raise LabError("%s has standby.signal: it would start as a standby" % node.name)
        self.event(node, "restart_primary", "%s restarted as a primary" % node.name)
        node.start_postgres()

    def rebuild_standby(self, node):
        """Throw away node's data directory and clone it again from the
        current primary (pg_basebackup -R over the lab network)."""
        node = self.node(node)
        if node is self.primary:
            raise LabError("%s is the primary" % node.name)
        if node.postmaster_alive():
            node.stop_postgres("immediate")
        shutil.rmtree(node.data)
        node.data.mkdir(mode=0o700)
        shutil.chown(node.data, PG_USER, PG_USER)
        node.run([PG_BIN / "pg_basebackup", "-h", self.primary.ip, "-p", PG_PORT, "-U", PG_USER,
                  "-D", node.data, "-R", "-X", "stream", "-c", "fast", "-N"], user=PG_USER, timeout=300)
        node.write_node_conf()
        node.start_postgres()
        self.event(node, "rebuilt", "%s rebuilt as a standby of %s" % (node.name, self.primary.name))
