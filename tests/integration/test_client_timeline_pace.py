# Goal of this test: a census that takes long (every read of its dump made to cost 150 ms of CPU by the stall shim) is taken by the timeline at most every ten times its length, the rows between keep coming every second with their census columns empty, and the final row still has the census.
import csv
import os
import tempfile

from harness import ServerTest, shim_env
from test_client_helpers import run_client, server_addr

N = 10
SLOW_MS = 150


class ClientTimelinePaceTest(ServerTest):
    def test_slow_census_leaves_rows_without_it(self):
        srv = self.start_server()
        fd, path = tempfile.mkstemp(prefix="teardown-pace-", suffix=".csv")
        os.close(fd)
        self.addCleanup(os.unlink, path)
        run = run_client(self, ["--server", server_addr(srv), "--connections", N,
                                "--scenario", "idle", "--heartbeat", "300ms",
                                "--duration", "4s", "--timeline", path, "--quiet"],
                         env=shim_env(f"call=recvmsg,spin_ms={SLOW_MS}"))
        self.assertEqual(run.rc, 0, str(run))
        with open(path) as f:
            rows = list(csv.DictReader(f))
        marks = ["census" if r["client_established"] else "-" for r in rows]
        print("rows:", [(r["time_s"], m) for r, m in zip(rows, marks)])
        times = [float(r["time_s"]) for r in rows]
        gaps = [b - a for a, b in zip(times, times[1:-1])]
        self.assertTrue(all(g < 1.5 for g in gaps), f"a row every second: {times}")
        held = rows[:-1]
        with_census = [r for r in held if r["client_established"]]
        self.assertGreaterEqual(len(with_census), 1)
        # At least 3 s (10 x two reads of 150 ms of CPU) from each census to the next.
        self.assertLessEqual(len(with_census), (len(held) + 2) // 3)
        for r in with_census:
            self.assertEqual(int(r["client_established"]), N)
            self.assertEqual(int(r["server_established"]), N)
        for r in held:
            if not r["client_established"]:
                self.assertEqual(r["server_established"], "")
                self.assertEqual(int(r["open"]), N)  # the client's own counts go on
        self.assertEqual(int(rows[-1]["client_time_wait"]), N)
