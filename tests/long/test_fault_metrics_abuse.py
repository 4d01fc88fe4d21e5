# Goal of this test: abuse of the /metrics endpoint (1,000 connections at once, slowloris, a 1 MB request header, binary garbage) leaves the echo service's latency alone: the echo p99 of a concurrent client stays within max(2 x baseline, baseline + 1 ms), the baseline measured in the same test just before, and the endpoint answers a scrape afterwards.
import socket
import subprocess
import sys
import time

import promtext
from harness import ServerTest, wait_until
from promtext import start_with_metrics

# The abuse runs in a process of its own, so it cannot disturb the echo client through
# Python's GIL. Its connections are non-blocking; one the server closes is opened again,
# so the pressure lasts. Kinds by index: slowloris (a byte of a request head every 200 ms),
# a 1 MB header, 1 MB of random bytes, and connections that send nothing.
ABUSE = r"""
import os, selectors, socket, sys, time
port, seconds, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()
big = b"GET /metrics HTTP/1.1\r\nX-Fill: " + b"a" * (1 << 20) + b"\r\n\r\n"
junk = os.urandom(1 << 20)
payload = {0: b"", 1: big, 2: junk, 3: b""}
state = {}
def start(i):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    state[s] = [i, 0]
    sel.register(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if payload[i % 4] else 0))
def restart(s):
    i = state.pop(s)[0]
    sel.unregister(s)
    s.close()
    start(i)
for i in range(n):
    start(i)
print("ready", flush=True)
end, drip, restarts = time.monotonic() + seconds, 0.0, 0  # from here: the measured window
while time.monotonic() < end:
    for key, ev in sel.select(timeout=0.05):
        s = key.fileobj
        i, off = state[s]
        if ev & selectors.EVENT_READ:
            try:
                if not s.recv(65536):
                    restart(s); restarts += 1; continue
            except BlockingIOError:
                pass
            except OSError:
                restart(s); restarts += 1; continue
        if ev & selectors.EVENT_WRITE:
            p = payload[i % 4]
            try:
                state[s][1] = off = off + s.send(p[off:off + 65536])
            except BlockingIOError:
                continue
            except OSError:
                restart(s); restarts += 1; continue
            if off >= len(p):
                sel.modify(s, selectors.EVENT_READ)
    if time.monotonic() - drip >= 0.2:
        drip = time.monotonic()
        for s, (i, off) in list(state.items()):
            if i % 4 == 0:
                try:
                    s.send(b"GET /metrics HTTP/1.1\r\n"[off % 23:off % 23 + 1])
                    state[s][1] += 1
                except OSError:
                    pass
print(f"{restarts} connections closed by the server and opened again", flush=True)
"""
CONNECTIONS = 1000
BASELINE_S = 4.0
ABUSE_S = 8.0


def p99(samples):
    return sorted(samples)[int(len(samples) * 0.99)]


class MetricsAbuseLatencyTest(ServerTest):
    def measure(self, sock, seconds):
        """Echo round trips of 64 bytes, back to back, for `seconds`: the samples in s."""
        msg, out = b"e" * 64, []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            sock.sendall(msg)
            got = b""
            while len(got) < len(msg):
                b = sock.recv(len(msg) - len(got))
                self.assertTrue(b, "echo connection closed")
                got += b
            out.append(time.perf_counter() - t)
        return out

    def test_echo_latency_under_metrics_abuse(self):
        srv, mport = start_with_metrics(self, sets={"heartbeat_timeout": "5m"})
        echo = self.connect(srv.port)
        echo.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.measure(echo, 0.5)  # warm-up
        base = self.measure(echo, BASELINE_S)
        abuse = subprocess.Popen([sys.executable, "-c", ABUSE, str(mport), str(ABUSE_S + 0.5),
                                  str(CONNECTIONS)], stdout=subprocess.PIPE, text=True)
        self.addCleanup(abuse.wait)
        self.addCleanup(abuse.kill)
        self.assertEqual(abuse.stdout.readline().strip(), "ready")
        under = self.measure(echo, ABUSE_S)
        alive = abuse.poll() is None
        tail = abuse.communicate(timeout=60)[0].strip()
        b99, u99 = p99(base), p99(under)
        bound = max(2 * b99, b99 + 0.001)
        print(f"echo p99 {b99 * 1e6:.0f} us before ({len(base)} round trips), {u99 * 1e6:.0f} us "
              f"during the abuse ({len(under)} round trips; {CONNECTIONS} metrics connections: "
              f"slowloris, 1 MB header, binary garbage, idle); bound {bound * 1e6:.0f} us")
        self.assertTrue(alive, "the abuse process ended early")
        self.assertTrue(srv.alive(), srv.log_tail())
        status = wait_until(lambda: _status(mport), 30, "a scrape to be answered after the abuse")
        self.assertEqual(status, 200)
        pauses = promtext.value(promtext.scrape(mport), "teardown_metrics_cap_pauses_total")
        print(f"abuse: {tail}; the metrics listener paused at its cap {pauses:.0f} times")
        self.assertGreater(pauses, 0, "the abuse never reached the endpoint's cap")
        self.assertLessEqual(u99, bound, "the metrics abuse slowed the echo service down")


def _status(port):
    try:
        return promtext.http_get(port, timeout=5)[0]
    except (OSError, promtext.ParseError):
        return None
