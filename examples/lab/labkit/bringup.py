"""Bringing a lab up: checks, namespaces, PostgreSQL and its replicas, the daemons."""

import os
import shutil
import sys
import threading
import time
from pathlib import Path

from kit.files import write_file
from labkit.configs import (classic_keepalived_conf, classic_notify_script, classic_role_check,
                            databases_template, keepalived_conf, notify_conf, PG_HBA, pgbouncer_ini,
                            postgresql_conf_extra, repmgr_conf, trackd_conf)
from labkit.events import AddrMonitor, parse_classic
from labkit.layout import (ADMIN_USER, APPDB, BOUNCER_PORT, CLASSIC_INTERVAL, HAPROXY, INSTANCE, KEEPALIVED,
                           LabError, PG_BIN, PG_PORT, PG_USER, PGBOUNCER, PREFIXLEN, PYTHON, RANK_STEP,
                           run, SUBNET, VALUE_PRIMARY, VALUE_STANDBY, VIP, wait_for)
from labkit.network import LabNetwork


class LabBringUp(LabNetwork):
    """Bringing a lab up: preflight checks, network, PostgreSQL, repmgr, the daemons."""

    def _preflight(self):
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, PostgreSQL as postgres)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise LabError("psycopg cannot be imported by %s: run the lab with %s (Debian's python3-psycopg)"
                           % (sys.executable, PYTHON))
        progs = [PG_BIN / "postgres", PG_BIN / "initdb", PG_BIN / "pg_basebackup", Path(PGBOUNCER),
                 Path(KEEPALIVED)]
        if self.classic:
            progs += [PG_BIN / "pg_isready", PG_BIN / "psql"]
        else:
            progs = [self.trackd_bin, self.notify_bin] + progs
        if self.repmgr:
            progs += [PG_BIN / "repmgr", PG_BIN / "repmgrd"]
        if self.router == "haproxy":
            progs.append(Path(HAPROXY))
        missing = [str(p) for p in progs if not os.access(p, os.X_OK)]
        if missing:
            raise LabError("missing programs: %s (tests/install-deps; ninja -C build)" % ", ".join(missing))
        for tool in ("ip", "setpriv") + (("runuser",) if self.classic else ()):
            if not shutil.which(tool):
                raise LabError("%s not found" % tool)
        if not self.classic and not os.path.exists("/dev/net/tun"):
            raise LabError("/dev/net/tun is missing (needed for the pgtrackd lifeline)")
        if os.environ.get("PGTRACKD_LAB_SKIP_SUBNET_CHECK") != "1":
            r = run(["ip", "-4", "-o", "addr", "show"], check=False, timeout=10).stdout + \
                run(["ip", "-4", "route", "show"], check=False, timeout=10).stdout
            if (SUBNET + ".") in r:
                raise LabError("the root namespace already has an address or route in %s.0/%d: "
                               "refusing to build a lab that would shadow it" % (SUBNET, PREFIXLEN))

    def up(self):
        self._preflight()
        t0 = time.monotonic()
        self.log("lab %s: %d nodes, namespaces %s-*, directory %s" % (self.id, self.n, self.prefix, self.dir))
        self._created = True
        self.save_state()          # before anything exists, so cleanup finds it
        self.dir.mkdir(mode=0o755)
        self.run_dir.mkdir(mode=0o755)
        self.tailer.start()
        self._network()
        self._postgres()
        self._daemons()
        self._router_up()
        self.log("lab %s: up in %.1fs; VIP %s on %s" % (self.id, time.monotonic() - t0, VIP, self.primary.name))
        if self.auto_promote:
            self._promoter = threading.Thread(target=self._promote_loop, daemon=True, name="lab-promoter")
            self._promoter.start()
        elif self.repmgr:
            self._promoter = threading.Thread(target=self._follow_loop, daemon=True, name="lab-follower")
            self._promoter.start()
        return self

    def _postgres(self):
        for n in self.nodes:
            n.dir.mkdir(mode=0o755)
            for d in (n.sock, n.bouncer_dir):
                d.mkdir(mode=0o755)
                shutil.chown(d, PG_USER, PG_USER)
            n.track_dir.mkdir(mode=0o755, parents=True)
        p = self.nodes[0]
        self.log("postgres: initdb %s (primary, %s)" % (p.name, p.ip))
        p.data.mkdir(mode=0o700)
        shutil.chown(p.data, PG_USER, PG_USER)
        p.run([PG_BIN / "initdb", "-D", p.data, "-A", "trust", "-U", PG_USER, "-N"], user=PG_USER)
        with open(p.data / "postgresql.conf", "a") as f:
            f.write(postgresql_conf_extra(self.repmgr))
        write_file(p.data / "pg_hba.conf", PG_HBA, 0o600, PG_USER)
        p.write_node_conf(sync=False)
        p.start_postgres()
        p.pg("CREATE DATABASE " + APPDB)
        p.pg("CREATE TABLE lab_writes (seq bigint PRIMARY KEY, node text NOT NULL, "
             "at timestamptz NOT NULL DEFAULT clock_timestamp())", dbname=APPDB)
        if self.repmgr:
            p.pg("CREATE USER repmgr SUPERUSER")
            p.pg("CREATE DATABASE repmgr OWNER repmgr")
        self.primary = p
        for n in self.nodes[1:]:
            self.log("postgres: pg_basebackup -R of %s from %s over the lab network" % (n.name, p.name))
            n.data.mkdir(mode=0o700)
            shutil.chown(n.data, PG_USER, PG_USER)
            n.run([PG_BIN / "pg_basebackup", "-h", p.ip, "-p", PG_PORT, "-U", PG_USER, "-D", n.data,
                   "-R", "-X", "stream", "-c", "fast", "-N"], user=PG_USER, timeout=300)
            n.write_node_conf(sync=False)
            n.start_postgres()
        names = sorted(n.name for n in self.nodes[1:])
        wait_for(lambda: sorted(r[0] for r in p.pg("SELECT application_name FROM pg_stat_replication "
                                                   "WHERE state = 'streaming'")) == names,
                 30, 0.1, "replicas streaming from %s" % p.name)
        if self.sync:
            self.log("postgres: synchronous replication, synchronous_standby_names = 'ANY 1 (*)' on every node")
            for n in self.nodes:
                n.write_node_conf(sync=True)
                n.pg("SELECT pg_reload_conf()")
            wait_for(lambda: p.pg("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'")[0][0]
                     == self.n - 1, 15, 0.1, "quorum standbys")
        if self.repmgr:
            self._repmgr_setup()
        self.save_state()

    def _repmgr_setup(self):
        self.log("repmgr: register the nodes, start repmgrd (automatic failover) on each")
        for n in self.nodes:
            write_file(n.dir / "repmgr.conf", repmgr_conf(n), 0o644)
        p = self.nodes[0]
        p.run([PG_BIN / "repmgr", "-f", p.dir / "repmgr.conf", "primary", "register"], user=PG_USER)
        # standby register reads repmgr.nodes on the standby itself: wait
        # until each has replayed the primary's registration (a busy machine
        # was seen to lag behind it)
        lsn = p.pg("SELECT pg_current_wal_lsn()::text")[0][0]
        for n in self.nodes[1:]:
            wait_for(lambda: n.pg("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0],
                     30, 0.05, "%s replaying the primary's repmgr registration" % n.name)
            n.run([PG_BIN / "repmgr", "-f", n.dir / "repmgr.conf", "standby", "register"], user=PG_USER)
        for n in self.nodes:
            n.start_repmgrd()

    def _daemons(self):
        if self.classic:
            return self._daemons_classic()
        for n in self.nodes:
            write_file(n.bouncer_dir / "pgbouncer.ini", pgbouncer_ini(n), 0o644, PG_USER)
            write_file(n.bouncer_dir / "userlist.txt", '"%s" ""\n"%s" ""\n' % (PG_USER, ADMIN_USER), 0o640, PG_USER)
            write_file(n.dir / "databases.tmpl", databases_template(n))
            write_file(n.bouncer_dir / "databases.ini", databases_template(n), 0o644, PG_USER)
            write_file(n.dir / "pgtrack-notify.conf", notify_conf(n))
            write_file(n.dir / "pgtrackd.conf", trackd_conf(n, self.interval_ms))
            write_file(n.dir / "keepalived.conf", keepalived_conf(n))
            run([self.trackd_bin, "-t", "-f", n.dir / "pgtrackd.conf"])
            run([self.notify_bin, "-t", "-f", n.dir / "pgtrack-notify.conf"])
        self.log("daemons: pgbouncer, pgtrack-notify, pgtrackd on every node")
        for n in self.nodes:
            n.start_pgbouncer()
            n.start_notify()
            n.start_trackd()
        lowest = VALUE_STANDBY - (len(self.nodes) - 2) * RANK_STEP
        for n in self.nodes:
            if n is self.primary:
                wait_for(lambda: n.track_value() == VALUE_PRIMARY, 20, 0.05,
                         "%s: track file = %d" % (n.name, VALUE_PRIMARY))
            else:
                wait_for(lambda: lowest <= (n.track_value() or -999) <= VALUE_STANDBY, 20, 0.05,
                         "%s: track file = a standby rank, %d..%d" % (n.name, lowest, VALUE_STANDBY))
        if self.sync_policy:
            p = self.primary
            wait_for(lambda: p.pg("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'")[0][0]
                     == self.n - 1, 15, 0.1, "pgtrackd turning synchronous replication on")
            self.log("postgres: synchronous replication by pgtrackd (sync_standby_names = ANY 1 (*)), "
                     "relaxed when a commit waits 5 s for the standby")
        self._keepalived_up("daemons: keepalived on every node (unicast VRRP, %s, VIP %s)"
                            % (INSTANCE, VIP), False, "pgbouncer serving on %s only")

    def _daemons_classic(self):
        """Mode classic: keepalived with the shell checks and the notify
        script, which starts pgbouncer (daemonized) on the MASTER only."""
        for n in self.nodes:
            write_file(n.bouncer_dir / "pgbouncer.ini", pgbouncer_ini(n, logfile=True), 0o644, PG_USER)
            write_file(n.bouncer_dir / "userlist.txt", '"%s" ""\n"%s" ""\n' % (PG_USER, ADMIN_USER), 0o640, PG_USER)
            write_file(n.dir / "databases.tmpl", databases_template(n))
            write_file(n.bouncer_dir / "databases.ini", databases_template(n), 0o644, PG_USER)
            write_file(n.dir / "chk_pg_primary.sh", classic_role_check(n), 0o755)
            write_file(n.dir / "notify_pgbouncer.sh", classic_notify_script(n), 0o755)
            write_file(n.dir / "keepalived.conf", classic_keepalived_conf(n))
            (n.dir / "notify-classic.log").touch()
            self.tailer.watch(n.dir / "notify-classic.log", parse_classic, n.name)
        self._keepalived_up("daemons: keepalived on every node, classic configuration (vrrp_scripts "
                            "every %d s, notify scripts restarting pgbouncer; VIP %s)" % (CLASSIC_INTERVAL, VIP),
                            None, "pgbouncer running on %s only")

    def _keepalived_up(self, what, others, bouncers_what):
        """keepalived on every node; then the VIP on the primary, its
        pgbouncer serving, the others' bouncer_serving() == others (fenced:
        False; stopped: None), and a query through the VIP reaching it."""
        self.monitors = [AddrMonitor(n, self.events) for n in self.nodes]
        self.log(what)
        for n in self.nodes:
            n.start_keepalived()
        p = self.primary
        wait_for(lambda: self.vip_holders() == [p], 30, 0.1, "VIP on %s" % p.name)
        wait_for(lambda: p.bouncer_serving() is True and
                 all(n.bouncer_serving() is others for n in p.peers()),
                 30, 0.1, bouncers_what % p.name)
        r = wait_for(lambda: self.client_sql("SELECT current_setting('cluster_name')"), 20, 0.2,
                     "a query through %s:%d" % (VIP, BOUNCER_PORT))
        if r[0][0] != p.name:
            raise LabError("the VIP reached %s, expected %s" % (r[0][0], p.name))
        self.save_state()
