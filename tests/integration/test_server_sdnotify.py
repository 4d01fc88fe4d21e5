# Goal of this test: under systemd's notify protocol (NOTIFY_SOCKET, here a Python AF_UNIX datagram socket) the server sends READY=1 once listening, RELOADING=1 with MONOTONIC_USEC then READY=1 around a reload, STATUS= with its open connections, MAINPID= of the new generation during an upgrade, and STOPPING=1 then EXTEND_TIMEOUT_USEC= during a drain; alone and with workers.
import os
import signal
import socket
import tempfile
import time

from harness import Server, ServerTest, wait_until
from lifecycle import new_generations


class Notify:
    def __init__(self, test):
        d = tempfile.mkdtemp(prefix="teardown-notify-")
        self.path = os.path.join(d, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        test.addCleanup(self.sock.close)
        test.addCleanup(lambda: (os.unlink(self.path), os.rmdir(d)))
        self.msgs = []

    def poll(self):
        while True:
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.msgs

    def wait(self, pred, what, timeout=15):
        def found():
            return [m for m in self.poll() if pred(m)]
        return wait_until(found, timeout, what)


class SdNotifyTest(ServerTest):
    def check(self, sets):
        n = Notify(self)
        srv = Server(self, sets=dict({"heartbeat_timeout": "0", "census_interval": "200ms"},
                                     **sets), env={"NOTIFY_SOCKET": n.path}).start()
        n.wait(lambda m: m == "READY=1", "READY=1")
        held = socket.create_connection(("127.0.0.1", srv.port))
        self.addCleanup(held.close)
        held.sendall(b"x")
        self.assertEqual(held.recv(1), b"x")
        n.wait(lambda m: m.startswith("STATUS=1 connections open"), "STATUS= with 1 open")
        before = len(n.msgs)
        srv.signal(signal.SIGHUP)
        n.wait(lambda m: m == "READY=1" and any(x.startswith("RELOADING=1\nMONOTONIC_USEC=")
                                                for x in n.msgs[before:]),
               "RELOADING=1 then READY=1")
        after = n.msgs[before:]
        i = next(k for k, m in enumerate(after) if m.startswith("RELOADING=1"))
        self.assertIn("READY=1", after[i + 1:])
        srv.signal(signal.SIGUSR2)
        new = wait_until(lambda: new_generations(self, srv), 15, "a new generation")[-1]
        n.wait(lambda m: m == f"MAINPID={new}", f"MAINPID={new}")
        n.wait(lambda m: m.startswith("EXTEND_TIMEOUT_USEC="), "EXTEND_TIMEOUT_USEC while "
               "the old generation serves its connection")
        srv.signal(signal.SIGTERM)
        n.wait(lambda m: m == "STOPPING=1", "STOPPING=1")
        print(f"{len(n.msgs)} notifications, e.g. {sorted(set(m.split('=')[0] for m in n.msgs))}")

    def test_alone(self):
        self.check({})

    def test_workers(self):
        self.check({"workers": "2"})
