"""keepalived's notify FIFO as keepalived holds it, and its lines."""

import fcntl
import os
import struct
import termios
import time


class Fifo:
    """The notify FIFO as keepalived holds it: O_RDWR|O_NONBLOCK.

    write() retries on EAGAIN (a full pipe) until the reader drains it,
    within a deadline, so that no test line is lost."""

    def __init__(self, path, mode=0o600):
        self.path = path
        self.fd = None
        self.create(mode)

    @classmethod
    def attach(cls, path):
        """Open an existing FIFO (made by someone else) the same way."""
        f = cls.__new__(cls)
        f.path = path
        f.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        return f

    def create(self, mode=0o600):
        os.mkfifo(self.path, 0o600)
        os.chmod(self.path, mode)
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def replace(self):
        """As keepalived's reload: close, unlink, mkfifo again (new inode), open."""
        old = os.stat(self.path).st_ino
        self.close()
        os.unlink(self.path)
        self.create()
        assert os.stat(self.path).st_ino != old
        return old

    def write(self, data, timeout=30):
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError("FIFO %s stayed full for %ds: the reader does not drain it"
                                         % (self.path, timeout))
                time.sleep(0.001)

    def pending(self):
        """Bytes queued and not yet read (FIONREAD)."""
        buf = fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", buf)[0]


def inst(name, state, prio=100):
    return 'INSTANCE "%s" %s %d\n' % (name, state, prio)


def group(name, state):
    return 'GROUP "%s" %s 0\n' % (name, state)
