# Goal of this test: the report's client census counts the run's own sockets only: a second run against the same server reports its own TIME_WAIT, not the first run's too, and a socket another program holds towards the same port is not counted.
import socket

from harness import ServerTest
from test_client_helpers import run_client, server_addr


class ClientCensusOwnTest(ServerTest):
    def test_second_run_counts_its_own_sockets(self):
        srv = self.start_server()
        other = socket.create_connection(("127.0.0.1", srv.port))  # not the client's
        self.addCleanup(other.close)
        totals = []
        for _ in range(3):
            run = run_client(self, ["--server", server_addr(srv), "--connections", 40,
                                    "--scenario", "close", "--settle", "2s", "--json",
                                    "--expect", "client.time_wait=40"])
            c = run.doc["census"]["client"]
            totals.append((c["total"], c["states"]["time_wait"]))
            self.assertEqual(run.rc, 0, str(run))
        print("client census (total, time_wait) per run:", totals)
        self.assertEqual(totals, [(40, 40)] * 3)
