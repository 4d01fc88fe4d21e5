# Goal of this test: a dead worker is restarted after a backoff of its own slot, which doubles per quick death and resets after restart_backoff_reset of life; its end is logged as "exited with status N" or "killed by SIGNAME"; crash_loop_deaths deaths within crash_loop_window drain the other workers and exit 1.
import os
import re
import signal
import subprocess
import time

from harness import Server, ServerTest, wait_until

DIED = re.compile(r"worker (\d+) \(pid (\d+)\) (.*) after (\d+)ms; restarting in (\d+)ms$")


def worker_pids(srv):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(srv.pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def age_s(pid):
    """Seconds since process pid started (field 22 of /proc/PID/stat, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start / os.sysconf("SC_CLK_TCK")


class RestartTest(ServerTest):
    def start_workers(self, **sets):
        return Server(self, sets=dict({"workers": "2", "heartbeat_timeout": "0"},
                                      **sets)).start()

    def kill_and_wait(self, srv, pid, sig=signal.SIGKILL):
        """Sends sig to worker pid; returns (slot, how, restart delay ms) from the log line
        about its death, once its replacement runs."""
        os.kill(pid, sig)

        def logged():
            for _, _, _, text in srv.log_lines(level="warn"):
                m = DIED.search(text)
                if m and int(m.group(2)) == pid:
                    return int(m.group(1)), m.group(3), int(m.group(5))
            return None
        died = wait_until(logged, 10, f"the death of worker {pid} logged")
        wait_until(lambda: len(worker_pids(srv)) == 2 and pid not in worker_pids(srv), 10,
                   f"a replacement for {pid}")
        return died

    def slot_pid(self, srv, slot, known):
        """The pid now in `slot`: the worker that is not in the other slot's known pids."""
        others = [p for p in worker_pids(srv) if p not in known]
        self.assertEqual(len(others), 1, f"{worker_pids(srv)} vs {known}")
        return others[0]

    def test_backoff_per_slot_and_reset(self):
        srv = self.start_workers(restart_backoff_reset="1s")
        wait_until(lambda: len(worker_pids(srv)) == 2, 10, "two workers")
        a, b = worker_pids(srv)
        slot_a, how, d1 = self.kill_and_wait(srv, a)
        a2 = self.slot_pid(srv, slot_a, [b])
        _, _, d2 = self.kill_and_wait(srv, a2)
        a3 = self.slot_pid(srv, slot_a, [b])
        slot_b, _, d3 = self.kill_and_wait(srv, b)
        life = wait_until(lambda: age_s(a3) >= 1.3 and age_s(a3), 10, "1.3s of life")
        _, _, d4 = self.kill_and_wait(srv, a3)
        print(f"slot {slot_a}: {how}, restarted in {d1}ms, then {d2}ms after a quick death; "
              f"slot {slot_b}: {d3}ms; slot {slot_a} after {life:.1f}s of life: {d4}ms")
        self.assertEqual(how, "killed by SIGKILL")
        self.assertNotEqual(slot_a, slot_b)
        self.assertEqual(d2, 2 * d1, "a quick second death doubles the slot's backoff")
        self.assertEqual(d3, d1, "another slot's backoff is its own")
        self.assertEqual(d4, d1, "a worker that lived restart_backoff_reset resets it")
        self.assertTrue(srv.alive())

    def test_exit_status_logged(self):
        srv = self.start_workers()
        wait_until(lambda: len(worker_pids(srv)) == 2, 10, "two workers")
        _, how, _ = self.kill_and_wait(srv, worker_pids(srv)[0], signal.SIGTERM)
        print(f"a worker drained by its own SIGTERM: {how}")
        self.assertEqual(how, "exited with status 0")

    def test_crash_loop_exits_1(self):
        srv = self.start_workers(crash_loop_deaths="3", crash_loop_window="1m")
        wait_until(lambda: len(worker_pids(srv)) == 2, 10, "two workers")
        t0 = time.monotonic()
        for _ in range(2):
            self.kill_and_wait(srv, worker_pids(srv)[-1])
        last = worker_pids(srv)
        os.kill(last[-1], signal.SIGKILL)
        rc = srv.wait_exit(20)
        took = time.monotonic() - t0
        errors = [t for _, _, _, t in srv.log_lines(level="error", contains="crash_loop")]
        print(f"3 deaths in {took:.1f}s: exit {rc}; {errors}")
        self.assertEqual(rc, 1)
        self.assertTrue(errors, srv.log_tail())
        self.assertIn("killed by SIGKILL", errors[0])
        for p in last:
            wait_until(lambda: not os.path.exists(f"/proc/{p}"), 10, f"worker {p} gone")
