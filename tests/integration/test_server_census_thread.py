# Goal of this test: with workers, the census that worker 0 takes for every worker runs beside its event loop, not in it, so a slow census (2,000,000 sockets take seconds) never delays the echo of worker 0's own connections.
"""The slow census comes from the fault-injection shim (tests/shim/stall.c): the next
recvmsg after a trigger file appears sleeps STALL_MS, then removes the file. recvmsg is
the census's read of its sock_diag dump; nothing else in the server calls it while it
serves. Twenty connections spread over both workers by SO_REUSEPORT (all on worker 1:
one chance in a million) each echo a byte every 50 ms while the census stalls."""
import os
import time

from harness import ServerTest, shim_trigger, wait_until

STALL_MS = 3000
CONNS = 20


class CensusThreadTest(ServerTest):
    def test_slow_census_delays_no_echo(self):
        trigger, env = shim_trigger(self, f"call=recvmsg,sleep_ms={STALL_MS}")
        srv = self.start_server(sets={"workers": "2", "census_interval": "100ms"}, env=env)
        socks = [self.connect(srv.port) for _ in range(CONNS)]
        for s in socks:
            self.echo_once(s, b"x")
        open(trigger, "w").close()
        worst = 0.0
        t_end = time.monotonic() + STALL_MS / 1000 + 1.0
        while time.monotonic() < t_end:
            for s in socks:
                t0 = time.monotonic()
                self.echo_once(s, b"y")
                worst = max(worst, time.monotonic() - t0)
            time.sleep(0.05)
        # the census did stall: the shim removes the trigger once its sleep is over
        wait_until(lambda: not os.path.exists(trigger), 10, "the stalled census to return")
        print(f"census stalled {STALL_MS} ms in worker 0; slowest echo meanwhile over "
              f"{CONNS} connections: {worst * 1000:.1f} ms")
        self.assertLess(worst, 1.0, "an echo waited for the census")
