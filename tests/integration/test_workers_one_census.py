# Goal of this test: with workers only worker 0 takes the census of the shared port, once per census_interval (each census walks every socket of the namespace), and every worker still judges its own CLOSE_WAIT sockets from the list worker 0 shares.
import json
import re
import signal
import time

from harness import ServerTest, recv_exactly, shim_env, wait_until
from promtext import start_with_metrics, value, wait_metrics

COUNTERS = re.compile(r"echo-server\[(\d+)\] info: counters (\{.*\})$")
INTERVAL_S = 0.1


class OneCensusTest(ServerTest):
    def worker_counters(self, srv, n):
        start = len(srv.log())
        srv.signal(signal.SIGUSR1)

        def all_in():
            found = {}
            for line in srv.log()[start:].splitlines():
                m = COUNTERS.search(line)
                if m:
                    found[m.group(1)] = json.loads(m.group(2))
            return found if len(found) >= n else None
        return wait_until(all_in, 10, f"counters from {n} workers")

    def test_one_census_per_port_and_every_worker_judges_its_own(self):
        srv, mport = start_with_metrics(self, mode="leaky", sets={
            "workers": "3", "census_interval": f"{int(INTERVAL_S * 1000)}ms",
            "close_wait_alarm": "300ms"})
        n = 30
        socks = [self.connect(srv.port) for _ in range(n)]
        for s in socks:
            s.sendall(b"x")
        for s in socks:
            self.assertEqual(recv_exactly(s, 1), b"x")
        for s in socks:
            s.close()  # leaky: every worker leaves its share in CLOSE_WAIT
        fams = wait_metrics(
            mport, lambda f: value(f, "teardown_close_wait_overdue_sockets") == n
            and value(f, "teardown_close_wait_sockets") == n, 20,
            f"{n} overdue CLOSE_WAIT sockets judged over 3 workers")
        per_worker = self.worker_counters(srv, 3)
        accepted = [c["accepted"] for c in per_worker.values()]
        print(f"accepted per worker {accepted}, censuses per worker "
              f"{[c['censuses'] for c in per_worker.values()]}")
        self.assertEqual(sum(accepted), n)
        # One worker takes the census; the others judge from its list.
        self.assertEqual(sum(1 for c in per_worker.values() if c["censuses"] > 0), 1)
        self.assertIn("close-wait watchdog:", srv.log())
        # One census per interval for the whole port, not one per worker.
        t0, c0 = time.monotonic(), value(fams, "teardown_censuses_total")
        wait_until(lambda: time.monotonic() - t0 >= 2.0, 5, "two seconds of ticks")
        fams = wait_metrics(mport, lambda f: True, 10, "a scrape")
        took, made = time.monotonic() - t0, value(fams, "teardown_censuses_total") - c0
        print(f"{made:.0f} censuses of the port in {took:.2f} s at {INTERVAL_S * 1000:.0f} ms "
              f"(one per interval: at most {took / INTERVAL_S + 2:.0f})")
        self.assertGreater(made, 0)
        self.assertLessEqual(made, took / INTERVAL_S + 2)
        self.assertEqual(value(fams, "teardown_close_wait_overdue_sockets"), n)

    def test_each_census_judged_once(self):
        # Every census made costly (the shim spins in each read of its dump), so the next one
        # waits ten times as long: the other worker ticks every 100 ms meanwhile and must
        # judge each posted census once, not its stale list at every tick (which warned
        # once per tick and looked every connection up by fstat).
        srv, mport = start_with_metrics(self, mode="leaky", sets={
            "workers": "2", "census_interval": "100ms", "close_wait_alarm": "200ms"},
            env=shim_env("call=recvmsg,spin_ms=60"))
        socks = [self.connect(srv.port) for _ in range(20)]
        for s in socks:
            s.sendall(b"x")
        for s in socks:
            self.assertEqual(recv_exactly(s, 1), b"x")
        for s in socks:
            s.close()
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 5, 10, "five seconds")
        fams = wait_metrics(mport, lambda f: True, 10, "a scrape")
        censuses = value(fams, "teardown_censuses_total")
        warned = {}
        for _, pid, _, text in srv.log_lines(level="warn", contains="close-wait watchdog:"):
            warned[pid] = warned.get(pid, 0) + 1
        print(f"{censuses:.0f} censuses in about 5 s; warnings per worker {warned}")
        self.assertEqual(len(warned), 2, "both workers hold overdue sockets")
        self.assertLessEqual(max(warned.values()), censuses)
