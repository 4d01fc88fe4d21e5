# Goal of this test: the report says why the server's sockets were not counted (nothing listens on the port here, or only another address's or family's listener, whose sockets it no longer counts as the server's), and says "no listener at the end" when the server's listener went away during the run.
import json
import socket
import threading

from harness import Server, ServerTest, wait_until
from test_client_helpers import run_client


def unlistened_port():
    """A port bound (so nobody else takes it) but not listening: connections are refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


class ClientCensusReasonsTest(ServerTest):
    def test_nothing_listens(self):
        s, port = unlistened_port()
        self.addCleanup(s.close)
        args = ["--server", f"127.0.0.1:{port}", "--connections", 2, "--settle", "0",
                "--expect", "failed.ECONNREFUSED=2", "--expect", "server.close_wait=0"]
        table = run_client(self, args)
        doc = run_client(self, args + ["--json"]).doc
        line = next(x for x in table.out.splitlines() if x.startswith("census server port"))
        print(line)
        self.assertIn(f"nothing listens on port {port} here", line)
        self.assertNotIn("another host", table.out)
        self.assertEqual(table.rc, 3, str(table))  # the census expectation: unknown
        self.assertEqual(doc["census"]["server"],
                         {"visible": False, "unseen": "no_listener", "port": port})
        why = next(e for e in doc["expect"] if e["key"] == "server.close_wait")["why"]
        self.assertIn("nothing listens", why)

    def test_other_family_listener(self):
        # A leaky server on [::1]:P holding a CLOSE_WAIT, and --server 127.0.0.1:P.
        leaky = self.start_server(mode="leaky", listen="[::1]:0")
        port = leaky.port
        c = socket.create_connection(("::1", port), timeout=10)
        c.close()  # the leaky server never closes its side: CLOSE_WAIT
        def close_waits():
            doc = run_client(self, ["states", "--port", port, "--json"]).out
            return json.loads(doc)["local"]["states"]["close_wait"]
        wait_until(lambda: close_waits() >= 1, 10, "the leaky server's CLOSE_WAIT")
        # nothing on 127.0.0.1:P: not "visible", and said why
        run = run_client(self, ["--server", f"127.0.0.1:{port}", "--connections", 1,
                                "--settle", "0", "--json"])
        print("no IPv4 listener:", run.doc["census"]["server"])
        self.assertEqual(run.doc["census"]["server"]["unseen"], "other_listener")
        # a correct server on 127.0.0.1:P: its census is its own, without the other's
        # CLOSE_WAIT
        Server(self, listen=f"127.0.0.1:{port}").start()
        run = run_client(self, ["--server", f"127.0.0.1:{port}", "--connections", 5,
                                "--scenario", "close", "--json",
                                "--expect", "server.close_wait=0"])
        server = run.doc["census"]["server"]
        print(f"IPv4 server beside the leaky IPv6 one: server census {server['states']}")
        self.assertTrue(server["visible"])
        self.assertEqual(server["states"]["close_wait"], 0)
        self.assertEqual(server["states"]["listen"], 1)
        self.assertEqual(run.rc, 0, str(run))

    def test_no_listener_at_the_end(self):
        # Answers the first echo of 3 connections, then closes its listener (as inetd's
        # rate limit does) while they stay open.
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(8)
        port = lst.getsockname()[1]
        conns = []
        self.addCleanup(lambda: [x.close() for x in conns])

        def serve():
            for _ in range(3):
                conn, _ = lst.accept()
                conns.append(conn)
                conn.sendall(conn.recv(64))
            lst.close()
        threading.Thread(target=serve, daemon=True).start()
        run = run_client(self, ["--server", f"127.0.0.1:{port}", "--connections", 3,
                                "--scenario", "silent", "--hold", "1s", "--settle", "0"])
        print(run.out.splitlines()[-12:])
        self.assertEqual(run.rc, 0, str(run))
        self.assertIn("no listener at the end", run.out)
