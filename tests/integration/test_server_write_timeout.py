# Goal of this test: a peer that never reads holds at most output_high_watermark (+ one read) of echo in the server, is closed by write_timeout, and does not make the server's memory grow with what it sends.
import time

from harness import ServerTest, rss_kb, send_until_blocked

WATERMARK = 64 << 10
READ_SIZE = 16 << 10
ATTEMPT = 50 << 20  # the client tries to send 50 MB


class WriteTimeoutTest(ServerTest):
    def test_never_reading_peer(self):
        srv = self.start_server(sets={"output_high_watermark": "64k", "read_size": "16k",
                                      "write_timeout": "1s", "heartbeat_timeout": "30s",
                                      "fin_timeout": "30s", "log_level": "debug"})
        warm = self.connect(srv.port)
        self.echo_once(warm, b"w" * 100000)
        warm.close()
        srv.wait_counters(lambda c: c["open"] == 0, 10, "the warm-up connection closed")
        rss0 = rss_kb(srv.pid)
        base = srv.counters()

        s = self.connect(srv.port)
        cport = s.getsockname()[1]
        t0 = time.monotonic()
        sent = send_until_blocked(s, ATTEMPT, stall=0.3)
        t_stall = time.monotonic()
        c = srv.counters()
        rss1 = rss_kb(srv.pid)
        held = (c["bytes_in"] - base["bytes_in"]) - (c["bytes_out"] - base["bytes_out"])
        print(f"client sent {len(sent)} of {ATTEMPT} bytes; server holds {held} bytes of "
              f"echo; RSS {rss0} -> {rss1} KiB (+{rss1 - rss0} KiB)")
        self.assertLess(len(sent), ATTEMPT, "the server kept reading from a peer that never reads")
        if c["open"] == 1:
            self.assertLessEqual(held, WATERMARK + READ_SIZE,
                                 f"queued echo above watermark + one read: {c}")
        self.assertLess(rss1 - rss0, 4096, "server RSS grew with what the client sent")

        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "the write timeout to close it")
        took = time.monotonic() - t0
        print(f"closed {took:.3f}s after the client started sending, "
              f"{time.monotonic() - t_stall:.3f}s after its send stalled (write_timeout 1s)")
        self.assertEqual(c["closed"]["write-timeout"], 1, f"close reason in {c}")
        self.assertGreaterEqual(took, 0.9)
        lines = srv.close_line_for(cport)
        self.assertEqual([l.get("reason") for l in lines], ["write-timeout"],
                         f"{srv.close_lines()}")
        rss2 = rss_kb(srv.pid)
        print(f"RSS after the close: {rss2} KiB")
