# Goal of this test: started with stderr (or stdin, stdout and stderr) closed, the server and the load client put /dev/null there, so no log line is written into a socket that took fd 2.
"""With fd 2 closed (`2>&-`), the first descriptor the server opened became fd 2, and every
log line was a write(2) into it: the listening socket at first (the writes failed), then,
once a drain closed the listener, whatever the server accepted next, such as a /metrics
scraper, which received the server's log lines (a close line and the counters JSON) before
its EOF. Now fds 0-2, if closed, are /dev/null before anything else is opened."""
import os
import signal
import socket
import subprocess
import tempfile
import time

from harness import (START_TIMEOUT, Server, ServerTest, recv_to_eof, server_socket_for,
                     ss_count, wait_until)
from test_client_helpers import client_bin

CLOSE = 'exec "$@" 2>&-'
CLOSE_ALL = 'exec "$@" <&- >&- 2>&-'


def fd_target(pid, fd):
    return os.readlink(f"/proc/{pid}/fd/{fd}")


class StderrClosedTest(ServerTest):
    def start_closed(self, shell, **kw):
        """A server started through `sh -c 'exec "$@" 2>&-'`: the same pid, fds closed."""
        srv = Server(self, **kw)
        srv.cmd = ["/bin/sh", "-c", shell, "sh"] + srv.cmd
        return srv.start()

    @staticmethod
    def accepted(pid, client):
        """True once the server holds the socket whose peer is client."""
        try:
            server_socket_for(pid, client).close()
            return True
        except AssertionError:
            return False

    def test_drain_does_not_log_into_a_metrics_scraper(self):
        d = tempfile.TemporaryDirectory(prefix="teardown-stderr-closed-")
        self.addCleanup(d.cleanup)
        mpf = os.path.join(d.name, "metrics-port")
        srv = self.start_closed(CLOSE, sets={"log_level": "debug",
                                             "metrics_listen": "127.0.0.1:0",
                                             "shutdown_timeout": "10s"},
                                extra=["--metrics-port-file", mpf])
        mport = int(wait_until(lambda: os.path.exists(mpf) and open(mpf).read().strip(),
                               START_TIMEOUT, "the metrics port file"))
        self.assertEqual(fd_target(srv.pid, 2), "/dev/null")
        held = self.connect(srv.port)
        self.echo_once(held)
        # The drain closes the listener (fd 2 before the fix) and waits for `held`.
        srv.signal(signal.SIGTERM)
        wait_until(lambda: ss_count(srv.port, "listening") == 0, 10, "the listener to close")
        scraper = self.connect(mport)
        wait_until(lambda: self.accepted(srv.pid, scraper), 10, "the scraper to be accepted")
        held.shutdown(socket.SHUT_WR)  # its close line and the counters line get logged
        got_held = recv_to_eof(held)
        got_scraper = recv_to_eof(scraper)
        rc = srv.wait_exit(20)
        print(f"held connection got {got_held!r}; scraper got {got_scraper[:200]!r}; exit {rc}")
        self.assertEqual(got_held, b"")
        self.assertNotIn(b"echo-server[", got_scraper, "log lines were written to a socket")
        self.assertEqual(rc, 0)

    def test_all_three_closed(self):
        srv = self.start_closed(CLOSE_ALL, sets={"log_level": "debug"})
        self.assertEqual([fd_target(srv.pid, fd) for fd in (0, 1, 2)], ["/dev/null"] * 3)
        s = self.connect(srv.port)
        self.echo_once(s, b"x" * 1000)
        s.close()
        self.assertEqual(srv.stop(), 0)

    def test_client_stderr_closed(self):
        srv = self.start_server()
        p = subprocess.Popen(["/bin/sh", "-c", CLOSE, "sh", str(client_bin()), "--server",
                              f"127.0.0.1:{srv.port}", "--scenario", "echo", "--connections",
                              "20", "--rate", "10/s", "--quiet"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and (os.killpg(p.pid, signal.SIGKILL), p.wait()))
        # the sh execs the client: same pid; wait until it is the client and something is
        # on its fd 2 (right after the exec, before its main() runs, nothing is: then the
        # first fd it opens, /dev/null by the fix or else a socket, becomes fd 2)
        wait_until(lambda: p.poll() is not None or
                   (os.readlink(f"/proc/{p.pid}/exe").endswith("load-client") and
                    os.path.lexists(f"/proc/{p.pid}/fd/2")), 10,
                   "the client to start with something on fd 2")
        target = fd_target(p.pid, 2)
        rc = p.wait(timeout=60)
        print(f"load-client's fd 2: {target}; exit {rc}")
        self.assertEqual(target, "/dev/null")
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
