"""One HTTP exchange over a raw socket, for tests that send what a proper
client would not (malformed, oversized, half-sent requests) to the
daemons' listeners.  Loopback only."""
import socket

MAX_ANSWER = 1 << 22


def exchange(port, data, host="127.0.0.1", src=None, timeout=5):
    """Sends data on a new connection (from address src if given) and returns
    everything that came back before the server closed it (at most 4 MiB);
    a reset ends the answer like a close."""
    s = socket.create_connection((host, port), timeout,
                                 source_address=(src, 0) if src else None)
    try:
        s.sendall(data)
        out = b""
        while len(out) < MAX_ANSWER:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()
