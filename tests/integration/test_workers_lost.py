# Goal of this test: with workers, a worker killed with SIGKILL under load leaves exact accounting behind: accepted = closed + lost + open at every /metrics scrape during and after, and lost is the killed worker's open connections at its death.
import json
import os
import signal
import subprocess
import threading
import time

from harness import REPO, ServerTest, wait_until
from promtext import scrape, start_with_metrics, value

CLIENT = os.environ.get("CLIENT_BIN", "bin/load-client")


def identity(fams):
    """(accepted, closed, lost, open) from one scrape."""
    closed = sum(v for _, _, v in fams["teardown_connections_closed_total"].samples)
    return (value(fams, "teardown_connections_accepted_total"), closed,
            value(fams, "teardown_connections_lost_total"),
            value(fams, "teardown_connections_open"))


class Scraper(threading.Thread):
    """Scrapes /metrics without pause and checks the identity on every scrape."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.scrapes = 0
        self.bad = []
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            try:
                fams = scrape(self.port)
            except (OSError, AssertionError) as e:
                self.errors.append(repr(e))
                continue
            a, c, lost, o = identity(fams)
            self.scrapes += 1
            if a != c + lost + o:
                self.bad.append((a, c, lost, o))


def worker_pids(srv):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(srv.pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def serving_metrics(mport):
    """The pid of the worker whose metrics listener is on mport (worker 0)."""
    out = subprocess.run(["ss", "-tlnpH", f"( sport = :{mport} )"], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split("pid=", 1)[1].split(",", 1)[0])


def other_worker(srv, mport):
    """A worker that is not worker 0 (which serves /metrics)."""
    zero = serving_metrics(mport)
    return wait_until(lambda: [p for p in worker_pids(srv) if p != zero], 10, "worker 1")[0]


def sockets_of(port, pid):
    """The connections process pid holds on the port (ss -p: every state but LISTEN)."""
    out = subprocess.run(["ss", "-tanpH", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    return sum(1 for line in out.splitlines()
               if f"pid={pid}," in line and not line.startswith("LISTEN"))


class WorkerLostTest(ServerTest):
    def client(self, port, *args):
        p = subprocess.Popen([str(REPO / CLIENT), "--server", f"127.0.0.1:{port}", "--quiet"]
                             + [str(a) for a in args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and (os.killpg(p.pid, signal.SIGKILL),
                                                      p.wait()))
        return p

    def test_kill_worker_under_load(self):
        self.require_ss()
        srv, mport = start_with_metrics(self, sets={"workers": "2", "heartbeat_timeout": "0",
                                                    "census_interval": "200ms"})
        wait_until(lambda: len(worker_pids(srv)) == 2, 10, "two workers")
        held = 200
        idle = self.client(srv.port, "--scenario", "idle", "--connections", held,
                           "--heartbeat", "1s", "--hold", "60s")
        churn = self.client(srv.port, "--scenario", "close", "--connections", 20,
                            "--rate", "300/s", "--messages", 2, "--duration", "60s")
        wait_until(lambda: value(scrape(mport), "teardown_connections_open") >= held, 20,
                   f"{held} idle connections")
        scraper = Scraper(mport)
        scraper.start()
        self.addCleanup(scraper.stop.set)

        # Kill 1: frozen first, so the test can count what it holds; killed while frozen.
        victim = other_worker(srv, mport)
        os.kill(victim, signal.SIGSTOP)
        at_death = sockets_of(srv.port, victim)
        os.kill(victim, signal.SIGKILL)
        fams = wait_until(lambda: (lambda f: f if value(f, "teardown_connections_lost_total")
                                   > 0 else None)(scrape(mport)), 10, "lost to be counted")
        lost1 = value(fams, "teardown_connections_lost_total")
        print(f"kill 1: worker {victim} held {at_death} connections at its death; lost "
              f"{lost1:.0f}")
        self.assertGreater(at_death, 0)
        self.assertEqual(lost1, at_death)

        # Kill 2: the replacement, in the middle of the churn, not frozen.
        wait_until(lambda: len(worker_pids(srv)) == 2 and victim not in worker_pids(srv), 10,
                   "a replacement")
        second = other_worker(srv, mport)
        before = value(scrape(mport), "teardown_connections_accepted_total")
        wait_until(lambda: value(scrape(mport), "teardown_connections_accepted_total")
                   >= before + 50, 10, "more churn")
        os.kill(second, signal.SIGKILL)
        wait_until(lambda: len(worker_pids(srv)) == 2 and second not in worker_pids(srv),
                   10, "a second replacement")

        # The load ends; every connection it made is closed or lost.
        for p in (churn, idle):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        fams = wait_until(lambda: (lambda f: f if value(f, "teardown_connections_open") == 0
                                   else None)(scrape(mport)), 20, "every connection closed")
        scraper.stop.set()
        scraper.join(10)
        a, c, lost, o = identity(fams)
        print(f"after: accepted {a:.0f} = closed {c:.0f} + lost {lost:.0f} + open {o:.0f}; "
              f"lost_unknown {value(fams, 'teardown_connections_lost_unknown_total'):.0f}; "
              f"{scraper.scrapes} scrapes during the load, {len(scraper.bad)} off, "
              f"{len(scraper.errors)} failed")
        self.assertEqual(scraper.bad, [], "scrapes where accepted != closed + lost + open")
        self.assertGreater(scraper.scrapes, 10)
        self.assertEqual(a, c + lost + o)
        self.assertGreaterEqual(lost, lost1)
        # The parent's total at exit agrees.
        self.assertEqual(srv.stop(), 0)
        total = [t for _, pid, _, t in srv.log_lines(contains="total counters")
                 if pid == srv.pid]
        self.assertTrue(total, srv.log_tail())
        t = json.loads(total[-1].split("total counters ", 1)[1])
        print(f"parent's total at exit: accepted {t['accepted']}, lost {t['lost']}")
        self.assertEqual(t["lost"], lost)
        self.assertEqual(t["accepted"], sum(t["closed"].values()) + t["lost"] + t["open"])
