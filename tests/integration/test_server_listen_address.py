# Goal of this test: listen and metrics_listen are checked in the config pass (HOST:PORT, [v6]:PORT, port 0-65535, resolvable host) with their place in the message and exit 2, and ":PORT" means 127.0.0.1:PORT for listen as it does for metrics_listen.
import os
import socket
import tempfile

from harness import ServerTest, run_cli, server_bin


class ListenAddressTest(ServerTest):
    def setUp(self):
        if not server_bin().exists():
            self.fail(f"server binary {server_bin()} does not exist")

    def assert_rejected(self, args, place):
        # A host name is resolved: one no resolver knows must not send a DNS query off
        # this machine, so those cases run in a network namespace of their own (nothing
        # routable there: the query fails at once), as root only.
        prefix = ()
        if any(".invalid" in a for a in args):
            if os.geteuid() != 0:
                self.skipTest("needs root (unshare --net) to resolve a name without DNS")
            prefix = ("unshare", "--net")
        for extra in (["--check-config"], []):  # the config pass, then a real start
            p = run_cli(args + extra, prefix=prefix)
            print(f"{args + extra}: exit {p.returncode}: {p.stderr.strip()}")
            self.assertFalse(p.started, f"{args}: the server started")
            self.assertEqual(p.returncode, 2, f"{args}: {p.stderr!r}")
            self.assertIn(place, p.stderr, f"{args}: message without its place")

    def test_bad_listen_rejected_with_its_place(self):
        for value in ("foo", "127.0.0.1:99999", "127.0.0.1:http", "127.0.0.1:-1",
                      "nonexistent.invalid:7000", "[::1:7000", "127.0.0.1:"):
            with self.subTest(value=value):
                self.assert_rejected(["--listen", value], "--listen: listen: ")
                self.assert_rejected(["--set", "workers=1", "--set", f"listen={value}"],
                                     "--set:2: listen: ")

    def test_bad_listen_in_file_names_file_and_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# a comment\nlisten = localhost:70000\n")
        self.addCleanup(os.unlink, f.name)
        self.assert_rejected(["-c", f.name], f"{f.name}:2: listen: ")

    def test_bad_metrics_listen_names_its_place(self):
        for value in ("foo", "127.0.0.1:99999", "nonexistent.invalid:9100"):
            with self.subTest(value=value):
                self.assert_rejected(["--listen", "127.0.0.1:0", "--set",
                                      f"metrics_listen={value}"], "--set:1: metrics_listen: ")

    def test_valid_forms_accepted(self):
        for value, shown in ((":0", "127.0.0.1:0"), ("127.0.0.1:0", "127.0.0.1:0"),
                             ("localhost:0", "localhost:0"), ("[::1]:0", "[::1]:0"),
                             ("0.0.0.0:0", "0.0.0.0:0"), ("[::]:0", "[::]:0")):
            with self.subTest(value=value):
                p = run_cli(["--listen", value, "--check-config"])
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn(f"\nlisten = {shown}\n", "\n" + p.stdout, p.stdout)

    def test_port_only_means_loopback(self):
        # Bound to 127.0.0.1, 127.0.0.2 (also loopback) is refused; bound to every
        # address it would be accepted.
        srv = self.start_server(listen=":0")
        socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
        with self.assertRaises(ConnectionRefusedError, msg="':P' listens on every address"):
            socket.create_connection(("127.0.0.2", srv.port), timeout=5).close()
        lines = srv.log_lines(contains="listening on 127.0.0.1:")
        print(f"listen=:0 -> {lines}")
        self.assertTrue(lines, srv.log_tail())
