# Goal of this test: with drain_spread the final drain's FINs come at a flat rate over the window (no 100 ms bin above 1.5 x N/spread per second), every connection ends with a clean FIN and reason shutdown, the connections waiting for their turn are counted, systemd hears EXTEND_TIMEOUT_USEC, and the server exits 0 long before shutdown_timeout.
import os
import select
import signal
import socket
import tempfile
import time

from harness import ServerTest, Server, wait_until

N = 100
SPREAD_S = 1.0
GRACE_S = 1.0


def fin_times(srv):
    """Monotonic-free FIN times from the debug close lines: the line's time minus the
    wait for the peer's EOF after our FIN."""
    out = []
    for f in srv.close_lines():
        if int(f["shut_age_ms"]) >= 0:
            out.append(f["time"] - (int(f["age_ms"]) - int(f["shut_age_ms"])) / 1000.0)
    return sorted(out)


def peak_per_s(times, start, bin_s=0.1):
    bins = {}
    for t in times:
        k = int((t - start) / bin_s)
        bins[k] = bins.get(k, 0) + 1
    return max(bins.values()) / bin_s, [bins.get(k, 0) for k in range(max(bins) + 1)]


class ServerDrainSpreadTest(ServerTest):
    def notify_socket(self):
        d = tempfile.mkdtemp(prefix="teardown-notify-")
        path = os.path.join(d, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.setblocking(False)
        self.addCleanup(s.close)
        self.addCleanup(os.rmdir, d)
        self.addCleanup(os.unlink, path)
        return s, path

    def test_spread_drain(self):
        notify, path = self.notify_socket()
        srv = Server(self, sets={"drain_spread": f"{int(SPREAD_S * 1000)}ms",
                                 "drain_grace": f"{int(GRACE_S * 1000)}ms",
                                 "shutdown_timeout": "10s", "log_level": "debug",
                                 "log_buffer": "4m"},
                     env={"NOTIFY_SOCKET": path}).start()
        socks = [self.connect(srv.port) for _ in range(N)]
        for s in socks:
            self.echo_once(s)
        srv.wait_counters(lambda c: c["open"] == N, 10, f"{N} open")
        t0 = time.time()
        srv.signal(signal.SIGTERM)
        # SIGUSR1 may be handled before the SIGTERM (libevent runs them by number)
        waiting = srv.wait_counters(lambda c: c["drain_left"] > 0, 5,
                                    "connections waiting for their turn")["drain_left"]
        left, eofs = set(socks), []
        while left and time.time() - t0 < 10:
            r, _, _ = select.select(list(left), [], [], 1)
            for s in r:
                self.assertEqual(s.recv(16), b"", "a clean FIN, nothing after the echo")
                eofs.append(time.time() - t0)
                s.close()
                left.discard(s)
        self.assertEqual(srv.wait_exit(10), 0)
        took = time.time() - t0
        c = srv.exit_counters()
        fins = fin_times(srv)
        peak, bins = peak_per_s(fins, fins[0])
        msgs = []
        while True:
            try:
                msgs.append(notify.recv(4096).decode())
            except BlockingIOError:
                break
        print(f"{N} connections, drain_spread {SPREAD_S}s: {waiting} waiting just after "
              f"the signal; FINs over {fins[-1] - fins[0]:.2f}s, per 100 ms {bins}, peak "
              f"{peak:.0f}/s (N/spread {N / SPREAD_S:.0f}/s); exit after {took:.2f}s; "
              f"sd_notify {msgs[:2]}")
        self.assertEqual(len(eofs), N, "every connection got its FIN")
        self.assertEqual(c["closed"]["shutdown"], N, c)
        self.assertEqual(c["closed"]["reset"], 0, c)
        self.assertEqual(c["drain_left"], 0, c)
        self.assertEqual(len(fins), N)
        self.assertLessEqual(peak, 1.5 * N / SPREAD_S)
        self.assertGreater(fins[-1] - fins[0], 0.8 * SPREAD_S, "spread over the window")
        self.assertLess(took, SPREAD_S + GRACE_S + 3, "long before shutdown_timeout")
        self.assertTrue(any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in msgs), msgs)

    def test_peer_that_never_closes_is_reset_at_its_grace_end(self):
        srv = self.start_server(sets={"drain_spread": "500ms", "drain_grace": "1s",
                                      "shutdown_timeout": "10s", "log_level": "debug"})
        s = self.connect(srv.port)
        self.echo_once(s)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        s.settimeout(5)
        self.assertEqual(s.recv(1), b"")  # our FIN at its turn; no FIN of the peer's
        self.assertEqual(srv.wait_exit(10), 0)
        took = time.monotonic() - t0
        line = srv.close_lines()[0]
        print(f"reset {took:.2f}s after the signal: {line}")
        self.assertEqual(line["reason"], "shutdown")
        self.assertLess(took, 0.5 + 1.0 + 3, "at its grace's end, not at shutdown_timeout")
        self.assertGreaterEqual(int(line["age_ms"]) - int(line["shut_age_ms"]), 1000 - 50)
