# Goal of this test: an idle connection costs the server at most IDLE_BUDGET bytes of heap (the counters' heap_kb, mallinfo2), so struct conn cannot grow back to carrying its write side and its ending embedded.
from harness import ServerTest, server_bin

WARM, N = 100, 2000

# The heap an idle connection holds (server/conn.h): its struct conn, one malloc chunk
# (360 bytes with libevent 2.1's 128-byte struct event: a 368-byte chunk), and libevent's
# share for its fd and its armed heartbeat alarm, 48 bytes measured here (the fd's evmap
# entry, its slots in the fd-indexed array and in the timer min-heap, which grow by
# doubling): 416 bytes measured. With the write side and the ending embedded (568 bytes,
# a 576-byte chunk) it measured 624. The budget leaves 48 bytes for the allocator's
# 16-byte steps and the arrays' doubling at other counts, not for either part allocated
# at every accept (struct conn_end, the smaller, is a 64-byte chunk).
IDLE_BUDGET = 464


class IdleMemoryTest(ServerTest):
    def test_heap_per_idle_connection(self):
        if "/asan/" in str(server_bin()):
            self.skipTest("ASan replaces malloc: mallinfo2 (heap_kb) counts nothing there")
        # Freed chunks in glibc's per-thread cache count as in use in mallinfo2 (up to
        # about 230 KiB, stats.c): without the cache the delta is the live bytes alone.
        srv = self.start_server(sets={"heartbeat_timeout": "10m", "write_timeout": "10m"},
                                env={"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"})
        # The first connections allocate what is allocated once (the read buffer, the
        # arrays' first sizes): measured from WARM open connections on.
        socks = [self.connect(srv.port) for _ in range(WARM)]
        c0 = srv.wait_counters(lambda c: c["open"] == WARM, 20, f"{WARM} connections")
        socks += [self.connect(srv.port) for _ in range(N)]
        c1 = srv.wait_counters(lambda c: c["open"] == WARM + N, 30, f"{WARM + N} connections")
        per = (c1["heap_kb"] - c0["heap_kb"]) * 1024 / N
        print(f"heap (mallinfo2) {c0['heap_kb']} KiB at {WARM} idle connections, "
              f"{c1['heap_kb']} KiB at {WARM + N}: {per:.0f} bytes per idle connection "
              f"(budget {IDLE_BUDGET}); RSS {c1['rss_kb'] - c0['rss_kb']} KiB more "
              f"({(c1['rss_kb'] - c0['rss_kb']) * 1024 / N:.0f} bytes each)")
        self.assertGreater(c1["heap_kb"], 0, "heap_kb not reported (mallinfo2)")
        self.assertLessEqual(per, IDLE_BUDGET, "an idle connection's heap grew: what in "
                             "struct conn does an idle connection not use?")
        self.assertEqual(len(socks), WARM + N)

