# Goal of this test: --timeline writes one CSV row per second with the per-state socket counts of both ends (plus a final row after settling) while a --duration run holds its connections.
import csv
import os
import tempfile

from harness import ServerTest
from test_client_helpers import run_client, server_addr

N = 30


class ClientTimelineTest(ServerTest):
    def test_timeline(self):
        srv = self.start_server()
        fd, path = tempfile.mkstemp(prefix="teardown-timeline-", suffix=".csv")
        os.close(fd)
        self.addCleanup(os.unlink, path)
        run = run_client(self, ["--server", server_addr(srv), "--connections", N,
                                "--scenario", "idle", "--heartbeat", "300ms",
                                "--duration", "2500ms", "--timeline", path, "--quiet"])
        self.assertEqual(run.rc, 0, str(run))
        with open(path) as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            print(r["time_s"], "client est", r["client_established"], "server est",
                  r["server_established"], "client tw", r["client_time_wait"])
        self.assertGreaterEqual(len(rows), 3)  # seconds 1, 2 and the final row
        self.assertIn("server_close_wait", rows[0])
        times = [float(r["time_s"]) for r in rows]
        self.assertEqual(times, sorted(times))
        self.assertAlmostEqual(times[0], 1.0, delta=0.5)
        # While held: every connection established on both ends.
        self.assertEqual(int(rows[0]["client_established"]), N)
        self.assertEqual(int(rows[0]["server_established"]), N)
        self.assertEqual(int(rows[0]["server_listen"]), 1)
        # At the end: closed by the client, so TIME_WAIT on its side, nothing established.
        self.assertEqual(int(rows[-1]["client_time_wait"]), N)
        self.assertEqual(int(rows[-1]["server_established"]), 0)
        self.assertEqual(int(rows[-1]["established"]), N)
