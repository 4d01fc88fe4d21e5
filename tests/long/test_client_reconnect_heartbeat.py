# Goal of this test: against the real server closing idle clients at its heartbeat_timeout, --reconnect counts each close as closed_by_server and replaces it (reconnects, in the JSON and the timeline), never a failure or mismatch, capped by --reconnect-rate; without --reconnect the same closes are failures as before.
import csv
import os
import tempfile

from harness import ServerTest
from test_client_helpers import run_client, server_addr

HEARTBEAT = "300ms"   # the server's; the client's idle heartbeat (2 s) is longer
CONNS = 10


class ClientReconnectHeartbeatTest(ServerTest):
    def idle_run(self, srv, extra, duration="3s"):
        return run_client(self, ["--server", server_addr(srv), "--scenario", "idle",
                                 "--heartbeat", "2s", "--connections", CONNS, "--duration",
                                 duration, "--settle", "0", "--json"] + extra)

    def assert_identity(self, c):
        # every connection ended one way: completed, failed, cancelled or closed
        self.assertEqual(c["attempted"],
                         c["completed"] + c["failed"] + c["cancelled"] + c["closed_by_server"],
                         c)

    def test_reconnects_counted(self):
        srv = self.start_server(sets={"heartbeat_timeout": HEARTBEAT})
        tl = os.path.join(tempfile.mkdtemp(prefix="teardown-rc-"), "tl.csv")
        self.addCleanup(lambda: os.path.exists(tl) and os.remove(tl))
        run = self.idle_run(srv, ["--reconnect", "--reconnect-delay", "200ms",
                                  "--timeline", tl, "--expect", "reconnects>=10"])
        c = run.counts()
        server = srv.counters()
        print(f"heartbeat {HEARTBEAT}, {CONNS} idle clients for 3 s with --reconnect: "
              f"closed by server {c['closed_by_server']}, reconnects {c['reconnects']}, "
              f"failed {c['failed']}, server heartbeat closes {server['closed']}")
        self.assertEqual(run.rc, 0, str(run))
        self.assertEqual(c["failed"], 0)
        self.assertEqual(c["echo_mismatch"], 0)
        self.assertEqual(c["interrupted"], 0)  # idle: nothing outstanding when it closes
        # about 0.5 s per cycle (300 ms of silence, 200 ms +-50 % of delay) over 3 s
        self.assertGreaterEqual(c["closed_by_server"], 2 * CONNS)
        # each close is replaced, except those still waiting out their delay at the end
        self.assertLessEqual(c["reconnects"], c["closed_by_server"])
        self.assertGreaterEqual(c["reconnects"], c["closed_by_server"] - CONNS)
        # every attempt established, but a reconnect still connecting when the run ends,
        # which is cancelled (seen: 61 established of 62 attempted, 1 cancelled)
        self.assertEqual(c["established"] + c["cancelled"], c["attempted"], c)
        self.assertLessEqual(c["cancelled"], CONNS)
        self.assertEqual(c["attempted"], CONNS + c["reconnects"])
        self.assert_identity(c)
        self.assertGreaterEqual(server["closed"].get("heartbeat", 0), c["closed_by_server"])
        with open(tl) as f:
            rows = list(csv.DictReader(f))
        print("timeline reconnects:", [r["reconnects"] for r in rows])
        self.assertEqual(int(rows[-1]["reconnects"]), c["reconnects"])
        self.assertEqual(int(rows[-1]["closed_by_server"]), c["closed_by_server"])
        self.assertTrue(any(0 < int(r["reconnects"]) < c["reconnects"] for r in rows[:-1]),
                        "the reconnects grow over the run")

    def test_rate_caps_reconnects(self):
        srv = self.start_server(sets={"heartbeat_timeout": HEARTBEAT})
        run = self.idle_run(srv, ["--reconnect", "--reconnect-delay", "0",
                                  "--reconnect-rate", "5/s"])
        c = run.counts()
        secs = run.doc["elapsed_us"] / 1e6
        print(f"--reconnect-rate 5/s: {c['reconnects']} reconnects in {secs:.2f} s "
              f"({c['closed_by_server']} closes)")
        self.assertEqual(run.rc, 0, str(run))
        # one token at the start, then 5 a second
        self.assertLessEqual(c["reconnects"], 1 + 5 * secs + 1)
        self.assertGreaterEqual(c["reconnects"], 5)
        self.assertGreater(c["closed_by_server"], c["reconnects"])
        self.assert_identity(c)

    def test_without_reconnect_failures(self):
        srv = self.start_server(sets={"heartbeat_timeout": HEARTBEAT})
        run = self.idle_run(srv, [], duration="1s")
        c = run.counts()
        print(f"no --reconnect: failed {c['failed']} {run.doc['failures']['echo']}, "
              f"closed by server {c['closed_by_server']}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertGreaterEqual(c["failed"], CONNS)
        self.assertEqual(c["closed_by_server"], 0)
        self.assertEqual(c["reconnects"], 0)
        self.assertEqual(c["echo_mismatch"], 0)
        self.assert_identity(c)
