# Goal of this test: a worker whose supervisor dies between the worker's fork and its PR_SET_PDEATHSIG request exits instead of serving on as an orphan nobody supervises.
import os
import signal
import subprocess
import tempfile
import time

from harness import REPO, ServerTest, server_bin, server_env, shim_env, wait_until

DELAY_MS = 1500  # each worker waits this long inside prctl(PR_SET_PDEATHSIG)


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class OrphanAtStartTest(ServerTest):
    def test_orphaned_before_pdeathsig_exits(self):
        err = tempfile.NamedTemporaryFile(prefix="teardown-orphan-", suffix=".log", delete=False)
        self.addCleanup(os.unlink, err.name)
        env = dict(server_env(), **shim_env(f"call=pdeathsig,sleep_ms={DELAY_MS}"))
        p = subprocess.Popen([str(server_bin()), "--listen", "127.0.0.1:0",
                              "--set", "workers=2"], stderr=err, env=env)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        workers = wait_until(lambda: len(children(p.pid)) == 2 and children(p.pid), 10,
                             "two workers forked")
        self.addCleanup(lambda: [os.kill(w, signal.SIGKILL) for w in workers if alive(w)])
        # Both workers are inside the delayed prctl: the supervisor dies now.
        p.kill()
        p.wait()
        t0 = time.monotonic()
        wait_until(lambda: not any(alive(w) for w in workers), DELAY_MS / 1000 + 10,
                   "the orphaned workers to exit")
        print(f"orphaned workers exited {time.monotonic() - t0:.2f}s after the supervisor's "
              f"SIGKILL (prctl delayed {DELAY_MS} ms)")
        with open(err.name) as f:
            log = f.read()
        self.assertIn("the supervisor died before the worker started", log)
