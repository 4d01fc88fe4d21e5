# Goal of this test: a peer that never reads holds at most output_high_watermark (+ one read) of echo in the server, is closed by write_timeout, and does not make the server's memory grow with what it sends.
import time

from harness import ServerTest, rss_kb, send_until_blocked, unread, wait_until

WATERMARK = 64 << 10
READ_SIZE = 16 << 10
ATTEMPT = 50 << 20  # the client tries to send 50 MB
READ_BURST = 512 << 10  # what the slow reader takes every 0.25 s


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

    def test_slow_reader_kept_while_it_makes_progress(self):
        """write_timeout counts time without progress, not time with output queued: a peer
        that keeps reading, slowly, for three write_timeouts stays open, although its
        reads do not always let the server write (the kernel reports a socket writable
        only once a third of its send buffer is free); once it stops reading it is closed
        write_timeout after its last read (after which its kernel acknowledges the segments
        the read made room for), and at most a quarter of it after its receive buffer
        stops taking data. Code that counts only its own writes as progress closes it
        early, or during the reads."""
        import socket
        import threading
        srv = self.start_server(sets={"output_high_watermark": "64k", "read_size": "16k",
                                      "write_timeout": "1s", "heartbeat_timeout": "30s",
                                      "fin_timeout": "30s", "log_level": "debug"})
        s = self.connect(srv.port)
        cport = s.getsockname()[1]
        stop = threading.Event()

        def send_forever():  # keeps the server's input full, so its output never runs dry
            chunk = b"s" * 65536
            try:
                while not stop.is_set():
                    s.sendall(chunk)
            except OSError:
                pass  # the server's close ends it
        s.settimeout(None)
        sender = threading.Thread(target=send_forever, daemon=True)
        sender.start()
        self.addCleanup(stop.set)

        def held():  # echo the server holds; it pauses reading at the watermark
            c = srv.counters()
            return c["bytes_in"] - c["bytes_out"]
        wait_until(lambda: held() >= WATERMARK, 10,
                   "the server to queue echo for the non-reading peer")
        t_start = time.monotonic()
        got = reads = 0
        while time.monotonic() - t_start < 3.0:  # 3 x write_timeout, reading every 0.25 s
            time.sleep(0.25)
            burst = 0
            while burst < READ_BURST:
                try:
                    n = len(s.recv(READ_BURST - burst, socket.MSG_DONTWAIT))
                except BlockingIOError:
                    break
                if n == 0:
                    self.fail(f"the server closed a peer that was reading, after {reads} "
                              f"reads: {srv.close_lines()} {srv.counters()}")
                burst += n
            got += burst
            reads += 1
        t_last = time.time()
        c = srv.counters()
        print(f"read {got} bytes in {reads} slow reads over 3 s; server counters "
              f"open={c['open']} closed={c['closed']}")
        self.assertEqual(c["open"], 1, f"a reading peer was closed: {c}")
        self.assertGreater(c["bytes_in"] - c["bytes_out"], 0, "no echo was queued: the "
                           "test did not exercise the write deadline")
        # Our kernel goes on taking the server's data (and acknowledging it) until our
        # receive buffer is full: the server's last progress is when that stops.
        t_full, inq = t_last, unread(s)
        for i in range(500):  # 5 s, every 10 ms; the server's counters every 100 ms
            now_inq = unread(s)
            if now_inq > inq:
                inq, t_full = now_inq, time.time()
            if i % 10 == 9 and srv.counters()["open"] == 0:
                break
            time.sleep(0.01)
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "the write timeout to close it")
        self.assertEqual(c["closed"]["write-timeout"], 1, f"close reason in {c}")
        lines = srv.close_line_for(cport)
        self.assertEqual([l.get("reason") for l in lines], ["write-timeout"],
                         f"{srv.close_lines()}")
        since_read, since_full = lines[0]["time"] - t_last, lines[0]["time"] - t_full
        print(f"closed {since_read:.3f}s after our last read, {since_full:.3f}s after our "
              f"receive buffer stopped filling (write_timeout 1s)")
        # Never early: our last read freed far more than a segment, which the server's
        # kernel sent and we acknowledged right after it: that is the last progress that
        # counts (later, smaller acknowledgements while our window grows may not: a
        # segment is the unit). The log's time is truncated to the ms. At most a quarter
        # late (the server looks every 250 ms) after the last acknowledgement, plus our
        # delayed ACK of the last data.
        self.assertGreaterEqual(since_read, 0.99)
        self.assertLessEqual(since_full, 1.0 + 0.25 + 0.25)
