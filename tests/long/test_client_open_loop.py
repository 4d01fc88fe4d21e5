# Goal of this test: with --message-rate the client sends on a schedule and measures latency from each message's due time, so a server stopped for 1 s shows in the corrected percentiles (about 100 late messages at 100/s) but not in the raw round trip, and against a healthy server the two differ only by the client's own send lag.
import os
import signal
import socket
import subprocess
import time

from harness import REPO, ServerTest, server_env, wait_until
from test_client_helpers import ClientRun, client_bin, run_client, server_addr


class ClientOpenLoopTest(ServerTest):
    def start_client(self, args):
        cmd = [str(client_bin())] + [str(a) for a in args]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=server_env(),
                                cwd=str(REPO), start_new_session=True)

        def kill():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.addCleanup(kill)
        return proc

    def run_with_stall(self, srv, args, at, length):
        """Runs the client, the server stopped (SIGSTOP) for `length` s from `at` s into it:
        the stall is the input the test applies, so its times are slept, not polled."""
        t0 = time.monotonic()
        proc = self.start_client(["--server", server_addr(srv)] + args + ["--json", "--quiet"])
        wait_until(lambda: srv.counters().get("accepted", 0) >= 1, 10, "the client's connection")
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        srv.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            time.sleep(length)
        finally:
            srv.signal(signal.SIGCONT)
        print(f"server stopped for {time.monotonic() - stopped:.3f} s at {stopped - t0:.2f} s")
        out, err = proc.communicate(timeout=60)
        return ClientRun(["--json"], proc.returncode, out, err)

    def test_stall_shows_in_corrected_latency(self):
        srv = self.start_server()
        # One connection, pipeline 1, 100 messages a second for 4 s; the server is stopped
        # for 1 s from 2 s into the run.
        run = self.run_with_stall(srv, ["--connections", 1, "--pipeline", 1, "--message-rate",
                                        100, "--duration", "4s"], 2.0, 1.0)
        self.assertEqual(run.rc, 0, str(run))
        c, summ = run.counts(), run.doc["summary"]
        raw, corr = summ["rtt"]["p99_ms"], summ["latency"]["p99_ms"]
        print(f"raw rtt p99 {raw} ms, corrected p99 {corr} ms, late sends {c['late_sends']}, "
              f"due {c['msgs_due']}, messages {c['messages']}, unsent {c['unsent']}")
        self.assertGreaterEqual(corr, 500)
        self.assertLess(raw, 100)
        # About 100 messages came due while the server was stopped (1 s at 100/s).
        self.assertGreaterEqual(c["late_sends"], 80)
        self.assertLessEqual(c["late_sends"], 200)  # more when the loaded machine slows echoes
        self.assertEqual(c["failed"], 0)
        # Nothing was skipped: every due message was sent and answered, or counted unsent.
        self.assertEqual(c["msgs_due"], c["messages"] + c["unsent"])
        self.assertAlmostEqual(c["msgs_due"], 400, delta=40)
        self.assertEqual(run.doc["hist"]["late_us"]["count"], c["late_sends"])

    def test_healthy_server_corrected_close_to_raw(self):
        srv = self.start_server()
        run = run_client(self, ["--server", server_addr(srv), "--connections", 10,
                                "--message-rate", 200, "--arrivals", "poisson", "--pipeline", 8,
                                "--duration", "2s", "--json", "--quiet"])
        self.assertEqual(run.rc, 0, str(run))
        summ, c = run.doc["summary"], run.counts()
        raw, corr, lag = (summ[k]["p50_ms"] for k in ("rtt", "latency", "send_lag"))
        print(f"p50: raw {raw} ms, corrected {corr} ms, send lag {lag} ms; late {c['late_sends']}; "
              f"intended {summ['intended_msgs_per_s']:.0f}/s, achieved {summ['msgs_per_s']:.0f}/s")
        self.assertGreater(c["messages"], 2000)
        self.assertGreaterEqual(corr, raw)
        self.assertLessEqual(corr - raw, lag + 0.1)
        self.assertAlmostEqual(summ["msgs_per_s"], summ["intended_msgs_per_s"],
                               delta=0.1 * summ["intended_msgs_per_s"])

    def test_backlog_fails_never_drops(self):
        # A listener that never answers (the kernel completes the handshake, nobody reads):
        # the messages due pile up; past --max-backlog the connection fails as `backlog`
        # and what was due and never sent is counted, not dropped.
        lsock = socket.socket()
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        port = lsock.getsockname()[1]
        run = run_client(self, ["--server", f"127.0.0.1:{port}", "--connections", 1,
                                "--message-rate", 100, "--max-backlog", 20, "--messages", 1000,
                                "--settle", 0, "--json", "--quiet", "--expect", "failed.backlog=1"])
        c = run.counts()
        print(f"backlog: failures {run.doc['failures']}, due {c['msgs_due']}, "
              f"sent {c['bytes_sent'] // 64}, unsent {c['unsent']}, elapsed {run.doc['elapsed_us']} us")
        self.assertEqual(run.rc, 0, str(run))
        self.assertEqual(run.doc["failures"]["first_reply"], {"backlog": 1})
        self.assertEqual(c["unsent"], 21)  # 21 due and unsent: one more than allowed
        self.assertEqual(c["msgs_due"], 22)  # and the one sent, unanswered
        self.assertEqual(c["messages"], 0)

    def test_rate_is_a_schedule(self):
        # One slot, a new connection (one echo, then close) 50 times a second for 1.5 s;
        # the server stopped for 0.4 s holds the slot: the starts due meanwhile are made
        # late when it is back, and counted, not dropped (a token bucket lost them).
        srv = self.start_server()
        run = self.run_with_stall(srv, ["--connections", 1, "--scenario", "close",
                                        "--messages", 1, "--rate", 50, "--duration", "1500ms",
                                        "--settle", 0], 0.5, 0.4)
        c, conn_due = run.counts(), run.doc["summary"]["connect_due"]
        print(f"attempted {c['attempted']}, late starts {c['late_starts']}, connect from its "
              f"time on the schedule p99 {conn_due['p99_ms']} ms, max {conn_due['max_ms']} ms")
        self.assertEqual(run.rc, 0, str(run))
        self.assertAlmostEqual(c["attempted"], 75, delta=5)  # 1.5 s x 50/s, on schedule
        self.assertGreaterEqual(c["late_starts"], 12)  # about 0.4 s x 50/s
        self.assertGreaterEqual(conn_due["max_ms"], 250)
