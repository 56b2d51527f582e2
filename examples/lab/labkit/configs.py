"""The lab's configuration files, generated per node: postgresql.conf,
pg_hba.conf, pgbouncer, pgtrack-notify, pgtrackd, repmgr, keepalived (with
pgtrackd, or classic: vrrp_scripts and notify scripts)."""

from kit.haproxy import render_config, Server
from kit.shell import with_running
from labkit.layout import (ADMIN_USER, APPDB, BASE_PRIORITY, BOUNCER_PORT, CLASSIC_INTERVAL,
                           CLASSIC_WEIGHT_ISREADY, CLASSIC_WEIGHT_ROLE, CLIENT_IP, HTTP_PORT, INSTANCE,
                           LIFELINE_IF, PG_BIN, PG_PORT, PG_USER, PGBOUNCER, PREFIXLEN, ROUTER_READ_PORT,
                           ROUTER_WRITE_PORT, SUBNET, TRACKD_RT_PRIORITY, VIP, VRID)


def postgresql_conf_extra(repmgr=False):
    return ("shared_preload_libraries = 'repmgr'\n" if repmgr else "") + """
# ---- labkit ----
port = %d
wal_level = replica
hot_standby = on
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
wal_retrieve_retry_interval = '200ms'
shared_buffers = '32MB'
# segments in the data directory, removed with it: a kill -9 leaves nothing in /dev/shm
dynamic_shared_memory_type = mmap
max_connections = 60
synchronous_commit = on
logging_collector = off
log_line_prefix = '%%m [%%p] '
log_timezone = 'UTC'
include_if_exists = 'node.conf'
""" % PG_PORT


PG_HBA = """# labkit: trust inside the lab subnet only
local   all           all                 trust
local   replication   all                 trust
host    all           all   %s.0/%d   trust
host    replication   all   %s.0/%d   trust
""" % (SUBNET, PREFIXLEN, SUBNET, PREFIXLEN)


def pgbouncer_ini(node, logfile=False):
    return """;; labkit: pgbouncer for %(name)s, fenced by pgtrack-notify unless MASTER
[databases]
%%include %(bdir)s/databases.ini

[pgbouncer]
listen_addr = *
listen_port = %(bport)d
unix_socket_dir = %(sock)s
pidfile = %(bdir)s/pgbouncer.pid
auth_type = trust
auth_file = %(bdir)s/userlist.txt
admin_users = %(admin)s
pool_mode = transaction
max_client_conn = 300
default_pool_size = 20
; a client that logged in during pgtrack-notify's hold waits this long after RESUME
server_login_retry = 0.05
ignore_startup_parameters = extra_float_digits
""" % dict(name=node.name, bdir=node.bouncer_dir, sock=node.sock, bport=BOUNCER_PORT, admin=ADMIN_USER) + \
        ("logfile = %s/pgbouncer.log\n" % node.bouncer_dir if logfile else "")


def databases_template(node):
    return ("; Written by pgtrack-notify from %s/databases.tmpl.\n"
            "%s = host=%s port=%d dbname=%s\n" % (node.dir, APPDB, node.sock, PG_PORT, APPDB))


def notify_conf(node):
    return """; labkit: pgtrack-notify for %(name)s
[notify]
fifo = %(fifo)s
fifo_owner = root
instance = %(inst)s
vip = %(vip)s
reconcile_interval = 2s

[pgbouncer]
host = %(sock)s
port = %(bport)d
user = %(admin)s
connect_timeout = 1s
command_timeout = 2s
databases = %(db)s
databases_file = %(bdir)s/databases.ini
databases_template = %(dir)s/databases.tmpl
retry_max = 1s

[postgres]
host = %(sock)s
port = %(pgport)d
user = %(pguser)s
dbname = postgres
hold_poll = 5ms
hold_timeout = %(hold_timeout)s
""" % dict(name=node.name, hold_timeout=node.lab.hold_timeout, fifo=node.fifo, inst=INSTANCE, vip=VIP, sock=node.sock, bport=BOUNCER_PORT,
           admin=ADMIN_USER, db=APPDB, bdir=node.bouncer_dir, dir=node.dir, pgport=PG_PORT,
           pguser=PG_USER)


def trackd_conf(node, interval):
    peers = "".join("peer.%s = %s\n" % (p.name, p.ip) for p in node.peers())
    return """; labkit: pgtrackd for %(name)s
[global]
file_check_interval = 200ms
; SCHED_RR 40 and RLIMIT_RTTIME 1 s by default (as root, no limit in the way); 0 with trackd_rt=False
realtime_priority = %(rt)d

[track main]
file = %(file)s
host = %(sock)s
port = %(port)d
dbname = postgres
user = %(user)s
application_name = pgtrackd
; the default values (primary 54, standby 53 minus its WAL rank) on keepalived's base
base_priority = %(base)d
node = %(name)s
connect_timeout = 1s
interval = %(interval)dms
timeout = 1s
rise = 2
fall = 2
accept_interval = 1s
%(peers)s""" % dict(name=node.name, file=node.track_file, sock=node.sock, port=PG_PORT, user=PG_USER,
                    interval=interval, peers=peers, base=BASE_PRIORITY,
                    rt=TRACKD_RT_PRIORITY if node.lab.trackd_rt else 0) + (
        "; synchronous while the standby streams, relaxed when a commit waits 5 s for it\n"
        "sync_standby_names = ANY 1 (*)\n" if node.lab.sync_policy else "") + (
        trackd_http(node) if node.lab.router == "haproxy" else "")


def trackd_http(node):
    """pgtrackd's health API on the node's address, for HAProxy's checks
    from the client namespace (and only from the lab subnet)."""
    return """
; the health API HAProxy checks (OPTIONS /primary, /replica?lag=16MB)
[http]
listen = %s:%d
allow = %s.0/%d
""" % (node.ip, HTTP_PORT, SUBNET, PREFIXLEN)


def haproxy_conf(lab, stats_socket):
    """HAProxy in the client namespace, as examples/haproxy/haproxy.cfg:
    CLIENT_IP:5000 to the node whose pgtrackd says /primary 200,
    CLIENT_IP:5001 to those saying /replica?lag=16MB 200; PostgreSQL
    itself behind them (no pgbouncer: HAProxy is the router here)."""
    servers = [Server(n.name, n.ip, PG_PORT, HTTP_PORT) for n in lab.nodes]
    return render_config(servers, "%s:%d" % (CLIENT_IP, ROUTER_WRITE_PORT),
                         "%s:%d" % (CLIENT_IP, ROUTER_READ_PORT), stats_socket)


def repmgr_conf(node):
    conf = node.dir / "repmgr.conf"
    return """# labkit: repmgr for %(name)s
node_id=%(k)d
node_name='%(name)s'
# keepalives, tcp_user_timeout: a repmgrd waiting on a connection to a node
# the network cut off gives up within seconds, not after TCP's retries
conninfo='host=%(ip)s port=%(port)d user=repmgr dbname=repmgr connect_timeout=2 keepalives_idle=2 keepalives_interval=1 keepalives_count=2 tcp_user_timeout=3000'
data_directory='%(data)s'
pg_bindir='%(bindir)s'
use_replication_slots=false
failover='automatic'
promote_command='%(bindir)s/repmgr standby promote -f %(conf)s --log-to-file'
follow_command='%(bindir)s/repmgr standby follow -f %(conf)s --log-to-file --upstream-node-id=%%n'
service_restart_command='%(bindir)s/pg_ctl -D %(data)s -l %(dir)s/postgresql.log -w -t 60 -m fast restart'
monitor_interval_secs=%(monitor)d
reconnect_attempts=%(attempts)d
reconnect_interval=%(reconnect)d
primary_notification_timeout=10
standby_reconnect_timeout=60
log_level='INFO'
log_file='%(dir)s/repmgr/repmgrd.log'
repmgrd_pid_file='%(dir)s/repmgr/repmgrd.pid'
""" % dict(name=node.name, k=node.k, ip=node.ip, port=PG_PORT, data=node.data, bindir=PG_BIN, conf=conf,
           dir=node.dir, monitor=node.lab.repmgr_pace[0], attempts=node.lab.repmgr_pace[1],
           reconnect=node.lab.repmgr_pace[2])


def vrrp_instance(node, priority, tracking):
    """The lab's one vrrp_instance: unicast to the other nodes, the VIP;
    priority and tracking (lines) are the configuration's own."""
    peers = "".join("        %s\n" % p.ip for p in node.peers())
    return """vrrp_instance %(inst)s {
    state BACKUP
    interface eth0
    virtual_router_id %(vrid)d
%(priority)s    advert_int 1
    unicast_src_ip %(ip)s
    unicast_peer {
%(peers)s    }
    virtual_ipaddress {
        %(vip)s/%(plen)d dev eth0
    }
%(tracking)s}
""" % dict(inst=INSTANCE, vrid=VRID, priority=priority, ip=node.ip, peers=peers, vip=VIP, plen=PREFIXLEN,
           tracking=tracking)


# keepalived's VRRP process on real-time scheduling; its default RLIMIT_RTTIME
# (10 ms of CPU without blocking) got it killed at start and at MASTER
# transitions, hence the limit raised with it
VRRP_RT = """    vrrp_rt_priority 50
    vrrp_rlimit_rttime 1000000
"""


def keepalived_conf(node):
    return """# labkit: keepalived for %(name)s (lab %(id)s)
global_defs {
    # script_user first: see examples/keepalived-notify.conf
    script_user root
    enable_script_security
    notify_fifo %(fifo)s
    router_id %(ns)s
    # pgtrackd0 (below) disappears whenever pgtrackd dies
    dynamic_interfaces
%(rt)s}

track_file pgtrackd_main {
    file %(track)s
    weight 1
}

# In production, a dead pgtrackd is caught by
#     vrrp_track_process pgtrackd_running { process pgtrackd weight 0 }
# (examples/keepalived-3node.conf). That needs the kernel's process-events
# connector, which exists only in the initial network namespace: in this
# lab keepalived would never see pgtrackd exit. Instead pgtrackd runs
# holding the TAP interface %(lifeline)s (examples/lab/lifeline.py), which
# the kernel deletes the moment pgtrackd dies: same effect, dead tracker =
# FAULT, nothing forked.

""" % dict(name=node.name, id=node.lab.id, fifo=node.fifo, ns=node.ns, track=node.track_file,
           lifeline=LIFELINE_IF, rt=VRRP_RT if node.lab.vrrp_rt else "") + vrrp_instance(
        node, "    # pgtrackd's layout: primary 254, standbys 253 down (pgtrackd(8))\n"
              "    priority %d\n" % BASE_PRIORITY,
        "    track_file {\n        pgtrackd_main\n    }\n"
        "    track_interface {\n        %s\n    }\n" % LIFELINE_IF)


def classic_keepalived_conf(node):
    return """# labkit: keepalived for %(name)s (lab %(id)s), the CLASSIC configuration:
# shell checks every %(iv)d s and notify scripts, no pgtrackd, no pgtrack-notify
global_defs {
    script_user root
    enable_script_security
    router_id %(ns)s
}

vrrp_script chk_pg_isready {
    script "%(bindir)s/pg_isready -h %(sock)s -p %(port)d -U %(user)s -q"
    interval %(iv)d
    weight %(w1)d
}

# fails unless psql -tAc 'SELECT pg_is_in_recovery()' prints f
vrrp_script chk_pg_primary {
    script "%(dir)s/chk_pg_primary.sh"
    interval %(iv)d
    weight %(w2)d
}

""" % dict(name=node.name, id=node.lab.id, ns=node.ns, iv=CLASSIC_INTERVAL, bindir=PG_BIN, sock=node.sock,
           port=PG_PORT, user=PG_USER, w1=CLASSIC_WEIGHT_ISREADY, w2=CLASSIC_WEIGHT_ROLE, dir=node.dir) + vrrp_instance(
        node, "    priority 100\n",
        "    track_script {\n        chk_pg_isready\n        chk_pg_primary\n    }\n"
        "    notify_master \"%(dir)s/notify_pgbouncer.sh MASTER\"\n"
        "    notify_backup \"%(dir)s/notify_pgbouncer.sh BACKUP\"\n" % dict(dir=node.dir))


def classic_role_check(node):
    return """#!/bin/sh
# labkit, mode classic: keepalived vrrp_script, succeeds only on a primary
r=$(%(bindir)s/psql -X -h %(sock)s -p %(port)d -U %(user)s -d postgres -tAc 'SELECT pg_is_in_recovery()' 2>/dev/null)
[ "$r" = f ]
""" % dict(bindir=PG_BIN, sock=node.sock, port=PG_PORT, user=PG_USER)


def classic_notify_script(node):
    return with_running("""#!/bin/bash
# labkit, mode classic: keepalived notify script for pgbouncer, the classic way.
#   notify_master "$0 MASTER": install the databases file, restart pgbouncer
#   notify_backup "$0 BACKUP": stop pgbouncer
# stop = SIGINT to the PID in pgbouncer's pidfile and wait for the exit (as
# systemctl stop with Debian's unit, KillSignal=SIGINT, TimeoutStopSec=90s);
# start = as postgres, daemonized.

STATE=$1
PIDFILE=%(bdir)s/pgbouncer.pid
CONF=%(bdir)s/pgbouncer.ini
DBFILE=%(bdir)s/databases.ini
TEMPLATE=%(dir)s/databases.tmpl
LOG=%(dir)s/notify-classic.log

log() {
    echo "$(date +%%s.%%N) classic-notify: $STATE: $*" >> "$LOG"
}

@SH_RUNNING@

stop_pgbouncer() {
    local pid i
    pgbouncer_pid || return 0
    kill -INT "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 9000; i++)); do
        if ! running "$pid"; then
            log "pgbouncer stopped (PID $pid)"
            return 0
        fi
        sleep 0.01
    done
    kill -KILL "$pid" 2>/dev/null
    log "pgbouncer stopped (PID $pid, SIGKILL after 90 s)"
}

start_pgbouncer() {
    if runuser -u %(user)s -- %(pgbouncer)s -d -q "$CONF"; then
        log "pgbouncer started"
    else
        log "pgbouncer failed to start"
    fi
}

log "notify script started"
case "$STATE" in
    MASTER)
        cp "$TEMPLATE" "$DBFILE.new" && chmod 644 "$DBFILE.new" && mv -f "$DBFILE.new" "$DBFILE"
        log "databases file installed"
        stop_pgbouncer
        start_pgbouncer
        ;;
    BACKUP|FAULT|STOP)
        stop_pgbouncer
        ;;
esac
""" % dict(bdir=node.bouncer_dir, dir=node.dir, user=PG_USER, pgbouncer=PGBOUNCER))
