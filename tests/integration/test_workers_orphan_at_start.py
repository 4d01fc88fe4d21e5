# Goal of this test: a worker whose supervisor dies between the worker's fork and its PR_SET_PDEATHSIG request exits instead of serving on as an orphan nobody supervises.
import os
import signal
import subprocess
import tempfile
import time

from harness import (ServerTest, child_pids, pid_alive, server_bin, server_env, shim_env,
                     wait_until)

DELAY_MS = 1500  # each worker waits this long inside prctl(PR_SET_PDEATHSIG)


class OrphanAtStartTest(ServerTest):
    def test_orphaned_before_pdeathsig_exits(self):
        err = tempfile.NamedTemporaryFile(prefix="teardown-orphan-", suffix=".log", delete=False)
        self.addCleanup(os.unlink, err.name)
        env = dict(server_env(), **shim_env(f"call=pdeathsig,sleep_ms={DELAY_MS}"))
        p = subprocess.Popen([str(server_bin()), "--listen", "127.0.0.1:0",
                              "--set", "workers=2"], stderr=err, env=env)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        workers = wait_until(lambda: len(child_pids(p.pid)) == 2 and child_pids(p.pid), 10,
                             "two workers forked")
        self.addCleanup(lambda: [os.kill(w, signal.SIGKILL) for w in workers if pid_alive(w)])
        # Both workers are inside the delayed prctl: the supervisor dies now.
        p.kill()
        p.wait()
        t0 = time.monotonic()
        wait_until(lambda: not any(pid_alive(w) for w in workers), DELAY_MS / 1000 + 10,
                   "the orphaned workers to exit")
        print(f"orphaned workers exited {time.monotonic() - t0:.2f}s after the supervisor's "
              f"SIGKILL (prctl delayed {DELAY_MS} ms)")
        with open(err.name) as f:
            log = f.read()
        self.assertIn("the supervisor died before the worker started", log)
