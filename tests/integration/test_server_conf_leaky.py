# Goal of this test: `-c conf/server.conf --mode leaky` is really leaky (close_on_eof=no in --check-config, closed clients leave CLOSE-WAIT sockets), and a key that turns a mechanism against the mode is reported in one warning line by --check-config and at startup.
from harness import REPO, ServerTest, recv_exactly, run_cli, server_bin, ss_count, wait_until

CONF = REPO / "conf" / "server.conf"
N = 20
MIXED = "restore correct-mode mechanisms"


def effective(p):
    return dict(l.split(" = ", 1) for l in p.stdout.splitlines() if " = " in l
                and not l.startswith("#"))


def warnings(p):
    return [l for l in p.stderr.splitlines() if " warn: " in l]


class ShippedConfLeakyTest(ServerTest):
    def setUp(self):
        if not server_bin().exists():
            self.fail(f"server binary {server_bin()} does not exist")

    def test_check_config_is_leaky(self):
        p = run_cli(["-c", str(CONF), "--mode", "leaky", "--listen", "127.0.0.1:0",
                     "--check-config"])
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg = effective(p)
        got = {k: cfg.get(k) for k in ("mode", "close_on_eof", "early_close", "keepalive",
                                       "reset_dead_peers", "heartbeat_timeout",
                                       "user_timeout", "fin_timeout")}
        print(f"-c conf/server.conf --mode leaky: {got}")
        self.assertEqual(got, {"mode": "leaky", "close_on_eof": "no", "early_close": "no",
                               "keepalive": "no", "reset_dead_peers": "no",
                               "heartbeat_timeout": "0", "user_timeout": "0",
                               "fin_timeout": "0"})
        self.assertEqual([w for w in warnings(p) if "mode=" in w], [], p.stderr)

    def test_mixed_mode_one_warning_line(self):
        args = ["-c", str(CONF), "--mode", "leaky", "--set", "close_on_eof=yes",
                "--set", "keepalive=yes"]
        p = run_cli(args + ["--listen", "127.0.0.1:0", "--check-config"])
        self.assertEqual(p.returncode, 0, p.stderr)
        w = [l for l in warnings(p) if MIXED in l]
        print(f"--check-config: {w}")
        self.assertEqual(len(w), 1, p.stderr)
        self.assertIn("close_on_eof=yes", w[0])
        self.assertIn("keepalive=yes", w[0])
        srv = self.start_server(config=CONF, mode="leaky",
                                sets={"close_on_eof": "yes", "keepalive": "yes"})
        w = srv.log_lines(level="warn", contains=MIXED)
        print(f"startup: {w}")
        self.assertEqual(len(w), 1, srv.log_tail())

    def test_run_leaves_close_wait(self):
        self.require_ss()
        srv = self.start_server(config=CONF, mode="leaky")
        socks = [self.connect(srv.port) for _ in range(N)]
        for i, s in enumerate(socks):
            s.sendall(b"%d\n" % i)
            self.assertEqual(recv_exactly(s, len(b"%d\n" % i)), b"%d\n" % i)
        for s in socks:
            s.close()
        counts = []
        wait_until(lambda: counts.append(ss_count(srv.port, "close-wait")) or counts[-1] >= N,
                   15, f"{N} CLOSE-WAIT sockets on the port of -c conf/server.conf --mode leaky")
        print(f"-c conf/server.conf --mode leaky: {counts[-1]} CLOSE-WAIT after {N} closes")
        self.assertEqual(counts[-1], N)
