# Goal of this test: closes about a peer believed dead send RST when reset_dead_peers=yes (no orphaned FIN-WAIT-1 socket keeps retransmitting to it), and a normal FIN when it is no.
import socket
import time

from harness import ServerTest, pattern, ss_lines


def how_closed(sock, timeout=10):
    sock.settimeout(timeout)
    try:
        b = sock.recv(1)
    except ConnectionResetError:
        return "RST"
    except socket.timeout:
        return "nothing"
    return "FIN" if b == b"" else f"data {b!r}"

SENT = 32 << 20


class ResetDeadPeersTest(ServerTest):
    def _heartbeat_close(self, reset):
        srv = self.start_server(sets={"heartbeat_timeout": "1s", "reset_dead_peers": reset})
        s = self.connect(srv.port)
        t0 = time.monotonic()
        how = how_closed(s)
        print(f"reset_dead_peers={reset}: heartbeat close seen as {how} after "
              f"{time.monotonic() - t0:.3f}s")
        c = srv.wait_counters(lambda c: c["open"] == 0, 5, "the close counted")
        self.assertEqual(c["closed"]["heartbeat"], 1, f"{c}")
        return how

    def test_reset_dead_peers_yes_sends_rst(self):
        self.assertEqual(self._heartbeat_close("yes"), "RST")

    def test_reset_dead_peers_no_sends_fin(self):
        self.assertEqual(self._heartbeat_close("no"), "FIN")

    def test_write_timeout_leaves_no_orphan(self):
        """A never-reading peer closed at write_timeout. The server has read all its input
        (so close() alone would not reset) and holds unsent echo: a plain close() would
        leave an orphaned FIN-WAIT-1 socket probing the peer's zero window."""
        self.require_ss()
        srv = self.start_server(sets={"write_timeout": "1s", "reset_dead_peers": "yes",
                                      "output_high_watermark": "64m"})
        s = self.connect(srv.port, timeout=10)
        # More than the kernel buffers hold, less than the watermark: the server reads it
        # all and keeps the rest of the echo queued in its own buffer.
        s.sendall(pattern(SENT, 1))
        c = srv.wait_counters(lambda c: c["bytes_in"] >= SENT, 10, "the server to read it all")
        print(f"server read {c['bytes_in']} bytes, the kernel took {c['bytes_out']} of the echo")
        self.assertLess(c["bytes_out"], SENT, "no echo left queued in the server")
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "the write timeout")
        self.assertEqual(c["closed"]["write-timeout"], 1, f"{c}")
        left = [l for l in ss_lines(srv.port) if not l.startswith("LISTEN")]
        print(f"server-side sockets on port {srv.port} after the write-timeout close: {left}")
        self.assertEqual(left, [], "orphaned server sockets after a reset_dead_peers close")
