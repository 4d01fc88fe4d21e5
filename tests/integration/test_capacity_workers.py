# Goal of this test: `workers` N processes on one port hold 45,000 connections from a 3-process client with no failure, the census and the workers' accepted counts agree and the accept queue never overflows; a worker killed with SIGKILL under load leaves no client hanging and is replaced.
import json
import os
import re
import signal
import subprocess
import time

import netns
from harness import REPO, Server, ServerTest, wait_until

CLIENT = os.environ.get("CLIENT_BIN", "bin/load-client")
COUNTERS = re.compile(r"echo-server\[(\d+)\] info: counters (\{.*\})$")


def worker_counters(srv, n, timeout=10):
    """SIGUSR1 to the parent; it forwards to each worker, which logs its counters."""
    start = len(srv.log())
    srv.signal(signal.SIGUSR1)

    def all_in():
        found = {}
        for line in srv.log()[start:].splitlines():
            m = COUNTERS.search(line)
            if m:
                found[m.group(1)] = json.loads(m.group(2))
        return found if len(found) >= n else None
    return wait_until(all_in, timeout, f"counters from {n} workers")


def worker_pids(srv):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(srv.pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


class WorkersTest(ServerTest):
    def setUp(self):
        netns.require_root(self)
        self.ns = netns.new_pair(self)

    def client(self, port, *args):
        cmd = self.ns.exec_prefix("srv") + [str(REPO / CLIENT), "--server",
                                            f"127.0.0.1:{port}", "--json", "--quiet"]
        # A session of its own: with --procs the client forks workers, which a kill of the
        # parent alone would leave running (holding their connections) after a failure.
        p = subprocess.Popen(cmd + [str(a) for a in args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and (os.killpg(p.pid, signal.SIGKILL),
                                                      p.wait()))
        return p

    def start_workers(self, n, **sets):
        srv = Server(self, sets=dict({"workers": str(n), "heartbeat_timeout": "0"}, **sets))
        srv.cmd = self.ns.exec_prefix("srv") + srv.cmd
        return srv.start()

    def test_45000_connections_on_3_workers(self):
        n = 45000
        srv = self.start_workers(3, backlog="4096")
        over0 = netns.nstat(self.ns.srv_ns, "TcpExtListenOverflows", "TcpExtListenDrops")
        t0 = time.monotonic()
        p = self.client(srv.port, "--connections", n, "--procs", 3, "--scenario", "idle",
                        "--heartbeat", "5s", "--hold", "20s", "--rate", "10000",
                        "--sources", "127.0.0.2-127.0.0.4")

        def all_established():
            out = netns.run(*self.ns.exec_prefix("srv"), str(REPO / CLIENT), "states",
                            "--port", str(srv.port), "--json")
            return json.loads(out) if json.loads(out)["local"]["states"]["established"] \
                == n else None
        census = wait_until(all_established, 60, f"{n} server-side ESTABLISHED", interval=0.5)
        took = time.monotonic() - t0
        per_worker = worker_counters(srv, 3)
        accepted = sum(c["accepted"] for c in per_worker.values())
        opened = sum(c["open"] for c in per_worker.values())
        over = netns.nstat(self.ns.srv_ns, "TcpExtListenOverflows", "TcpExtListenDrops")
        print(f"{n} connections established in {took:.1f}s; server census ESTABLISHED "
              f"{census['local']['states']['established']}; accepted per worker "
              f"{[c['accepted'] for c in per_worker.values()]} = {accepted}; "
              f"ListenOverflows +{over['TcpExtListenOverflows'] - over0['TcpExtListenOverflows']}")
        self.assertEqual(accepted, n)
        self.assertEqual(opened, n)
        for k in over:
            self.assertEqual(over[k] - over0[k], 0, k)
        out, err = p.communicate(timeout=120)
        r = json.loads(out)
        print(f"client: established {r['counts']['established']}, failed "
              f"{r['counts']['failed']}, exit {p.returncode}")
        self.assertEqual(r["counts"]["established"], n)
        self.assertEqual(r["counts"]["failed"], 0, f"{r['failures']}")
        self.assertEqual(p.returncode, 0, err[-2000:])

    def test_killed_worker_is_replaced_and_no_client_hangs(self):
        srv = self.start_workers(2)
        before = wait_until(lambda: len(worker_pids(srv)) == 2 and worker_pids(srv), 5,
                            "two workers")
        p = self.client(srv.port, "--connections", 200, "--scenario", "echo",
                        "--duration", "6s", "--messages", 1000000, "--reply-timeout", "2s",
                        "--backoff", "100ms")
        wait_until(lambda: sum(c["accepted"] for c in worker_counters(srv, 2).values()) >= 200,
                   10, "the load to start")
        os.kill(before[0], signal.SIGKILL)
        t_kill = time.monotonic()
        after = wait_until(lambda: (len(worker_pids(srv)) == 2 and before[0] not in
                                    worker_pids(srv)) and worker_pids(srv), 10,
                           "a new worker in the dead one's place")
        replaced = time.monotonic() - t_kill
        out, err = p.communicate(timeout=60)
        r = json.loads(out)
        fails = {phase: kinds for phase, kinds in r["failures"].items() if kinds}
        print(f"killed worker {before[0]}; replaced by {set(after) - set(before)} after "
              f"{replaced:.2f}s; client: established {r['counts']['established']}, "
              f"closed by server {r['counts']['closed_by_server']}, failures {fails}")
        for phase, kinds in r["failures"].items():
            self.assertNotIn("deadline", kinds, f"a client hung in {phase}: {fails}")
        self.assertTrue(srv.alive())
        # The new worker serves: a fresh echo run against the port succeeds.
        q = self.client(srv.port, "--connections", 50, "--scenario", "echo", "--messages", 3)
        out, _ = q.communicate(timeout=30)
        self.assertEqual(json.loads(out)["counts"]["failed"], 0)
