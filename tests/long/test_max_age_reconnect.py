# Goal of this test: max_connection_age=2s with 1,000 idle load-client connections and --reconnect: every FIN goes out at an age within [0.9 x 2 s, 1.1 x 2 s + 50 ms] (the close lines' shut_age_ms), reason max-age, every connection reconnects, none is reset; with the echo scenario flowing, 0 mismatches and the interrupted messages resent.
from harness import Server, ServerTest
from test_client_helpers import run_client, server_addr

N = 1000
AGE_MS = 2000
RUN_S = 7


class MaxAgeReconnectTest(ServerTest):
    def server(self):
        return Server(self, sets={"max_connection_age": f"{AGE_MS}ms",
                                  "max_connection_age_jitter": "10%",
                                  "max_connection_age_grace": "10s", "log_level": "debug",
                                  "log_buffer": "16m", "heartbeat_timeout": "0"}).start()

    def test_idle_connections_end_at_their_age(self):
        srv = self.server()
        run = run_client(self, ["--server", server_addr(srv), "--scenario", "idle",
                                "--connections", N, "--duration", f"{RUN_S}s", "--heartbeat",
                                "1s", "--reconnect", "--settle", "0", "--json"],
                         timeout=RUN_S + 60)
        c, fails = run.counts(), run.doc["failures"]
        self.assertEqual(srv.stop(30), 0)
        lines = srv.close_lines()
        aged = [f for f in lines if f["reason"] == "max-age"]
        ages = sorted(int(f["shut_age_ms"]) for f in aged)
        print(f"{N} idle connections, max_connection_age {AGE_MS} ms +-10%: {len(aged)} ended "
              f"by max-age, FIN ages {ages[0]}..{ages[-1]} ms (p50 {ages[len(ages) // 2]}); "
              f"client: closed_by_server {c['closed_by_server']}, reconnects "
              f"{c['reconnects']}, failures {fails}; server closed "
              f"{srv.exit_counters()['closed']}")
        self.assertGreaterEqual(len(aged), N)  # each first connection at least once
        for a in ages:
            self.assertGreaterEqual(a, 0.9 * AGE_MS)
            self.assertLessEqual(a, 1.1 * AGE_MS + 50)
        self.assertEqual(srv.exit_counters()["closed"]["reset"], 0)
        self.assertEqual(srv.exit_counters()["log_dropped"], 0)
        self.assertGreaterEqual(c["closed_by_server"], N)
        self.assertGreaterEqual(c["reconnects"], N)
        self.assertEqual(c["echo_mismatch"], 0)
        for kinds in fails.values():
            self.assertEqual(kinds, {}, fails)

    def test_echo_flowing_loses_nothing(self):
        srv = self.server()
        run = run_client(self, ["--server", server_addr(srv), "--scenario", "echo",
                                "--connections", 100, "--pipeline", 4, "--duration",
                                f"{RUN_S}s", "--reconnect", "--settle", "0", "--json"],
                         timeout=RUN_S + 60)
        c, fails = run.counts(), run.doc["failures"]
        self.assertEqual(srv.stop(30), 0)
        closed = srv.exit_counters()["closed"]
        print(f"echo, 100 connections, pipeline 4: closed_by_server {c['closed_by_server']}, "
              f"reconnects {c['reconnects']}, interrupted {c['interrupted']}, mismatches "
              f"{c['echo_mismatch']}, messages {c['messages']}, failures {fails}; server "
              f"closed {closed}")
        self.assertEqual(c["echo_mismatch"], 0, str(run))
        self.assertGreater(closed["max-age"], 100)
        self.assertEqual(closed["reset"], 0)
        self.assertGreaterEqual(c["reconnects"], 100)
        for kinds in fails.values():
            self.assertEqual(kinds, {}, fails)
        self.assertEqual(run.rc, 0, str(run))
