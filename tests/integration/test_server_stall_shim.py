# Goal of this test: a stall without a signal (the census tick blocks 3.5 s, heartbeat_timeout 2 s) closes none of 100 live clients, while one that really went silent is still closed as heartbeat.
"""After a stall without a signal, epoll_wait returns the first batch of ready sockets (32
at first in libevent's epoll backend) and libevent then runs every expired alarm in the
same pass: the connections outside that batch meet their heartbeat alarm before their
input is read. The stall comes from the fault-injection shim (tests/shim/stall.c): while
a trigger file exists, the next fstat (the census tick's count of open fds) sleeps, then
removes the file. The clients' turns are spread over their interval so the server never
sees them all readable at once before the stall (the batch stays small)."""
import os
import time

from fleet import IdleFleet, peer_end
from harness import ServerTest, shim_trigger, wait_until

CLIENTS = 100
INTERVAL = 0.5    # each client sends a byte this often (well inside heartbeat_timeout)
HEARTBEAT_MS = 2000
STALL_MS = 3500   # how long the census tick blocks: longer than heartbeat_timeout


class StallShimTest(ServerTest):
    def test_blocked_callback_keeps_live_peers(self):
        trigger, env = shim_trigger(self, f"call=fstat,sleep_ms={STALL_MS}")
        srv = self.start_server(sets={"heartbeat_timeout": f"{HEARTBEAT_MS}ms",
                                      "census_interval": "200ms"}, env=env)
        fleet = IdleFleet(self, srv.port, CLIENTS, INTERVAL).start()
        self.addCleanup(fleet.stop)
        wait_until(lambda: fleet.all_echoed(minimum=2), 15, "every client's first echoes")
        silent = self.connect(srv.port)  # sends nothing: a peer that really went silent
        t_silent = time.monotonic()

        open(trigger, "w").close()
        t_trigger = time.monotonic()
        # The shim removes the file once the stalled call returns. No SIGUSR1 meanwhile:
        # the counters line reads /proc/self/fd too and would take the stall itself.
        wait_until(lambda: not os.path.exists(trigger), STALL_MS / 1000 + 10,
                   "the stalled census tick to return")
        t_back = time.monotonic()
        sent_before = [p.sent for p in fleet.peers]
        print(f"stall: trigger to return {t_back - t_trigger:.2f}s "
              f"(heartbeat_timeout {HEARTBEAT_MS}ms)")
        self.assertGreaterEqual(t_back - t_trigger, STALL_MS / 1000 - 0.1)

        def caught_up():
            snap = fleet.snapshot()
            return all(e >= s for (_, e, _), s in zip(snap, sent_before)) or \
                any(c is not None for _, _, c in snap)
        wait_until(caught_up, 15, "the echo of what every client sent during the stall")
        closed = fleet.closed()
        print(f"after the stall: {len(closed)} of {CLIENTS} live clients closed "
              f"({sorted(set(p.closed for p in closed))})")
        self.assertEqual(len(closed), 0, f"{len(closed)} of {CLIENTS} live clients were closed "
                         f"after the stall")

        how = peer_end(silent, HEARTBEAT_MS / 1000 + STALL_MS / 1000 + 10)
        took = time.monotonic() - t_silent
        print(f"silent peer closed ({how}) {took:.2f}s after connect")
        self.assertIn(how, ("FIN", "RST"))
        self.assertLessEqual(took, HEARTBEAT_MS / 1000 + (t_back - t_trigger) + 3.0)

        fleet.stop()
        c = srv.counters()
        print(f"counters: closed {c['closed']}, open {c['open']}")
        self.assertEqual(c["closed"]["heartbeat"], 1, f"only the silent peer: {c['closed']}")
        self.assertEqual(c["open"], CLIENTS, c)
