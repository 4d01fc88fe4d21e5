# Goal of this test: a stall of the event loop shows in loop_lag_max_us, in the teardown_event_loop_lag_seconds histogram and in one warning that names the callback that was running (or none, for SIGSTOP).
"""The loop lag is a 100 ms timer's lateness against CLOCK_MONOTONIC. A stall inside the
census tick comes from the fault-injection shim (tests/shim/stall.c: the next fstat
after a trigger file appears sleeps, then removes the file); a stall outside any callback
from SIGSTOP/SIGCONT."""
import os
import signal
import time

from harness import ServerTest, shim_trigger, wait_until
from promtext import scrape, start_with_metrics, value

STALL_MS = 2500


def lag_over_1s(families):
    """Samples of teardown_event_loop_lag_seconds above 1 s, and the sample count."""
    count = value(families, "teardown_event_loop_lag_seconds",
                  "teardown_event_loop_lag_seconds_count")
    le1 = value(families, "teardown_event_loop_lag_seconds",
                "teardown_event_loop_lag_seconds_bucket", le="1")
    return count - le1, count


class StallLagTest(ServerTest):
    def stall_lines(self, srv):
        return [t for _, _, _, t in srv.log_lines(level="warn", contains="event loop stalled")]

    def test_stall_in_census_tick(self):
        trigger, env = shim_trigger(self, f"call=fstat,sleep_ms={STALL_MS}")
        srv, mport = start_with_metrics(self, sets={"census_interval": "200ms"}, env=env)
        over, count = wait_until(lambda: (lambda r: r if r[1] >= 3 else None)(
            lag_over_1s(scrape(mport))), 10, "three loop lag samples")
        print(f"before the stall: {count:.0f} samples, {over:.0f} over 1 s, "
              f"loop_lag_max_us {srv.counters()['loop_lag_max_us']}")
        self.assertEqual(over, 0)
        self.assertEqual(self.stall_lines(srv), [])

        open(trigger, "w").close()
        # No SIGUSR1 and no scrape until the stalled call returns: both would be late.
        wait_until(lambda: not os.path.exists(trigger), STALL_MS / 1000 + 10,
                   "the stalled census tick to return")
        lines = wait_until(lambda: self.stall_lines(srv), 10, "the stall warning")
        print(f"warning: {lines}")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("census tick", lines[0])
        c = srv.counters()
        print(f"loop_lag_max_us {c['loop_lag_max_us']}")
        self.assertGreaterEqual(c["loop_lag_max_us"], (STALL_MS - 300) * 1000)
        over, count = lag_over_1s(scrape(mport))
        print(f"after the stall: {count:.0f} samples, {over:.0f} over 1 s")
        self.assertEqual(over, 1)

    def test_sigstop_names_no_callback(self):
        srv = self.start_server()
        wait_until(lambda: srv.counters()["loop_lag_max_us"] >= 0, 10, "a counters line")
        srv.signal(signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            time.sleep(1.5)  # the stimulus under test: a stop longer than the 1 s threshold
        finally:
            srv.signal(signal.SIGCONT)
        stopped = time.monotonic() - t0
        lines = wait_until(lambda: self.stall_lines(srv), 10, "the stall warning")
        c = srv.counters()
        print(f"stopped {stopped:.2f}s; loop_lag_max_us {c['loop_lag_max_us']}; {lines}")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("none seen: the process was stopped or starved", lines[0])
        self.assertGreaterEqual(c["loop_lag_max_us"], 1_000_000)
