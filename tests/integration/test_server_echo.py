# Goal of this test: every byte a client sends comes back in order, over IPv4 and IPv6, including 1 MiB written at once while the client reads concurrently.
import socket
import time

from harness import ServerTest, pattern, reader_thread, recv_exactly

MIB = 1 << 20


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


class EchoTest(ServerTest):
    def _echo_small_messages(self, host, port):
        s = self.connect(port, host)
        for i in range(50):
            msg = f"message {i} ".encode() * (i + 1)
            s.sendall(msg)
            self.assertEqual(recv_exactly(s, len(msg)), msg, f"echo of message {i}")

    def _echo_mib(self, host, port):
        s = self.connect(port, host)
        data = pattern(MIB, 3)
        t, res = reader_thread(s, len(data), timeout=30)
        t0 = time.monotonic()
        s.sendall(data)  # one call: the whole MiB is written at once
        t.join(40)
        self.assertFalse(t.is_alive(), "reader still waiting for the echo")
        self.assertNotIn("error", res, f"reader failed: {res.get('error')}")
        got = res["data"]
        print(f"{host}: 1 MiB echoed in {time.monotonic() - t0:.3f}s")
        self.assertEqual(len(got), len(data), "echo length")
        self.assertTrue(got == data, "echo bytes differ or are out of order")

    def test_ipv4_echo_in_order(self):
        srv = self.start_server()
        self._echo_small_messages("127.0.0.1", srv.port)

    def test_ipv4_one_mib_written_at_once(self):
        srv = self.start_server()
        self._echo_mib("127.0.0.1", srv.port)
        c = srv.counters()
        self.assertGreaterEqual(c["bytes_in"], MIB, f"bytes_in in {c}")
        self.assertGreaterEqual(c["bytes_out"], MIB, f"bytes_out in {c}")

    def test_ipv6_echo(self):
        if not ipv6_loopback():
            self.skipTest("no IPv6 loopback (::1) on this host")
        srv = self.start_server(listen="[::1]:0")
        self._echo_small_messages("::1", srv.port)
        self._echo_mib("::1", srv.port)

    def test_many_clients_interleaved(self):
        srv = self.start_server()
        socks = [self.connect(srv.port) for _ in range(20)]
        for rnd in range(5):
            for i, s in enumerate(socks):
                s.sendall(f"{rnd}:{i};".encode())
            for i, s in enumerate(socks):
                want = f"{rnd}:{i};".encode()
                self.assertEqual(recv_exactly(s, len(want)), want, f"client {i} round {rnd}")
