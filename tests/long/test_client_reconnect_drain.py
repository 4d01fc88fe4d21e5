# Goal of this test: echo messages in flight when the real server drains (SIGTERM) are counted as interrupted, never as mismatches; with --reconnect every drained connection reconnects to the server restarted on the same port and goes on echoing (refused attempts while nothing listens are connect failures), without it each is an eof failure.
import signal
import threading

from harness import Server, ServerTest
from test_client_helpers import run_client, server_addr

CONNS = 20


class ClientReconnectDrainTest(ServerTest):
    def start_load(self, srv, extra):
        """The load client in a thread; returns a function that waits for its run."""
        out = {}

        def target():
            try:
                out["run"] = run_client(self, [
                    "--server", server_addr(srv), "--scenario", "echo", "--size", "64k",
                    "--pipeline", 4, "--connections", CONNS, "--duration", "5s",
                    "--settle", "0", "--json"] + extra)
            except AssertionError as e:
                out["error"] = e
        t = threading.Thread(target=target, daemon=True)
        t.start()

        def finish():
            t.join(90)
            self.assertFalse(t.is_alive(), "load-client did not finish")
            if "error" in out:
                raise out["error"]
            return out["run"]
        return finish

    def drain(self, srv):
        srv.wait_counters(lambda c: c["open"] == CONNS and c["accepted"] == CONNS, 30,
                          f"{CONNS} echo connections open")
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(30), 0)
        drained = srv.exit_counters()["closed"]
        print(f"server drained: closed {drained}")
        return drained

    def test_drain_with_reconnect(self):
        a = self.start_server()
        finish = self.start_load(a, ["--reconnect", "--reconnect-delay", "300ms"])
        self.drain(a)
        b = Server(self, listen=f"127.0.0.1:{a.port}").start()
        run = finish()
        c = run.counts()
        fails = run.doc["failures"]
        accepted_b = b.counters()["accepted"]
        print(f"drain then restart, --reconnect: interrupted {c['interrupted']}, closed by "
              f"server {c['closed_by_server']}, reconnects {c['reconnects']}, failures "
              f"{fails}, the new server accepted {accepted_b}")
        self.assertEqual(c["echo_mismatch"], 0, str(run))
        self.assertGreaterEqual(c["interrupted"], CONNS)  # pipelined: each had some out
        self.assertGreaterEqual(c["closed_by_server"], CONNS)
        self.assertGreaterEqual(c["reconnects"], CONNS)
        self.assertGreaterEqual(accepted_b, CONNS)
        # The only failures: reconnects refused before the new server listened.
        for phase, kinds in fails.items():
            for kind, n in kinds.items():
                self.assertEqual((phase, kind), ("connect", "ECONNREFUSED"), fails)
        self.assertEqual(run.rc, 1 if c["failed"] else 0, str(run))
        self.assertEqual(c["attempted"], c["completed"] + c["failed"] + c["cancelled"] +
                         c["closed_by_server"], c)

    def test_drain_without_reconnect(self):
        a = self.start_server()
        finish = self.start_load(a, [])
        self.drain(a)
        run = finish()
        c = run.counts()
        fails = run.doc["failures"]
        print(f"drain, no --reconnect: interrupted {c['interrupted']}, failures {fails}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(c["echo_mismatch"], 0, str(run))
        self.assertGreaterEqual(c["interrupted"], CONNS)
        # each drained connection fails once, as eof: in phase echo, or first_reply when
        # its first 64 KiB echo had not come back yet
        self.assertEqual(fails["echo"].get("eof", 0) + fails["first_reply"].get("eof", 0),
                         CONNS, fails)
        self.assertEqual(set(fails["echo"]) | set(fails["first_reply"]), {"eof"}, fails)
        self.assertEqual(c["reconnects"], 0)
        self.assertEqual(c["closed_by_server"], 0)
