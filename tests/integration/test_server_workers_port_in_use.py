# Goal of this test: a second server on a port already in use exits 2 with an "Address already in use" line even when both use workers > 1 (SO_REUSEPORT), instead of silently sharing the first one's connections.
from harness import ServerTest, run_cli, server_bin


class WorkersPortInUseTest(ServerTest):
    def setUp(self):
        if not server_bin().exists():
            self.fail(f"server binary {server_bin()} does not exist")

    def second_is_refused(self, first_workers, second_workers):
        first = self.start_server(sets={"workers": first_workers})
        p = run_cli(["--listen", f"127.0.0.1:{first.port}", "--set",
                     f"workers={second_workers}"], timeout=15)
        errors = [l for l in p.stderr.splitlines() if " error: " in l]
        print(f"workers={first_workers} on {first.port}, then workers={second_workers}: "
              f"exit {p.returncode}, {errors}")
        self.assertFalse(p.started, "the second server started listening on a used port")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertTrue(any(f"127.0.0.1:{first.port}" in l and "Address already in use" in l
                            for l in errors), p.stderr)
        self.assertTrue(first.alive(), "the first server died")

    def test_workers_2_then_workers_2(self):
        self.second_is_refused(2, 2)

    def test_workers_1_then_workers_2(self):
        self.second_is_refused(1, 2)

    def test_workers_2_then_workers_1(self):
        self.second_is_refused(2, 1)
