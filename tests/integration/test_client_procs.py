# Goal of this test: a --procs 3 run reports exactly the sum of its workers' results (every counter, every histogram bucket), and the connections are split between the workers, each running the whole --mix.
from harness import ServerTest
from test_client_helpers import run_client, server_addr

COUNTERS = ("attempted", "connected", "established", "completed", "failed", "cancelled",
            "closed_by_server", "echo_mismatch", "messages", "reconnects", "interrupted",
            "bytes_sent", "bytes_received")


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

    def test_every_worker_runs_the_whole_mix(self):
        # Two workers, a mix of two: before, worker w picked the mix's entries w, w+2, ...
        # so one worker ran every echo and the other every close.
        srv = self.start_server()
        run = run_client(self, ["--server", server_addr(srv), "--connections", 100,
                                "--procs", 2, "--mix", "echo=1,close=1", "--messages", 2,
                                "--settle", "0", "--json"])
        self.assertEqual(run.rc, 0, str(run))
        per = [{s: n for s, n in p["by_scenario"].items() if n} for p in run.doc["procs"]]
        print("by scenario per worker:", per)
        self.assertEqual(per, [{"echo": 25, "close": 25}, {"echo": 25, "close": 25}])
