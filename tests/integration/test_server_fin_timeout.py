# Goal of this test: a peer that half-closes while the server has paused reading and never reads is closed at fin_timeout (reason fin-timeout), with a recorded FIN-to-close of about fin_timeout and no spinning meanwhile.
import socket
import time

from harness import ServerTest, cpu_over, fill_until_paused, unacked

FIN_TIMEOUT = 1.5


class FinTimeoutTest(ServerTest):
    def test_half_closed_peer_that_never_reads(self):
        srv = self.start_server(sets={"output_high_watermark": "64k", "read_size": "16k",
                                      "fin_timeout": "1500ms", "write_timeout": "30s",
                                      "heartbeat_timeout": "30s", "log_level": "debug"})
        s = self.connect(srv.port)
        self.echo_once(s)
        cport = s.getsockname()[1]
        sent = fill_until_paused(srv, s, 64 << 10)
        print(f"server paused reading after {len(sent)} bytes; client send queue "
              f"{unacked(s)} bytes")
        t_fin = time.monotonic()
        s.shutdown(socket.SHUT_WR)  # FIN while the server is not reading; never read
        cpu, wall = cpu_over(srv.pid, 1.0)
        print(f"server CPU while the half-closed peer waits: {cpu:.3f}s over {wall:.2f}s "
              f"({100 * cpu / wall:.1f}%)")
        self.assertLess(cpu / wall, 0.05, "server spins on the peer's FIN while paused "
                        "(EV_CLOSED armed alone or level-triggered?)")
        c = srv.wait_counters(lambda c: c["open"] == 0, 10,
                              "the server to close the half-closed connection")
        took = time.monotonic() - t_fin
        f2c = c["fin_to_close_us"]
        print(f"client FIN -> server close observed after {took:.3f}s; server-recorded "
              f"fin_to_close_us max {f2c['max']} (fin_timeout {FIN_TIMEOUT}s)")
        self.assertEqual(c["closed"]["fin-timeout"], 1, f"close reason in {c}")
        self.assertEqual(f2c["count"], 1, f"fin_to_close_us in {c}")
        # The server's own FIN-to-close, on its own clock: never early (libevent's coarse
        # clock rings alarms a few ms early; conn_deadline_due re-arms for the rest).
        self.assertGreaterEqual(f2c["max"], FIN_TIMEOUT * 1e6, f"{f2c}")
        self.assertLessEqual(f2c["max"], (FIN_TIMEOUT + 0.8) * 1e6, f"{f2c}")
        self.assertGreaterEqual(took, 0.9 * FIN_TIMEOUT)
        lines = srv.close_line_for(cport)
        self.assertEqual(len(lines), 1, f"close lines: {srv.close_lines()}")
        self.assertEqual(lines[0].get("reason"), "fin-timeout", f"{lines[0]}")
        us = int(lines[0].get("fin_to_close_us", "-1"))
        print(f"debug close line: fin_to_close_us={us}")
        self.assertGreaterEqual(us, FIN_TIMEOUT * 1e6)
        self.assertLessEqual(us, (FIN_TIMEOUT + 0.8) * 1e6)
