# Goal of this test: an expectation about a server in another network namespace cannot be checked from the client's namespace, so it is reported as unknown and the exit status is 3 (non-zero), while client-side expectations are still checked.
import netns
from harness import ServerTest
from test_client_helpers import run_client

N = 10


class ClientNetnsUnknownTest(ServerTest):
    def test_server_in_other_namespace(self):
        netns.require_root(self)
        pair = netns.new_pair(self)
        srv = self.start_server_in(pair)
        run = run_client(self, ["--server", f"{pair.srv_ip}:{srv.port}", "--connections", N,
                                "--scenario", "close", "--settle", "1s", "--json",
                                "--expect", "server.close_wait=0",
                                "--expect", "client.fin_wait2=0", "--expect", f"completed={N}"],
                         prefix=pair.exec_prefix("cli"))
        e = run.expectation("server.close_wait=0")
        print(f"server in {pair.srv_ns}, client in {pair.cli_ns}: server.close_wait -> "
              f"{e['result']} ({e.get('why')}), client.fin_wait2 -> "
              f"{run.expectation('client.fin_wait2=0')['result']}, exit {run.rc}")
        self.assertEqual(e["result"], "unknown", str(run))
        self.assertFalse(run.doc["census"]["server"]["visible"])
        self.assertTrue(run.doc["census"]["client"]["visible"])
        self.assertEqual(run.expectation("client.fin_wait2=0")["result"], "ok", str(run))
        self.assertEqual(run.expectation(f"completed={N}")["result"], "ok", str(run))
        self.assertEqual(run.rc, 3, str(run))

    def test_violation_wins_over_unknown(self):
        netns.require_root(self)
        pair = netns.new_pair(self)
        srv = self.start_server_in(pair)
        run = run_client(self, ["--server", f"{pair.srv_ip}:{srv.port}", "--connections", N,
                                "--settle", "0", "--expect", "server.close_wait=0",
                                "--expect", f"established={N + 1}"],
                         prefix=pair.exec_prefix("cli"))
        self.assertRegex(run.out, r"server\.close_wait=0\s+unknown: the server's sockets are "
                                  r"not visible from here")
        self.assertEqual(run.rc, 1, str(run))
