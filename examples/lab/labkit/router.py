"""The lab's router (Lab(router="haproxy")): HAProxy in the client
namespace, configured as examples/haproxy/haproxy.cfg, in front of the
nodes' PostgreSQL, checking each node's pgtrackd health API
(NODE_IP:8008): writes on CLIENT_IP:5000 go to the node whose /primary
answers 200, reads on CLIENT_IP:5001 to the standbys whose
/replica?lag=16MB does. Its packets start in the client namespace, like
the client's."""

from kit.files import write_file
from kit.haproxy import HAProxy
from labkit.configs import haproxy_conf
from labkit.events import parse_haproxy
from labkit.layout import CLIENT_IP, HAPROXY, LabError, ROUTER_READ_PORT, ROUTER_WRITE_PORT, run, wait_for

WRITE_BACKEND = "pg_write"
READ_BACKEND = "pg_read"


class LabRouter:
    """HAProxy as the lab's router: start, states of its servers."""

    def _router_up(self):
        if self.router != "haproxy":
            return
        cl = self.client
        cl.dir.mkdir(mode=0o755, exist_ok=True)
        self.haproxy = HAProxy(base=str(cl.dir))          # its stats socket only: the lab runs it
        write_file(self.haproxy.conf, haproxy_conf(self, self.haproxy.sock))
        run([HAPROXY, "-c", "-f", self.haproxy.conf], timeout=30)
        self.log("router: HAProxy in %s, writes %s:%d (/primary), reads %s:%d (/replica?lag=16MB), "
                 "checking pgtrackd on every node's :8008" % (self.cl_ns, CLIENT_IP, ROUTER_WRITE_PORT,
                                                              CLIENT_IP, ROUTER_READ_PORT))
        log = cl.dir / "haproxy.log"
        self.spawn(cl, "haproxy", [HAPROXY, "-db", "-f", self.haproxy.conf], log)
        self.tailer.watch(log, parse_haproxy, None)
        p = self.primary
        standbys = sorted(n.name for n in self.nodes if n is not p)
        self.wait_routes([p.name], standbys, 30)
        r = wait_for(lambda: self.client_sql("SELECT current_setting('cluster_name')",
                                             host=CLIENT_IP, port=ROUTER_WRITE_PORT), 20, 0.2,
                     "a query through HAProxy %s:%d" % (CLIENT_IP, ROUTER_WRITE_PORT))
        if r[0][0] != p.name:
            raise LabError("HAProxy's write port reached %s, expected %s" % (r[0][0], p.name))
        self.event(None, "router_up", "HAProxy routes writes to %s, reads to %s" % (p.name, ", ".join(standbys)))
        self.save_state()

    def router_routes(self):
        """(UP servers of the write backend, of the read backend), each
        settled after a check (kit.haproxy.HAProxy.settled), else None."""
        w = self.haproxy.settled(WRITE_BACKEND)
        r = self.haproxy.settled(READ_BACKEND)
        return (None if w is None else w[0], None if r is None else r[0])

    def router_servers(self):
        """{backend: {server: status}}, unsettled states included."""
        return {b: self.haproxy.servers(b) for b in (WRITE_BACKEND, READ_BACKEND)}

    def wait_routes(self, writes, reads, timeout):
        """Until HAProxy sends writes to exactly the nodes named writes and
        reads to exactly reads (lists of names; None: whichever)."""
        want = (sorted(writes), None if reads is None else sorted(reads))

        def done():
            proc = self.procs.get("cl/haproxy")
            if proc is not None and not proc.alive():
                raise LabError("HAProxy exited:\n%s" % self.haproxy.log()[-2000:])
            w, r = self.router_routes()
            return w == want[0] and (want[1] is None or r == want[1])
        return wait_for(done, timeout, 0.1, "HAProxy routing writes to %s, reads to %s" % want)
