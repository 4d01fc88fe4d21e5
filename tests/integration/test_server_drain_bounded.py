# Goal of this test: SIGTERM starts the drain soon even while clients complete connections faster than the server accepts them: the drain accepts only what was queued at the signal ("draining N connections" soon after it), then exits 0.
import shutil
import signal
import subprocess
import sys
import time

from harness import ServerTest, log_time, wait_until

# Each flood process opens connections as fast as it can, without waiting for anything:
# a non-blocking connect (on loopback the handshake completes inside connect(), so the
# connection is in the server's accept queue on return), then an RST close (SO_LINGER 0: no
# TIME_WAIT, so the ports never run out). A refused connect does not stop it: a port
# reused at this pace can meet a stale socket of its previous connection and be reset even
# while the server listens. It stops at its deadline or when the test kills it.
FLOOD = r"""
import socket, struct, sys, time
port, end = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
linger = struct.pack("ii", 1, 0)
while time.monotonic() < end:
    s = socket.socket()
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    try:
        s.connect(("127.0.0.1", port))
    except (BlockingIOError, ConnectionRefusedError):
        pass
    s.close()
"""
FLOODERS = 2
BACKLOG = 64
ACCEPT_DELAY_US = 2000
DRAIN_BOUND = 10.0  # s from the signal to "draining"; the drain takes <= 65 x 2 ms


def accept_queue(port):
    """The listener's accept queue now (Recv-Q of a LISTEN socket in ss), or 0."""
    p = subprocess.run(["ss", "-ltnH", f"( sport = :{port} )"], capture_output=True,
                       text=True, timeout=20)
    fields = p.stdout.split()
    return int(fields[1]) if len(fields) > 1 else 0


def tracer_pid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


class DrainBoundedTest(ServerTest):
    def slow_accepts(self, srv):
        """Every accept4() of the server takes ACCEPT_DELAY_US more (strace's delay
        injection): a server whose accepts cannot keep up, on any machine, so the accept
        queue never runs empty while the flood lasts."""
        if shutil.which("strace") is None:
            self.skipTest("strace is not installed (it slows the server's accept4)")
        st = subprocess.Popen(["strace", "-qq", "-o", "/dev/null", "-p", str(srv.pid),
                               "-e", "trace=accept4",
                               "-e", f"inject=accept4:delay_exit={ACCEPT_DELAY_US}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.detach, srv, st)
        try:
            wait_until(lambda: tracer_pid(srv.pid) == st.pid or st.poll() is not None, 10,
                       "strace to attach")
        except AssertionError:
            pass
        if tracer_pid(srv.pid) != st.pid:
            st.terminate()
            self.skipTest(f"strace cannot attach: {st.communicate(timeout=10)[1]!r}")
        return st

    def detach(self, srv, st):
        """strace detaches on SIGTERM; the server goes on at full speed (and exits untraced:
        LeakSanitizer cannot run under ptrace)."""
        if st.poll() is None:
            st.terminate()
        st.wait(10)
        if srv.alive():
            wait_until(lambda: tracer_pid(srv.pid) == 0, 10, "strace to detach")

    def test_drain_starts_under_a_connect_flood(self):
        self.require_ss()
        srv = self.start_server(sets={"backlog": str(BACKLOG), "shutdown_timeout": "20s"})
        held = self.connect(srv.port)  # keeps the drain going until the test closes it
        self.echo_once(held)
        st = self.slow_accepts(srv)
        flood = []
        for _ in range(FLOODERS):
            p = subprocess.Popen([sys.executable, "-c", FLOOD, str(srv.port), "60"])
            flood.append(p)
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
        full = wait_until(lambda: accept_queue(srv.port) >= BACKLOG and
                          accept_queue(srv.port), 20, "the flood to fill the accept queue")
        t_sig = time.time()
        srv.signal(signal.SIGTERM)
        line = wait_until(lambda: srv.log_lines(level="info", contains="draining "),
                          DRAIN_BOUND, "the drain to start ('draining N connections')")[0]
        took = max(0.0, log_time(line[0]) - t_sig)
        print(f"accept queue {full} at the signal (backlog {BACKLOG}, accept4 slowed by "
              f"{ACCEPT_DELAY_US} us); '{line[3]}' {took * 1000:.0f} ms after SIGTERM")
        self.detach(srv, st)
        self.assertTrue(srv.alive(), "the drain ended before the held connection closed")
        held.close()
        self.assertEqual(srv.wait_exit(20), 0, srv.log_tail())
        for p in flood:
            p.kill()
            p.wait()
