# Goal of this test: the fd accounting lists /proc/self/fd only when the number of open fds differs from the connections plus the server's own, so a tick with nothing leaked reads no directory, and a leaked fd is still found and named.
import os
import tempfile

from harness import ServerTest, recv_exactly, shim_env, wait_until
from promtext import start_with_metrics, value, wait_metrics


class FdCountTest(ServerTest):
    def trigger(self):
        d = tempfile.mkdtemp(prefix="teardown-fdcount-")
        path = os.path.join(d, "on")
        self.addCleanup(lambda: (os.path.exists(path) and os.unlink(path), os.rmdir(d)))
        return path

    def open_echoed(self, port, n):
        socks = [self.connect(port) for _ in range(n)]
        for s in socks:
            s.sendall(b"x")
        for s in socks:
            self.assertEqual(recv_exactly(s, 1), b"x")
        return socks

    def test_no_listing_while_every_fd_is_accounted_for(self):
        self.no_listing({})

    def test_no_listing_with_workers(self):
        # A worker closes some of the fds it had at its start (the parent's ready pipe):
        # the number it expects comes from its last listing, not from its start.
        self.no_listing({"workers": "2"})

    def no_listing(self, sets):
        # Once the trigger exists every listing of /proc/self/fd fails (EIO): the
        # accounting stays valid only if it does not list.
        trigger = self.trigger()
        srv, mport = start_with_metrics(self, sets=dict({"census_interval": "100ms"}, **sets),
                                        env=shim_env(f"call=getdents64,errno=5,trigger={trigger}"))
        # A few ticks first: the listing after a worker's start finds the fds it has
        # closed since (the parent's ready pipe) and sets the number expected.
        wait_metrics(mport, lambda f: value(f, "teardown_fds_unaccounted") == 0
                     and value(f, "teardown_censuses_total") >= 5, 10, "a few ticks")
        open(trigger, "w").close()
        n = 25
        socks = self.open_echoed(srv.port, n)
        fams = wait_metrics(mport, lambda f: value(f, "teardown_fds_connections") == n, 10,
                            f"{n} connection fds counted")
        for s in socks[:10]:
            s.close()
        fams = wait_metrics(mport, lambda f: value(f, "teardown_fds_connections") == n - 10,
                            10, f"{n - 10} connection fds counted after 10 closes")
        print(f"fds: open {value(fams, 'teardown_fds_open')}, connections "
              f"{value(fams, 'teardown_fds_connections')}, unaccounted "
              f"{value(fams, 'teardown_fds_unaccounted')}")
        self.assertEqual(value(fams, "teardown_fds_unaccounted"), 0)
        self.assertFalse(srv.log_lines(level="warn", contains="fd accounting"),
                         "the accounting listed /proc/self/fd")

    def test_a_leaked_fd_is_found_and_named(self):
        # The shim fails the next close() after the trigger appears, leaving that fd open:
        # the server's connection is gone, its fd is not.
        trigger = self.trigger()
        srv, mport = start_with_metrics(
            self, sets={"census_interval": "100ms"},
            env=shim_env(f"call=close,sleep_ms=1,errno=5,trigger={trigger}"))
        n = 5
        socks = self.open_echoed(srv.port, n)
        wait_metrics(mport, lambda f: value(f, "teardown_fds_connections") == n
                     and value(f, "teardown_fds_unaccounted") == 0, 10, f"{n} connection fds")
        open(trigger, "w").close()
        socks[0].close()  # the server's close() of its end fails: a leak
        wait_until(lambda: not os.path.exists(trigger), 10, "the failed close()")
        fams = wait_metrics(mport, lambda f: value(f, "teardown_fds_unaccounted") == 1, 10,
                            "the leaked fd to be unaccounted")
        warn = wait_until(lambda: srv.log_lines(level="warn", contains="fd accounting"), 10,
                          "the warning naming the fd")
        print(f"fds: connections {value(fams, 'teardown_fds_connections')}, unaccounted "
              f"{value(fams, 'teardown_fds_unaccounted')}; {warn[0]}")
        self.assertEqual(value(fams, "teardown_fds_connections"), n - 1)
        self.assertIn("socket:[", warn[0][3])
