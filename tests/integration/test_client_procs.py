# Goal of this test: a --procs 3 run reports exactly the sum of its workers' results (every counter, every histogram bucket), and the connections are split between the workers.
from harness import ServerTest
from test_client_helpers import run_client, server_addr

COUNTERS = ("attempted", "connected", "established", "completed", "failed", "cancelled",
            "closed_by_server", "echo_mismatch", "messages", "bytes_sent", "bytes_received")


def bucket_sum(hists):
    total = {}
    for h in hists:
        for i, n in h["buckets"]:
            total[i] = total.get(i, 0) + n
    return sorted(total.items())


class ClientProcsTest(ServerTest):
    def test_sum_of_parts(self):
        srv = self.start_server()
        run = run_client(self, ["--server", server_addr(srv), "--connections", 301,
                                "--procs", 3, "--scenario", "mixed",
                                "--mix", "echo=2,half-close=1,reset=1", "--messages", 4,
                                "--json", "--expect", "established=301"])
        self.assertEqual(run.rc, 0, str(run))
        parts = run.doc["procs"]
        self.assertEqual(len(parts), 3)
        self.assertEqual(run.doc["parts"], 3)
        print("per worker attempted:", [p["counts"]["attempted"] for p in parts],
              "total", run.counts()["attempted"], "messages", run.counts()["messages"])
        self.assertEqual([p["counts"]["attempted"] for p in parts], [101, 100, 100])
        for k in COUNTERS:
            self.assertEqual(run.counts()[k], sum(p["counts"][k] for p in parts), k)
        for name, h in run.doc["hist"].items():
            ph = [p["hist"][name] for p in parts]
            self.assertEqual(h["count"], sum(x["count"] for x in ph), name)
            self.assertEqual(h["sum"], sum(x["sum"] for x in ph), name)
            self.assertEqual([tuple(b) for b in h["buckets"]], bucket_sum(ph), name)
            if h["count"]:
                self.assertEqual(h["max"], max(x["max"] for x in ph if x["count"]), name)
        for s in run.doc["by_scenario"]:
            self.assertEqual(run.doc["by_scenario"][s],
                             sum(p["by_scenario"][s] for p in parts), s)
        self.assertEqual(run.counts()["messages"], 301 * 4)
