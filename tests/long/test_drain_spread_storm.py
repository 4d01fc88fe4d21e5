# Goal of this test: the reconnect storm of a drain, measured: 2,000 idle load-client connections with --reconnect, drained to a successor on the same port, with drain_spread=0 (at least 80 % of the FINs within one second) and drain_spread=4s (no 100 ms bin above 1.5 x N/spread per second), each with 0 mismatches, 0 resets before shutdown_timeout, every connection reconnected, refusals counted apart.
import threading

from harness import Server, ServerTest, wait_until
from test_client_helpers import run_client, server_addr

N = 2000
SPREAD_S = 4.0
BIN_S = 0.1
RUN_S = 20


def fin_times(srv):
    """When each connection's FIN went out, from the debug close lines (the line's time
    less the wait for the peer's EOF after our FIN)."""
    out = []
    for f in srv.close_lines():
        if int(f["shut_age_ms"]) >= 0:
            out.append(f["time"] - (int(f["age_ms"]) - int(f["shut_age_ms"])) / 1000.0)
    return sorted(out)


def bins_of(times, bin_s=BIN_S):
    counts = [0] * (int((times[-1] - times[0]) / bin_s) + 1)
    for t in times:
        counts[int((t - times[0]) / bin_s)] += 1
    return counts


class DrainSpreadStormTest(ServerTest):
    def storm(self, spread_s):
        sets = {"drain_spread": f"{int(spread_s * 1000)}ms", "drain_grace": "2s",
                "shutdown_timeout": "15s", "log_level": "debug", "log_buffer": "16m",
                "heartbeat_timeout": "0"}
        old = Server(self, sets=sets).start()
        out = {}

        def client():
            out["run"] = run_client(self, [
                "--server", server_addr(old), "--scenario", "idle", "--connections", N,
                "--duration", f"{RUN_S}s", "--heartbeat", "1s", "--reconnect",
                "--reconnect-delay", "200ms", "--max-connecting", 256, "--settle", "0",
                "--json"], timeout=RUN_S + 60)
        t = threading.Thread(target=client, daemon=True)
        t.start()
        old.wait_counters(lambda c: c["open"] == N, 60, f"{N} idle connections open")
        old.signal(__import__("signal").SIGTERM)
        # the successor takes the port once the old listener is closed (SO_REUSEADDR binds
        # beside the old server's draining connections)
        wait_until(lambda: old.log_lines(contains="draining "), 20, "the drain's start")
        new = Server(self, listen=f"127.0.0.1:{old.port}", sets={"heartbeat_timeout": "0"})
        new.start()
        self.assertEqual(old.wait_exit(30), 0)
        t.join(RUN_S + 90)
        self.assertFalse(t.is_alive(), "load-client did not finish")
        run = out["run"]
        c, fails = run.counts(), run.doc["failures"]
        oc = old.exit_counters()
        fins = fin_times(old)
        counts = bins_of(fins)
        peak = max(counts) / BIN_S
        in_1s = max(sum(counts[i:i + int(1 / BIN_S)]) for i in range(len(counts)))
        print(f"N={N} drain_spread={spread_s}s: FINs over {fins[-1] - fins[0]:.2f}s, peak "
              f"{peak:.0f}/s on {BIN_S * 1000:.0f} ms bins (N/spread "
              f"{N / spread_s if spread_s else float('inf'):.0f}/s), most in one second "
              f"{in_1s} ({in_1s / N:.0%}); client: closed_by_server {c['closed_by_server']}, "
              f"reconnects {c['reconnects']}, mismatches {c['echo_mismatch']}, interrupted "
              f"{c['interrupted']}, failures {fails}; old server closed {oc['closed']}; the "
              f"successor accepted {new.counters()['accepted']}")
        self.assertEqual(len(fins), N)
        self.assertEqual(oc["closed"]["shutdown"], N, oc)
        self.assertEqual(oc["closed"]["reset"], 0, oc)
        self.assertEqual(old.log_lines(contains="shutdown_timeout: resetting"), [])
        self.assertEqual(oc["log_dropped"], 0, "every close line was written")
        self.assertEqual(c["echo_mismatch"], 0, str(run))
        self.assertGreaterEqual(c["closed_by_server"], N)
        self.assertGreaterEqual(c["reconnects"], N)
        self.assertGreaterEqual(new.counters()["accepted"], N)
        for phase, kinds in fails.items():  # refusals before the successor listened only
            for kind in kinds:
                self.assertEqual((phase, kind), ("connect", "ECONNREFUSED"), fails)
        return peak, in_1s

    def test_without_spread_the_storm(self):
        _, in_1s = self.storm(0)
        self.assertGreaterEqual(in_1s, 0.8 * N)

    def test_with_spread_a_flat_rate(self):
        peak, _ = self.storm(SPREAD_S)
        self.assertLessEqual(peak, 1.5 * N / SPREAD_S)
