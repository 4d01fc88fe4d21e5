# Goal of this test: a stderr that nobody reads (a pipe, a unix stream socket, a terminal) never stalls the server: churn at debug level has no failures and no CLOSE_WAIT, the lost lines are counted and reported once stderr is read again, and fd 2's flags are left alone.
"""The server's stderr is a pipe (one page, the smallest), a unix stream socket or a pty
whose other end the test holds and does not read while 3,000 connections open, echo and
close (debug level: one line per close, far more than the pipe, the socket buffer or the
16 KiB log_buffer hold). Before the fix every log line was a blocking write(2): the server
stopped inside it, the accept queue filled, and most connections failed.

Then the test starts reading: the line that reports the drops must appear, and the counters
line must carry log_dropped equal to what was reported; every line read is whole (with two
workers writing into one pipe too). On the pty, the test's own descriptor of the terminal
(the same open file description as the server's fd 2) must still be blocking."""
import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import tty
import urllib.request

from harness import (LOG_RE, REPO, START_TIMEOUT, Server, ServerTest, server_env, ss_lines,
                     wait_until)
from test_client_helpers import run_client

CONNECTIONS = 3000
RATE = "1500/s"
F_SETPIPE_SZ = 1031
REPORT_RE = re.compile(r"echo-server\[(\d+)\] warn: log: (\d+) lines dropped: ")
COUNTERS_RE = re.compile(r"echo-server\[(\d+)\] info: counters (\{.*\})$", re.M)


class Reader:
    """Reads fd into a buffer from start() on, in a thread, until stop()."""

    def __init__(self, fd):
        self.fd, self.data, self.lock, self.started = fd, bytearray(), threading.Lock(), False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.started = True
        self.thread.start()

    def start_if_idle(self):
        if not self.started:
            self.start()

    def _run(self):
        while not self.done.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:  # EIO: the pty's last other holder is gone
                return
            if not chunk:
                return
            with self.lock:
                self.data += chunk

    def text(self):
        with self.lock:
            return bytes(self.data).decode("utf-8", "replace")

    def stop(self):
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)


class StderrServer(Server):
    """A Server whose stderr is the fd given (the harness's goes to a file); log() is what
    the test's Reader has read of it."""

    def __init__(self, test, stderr_fd, reader, **kw):
        super().__init__(test, **kw)
        self.stderr_fd, self.reader = stderr_fd, reader

    def start(self):
        self._err = open(os.devnull, "wb")
        self._out = open(os.path.join(self.dir, "stdout.log"), "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self.stderr_fd, env=server_env(), cwd=str(REPO))
        self.test.addCleanup(self.cleanup)
        self.test.addCleanup(self.reader.start_if_idle)  # runs first: read while stopping

        def port_ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}")
            try:
                with open(self.port_file) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return text if text.endswith("\n") else None

        self.port = int(wait_until(port_ready, START_TIMEOUT, "the port file").strip())
        return self

    def log(self):
        return self.reader.text()


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    raise AssertionError(f"no {name} in /metrics")


class CloseWaitSampler:
    """Samples the port's CLOSE_WAIT sockets with ss while the load runs. A close takes
    microseconds after the peer's FIN, so a sample may catch one on its way out; a socket
    still in CLOSE_WAIT half a second after a sample first saw it is one the server left
    there (as when it stopped inside a write to stderr)."""

    STUCK = 0.5

    def __init__(self, port):
        self.port, self.most, self.samples, self.stuck = port, 0, 0, set()
        self.first_seen = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.wait(0.05):
            now = time.monotonic()
            socks = {tuple(l.split()[-2:]) for l in ss_lines(self.port, "close-wait")}
            self.first_seen = {s: self.first_seen.get(s, now) for s in socks}
            self.stuck |= {s for s, t in self.first_seen.items() if now - t >= self.STUCK}
            self.most = max(self.most, len(socks))
            self.samples += 1

    def stop(self):
        self.done.set()
        self.thread.join(timeout=30)


class LogStallTest(ServerTest):
    def setUp(self):
        self.require_ss()

    def start_stalled(self, ours, theirs, workers=1):
        """The server with stderr = theirs; the test reads ours only from reader.start()."""
        d = tempfile.TemporaryDirectory(prefix="teardown-logstall-")
        self.addCleanup(d.cleanup)
        mpf = os.path.join(d.name, "metrics-port")
        reader = Reader(ours)
        self.addCleanup(reader.stop)
        srv = StderrServer(self, theirs, reader, extra=["--metrics-port-file", mpf],
                           sets={"log_level": "debug", "log_buffer": "16k",
                                 "workers": workers, "metrics_listen": "127.0.0.1:0"})
        srv.start()
        srv.mport = int(wait_until(lambda: os.path.exists(mpf) and open(mpf).read().strip(),
                                   START_TIMEOUT, "the metrics port file"))
        return srv

    def churn(self, srv):
        """3,000 connections that echo and close: none fails, no CLOSE_WAIT builds up."""
        sampler = CloseWaitSampler(srv.port)
        self.addCleanup(sampler.stop)
        t0 = time.monotonic()
        run = run_client(self, ["--server", f"127.0.0.1:{srv.port}", "--scenario", "close",
                                "--connections", CONNECTIONS, "--rate", RATE,
                                "--connect-timeout", "3s", "--reply-timeout", "3s", "--json",
                                "--quiet"])
        sampler.stop()
        c = run.counts()
        print(f"{CONNECTIONS} connections in {time.monotonic() - t0:.1f}s: "
              f"{c['completed']} completed, {c['failed']} failed; CLOSE_WAIT: at most "
              f"{sampler.most} in {sampler.samples} samples, {len(sampler.stuck)} for "
              f"{sampler.STUCK}s or more, {run.state('server', 'close_wait')} at the end")
        self.assertEqual(c["failed"], 0, str(run))
        self.assertEqual(c["completed"], CONNECTIONS, str(run))
        self.assertEqual(len(sampler.stuck), 0, "sockets stayed in CLOSE_WAIT")
        self.assertEqual(run.state("server", "close_wait"), 0, "CLOSE_WAIT at the end")

    def dropped_then_reported(self, srv, workers=1):
        """/metrics counts drops while nobody reads; once the test reads, each worker's
        report line appears and its counters line agrees with it."""
        dropped = wait_until(lambda: metric(srv.mport, "teardown_log_dropped_lines_total"),
                             10, "teardown_log_dropped_lines_total > 0")
        print(f"teardown_log_dropped_lines_total {dropped} while stderr was not read")
        srv.reader.start()
        wait_until(lambda: REPORT_RE.search(srv.log()), 10, "the line reporting the drops")
        srv.signal(signal.SIGUSR1)  # the parent forwards it to every worker

        def counters():
            found = {}
            for m in COUNTERS_RE.finditer(srv.log()):
                found[m.group(1)] = json.loads(m.group(2))
            return found if len(found) >= workers else None
        try:
            found = wait_until(counters, 10, f"counters lines from {workers} process(es)")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{srv.log_tail(40)}") from None
        reported = {}
        for m in REPORT_RE.finditer(srv.log()):
            reported[m.group(1)] = reported.get(m.group(1), 0) + int(m.group(2))
        print(f"reported per process: {reported}; log_dropped per process: "
              f"{ {p: c['log_dropped'] for p, c in found.items()} }")
        self.assertGreater(sum(c["log_dropped"] for c in found.values()), 0)
        for pid, c in found.items():
            self.assertEqual(c["log_dropped"], reported.get(pid, 0),
                             f"process {pid}: counters vs report lines")
        self.assertGreaterEqual(sum(reported.values()), dropped)

    def assert_whole_lines(self, srv):
        text = srv.log()
        complete = text[:text.rfind("\n") + 1]
        bad = [l for l in complete.splitlines() if not LOG_RE.match(l)]
        self.assertEqual(bad[:5], [], "lines cut or interleaved")
        print(f"{len(complete.splitlines())} whole lines read")

    def stop(self, srv):
        t0 = time.monotonic()
        self.assertEqual(srv.stop(timeout=20), 0, srv.log_tail())
        print(f"exit 0 after {time.monotonic() - t0:.2f}s")

    def stalled_pipe(self, workers):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
        srv = self.start_stalled(r, w, workers)
        os.close(w)
        self.churn(srv)
        self.dropped_then_reported(srv, workers)
        self.assert_whole_lines(srv)
        self.stop(srv)

    def test_pipe_never_read(self):
        self.stalled_pipe(1)

    def test_pipe_never_read_two_workers(self):
        self.stalled_pipe(2)

    def test_exit_with_stderr_never_read(self):
        """At exit the lines still queued get a bounded attempt (about 1 s), never an
        unbounded wait for a reader that does not come."""
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
        srv = self.start_stalled(r, w)
        os.close(w)
        for _ in range(300):  # 35 KB of close lines: more than the pipe and the buffer hold
            s = self.connect(srv.port)
            self.echo_once(s)
            s.close()
        # a line dropped: the buffer is full, lines are waiting
        wait_until(lambda: metric(srv.mport, "teardown_log_dropped_lines_total"), 10,
                   "teardown_log_dropped_lines_total > 0")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait_exit(20)
        elapsed = time.monotonic() - t0
        print(f"exit {rc} {elapsed:.2f}s after SIGTERM with stderr never read")
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 10)

    def test_unix_socket_never_read(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(ours.close)
        srv = self.start_stalled(ours.fileno(), theirs.fileno())
        theirs.close()
        self.churn(srv)
        self.dropped_then_reported(srv)
        self.assert_whole_lines(srv)
        self.stop(srv)

    def test_pty_never_read(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)  # no "\n" -> "\r\n": lines read back as written
        self.assertFalse(fcntl.fcntl(slave, fcntl.F_GETFL) & os.O_NONBLOCK)
        srv = self.start_stalled(master, slave)
        self.churn(srv)
        self.dropped_then_reported(srv)
        self.assert_whole_lines(srv)
        # the server's fd 2 and the test's slave share one open file description
        self.assertFalse(fcntl.fcntl(slave, fcntl.F_GETFL) & os.O_NONBLOCK,
                         "the terminal's O_NONBLOCK was changed")
        self.stop(srv)
        self.assertFalse(fcntl.fcntl(slave, fcntl.F_GETFL) & os.O_NONBLOCK,
                         "the terminal's O_NONBLOCK was changed")


if __name__ == "__main__":
    import unittest
    unittest.main()
