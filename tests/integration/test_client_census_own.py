# Goal of this test: the report's client census counts the run's own sockets only: a second run against the same server reports its own TIME_WAIT, not the first run's too (also when the runs use several source addresses, whose port numbers overlap), and a socket another program holds towards the same port is not counted.
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

    def test_runs_from_several_sources_count_their_own(self):
        # The kernel picks port numbers per source address, so two runs from 127.0.0.2-3
        # and one from the default address share many port numbers: matched by port
        # alone, the later runs counted hundreds of the earlier runs' TIME_WAIT too.
        srv = self.start_server()
        totals = []
        for sources in (["--sources", "127.0.0.2-127.0.0.3"],
                        ["--sources", "127.0.0.2-127.0.0.3"], []):
            run = run_client(self, ["--server", server_addr(srv), "--connections", 2000,
                                    "--scenario", "close", "--settle", "2s", "--json"]
                             + sources)
            self.assertEqual(run.rc, 0, str(run))
            c = run.doc["census"]["client"]
            totals.append((c["total"], c["states"]["time_wait"]))
        print("client census (total, time_wait) per run:", totals)
        self.assertEqual(totals, [(2000, 2000)] * 3)
