# Goal of this test: a client that sends 1 MiB, half-closes (SHUT_WR) and only then reads gets all 1 MiB back, then EOF.
import socket
import time

from harness import ServerTest, pattern, recv_to_eof

MIB = 1 << 20


class HalfCloseTest(ServerTest):
    def test_one_mib_then_shutdown_then_read(self):
        srv = self.start_server()  # default config: the scenario must work out of the box
        s = self.connect(srv.port, timeout=20)
        data = pattern(MIB, 5)
        t0 = time.monotonic()
        try:
            s.sendall(data)
        except socket.timeout:
            self.fail("sending 1 MiB without reading blocked for 20 s: the echo could not be "
                      "absorbed by the server and the kernel buffers")
        s.shutdown(socket.SHUT_WR)
        try:
            got = recv_to_eof(s, timeout=20)
        except socket.timeout:
            self.fail("no EOF within 20 s after the half-close")
        print(f"1 MiB sent, half-closed, echo + EOF received in {time.monotonic() - t0:.3f}s")
        self.assertEqual(len(got), len(data), "bytes echoed after the half-close")
        self.assertTrue(got == data, "echo differs from what was sent")
        c = srv.wait_counters(lambda c: c["open"] == 0, 10, "the connection to be closed")
        self.assertEqual(c["closed"]["eof"], 1, f"close reason in {c}")
        self.assertEqual(c["fin_to_close_us"]["count"], 1, f"fin_to_close_us in {c}")
