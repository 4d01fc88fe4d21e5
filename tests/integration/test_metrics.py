# Goal of this test: /metrics is valid Prometheus text 0.0.4 whose values match what the test did, answers bad requests correctly, cannot be used to hurt the echo server, and sums workers without counting port-wide figures twice.
import os
import signal
import socket
import subprocess
import threading
import time

import promtext
from harness import (ServerTest, START_TIMEOUT, process_tree, recv_exactly, server_bin,
                     server_env, wait_until)
from promtext import scrape, start_with_metrics, value, wait_metrics

# server/metrics.h
MAX_CLIENTS = 8  # metrics_max_clients' default
REQ_S = 2.0  # metrics_request_timeout in the slowloris test


def echo_close(test, port, n, payload=b"hello metrics\n"):
    socks = [test.connect(port) for _ in range(n)]
    for s in socks:
        s.sendall(payload)
    for s in socks:
        test.assertEqual(recv_exactly(s, len(payload)), payload)
    for s in socks:
        s.close()
    return n * len(payload)


class MetricsValuesTest(ServerTest):
    def test_values_match_what_the_test_did(self):
        n = 30
        srv, mport = start_with_metrics(self, sets={"census_interval": "100ms"})
        nbytes = echo_close(self, srv.port, n)
        fams = wait_metrics(
            mport, lambda f: value(f, "teardown_connections_closed_total", reason="eof") == n
            and value(f, "teardown_fds_connections") == 0, 20, f"{n} closes with reason eof")
        print(f"{len(fams)} families; accepted {value(fams, 'teardown_connections_accepted_total')}")
        self.assertEqual(value(fams, "teardown_connections_accepted_total"), n)
        self.assertEqual(value(fams, "teardown_connections_open"), 0)
        for reason in ("reset", "timeout", "heartbeat", "write-timeout", "fin-timeout",
                       "overload", "shutdown", "error", "max-age"):
            self.assertEqual(value(fams, "teardown_connections_closed_total", reason=reason), 0)
        hist = fams["teardown_fin_to_close_seconds"]
        self.assertEqual(hist.type, "histogram")
        self.assertEqual(hist.value("teardown_fin_to_close_seconds_count"), n)
        self.assertEqual(hist.value("teardown_fin_to_close_seconds_bucket", le="+Inf"), n)
        self.assertLess(hist.value("teardown_fin_to_close_seconds_sum"), n * 1.0)
        self.assertEqual(value(fams, "teardown_received_bytes_total"), nbytes)
        self.assertEqual(value(fams, "teardown_sent_bytes_total"), nbytes)
        self.assertEqual(value(fams, "teardown_workers"), 1)
        self.assertEqual(value(fams, "teardown_port_sockets", state="listen"), 1)
        self.assertEqual(value(fams, "teardown_close_wait_sockets"), 0)
        self.assertEqual(value(fams, "teardown_fds_unaccounted"), 0)
        self.assertEqual(value(fams, "teardown_accept_queue_depth"), 0)
        self.assertGreaterEqual(value(fams, "teardown_accept_queue_limit"), 1)
        for fam in ("teardown_netns_listen_overflows_total", "teardown_netns_sockstat_tcp_orphan",
                    "teardown_netns_tcp_abort_on_close_total"):
            self.assertIn("namespace", fams[fam].help, f"{fam} says it is per namespace")
        for name, f in fams.items():
            self.assertTrue(name.startswith("teardown_"), name)
            self.assertIn(f.type, ("counter", "gauge", "histogram"), name)

    def test_open_connections_and_census(self):
        srv, mport = start_with_metrics(self, sets={"census_interval": "100ms"})
        socks = [self.connect(srv.port) for _ in range(5)]
        for s in socks:
            self.echo_once(s)
        fams = wait_metrics(mport, lambda f: value(f, "teardown_port_sockets",
                                                   state="established") == 5
                            and value(f, "teardown_fds_connections") == 5, 20,
                            "5 established sockets in the census and the fd accounting")
        self.assertEqual(value(fams, "teardown_connections_open"), 5)
        self.assertEqual(value(fams, "teardown_fds_unaccounted"), 0)
        self.assertEqual(value(fams, "teardown_fds_open"),
                         value(fams, "teardown_fds_connections") + value(fams, "teardown_fds_own"))


class MetricsHttpTest(ServerTest):
    def setUp(self):
        self.srv, self.mport = start_with_metrics(self)

    def raw(self, data):
        return promtext.http_get(self.mport, raw=data)

    def test_answers(self):
        status, h, body = promtext.http_get(self.mport)
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"), h)
        self.assertEqual(h.get("connection"), "close")
        promtext.parse(body)
        status, h, body = promtext.http_get(self.mport, "/metrics?x=1")
        self.assertEqual(status, 200)
        status, h, body = promtext.http_get(self.mport, method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertGreater(int(h["content-length"]), 1000)
        status, h, _ = promtext.http_get(self.mport, "/")
        self.assertEqual(status, 404)
        status, h, _ = promtext.http_get(self.mport, "/metricsx")
        self.assertEqual(status, 404)
        status, h, _ = promtext.http_get(self.mport, method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(h.get("allow"), "GET, HEAD")
        status, _, _ = promtext.http_get(self.mport, method="DELETE")
        self.assertEqual(status, 405)

    def test_http_versions_and_garbage(self):
        self.assertEqual(self.raw(b"GET /metrics HTTP/1.0\r\n\r\n")[0], 200)
        self.assertEqual(self.raw(b"GET /metrics HTTP/1.1\n\n")[0], 200)  # bare LF
        self.assertEqual(self.raw(b"GET /metrics HTTP/2.0\r\n\r\n")[0], 505)
        for bad in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
                    b"GET /metrics\r\n\r\n",                         # HTTP/0.9
                    b"GET  /metrics HTTP/1.1\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nBad name: x\r\n\r\n".replace(b"Bad name", b"Bad nm "),
                    b"GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
                    bytes(range(256))):
            status, _, body = self.raw(bad)
            self.assertEqual(status, 400, f"{bad[:40]!r}: {body!r}")
        huge = b"GET /metrics HTTP/1.1\r\n" + b"X-Fill: " + b"a" * 9000 + b"\r\n\r\n"
        self.assertEqual(self.raw(huge)[0], 400)

    def test_request_with_body_gets_the_whole_response(self):
        """A body the server never reads must not turn its close into an RST that destroys
        the response: it sends FIN and reads to the client's EOF."""
        body = b"x" * 50000
        req = (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
               + body)
        for _ in range(5):
            status, _, page = self.raw(req)
            self.assertEqual(status, 200)
            promtext.parse(page)


class MetricsAbuseTest(ServerTest):
    def test_slowloris_and_garbage_do_not_hurt_the_echo_server(self):
        srv, mport = start_with_metrics(self, sets={"metrics_request_timeout": f"{REQ_S:g}s"})
        echo = self.connect(srv.port)
        slow = []
        t0 = time.monotonic()
        for _ in range(MAX_CLIENTS + 3):
            s = socket.create_connection(("127.0.0.1", mport), timeout=15)
            self.addCleanup(s.close)
            s.sendall(b"G")
            slow.append(s)
        # The first MAX_CLIENTS are served at once, and closed at metrics_request_timeout
        # however often they send a byte; the three above the limit wait in the listener's
        # backlog (never reset) and get a slot, and the same deadline, once those close.
        closed_at = [None] * len(slow)

        def reader(i, s):
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            closed_at[i] = time.monotonic() - t0
        threads = [threading.Thread(target=reader, args=(i, s), daemon=True)
                   for i, s in enumerate(slow)]
        for t in threads:
            t.start()
        worst, dripped = 0.0, t0
        while time.monotonic() - t0 < 2 * REQ_S + 1:
            if time.monotonic() - dripped > 0.5:  # one byte per half second each
                dripped = time.monotonic()
                for s in slow:
                    try:
                        s.send(b"E")
                    except OSError:
                        pass
            a = time.monotonic()
            self.echo_once(echo, b"x" * 100)
            worst = max(worst, time.monotonic() - a)
        for t in threads:
            t.join(2 * REQ_S + 10)
        print(f"slowloris (metrics_request_timeout {REQ_S:g}s): closed after "
              f"{[round(c, 2) if c is not None else None for c in closed_at]} s; "
              f"echo worst round trip {worst * 1000:.1f} ms meanwhile")
        for i, c in enumerate(closed_at):
            self.assertIsNotNone(c, f"slow metrics client {i} was never closed")
            self.assertGreater(c, REQ_S - 0.3, f"client {i} closed before its deadline")
        first, waited = closed_at[:MAX_CLIENTS], closed_at[MAX_CLIENTS:]
        self.assertLess(max(first), REQ_S + 5)
        self.assertGreater(min(waited), 2 * REQ_S - 0.5,
                           "the clients above the limit got a slot before one was free")
        self.assertLess(max(waited), 2 * REQ_S + 8)
        self.assertLess(worst, 0.5, "echo slowed down by metrics clients")
        # Garbage at full speed: a 400 and a close, nothing else.
        g = socket.create_connection(("127.0.0.1", mport), timeout=10)
        self.addCleanup(g.close)
        junk = os.urandom(1 << 20)
        try:
            g.sendall(junk)
        except OSError as e:
            print(f"garbage sender stopped by the server: {e}")
        self.echo_once(echo, b"still here\n")
        fams = scrape(mport)
        self.assertGreaterEqual(value(fams, "teardown_metrics_cap_pauses_total"), 1)
        self.assertEqual(value(fams, "teardown_connections_open"), 1)
        self.assertTrue(srv.alive())


class MetricsWorkersTest(ServerTest):
    def children(self, srv):
        """The live workers."""
        kids = []
        for p in process_tree(srv.pid):
            try:
                with open(f"/proc/{p}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue  # exited meanwhile
            if p != srv.pid and state != "Z":
                kids.append(p)
        return kids

    def worker0(self, srv, mport):
        """The worker holding the metrics listener (the parent holds it too)."""
        inode = None
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == mport:
                        inode = parts[9]
        self.assertIsNotNone(inode, "the metrics listener in /proc/net/tcp")
        for p in self.children(srv):
            try:
                links = [os.readlink(f"/proc/{p}/fd/{fd}") for fd in os.listdir(f"/proc/{p}/fd")]
            except OSError:
                continue
            if f"socket:[{inode}]" in links:
                return p
        raise AssertionError("no worker holds the metrics listener")

    def test_workers_are_summed_and_port_figures_are_not(self):
        srv, mport = start_with_metrics(self, mode="leaky",
                                        sets={"workers": "3", "census_interval": "100ms"})
        n = 45
        echo_close(self, srv.port, n)
        fams = wait_metrics(
            mport, lambda f: value(f, "teardown_connections_accepted_total") == n
            and value(f, "teardown_close_wait_sockets") == n
            and value(f, "teardown_fds_connections") == n
            and value(f, "teardown_eof_ignored_total") == n
            and value(f, "teardown_workers") == 3, 20,
            f"{n} accepted over 3 workers, {n} CLOSE_WAIT on the port, {n} connection fds "
            f"and {n} ignored EOFs (each worker's figures as of its last census: a worker "
            f"can publish between an accept and the read of its EOF)")
        print(f"workers: per-process open connections summed "
              f"{value(fams, 'teardown_connections_open')}, census CLOSE_WAIT "
              f"{value(fams, 'teardown_close_wait_sockets')}")
        self.assertEqual(value(fams, "teardown_connections_open"), n)
        self.assertEqual(value(fams, "teardown_port_sockets", state="close_wait"), n)
        self.assertEqual(value(fams, "teardown_port_sockets", state="listen"), 3)
        self.assertEqual(value(fams, "teardown_eof_ignored_total"), n)
        self.assertEqual(value(fams, "teardown_fds_connections"), n)
        self.assertEqual(value(fams, "teardown_fds_unaccounted"), 0)
        # Worker 0 serves /metrics; killed, it is replaced and serves the same port, and
        # the counters of the dead worker are kept.
        self.assertEqual(len(self.children(srv)), 3)
        w0 = self.worker0(srv, mport)
        os.kill(w0, signal.SIGKILL)
        wait_until(lambda: w0 not in self.children(srv) and len(self.children(srv)) == 3, 20,
                   "a new worker 0")
        fams = wait_metrics(mport, lambda f: value(f, "teardown_workers") == 3, 20,
                            "3 workers summed again")
        self.assertGreaterEqual(value(fams, "teardown_connections_accepted_total"), n)
        echo_close(self, srv.port, 3, b"after\n")
        wait_metrics(mport, lambda f: value(f, "teardown_connections_accepted_total") >= n + 3
                     and value(f, "teardown_port_sockets", state="listen") == 3, 20,
                     "accepted_total counting on after the restart, 3 listeners in the census")
        self.assertNotEqual(self.worker0(srv, mport), w0)


class MetricsConfigTest(ServerTest):
    def run_server(self, *args):
        cmd = [str(server_bin()), "--listen", "127.0.0.1:0", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT,
                              env=server_env())

    def test_bad_address_and_port_in_use(self):
        p = self.run_server("--set", "metrics_listen=nonsense")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("metrics_listen", p.stderr)
        p = self.run_server("--set", "metrics_listen=127.0.0.1:99999", "--check-config")
        self.assertEqual(p.returncode, 2, p.stderr)
        p = self.run_server("--set", "metrics_listen=127.0.0.1:9100", "--check-config")
        self.assertEqual(p.returncode, 0, p.stderr)
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        p = self.run_server("--set", f"metrics_listen=127.0.0.1:{busy.getsockname()[1]}")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("Address already in use", p.stderr)

    def test_port_only_means_loopback(self):
        srv, mport = start_with_metrics(self, sets={"metrics_listen": ":0"})
        lines = srv.log_lines(contains="metrics on http://127.0.0.1:")
        self.assertTrue(lines, srv.log_tail())
        scrape(mport)
