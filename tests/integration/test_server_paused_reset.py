# Goal of this test: an RST from a peer whose reading the server has paused (output above the watermark) closes the connection at once with reason reset and leaves the server idle.
import time

from harness import ServerTest, cpu_over, send_until_blocked

LIMIT = 64 << 20


class PausedResetTest(ServerTest):
    def test_reset_while_paused(self):
        srv = self.start_server(sets={"output_high_watermark": "64k", "read_size": "16k",
                                      "log_level": "debug"})
        s = self.connect(srv.port)
        self.echo_once(s)
        cport = s.getsockname()[1]
        sent = send_until_blocked(s, LIMIT)
        print(f"client sent {len(sent)} bytes before the server stopped reading")
        self.assertLess(len(sent), LIMIT, "the server never paused reading")
        c = srv.counters()
        self.assertEqual(c["open"], 1, f"{c}")
        # close() with unread echo in the receive buffer: the kernel sends RST.
        t0 = time.monotonic()
        s.close()
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "the server to close the connection")
        took = time.monotonic() - t0
        print(f"RST -> server close observed after {took * 1000:.1f} ms (counter polling)")
        self.assertEqual(c["closed"]["reset"], 1, f"close reason in {c}")
        self.assertLess(took, 2.0, "the server did not close at once")
        lines = srv.close_line_for(cport)
        self.assertEqual(len(lines), 1, f"close lines for port {cport}: {srv.close_lines()}")
        self.assertEqual(lines[0].get("reason"), "reset", f"{lines[0]}")
        cpu, wall = cpu_over(srv.pid, 1.0)
        print(f"server CPU after the reset: {cpu:.3f}s over {wall:.2f}s ({100 * cpu / wall:.1f}%)")
        self.assertLess(cpu / wall, 0.05, "server spins after the reset")
        self.assertTrue(srv.alive())
