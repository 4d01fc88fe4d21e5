# Goal of this test: with only 10 ephemeral ports (a private namespace's ip_local_port_range), the client refuses a load that cannot fit before starting (exit 2), and when client TIME_WAITs exhaust the ports during a churn run it counts EADDRNOTAVAIL with a clear message and still finishes and reports (exit 1).
import netns
from harness import ServerTest
from test_client_helpers import run_client

SYSCTLS = {"net.ipv4.ip_local_port_range": "40000 40009", "net.ipv4.tcp_tw_reuse": "0"}


class ClientPortExhaustionTest(ServerTest):
    def setup_pair(self):
        netns.require_root(self)
        pair = netns.new_pair(self, sysctls=SYSCTLS)
        return pair, self.start_server_in(pair)

    def test_refused_before_start(self):
        pair, srv = self.setup_pair()
        run = run_client(self, ["--server", f"{pair.srv_ip}:{srv.port}", "--connections", 20],
                         prefix=pair.exec_prefix("cli"))
        print(run.err.strip())
        self.assertEqual(run.rc, 2, str(run))
        self.assertIn("10 ephemeral ports", run.err)
        self.assertIn("--sources", run.err)
        self.assertEqual(run.out, "")

    def test_exhausted_during_churn(self):
        pair, srv = self.setup_pair()
        run = run_client(self, ["--server", f"{pair.srv_ip}:{srv.port}", "--connections", 2,
                                "--scenario", "close", "--messages", 1, "--duration", "1500ms",
                                "--backoff", "50ms", "--settle", "0", "--json"],
                         prefix=pair.exec_prefix("cli"))
        c = run.counts()
        fails = run.doc["failures"]["connect"]
        print(f"10 ports: {c['completed']} completed, failures {fails}, exit {run.rc}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(c["completed"], 10, str(run))  # every port once, then TIME_WAIT
        self.assertGreater(fails.get("EADDRNOTAVAIL", 0), 0, str(run))
        self.assertEqual(set(fails), {"EADDRNOTAVAIL"})
        self.assertIn("ephemeral ports exhausted", run.err)
        self.assertEqual(run.doc["census"]["client"]["states"]["time_wait"], 10)
        self.assertEqual(c["attempted"], c["completed"] + c["failed"] + c["cancelled"])
