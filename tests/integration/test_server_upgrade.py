# Goal of this test: SIGUSR2 starts a new generation of the executable at the path resolved at start, which adopts the same listening sockets (same inodes, /metrics included) and serves new connections while the old one serves its established connections to their end and exits; a missing, non-executable or crashing file, one that crashes after reporting ready, and a second SIGUSR2 during an upgrade are one log line each and the old generation keeps serving.
import os
import shutil
import signal
import socket
import stat
import tempfile
import urllib.request

from harness import Server, ServerTest, server_bin, wait_until
from lifecycle import (alive, children, echo, listener_inodes, new_generations, wait_log)


class UpgradeTest(ServerTest):
    def copied_server(self, **kw):
        """A server started from a copy of the binary the test may replace."""
        d = tempfile.mkdtemp(prefix="teardown-upgrade-")
        self.addCleanup(shutil.rmtree, d, True)
        exe = os.path.join(d, "echo-server")
        shutil.copy2(server_bin(), exe)
        srv = Server(self, **kw)
        srv.cmd[0] = exe
        return srv.start(), exe

    def held(self, port, n=5):
        out = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(s.close)
            s.sendall(b"h")
            self.assertEqual(s.recv(1), b"h")
            out.append(s)
        return out

    def upgrade(self, srv):
        before = len(new_generations(self, srv))
        srv.signal(signal.SIGUSR2)
        wait_until(lambda: len(new_generations(self, srv)) > before, 15, "a new generation")
        return new_generations(self, srv)[-1]

    def test_alone(self):
        srv = Server(self, sets={"heartbeat_timeout": "0"}).start()
        inodes = listener_inodes(srv.port)
        held = self.held(srv.port)
        new = self.upgrade(srv)
        ready = wait_log(srv, "is ready after")
        wait_log(srv, "handover:")
        print(f"{ready[0][3]}; listener inodes {inodes} -> {listener_inodes(srv.port)}")
        self.assertEqual(listener_inodes(srv.port), inodes, "the same listening socket")
        for _ in range(10):
            self.assertEqual(echo(srv.port), b"ping")
        for s in held:  # the old generation still serves its own
            s.sendall(b"x")
            self.assertEqual(s.recv(1), b"x")
        self.assertTrue(srv.alive())
        for s in held:
            s.close()
        self.assertEqual(srv.wait_exit(15), 0)
        self.assertTrue(alive(new))
        self.assertEqual(echo(srv.port), b"ping")

    def test_workers_with_metrics(self):
        srv = Server(self, sets={"workers": "2", "heartbeat_timeout": "0",
                                 "metrics_listen": "127.0.0.1:0"}).start()
        wait_until(lambda: len(children(srv.pid)) == 2, 10, "two workers")
        mport = int(wait_until(lambda: [l for l in srv.log_lines(contains="metrics on http")],
                               10, "metrics")[0][3].rsplit(":", 1)[1].split("/")[0])
        inodes = listener_inodes(srv.port)
        minodes = listener_inodes(mport)
        new = self.upgrade(srv)
        wait_log(srv, "handover complete")
        self.assertEqual(srv.wait_exit(15), 0)
        wait_until(lambda: len(children(new)) == 2, 10, "the new generation's workers")
        print(f"listeners {inodes} -> {listener_inodes(srv.port)}, metrics {minodes} -> "
              f"{listener_inodes(mport)}")
        self.assertEqual(listener_inodes(srv.port), inodes)
        self.assertEqual(listener_inodes(mport), minodes)
        self.assertEqual(echo(srv.port), b"ping")
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
            self.assertIn(b"teardown_connections_accepted_total", r.read())

    def bad_upgrade(self, prepare, expect, **sets):
        srv, exe = self.copied_server(sets=dict({"heartbeat_timeout": "0"}, **sets))
        held = self.held(srv.port, 2)
        prepare(exe)
        srv.signal(signal.SIGUSR2)
        line = wait_log(srv, expect, level="error")
        print(line[0][3])
        self.assertEqual(len(srv.log_lines(level="error")), 1, srv.log_tail())
        for s in held:
            s.sendall(b"y")
            self.assertEqual(s.recv(1), b"y")
        for _ in range(5):
            self.assertEqual(echo(srv.port), b"ping")
        self.assertTrue(srv.alive())
        return srv

    def script(self, text):
        def write(exe):
            os.unlink(exe)
            with open(exe, "w") as f:
                f.write(text)
            os.chmod(exe, 0o755)
        return write

    def test_missing(self):
        self.bad_upgrade(os.unlink, "No such file or directory")

    def test_not_executable(self):
        self.bad_upgrade(lambda exe: os.chmod(exe, stat.S_IRUSR), "Permission denied")

    def test_crashing(self):
        self.bad_upgrade(self.script("#!/bin/sh\nexit 3\n"), "exited before it was ready")

    def test_never_ready(self):
        self.bad_upgrade(self.script("#!/bin/sh\nexec sleep 30\n"), "not ready within",
                         upgrade_timeout="500ms")

    def test_crash_after_ready(self):
        srv = self.bad_upgrade(
            self.script("#!/bin/sh\nprintf r >&$TEARDOWN_READY_FD\nexit 4\n"),
            "after it took over")
        self.assertEqual(len(srv.log_lines(contains="handover:")), 1)

    def test_second_sigusr2(self):
        srv, exe = self.copied_server(sets={"heartbeat_timeout": "0"})
        self.script("#!/bin/sh\nexec sleep 30\n")(exe)
        srv.signal(signal.SIGUSR2)
        wait_log(srv, "starting a new generation")
        new_generations(self, srv)
        srv.signal(signal.SIGUSR2)
        line = wait_log(srv, "an upgrade is under way")
        print(line[0][3])
        self.assertEqual(len(srv.log_lines(contains="starting a new generation")), 1)
        self.assertEqual(echo(srv.port), b"ping")
