# Goal of this test: shared helper, a fleet of idle clients that each send a heartbeat byte on a schedule and check its echo (the stall tests).
"""IdleFleet: N connections to the server, driven from one thread with non-blocking
sockets. Every `interval` seconds each open connection sends one byte; echoes are read as
they come; the peers' turns are spread over the interval. Per connection it records bytes sent, bytes echoed, and how it ended (FIN, RST)
if the server closed it."""
import errno
import select
import socket
import threading
import time


def peer_end(sock, timeout):
    """How a connection the server should close ends: "FIN", "RST", or the data that
    came instead (socket.timeout when nothing came within timeout seconds)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(1)
    except ConnectionResetError:
        return "RST"
    return "FIN" if data == b"" else f"data {data!r}"


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.sent = 0
        self.echoed = 0
        self.closed = None  # "FIN", "RST" or another error, once the server closed it
        self.last_sent = 0.0
        self.next_send = 0.0


class IdleFleet:
    def __init__(self, test, port, n, interval, host="127.0.0.1"):
        self.interval = interval
        self.peers = []
        for _ in range(n):
            s = socket.create_connection((host, port), timeout=10)
            test.addCleanup(s.close)
            s.setblocking(False)
            self.peers.append(Peer(s))
        self.by_fd = {p.sock.fileno(): p for p in self.peers}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self.error = None

    # driving
    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.error is not None:
            raise self.error

    def _send_due(self, now):
        """Sends a byte on every open peer whose turn it is. The peers' turns are spread
        evenly over the interval, so the server never finds them all readable at once."""
        for p in self.peers:
            if p.closed is not None or now < p.next_send:
                continue
            p.next_send += self.interval
            try:
                if p.sock.send(b"h") == 1:
                    p.sent += 1
                    p.last_sent = now
            except BlockingIOError:
                pass
            except OSError as e:
                p.closed = "RST" if e.errno in (errno.ECONNRESET, errno.EPIPE) else str(e)

    def _read(self, p):
        try:
            data = p.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as e:
            p.closed = "RST" if e.errno == errno.ECONNRESET else str(e)
            return
        if not data:
            p.closed = "FIN"
        p.echoed += len(data)

    def _run(self):
        try:
            t0 = time.monotonic()
            for i, p in enumerate(self.peers):
                p.next_send = t0 + self.interval * i / len(self.peers)
            while not self._stop.is_set():
                now = time.monotonic()
                with self.lock:
                    self._send_due(now)
                    fds = [p.sock for p in self.peers if p.closed is None]
                    wake = min((p.next_send for p in self.peers if p.closed is None),
                               default=now)
                if not fds:
                    break
                r, _, _ = select.select(fds, [], [], max(0.0, min(0.05, wake - now)))
                with self.lock:
                    for s in r:
                        self._read(self.by_fd[s.fileno()])
        except Exception as e:  # reported by stop()
            self.error = e

    # observing
    def snapshot(self):
        with self.lock:
            return [(p.sent, p.echoed, p.closed) for p in self.peers]

    def closed(self):
        with self.lock:
            return [p for p in self.peers if p.closed is not None]

    def all_echoed(self, minimum=None):
        """True when every open peer has its echo for everything it sent (and, with
        minimum, has sent at least that many bytes)."""
        with self.lock:
            return all(p.closed is None and p.echoed == p.sent and
                       (minimum is None or p.sent >= minimum) for p in self.peers)
