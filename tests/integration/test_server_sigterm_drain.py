# Goal of this test: SIGTERM drains gracefully (a connection with echo in flight gets all of it then EOF, queued connections are served, new ones refused, exit 0 with the counters line) and a second signal exits at once with 1.
import signal
import socket
import time

from harness import (ServerTest, assert_counters_consistent, pattern, recv_exactly,
                     recv_to_eof, wait_until)

MIB = 1 << 20


def refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


class SigtermDrainTest(ServerTest):
    def test_drain_delivers_echo_in_flight(self):
        srv = self.start_server(sets={"output_high_watermark": "4m", "shutdown_timeout": "20s",
                                      "heartbeat_timeout": "30s", "log_level": "debug"})
        s = self.connect(srv.port, timeout=20)
        cport = s.getsockname()[1]
        data = pattern(MIB, 11)
        s.sendall(data)  # not reading yet: the echo waits in the server and the kernel
        srv.wait_counters(lambda c: c["bytes_in"] >= MIB, 10, "the server to read the MiB")
        srv.signal(signal.SIGTERM)
        t_refused = wait_until(lambda: refused(srv.port) and time.monotonic(), 5,
                               "new connections to be refused after SIGTERM")
        self.assertTrue(srv.alive(), "server exited before the drain finished")
        got = recv_to_eof(s, 20)
        print(f"after SIGTERM: {len(got)} bytes of echo then EOF")
        self.assertEqual(len(got), len(data), "echo bytes delivered during the drain")
        self.assertTrue(got == data, "echo differs")
        t0 = time.monotonic()
        s.close()
        self.assertEqual(srv.wait_exit(15), 0, srv.log_tail())
        print(f"exit 0 {time.monotonic() - t0:.3f}s after the client's close")
        c = srv.exit_counters()
        print(f"counters at exit: {c}")
        assert_counters_consistent(self, c)
        self.assertEqual(c["open"], 0)
        # A refused() probe may have been accepted before the server handled the signal,
        # so the count is checked per connection.
        mine = srv.close_line_for(cport)
        self.assertEqual([l.get("reason") for l in mine], ["shutdown"], f"{srv.close_lines()}")
        self.assertGreaterEqual(c["closed"]["shutdown"], 1, f"{c}")
        self.assertGreater(t_refused, 0)

    def test_queued_connection_is_served(self):
        srv = self.start_server()
        srv.signal(signal.SIGSTOP)
        self.addCleanup(lambda: srv.alive() and srv.signal(signal.SIGCONT))
        s = self.connect(srv.port)  # completes in the kernel: sits in the accept queue
        s.sendall(b"queued\n")
        srv.signal(signal.SIGTERM)
        srv.signal(signal.SIGCONT)
        self.assertEqual(recv_exactly(s, 7, 10), b"queued\n", "queued connection not served")
        self.assertEqual(recv_to_eof(s, 10), b"")
        s.close()
        self.assertEqual(srv.wait_exit(15), 0, srv.log_tail())
        c = srv.exit_counters()
        assert_counters_consistent(self, c)
        self.assertEqual(c["accepted"], 1, f"{c}")

    def test_sigint_idle_exits_0_with_counters(self):
        srv = self.start_server()
        s = self.connect(srv.port)
        self.echo_once(s)
        s.close()
        srv.wait_counters(lambda c: c["open"] == 0, 10, "the connection closed")
        t0 = time.monotonic()
        srv.signal(signal.SIGINT)
        self.assertEqual(srv.wait_exit(10), 0, srv.log_tail())
        print(f"idle server exited 0 {time.monotonic() - t0:.3f}s after SIGINT")
        c = srv.exit_counters()
        self.assertEqual(c["closed"]["eof"], 1, f"{c}")

    def test_second_signal_exits_1_at_once(self):
        for first, second in ((signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGTERM)):
            with self.subTest(first=first.name, second=second.name):
                srv = self.start_server(sets={"shutdown_timeout": "30s"})
                s = self.connect(srv.port)
                self.echo_once(s)
                srv.signal(first)
                # The drain is under way once the server has sent its FIN; the client
                # never closes, so the drain would wait for shutdown_timeout.
                self.assertEqual(recv_to_eof(s, 10), b"", "no FIN from the draining server")
                self.assertTrue(srv.alive())
                t0 = time.monotonic()
                srv.signal(second)
                rc = srv.wait_exit(10)
                took = time.monotonic() - t0
                print(f"{first.name} then {second.name}: exit {rc} {took * 1000:.0f} ms "
                      f"after the second signal")
                self.assertEqual(rc, 1)
                self.assertLess(took, 2.0)

    def test_shutdown_timeout_resets_leftovers(self):
        srv = self.start_server(sets={"shutdown_timeout": "1s"})
        s = self.connect(srv.port)
        self.echo_once(s)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertEqual(recv_to_eof(s, 10), b"")  # client keeps its socket open
        rc = srv.wait_exit(15)
        took = time.monotonic() - t0
        print(f"drain with a peer that never closes: exit {rc} after {took:.3f}s "
              f"(shutdown_timeout 1s)")
        self.assertEqual(rc, 0, srv.log_tail())
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 5.0)
        c = srv.exit_counters()
        assert_counters_consistent(self, c)
        self.assertEqual(c["closed"]["shutdown"], 1, f"{c}")
