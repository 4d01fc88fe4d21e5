# Goal of this test: the metrics endpoint at metrics_max_clients makes further scrapers wait in the listener's backlog (served once a slot frees, never reset), cuts a slow request head at metrics_request_timeout, and holds an answered connection until metrics_exchange_timeout at most.
import select
import socket
import subprocess
import threading
import time

import promtext
from harness import ServerTest, have_ss, wait_until
from promtext import start_with_metrics

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


def listen_queue(port):
    """Recv-Q of the LISTEN socket on port (its accept queue now), or 0."""
    p = subprocess.run(["ss", "-ltnH", f"( sport = :{port} )"], capture_output=True,
                       text=True, timeout=20)
    fields = p.stdout.split()
    return int(fields[1]) if len(fields) > 1 else 0


def scrape_in_thread(port):
    """Starts a scrape (request, then read to EOF) in a thread; returns (thread, result):
    result gets 'status', 'done' (monotonic time) or 'error'."""
    res = {}

    def run():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                res["connected"] = time.monotonic()
                s.sendall(REQUEST)
                data = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
            res["status"] = promtext.split_response(data)[0]
        except Exception as e:  # reported by the test
            res["error"] = repr(e)
        res["done"] = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, res


class MetricsLimitsTest(ServerTest):
    def test_scraper_above_the_cap_waits_for_a_slot(self):
        if not have_ss():
            self.skipTest("ss (iproute2) is not installed")
        srv, mport = start_with_metrics(self, sets={"metrics_max_clients": "2",
                                                    "metrics_request_timeout": "30s",
                                                    "metrics_exchange_timeout": "60s"})
        idle = [socket.create_connection(("127.0.0.1", mport), timeout=10) for _ in range(2)]
        for s in idle:
            self.addCleanup(s.close)
        t, res = scrape_in_thread(mport)
        wait_until(lambda: "connected" in res or "done" in res, 10, "the scraper to connect")
        # The kernel completed its handshake; the server must leave it in the queue.
        wait_until(lambda: listen_queue(mport) == 1 or "done" in res, 10,
                   "the scraper to wait in the metrics listener's accept queue")
        self.assertNotIn("done", res, f"the scraper above the cap was not left waiting: {res}")
        freed = time.monotonic()
        idle[0].close()
        t.join(20)
        print(f"scraper above metrics_max_clients=2: {res}, answered "
              f"{(res.get('done', freed) - freed) * 1000:.0f} ms after a slot was freed")
        self.assertEqual(res.get("status"), 200, res)
        self.assertTrue(srv.alive())
        fams = promtext.scrape(mport)
        self.assertGreaterEqual(promtext.value(fams, "teardown_metrics_cap_pauses_total"), 1)

    def test_request_head_timeout(self):
        srv, mport = start_with_metrics(self, sets={"metrics_request_timeout": "300ms",
                                                    "metrics_exchange_timeout": "30s"})
        s = socket.create_connection(("127.0.0.1", mport), timeout=20)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendall(b"GET /metr")
        deadline = t0 + 10
        while time.monotonic() < deadline:  # a byte every 50 ms until the server closes
            if select.select([s], [], [], 0.05)[0]:
                break
            try:
                s.sendall(b"i")
            except OSError:
                break
        try:
            got = s.recv(4096)
        except OSError as e:
            got = repr(e).encode()
        took = time.monotonic() - t0
        print(f"partial request head, a byte every 50 ms: closed after {took * 1000:.0f} ms "
              f"(metrics_request_timeout 300ms), read {got[:40]!r}")
        self.assertGreater(took, 0.25)
        self.assertLess(took, 3.0, "the request head deadline did not close the slowloris")
        self.assertTrue(srv.alive())

    def test_exchange_timeout_holds_an_answered_connection(self):
        # A client that read its answer but never closes holds its slot (the server waits
        # for its EOF) until metrics_exchange_timeout, well past metrics_request_timeout: a
        # second scraper, above metrics_max_clients=1, is served only then.
        srv, mport = start_with_metrics(self, sets={"metrics_max_clients": "1",
                                                    "metrics_request_timeout": "200ms",
                                                    "metrics_exchange_timeout": "2s"})
        a = socket.create_connection(("127.0.0.1", mport), timeout=20)
        self.addCleanup(a.close)
        t0 = time.monotonic()
        a.sendall(REQUEST)
        data = b""
        while True:
            b = a.recv(65536)
            if not b:
                break
            data += b
        self.assertEqual(promtext.split_response(data)[0], 200)
        t, res = scrape_in_thread(mport)
        t.join(30)
        took = res.get("done", time.monotonic()) - t0
        print(f"second scraper (metrics_max_clients=1) answered {took * 1000:.0f} ms after the "
              f"first connection's accept (request timeout 200ms, exchange timeout 2s): {res}")
        self.assertEqual(res.get("status"), 200, res)
        self.assertGreater(took, 1.5, "the answered connection lost its slot before the "
                           "exchange timeout")
        self.assertLess(took, 8.0)
