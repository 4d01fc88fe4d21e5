# Goal of this test: the client's first-echo histogram measures from the completed handshake to each connection's first echo, so a server that accepts late shows there (not in connect), once per connection, and first_echo_p99_ms is an --expect key.
import time
import unittest

from test_client_helpers import ThreadEchoServer, run_client

ACCEPT_DELAY = 0.4  # the kernel completes the handshakes; the server accepts this much later


class LateAcceptServer(ThreadEchoServer):
    """Listens at once, accepts only after ACCEPT_DELAY, then echoes every connection."""

    accept_delay = ACCEPT_DELAY


class FirstEchoTest(unittest.TestCase):
    def test_late_accept_shows_in_first_echo_not_connect(self):
        srv = LateAcceptServer(self)
        t0 = time.monotonic()
        run = run_client(self, ["--server", f"127.0.0.1:{srv.port}", "--connections", 5,
                                "--scenario", "idle", "--heartbeat", "300ms", "--hold", "1s",
                                "--json", "--expect", "first_echo_p99_ms>=300",
                                "--expect", "connect_p99_ms<300"])
        print(f"started {time.monotonic() - t0:.2f}s ago; summary first_echo "
              f"{run.doc['summary']['first_echo']}, connect {run.doc['summary']['connect']}, "
              f"rtt {run.doc['summary']['rtt']}")
        self.assertEqual(run.rc, 0, str(run))
        h = run.doc["hist"]
        self.assertEqual(h["first_echo_us"]["count"], 5)  # once per connection
        self.assertGreater(h["rtt_us"]["count"], 5)  # the heartbeats' echoes are not in it
        self.assertGreaterEqual(h["first_echo_us"]["min"], 300_000)
