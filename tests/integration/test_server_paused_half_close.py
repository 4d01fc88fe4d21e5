# Goal of this test: a peer that sends until the server pauses reading, then half-closes and reads, gets every byte it sent back, then EOF.
import socket
import time

from harness import (ServerTest, fill_until_paused, pattern, recv_to_eof, send_until_blocked,
                     unacked, wait_until)

LIMIT = 64 << 20


class PausedHalfCloseTest(ServerTest):
    def test_fin_reaches_paused_server_then_read(self):
        """The FIN reaches the server while it is not reading (EPOLLRDHUP); the client
        then reads: the server must resume, echo what is still in its receive buffer too,
        and close only after all of it."""
        srv = self.start_server(sets={"output_high_watermark": "64k", "read_size": "16k",
                                      "log_level": "debug"})
        s = self.connect(srv.port)
        sent = fill_until_paused(srv, s, 64 << 10, data_seed=9)
        print(f"server paused reading after the client sent {len(sent)} bytes (all acked)")
        self._shutdown_then_read(srv, s, sent, fin_first=True)
        lines = srv.close_lines()
        self.assertEqual([l.get("reason") for l in lines], ["eof"], f"{lines}")
        print(f"server-recorded FIN-to-close: {lines[0].get('fin_to_close_us')} us")

    def test_fin_queued_behind_data_then_read(self):
        """The client's FIN waits in its own send queue behind data the paused server has
        no room for; it arrives once the client reads and the server resumes."""
        srv = self.start_server(sets={"output_high_watermark": "64k", "read_size": "16k"})
        s = self.connect(srv.port)
        sent = send_until_blocked(s, LIMIT, data_seed=9)
        print(f"client sent {len(sent)} bytes before the server stopped reading")
        self.assertLess(len(sent), LIMIT, "the server never paused reading")
        self._shutdown_then_read(srv, s, sent)

    def _shutdown_then_read(self, srv, s, sent, fin_first=False):
        self.assertEqual(sent, pattern(len(sent), 9))
        t0 = time.monotonic()
        s.shutdown(socket.SHUT_WR)
        if fin_first:
            # The server's kernel has acked the FIN, and a counters round trip through
            # the event loop lets the server handle EPOLLRDHUP before the client reads.
            wait_until(lambda: unacked(s) == 0, 5, "the server's kernel to ack the FIN")
            srv.counters()
        try:
            got = recv_to_eof(s, timeout=20)
        except socket.timeout:
            self.fail("no EOF within 20 s after the half-close")
        print(f"echo of {len(got)} bytes and EOF after {time.monotonic() - t0:.3f}s")
        self.assertEqual(len(got), len(sent), "bytes echoed")
        self.assertTrue(got == sent, "echo differs from what was sent")
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "the connection to be closed")
        self.assertEqual(c["closed"]["eof"], 1, f"close reason in {c}")
