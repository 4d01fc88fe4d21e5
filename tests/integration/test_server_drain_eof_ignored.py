# Goal of this test: the graceful drain flushes the echo still queued for a connection whose EOF was ignored (leaky mode, or close_on_eof=no) before closing it, instead of discarding it.
import signal
import socket

from harness import ServerTest, assert_counters_consistent, pattern, recv_to_eof

MIB = 1 << 20
SENT = 24 * MIB  # more than the loopback send and receive buffers hold (a few MiB each)


class DrainEofIgnoredTest(ServerTest):
    def check(self, **kw):
        srv = self.start_server(**kw)
        s = self.connect(srv.port, timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # most echo stays queued
        data = pattern(SENT, 5)
        s.sendall(data)  # not reading: the server queues what the kernels do not hold
        s.shutdown(socket.SHUT_WR)
        c = srv.wait_counters(lambda c: c["eof_ignored"] == 1 and c["bytes_in"] == SENT, 20,
                              "the server to read everything and ignore the EOF")
        queued = c["bytes_in"] - c["bytes_out"]
        print(f"{kw}: EOF ignored with {queued} bytes of echo queued in the server")
        self.assertGreater(queued, 0, "nothing queued: the test would prove nothing")
        srv.signal(signal.SIGTERM)
        got = recv_to_eof(s, 30)
        print(f"after SIGTERM the peer got {len(got)} of {SENT} bytes, then EOF")
        self.assertEqual(len(got), SENT, "echo lost by the drain")
        self.assertTrue(got == data, "echo differs")
        s.close()
        self.assertEqual(srv.wait_exit(15), 0, srv.log_tail())
        c = srv.exit_counters()
        assert_counters_consistent(self, c)
        self.assertEqual(c["closed"]["shutdown"], 1, f"{c}")

    def test_leaky(self):
        self.check(mode="leaky", sets={"output_high_watermark": "64m",
                                       "shutdown_timeout": "20s"})

    def test_close_on_eof_no(self):
        self.check(sets={"close_on_eof": "no", "output_high_watermark": "64m",
                         "write_timeout": "20s", "shutdown_timeout": "20s"})
