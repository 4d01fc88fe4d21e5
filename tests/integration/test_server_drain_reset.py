# Goal of this test: a connection the peer reset before the graceful drain reached it is counted as reason reset (not error, with no warning), because the drain's shutdown(SHUT_WR) failing with ENOTCONN is explained by the socket's pending error.
import signal
import socket

from harness import ServerTest, assert_counters_consistent, reset_close, wait_until

N = 5


class DrainResetTest(ServerTest):
    def test_reset_before_drain_counts_reset(self):
        srv = self.start_server(sets={"shutdown_timeout": "10s"})
        srv.signal(signal.SIGSTOP)
        self.addCleanup(lambda: srv.alive() and srv.signal(signal.SIGCONT))
        # Completed in the kernel while the server is stopped: they wait in the accept
        # queue, and each is reset there (SO_LINGER 0), so the drain accepts sockets
        # already in CLOSE with ECONNRESET pending.
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            reset_close(s)
        srv.signal(signal.SIGTERM)
        srv.signal(signal.SIGCONT)
        self.assertEqual(srv.wait_exit(15), 0, srv.log_tail())
        c = srv.exit_counters()
        warnings = [t for _, _, _, t in srv.log_lines(level="warn") if "reason=error" in t]
        print(f"{N} connections reset in the accept queue, then SIGTERM: closed "
              f"{c['closed']}; {len(warnings)} 'reason=error' warnings")
        assert_counters_consistent(self, c)
        self.assertEqual(c["accepted"], N, f"{c}")
        self.assertEqual(c["closed"]["error"], 0, f"{c}\n{srv.log_tail()}")
        self.assertEqual(c["closed"]["reset"], N, f"{c}")
        self.assertEqual(warnings, [])
