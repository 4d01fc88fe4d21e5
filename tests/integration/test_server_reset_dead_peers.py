# Goal of this test: closes about a peer believed dead (heartbeat) send RST when reset_dead_peers=yes, and a normal FIN when it is no.
import socket
import time

from harness import ServerTest


def how_closed(sock, timeout=10):
    sock.settimeout(timeout)
    try:
        b = sock.recv(1)
    except ConnectionResetError:
        return "RST"
    except socket.timeout:
        return "nothing"
    return "FIN" if b == b"" else f"data {b!r}"


class ResetDeadPeersTest(ServerTest):
    def _heartbeat_close(self, reset):
        srv = self.start_server(sets={"heartbeat_timeout": "1s", "reset_dead_peers": reset})
        s = self.connect(srv.port)
        t0 = time.monotonic()
        how = how_closed(s)
        print(f"reset_dead_peers={reset}: heartbeat close seen as {how} after "
              f"{time.monotonic() - t0:.3f}s")
        c = srv.wait_counters(lambda c: c["open"] == 0, 5, "the close counted")
        self.assertEqual(c["closed"]["heartbeat"], 1, f"{c}")
        return how

    def test_reset_dead_peers_yes_sends_rst(self):
        self.assertEqual(self._heartbeat_close("yes"), "RST")

    def test_reset_dead_peers_no_sends_fin(self):
        self.assertEqual(self._heartbeat_close("no"), "FIN")
