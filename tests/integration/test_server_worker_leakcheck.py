# Goal of this test: on the ASan build LeakSanitizer checks every worker when it exits (workers leave with _exit(), which skips the atexit handler that runs the check), not only the supervisor.
"""Found by `SOAK_ASAN=1 make soak`: a connection leaked in every worker passed it, because
no worker was ever checked. LeakSanitizer logs nothing when it finds no leak, so the test
reads its verbosity=2 trace: each check stops the process's threads with a tracer that logs
"==TRACER==Attached to thread PID." (compiler-rt's StopTheWorld). Always the ASan binary
(build/asan/bin/echo-server), whichever build the suite runs."""
import os
import re
from unittest import mock

from harness import REPO, ServerTest, process_tree, wait_until

ASAN_SERVER = REPO / "build" / "asan" / "bin" / "echo-server"


class WorkerLeakCheckTest(ServerTest):
    def test_every_worker_is_leak_checked(self):
        if not ASAN_SERVER.exists():
            self.skipTest(f"needs {ASAN_SERVER} (make asan)")
        env = {"SERVER_BIN": str(ASAN_SERVER),
               "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:verbosity=2"}
        with mock.patch.dict(os.environ, env):
            srv = self.start_server(sets={"workers": "2"})
        workers = wait_until(lambda: (lambda k: k if len(k) == 2 else None)(
            process_tree(srv.pid)[1:]), 20, "two workers")
        for _ in range(4):  # connections spread over both workers (SO_REUSEPORT's hash)
            s = self.connect(srv.port)
            self.echo_once(s)
            s.close()  # the drain would wait shutdown_timeout for an open peer's EOF
        self.assertEqual(srv.stop(timeout=30), 0, srv.log_tail())
        checked = {int(p) for p in re.findall(r"==\d+==Attached to thread (\d+)\.", srv.log())}
        print(f"supervisor {srv.pid}, workers {sorted(workers)}: leak-checked {sorted(checked)}")
        self.assertIn(srv.pid, checked, "the supervisor's exit check did not run")
        for pid in workers:
            self.assertIn(pid, checked, f"worker {pid} exited without a leak check")
