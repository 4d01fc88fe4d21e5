# Goal of this test: bad flags, unknown keys, bad values, a port in use and an unresolvable --listen each exit with status 2 and one clear line on stderr, leaving nothing started.
import os
import socket
import tempfile

from harness import ServerTest, run_cli, server_bin


def run(args, prefix=()):
    p = run_cli(args, prefix=prefix)
    if p.sanitizer:
        raise AssertionError(f"{args}: sanitizer report:\n{p.stderr}")
    return p


class CliErrorsTest(ServerTest):
    def assert_usage_error(self, args, *needles, prefix=()):
        if not server_bin().exists():
            self.fail(f"server binary {server_bin()} does not exist")
        # --listen is a shorthand for --set listen=: it goes last so that it does not
        # shift the positions of the --set arguments under test.
        p = run(args + ["--listen", "127.0.0.1:0"] if "--listen" not in args else args,
                prefix=prefix)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        print(f"{' '.join(args)!r}: exit {p.returncode}: {lines[:3]}")
        self.assertEqual(p.returncode, 2, f"{args}: exit status; stderr: {p.stderr!r}")
        self.assertEqual(len(lines), 1, f"{args}: want one line on stderr, got {lines}")
        for n in needles:
            self.assertIn(n.lower(), lines[0].lower(), f"{args}: the line should name {n!r}")
        self.assertFalse(p.started, f"{args}: the server started listening (port file written)")
        self.assertEqual(p.stdout, "", f"{args}: output on stdout")

    def test_bad_flag(self):
        self.assert_usage_error(["--no-such-flag"], "--no-such-flag")

    def test_flag_missing_argument(self):
        p = run(["--listen"])
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_bad_mode(self):
        self.assert_usage_error(["--mode", "sloppy"], "mode")

    def test_unknown_key(self):
        self.assert_usage_error(["--set", "no_such_key=1"], "--set:1: no_such_key:")

    def test_set_without_equals(self):
        self.assert_usage_error(["--set", "workers"], "--set:1")

    def test_bad_values(self):
        cases = [
            ("heartbeat_timeout=5", "heartbeat_timeout"),      # no unit
            ("heartbeat_timeout=5 s", "heartbeat_timeout"),    # junk
            ("keepalive_idle=1500ms", "keepalive_idle"),       # not whole seconds
            ("keepalive=maybe", "keepalive"),
            ("workers=abc", "workers"),
            ("workers=0", "workers"),                         # out of range
            ("workers=-1", "workers"),
            ("backlog=99999999999999999999999", "backlog"),   # overflow
            ("output_high_watermark=12q", "output_high_watermark"),
            ("log_level=verbose", "log_level"),
            ("write_timeout=", "write_timeout"),              # empty
        ]
        for kv, key in cases:
            with self.subTest(kv=kv):
                # position 2 among the --set arguments
                self.assert_usage_error(["--set", "log_level=info", "--set", kv],
                                        f"--set:2: {key}:")

    def test_bad_value_in_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# test\nlog_level = info\nworkers = lots\n")
        self.addCleanup(os.unlink, f.name)
        self.assert_usage_error(["-c", f.name], f"{f.name}:3: workers:")

    def test_unknown_key_in_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("bogus_key = 1\n")
        self.addCleanup(os.unlink, f.name)
        self.assert_usage_error(["-c", f.name], f"{f.name}:1: bogus_key:")

    def test_missing_config_file(self):
        self.assert_usage_error(["-c", "/nonexistent/teardown.conf"], "/nonexistent/teardown.conf")

    def test_port_in_use(self):
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        self.assert_usage_error(["--listen", f"127.0.0.1:{port}"], "in use")
        busy.settimeout(5)  # the other owner of the port is untouched
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.close()

    def test_second_server_on_same_port(self):
        srv = self.start_server()
        self.assert_usage_error(["--listen", f"127.0.0.1:{srv.port}"], "in use")
        s = self.connect(srv.port)
        self.echo_once(s)  # the first server still owns the port

    def test_unresolvable_listen(self):
        # In a network namespace of its own: the resolver's query fails there at once
        # instead of leaving this machine for its DNS server.
        if os.geteuid() != 0:
            self.skipTest("needs root (unshare --net) to resolve a name without DNS")
        self.assert_usage_error(["--listen", "no-such-host.invalid:7000"], "no-such-host.invalid",
                                prefix=("unshare", "--net"))

    def test_bad_listen_syntax(self):
        for listen in ("127.0.0.1", "127.0.0.1:70000", "127.0.0.1:port", "[::1:80"):
            with self.subTest(listen=listen):
                self.assert_usage_error(["--listen", listen])

    def test_help(self):
        p = run(["--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--listen", p.stdout + p.stderr)
