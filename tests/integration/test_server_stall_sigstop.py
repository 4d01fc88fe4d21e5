# Goal of this test: after SIGSTOP/SIGCONT longer than heartbeat_timeout, none of 100 live clients (a byte every 0.5 s) is closed, while one that really went silent is still closed as heartbeat.
"""The reproduction of issue 14 section 2. After SIGCONT, epoll_wait returns EINTR (signal(7):
it is not restarted after a stop) and libevent runs every expired alarm in that pass, before
any byte that arrived during the stop is read: judged by the clock alone, every connection
was silent for longer than heartbeat_timeout. The server must judge by the socket instead
(input waiting), so every live client keeps its connection and gets the echo of what it sent
while the server was stopped."""
import signal
import time

from fleet import IdleFleet, peer_end
from harness import ServerTest, wait_until

CLIENTS = 100
INTERVAL = 0.5     # each client sends a byte this often (well inside heartbeat_timeout)
HEARTBEAT = 2.0    # heartbeat_timeout, seconds
STOP = 3.5         # how long the server is stopped: longer than heartbeat_timeout


class StallSigstopTest(ServerTest):
    def test_stopped_server_keeps_live_peers(self):
        srv = self.start_server(sets={"heartbeat_timeout": f"{int(HEARTBEAT * 1000)}ms"})
        fleet = IdleFleet(self, srv.port, CLIENTS, INTERVAL).start()
        self.addCleanup(fleet.stop)
        wait_until(lambda: fleet.all_echoed(minimum=2), 15, "every client's first echoes")
        silent = self.connect(srv.port)  # sends nothing: a peer that really went silent
        t_silent = time.monotonic()

        srv.signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        try:
            # The stimulus under test is the stop's length, not a wait for a state.
            time.sleep(STOP)
        finally:
            srv.signal(signal.SIGCONT)
        t_cont = time.monotonic()
        sent_before = [p.sent for p in fleet.peers]
        print(f"server stopped for {t_cont - t_stop:.2f}s (heartbeat_timeout {HEARTBEAT}s)")

        def caught_up():
            snap = fleet.snapshot()
            return all(e >= s for (_, e, _), s in zip(snap, sent_before)) or \
                any(c is not None for _, _, c in snap)
        wait_until(caught_up, 15, "the echo of what every client sent during the stop")
        t_caught = time.monotonic()
        closed = fleet.closed()
        print(f"after SIGCONT: {CLIENTS - len(closed)} of {CLIENTS} live clients echoed "
              f"within {t_caught - t_cont:.3f}s, {len(closed)} closed "
              f"({sorted(set(p.closed for p in closed))})")
        self.assertEqual(len(closed), 0, f"{len(closed)} of {CLIENTS} live clients were closed "
                         f"after the stop")

        # The silent peer is still closed: within heartbeat_timeout plus the stop (and a
        # loose margin for a loaded machine), reason heartbeat.
        how = peer_end(silent, HEARTBEAT + STOP + 10)
        took = time.monotonic() - t_silent
        print(f"silent peer closed ({how}) {took:.2f}s after connect")
        self.assertIn(how, ("FIN", "RST"))
        self.assertLessEqual(took, HEARTBEAT + (t_cont - t_stop) + 3.0)

        fleet.stop()
        c = srv.counters()
        print(f"counters: closed {c['closed']}, open {c['open']}")
        self.assertEqual(c["closed"]["heartbeat"], 1, f"only the silent peer: {c['closed']}")
        self.assertEqual(c["open"], CLIENTS, c)
