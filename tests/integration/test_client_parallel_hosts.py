# Goal of this test: runs started on several "hosts" (network namespaces) by GNU parallel with --start-at start together, report their clock offset against --time-reference, and `load-client merge` of their results equals the sum of the parts, with --expect applied to it; a --start-at already past is a usage error.
import glob
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from harness import REPO, ServerTest
from netns import inside, new_star, require_root
from test_client_helpers import client_bin, run_client

# The remote shell: parallel calls it as `nsssh HOST -- exec COMMAND...` and relies on it to
# read the words again, as ssh's remote shell would.
NSSSH = '#!/bin/sh\nns=$1; shift; [ "$1" = "--" ] && shift; exec ip netns exec "$ns" /bin/sh -c "$*"\n'


def gnu_parallel():
    """Why GNU parallel cannot be used here, or None."""
    if shutil.which("parallel") is None:
        return "needs GNU parallel (Debian package parallel)"
    p = subprocess.run(["parallel", "--version"], capture_output=True, text=True)
    if "GNU parallel" not in p.stdout:
        return "the parallel installed is not GNU parallel (moreutils has another one)"
    return None


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # an answer with a Date header is all a time reference needs
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class ClientParallelHostsTest(ServerTest):
    def test_start_at_past_is_a_usage_error(self):
        for past in ("2000-01-01T00:00:00Z", "1700000000", str(int(time.time()) - 1)):
            run = run_client(self, ["--server", "127.0.0.1:9", "--start-at", past])
            self.assertEqual(run.rc, 2, str(run))
            self.assertIn("already past", run.err)
        run = run_client(self, ["--server", "127.0.0.1:9", "--start-at", "tomorrow"])
        self.assertEqual(run.rc, 2, str(run))
        self.assertIn("RFC 3339", run.err)

    def test_parallel_on_two_namespaces_merges_exactly(self):
        require_root(self)
        why = gnu_parallel()
        if why:
            self.skipTest(why)
        star = new_star(self, 2)
        srv = self.start_server_in(star)
        with inside(star.srv_ns):  # the time reference, in the server's namespace
            httpd = http.server.HTTPServer((star.srv_ip, 0), QuietHandler)
        self.addCleanup(httpd.server_close)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.shutdown)
        d = tempfile.mkdtemp(prefix="teardown-parallel-")
        self.addCleanup(shutil.rmtree, d, True)
        nsssh = os.path.join(d, "nsssh")
        with open(nsssh, "w") as f:
            f.write(NSSSH)
        os.chmod(nsssh, 0o755)
        start_at = int(time.time()) + 3
        hosts = ",".join(f"1/{ns}" for ns, _ in star.clients)
        cmd = ["parallel", "--will-cite", "--ssh", nsssh, "-S", hosts, "--nonall", "--tag",
               str(client_bin()), "--server", f"{star.srv_ip}:{srv.port}", "--connections", "10",
               "--messages", "5", "--start-at", str(start_at), "--time-reference",
               f"http://{star.srv_ip}:{httpd.server_port}/", "--settle", "0", "--json", "--quiet"]
        # GNU parallel 20221122 runs nothing and exits 0 when SHELL is unset (CI's
        # environment): its remote worker execs $SHELL. A login session always sets it.
        env = dict(os.environ, SHELL=os.environ.get("SHELL") or "/bin/sh")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=str(REPO),
                           start_new_session=True, env=env)
        self.assertEqual(p.returncode, 0, f"{cmd}\n{p.stdout}\n{p.stderr}")
        files = []
        for line in p.stdout.splitlines():  # HOST<TAB>the one-line JSON of its run
            host, doc = line.split("\t", 1)
            files.append(os.path.join(d, f"{host}.json"))
            with open(files[-1], "w") as f:
                f.write(doc)
        self.assertEqual(sorted(os.path.basename(x) for x in files),
                         sorted(f"{ns}.json" for ns, _ in star.clients), p.stderr)
        docs = [json.load(open(x)) for x in files]
        for doc in docs:
            clock = doc["run"]["clock"]
            late = clock["started_unix_us"] - start_at * 10**6
            print(f"{clock['host']}: started {late / 1e3:.1f} ms after --start-at, offset "
                  f"{clock.get('offset_us')} us +- {clock.get('uncertainty_us')} us")
            self.assertEqual(clock["start_at_unix_us"], start_at * 10**6)
            self.assertGreaterEqual(late, 0)
            self.assertLess(late, 200000)
            # one machine's clock against itself: the offset is within its uncertainty
            self.assertLessEqual(abs(clock["offset_us"]), clock["uncertainty_us"] + 2000)
            self.assertEqual(doc["counts"]["established"], 10)
        m = run_client(self, ["merge"] + files + ["--json", "--expect", "established=20",
                                                   "--expect", "messages=100"])
        self.assertEqual(m.rc, 0, str(m))
        for k, v in m.counts().items():
            self.assertEqual(v, sum(doc["counts"][k] for doc in docs), k)
        for name, h in m.doc["hist"].items():
            self.assertEqual(h["count"], sum(doc["hist"][name]["count"] for doc in docs), name)
        self.assertEqual(len(m.doc["run"]["clocks"]), 2)
        bad = run_client(self, ["merge"] + files + ["--expect", "established=21"])
        self.assertEqual(bad.rc, 1, str(bad))
        self.assertIn("VIOLATED (observed 20", bad.out)
        self.assertIn("offset", bad.out)
