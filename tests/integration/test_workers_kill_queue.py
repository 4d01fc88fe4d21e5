# Goal of this test: with workers, the listener belongs to the parent, so a worker killed with SIGKILL takes only the connections it had accepted (counted as lost): the connections waiting in the accept queue, and those made under connect load meanwhile, are served by the other worker, none refused or reset.
import json
import os
import re
import signal
import socket
import subprocess
import threading

from harness import COUNTERS_RE, Server, ServerTest, wait_until
from test_client_helpers import run_client, server_addr

QUEUED = 32
TOTAL_RE = re.compile(COUNTERS_RE.pattern.replace("info: counters", "info: total counters"))


def worker_pids(srv):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(srv.pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def total_counters(srv):
    """The parent's next "total counters" line after SIGUSR1 (the sum over every worker,
    the dead ones' lost connections included)."""
    def lines():
        return [json.loads(m.group(2)) for m in map(TOTAL_RE.match, srv.log().splitlines())
                if m]
    before = len(lines())
    srv.signal(signal.SIGUSR1)
    return wait_until(lambda: lines()[before:] and lines()[before], 10,
                      "the parent's total counters line")


def owners(port):
    """pid -> established connections of the port it holds (ss -tnp)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    count = {}
    for pid in re.findall(r"pid=(\d+)", out):
        count[int(pid)] = count.get(int(pid), 0) + 1
    return count


def echo_ok(s, data):
    """Sends data (unless None) and reads its echo; False on EOF, a reset or a timeout."""
    try:
        if data is not None:
            s.sendall(data)
        got = b""
        while len(got) < len(data or b"x"):
            chunk = s.recv(64)
            if not chunk:
                return False
            got += chunk
        return True
    except OSError:
        return False


class KillQueueTest(ServerTest):
    def start_workers(self):
        srv = Server(self, sets={"workers": "2", "heartbeat_timeout": "0"}).start()
        wait_until(lambda: len(worker_pids(srv)) == 2, 10, "two workers")
        return srv

    def test_queue_survives_a_killed_worker(self):
        self.require_ss()
        srv = self.start_workers()
        # Connections accepted before: the victim's share of them dies with it.
        before = [self.connect(srv.port) for _ in range(8)]
        for s in before:
            self.assertTrue(echo_ok(s, b"a"))
        held = owners(srv.port)
        victim = max(held, key=held.get)
        # Stopped, the victim accepts nothing: with a listener of its own (SO_REUSEPORT per
        # worker), the connections hashed to it would wait in its queue and be reset with it.
        os.kill(victim, signal.SIGSTOP)
        queued = [self.connect(srv.port) for _ in range(QUEUED)]
        for s in queued:
            s.sendall(b"q")
        os.kill(victim, signal.SIGKILL)
        failed = sum(not echo_ok(s, None) for s in queued)
        wait_until(lambda: len(worker_pids(srv)) == 2 and victim not in worker_pids(srv), 15,
                   "the killed worker's replacement")
        lost_before = sum(not echo_ok(s, b"b") for s in before)
        total = total_counters(srv)
        print(f"connections made while the worker was stopped, then killed: {failed} of "
              f"{QUEUED} failed; of the {len(before)} accepted before, {lost_before} died "
              f"with it; the server counts lost {total['lost']}")
        self.assertEqual(failed, 0)
        self.assertEqual(lost_before, held[victim])
        self.assertEqual(lost_before, total["lost"])

    def test_kill_under_connect_load(self):
        srv = self.start_workers()
        out = {}

        def load():
            out["run"] = run_client(self, [
                "--server", server_addr(srv), "--scenario", "close", "--connections", 50,
                "--rate", "400/s", "--duration", "4s", "--settle", "0", "--json"])
        t = threading.Thread(target=load, daemon=True)
        t.start()
        wait_until(lambda: total_counters(srv)["accepted"] > 200, 20, "connect load")
        victim = worker_pids(srv)[0]
        os.kill(victim, signal.SIGKILL)
        t.join(60)
        self.assertFalse(t.is_alive(), "load-client did not finish")
        run = out["run"]
        fails = run.doc["failures"]
        total = total_counters(srv)
        refused = sum(fails["connect"].values())
        others = sum(sum(v.values()) for k, v in fails.items() if k != "connect")
        print(f"kill -9 of a worker under connect load: attempted "
              f"{run.counts()['attempted']}, connect failures {fails['connect']}, other "
              f"failures {others} ({fails}); the server counts lost {total['lost']}")
        self.assertEqual(refused, 0, str(run))
        self.assertLessEqual(others, total["lost"], "only the killed worker's own connections")
        self.assertEqual(run.counts()["echo_mismatch"], 0)
