# Goal of this test: refused connections and a server that never answers are counted by errno and phase (connect/ECONNREFUSED, first_reply/deadline), never retried silently, and the run still finishes within its deadlines and reports (exit 1).
import socket
import time
import unittest

from netns import require_root
from test_client_helpers import run_client


class ClientFailuresTest(unittest.TestCase):
    def test_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        self.addCleanup(s.close)
        run = run_client(self, ["--server", f"127.0.0.1:{port}", "--connections", 25,
                                "--json"], timeout=20)
        print(f"refused: failures {run.doc['failures']}, exit {run.rc}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(run.doc["failures"]["connect"], {"ECONNREFUSED": 25})
        self.assertEqual(run.counts()["attempted"], 25)
        self.assertEqual(run.counts()["established"], 0)
        self.assertIn("ECONNREFUSED", run.err)
        self.assertFalse(run.doc["census"]["server"]["visible"])

    def test_reply_deadline(self):
        # Accepts (the kernel does), never reads nor answers.
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(100)
        self.addCleanup(lst.close)
        t0 = time.monotonic()
        run = run_client(self, ["--server", f"127.0.0.1:{lst.getsockname()[1]}",
                                "--connections", 10, "--reply-timeout", "400ms", "--settle", "0",
                                "--json"], timeout=20)
        wall = time.monotonic() - t0
        elapsed = run.doc["elapsed_us"] / 1e6
        print(f"deadline: failures {run.doc['failures']}, run {elapsed:.3f} s (wall {wall:.2f} s)")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(run.doc["failures"]["first_reply"], {"deadline": 10})
        self.assertEqual(run.counts()["connected"], 10)
        self.assertEqual(run.counts()["established"], 0)
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 5.0)

    def test_refused_with_duration_backs_off(self):
        # With --duration a failed slot retries only after --backoff: counted each time,
        # not a tight loop.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        run = run_client(self, ["--server", f"127.0.0.1:{s.getsockname()[1]}",
                                "--connections", 2, "--duration", "1s", "--backoff", "100ms",
                                "--json"], timeout=20)
        n = run.doc["failures"]["connect"].get("ECONNREFUSED", 0)
        print(f"1 s of refusals on 2 slots with 100 ms backoff: {n} attempts")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(run.counts()["attempted"], n + run.counts()["cancelled"])
        self.assertGreaterEqual(n, 10)
        self.assertLessEqual(n, 24)

    def test_immediate_failures_with_no_backoff_end_on_time(self):
        # Every connect() fails inside the call (a new network namespace: loopback is down,
        # ENETUNREACH). With --backoff 0 each failed slot is queued again at once; it must
        # wait for the loop's next pass: before, the failure path started the next
        # connection itself and the client overflowed its stack, or spun without ever
        # seeing its --duration timer or SIGTERM.
        require_root(self)
        t0 = time.monotonic()
        run = run_client(self, ["--server", "127.0.0.1:7", "--connections", 5, "--duration",
                                "1s", "--backoff", "0", "--settle", "0", "--json"],
                         timeout=30, prefix=["unshare", "--net"])
        wall = time.monotonic() - t0
        n = run.doc["failures"]["connect"].get("ENETUNREACH", 0) if run.doc else 0
        print(f"1 s of immediate failures on 5 slots, no backoff: {n} attempts, "
              f"wall {wall:.2f} s, exit {run.rc}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertGreater(n, 5)
        self.assertEqual(run.counts()["attempted"], n + run.counts()["cancelled"])
        self.assertLess(wall, 10.0)
