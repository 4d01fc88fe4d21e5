# Goal of this test: a server whose census socket (NETLINK_SOCK_DIAG) cannot be opened still runs its census tick: fd accounting goes on, and with workers every worker still publishes its figures to /metrics.
import os

from harness import REPO, ServerTest, recv_exactly, wait_until
from promtext import start_with_metrics, value, wait_metrics

SHIM = REPO / "build" / "shim" / "nocensus.so"


def without_census(test, sets):
    """Starts a server with metrics under the nocensus shim (socket() of NETLINK_SOCK_DIAG
    fails with EACCES)."""
    if not SHIM.exists():
        test.fail(f"{SHIM} is not built (make {SHIM.relative_to(REPO)})")
    asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    # The shim is not sanitized: the ASan runtime would refuse not to come first.
    env = ["env", f"LD_PRELOAD={SHIM}", f"ASAN_OPTIONS={asan}:verify_asan_link_order=0"]
    return start_with_metrics(test, sets=dict({"census_interval": "100ms",
                                               "heartbeat_timeout": "0"}, **sets), prefix=env)


class NoCensusTest(ServerTest):
    def echo_all(self, port, n):
        socks = [self.connect(port) for _ in range(n)]
        for s in socks:
            s.sendall(b"x")
        for s in socks:
            self.assertEqual(recv_exactly(s, 1), b"x")
        return socks

    def test_fd_accounting_goes_on(self):
        srv, mport = without_census(self, {})
        self.echo_all(srv.port, 5)
        fams = wait_metrics(mport, lambda f: "teardown_fds_connections" in f
                            and value(f, "teardown_fds_connections") == 5, 10,
                            "fd accounting of 5 connections without a census")
        print(f"no census: fds open {value(fams, 'teardown_fds_open')}, connections "
              f"{value(fams, 'teardown_fds_connections')}, unaccounted "
              f"{value(fams, 'teardown_fds_unaccounted')}")
        self.assertEqual(value(fams, "teardown_fds_unaccounted"), 0)
        self.assertNotIn("teardown_port_sockets", fams, "a census without its socket?")
        self.assertNotIn("teardown_close_wait_overdue_sockets", fams,
                         "CLOSE_WAIT figures without a census")
        self.assertTrue(srv.log_lines(level="error", contains="NETLINK_SOCK_DIAG"),
                        "the shim did not take effect")

    def test_every_worker_publishes(self):
        srv, mport = without_census(self, {"workers": "2"})
        n = 40
        socks = self.echo_all(srv.port, n)
        fams = wait_metrics(mport, lambda f: value(f, "teardown_received_bytes_total") == n,
                            10, f"the {n} bytes of both workers")
        print(f"no census, 2 workers: {value(fams, 'teardown_workers')} summed, bytes in "
              f"{value(fams, 'teardown_received_bytes_total')}, open "
              f"{value(fams, 'teardown_connections_open')}")
        self.assertEqual(value(fams, "teardown_workers"), 2)
        self.assertEqual(value(fams, "teardown_connections_open"), n)
        for s in socks:
            s.close()
        # Only worker 0 opens a census socket (the others read the CLOSE_WAIT list it
        # shares: server/cwboard.h), so one failure is reported.
        wait_until(lambda: len(srv.log_lines(level="error", contains="NETLINK_SOCK_DIAG")) == 1,
                   5, "worker 0 to report the census socket's failure")
        self.assertNotIn("teardown_close_wait_overdue_sockets", fams,
                         "CLOSE_WAIT figures without a census")
