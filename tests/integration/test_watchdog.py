# Goal of this test: the CLOSE_WAIT watchdog warns (right count, oldest age, at most once per census) about leaked CLOSE_WAIT sockets and never about half-closed slow readers the server is deliberately flushing to.
import re
import socket
import threading
import time

from harness import ServerTest, pattern, recv_exactly, ss_lines, wait_until
from promtext import scrape, start_with_metrics, value, wait_metrics

WARN_RE = re.compile(r"close-wait watchdog: (\d+) sockets on port (\d+) in CLOSE_WAIT for more "
                     r"than (\d+)ms and not being flushed, oldest (\d+)ms \((.*)\)$")


def iso_seconds(ts):
    """Seconds of the day of a log timestamp 2026-11-26T03:28:02.123Z."""
    h, m, s = ts[11:-1].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def warnings(srv):
    out = []
    for ts, _, _, text in srv.log_lines(level="warn"):
        m = WARN_RE.search(text)
        if m:
            out.append((iso_seconds(ts), int(m.group(1)), int(m.group(4)), m.group(5)))
    return out


class HalfClosedReader:
    """Sends `size` bytes and shuts down its side (a half-close), while reading its echo at
    `rate` bytes/s; stops reading once `stall` is set and reads to EOF at full speed once
    `go` is set."""

    def __init__(self, test, port, size, rate, stall, rcvbuf=16384):
        self.data = pattern(size, seed=size & 0xFF)
        self.rate = rate
        self.stall = stall
        self.go = threading.Event()
        self.stalled = threading.Event()  # the reader has seen `stall` and stopped
        self.got = bytearray()
        self.error = None
        self.eof = False
        self.s = socket.socket()
        test.addCleanup(self.s.close)
        test.addCleanup(self.go.set)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(60)
        self.s.connect(("127.0.0.1", port))
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]
        for t in self.threads:
            t.start()

    def _send(self):
        try:
            self.s.sendall(self.data)
            self.s.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = e

    def _pace(self, t0):
        """Seconds to wait before the next read (the client's behaviour, not a wait for a
        state)."""
        if self.go.is_set():
            return 0
        if self.stall.is_set():
            self.stalled.set()
            return 0.05
        return len(self.got) / self.rate - (time.monotonic() - t0)

    def _read(self):
        t0 = time.monotonic()
        try:
            while True:
                wait = self._pace(t0)
                if wait > 0:
                    self.go.wait(min(wait, 0.05))
                    continue
                b = self.s.recv(1 << 16)
                if not b:
                    self.eof = True
                    return
                self.got += b
        except OSError as e:
            self.error = e

    def finish(self, timeout=60):
        self.go.set()
        for t in self.threads:
            t.join(timeout)


class WatchdogTest(ServerTest):
    def test_leaky_mode_warns_with_the_count(self):
        n, interval_ms = 40, 200
        srv, mport = start_with_metrics(self, mode="leaky", sets={
            "close_wait_alarm": "1s", "census_interval": f"{interval_ms}ms",
            "log_level": "debug"})
        socks = [self.connect(srv.port) for _ in range(n)]
        for s in socks:
            self.echo_once(s, b"bye\n")
        for s in socks:
            s.close()
        wait_until(lambda: any(w[1] == n for w in warnings(srv)), 20,
                   f"a warning about all {n} CLOSE_WAIT sockets")
        ws = warnings(srv)
        full = [w for w in ws if w[1] == n]
        eofs = [iso_seconds(ts) for ts, _, _, t in srv.log_lines(level="debug")
                if "ignored (close_on_eof=no)" in t]
        self.assertEqual(len(eofs), n)
        first = ws[0][0] - max(eofs)
        print(f"leaky: {len(ws)} warnings, first {first:.2f}s after the last EOF; "
              f"last: count {ws[-1][1]}, oldest {ws[-1][2]}ms ({ws[-1][3]})")
        self.assertGreaterEqual(ws[0][0] - min(eofs), 0.99, "warned before close_wait_alarm")
        self.assertIn(f"eof_ignored={n}", full[0][3])
        self.assertGreaterEqual(full[0][2], 1000)
        for a, b in zip(ws, ws[1:]):
            self.assertGreater(b[0] - a[0], interval_ms / 1000 * 0.5,
                               "more than one warning per census interval")
        fams = wait_metrics(mport, lambda f: value(f, "teardown_close_wait_overdue_sockets") == n,
                            10, f"{n} overdue CLOSE_WAIT sockets in /metrics")
        self.assertEqual(value(fams, "teardown_close_wait_sockets"), n)
        self.assertGreaterEqual(value(fams, "teardown_close_wait_oldest_overdue_seconds"), 1.0)
        self.assertGreaterEqual(value(fams, "teardown_close_wait_warnings_total"), len(ws))

    def _half_closed_readers(self, port, k, size):
        """k half-closed readers; each stops reading once its server socket is in
        CLOSE_WAIT (the server has its FIN) with echo still to be read. Returns those that
        stalled (a reader whose echo was all flushed by then has its EOF already). Whether
        one is caught is a race: when the server's queue is empty as the FIN is read, it
        closes at once and the rest of the echo leaves from the kernel's send buffer, so
        CLOSE_WAIT lasts microseconds. About 3 in 10 readers are missed so; with 3 readers
        none was caught in 1 run of 26 (the server of session 2) and 4 of 43 (session 3's);
        the callers use enough readers that all are missed once in a thousand runs or less."""
        self.require_ss()
        readers = [HalfClosedReader(self, port, size, 1 << 20, threading.Event())
                   for _ in range(k)]
        by_port = {r.s.getsockname()[1]: r for r in readers}

        def stall_those_in_close_wait():
            for line in ss_lines(port, "close-wait"):
                r = by_port.get(int(line.split()[-1].rsplit(":", 1)[1]))
                if r is not None:
                    r.stall.set()
            return all(r.stall.is_set() or r.eof for r in readers)
        wait_until(stall_those_in_close_wait, 60, f"{k} half-closed sockets in CLOSE_WAIT",
                   interval=0.02)
        wait_until(lambda: all(r.eof or r.stalled.is_set() for r in readers), 10,
                   "the readers to stop reading")
        stalled = [r for r in readers if r.stalled.is_set() and not r.eof]
        print(f"{len(stalled)} of {k} half-closed readers stalled in CLOSE_WAIT")
        self.assertTrue(stalled, "no half-closed reader was caught in CLOSE_WAIT")
        return readers, stalled

    def test_correct_mode_half_closed_slow_readers_never_warn(self):
        k, size = 6, 8 << 20
        srv, mport = start_with_metrics(self, sets={"close_wait_alarm": "1s",
                                                    "census_interval": "100ms"})
        stop = threading.Event()
        load = {"rounds": 0, "error": None}

        def echo_load():  # other clients echo and close meanwhile
            try:
                while not stop.is_set():
                    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                        s.sendall(b"load\n")
                        if recv_exactly(s, 5) != b"load\n":
                            raise AssertionError("bad echo under load")
                    load["rounds"] += 1
            except Exception as e:  # reported below
                load["error"] = e
        bg = threading.Thread(target=echo_load, daemon=True)
        bg.start()
        self.addCleanup(stop.set)
        readers, stalled = self._half_closed_readers(srv.port, k, size)
        peak = {"overdue": 0}

        def stuck():
            """The stalled readers whose server socket is still in CLOSE_WAIT. One seen
            there with only a few KB left to queue may have had them taken by the kernel
            (send and receive buffers hold several MB) before it stopped reading: the
            server then closed it as usual (seen once in a clean run: the wait for all the
            stalled ones timed out, fin_timeout closed the others)."""
            cw = {int(line.split()[-1].rsplit(":", 1)[1]) for line in ss_lines(srv.port,
                                                                                "close-wait")}
            return [r for r in stalled if r.s.getsockname()[1] in cw]

        def all_flushing(f):
            peak["overdue"] = max(peak["overdue"], value(f, "teardown_close_wait_overdue_sockets"))
            n = len(stuck())
            return n > 0 and value(f, "teardown_close_wait_flushing_sockets") == n
        fams = wait_metrics(mport, all_flushing, 30,
                            f"the stalled half-closed slow readers (of {len(stalled)}) in "
                            f"CLOSE_WAIT for over 1s, flushing")
        print(f"half-closed slow readers: {value(fams, 'teardown_close_wait_sockets')} in "
              f"CLOSE_WAIT, {value(fams, 'teardown_close_wait_flushing_sockets')} flushing "
              f"past the alarm, {load['rounds']} echo+close rounds meanwhile")
        for r in readers:
            r.finish()
        stop.set()
        bg.join(20)
        self.assertIsNone(load["error"])
        for r in readers:
            self.assertIsNone(r.error)
            self.assertTrue(r.eof, "no EOF after the echo")
            self.assertEqual(len(r.got), size)
            self.assertTrue(r.got == r.data, "echo differs")
        c = srv.wait_counters(lambda c: c["open"] == 0, 20, "every connection closed")
        self.assertEqual(c["closed"]["eof"], k + load["rounds"], f"{c}")
        fams = scrape(mport)
        self.assertEqual(peak["overdue"], 0)
        self.assertEqual(value(fams, "teardown_close_wait_warnings_total"), 0)
        self.assertEqual(warnings(srv), [], srv.log_tail())

    def test_fin_unseen_while_paused_is_warned(self):
        """Positive control for correct mode: with early_close=no a paused connection never
        learns of the FIN, so its CLOSE_WAIT is not a deliberate flush."""
        k, size = 8, 8 << 20
        srv, mport = start_with_metrics(self, sets={"close_wait_alarm": "1s",
                                                    "census_interval": "100ms",
                                                    "early_close": "no"})
        readers, stalled = self._half_closed_readers(srv.port, k, size)
        n = len(stalled)
        wait_until(lambda: any(w[1] == n for w in warnings(srv)), 30,
                   f"a warning about {n} CLOSE_WAIT sockets whose FIN the server has not seen")
        w = [w for w in warnings(srv) if w[1] == n][0]
        print(f"early_close=no: warned {w[1]} sockets, oldest {w[2]}ms ({w[3]})")
        self.assertIn(f"fin_unseen={n}", w[3])
        for r in readers:
            r.finish()
            self.assertTrue(r.eof and r.got == r.data, "echo incomplete")
