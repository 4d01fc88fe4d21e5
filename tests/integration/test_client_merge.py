# Goal of this test: `load-client merge a.json b.json` combines two --json results exactly (counters summed, histogram buckets summed, percentiles of the combined data) and applies --expect to the merged result.
import os
import tempfile

from harness import ServerTest
from test_client_helpers import run_client, server_addr
from test_client_procs import COUNTERS, bucket_sum


class ClientMergeTest(ServerTest):
    def write(self, text):
        fd, path = tempfile.mkstemp(prefix="teardown-merge-", suffix=".json")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def test_merge_equals_combined(self):
        srv = self.start_server()
        a = run_client(self, ["--server", server_addr(srv), "--connections", 30,
                              "--scenario", "half-close", "--messages", 3, "--json"])
        b = run_client(self, ["--server", server_addr(srv), "--connections", 20,
                              "--scenario", "echo", "--messages", 7, "--json"])
        self.assertEqual((a.rc, b.rc), (0, 0), f"{a}\n{b}")
        pa, pb = self.write(a.out), self.write(b.out)
        m = run_client(self, ["merge", pa, pb, "--json", "--expect", "established=50"])
        self.assertEqual(m.rc, 0, str(m))
        print(f"merged: {m.counts()['established']} established, "
              f"{m.counts()['messages']} messages, rtt p99 {m.doc['summary']['rtt']['p99_ms']} ms")
        # one server, two scenarios: named in the header, and a warning for the scenarios
        clocks = m.doc["run"].pop("clocks")  # each part's host and start, offset unknown here
        self.assertEqual([c["offset"] for c in clocks], ["unknown", "unknown"])
        self.assertEqual(m.doc["run"], {"merged": 2, "servers": [server_addr(srv)],
                                        "scenarios": ["half-close", "echo"]})
        self.assertIn("different scenarios (half-close, echo)", m.err)
        self.assertNotIn("different servers", m.err)
        for k in COUNTERS:
            self.assertEqual(m.counts()[k], a.counts()[k] + b.counts()[k], k)
        self.assertEqual(m.counts()["messages"], 30 * 3 + 20 * 7)
        for name, h in m.doc["hist"].items():
            parts = [a.doc["hist"][name], b.doc["hist"][name]]
            self.assertEqual(h["count"], sum(x["count"] for x in parts), name)
            self.assertEqual([tuple(x) for x in h["buckets"]], bucket_sum(parts), name)
        self.assertEqual(m.doc["hist"]["fin_to_fin_us"]["count"], 30)
        # merging is associative with itself: merge(merge(a, b)) is the same document body
        pm = self.write(m.out)
        again = run_client(self, ["merge", pm, "--json"])
        self.assertEqual(again.doc["counts"], m.doc["counts"])
        self.assertEqual(again.doc["hist"], m.doc["hist"])

    def test_merge_names_different_servers(self):
        # Runs against two servers merge (the sum is still exact) but not silently: the
        # header names both and stderr warns, also when a merged result is merged again.
        a_srv, b_srv = self.start_server(), self.start_server()
        a = run_client(self, ["--server", server_addr(a_srv), "--connections", 3, "--json"])
        b = run_client(self, ["--server", server_addr(b_srv), "--connections", 4, "--json"])
        pa, pb = self.write(a.out), self.write(b.out)
        m = run_client(self, ["merge", pa, pb])
        header = m.out.splitlines()[0]
        print("header:", header, "| stderr:", m.err.strip())
        self.assertEqual(m.rc, 0, str(m))
        self.assertIn(f"servers {server_addr(a_srv)}, {server_addr(b_srv)}", header)
        self.assertIn("scenario echo", header)
        self.assertIn(f"different servers ({server_addr(a_srv)}, {server_addr(b_srv)})", m.err)
        self.assertNotIn("different scenarios", m.err)
        same = run_client(self, ["merge", pa, pa])
        self.assertEqual(same.err, "", str(same))  # one server, one scenario: no warning
        # a merge of merges keeps the names
        pm = self.write(run_client(self, ["merge", pa, pb, "--json"]).out)
        again = run_client(self, ["merge", pm, pa, "--json"])
        self.assertEqual(again.doc["run"]["servers"], [server_addr(a_srv), server_addr(b_srv)])
        self.assertIn("different servers", again.err)
        self.assertEqual(again.counts()["established"], 3 + 4 + 3)

    def test_merge_expect_violated_and_bad_input(self):
        srv = self.start_server()
        a = run_client(self, ["--server", server_addr(srv), "--connections", 5, "--json"])
        pa = self.write(a.out)
        m = run_client(self, ["merge", pa, pa, "--expect", "established=11"])
        self.assertEqual(m.rc, 1, str(m))
        self.assertIn("VIOLATED (observed 10", m.out)
        bad = self.write('{"version": 1, "counts": {}}')
        m = run_client(self, ["merge", pa, bad])
        self.assertEqual(m.rc, 1, str(m))
        self.assertIn("counts.attempted", m.err)
