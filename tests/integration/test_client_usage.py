# Goal of this test: bad load-client flags print the reason and one line pointing at the usage on stderr, nothing on stdout, and exit 2 before connecting anywhere; --help works anywhere on the line; a --sources address that is not this host's is refused up front.
import unittest

from test_client_helpers import run_client

BAD = [
    [],
    ["--connections", "10"],
    ["--server", "127.0.0.1"],
    ["--server", "127.0.0.1:80", "--connections", "0"],
    ["--server", "127.0.0.1:80", "--connections", "ten"],
    ["--server", "127.0.0.1:80", "--duration", "10"],
    ["--server", "127.0.0.1:80", "--size", "-5"],
    ["--server", "127.0.0.1:80", "--scenario", "nope"],
    ["--server", "127.0.0.1:80", "--scenario", "mixed"],
    ["--server", "127.0.0.1:80", "--mix", "echo=x"],
    ["--server", "127.0.0.1:80", "--frobnicate"],
    ["--server", "127.0.0.1:80", "--expect", "nonsense=1"],
    ["--server", "127.0.0.1:80", "--expect", "server.close_wait"],
    ["--server", "127.0.0.1:80", "--sources", "127.0.0.5-127.0.0.1"],
    ["--server", "127.0.0.1:80", "--keepalive", "1s"],
    ["--server", "127.0.0.1:80", "--keepalive", "1s,,3"],  # an empty interval
    ["--server", "127.0.0.1:80", "--json=yes"],  # a switch takes no value
    ["--server", "127.0.0.1:80", "--mix", "echo=1,crash=1"],  # crash needs its own source
    ["--server", "127.0.0.1:80", "--crash-source", "127.0.0.9"],  # without crash
    ["states"],
    ["states", "--port", "99999"],
    ["merge"],
]


class ClientUsageTest(unittest.TestCase):
    def test_bad_flags(self):
        for args in BAD:
            with self.subTest(args=args):
                run = run_client(self, args, timeout=20)
                print(f"{' '.join(args) or '(none)'} -> {run.rc}: "
                      f"{run.err.strip().splitlines()[0] if run.err.strip() else ''}")
                self.assertEqual(run.rc, 2, str(run))
                self.assertEqual(run.out, "", str(run))
                self.assertIn("usage:", run.err, str(run))

    def test_too_many_for_one_process(self):
        # 30000 connections cannot fit one process's 20000 fds: it says so and how to fix.
        run = run_client(self, ["--server", "127.0.0.1:80", "--connections", 30000,
                                "--sources", "127.0.0.2-127.0.0.3"], timeout=20)
        print(run.err.strip())
        self.assertEqual(run.rc, 2, str(run))
        self.assertIn("--procs", run.err)

    def test_ports_do_not_fit(self):
        # More concurrent connections than one source address has ephemeral ports.
        run = run_client(self, ["--server", "127.0.0.1:80", "--connections", 40000,
                                "--procs", 4], timeout=20)
        print(run.err.strip())
        self.assertEqual(run.rc, 2, str(run))
        self.assertIn("--sources", run.err)

    def test_error_is_short(self):
        # The reason and one line saying where the usage is: not 35 lines of usage that
        # scroll the reason away.
        run = run_client(self, ["--server", "127.0.0.1:80", "--frobnicate"], timeout=20)
        lines = run.err.strip().splitlines()
        print("usage error:", lines)
        self.assertEqual(run.rc, 2, str(run))
        self.assertEqual(len(lines), 2, str(run))
        self.assertIn("unknown option --frobnicate", lines[0])
        self.assertIn("--help", lines[1])

    def test_help_anywhere(self):
        # Help asked for is the output: stdout, exit 0, every flag with its default and
        # one line per scenario.
        run = run_client(self, ["--server", "127.0.0.1:80", "--connections", "5", "--help"],
                         timeout=20)
        self.assertEqual(run.rc, 0, str(run))
        self.assertEqual(run.err, "", str(run))
        self.assertTrue(run.out.startswith("usage:"), str(run))
        self.assertIn("expect keys", run.out)
        lines = run.out.splitlines()
        for flag, default in (("--connections N", "10"), ("--reconnect-delay T", "100ms"),
                              ("--duration T", "0"), ("--size B", "64"), ("--rate R/s", "0")):
            line = next((x for x in lines if x.strip().startswith(flag + " ")), None)
            self.assertIsNotNone(line, flag)
            self.assertTrue(line.endswith("; default " + default), line)
        for scen in ("echo", "close", "half-close", "reset", "idle", "silent", "crash",
                     "vanish", "mixed"):
            self.assertEqual(sum(1 for x in lines if x.startswith(f"  {scen} ")), 1, scen)

    def test_foreign_source_address(self):
        # A source that is not an address of this host would fail every connection with
        # EADDRNOTAVAIL, reported as ports running out: refused before connecting.
        run = run_client(self, ["--server", "127.0.0.1:80", "--sources", "192.0.2.7"],
                         timeout=20)
        print("foreign source:", run.err.strip())
        self.assertEqual(run.rc, 2, str(run))
        self.assertEqual(run.out, "", str(run))
        self.assertIn("cannot bind 192.0.2.7", run.err)
        self.assertIn("not an address of this host", run.err)
