# Goal of this test: sockets passed at start in LISTEN_FDS (systemd's socket activation, an upgrade) are adopted when they are listening sockets on the configured address, without the port-in-use probe, also by every worker of a server with workers; garbage LISTEN_FDS, a LISTEN_PID of another process and passed fds that are not listening sockets are one warning line each and the server opens its own listener.
import os
import socket
import subprocess
import tempfile

from harness import ServerTest, server_bin, server_env, wait_until
from lifecycle import children, echo, kill_tree


class ListenFdsTest(ServerTest):
    def start(self, fd_obj, env, sets=(), port=0):
        """Starts the server with fd_obj (a socket or file, or None) as fd 3 and env added;
        LISTEN_PID=self means the server's own pid (set by a shell before exec)."""
        d = tempfile.mkdtemp(prefix="teardown-lfds-")
        port_file, log = os.path.join(d, "port"), os.path.join(d, "stderr.log")
        args = [str(server_bin()), "--listen", f"127.0.0.1:{port}", "--port-file", port_file]
        for s in sets:
            args += ["--set", s]
        pid_var = env.pop("LISTEN_PID", None)
        script = ("export LISTEN_PID=$$; " if pid_var == "self" else
                  f"export LISTEN_PID={pid_var}; " if pid_var else "") + 'exec "$@"'
        pass_fds = ()
        if fd_obj is not None:  # the shell moves it to fd 3 before exec
            n = fd_obj.fileno()
            script = f"exec 3<&{n} {n}<&-; " + script
            pass_fds = (n,)
        err = open(log, "wb")
        self.addCleanup(err.close)
        p = subprocess.Popen(["/bin/sh", "-c", script, "sh"] + args, pass_fds=pass_fds,
                             env=dict(server_env(), **env), stderr=err,
                             stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: (kill_tree(p.pid), p.wait()))
        wait_until(lambda: os.path.exists(port_file) or p.poll() is not None, 15, "the port file")
        self.assertIsNone(p.poll(), open(log).read())
        with open(port_file) as f:
            return p, int(f.read()), lambda: open(log).read()

    def listener(self, host="127.0.0.1"):
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        s.listen(16)
        return s

    def test_adopted(self):
        ls = self.listener()
        port = ls.getsockname()[1]
        # The port is in use (by the passed socket itself): no probe may refuse it.
        p, got, log = self.start(ls, {"LISTEN_FDS": "1", "LISTEN_PID": "self",
                                      "LISTEN_FDNAMES": "echo.socket"}, port=port)
        print(log().strip().splitlines()[-2:])
        self.assertEqual(got, port)
        self.assertIn("adopted 1 listener", log())
        ls.close()  # the server's copy serves on
        self.assertEqual(echo(port), b"ping")

    def test_adopted_by_workers(self):
        ls = self.listener()
        port = ls.getsockname()[1]
        p, got, log = self.start(ls, {"LISTEN_FDS": "1", "LISTEN_PID": "self"},
                                 sets=["workers=2"], port=port)
        wait_until(lambda: len(children(p.pid)) == 2, 10, "two workers")
        ls.close()
        for _ in range(20):
            self.assertEqual(echo(port), b"ping")

    def bad(self, fd_obj, env, expect):
        p, port, log = self.start(fd_obj, env)
        warn = [l for l in log().splitlines() if " warn: " in l and expect in l]
        print(warn)
        self.assertEqual(len(warn), 1, log())
        self.assertEqual(echo(port), b"ping")

    def test_garbage_count(self):
        self.bad(None, {"LISTEN_FDS": "x1", "LISTEN_PID": "self"}, "LISTEN_FDS=x1")

    def test_pid_not_ours(self):
        self.bad(self.listener(), {"LISTEN_FDS": "1", "LISTEN_PID": "1"}, "LISTEN_PID=1")

    def test_not_listening(self):
        s = socket.socket()
        self.addCleanup(s.close)
        self.bad(s, {"LISTEN_FDS": "1", "LISTEN_PID": "self"}, "not listening")

    def test_not_a_socket(self):
        f = open("/dev/null")
        self.addCleanup(f.close)
        self.bad(f, {"LISTEN_FDS": "1", "LISTEN_PID": "self"}, "not a socket")

    def test_other_address(self):
        self.bad(self.listener("127.0.0.2"), {"LISTEN_FDS": "1", "LISTEN_PID": "self"},
                 "the config says")


class SocketActivateTest(ServerTest):
    def test_systemd_socket_activate(self):
        """systemd-socket-activate (Debian's systemd package) holds the socket and starts the
        server at the first connection, which waits in the queue meanwhile."""
        import shutil
        tool = shutil.which("systemd-socket-activate")
        if tool is None:
            self.skipTest("systemd-socket-activate is not installed (apt-get install systemd)")
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        log = tempfile.NamedTemporaryFile(prefix="teardown-activate-", suffix=".log")
        self.addCleanup(log.close)
        p = subprocess.Popen([tool, "-l", f"127.0.0.1:{port}", "--fdname=listen",
                              str(server_bin()), "--listen", f"127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=log, env=server_env(),
                             stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: (kill_tree(p.pid), p.wait()))
        wait_until(lambda: f"127.0.0.1:{port}" in subprocess.run(
            ["ss", "-Hltn"], capture_output=True, text=True).stdout, 10, "the socket")
        self.assertEqual(echo(port), b"ping")  # this connection starts the server
        text = open(log.name).read()
        print([l for l in text.splitlines() if "LISTEN_FDS" in l])
        self.assertIn("adopted 1 listener", text)
        for _ in range(5):
            self.assertEqual(echo(port), b"ping")
