# Goal of this test: the load client reports the kernel's TcpExt deltas of its own network namespace over a run - N SO_LINGER 0 closes with nothing unread are TCPAbortOnData +N and TCPAbortOnClose +0 (read once by the parent with --procs 2, equal to nstat's own delta, summed by merge) - and `--expect kernel.TCPAbortOnClose=0` passes on a close run but exits 1 when another process of the namespace resets a socket with unread data during the run.
"""The server and the client run in two namespaces joined by a veth pair (netns.Pair,
deleted by a cleanup registered before anything can fail), so nothing else on the host
touches the client's counters: the client's namespace holds only its own sockets, and the
one socket pair the violation case makes there on purpose (the counters are per network
namespace, not per process)."""
import json
import os
import socket
import struct
import subprocess
import tempfile
import threading

import netns
from harness import ServerTest, wait_until
from test_client_helpers import client_bin, run_client

N = 40
COUNTERS = ("TCPAbortOnClose", "TCPAbortOnData", "TCPAbortOnTimeout", "TCPAbortOnMemory",
            "TCPTimeWaitOverflow", "ListenOverflows", "ListenDrops")


class ClientKernelCountersTest(ServerTest):
    def pair_and_server(self):
        netns.require_root(self)
        pair = netns.new_pair(self)  # its cleanup checks the namespaces are gone
        return pair, self.start_server_in(pair)

    def test_reset_is_abort_on_data(self):
        pair, srv = self.pair_and_server()
        names = [f"TcpExt{c}" for c in COUNTERS]
        before = netns.nstat(pair.cli_ns, *names)
        run = run_client(self, ["--server", f"{pair.srv_ip}:{srv.port}", "--connections", N,
                                "--scenario", "reset", "--messages", 2, "--procs", 2,
                                "--settle", "0", "--json",
                                "--expect", f"kernel.TCPAbortOnData={N}",
                                "--expect", "kernel.TCPAbortOnClose=0",
                                "--expect", "kernel.ListenOverflows=0"],
                         prefix=pair.exec_prefix("cli"))
        after = netns.nstat(pair.cli_ns, *names)
        kernel = run.doc["kernel"]
        print(f"reset x{N} (nothing unread): client-reported deltas {kernel['delta']}; "
              f"nstat of the namespace "
              f"{ {c: after['TcpExt' + c] - before['TcpExt' + c] for c in COUNTERS} }; "
              f"sockstat {kernel['sockstat']}, limits {kernel['limits']}")
        self.assertEqual(run.rc, 0, str(run))
        self.assertEqual(run.counts()["completed"], N, str(run))
        self.assertTrue(kernel["available"])
        self.assertEqual(set(kernel["delta"]), set(COUNTERS))
        # A linger-0 close with an empty receive queue: TCPAbortOnData, once per close.
        self.assertEqual(kernel["delta"]["TCPAbortOnData"], N)
        self.assertEqual(kernel["delta"]["TCPAbortOnClose"], 0)
        # The namespace holds nothing but the client: its report is the kernel's delta.
        for c in COUNTERS:
            self.assertEqual(kernel["delta"][c], after["TcpExt" + c] - before["TcpExt" + c], c)
        # tcp_max_orphans and tcp_mem belong to the initial namespace only.
        self.assertEqual(kernel["limits"], {})
        self.assertIn("tw", kernel["sockstat"])
        # Read once, by the parent: the per-worker results carry no kernel counters.
        self.assertEqual(len(run.doc["procs"]), 2)
        for part in run.doc["procs"]:
            self.assertNotIn("kernel", part)
        self.merge_sums(run)

    def merge_sums(self, run):
        """merge adds the deltas of two results (two namespaces, say)."""
        fd, path = tempfile.mkstemp(prefix="teardown-kc-", suffix=".json")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            json.dump(run.doc, f)
        p = subprocess.run([str(client_bin()), "merge", path, path, "--json",
                            "--expect", f"kernel.TCPAbortOnData={2 * N}"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        merged = json.loads(p.stdout)["kernel"]
        self.assertEqual(merged["delta"]["TCPAbortOnData"], 2 * N)
        self.assertEqual(merged["sockstat"], run.doc["kernel"]["sockstat"])  # the largest
        p = subprocess.run([str(client_bin()), "merge", path, path], capture_output=True,
                           text=True, timeout=30)
        self.assertIn("kernel (this network namespace, every process in it): deltas summed",
                      p.stdout)
        self.assertIn(f"TCPAbortOnData {2 * N}", p.stdout)

    def test_expect_abort_on_close(self):
        pair, srv = self.pair_and_server()
        args = ["--server", f"{pair.srv_ip}:{srv.port}", "--settle", "0",
                "--expect", "kernel.TCPAbortOnClose=0", "--expect", "kernel.ListenOverflows=0"]
        run = run_client(self, args + ["--connections", N, "--scenario", "close",
                                       "--messages", 3], prefix=pair.exec_prefix("cli"))
        self.assertEqual(run.rc, 0, str(run))
        self.assertIn("expect kernel.TCPAbortOnClose=0", run.out)
        self.assertIn("kernel (this network namespace, every process in it): deltas over the "
                      "run", run.out)
        # Violated: during an echo run, another process of the client's namespace resets a
        # connection whose receive queue holds unread bytes (TCPAbortOnClose). The client
        # cannot tell it from its own: the counters are the namespace's.
        result = {}
        t = threading.Thread(target=lambda: result.update(run=run_client(
            self, args + ["--connections", 4, "--scenario", "echo", "--duration", "2s",
                          "--json"], prefix=pair.exec_prefix("cli"))))
        t.start()
        try:
            wait_until(lambda: netns.ss_count(pair.cli_ns, srv.port, "established",
                                              side="dport") >= 4, 10,
                       "the client's connections (its first reading is taken before them)")
            self.abort_with_unread_data(pair.cli_ns)
        finally:
            t.join(60)
        run = result["run"]
        e = run.expectation("kernel.TCPAbortOnClose=0")
        print(f"close run: TCPAbortOnClose=0 held; echo run with one unread-data reset in the "
              f"namespace: rc {run.rc}, observed {e.get('observed')}, deltas "
              f"{run.doc['kernel']['delta']}")
        self.assertEqual(run.rc, 1, str(run))
        self.assertEqual(e["result"], "violated")
        self.assertEqual(e["observed"], 1)
        self.assertEqual(run.doc["kernel"]["delta"]["TCPAbortOnData"], 0)
        self.assertEqual(run.counts()["failed"], 0)

    def abort_with_unread_data(self, ns):
        with netns.inside(ns):
            lst = socket.socket()
            cli = socket.socket()
            lst.bind(("127.0.0.1", 0))
            lst.listen(1)
        try:
            cli.connect(lst.getsockname())
            acc, _ = lst.accept()
            cli.sendall(b"unread")
            wait_until(lambda: len(acc.recv(16, socket.MSG_PEEK)) == 6, 5, "bytes queued")
            acc.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            acc.close()
        finally:
            cli.close()
            lst.close()

    def test_unknown_counter_is_usage_error(self):
        p = subprocess.run([str(client_bin()), "--server", "127.0.0.1:9",
                            "--expect", "kernel.TCPAbortOnLinger=0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("unknown key 'kernel.TCPAbortOnLinger'", p.stderr)
