# Goal of this test: abusive peers (slowloris at one byte per second, peers that never read, random binary at full speed) cost bounded memory, are echoed correctly or closed by write_timeout, and crash nothing.
import os
import socket
import threading
import time

from harness import ServerTest, rss_kb, send_until_blocked, server_bin, wait_until

# ASan keeps freed memory in quarantine (256 MB by default), so RSS says nothing about the
# server's own bounds in the sanitizer build: the RSS bounds are checked on the plain build;
# the held-echo bound (the server's own counters) on both.
def sanitized():
    return "/asan/" in str(server_bin())  # read per test: the runner sets SERVER_BIN late

HWM = 64 << 10
READ = 16 << 10


class AbuseTest(ServerTest):
    def test_slowloris_one_byte_per_second(self):
        srv = self.start_server(sets={"heartbeat_timeout": "3s"})
        socks = [self.connect(srv.port) for _ in range(50)]
        rss0 = rss_kb(srv.pid)
        for second in range(5):
            for i, s in enumerate(socks):
                s.sendall(bytes([65 + (i + second) % 26]))
            for i, s in enumerate(socks):
                self.assertEqual(s.recv(1), bytes([65 + (i + second) % 26]))
            time.sleep(1)
        c = srv.counters()
        print(f"50 slowloris peers, 1 byte/s for 5 s (heartbeat 3s): open {c['open']}, "
              f"RSS {rss0} -> {rss_kb(srv.pid)} KiB")
        self.assertEqual(c["open"], 50, "a peer that sends within the heartbeat stays")
        if not sanitized():
            self.assertLess(rss_kb(srv.pid) - rss0, 2048)

    def test_never_reading_peers_bounded_then_closed(self):
        n = 20
        srv = self.start_server(sets={"write_timeout": "2s", "output_high_watermark": "64k",
                                      "read_size": "16k"})
        rss0 = rss_kb(srv.pid)
        socks = [self.connect(srv.port) for _ in range(n)]
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        heap0 = srv.counters()["heap_kb"]
        sent = [len(send_until_blocked(s, 64 << 20, stall=0.3)) for s in socks]
        c = srv.counters()
        held = c["bytes_in"] - c["bytes_out"]
        grew = rss_kb(srv.pid) - rss0
        heap = c["heap_kb"] - heap0
        print(f"{n} peers that never read sent {sum(sent) >> 20} MiB in all; the server holds "
              f"{held} bytes of echo ({held / n / 1024:.0f} KiB each, limit "
              f"{(HWM + READ) >> 10} KiB); heap (mallinfo2) +{heap} KiB; RSS +{grew} KiB")
        self.assertLessEqual(held, n * (HWM + READ))
        if not sanitized():  # ASan replaces malloc: mallinfo2 says nothing there
            self.assertLessEqual(heap, n * (HWM + READ) // 1024 + 256)
        if not sanitized():
            self.assertLess(grew, n * (HWM + READ) // 1024 + 2048)
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "write_timeout to close them")
        self.assertEqual(c["closed"]["write-timeout"], n, f"{c}")

    def test_random_binary_at_full_speed(self):
        srv = self.start_server()
        rss0 = rss_kb(srv.pid)
        errors = []

        def blast(s, seconds=3.0):
            data = os.urandom(1 << 20)
            got = bytearray()
            reader_done = threading.Event()

            def reader():
                while True:
                    d = s.recv(1 << 16)
                    if not d:
                        break
                    got.extend(d)
                reader_done.set()
            t = threading.Thread(target=reader, daemon=True)
            t.start()
            sent = 0
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                s.sendall(data)
                sent += len(data)
            s.shutdown(socket.SHUT_WR)
            reader_done.wait(30)
            if bytes(got) != (data * (sent // len(data)))[:len(got)] or len(got) != sent:
                errors.append(f"echo mismatch: sent {sent}, got {len(got)}")
            return sent
        socks = [self.connect(srv.port, timeout=30) for _ in range(4)]
        totals = []
        threads = [threading.Thread(target=lambda s=s: totals.append(blast(s))) for s in socks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "all blasters closed")
        grew = rss_kb(srv.pid) - rss0
        print(f"4 peers sent {sum(totals) >> 20} MiB of random bytes in 3 s and read the "
              f"echo: {len(errors)} mismatches; RSS +{grew} KiB; closed {c['closed']}")
        self.assertEqual(errors, [])
        self.assertEqual(c["closed"]["eof"], 4)
        if not sanitized():
            self.assertLess(grew, 4 * (HWM + READ) // 1024 + 4096)
        self.assertTrue(srv.alive())
