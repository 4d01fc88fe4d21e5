# Goal of this test: closing a listener with connections in its accept queue and in SYN_RECV resets all of them without tcp_migrate_req, none with it, and none when the socket stays open in another holder (the inherited-listener design).
import os
import re
import subprocess
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROG = ROOT / "build/lab/15_listener_close"
N = 8  # per queue, as in tests/lab/15_listener_close.c


class ListenerCloseTest(unittest.TestCase):
    def test_listener_close(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: the lab program works in private network namespaces")
        subprocess.run(["make", "--no-print-directory", "build/lab/15_listener_close"],
                       cwd=ROOT, check=True, capture_output=True)
        p = subprocess.run([str(PROG)], capture_output=True, text=True, timeout=60)
        if p.returncode == 77:
            self.skipTest(p.stdout.strip().split("|")[-1])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        cases = {m[0]: dict(queued=int(m[1]), synrecv=int(m[2]), reset=int(m[3]),
                            accepted=int(m[4]))
                 for m in re.findall(r"case=(\S+) queued=(\d+) synrecv=(\d+) reset=(\d+) "
                                     r"accepted=(\d+)", p.stderr)}
        print(f"kernel {os.uname().release}: {cases}")
        self.assertEqual(set(cases), {"reuseport-migrate0", "reuseport-migrate1",
                                      "inherited-migrate0"}, p.stderr)
        for c in cases.values():
            self.assertEqual((c["queued"], c["synrecv"]), (N, N))
        self.assertEqual(cases["reuseport-migrate0"]["reset"], 2 * N)
        self.assertEqual(cases["reuseport-migrate0"]["accepted"], 0)
        for name in ("reuseport-migrate1", "inherited-migrate0"):
            self.assertEqual(cases[name]["reset"], 0, name)
            self.assertEqual(cases[name]["accepted"], 2 * N, name)
        self.assertIn("|nuance:", p.stdout)


if __name__ == "__main__":
    unittest.main()
