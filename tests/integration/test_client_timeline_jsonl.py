# Goal of this test: --timeline F.jsonl writes the run's options, then one JSON object per wall-clock second (counts, failures, census, percentiles, sparse histograms, the server's /metrics figures) that add up to the run's result, and `load-client merge` of two such timelines gives, second by second, exactly their sum.
import json
import os
import shutil
import subprocess
import tempfile

from harness import REPO, ServerTest, server_env
from promtext import start_with_metrics
from test_client_helpers import ClientRun, client_bin, run_client, server_addr
from test_client_procs import bucket_sum


def rows(path):
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    return lines[0], [r for r in lines[1:] if not r.get("final")], [r for r in lines[1:] if r.get("final")]


class ClientTimelineJsonlTest(ServerTest):
    def test_rows_add_up_and_merge_exactly(self):
        srv, mport = start_with_metrics(self)
        d = tempfile.mkdtemp(prefix="teardown-tl-")
        self.addCleanup(shutil.rmtree, d, True)
        a, b = os.path.join(d, "a.jsonl"), os.path.join(d, "b.jsonl")
        common = ["--server", server_addr(srv), "--duration", "2500ms", "--json", "--quiet",
                  "--metrics", f"http://127.0.0.1:{mport}/metrics"]
        # Two runs at once, as two hosts would: their seconds overlap.
        procs = [subprocess.Popen([str(client_bin())] + [str(x) for x in args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=server_env(), cwd=str(REPO))
                 for args in (common + ["--connections", 6, "--message-rate", 100,
                                        "--timeline", a],
                              common + ["--connections", 4, "--scenario", "close",
                                        "--procs", 2, "--timeline", b])]
        for p in procs:
            self.addCleanup(lambda p=p: p.poll() is None and (p.kill(), p.wait()))
        runs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            runs.append(ClientRun(["--json"], p.returncode, out, err))
            self.assertEqual(p.returncode, 0, str(runs[-1]))
        for path, run in zip((a, b), runs):
            head, body, final = rows(path)
            self.assertEqual(head["timeline"], 1)
            self.assertEqual(head["options"]["server"], server_addr(srv))
            secs = [r["unix_s"] for r in body]
            print(f"{os.path.basename(path)}: {len(body)} rows, seconds {secs[0]}..{secs[-1]}, "
                  f"msgs/s {[round(r['msgs_per_s']) for r in body]}, server open "
                  f"{[r.get('server_metrics', {}).get('open') for r in body]}")
            self.assertEqual(secs, sorted(set(secs)))
            self.assertGreaterEqual(len(body), 3)
            self.assertEqual(len(final), 1)
            for r in body:  # each row in its wall-clock second
                self.assertLessEqual(r["unix_s"] * 10**6, r["unix_us"])
                self.assertLess(r["unix_us"], (r["unix_s"] + 1) * 10**6 + 200000)
            # the rows add up to the run's result
            for k in ("attempted", "established", "completed", "messages", "msgs_due", "failed"):
                self.assertEqual(sum(r["counts"][k] for r in body), run.counts()[k], k)
            for name, h in run.doc["hist"].items():
                parts = [r["hist"][name] for r in body if name in r["hist"]]
                self.assertEqual(sum(x["count"] for x in parts), h["count"], name)
                self.assertEqual(bucket_sum(parts), [tuple(x) for x in h["buckets"]], name)
            self.assertTrue(all(r["census"]["server"]["visible"] for r in body))
            # the server's own figures arrive within a second or two of the start
            self.assertTrue(any("server_metrics" in r for r in body))
            for r in body:
                if "server_metrics" in r:
                    self.assertEqual(set(r["server_metrics"]), {"open", "fds", "close_wait"})
        self.assertIn("latency", rows(a)[1][1])
        m = run_client(self, ["merge", a, b])
        self.assertEqual(m.rc, 0, str(m))
        lines = [json.loads(x) for x in m.out.splitlines()]
        self.assertEqual(lines[0], {"timeline": 1, "merged": 2})
        merged = {r["unix_s"]: r for r in lines[1:] if not r.get("final")}
        parts = {}
        for path in (a, b):
            for r in rows(path)[1]:
                parts.setdefault(r["unix_s"], []).append(r)
        self.assertEqual(sorted(merged), sorted(parts))
        both = [s for s in parts if len(parts[s]) == 2]
        print(f"merged {len(merged)} seconds, {len(both)} with rows of both runs")
        self.assertGreaterEqual(len(both), 2)
        for s, rs in parts.items():
            for k, v in merged[s]["counts"].items():
                self.assertEqual(v, sum(r["counts"][k] for r in rs), (s, k))
            for k in ("open", "connecting", "closing", "established"):
                self.assertEqual(merged[s]["now"][k], sum(r["now"][k] for r in rs), (s, k))
            names = {n for r in rs for n in r["hist"]}
            self.assertEqual(set(merged[s]["hist"]), names)
            for n in names:
                hs = [r["hist"][n] for r in rs if n in r["hist"]]
                self.assertEqual([tuple(x) for x in merged[s]["hist"][n]["buckets"]],
                                 bucket_sum(hs), (s, n))
            cs = [r["census"]["client"]["states"] for r in rs]
            self.assertEqual(merged[s]["census"]["client"]["states"],
                             {k: sum(c[k] for c in cs) for k in cs[0]})
        self.assertEqual(sum(1 for x in lines if x.get("final")), 1)
