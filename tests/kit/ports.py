"""127.0.0.1 ports: reserved against parallel runs, and a peer that never answers."""

import fcntl
import os
import socket
import threading

PORT_LOCK_DIR = "/tmp/pgtrackd-it-ports"


def free_port():
    """A port nothing listens on right now (no reservation)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class PortReservation:
    """A 127.0.0.1 port nobody else listens on, locked against parallel runs.

    The port comes from the kernel (bind to port 0); a flock on
    /tmp/pgtrackd-it-ports/PORT keeps other test runs from picking it while
    we hold it.
    """

    def __init__(self):
        os.makedirs(PORT_LOCK_DIR, mode=0o1777, exist_ok=True)
        for _ in range(200):
            port = free_port()
            fd = os.open(os.path.join(PORT_LOCK_DIR, str(port)), os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.port = port
            self._fd = fd
            return
        raise RuntimeError("could not reserve a free port")

    def release(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SilentListener:
    """A TCP socket on 127.0.0.1 that accepts every connection and never
    says a word (a hung or black-holed server as seen by libpq, which waits
    for the answer to its startup packet). Held by the test; close() drops
    everything."""

    def __init__(self):
        self._port = PortReservation()
        self.port = self._port.port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.accepted = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted.append(conn)           # held open, never read or written

    def close(self):
        self._stop = True
        self._thread.join(5)
        for c in self.accepted:
            c.close()
        self.sock.close()
        self._port.release()
