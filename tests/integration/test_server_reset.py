# Goal of this test: a client's RST (SO_LINGER 0 close) closes the connection with reason reset, logged once at debug and not at all at info.
import re

from harness import ServerTest, pattern, reset_close

N = 20


class ResetTest(ServerTest):
    def _resets(self, srv, with_data_in_flight):
        ports = []
        for i in range(N):
            s = self.connect(srv.port)
            self.echo_once(s)
            ports.append(s.getsockname()[1])
            if with_data_in_flight:
                s.sendall(pattern(256 << 10, i))  # echo still being written when the RST lands
            reset_close(s)
        return ports

    def test_reset_at_debug_one_line_each(self):
        srv = self.start_server(sets={"log_level": "debug"})
        ports = self._resets(srv, False) + self._resets(srv, True)
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "every connection closed")
        print(f"counters after {2 * N} resets: closed {c['closed']}")
        self.assertEqual(c["closed"]["reset"], 2 * N, f"{c}")
        self.assertEqual(c["accepted"], 2 * N)
        lines = srv.close_lines()
        self.assertEqual(len(lines), 2 * N,
                         f"debug close lines for {2 * N} resets; other lines: "
                         f"{[l for l in srv.log().splitlines() if ' close peer=' not in l]}")
        for p in ports:
            mine = [l for l in srv.log_lines() if re.search(rf":{p}(?!\d)", l[3])]
            closes = srv.close_line_for(p)
            self.assertEqual(len(closes), 1, f"close lines for client port {p}: {mine}")
            self.assertEqual(closes[0].get("reason"), "reset", f"{closes[0]}")
            self.assertEqual(closes[0].get("fin_to_close_us"), "-1", f"{closes[0]}")
            noisy = [l for l in mine if l[2] in ("error", "warn", "info")]
            self.assertEqual(noisy, [], f"lines above debug about port {p}")
            self.assertLessEqual(len(mine), 2, f"log lines about port {p}: {mine}")

    def test_reset_silent_at_info(self):
        srv = self.start_server(sets={"log_level": "info"})
        before = srv.log().splitlines()
        self._resets(srv, False)
        self._resets(srv, True)
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "every connection closed")
        self.assertEqual(c["closed"]["reset"], 2 * N, f"{c}")
        after = srv.log().splitlines()[len(before):]
        extra = [l for l in after if " counters " not in l]
        print(f"log lines at info for {2 * N} resets (besides counters): {len(extra)}")
        self.assertEqual(extra, [], "lines logged at info for peer resets")
