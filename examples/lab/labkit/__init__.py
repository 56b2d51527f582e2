"""labkit: the pgtrackd lab, N PostgreSQL nodes in network namespaces.

    import labkit
    with labkit.Lab(nodes=3) as lab:        # up() ... down(), also on errors
        w = lab.writer()                    # client writing through VIP:6432
        lab.kill_postmaster(lab.primary)    # the lab promotes a replica 1 s later
        lab.wait_for(lambda: lab.vip_holder() is lab.primary, 30)
        w.stop()

What it builds, as root (see README.md beside this file):

- network namespaces PREFIX-n1 .. PREFIX-nN (one per node), PREFIX-br
  holding a bridge br0, and PREFIX-cl for the client, PREFIX = pgtl-<6 hex>
  unique per lab; every namespace has lo up and IPv6 off. One veth pair per
  node (eth0 in the node, nK on the bridge) and one for the client. The
  addresses (SUBNET.0/24, VIP SUBNET.100, client SUBNET.200) exist only in
  these namespaces; the root namespace gets neither an address nor a route,
  and every packet to them is sent from a lab namespace.
- per node, in /tmp/pgtrack-lab-<id>/nK: PostgreSQL 15 (node 1 primary,
  the others pg_basebackup -R replicas of it, database appdb with table
  lab_writes), pgbouncer 1.18 on *:6432, pgtrack-notify, pgtrackd (peers =
  the other nodes) and keepalived 2.2.7 (unicast VRRP, instance VI_PG,
  priority 200, the VIP, track_file fed by pgtrackd, notify_fifo read by
  pgtrack-notify). pgtrackd runs on its default values with node = nK and
  base_priority = 200: primary 254, standbys 253 down by WAL rank.
- node 1 has the HIGHEST address: a BACKUP of equal priority does not
  preempt, but when two nodes of equal priority both claim MASTER (a
  keepalived restart, a healed split) VRRP keeps node 1: an old primary
  restarted as a primary would win then, were it not for the stale-primary
  guard putting it in FAULT.

Lab(router="haproxy") also runs HAProxy 2.6 in the client namespace
(labkit/router.py), configured as examples/haproxy/haproxy.cfg: every
node's pgtrackd gets an [http] listener on NODE_IP:8008 (allowed from the
lab subnet only), HAProxy sends CLIENT_IP:5000 to the node whose /primary
answers 200 and CLIENT_IP:5001 to those whose /replica?lag=16MB does, to
PostgreSQL itself (port 5432); lab.writer(via="router") writes through it.

Lab(mode="classic") builds the classic configuration instead, for the
benchmark (bench/failover): no pgtrackd and no pgtrack-notify; keepalived
runs two vrrp_scripts every 5 s (pg_isready, weight -75; a psql check that
pg_is_in_recovery() is false, weight -50) and notify_master /
notify_backup scripts that install the databases file and restart
pgbouncer (MASTER) or stop it (BACKUP).

Every process is started by this module, recorded with its PID and start
time in the state file /run/pgtrackd-lab/<id>.json, and stopped by PID;
namespaces are then emptied with `ip netns pids` and deleted. cleanup()
does the same for labs whose owner process is gone.
"""

import os
import sys

# the test kit (tests/kit), from a checkout: examples/lab/labkit -> tests
_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__))))), "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from kit.netns import netns_list  # noqa: E402,F401
from labkit.layout import *  # noqa: E402,F401,F403
from labkit.lab import Lab  # noqa: E402,F401
from labkit.writer import ERROR_KINDS, error_kind  # noqa: E402,F401
from labkit.teardown import cleanup, down_by_id, install_signal_handlers, load_states, owner_alive  # noqa: E402,F401
