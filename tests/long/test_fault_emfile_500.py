# Goal of this test: with its fd limit at 64 (prlimit --nofile=64) and 500 clients connecting and reconnecting for 10 s, the server sheds and pauses without spinning (its CPU averaged over the 10 s under 5 %, from /proc/PID/stat), keeps echoing on the connections it holds, and serves new clients once the load is gone.
import errno
import selectors
import socket
import time

from harness import Server, ServerTest, cpu_seconds, wait_until

NOFILE = 64
CLIENTS = 500
SECONDS = 10.0
CPU_BOUND = 0.05


class Clients:
    """CLIENTS non-blocking sockets to port; one the server closes (shed: EOF or RST) is
    replaced by a new connection at once, so the accept queue never empties."""

    def __init__(self, port):
        self.port, self.sel, self.reconnects = port, selectors.DefaultSelector(), 0
        for _ in range(CLIENTS):
            self.open()

    def open(self):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            return
        self.sel.register(s, selectors.EVENT_READ)

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in self.sel.select(timeout=min(0.1, max(0.0, end - time.monotonic()))):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data == b"":
                    self.sel.unregister(s)
                    s.close()
                    self.reconnects += 1
                    self.open()

    def close(self):
        if self.sel is None:
            return
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()
        self.sel = None


class EmfileFiveHundredTest(ServerTest):
    def test_500_clients_at_64_fds(self):
        srv = Server(self, sets={"accept_pause": "100ms", "heartbeat_timeout": "5m"})
        srv.cmd = ["prlimit", f"--nofile={NOFILE}:{NOFILE}"] + srv.cmd
        srv.start()
        keeper = self.connect(srv.port)  # accepted before the flood: must keep echoing
        self.echo_once(keeper)
        clients = Clients(srv.port)
        self.addCleanup(clients.close)
        clients.run(1.0)  # the server reaches its limit
        wait_until(lambda: srv.counters()["emfile_pauses"] > 0, 10, "an EMFILE pause")
        c0 = srv.counters()
        cpu0, t0 = cpu_seconds(srv.pid), time.monotonic()
        clients.run(SECONDS)
        cpu, wall = cpu_seconds(srv.pid) - cpu0, time.monotonic() - t0
        c1 = srv.counters()
        self.echo_once(keeper, b"still echoing\n")
        share = cpu / wall
        print(f"{CLIENTS} clients at --nofile={NOFILE}: server CPU {cpu:.2f} s in {wall:.1f} s "
              f"= {share * 100:.2f} % (bound {CPU_BOUND * 100:.0f} %); "
              f"{c1['emfile_pauses'] - c0['emfile_pauses']} pauses, "
              f"{c1['shed'] - c0['shed']} shed, {clients.reconnects} client reconnects, "
              f"open {c1['open']}")
        self.assertGreater(c1["shed"] - c0["shed"], 0, "the load never reached the EMFILE path")
        self.assertLess(share, CPU_BOUND, "the server spins at its fd limit")
        clients.close()
        t1 = time.monotonic()
        # Recovery: once the load is gone, new clients are served.

        def served():
            try:
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
            except OSError:
                return False
            try:
                s.settimeout(2)
                s.sendall(b"back\n")
                return s.recv(5) == b"back\n"
            except OSError:
                return False
            finally:
                s.close()
        wait_until(served, 20, "a new client to be served after the load")
        c2 = wait_until(lambda: (lambda c: c if c["open"] == 1 else None)(srv.counters()), 20,
                        "the flood's connections to close (only the keeper left)")
        print(f"served again {(time.monotonic() - t1) * 1000:.0f} ms after the load ended; "
              f"open {c2['open']}")
        self.echo_once(keeper, b"after\n")
        self.assertTrue(srv.alive())
