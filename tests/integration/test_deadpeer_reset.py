# Goal of this test: with reset_dead_peers=yes a heartbeat close of a vanished peer sends RST, so no orphaned FIN_WAIT_1 socket keeps retransmitting to it (TCPAbortOnData rises by one per close); with it off, the orphans are there.
import socket

import netns
from harness import ServerTest, wait_until

N = 5
SETS = {"keepalive": "no", "user_timeout": "0", "heartbeat_timeout": "1s",
        "log_level": "info"}


class ResetDeadPeersTest(ServerTest):
    def setUp(self):
        netns.require_root(self)

    def run_row(self, reset):
        pair = netns.new_pair(self)
        srv = self.start_server_in(pair, sets=dict(SETS, reset_dead_peers=reset))
        socks = []
        with netns.inside(pair.cli_ns):
            for _ in range(N):
                s = socket.create_connection((pair.srv_ip, srv.port), timeout=5)
                self.addCleanup(s.close)
                socks.append(s)
        for s in socks:
            self.echo_once(s)
        before = netns.nstat(pair.srv_ns, "TcpExtTCPAbortOnData")["TcpExtTCPAbortOnData"]
        pair.vanish_client()
        srv.wait_counters(lambda c: c["closed"]["heartbeat"] == N, 10, "the heartbeat closes")
        after = netns.nstat(pair.srv_ns, "TcpExtTCPAbortOnData")["TcpExtTCPAbortOnData"]
        fin_wait1 = netns.ss_count(pair.srv_ns, srv.port, "fin-wait-1")
        return after - before, fin_wait1

    def test_reset_leaves_no_orphans(self):
        aborts, fin_wait1 = self.run_row("yes")
        print(f"reset_dead_peers=yes: {N} heartbeat closes, TCPAbortOnData +{aborts}, "
              f"FIN_WAIT_1 sockets left: {fin_wait1}")
        self.assertEqual(fin_wait1, 0)
        self.assertEqual(aborts, N)

    def test_plain_close_leaves_orphans_retransmitting(self):
        aborts, fin_wait1 = self.run_row("no")
        print(f"reset_dead_peers=no: {N} heartbeat closes, TCPAbortOnData +{aborts}, "
              f"FIN_WAIT_1 sockets left retransmitting their FIN: {fin_wait1}")
        self.assertEqual(aborts, 0)
        self.assertEqual(fin_wait1, N)
