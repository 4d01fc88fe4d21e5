# Goal of this test: after every teardown scenario of a small run the server's open fds are exactly its connections plus its own fds (fd_unaccounted 0 in the counters line and in /metrics).
import signal
import socket

from harness import (ServerTest, fill_until_paused, recv_to_eof, reset_close,
                     send_until_blocked)
from promtext import start_with_metrics, value, wait_metrics

SHORT = {"census_interval": "100ms", "heartbeat_timeout": "1s", "write_timeout": "2s",
         "fin_timeout": "500ms"}


class FdAccountingTest(ServerTest):
    def check(self, srv, mport, scenario, open_=0, reason=None, closed=0):
        """Counters (SIGUSR1, fresh) and /metrics (as of the last census) both say every
        open fd is accounted for once `open_` connections are left (and `closed` closes
        with `reason` happened)."""
        c = srv.wait_counters(lambda c: c["open"] == open_ and (
            reason is None or c["closed"][reason] == closed), 20,
            f"{open_} connections open after {scenario}")
        self.assertEqual(c["fd_unaccounted"], 0, f"{scenario}: {c}")
        fams = wait_metrics(mport, lambda f: value(f, "teardown_fds_connections") == open_, 20,
                            f"{open_} connection fds after {scenario}")
        self.assertEqual(value(fams, "teardown_fds_unaccounted"), 0, scenario)
        self.assertEqual(value(fams, "teardown_fds_open"),
                         value(fams, "teardown_fds_own") + open_, scenario)
        print(f"{scenario}: {int(value(fams, 'teardown_fds_open'))} fds open, "
              f"{int(value(fams, 'teardown_fds_own'))} the server's own, closed {c['closed']}")

    def test_correct_mode_scenarios(self):
        srv, mport = start_with_metrics(self, sets=SHORT)
        self.check(srv, mport, "start")
        for _ in range(20):  # echo, then close
            s = self.connect(srv.port)
            self.echo_once(s)
            s.close()
        self.check(srv, mport, "echo+close", reason="eof", closed=20)
        for _ in range(10):  # echo, then RST
            s = self.connect(srv.port)
            self.echo_once(s)
            reset_close(s)
        self.check(srv, mport, "reset", reason="reset", closed=10)
        for _ in range(10):  # half-close, read the echo to EOF
            s = self.connect(srv.port)
            s.sendall(b"half\n")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_to_eof(s), b"half\n")
            s.close()
        self.check(srv, mport, "half-close", reason="eof", closed=30)
        silent = [self.connect(srv.port) for _ in range(5)]  # heartbeat closes them
        self.check(srv, mport, "silent (heartbeat)", reason="heartbeat", closed=5)
        for s in silent:
            s.close()
        s = self.connect(srv.port)  # never reads: write-timeout
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        send_until_blocked(s, 64 << 20)
        self.check(srv, mport, "never reads (write-timeout)", reason="write-timeout", closed=1)
        s.close()
        s = self.connect(srv.port)  # half-closed while paused, never reads: fin-timeout
        fill_until_paused(srv, s, 64 << 10)
        s.shutdown(socket.SHUT_WR)
        self.check(srv, mport, "half-closed, never reads (fin-timeout)", reason="fin-timeout",
                   closed=1)
        s.close()
        kept = [self.connect(srv.port) for _ in range(3)]
        for s in kept:
            self.echo_once(s)
        self.check(srv, mport, "3 open", open_=3)
        srv.signal(signal.SIGTERM)  # graceful drain with connections open
        for s in kept:
            self.assertEqual(recv_to_eof(s), b"")
            s.close()
        self.assertEqual(srv.wait_exit(20), 0)
        c = srv.exit_counters()
        self.assertEqual(c["fd_unaccounted"], 0, f"at exit: {c}")
        self.assertEqual(c["closed"]["shutdown"], 3)

    def test_leaky_and_overload(self):
        srv, mport = start_with_metrics(self, mode="leaky",
                                        sets={"census_interval": "100ms",
                                              "max_connections": "10"})
        socks = [self.connect(srv.port) for _ in range(10)]
        for s in socks:
            self.echo_once(s)
            s.close()  # leaky: their fds stay open, in CLOSE_WAIT, in the table
        self.check(srv, mport, "leaky echo+close", open_=10)
        for _ in range(5):  # above max_connections: closed at once, reason overload
            s = self.connect(srv.port)
            s.settimeout(10)
            self.assertEqual(s.recv(10), b"")
            s.close()
        c = srv.counters()
        self.assertEqual(c["closed"]["overload"], 5)
        self.check(srv, mport, "overload", open_=10)

    def test_workers(self):
        srv, mport = start_with_metrics(self, sets={"workers": "2", "census_interval": "100ms"})
        for _ in range(30):
            s = self.connect(srv.port)
            self.echo_once(s)
            s.close()
        fams = wait_metrics(mport, lambda f: value(f, "teardown_connections_closed_total",
                                                   reason="eof") == 30
                            and value(f, "teardown_fds_connections") == 0, 20,
                            "30 closes over 2 workers")
        self.assertEqual(value(fams, "teardown_workers"), 2)
        self.assertEqual(value(fams, "teardown_fds_unaccounted"), 0)
