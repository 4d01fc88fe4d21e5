# Goal of this test: the kernel figures count IPv6 TCP sockets too: with IPv6 sockets held open during a run, the report gives /proc/net/sockstat6's TCP6 inuse beside sockstat's IPv4-only inuse (table, JSON, --expect kernel.sockstat6.inuse), where it printed only the IPv4 figure.
import re
import socket

from harness import ServerTest
from test_client_helpers import run_client

HELD = 50


class ClientSockstat6Test(ServerTest):
    def test_ipv6_sockets_counted(self):
        try:
            socket.socket(socket.AF_INET6).close()
        except OSError as e:
            self.skipTest(f"no IPv6 here: {e}")
        srv = self.start_server(listen="[::1]:0")
        held = []
        self.addCleanup(lambda: [s.close() for s in held])
        for _ in range(HELD):
            held.append(socket.create_connection(("::1", srv.port), timeout=10))
        args = ["--server", f"[::1]:{srv.port}", "--connections", 2, "--settle", "0",
                "--expect", f"kernel.sockstat6.inuse>={HELD}"]
        run = run_client(self, args + ["--json"])
        table = run_client(self, args)
        line = next(x for x in table.out.splitlines() if "sockstat:" in x)
        print(f"{HELD} IPv6 connections held:{line}, JSON {run.doc['kernel'].get('sockstat6')}")
        self.assertEqual(run.rc, 0, str(run))
        self.assertGreaterEqual(run.doc["kernel"]["sockstat6"]["inuse"], HELD)
        m = re.search(r"inuse (\d+) \(IPv4 (\d+), IPv6 (\d+)\)", line)
        self.assertIsNotNone(m, line)
        self.assertEqual(int(m.group(1)), int(m.group(2)) + int(m.group(3)))
        self.assertGreaterEqual(int(m.group(3)), HELD)
