# Goal of this test: --check-config exits 0 for a valid config (printing the effective config on stdout, loadable back with -c, and warnings such as user_timeout shorter than keepalive idle + interval * count on stderr) and 2 for an invalid one, without starting a server.
import os
import subprocess
import tempfile

from harness import REPO, ServerTest, run_cli, server_bin


def check(args):
    p = run_cli(["--check-config", "--listen", "127.0.0.1:0"] + args)
    if p.sanitizer:
        raise AssertionError(f"{args}: sanitizer report:\n{p.stderr}")
    return p


def warnings(p):
    return [l for l in p.stderr.splitlines() if " warn: " in l]


class CheckConfigTest(ServerTest):
    def setUp(self):
        if not server_bin().exists():
            self.fail(f"server binary {server_bin()} does not exist")

    def test_defaults_valid_without_warning(self):
        for mode in ("correct", "leaky"):
            with self.subTest(mode=mode):
                p = check(["--mode", mode])
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertFalse(p.started, "--check-config started listening")
                self.assertEqual([w for w in warnings(p) if "user_timeout" in w], [], p.stderr)

    def test_shipped_config_valid(self):
        conf = REPO / "conf" / "server.conf"
        if not conf.exists():
            self.skipTest("conf/server.conf does not exist yet")
        p = check(["-c", str(conf)])
        print(f"conf/server.conf: exit {p.returncode}, warnings {warnings(p)}")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_user_timeout_shorter_than_keepalive_warns(self):
        p = check(["--set", "keepalive=yes", "--set", "keepalive_idle=30s",
                   "--set", "keepalive_interval=10s", "--set", "keepalive_count=5",
                   "--set", "user_timeout=60s"])  # 60 s < 30 + 10 * 5 = 80 s
        w = warnings(p)
        print(f"exit {p.returncode}, warnings: {w}")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(any("user_timeout" in l for l in w),
                        f"no user_timeout warning: {p.stderr!r}")

    def test_user_timeout_longer_no_warning(self):
        p = check(["--set", "keepalive=yes", "--set", "keepalive_idle=30s",
                   "--set", "keepalive_interval=10s", "--set", "keepalive_count=5",
                   "--set", "user_timeout=90s"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([l for l in warnings(p) if "user_timeout" in l], [], p.stderr)

    def test_invalid_exits_2(self):
        for args in (["--set", "workers=abc"], ["--set", "nope=1"],
                     ["--set", "heartbeat_timeout=3"], ["-c", "/nonexistent.conf"]):
            with self.subTest(args=args):
                p = check(args)
                self.assertEqual(p.returncode, 2, f"{args}: {p.stderr!r}")
                self.assertTrue(p.stderr.strip(), f"{args}: no message")

    def test_invalid_file_exits_2(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("fin_timeout = 10 parsecs\n")
        self.addCleanup(os.unlink, f.name)
        p = check(["-c", f.name])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{f.name}:1: fin_timeout:", p.stderr)

    def test_output_on_stdout_loads_back(self):
        # `--check-config > f` must capture the config, and `-c f` must load it back to the
        # same effective config (unset keys such as metrics_listen appear as comments).
        for args in ([], ["--mode", "leaky", "--set", "keepalive=yes"],
                     ["--set", "metrics_listen=127.0.0.1:0", "--set", "workers=3"]):
            with self.subTest(args=args):
                first = check(args)
                self.assertEqual(first.returncode, 0, first.stderr)
                print(f"{args}: {len(first.stdout.splitlines())} lines on stdout")
                self.assertIn("\nmode = ", "\n" + first.stdout, first.stderr)
                self.assertNotIn(" = ", "".join(l for l in first.stderr.splitlines()
                                               if " warn: " not in l))
                with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
                    f.write(first.stdout)
                self.addCleanup(os.unlink, f.name)
                again = run_cli(["--check-config", "-c", f.name])
                self.assertEqual(again.returncode, 0, again.stderr)
                self.assertEqual(again.stdout.replace("127.0.0.1:0", "X"),
                                 first.stdout.replace("127.0.0.1:0", "X"))

    def test_output_that_cannot_be_written_exits_1(self):
        # The printed config is meant to be saved as a file: a failed write is a failure,
        # not exit 0 with a truncated file.
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full to make the write fail")
        with open("/dev/full", "w") as full:
            p = subprocess.run([str(server_bin()), "--check-config"], stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=30)
        print(f"--check-config > /dev/full: exit {p.returncode}: {p.stderr.strip()}")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("writing the config", p.stderr)
