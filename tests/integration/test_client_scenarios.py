# Goal of this test: every load-client scenario (echo, close, half-close, reset, idle, silent, mixed) runs against bin/echo-server in correct mode with its --expect checks holding (exit 0).
from harness import ServerTest
from test_client_helpers import run_client, server_addr

N = 40


class ClientScenarioTest(ServerTest):
    def scenario(self, srv, name, *extra, expect=()):
        args = ["--server", server_addr(srv), "--connections", N, "--scenario", name,
                "--json", "--settle", "3s", "--reply-timeout", "5s", *extra]
        for e in ("server.close_wait=0", "client.fin_wait2=0", "client.close_wait=0", *expect):
            args += ["--expect", e]
        run = run_client(self, args)
        self.assertIsNotNone(run.doc, str(run))
        c = run.counts()
        s = run.doc["summary"]
        print(f"{name}: {c['established']} established, {c['completed']} completed, "
              f"{c['closed_by_server']} closed by server, {c['messages']} messages, "
              f"rtt p99 {s['rtt']['p99_ms']:.3f} ms, fin-to-fin p99 {s['fin_to_fin']['p99_ms']:.3f} ms, "
              f"client {run.doc['census']['client']['states']}")
        failed = [e for e in run.doc["expect"] if e["result"] != "ok"]
        self.assertEqual(failed, [], str(run))
        self.assertEqual(run.rc, 0, str(run))
        self.assertEqual(c["attempted"], N)
        self.assertEqual(c["failed"], 0)
        return run

    def test_echo(self):
        srv = self.start_server()
        run = self.scenario(srv, "echo", "--messages", 20, "--pipeline", 4, "--size", 1000,
                            expect=("established=40", "messages=800", "completed=40"))
        self.assertEqual(run.doc["hist"]["rtt_us"]["count"], 800)

    def test_close(self):
        srv = self.start_server()
        # The server answered every FIN: each client socket ended in TIME_WAIT.
        self.scenario(srv, "close", "--messages", 3,
                      expect=("completed=40", "client.time_wait=40", "server.established=0"))

    def test_half_close(self):
        srv = self.start_server()
        run = self.scenario(srv, "half-close", "--messages", 5, "--pipeline", 5, "--size", 4000,
                            expect=("completed=40", "fin_to_fin_p99_ms=2000",
                                    "client.time_wait=40"))
        self.assertEqual(run.doc["hist"]["fin_to_fin_us"]["count"], N)

    def test_reset(self):
        srv = self.start_server()
        # RST: nothing is left on either side but the listener.
        self.scenario(srv, "reset", "--messages", 3,
                      expect=("completed=40", "client.total=0", "server.total=1",
                              "server.listen=1"))

    def test_idle(self):
        srv = self.start_server(sets={"heartbeat_timeout": "1s"})
        # Heartbeats every 200 ms keep the connections past the server's 1 s heartbeat.
        run = self.scenario(srv, "idle", "--duration", "2500ms", "--heartbeat", "200ms",
                            expect=("completed=40", "closed_by_server=0"))
        self.assertGreaterEqual(run.counts()["messages"], N * 8)

    def test_silent(self):
        srv = self.start_server(sets={"heartbeat_timeout": "1s"})
        # Sending nothing: the server's heartbeat closes them after about 1 s.
        run = self.scenario(srv, "silent", "--hold", "10s",
                            expect=("closed_by_server=40", "server_close_max_ms<=4000",
                                    "server_close_p50_ms>=900", "server.established=0"))
        print(f"silent: server closed after p50 {run.doc['summary']['server_close']['p50_ms']:.0f} ms")

    def test_mixed(self):
        srv = self.start_server()
        run = self.scenario(srv, "mixed", "--mix", "echo=30,close=20,half-close=20,reset=10,"
                            "idle=10,silent=10", "--hold", "300ms", "--heartbeat", "100ms",
                            expect=("completed=40",))
        by = run.doc["by_scenario"]
        self.assertEqual(by, {"echo": 12, "close": 8, "half-close": 8, "reset": 4, "idle": 4,
                              "silent": 4, "crash": 0, "vanish": 0})
