# Goal of this test: after the peer's FIN the correct-mode server closes within 100 ms and leaves no CLOSE-WAIT socket on its port.
import socket
import statistics
import time

from harness import (ServerTest, recv_exactly, ss_count, ss_lines, tcp_state, tw_overflows,
                     wait_until)

def _after_fin(local, remote):
    """The client's state once the server's FIN arrived (TIME_WAIT), else None. CLOSE is a
    passage: a lookup that took the full socket just before the FIN swapped it for its
    TIME_WAIT socket reads the state the full one is left in (seen once in a CI run)."""
    st = tcp_state(local, remote)
    if st in ("FIN_WAIT1", "FIN_WAIT2", "ESTABLISHED", "CLOSE"):
        return None
    return st or "gone (reset?)"


LIMIT = 0.100  # seconds, from issue 3 item 2
ROUNDS = 20


class PeerCloseTest(ServerTest):
    def test_fin_answered_within_100ms(self):
        """Client sends its FIN (shutdown SHUT_WR) and times the server's FIN (EOF)."""
        srv = self.start_server()
        times = []
        for i in range(ROUNDS):
            s = self.connect(srv.port)
            self.echo_once(s, f"hello {i}\n".encode())
            t0 = time.monotonic()
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            try:
                rest = s.recv(4096)
            except socket.timeout:
                self.fail(f"round {i}: no FIN from the server within 5 s of the client's FIN")
            times.append(time.monotonic() - t0)
            self.assertEqual(rest, b"", f"round {i}: data instead of EOF")
            s.close()
        print(f"client FIN -> server FIN: median {statistics.median(times) * 1000:.2f} ms, "
              f"max {max(times) * 1000:.2f} ms over {ROUNDS} connections")
        self.assertLessEqual(max(times), LIMIT, f"FIN answered after {max(times) * 1000:.1f} ms")

    def test_close_reaches_time_wait_and_no_close_wait(self):
        """Client close(): its socket must reach TIME_WAIT (the server's FIN arrived), not
        stay in FIN_WAIT2; the server's own FIN-to-close record agrees; no CLOSE-WAIT."""
        self.require_ss()
        srv = self.start_server(sets={"log_level": "debug"})
        times = []
        for i in range(ROUNDS):
            s = self.connect(srv.port)
            self.echo_once(s)
            local, remote = s.getsockname(), s.getpeername()
            cport = local[1]
            ovf0 = tw_overflows()
            t0 = time.monotonic()
            s.close()
            state = wait_until(lambda: _after_fin(local, remote), 5,
                               f"client port {cport} to leave FIN_WAIT", interval=0.001)
            times.append(time.monotonic() - t0)
            if state != "TIME_WAIT" and tw_overflows() > ovf0:
                # The TIME_WAIT table of this namespace is full (other programs' load): the
                # kernel destroyed the socket at the moment it would have entered
                # TIME_WAIT, i.e. when the server's FIN arrived. The timing still holds.
                print(f"round {i}: TIME_WAIT table full (TCPTimeWaitOverflow rose); the "
                      "client socket was destroyed on the server's FIN")
                continue
            self.assertEqual(state, "TIME_WAIT")
        print(f"client close() -> client TIME_WAIT (server FIN seen): median "
              f"{statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms")
        self.assertLessEqual(max(times), LIMIT, f"server FIN after {max(times) * 1000:.1f} ms")

        c = srv.wait_counters(lambda c: c["closed"]["eof"] >= ROUNDS and c["open"] == 0, 10,
                              f"{ROUNDS} closes with reason eof")
        f2c = c["fin_to_close_us"]
        print(f"server fin_to_close_us: count {f2c['count']} p50 {f2c['p50']} p99 {f2c['p99']} "
              f"max {f2c['max']}")
        self.assertGreaterEqual(f2c["count"], ROUNDS, f"fin_to_close_us in {c}")
        self.assertLessEqual(f2c["max"], LIMIT * 1e6, f"server-recorded FIN-to-close in {c}")
        lines = srv.close_lines()
        self.assertEqual(len(lines), ROUNDS, f"debug close lines: {lines}")
        for f in lines:
            self.assertEqual(f.get("reason"), "eof", f"close line {f}")
            self.assertGreaterEqual(int(f.get("fin_to_close_us", "-1")), 0, f"close line {f}")
        self.assertEqual(srv.counters()["closed"]["eof"], ROUNDS)
        cw = ss_lines(srv.port, "close-wait")
        self.assertEqual(cw, [], f"CLOSE-WAIT sockets on port {srv.port}")

    def test_no_close_wait_after_many_closes(self):
        self.require_ss()
        srv = self.start_server()
        socks = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            socks.append(s)
            s.sendall(b"x")
        for s in socks:
            self.assertEqual(recv_exactly(s, 1), b"x")
        for s in socks:
            s.close()
        srv.wait_counters(lambda c: c["closed"]["eof"] == 50 and c["open"] == 0, 10,
                          "50 eof closes")
        n = ss_count(srv.port, "close-wait")
        print(f"CLOSE-WAIT on port {srv.port} after 50 closes: {n}")
        self.assertEqual(n, 0)
