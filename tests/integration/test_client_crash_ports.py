# Goal of this test: crash connections never reuse a source port that an earlier crash of the same run used (its SYN would meet the server's stale socket, whose challenge ACK our kernel answers with RST, resetting it before the dead peer is detected): with ip_local_port_range narrowed to 100 ports, a churn run uses each port once, the server counts zero resets, the rest are explained `crash_ports` failures, and a one-pass run that cannot fit is refused at start (exit 2).
"""Server and client share the test's own network namespace (loopback, the range
narrowed there only). The server's heartbeat and keepalive are far off, so every crashed
socket stays ESTABLISHED on the server for the whole test: any close it counts during the
run came from a reused 4-tuple."""
import netns
from harness import Server, ServerTest
from test_client_helpers import run_client

PORTS = 100
SYSCTLS = {"net.ipv4.ip_local_port_range": f"40000 {40000 + PORTS - 1}"}
SETS = {"heartbeat_timeout": "600s", "keepalive": "no", "user_timeout": "0"}


class ClientCrashPortsTest(ServerTest):
    def setup_ns(self):
        netns.require_root(self)
        pair = netns.new_pair(self, sysctls=SYSCTLS)
        srv = Server(self, sets=SETS)
        srv.cmd = pair.exec_prefix("cli") + srv.cmd
        return pair, srv.start()

    def test_churn_uses_each_port_once(self):
        pair, srv = self.setup_ns()
        # 100/s for 3 s: 300 crashes wanted, 3 times the range (connect() alone starts
        # reusing ports after half of it). Two workers share the ports out.
        run = run_client(self, ["--server", f"127.0.0.1:{srv.port}", "--scenario", "crash",
                                "--connections", 10, "--procs", 2, "--rate", 100,
                                "--duration", "3s", "--messages", 1, "--backoff", "20ms",
                                "--settle", "0", "--json"],
                         prefix=pair.exec_prefix("cli"))
        c = srv.counters()
        crashed = run.doc["dead_peers"]["crash"]["count"]
        fails = run.doc["failures"]["connect"]
        print(f"{PORTS} ports: {crashed} crashed, client failures {fails}, server closed "
              f"{c['closed']}, open {c['open']}")
        # Every port once, none twice; the server's own listening port (port 0 takes one of
        # the narrowed range) is held by it: bind() says EADDRINUSE, the port is skipped.
        usable = PORTS - (40000 <= srv.port < 40000 + PORTS)
        self.assertEqual(c["closed"]["reset"], 0, c)
        self.assertEqual(crashed, usable, str(run))
        self.assertEqual(c["open"], usable, c)  # each crash still ESTABLISHED there
        self.assertEqual(set(fails), {"crash_ports"}, str(run))
        self.assertGreater(fails["crash_ports"], 0, str(run))
        self.assertIn("crash ports used up", run.err)
        self.assertEqual(run.rc, 1, str(run))

    def test_one_pass_that_cannot_fit_is_refused(self):
        pair, srv = self.setup_ns()
        # Two workers, two sources: worker 0 has the even connection ids, all from
        # 127.0.0.2, but only half of the 100 ports.
        args = ["--server", f"127.0.0.1:{srv.port}", "--scenario", "crash", "--procs", 2,
                "--sources", "127.0.0.2-127.0.0.3", "--messages", 1, "--settle", "0"]
        run = run_client(self, args + ["--connections", PORTS + 2],
                         prefix=pair.exec_prefix("cli"))
        print(run.err.strip())
        self.assertEqual(run.rc, 2, str(run))
        self.assertIn("51 crash connections from 127.0.0.2", run.err)
        self.assertEqual(run.out, "")
        # Exactly the share fits.
        run = run_client(self, args + ["--connections", PORTS, "--json",
                                       "--expect", f"crashed={PORTS}"],
                         prefix=pair.exec_prefix("cli"))
        self.assertEqual(run.rc, 0, str(run))
        c = srv.counters()
        self.assertEqual(c["closed"]["reset"], 0, c)
        self.assertEqual(c["open"], PORTS, c)
