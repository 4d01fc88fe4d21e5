# Goal of this test: a census that costs much CPU (here 400 ms, made so by the stall shim) stretches the time to the next one to ten times that, so the census never takes more than a tenth of a CPU, while the tick's other work goes on every census_interval.
import os
import time

from harness import ServerTest, recv_exactly, shim_trigger, wait_until
from promtext import start_with_metrics, value, wait_metrics

SLOW_MS = 400
INTERVAL_MS = 100


class CensusPaceTest(ServerTest):
    def test_slow_census_stretches_the_period(self):
        trigger, env = shim_trigger(self, f"call=recvmsg,spin_ms={SLOW_MS}")
        srv, mport = start_with_metrics(
            self, sets={"census_interval": f"{INTERVAL_MS}ms"},
            env=env)
        wait_metrics(mport, lambda f: value(f, "teardown_censuses_total") >= 5, 10,
                     "censuses every interval")
        open(trigger, "w").close()  # the next census costs 400 ms of CPU more, once
        wait_until(lambda: not os.path.exists(trigger), 10, "the slow census")
        t0 = time.monotonic()
        fams = wait_metrics(mport, lambda f: True, 10, "a scrape")
        c0 = value(fams, "teardown_censuses_total")
        took = value(fams, "teardown_census_duration_seconds")
        # Meanwhile the tick goes on: a connection's fd is counted at the next tick.
        s = self.connect(srv.port)
        s.sendall(b"x")
        self.assertEqual(recv_exactly(s, 1), b"x")
        fams = wait_metrics(mport, lambda f: value(f, "teardown_fds_connections") == 1, 5,
                            "the tick counting the new connection's fd")
        wait_until(lambda: time.monotonic() - t0 >= 1.5, 5, "1.5 s")
        fams = wait_metrics(mport, lambda f: True, 10, "a scrape")
        quiet = value(fams, "teardown_censuses_total") - c0
        wait_until(lambda: time.monotonic() - t0 >= took * 10 + 1.5, 15, "the stretch's end")
        fams = wait_metrics(mport, lambda f: value(f, "teardown_censuses_total") - c0 >= 5, 10,
                            "censuses every interval again")
        print(f"slow census {took * 1000:.0f} ms; censuses in the 1.5 s after it: {quiet:.0f} "
              f"(every interval: about {1500 / INTERVAL_MS:.0f}); warning: "
              f"{srv.log_lines(level='info', contains='census of port')}")
        self.assertEqual(quiet, 0)
        self.assertGreaterEqual(took * 1000, SLOW_MS)
        self.assertEqual(len(srv.log_lines(level="info", contains="at most every")), 1)

    def test_census_waiting_without_cpu_keeps_the_period(self):
        # A census that is slow because it waits (here it sleeps 400 ms: a busy machine's
        # run queue) costs no CPU: the next ones come every interval as before.
        trigger, env = shim_trigger(self, f"call=recvmsg,sleep_ms={SLOW_MS}")
        srv, mport = start_with_metrics(
            self, sets={"census_interval": f"{INTERVAL_MS}ms"},
            env=env)
        wait_metrics(mport, lambda f: value(f, "teardown_censuses_total") >= 5, 10,
                     "censuses every interval")
        open(trigger, "w").close()
        wait_until(lambda: not os.path.exists(trigger), 10, "the slow census")
        t0 = time.monotonic()
        c0 = value(wait_metrics(mport, lambda f: True, 10, "a scrape"),
                   "teardown_censuses_total")
        wait_until(lambda: time.monotonic() - t0 >= 1.5, 5, "1.5 s")
        made = value(wait_metrics(mport, lambda f: True, 10, "a scrape"),
                     "teardown_censuses_total") - c0
        print(f"censuses in the 1.5 s after a census that slept {SLOW_MS} ms: {made:.0f}")
        # Paced by its wall time there would be none for 4 s; by CPU time the census of
        # this namespace (the other tests' sockets too) leaves room for several.
        self.assertGreaterEqual(made, 2)
