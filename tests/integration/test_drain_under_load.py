# Goal of this test: a graceful drain under streaming load loses no echo and resets nobody early: after SIGTERM new connections are refused, every client gets its echo then EOF (never ECONNRESET), peers that never close are reset at shutdown_timeout, TCPAbortOnClose does not rise, and the server exits 0.
import errno
import signal
import socket
import threading
import time

import netns
from harness import ServerTest, pattern, wait_until

STREAMERS = 20
STUBBORN = 2         # read the server's FIN but never close
SHUTDOWN_TIMEOUT = 3.0
MSG = 1000


class Streamer(threading.Thread):
    """Sends numbered messages, one at a time, and checks each echo byte for byte."""

    def __init__(self, sock, seed):
        super().__init__(daemon=True)
        self.sock, self.seed = sock, seed
        self.echoed = 0
        self.outcome = None    # "eof", "reset", "mismatch", "timeout", or an errno name
        self.unanswered = 0    # messages sent but not echoed when the stream ended

    def run(self):
        data = pattern(MSG * 4096, self.seed)
        self.sock.settimeout(SHUTDOWN_TIMEOUT + 5)
        try:
            while self.echoed < 4096:
                msg = data[self.echoed * MSG:(self.echoed + 1) * MSG]
                self.sock.sendall(msg)
                got = b""
                while len(got) < MSG:
                    chunk = self.sock.recv(MSG - len(got))
                    if not chunk:
                        self.outcome, self.unanswered = "eof", 1
                        if got:
                            self.outcome = "eof-mid-message"
                        return
                    got += chunk
                if got != msg:
                    self.outcome = "mismatch"
                    return
                self.echoed += 1
            self.outcome = "ran out of messages"
        except ConnectionResetError:
            self.outcome = "reset"
        except BrokenPipeError:
            # our send raced the server's FIN and its discard; the FIN is what we read next
            self.outcome = "eof" if self.sock.recv(1) == b"" else "epipe"
        except socket.timeout:
            self.outcome = "timeout"
        except OSError as e:
            self.outcome = errno.errorcode.get(e.errno, str(e))
        finally:
            if self.outcome in ("eof", "eof-mid-message"):
                self.sock.close()


class DrainTest(ServerTest):
    def setUp(self):
        netns.require_root(self)

    def test_drain_under_streaming_load(self):
        pair = netns.new_pair(self)
        srv = self.start_server_in(pair, sets={
            "shutdown_timeout": f"{int(SHUTDOWN_TIMEOUT * 1000)}ms", "heartbeat_timeout": "0"})
        with netns.inside(pair.cli_ns):
            socks = [socket.create_connection((pair.srv_ip, srv.port), timeout=5)
                     for _ in range(STREAMERS + STUBBORN)]
        for s in socks:
            self.addCleanup(s.close)
        streamers = [Streamer(s, i) for i, s in enumerate(socks[:STREAMERS])]
        for t in streamers:
            t.start()
        for s in socks[STREAMERS:]:
            self.echo_once(s)
        wait_until(lambda: all(t.echoed >= 20 for t in streamers), 10, "streaming to start")
        aborts = ("TcpExtTCPAbortOnClose", "TcpExtTCPAbortOnData")
        before = netns.nstat(pair.srv_ns, *aborts)
        t_term = time.monotonic()
        srv.signal(signal.SIGTERM)
        # The listener is closed once the drain has begun; a probe sent earlier would be
        # accepted (and drained) like any queued connection.
        wait_until(lambda: srv.log_lines(contains="draining"), 5, "the drain to begin")

        def refused():
            with netns.inside(pair.cli_ns):
                try:
                    socket.create_connection((pair.srv_ip, srv.port), timeout=1).close()
                    return False
                except ConnectionRefusedError:
                    return True
        wait_until(refused, 2, "new connections to be refused after SIGTERM")
        for t in streamers:
            t.join(SHUTDOWN_TIMEOUT + 10)
        code = srv.wait_exit(SHUTDOWN_TIMEOUT + 5)
        took = time.monotonic() - t_term
        after = netns.nstat(pair.srv_ns, *aborts)
        c = srv.exit_counters()
        outcomes = [t.outcome for t in streamers]
        echoed = sum(t.echoed for t in streamers)
        print(f"drain: {echoed} messages echoed; streamer outcomes "
              f"{ {o: outcomes.count(o) for o in set(outcomes)} }; "
              f"{sum(t.unanswered for t in streamers)} messages sent after the server's FIN; "
              f"exit {code} after {took:.2f}s; closed {c['closed']}; "
              f"TCPAbortOnClose +{after[aborts[0]] - before[aborts[0]]}, "
              f"TCPAbortOnData +{after[aborts[1]] - before[aborts[1]]}")
        self.assertEqual(outcomes, ["eof"] * STREAMERS, "each streamer: its echo, then EOF")
        self.assertEqual(code, 0)
        self.assertEqual(after[aborts[0]] - before[aborts[0]], 0, "TCPAbortOnClose rose")
        # The stubborn peers are reset at the deadline: that is the only abort.
        self.assertEqual(after[aborts[1]] - before[aborts[1]], STUBBORN)
        self.assertGreaterEqual(took, SHUTDOWN_TIMEOUT * 0.9)
        self.assertLess(took, SHUTDOWN_TIMEOUT + 2)
        self.assertEqual(c["closed"]["shutdown"], STREAMERS + STUBBORN, f"{c}")
        self.assertEqual(c["open"], 0)
        for s in socks[STREAMERS:]:
            s.settimeout(2)
            self.assertEqual(s.recv(1), b"", "a stubborn peer first got the server's FIN")
