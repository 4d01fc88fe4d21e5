# Goal of this test: after 200 clients echo then close, leaky mode leaves 200 CLOSE-WAIT sockets on its port (without spinning) and correct mode leaves none.
from harness import ServerTest, cpu_over, recv_exactly, ss_count, tw_overflows, wait_until

N = 200


class LeakyTest(ServerTest):
    def _echo_then_close(self, srv):
        socks = [self.connect(srv.port) for _ in range(N)]
        for i, s in enumerate(socks):
            s.sendall(b"%d\n" % i)
        for i, s in enumerate(socks):
            self.assertEqual(recv_exactly(s, len(b"%d\n" % i)), b"%d\n" % i, f"echo {i}")
        for s in socks:
            s.close()

    def test_leaky_leaves_close_wait(self):
        self.require_ss()
        srv = self.start_server(mode="leaky")
        self._echo_then_close(srv)
        counts = []

        def all_close_wait():
            counts.append(ss_count(srv.port, "close-wait"))
            return counts[-1] >= N
        try:
            wait_until(all_close_wait, 15, f"{N} CLOSE-WAIT sockets on the leaky server's port")
        except AssertionError as e:
            self.fail(f"{e} (last count {counts[-1]})")
        n = counts[-1]
        # The client side reaches FIN-WAIT-2 when the server's (delayed) ACK arrives.
        ovf0 = tw_overflows()
        fw2 = []
        try:
            wait_until(lambda: fw2.append(ss_count(srv.port, "fin-wait-2", side="dport"))
                       or fw2[-1] >= N, 5, f"{N} client sockets in FIN-WAIT-2")
        except AssertionError:
            pass  # reported by the assertion below
        fw2 = fw2[-1]
        print(f"leaky: {n} CLOSE-WAIT on port {srv.port}, {fw2} client sockets in FIN-WAIT-2")
        self.assertEqual(n, N)
        ovf = tw_overflows() - ovf0
        if ovf:
            # Orphaned FIN-WAIT-2 sockets live in the TIME_WAIT table; when other programs
            # fill it, the kernel destroys them (counted as TCPTimeWaitOverflow).
            print(f"TIME_WAIT table full: {ovf} orphaned client sockets destroyed")
            self.assertGreaterEqual(fw2 + ovf, N)
        else:
            self.assertEqual(fw2, N)
        cpu, wall = cpu_over(srv.pid, 1.0)
        print(f"leaky server CPU with {N} unclosed EOFs: {cpu:.3f}s over {wall:.2f}s "
              f"({100 * cpu / wall:.1f}%)")
        self.assertLess(cpu / wall, 0.05, "leaky server spins on a readable EOF")
        c = srv.counters()
        self.assertEqual(c["open"], N, f"{c}")
        self.assertEqual(ss_count(srv.port, "close-wait"), N, "CLOSE-WAIT sockets went away")

    def test_correct_leaves_none(self):
        self.require_ss()
        srv = self.start_server()
        self._echo_then_close(srv)
        c = srv.wait_counters(lambda c: c["open"] == 0, 15, f"{N} connections closed")
        n = ss_count(srv.port, "close-wait")
        print(f"correct: {n} CLOSE-WAIT on port {srv.port} after {N} closes; closed {c['closed']}")
        self.assertEqual(n, 0)
        self.assertEqual(c["closed"]["eof"], N)

