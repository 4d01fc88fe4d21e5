# Goal of this test: a peer that read all its echo while the server was stopped is not closed by write_timeout after SIGCONT, even where TCP_INFO's acknowledged bytes are unknown: the server sees room in its send queue and writes.
"""A peer with a small receive buffer sends without reading, so the server queues echo and
arms its write deadline. The server is then stopped (SIGSTOP) for longer than
write_timeout while the peer reads everything the server's kernel holds for it. After
SIGCONT epoll_wait fails with EINTR and libevent runs the expired write alarm before the
socket's writability: by the clock no progress was made for write_timeout. The peer's
acknowledgements would show the progress (tcpi_bytes_acked), so the fault-injection shim
(tests/shim/stall.c) makes TCP_INFO fail, as on a kernel without that field: then only
the send queue (SIOCOUTQ, empty) can tell that the stall was the server's own."""
import errno
import signal
import socket
import time

from harness import (ServerTest, pattern, recv_exactly, send_until_blocked, shim_env, ss_lines,
                     wait_until)

WRITE_TIMEOUT_MS = 1000


def server_send_q(port):
    """Send-Q of the server's one connected socket on port (ss), or None."""
    for line in ss_lines(port, state="established"):
        f = line.split()
        return int(f[1])  # state filter: Recv-Q Send-Q Local Peer
    return None


class StallWriteTest(ServerTest):
    def test_peer_that_read_during_the_stop_is_kept(self):
        self.require_ss()
        env = shim_env(f"call=tcp_info,errno={errno.ENOPROTOOPT}")
        srv = self.start_server(sets={"write_timeout": f"{WRITE_TIMEOUT_MS}ms",
                                      "heartbeat_timeout": "0", "output_high_watermark": "64k"},
                                env=env)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
        s.connect(("127.0.0.1", srv.port))
        sent = send_until_blocked(s, 4 << 20, stall=0.3)
        c = srv.wait_counters(lambda c: c["bytes_in"] > c["bytes_out"], 10,
                              "the server to queue echo")
        print(f"client sent {len(sent)} bytes; server queued "
              f"{c['bytes_in'] - c['bytes_out']} bytes of echo")

        got = bytearray()
        srv.signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        try:
            s.setblocking(False)

            def drained():
                try:
                    while True:
                        b = s.recv(1 << 16)
                        if not b:
                            raise AssertionError("EOF during the stop")
                        got.extend(b)
                except BlockingIOError:
                    pass
                return server_send_q(srv.port) == 0
            wait_until(drained, 10, "the peer to read all the server's kernel held")
            # The stimulus under test: the stop lasts well beyond write_timeout.
            time.sleep(max(0.0, WRITE_TIMEOUT_MS / 1000 * 2 - (time.monotonic() - t_stop)))
        finally:
            s.setblocking(True)
            srv.signal(signal.SIGCONT)
        print(f"stopped {time.monotonic() - t_stop:.2f}s; the peer read {len(got)} bytes "
              f"meanwhile")
        try:
            got.extend(recv_exactly(s, len(sent) - len(got), 15))
        except ConnectionResetError:
            c = srv.counters()
            self.fail(f"reset after the stop with {len(got)} of {len(sent)} bytes read: "
                      f"{c['closed']}")
        self.assertEqual(len(got), len(sent), "echo cut short")
        self.assertEqual(bytes(got), pattern(len(sent)), "echo differs")
        c = srv.counters()
        print(f"counters: closed {c['closed']}, open {c['open']}")
        self.assertEqual(c["closed"]["write-timeout"], 0, c["closed"])
        self.assertEqual(c["open"], 1, c)
