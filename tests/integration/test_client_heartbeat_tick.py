# Goal of this test: with --heartbeat-tick the idle scenario's heartbeats leave on the ticks of CLOCK_MONOTONIC (every process on the same ones), each --heartbeat to --heartbeat + tick after the connection's previous message; a tick longer than half the heartbeat is a usage error.
import time
import unittest

from test_client_helpers import ThreadEchoServer, run_client

TICK = 0.250  # s
HEARTBEAT = 0.600  # s
CONNS = 12


class StampingEchoServer(ThreadEchoServer):
    """Echoes every connection and records when (time.monotonic(): CLOCK_MONOTONIC, the
    client's clock) each message arrived, per connection."""

    def __init__(self, test):
        self.arrivals = []  # one list of times per connection
        super().__init__(test)

    def on_accept(self):
        times = []
        self.arrivals.append(times)
        return times

    def on_message(self, state, data):
        state.append(time.monotonic())


class HeartbeatTickTest(unittest.TestCase):
    def run_idle(self, srv, extra):
        return run_client(self, ["--server", f"127.0.0.1:{srv.port}", "--connections", CONNS,
                                 "--procs", 2, "--rate", 20, "--scenario", "idle",
                                 "--heartbeat",
                                 f"{int(HEARTBEAT * 1000)}ms", "--hold", "2500ms", "--json",
                                 "--quiet"] + extra)

    @staticmethod
    def beats(srv):
        """(arrival time, gap to the connection's previous message) of every heartbeat
        (the first message of a connection is not one)."""
        out = []
        for times in srv.arrivals:
            out += [(b, b - a) for a, b in zip(times, times[1:])]
        return out

    def test_heartbeats_leave_on_the_ticks(self):
        """The connections open over 0.6 s (--rate 20), so without the tick their
        heartbeats would spread over every phase of it."""
        srv = StampingEchoServer(self)
        run = self.run_idle(srv, ["--heartbeat-tick", f"{int(TICK * 1000)}ms"])
        self.assertEqual(run.rc, 0, str(run))
        beats = self.beats(srv)
        self.assertGreaterEqual(len(beats), CONNS * 2, f"too few heartbeats: {len(beats)}")
        phases = sorted((t % TICK) * 1000 for t, _ in beats)
        gaps = sorted(g * 1000 for _, g in beats)
        print(f"{len(beats)} heartbeats: arrival after its tick {phases[0]:.1f} .. "
              f"{phases[-1]:.1f} ms; gap to the previous message {gaps[0]:.0f} .. "
              f"{gaps[-1]:.0f} ms (heartbeat {HEARTBEAT * 1000:.0f}, tick {TICK * 1000:.0f})")
        # Each leaves at a tick and crosses loopback at once; a loaded machine may add
        # some milliseconds, never a quarter of the tick to most of them.
        on_tick = [p for p in phases if p < TICK * 1000 / 4]
        self.assertGreaterEqual(len(on_tick), len(phases) * 0.9, phases)
        self.assertGreaterEqual(gaps[0], HEARTBEAT * 1000 - 5)
        self.assertLessEqual(gaps[len(gaps) // 2], (HEARTBEAT + TICK) * 1000 + 50)

    def test_tick_longer_than_half_the_heartbeat_is_a_usage_error(self):
        run = run_client(self, ["--server", "127.0.0.1:9", "--scenario", "idle",
                                "--heartbeat", "1s", "--heartbeat-tick", "600ms"])
        self.assertEqual(run.rc, 2, str(run))
        self.assertIn("--heartbeat-tick", run.err)


if __name__ == "__main__":
    unittest.main()
