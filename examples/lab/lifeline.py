"""Run a program holding a TAP device that lives exactly as long as it does.

    ip netns exec NS /usr/bin/python3 lifeline.py IFNAME PROGRAM [ARG...]

Creates the non-persistent TAP interface IFNAME in the current network
namespace, sets it up, leaves its file descriptor open across exec and
replaces itself with PROGRAM (same PID). When PROGRAM exits, however it
dies (SIGKILL included), the kernel closes the descriptor and deletes the
interface; keepalived's `track_interface { IFNAME }` then puts the VRRP
instance in FAULT at once, and a new PROGRAM brings a new IFNAME up.

Why: keepalived's vrrp_track_process needs the kernel's process-events
connector, which exists only in the initial network namespace; inside a lab
namespace keepalived 2.2.7 logs "Failed to set/clear process event listen -
errno 111" and never sees a tracked process exit. Debian's build has no
`net_namespace` keyword either (keepalived would open the connector before
switching namespaces). This lifeline gives keepalived the same signal, dead
tracker = FAULT, without forking anything on the check path.
"""

import fcntl
import os
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: lifeline.py IFNAME PROGRAM [ARG...]\n")
        return 2
    name, argv = sys.argv[1], sys.argv[2:]
    if not 0 < len(name) < 16:
        sys.stderr.write("lifeline: bad interface name %r\n" % name)
        return 2
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    subprocess.run(["ip", "link", "set", "dev", name, "up"], check=True, timeout=10)
    os.set_inheritable(fd, True)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main())
