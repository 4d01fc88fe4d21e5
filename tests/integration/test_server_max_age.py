# Goal of this test: max_connection_age ends each connection like a drain, reason max-age: an idle one gets its FIN at its drawn age (within +-jitter), a busy one gets its FIN at a quiet point or by half the grace, never a reset, with every byte read before it echoed (later input discarded), a peer that never closes is reset at the grace's end, and /metrics shows the reason and the duration histogram.
import socket
import threading
import time

from harness import ServerTest, recv_exactly, wait_until
from promtext import start_with_metrics, value, wait_metrics

AGE_S = 1.0
JITTER = 0.10
GRACE_S = 2.0
IDLE = 5


class ServerMaxAgeTest(ServerTest):
    def start(self, **extra):
        return start_with_metrics(self, sets={**extra, 
            "max_connection_age": f"{int(AGE_S * 1000)}ms", "max_connection_age_jitter":
            f"{int(JITTER * 100)}%", "max_connection_age_grace": f"{int(GRACE_S * 1000)}ms",
            "log_level": "debug", "heartbeat_timeout": "0"})

    def test_idle_connections_end_at_their_age(self):
        srv, mport = self.start()
        socks = [self.connect(srv.port) for _ in range(IDLE)]
        for s in socks:
            self.echo_once(s)
        for s in socks:
            s.settimeout(AGE_S * 10)
            self.assertEqual(s.recv(1), b"", "the server's FIN (EOF) at the age")
            s.close()
        fams = wait_metrics(mport, lambda f: value(
            f, "teardown_connections_closed_total", reason="max-age") == IDLE, 10,
            f"{IDLE} closes with reason max-age")
        hist = fams["teardown_connection_duration_seconds"]
        self.assertEqual(hist.value("teardown_connection_duration_seconds_count"), IDLE)
        self.assertEqual(hist.value("teardown_connection_duration_seconds_bucket", le="0.1"), 0)
        self.assertEqual(hist.value("teardown_connection_duration_seconds_bucket", le="2.5"),
                         IDLE)
        lines = wait_until(lambda: [f for f in srv.close_lines() if f["reason"] == "max-age"]
                           if len(srv.close_lines()) >= IDLE else None, 10, "close lines")
        ages = sorted(int(f["shut_age_ms"]) for f in lines)
        print(f"FIN sent at ages {ages} ms (age {AGE_S * 1000:.0f} ms +-{JITTER:.0%})")
        for a in ages:
            self.assertGreaterEqual(a, AGE_S * 1000 * (1 - JITTER))
            self.assertLessEqual(a, AGE_S * 1000 * (1 + JITTER) + 250)  # loose: ASan, load
        self.assertEqual(srv.counters()["closed"]["max-age"], IDLE)

    def test_busy_connection_gets_its_fin_within_the_grace(self):
        # 512-byte reads: the server is slower than the sender, so its receive queue is
        # rarely empty: a quiet point is rare, and else the FIN is due at half the grace
        srv, _ = self.start(read_size="512")
        s = self.connect(srv.port)
        sent = bytearray()
        got = bytearray()
        stop = threading.Event()

        def reader():
            s.settimeout(20)
            while True:
                b = s.recv(65536)
                if not b:
                    return
                got.extend(b)
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        start = time.monotonic()
        i = 0
        while t.is_alive() and time.monotonic() - start < 15 and not stop.is_set():
            chunk = bytes([i % 251]) * 4096  # back to back: input is nearly always unread
            try:
                s.sendall(chunk)
            except OSError:
                break
            sent.extend(chunk)
            i += 1
        t.join(20)
        eof_at = time.monotonic() - start
        print(f"sent {len(sent)} bytes, echoed {len(got)} before the FIN at {eof_at:.2f}s")
        self.assertFalse(t.is_alive(), "no FIN from the server")
        self.assertEqual(bytes(got), bytes(sent[:len(got)]), "the echo is a prefix of the input")
        self.assertGreater(len(got), 0)
        # age at most 1.1 s, then at most half the grace: loose bound for a loaded machine
        self.assertLess(eof_at, AGE_S * (1 + JITTER) + GRACE_S / 2 + 1.5)
        s.close()
        line = wait_until(lambda: srv.close_lines(), 10, "a close line")[0]
        print(f"our FIN at age {line['shut_age_ms']} ms (half the grace from the age: "
              f"{(AGE_S + GRACE_S / 2) * 1000:.0f} ms +- the jitter), close {line}")
        self.assertEqual(line["reason"], "max-age", line)
        self.assertLess(int(line["shut_age_ms"]), (AGE_S * (1 + JITTER) + GRACE_S) * 1000)
        # the server read every byte it echoed before its FIN, and discarded the rest
        c = srv.counters()
        self.assertEqual(c["bytes_out"], len(got), c)
        self.assertGreaterEqual(c["bytes_in"], len(got))

    def test_peer_that_never_closes_is_reset_at_the_grace_end(self):
        srv, _ = self.start()
        s = self.connect(srv.port)
        self.echo_once(s)
        s.settimeout(AGE_S * 10)
        self.assertEqual(s.recv(1), b"")  # our FIN; the peer does not answer with its own
        t0 = time.monotonic()
        line = wait_until(lambda: srv.close_lines(), GRACE_S * 5, "the reset at the grace end")[0]
        print(f"closed {time.monotonic() - t0:.2f}s after the FIN: {line}")
        self.assertEqual(line["reason"], "max-age", line)
        self.assertGreaterEqual(int(line["age_ms"]) - int(line["shut_age_ms"]),
                                GRACE_S * 1000 - 50)  # the grace counts from the age
        with self.assertRaises((ConnectionResetError, BrokenPipeError)):  # the RST
            s.send(b"x")
            time.sleep(0.2)
            s.send(b"x")
