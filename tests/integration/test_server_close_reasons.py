# Goal of this test: every connection is closed exactly once with one reason, the counts by reason match what the clients did, and accepted == open + sum(closed) up to the counters printed at SIGTERM.
import socket
import signal

from harness import (REASONS, ServerTest, assert_counters_consistent, recv_to_eof,
                     fill_until_paused, reset_close, send_until_blocked)


class CloseReasonsTest(ServerTest):
    def test_one_reason_per_close_and_counts_add_up(self):
        # heartbeat < fin_timeout < write_timeout: a paused connection closed by
        # heartbeat would mean the heartbeat is not suspended while paused; a half-closed
        # one closed by write-timeout would mean its FIN went unnoticed.
        srv = self.start_server(sets={"heartbeat_timeout": "1s", "write_timeout": "2s",
                                      "fin_timeout": "1200ms", "output_high_watermark": "64k",
                                      "shutdown_timeout": "10s", "log_level": "debug"})
        expect = {}  # client port -> reason

        for _ in range(3):  # eof
            s = self.connect(srv.port)
            self.echo_once(s)
            expect[s.getsockname()[1]] = "eof"
            s.close()
        for _ in range(2):  # reset
            s = self.connect(srv.port)
            self.echo_once(s)
            expect[s.getsockname()[1]] = "reset"
            reset_close(s)
        silent = []
        for _ in range(2):  # heartbeat: connect and say nothing
            s = self.connect(srv.port)
            expect[s.getsockname()[1]] = "heartbeat"
            silent.append(s)
        s = self.connect(srv.port)  # write-timeout: never reads (heartbeat is suspended)
        expect[s.getsockname()[1]] = "write-timeout"
        send_until_blocked(s, 64 << 20, stall=0.2)
        s = self.connect(srv.port)  # fin-timeout: paused, half-closes, never reads
        expect[s.getsockname()[1]] = "fin-timeout"
        fill_until_paused(srv, s, 64 << 10)
        s.shutdown(socket.SHUT_WR)

        c = srv.wait_counters(lambda c: c["open"] == 0, 15, "all connections closed")
        print(f"counters before SIGTERM: {c['closed']}")
        assert_counters_consistent(self, c)

        draining = []
        for _ in range(2):  # shutdown: still open at SIGTERM
            s = self.connect(srv.port)
            self.echo_once(s)
            expect[s.getsockname()[1]] = "shutdown"
            draining.append(s)
        srv.signal(signal.SIGTERM)
        for s in draining:
            self.assertEqual(recv_to_eof(s, 10), b"", "drain sent unexpected data")
            s.close()
        self.assertEqual(srv.wait_exit(15), 0, srv.log_tail())

        final = srv.exit_counters()
        print(f"counters at exit: {final}")
        assert_counters_consistent(self, final)
        want = {r: 0 for r in REASONS}
        for r in expect.values():
            want[r] += 1
        self.assertEqual(final["closed"], want, "closes by reason")
        self.assertEqual(final["accepted"], len(expect))
        self.assertEqual(final["open"], 0)

        lines = srv.close_lines()
        self.assertEqual(len(lines), len(expect), f"one debug close line per connection: {lines}")
        for port, reason in expect.items():
            mine = srv.close_line_for(port)
            self.assertEqual([l.get("reason") for l in mine], [reason], f"client port {port}")
