"""The lab's layout: programs, paths, names, addresses, ports, the values
pgtrackd writes; its error, and the small helpers every part uses."""

import os
import re
import sys
import time
from pathlib import Path

from kit import KitError, files, pgbouncer, postgres
from kit.procs import run_command
from kit.waiting import wait_until


HERE = Path(__file__).resolve().parent.parent      # examples/lab
REPO = HERE.parent.parent
PG_BIN = Path(postgres.PG_BIN)
PGBOUNCER = pgbouncer.PGBOUNCER
KEEPALIVED = os.environ.get("KEEPALIVED", "/usr/sbin/keepalived")
PYTHON = "/usr/bin/python3"
STATE_DIR = Path(os.environ.get("PGTRACKD_LAB_STATE", "/run/pgtrackd-lab"))
BASE_DIR = Path("/tmp")
# the track files on tmpfs, as /run/pgtrackd is in production: a rename in an
# ext4 directory can wait for a journal commit, and the crash's detection with it
RUN_BASE_DIR = Path("/dev/shm")
DIR_PREFIX = "pgtrack-lab-"
NS_PREFIX = "pgtl-"
NS_RE = re.compile(r"^pgtl-([0-9a-f]{6})-(br|cl|n\d+)$")
SUBNET = "10.213.0"
PREFIXLEN = 24
VIP = SUBNET + ".100"
CLIENT_IP = SUBNET + ".200"
VRID = 51
# pgtrackd's realtime_priority (SCHED_RR, below keepalived's vrrp_rt_priority 50),
# its default; realtime_limit stays at its default, 1 s
TRACKD_RT_PRIORITY = 40
# keepalived base priority of the pgtrackd configuration, and pgtrackd's base_priority
BASE_PRIORITY = 200
INSTANCE = "VI_PG"
LIFELINE_IF = "pgtrackd0"
PG_PORT = 5432
BOUNCER_PORT = 6432
APPDB = "appdb"
PG_USER = postgres.PG_USER
ADMIN_USER = "pgtrack_notify"
VALUE_DOWN = -254
VALUE_PRIMARY = 54       # pgtrackd's defaults on BASE_PRIORITY: 254
VALUE_STANDBY = 53       # the most advanced standby (253); RANK_STEP less per rank
RANK_STEP = 10           # pgtrackd's rank_step default
MAX_NODES = 9
MODES = ("pgtrackd", "classic")
ROUTERS = (None, "haproxy")
HAPROXY = os.environ.get("HAPROXY", "/usr/sbin/haproxy")
HTTP_PORT = 8008                # pgtrackd's [http] listener on each node (router haproxy)
ROUTER_WRITE_PORT = 5000        # HAProxy in the client namespace: writes, to the primary
ROUTER_READ_PORT = 5001         # ... reads, to the standbys within 16MB
CLASSIC_INTERVAL = 5            # vrrp_script interval of the classic configuration, seconds
CLASSIC_WEIGHT_ISREADY = -75
CLASSIC_WEIGHT_ROLE = -50


class LabError(KitError):
    pass


def default_build():
    return Path(os.environ.get("PGTRACKD_BUILD", REPO / "build"))


def run(argv, timeout=60, check=True, input=None):
    """Run a command, capture its output (text). Raises LabError on failure."""
    return run_command(argv, timeout, check, input, error=LabError)


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until true (returns its value) or raise LabError."""
    return wait_until(pred, timeout, interval, what=what, error=LabError)


def stderr_log(msg):
    sys.stderr.write("%s  %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def read_int(path):
    """The integer a file holds (any notation int() reads with base 0), or None."""
    return files.read_int(path, 0)
