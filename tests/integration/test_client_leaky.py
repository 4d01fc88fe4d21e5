# Goal of this test: the close scenario against a leaky echo-server reports server.close_wait = N and client FIN-WAIT-2 = N (as ss counts them), and --expect server.close_wait=0 exits 1 naming the violation.
from harness import ServerTest, ss_count, tw_overflows
from test_client_helpers import run_client, server_addr

N = 30


class ClientLeakyTest(ServerTest):
    def test_close_against_leaky(self):
        self.require_ss()
        srv = self.start_server(mode="leaky")
        ovf0 = tw_overflows()
        run = run_client(self, ["--server", server_addr(srv), "--connections", N,
                                "--scenario", "close", "--messages", 2, "--settle", "1s",
                                "--json", "--expect", "server.close_wait=0"])
        close_wait = run.state("server", "close_wait")
        fin_wait2 = run.state("client", "fin_wait2")
        ss_cw = ss_count(srv.port, "close-wait")
        ss_fw2 = ss_count(srv.port, "fin-wait-2", side="dport")
        print(f"leaky: census server CLOSE_WAIT {close_wait} (ss {ss_cw}), client FIN_WAIT2 "
              f"{fin_wait2} (ss {ss_fw2}), exit {run.rc}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(close_wait, N, str(run))
        self.assertEqual(ss_cw, N)
        self.assertEqual(fin_wait2, ss_fw2, str(run))
        # Orphaned FIN_WAIT2 sockets live in the TIME_WAIT table: when other programs of
        # this namespace fill it, the kernel destroys them (TCPTimeWaitOverflow).
        ovf = tw_overflows() - ovf0
        if ovf:
            print(f"TIME_WAIT table full: {ovf} orphaned client sockets destroyed")
            self.assertGreaterEqual(fin_wait2 + ovf, N)
        else:
            self.assertEqual(fin_wait2, N, str(run))
        e = run.expectation("server.close_wait=0")
        self.assertEqual(e["result"], "violated")
        self.assertEqual(e["observed"], N)
        self.assertEqual(run.counts()["failed"], 0, "the client itself saw no failure")

    def test_table_names_violation(self):
        srv = self.start_server(mode="leaky")
        run = run_client(self, ["--server", server_addr(srv), "--connections", 5,
                                "--scenario", "close", "--settle", "500ms",
                                "--expect", "server.close_wait=0"])
        self.assertEqual(run.rc, 1, str(run))
        self.assertRegex(run.out, r"expect server\.close_wait=0\s+VIOLATED \(observed 5")
        self.assertRegex(run.out, r"CLOSE_WAIT\s+5")
