# Goal of this test: `load-client states --port P` counts every TCP socket of a port by exact state on both sides (LISTEN, ESTABLISHED, CLOSE_WAIT, FIN_WAIT2, TIME_WAIT), equal to ss's counts, unlike ss -s which folds CLOSE_WAIT into "estab".
import socket
import unittest

from harness import have_ss, ss_count, wait_until
from test_client_helpers import run_client

WANT = {  # state: (local side = server's port, remote side = its clients), ss name
    "listen": (1, 0, "listening"),
    "established": (3, 3, "established"),
    "close_wait": (2, 4, "close-wait"),
    "fin_wait2": (4, 2, "fin-wait-2"),
    "time_wait": (5, 0, "time-wait"),
}


class CensusStatesTest(unittest.TestCase):
    def sock(self, s):
        self.addCleanup(s.close)
        return s

    def pair(self, lst, port):
        c = self.sock(socket.create_connection(("127.0.0.1", port)))
        s = self.sock(lst.accept()[0])
        return c, s

    def fabricate(self):
        lst = self.sock(socket.socket())
        lst.bind(("127.0.0.1", 0))
        lst.listen(64)
        port = lst.getsockname()[1]
        for _ in range(3):
            self.pair(lst, port)
        for _ in range(2):  # the client's FIN; the server never closes: CLOSE_WAIT
            self.pair(lst, port)[0].shutdown(socket.SHUT_WR)
        for _ in range(4):  # the server's FIN; the client never closes: FIN_WAIT2 there
            self.pair(lst, port)[1].shutdown(socket.SHUT_WR)
        for _ in range(5):  # the server closes first, then the client: TIME_WAIT there
            c, s = self.pair(lst, port)
            s.close()
            c.close()
        return port

    def states(self, port):
        run = run_client(self, ["states", "--port", port, "--json"], timeout=20)
        self.assertEqual(run.rc, 0, str(run))
        return run.doc

    def test_states_equal_ss(self):
        if not have_ss():
            self.skipTest("ss (iproute2) is not installed")
        port = self.fabricate()

        def settled():
            d = self.states(port)
            ok = all(d["local"]["states"][k] == v[0] and d["remote"]["states"][k] == v[1]
                     for k, v in WANT.items())
            return d if ok else None
        doc = wait_until(settled, 5, "the fabricated states to settle (delayed ACKs)")
        for state, (local, remote, ss_name) in WANT.items():
            ss_local, ss_remote = ss_count(port, ss_name), ss_count(port, ss_name, "dport")
            print(f"{state:12} local {doc['local']['states'][state]} (ss {ss_local})  "
                  f"remote {doc['remote']['states'][state]} (ss {ss_remote})")
            self.assertEqual(doc["local"]["states"][state], ss_local, state)
            self.assertEqual(doc["remote"]["states"][state], ss_remote, state)
        self.assertEqual(doc["local"]["total"], 15)
        self.assertEqual(doc["remote"]["total"], 9)
        tw = doc["local"]["timers"]["time_wait"]["time_wait"]
        self.assertEqual(tw["count"], 5)
        self.assertLessEqual(tw["max_expiry_ms"], 60000)

    def test_table(self):
        port = self.fabricate()
        wait_until(lambda: self.states(port)["local"]["states"]["time_wait"] == 5, 5,
                   "5 TIME_WAIT sockets")
        run = run_client(self, ["states", "--port", port], timeout=20)
        self.assertEqual(run.rc, 0, str(run))
        print(run.out)
        self.assertRegex(run.out, r"CLOSE_WAIT\s+2")
        self.assertRegex(run.out, r"TIME_WAIT\s+5\s+time_wait 5")
        self.assertRegex(run.out, r"LISTEN\s+1\s+accept queue 0/64")
