# Goal of this test: a message only partly echoed when the server's FIN arrives is counted as interrupted, never as a mismatch; with --reconnect it is sent again, byte for byte the same, on the new connection and completes there; a wrong echoed byte before the FIN is still a mismatch.
import os
import socket
import tempfile
import threading
import unittest

from test_client_helpers import run_client

SIZE = 1000
PARTIAL = 300


def recv_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


class FakeServer(threading.Thread):
    """Connection 1: echoes message 0, then PARTIAL bytes of message 1 (one of them
    flipped when corrupt), then closes (FIN). Later connections: echo everything."""

    def __init__(self, test, corrupt=False):
        super().__init__(daemon=True)
        self.lst = socket.socket()
        self.lst.bind(("127.0.0.1", 0))
        self.lst.listen(8)
        self.lst.settimeout(30)
        self.port = self.lst.getsockname()[1]
        self.corrupt = corrupt
        self.first_msg1 = None    # message 1 as connection 1 received it
        self.second_head = None   # the first message connection 2 received
        self.accepted = 0
        self.stop = threading.Event()
        test.addCleanup(self.close)

    def close(self):
        self.stop.set()
        self.lst.close()

    def run(self):
        try:
            while not self.stop.is_set():
                conn, _ = self.lst.accept()
                self.accepted += 1
                with conn:
                    conn.settimeout(30)
                    if self.accepted == 1:
                        self.first(conn)
                    else:
                        self.echo_all(conn)
        except OSError:
            pass  # the listener closed at the end of the test

    def first(self, conn):
        conn.sendall(recv_exactly(conn, SIZE))
        self.first_msg1 = recv_exactly(conn, SIZE)
        part = bytearray(self.first_msg1[:PARTIAL])
        if self.corrupt:
            part[PARTIAL // 2] ^= 0xFF
        conn.sendall(bytes(part))
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):  # to the client's close
            pass

    def echo_all(self, conn):
        head = recv_exactly(conn, SIZE)
        if self.second_head is None:
            self.second_head = head
        conn.sendall(head)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


class ClientReconnectResendTest(unittest.TestCase):
    def run_against(self, srv, extra):
        srv.start()
        return run_client(self, ["--server", f"127.0.0.1:{srv.port}", "--connections", 1,
                                 "--messages", 3, "--size", SIZE, "--settle", "0", "--json"]
                          + extra, timeout=30)

    def test_resent_after_reconnect(self):
        srv = FakeServer(self)
        run = self.run_against(srv, ["--reconnect", "--reconnect-delay", "50ms"])
        c = run.counts()
        print(f"partial echo then FIN, --reconnect: {c}")
        self.assertEqual(run.rc, 0, str(run))
        self.assertEqual(c["interrupted"], 1)
        self.assertEqual(c["reconnects"], 1)
        self.assertEqual(c["closed_by_server"], 1)
        self.assertEqual(c["echo_mismatch"], 0)
        self.assertEqual(c["failed"], 0)
        self.assertEqual(c["messages"], 3)  # message 1 completed on the new connection
        self.assertEqual(c["completed"], 1)
        self.assertEqual(c["attempted"], 2)
        self.assertEqual(c["established"], 2)
        # The same bytes again: the check of the echo is against the same pattern.
        self.assertEqual(srv.second_head, srv.first_msg1)
        self.assertEqual(run.doc["run"]["reconnect"], {"delay_ms": 50, "rate": 0})
        # merge sums them exactly, and --expect reads them
        fd, path = tempfile.mkstemp(prefix="teardown-rc-", suffix=".json")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write(run.out)
        m = run_client(self, ["merge", path, path, "--json", "--expect", "reconnects=2",
                              "--expect", "interrupted=2", "--expect", "closed_by_server=2"])
        self.assertEqual(m.rc, 0, str(m))
        self.assertEqual(m.counts()["interrupted"], 2)
        self.assertEqual(m.counts()["reconnects"], 2)

    def test_interrupted_without_reconnect(self):
        srv = FakeServer(self)
        run = self.run_against(srv, [])
        c = run.counts()
        print(f"partial echo then FIN, no --reconnect: {c}, failures {run.doc['failures']}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(c["interrupted"], 1)
        self.assertEqual(c["echo_mismatch"], 0)
        self.assertEqual(run.doc["failures"]["echo"], {"eof": 1})
        self.assertEqual(c["reconnects"], 0)
        self.assertEqual(c["closed_by_server"], 0)
        self.assertEqual(srv.accepted, 1)

    def test_wrong_byte_is_a_mismatch(self):
        srv = FakeServer(self, corrupt=True)
        run = self.run_against(srv, ["--reconnect", "--reconnect-delay", "50ms"])
        c = run.counts()
        print(f"a wrong byte then FIN, --reconnect: {c}, failures {run.doc['failures']}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(c["echo_mismatch"], 1)
        self.assertEqual(run.doc["failures"]["echo"], {"mismatch": 1})
        self.assertEqual(c["interrupted"], 0)
        self.assertEqual(c["reconnects"], 0)


if __name__ == "__main__":
    unittest.main()
