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
        # The echo RTT of each second: heartbeats every 300 ms are answered in every
        # full second, in well under the run's reply deadline.
        for r in rows[:-1]:
            p50, p99 = float(r["rtt_p50_ms"]), float(r["rtt_p99_ms"])
            self.assertGreater(p50, 0)
            self.assertLessEqual(p50, p99)
            self.assertLess(p99, 1000)

    def test_plot_alone_writes_its_timeline(self):
        import shutil
        if shutil.which("gnuplot") is None:
            self.skipTest("gnuplot is not installed")
        srv = self.start_server()
        d = tempfile.mkdtemp(prefix="teardown-plot-")
        self.addCleanup(shutil.rmtree, d, True)
        png = os.path.join(d, "run.png")
        run = run_client(self, ["--server", server_addr(srv), "--connections", N,
                                "--scenario", "echo", "--duration", "1500ms", "--plot", png,
                                "--quiet"])
        self.assertEqual(run.rc, 0, str(run))
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        with open(png + ".csv") as f:
            rows = list(csv.DictReader(f))
        print(f"--plot alone: {os.path.getsize(png)} byte PNG, {len(rows)} timeline rows")
        self.assertGreaterEqual(len(rows), 2)
