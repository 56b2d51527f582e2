"""The lab's network: namespaces, the bridge br0, veth pairs, addresses; a
node's link cut and restored."""

from labkit.layout import CLIENT_IP, PREFIXLEN, run, SUBNET, VIP


class NodeLinks:
    """A node's VIP and its link to the bridge: cut and restored."""

    def has_vip(self):
        p = run(["ip", "-n", self.ns, "-4", "-o", "addr", "show", "dev", "eth0"], check=False, timeout=10)
        return (" %s/" % VIP) in p.stdout

    def veth_down(self):
        """Take the bridge end of this node's veth down: the node loses carrier."""
        run(["ip", "-n", self.lab.br_ns, "link", "set", self.name, "down"])
        self.lab.event(self, "veth_down", "veth of %s down (bridge side)" % self.name)

    def veth_up(self):
        run(["ip", "-n", self.lab.br_ns, "link", "set", self.name, "up"])
        self.lab.event(self, "veth_up", "veth of %s up" % self.name)

    def isolate(self):
        """Detach the node's port from the bridge: its link stays up, but no
        packet reaches the other nodes or the client (a partition)."""
        run(["ip", "-n", self.lab.br_ns, "link", "set", self.name, "nomaster"])
        self.lab.event(self, "isolate", "%s cut off from the bridge" % self.name)

    def rejoin(self):
        run(["ip", "-n", self.lab.br_ns, "link", "set", self.name, "master", "br0"])
        self.lab.event(self, "rejoin", "%s attached to the bridge again" % self.name)


def node_ip(k, n):
    """Node 1 gets the highest address (see the module docstring)."""
    return "%s.%d" % (SUBNET, 10 + n + 1 - k)


class LabNetwork:
    """The lab's namespaces, the bridge and the veth pairs."""

    def _network(self):
        self.log("network: namespaces, bridge br0 in %s, veth pairs, %s.0/%d" % (self.br_ns, SUBNET, PREFIXLEN))
        for ns in self.namespaces:
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"])
        br = self.br_ns
        run(["ip", "-n", br, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", br, "link", "set", "br0", "up"])
        ends = [(n.name, n.ns, n.ip) for n in self.nodes] + [("cl", self.cl_ns, CLIENT_IP)]
        for port, ns, ip in ends:
            run(["ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "-n", br, "link", "set", port, "master", "br0"])
            run(["ip", "-n", br, "link", "set", port, "up"])
            run(["ip", "-n", ns, "addr", "add", "%s/%d" % (ip, PREFIXLEN), "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
